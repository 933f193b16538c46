//! `cargo xtask aarch64`: the aarch64 Linux build, tested under qemu-user
//! from an x86_64 machine.
//!
//! 1. Finds the cross tools (`aarch64-linux-gnu-gcc`, `qemu-aarch64`, the
//!    sysroot `/usr/aarch64-linux-gnu`) and the Rust target
//!    `aarch64-unknown-linux-gnu`. With `CI` set a missing tool is an error;
//!    otherwise the step prints SKIPPED. A missing Rust target with the C
//!    tools present is said in one loud line, and the C smoke test below
//!    still runs under qemu.
//! 2. The layout check of `cargo xtask layout` for the aarch64 section of
//!    the header ([`crate::layout::run_aarch64`]); then cross-builds and
//!    runs clippy for aarch64 and the tests of [`PACKAGES`] under qemu (cargo's
//!    runner), in `target/aarch64` so the x86_64 build cache stays valid,
//!    and prints how many tests ran per package and how long each took;
//!    then runs the sandbox demonstration (`demo/sandbox.rs`) under qemu.
//! 3. Checks the aarch64 object of context-sys as built: an AArch64 ELF,
//!    every routine of the header beginning with `bti c`, and a GNU
//!    property note with BTI; then the archive checks `cargo xtask abi`
//!    makes for x86_64 ([`crate::abi::check_archive`] with
//!    [`crate::abi::AARCH64`]: the linked routines are sized global FUNCs
//!    with exact FDEs, only `context_sys_start` names a personality, the
//!    stack note is not executable, nothing undefined but `abort`, and the
//!    archive links into a shared object with `-z text`); and that a link
//!    of the archive alone keeps the BTI mark and gives no warning with
//!    `-z force-bti`.
//! 4. A C-only smoke test (`xtask/c/aarch64_smoke.c`): the header's steps
//!    in C against the aarch64 assembly, built with the cross compiler and
//!    run under qemu.
//! 5. gdb's backtrace from inside a child context, as `cargo xtask gdb`
//!    checks it natively, with `gdb-multiarch` attached to qemu's gdb stub
//!    ([`crate::debug::gdb_aarch64`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::abi::{self, AARCH64};
use crate::util::{self, cargo, root, under_ci};

/// The Rust target.
pub const TARGET: &str = "aarch64-unknown-linux-gnu";
pub(crate) const CC: &str = "aarch64-linux-gnu-gcc";
/// The cross C++ compiler (package g++-aarch64-linux-gnu).
pub(crate) const CXX: &str = "aarch64-linux-gnu-g++";
pub(crate) const QEMU: &str = "qemu-aarch64";
pub(crate) const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// The packages whose tests run under qemu.
pub const PACKAGES: &[&str] = &["stackful-context-sys", "stackful-context", "stackful-instance", "context-tests-c"];

/// The routines `context_sys.h` declares: each must be a global function of
/// the aarch64 object.
const ROUTINES: &[&str] = &[
    "context_sys_swap",
    "context_sys_set",
    "context_sys_start",
    "context_sys_save_fp_control",
    "context_sys_get_current_stack_pointer",
    "context_sys_resume_windows",
    "context_sys_valgrind_client_request",
];

fn found(tool: &str, arg: &str) -> bool {
    Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Whether the Rust standard library for [`TARGET`] is installed.
pub(crate) fn rust_target_installed() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "target-libdir", "--target", TARGET]).output() else {
        return false;
    };
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    out.status.success()
        && std::fs::read_dir(&dir)
            .is_ok_and(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
}

/// The cross environment for cargo.
pub(crate) fn cross(cmd: &mut Command) -> &mut Command {
    cmd.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", CC)
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", format!("{QEMU} -L {SYSROOT}"))
        .env("CC_aarch64_unknown_linux_gnu", CC)
        // The C++ header tests of context-tests-c compile for the target.
        .env("CXX_aarch64_unknown_linux_gnu", CXX)
        .env("AR_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-ar")
        .env("CARGO_TARGET_DIR", target_dir())
}

pub(crate) fn target_dir() -> PathBuf {
    util::target_dir().join("aarch64")
}

