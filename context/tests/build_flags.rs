//! A downstream crate that calls `Context::swap` must build and run under
//! the flags Rust accepts for x86_64 Linux. `-C panic=abort -C
//! force-unwind-tables=no` without debug info (a size-optimised release
//! profile, embedded users) gives functions no `.cfi_startproc`, and the
//! `.cfi_*` directives inside `swap_inline`'s `asm!` block would then fail
//! to assemble in the caller's crate ("this directive must appear between
//! .cfi_startproc and .cfi_endproc directives"); `Context::swap` therefore
//! inlines the switch only with `panic = "unwind"`. This test failed before
//! that (found by review).
//!
//! It builds a tiny crate that depends on this one by path, offline, with
//! its own target directory under the system temp dir (a full build of the
//! dependencies, some seconds): once per CI run, in the release tests, and
//! not under valgrind (the `valgrind` step runs these binaries too).
#![cfg(all(target_arch = "x86_64", not(debug_assertions)))]

use std::path::PathBuf;
use std::process::Command;

const MAIN: &str = r#"
use context::{Context, ContextHandle, Val};

#[repr(C, align(16))]
struct Stack([u64; 8192]);

static mut PARENT: *mut Context = core::ptr::null_mut();
static mut CHILD: *mut Context = core::ptr::null_mut();

extern "C" fn child(a: u64) -> u64 {
    // SAFETY: main keeps both contexts alive and pinned.
    unsafe { Context::swap(&mut *CHILD, &*PARENT) };
    a + 1
}

fn main() {
    let mut stack = Box::new(Stack([0; 8192]));
    let mut parent = ContextHandle::new();
    let mut c = ContextHandle::create_and_init(&mut stack.0, &mut parent, child as *const () as usize, &[Val::U64(41)]).unwrap();
    // SAFETY: heap-pinned contexts; the child only switches back.
    unsafe {
        PARENT = &mut *parent;
        CHILD = &mut *c;
        Context::swap(&mut parent, &c);
        Context::swap(&mut parent, &c);
    }
    assert_eq!(c.get_retval_gp(0), 42);
}
"#;

fn build_downstream(rustflags: &str, release: bool) -> (bool, String) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let tag = rustflags.replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let dir = std::env::temp_dir().join(format!("context-build-flags-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"downstream\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\ncontext = {{ package = \"stackful-context\", path = \"{}\" }}\n\n[workspace]\n",
        repo.join("context").display()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN).unwrap();
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&dir)
        .args(["run", "--offline", "-q"])
        .env("RUSTFLAGS", rustflags)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    if release {
        cmd.arg("--release");
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), log)
}

#[test]
fn a_caller_built_without_unwind_tables_still_compiles_and_switches() {
    if context::valgrind::running_on_valgrind() {
        return;
    }
    let (ok, log) = build_downstream("-C panic=abort -C force-unwind-tables=no -C debuginfo=0", true);
    let first_error: String = log.lines().filter(|l| l.starts_with("error")).take(2).collect::<Vec<_>>().join(" / ");
    assert!(
        ok,
        "a crate calling Context::swap failed to build or run with panic=abort and no unwind tables: {first_error}"
    );
}
