//! The C path of `context-sys`, as its README and the top of
//! `include/context_sys.h` document it: assemble `src/context_sys_x86_64.S`
//! (aarch64: `src/context_sys_aarch64.S`) with `cc -c`, link it into a C
//! program, and start a function on a fresh stack by the header's numbered
//! steps. `tests/c_path/start_on_fresh_stack.c` is those steps as a
//! program; this test builds it with the documented commands (with the
//! target's C compiler, see `c_tools::cc`, and runs it through cargo's
//! runner when there is one) and checks what it prints, and on x86_64 that
//! leaving out step 6 (saving the floating-point control words) ends in
//! SIGFPE, as the header warns.

mod c_tools;

use c_tools::{cc, crate_dir, run, run_ok, run_target, scratch, show, test_file};
use std::path::{Path, PathBuf};

/// What the program prints when every step is taken.
const EXPECTED: &str = "\
child: 1 2 3 4 5 6 7, x / 3 = 0.333333
parent: the child switched back
child: resumed
parent: the child returned 28.333333
";

/// The header's first command, run where it says (the crate's folder):
/// `cc -c -I include -Wa,--noexecstack src/context_sys_<arch>.S -o <obj>`.
fn assemble(dir: &Path) -> PathBuf {
    let arch = std::env::consts::ARCH;
    let obj = dir.join(format!("context_sys_{arch}.o"));
    run_ok(
        cc().current_dir(crate_dir("context-sys"))
            .args(["-c", "-I", "include", "-Wa,--noexecstack"])
            .arg(format!("src/context_sys_{arch}.S"))
            .arg("-o")
            .arg(&obj),
    );
    obj
}

/// The header's second command, `cc -std=c11 -I include main.c <obj> -o main`,
/// with warnings as errors and any `extra` flags.
fn link(dir: &Path, obj: &Path, extra: &[&str]) -> PathBuf {
    let exe = dir.join("start_on_fresh_stack");
    run_ok(
        cc().current_dir(crate_dir("context-sys"))
            .args(["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-I", "include"])
            .args(extra)
            .arg(test_file("c_path/start_on_fresh_stack.c"))
            .arg(obj)
            .arg("-o")
            .arg(&exe),
    );
    exe
}

#[test]
fn the_documented_c_steps_start_a_function_on_a_fresh_stack() {
    let dir = scratch("c_path");
    let exe = link(&dir, &assemble(&dir), &[]);
    let out = run(&mut run_target(&exe));
    assert!(out.status.success(), "{} failed with {}:\n{}", exe.display(), out.status, show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), EXPECTED, "{}", show(&out));
}

/// x86_64 only: a zeroed MXCSR and x87 control word unmask every
/// floating-point exception. On aarch64 a zeroed FPCR is the default state
/// (every trap disabled; qemu implements no trap enables at all), so
/// skipping step 6 loses only the caller's rounding and flush modes, which
/// `abi_probes.rs` checks through the Rust path.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_saving_the_fp_control_words_the_first_inexact_division_raises_sigfpe() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = scratch("c_path_skip_step_6");
    let exe = link(&dir, &assemble(&dir), &["-DSKIP_SAVE_FP_CONTROL"]);
    let out = run(&mut run_target(&exe));
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGFPE),
        "{} without step 6 ended with {}, not SIGFPE:\n{}",
        exe.display(),
        out.status,
        show(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "the child printed before its first division");
}