pub fn run() -> Result<(), String> {
    let mut missing: Vec<&str> = Vec::new();
    if !found(CC, "--version") {
        missing.push(CC);
    }
    if !found(CXX, "--version") {
        missing.push(CXX);
    }
    if !found(QEMU, "--version") {
        missing.push(QEMU);
    }
    if !Path::new(SYSROOT).join("lib").is_dir() {
        missing.push(SYSROOT);
    }
    if !missing.is_empty() {
        let what = format!(
            "{} (apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user; .ci/run does)",
            missing.join(", ")
        );
        if under_ci() {
            return Err(format!("aarch64: missing {what}, and CI is set"));
        }
        println!("SKIPPED: aarch64: missing {what}");
        return Ok(());
    }
    let started = Instant::now();
    smoke_c()?;
    if !rust_target_installed() {
        println!(
            "aarch64: RUST TARGET {TARGET} NOT INSTALLED (rustup target add {TARGET}) -- only the C smoke test ran under qemu"
        );
        return if under_ci() {
            Err(format!("aarch64: the Rust target {TARGET} is not installed, and CI is set"))
        } else {
            Ok(())
        };
    }
    // Before the tests, as on x86_64: a layout mistake crashes tests in
    // ways that do not say which field.
    crate::layout::run_aarch64()?;
    // The code behind `cfg(target_arch = "aarch64")` gets the lints the
    // x86_64 clippy step never sees.
    let mut clippy = cargo();
    clippy.args(["clippy", "--target", TARGET, "--workspace", "--all-targets", "--", "-D", "warnings"]);
    util::run(cross(&mut clippy))?;
    println!("aarch64: clippy --workspace --all-targets clean");
    let counts = test_packages()?;
    check_object()?;
    println!("aarch64: tests run under {QEMU}, per package:");
    for (pkg, (passed, ignored, secs)) in &counts {
        println!("  {pkg:<24} {passed:>5} passed {ignored:>4} ignored {secs:>7.1} s");
    }
    sandbox()?;
    let a = archive()?;
    println!("aarch64 abi: {}", abi::check_archive(&AARCH64, &a)?);
    check_bti_link(&a)?;
    crate::debug::gdb_aarch64()?;
    println!("aarch64: {:.1} s in all", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs the tests of each of [`PACKAGES`] under qemu; returns (passed,
/// ignored) per package, from libtest's summary lines, and the seconds its
/// build and run took.
fn test_packages() -> Result<BTreeMap<String, (u64, u64, f64)>, String> {
    let mut counts = BTreeMap::new();
    for p in PACKAGES {
        let t = Instant::now();
        let mut cmd = cargo();
        cmd.args(["test", "--target", TARGET, "-p", p]);
        let out = cross(&mut cmd).stderr(Stdio::piped()).stdout(Stdio::piped()).output().map_err(|e| format!("{e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        print!("{stdout}");
        eprint!("{stderr}");
        if !out.status.success() {
            return Err(format!("aarch64: {cmd:?} failed with {}", out.status));
        }
        let (passed, ignored) = count_tests(&stdout);
        if passed == 0 {
            return Err(format!("aarch64: no test of {p} ran under qemu"));
        }
        counts.insert(p.to_string(), (passed, ignored, t.elapsed().as_secs_f64()));
    }
    Ok(counts)
}

/// The sandbox demonstration (`demo/sandbox.rs`, debug build) under qemu:
/// it exits 0 and says so only when every case ended as it should on this
/// architecture.
fn sandbox() -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--target", TARGET, "-p", "instance", "--example", "sandbox"]);
    let out = cross(&mut cmd).output().map_err(|e| format!("{e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("every case ended as expected") {
        return Err(format!(
            "aarch64: the sandbox demonstration failed ({}):\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!("aarch64: the sandbox demonstration under {QEMU}: every case ended as expected");
    Ok(())
}

/// (passed, ignored) summed over every `test result:` line of cargo test's
/// output.
pub fn count_tests(output: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { continue };
        let number = |word: &str| {
            rest.split(';')
                .find_map(|part| part.trim().strip_suffix(word))
                .and_then(|n| n.trim().rsplit(' ').next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total.0 += number(" passed");
        total.1 += number(" ignored");
    }
    total
}

/// The context-sys archive of the aarch64 debug build.
fn archive() -> Result<PathBuf, String> {
    let build = target_dir().join(TARGET).join("debug").join("build");
    let entries = std::fs::read_dir(&build).map_err(|e| format!("read {}: {e}", build.display()))?;
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("stackful-context-sys-"))
        .map(|e| e.path().join("out").join("libcontext_sys.a"))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .ok_or_else(|| format!("no libcontext_sys.a under {}", build.display()))
}

pub(crate) fn tool_output(tool: &str, args: &[&str], file: &Path) -> Result<String, String> {
    let out = Command::new(tool).args(args).arg(file).output().map_err(|e| format!("could not run {tool}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{tool} {args:?} {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_object() -> Result<(), String> {
    let a = archive()?;
    let header = tool_output("readelf", &["-h"], &a)?;
    let notes = tool_output("readelf", &["-n"], &a)?;
    let disasm = tool_output("aarch64-linux-gnu-objdump", &["-d"], &a)?;
    let mut bad = Vec::new();
    if !header.contains("AArch64") {
        bad.push("the archive's object is not an AArch64 ELF".to_string());
    }
    bad.extend(check_bti_entries(&disasm, ROUTINES));
    if !notes.contains(BTI_NOTE) {
        bad.push("no GNU property note with the BTI feature".to_string());
    }
    if !bad.is_empty() {
        return Err(format!("aarch64 object {}:\n  {}", a.display(), bad.join("\n  ")));
    }
    println!("aarch64 object: AArch64 ELF; {} global routines, each `bti c` first; BTI property note", ROUTINES.len());
    Ok(())
}

/// How `readelf -n` shows a GNU property note that marks BTI.
const BTI_NOTE: &str = "AArch64 feature: BTI";

/// Links the archive alone into a shared object, once plainly and once
/// with `-z force-bti`: the first must keep the BTI mark (the linker ANDs
/// its inputs' marks, so every object of the archive must carry it), the
/// second must not warn (ld names each input without the mark). Only the
/// archive (`-nostdlib`): the cross sysroot's crt files carry no BTI note,
/// so a link with them always warns, and an executable forced to BTI dies
/// of SIGILL under qemu in their code before `main`.
fn check_bti_link(a: &Path) -> Result<(), String> {
    let dir = crate::layout::scratch_dir()?;
    let mut bad = Vec::new();
    for (label, file, flags) in [
        ("plain", "libcontext_sys_bti_plain.so", &["-nostdlib", "-Wl,-z,text"][..]),
        ("-z force-bti", "libcontext_sys_bti_forced.so", &["-nostdlib", "-Wl,-z,text", "-Wl,-z,force-bti"][..]),
    ] {
        let so = dir.join(file);
        let said = abi::link_shared(&AARCH64, a, flags, &so)?;
        let notes = tool_output("readelf", &["-n"], &so)?;
        bad.extend(bti_link_problems(&said, &notes).into_iter().map(|p| format!("{label} link: {p}")));
    }
    if !bad.is_empty() {
        return Err(format!("aarch64 BTI link of {}:\n  {}", a.display(), bad.join("\n  ")));
    }
    println!(
        "aarch64 BTI link: the archive alone links with its BTI mark kept, and with -z force-bti without a warning"
    );
    Ok(())
}

/// The problems of one link: every warning the linker printed, and a
/// missing BTI mark in the output's `readelf -n`.
pub fn bti_link_problems(linker_said: &str, notes: &str) -> Vec<String> {
    let mut bad: Vec<String> = linker_said
        .lines()
        .filter(|l| l.contains("warning:"))
        .map(|l| format!("the linker warned: {}", l.trim()))
        .collect();
    if !notes.contains(BTI_NOTE) {
        bad.push("the output has no GNU property note with BTI".to_string());
    }
    bad
}

/// The first instruction of each routine in `objdump -d` output is `bti c`.
pub fn check_bti_entries(disasm: &str, routines: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for r in routines {
        let label = format!("<{r}>:");
        let first = disasm
            .lines()
            .skip_while(|l| !l.trim_end().ends_with(&label))
            .nth(1)
            .map(|l| l.split('\t').skip(2).collect::<Vec<_>>().join(" "));
        match first {
            Some(insn) if insn.trim().starts_with("bti") && insn.trim().ends_with('c') => {}
            Some(insn) => bad.push(format!("{r} begins with `{}`, not `bti c`", insn.trim())),
            None => bad.push(format!("{r} is not in the disassembly")),
        }
    }
    bad
}

/// Builds `xtask/c/aarch64_smoke.c` with the aarch64 assembly and runs it
/// under qemu; it prints `aarch64 smoke: ok` when every check in it passed.
fn smoke_c() -> Result<(), String> {
    let out_dir = target_dir().join("smoke");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{e}"))?;
    let exe = out_dir.join("aarch64_smoke");
    let r = root();
    util::run(
        Command::new(CC)
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wa,--noexecstack", "-I"])
            .arg(r.join("context-sys/include"))
            .arg(r.join("xtask/c/aarch64_smoke.c"))
            .arg(r.join("context-sys/src/context_sys_aarch64.S"))
            .arg("-o")
            .arg(&exe),
    )?;
    let out = Command::new(QEMU).args(["-L", SYSROOT]).arg(&exe).output().map_err(|e| format!("{e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !out.status.success() || !text.contains("aarch64 smoke: ok") {
        return Err(format!(
            "aarch64: the C smoke test failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_instruction_must_be_bti_c() {
        let good =
            "0000000000000000 <context_sys_swap>:\n   0:\td503245f \tbti\tc\n   4:\td10043ff \tsub\tsp, sp, #0x10\n";
        assert!(check_bti_entries(good, &["context_sys_swap"]).is_empty());
        let bad = "0000000000000000 <context_sys_swap>:\n   0:\td10043ff \tsub\tsp, sp, #0x10\n";
        assert_eq!(check_bti_entries(bad, &["context_sys_swap"]).len(), 1);
        // x86_64's first instruction is not even aarch64.
        let x86 = "0000000000000000 <context_sys_swap>:\n   0:\t0f ae 1f             \tstmxcsr (%rdi)\n";
        assert_eq!(check_bti_entries(x86, &["context_sys_swap"]).len(), 1);
        assert_eq!(check_bti_entries(good, &["context_sys_set"]).len(), 1, "a missing routine is reported");
    }

    #[test]
    fn a_bti_link_must_keep_the_mark_and_not_warn() {
        let notes = "Displaying notes found in: .note.gnu.property\n  Owner                Data size \tDescription\n  GNU                  0x00000010\tNT_GNU_PROPERTY_TYPE_0\n      Properties: AArch64 feature: BTI\n";
        assert!(bti_link_problems("", notes).is_empty());
        let warned = "/usr/bin/aarch64-linux-gnu-ld: nobti.o: warning: BTI turned on by -z force-bti when all inputs do not have BTI in NOTE section.\n";
        let found = bti_link_problems(warned, notes);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("nobti.o"), "{found:?}");
        let unmarked =
            "Displaying notes found in: .note.gnu.build-id\n  GNU                  0x00000014\tNT_GNU_BUILD_ID\n";
        assert_eq!(bti_link_problems("", unmarked).len(), 1);
        let pac_only = "      Properties: AArch64 feature: PAC\n";
        assert_eq!(bti_link_problems("", pac_only).len(), 1);
    }

    #[test]
    fn test_counts_are_summed_over_binaries() {
        let out = "\
     Running unittests src/lib.rs (target/aarch64/aarch64-unknown-linux-gnu/debug/deps/context_sys-c1307b2854b720d4)
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
     Running tests/raw_switch.rs (target/aarch64/aarch64-unknown-linux-gnu/debug/deps/raw_switch-29329ba5ac297566)
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.03s
   Doc-tests context_sys
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s
";
        assert_eq!(count_tests(out), (6, 1));
        assert_eq!(count_tests("test result: FAILED. 2 passed; 1 failed; 0 ignored;"), (2, 0));
        assert_eq!(count_tests("no summary at all"), (0, 0));
    }
}
