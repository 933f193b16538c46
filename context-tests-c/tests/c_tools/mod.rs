//! Running the system's C toolchain from a test: the compilers (`cc`,
//! `c++`, or `$CC`, `$CXX`), `nm`, the public headers' directories, and a
//! scratch directory. A tool that cannot be started fails the test with a
//! message that names it: these tests never pass without having compiled.
#![allow(dead_code)] // each test binary uses its own subset

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's folder of `crate_dir`, e.g. `context-sys`.
pub fn crate_dir(crate_dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir)
}

/// `context-sys/include`, holding `context_sys.h`.
pub fn context_sys_include() -> PathBuf {
    crate_dir("context-sys").join("include")
}

/// `instance/include`, holding `instance.h`.
pub fn instance_include() -> PathBuf {
    crate_dir("instance").join("include")
}

/// A file of this crate's `tests/` folder.
pub fn test_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(path)
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_tools").join(name);
    // A leftover from an earlier run may or may not be there.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The C compiler for the architecture these tests run on:
/// `$CC_<target>` (how cargo's cross set-up names the target's compiler,
/// e.g. `CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc` when the tests
/// run under qemu-user), else `$CC`, else `cc`.
pub fn cc() -> Command {
    tool("CC", "cc")
}

/// The C++ compiler, chosen like [`cc`]: `$CXX_<target>`, `$CXX`, `c++`.
pub fn cxx() -> Command {
    tool("CXX", "c++")
}

/// The Rust target these tests were built for, as cargo's per-target
/// variables spell it (`aarch64_unknown_linux_gnu`).
fn target_suffix() -> String {
    format!("{}_unknown_linux_gnu", std::env::consts::ARCH)
}

fn tool(var: &str, default: &str) -> Command {
    let program = std::env::var_os(format!("{var}_{}", target_suffix()))
        .or_else(|| std::env::var_os(var))
        .unwrap_or_else(|| OsString::from(default));
    Command::new(program)
}

/// A command that runs `exe`, a program built with [`cc`] for this
/// architecture: directly, or through cargo's runner for the target
/// (`$CARGO_TARGET_<TARGET>_RUNNER`, e.g. `qemu-aarch64 -L
/// /usr/aarch64-linux-gnu`) when one is set, as it must be when these tests
/// themselves run under qemu-user (nothing else can start the program).
pub fn run_target(exe: &Path) -> Command {
    test_support::child::self_command(exe)
}

/// Runs `cmd` and returns what it did, failing the test if it could not be
/// started at all.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("could not run {cmd:?}: {e} (these tests need a C and a C++ compiler and binutils; set CC or CXX to choose the compilers)")
    })
}

/// Runs `cmd` and fails the test, showing its output, unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed with {}:\n{}", out.status, show(&out));
    out
}

/// stdout and stderr of `out`, for a failure message.
pub fn show(out: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
