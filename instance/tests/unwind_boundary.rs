//! A raw entry point that unwinds (an `extern "C-unwind"` function that
//! panics) aborts the process with [`context::UNWIND_ABORT_MESSAGE`]: the
//! panic never reaches the host's `catch_unwind`, so no host code runs while
//! the instance still counts as running. A closure guest's panic is caught
//! on the guest's stack and returned as `Error::Panic`, as before.
//!
//! The aborting cases run in a child process (this test binary re-run with
//! the case in the environment); the parent checks how it died.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{ChildOutcome, run_child};
use context::{UNWIND_ABORT_MESSAGE, UntypedRetVal};
use instance::{Error, Instance, Outcome, State, yield_u64};

const STACK: usize = 256 * 1024;
/// Printed by the host if its `catch_unwind` caught the guest's panic: the
/// bug this file guards against.
const CAUGHT: &str = "host caught the guest's panic";
const PANIC: &str = "a panic inside a raw entry point";

extern "C-unwind" fn panicking_entry() -> u64 {
    panic!("{PANIC}");
}

extern "C-unwind" fn panicking_after_a_yield() -> u64 {
    let resumed = yield_u64(1).unwrap();
    panic!("{PANIC} (resumed with {resumed})");
}

/// Runs `f` inside the host's own `catch_unwind`; if it catches anything,
/// reports what the instance looks like then.
fn host_catches(inst: &mut Instance, f: impl FnOnce(&mut Instance)) {
    if catch_unwind(AssertUnwindSafe(|| f(&mut *inst))).is_err() {
        println!("{CAUGHT}: in_guest {} state {:?}", instance::in_guest(), inst.state());
    }
}

/// The child side: runs the case named in the environment, if any.
#[test]
fn child() {
    common::deadline();
    let Some(case) = common::child_case() else { return };
    let mut inst = Instance::new(STACK).unwrap();
    match case.as_str() {
        "run" => host_catches(&mut inst, |inst| {
            // SAFETY: an extern "C-unwind" fn() -> u64; that it unwinds is
            // what this case checks (the process must abort).
            let _ = unsafe { inst.run(panicking_entry as *const () as usize, &[]) };
        }),
        "start" => host_catches(&mut inst, |inst| {
            // SAFETY: as in "run".
            let _ = unsafe { inst.start(panicking_entry as *const () as usize, &[]) };
        }),
        "resume" => host_catches(&mut inst, |inst| {
            // SAFETY: as in "run"; the entry yields a u64 first.
            let first = unsafe { inst.start(panicking_after_a_yield as *const () as usize, &[]) }.unwrap();
            assert!(matches!(first, Outcome::Yielded(_)));
            let _ = inst.resume::<UntypedRetVal, u64>(7);
        }),
        other => panic!("unknown case {other}"),
    }
    println!("the host went on");
}

fn assert_aborts_with_message(case: &str, panic: &str) -> ChildOutcome {
    let out = run_child("child", case);
    assert_eq!(out.signal(), Some(libc::SIGABRT), "case {case}: {out:#?}");
    let at_panic = out.stderr.find(panic).unwrap_or_else(|| panic!("case {case}: no panic message: {out:#?}"));
    let at_abort =
        out.stderr.find(UNWIND_ABORT_MESSAGE).unwrap_or_else(|| panic!("case {case}: no abort message: {out:#?}"));
    assert!(at_panic < at_abort, "case {case}: {out:#?}");
    assert!(!out.stdout.contains(CAUGHT), "case {case}: {out:#?}");
    assert!(!out.stdout.contains("the host went on"), "case {case}: {out:#?}");
    out
}

#[test]
fn a_panicking_raw_entry_aborts_instead_of_unwinding_into_run() {
    assert_aborts_with_message("run", PANIC);
}

#[test]
fn a_panicking_raw_entry_aborts_instead_of_unwinding_into_start() {
    assert_aborts_with_message("start", PANIC);
}

#[test]
fn a_raw_entry_that_panics_after_a_yield_aborts_instead_of_unwinding_into_resume() {
    assert_aborts_with_message("resume", &format!("{PANIC} (resumed with 7)"));
}

#[test]
fn a_panicking_closure_is_still_returned_as_a_panic_error() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let err = inst.run_closure(|| -> u64 { panic!("a closure guest's panic") }).unwrap_err();
    let Error::Panic(panic) = err else { panic!("not a panic: {err:?}") };
    assert_eq!(panic.payload().downcast_ref::<&str>(), Some(&"a closure guest's panic"));
    assert_eq!(inst.state(), State::Panicked);
    assert!(!instance::in_guest());
    inst.reset().unwrap();
    assert_eq!(inst.run_closure(|| 5).unwrap(), 5);
    // A raw entry that does not unwind still runs on the same instance.
    extern "C-unwind" fn seven() -> u64 {
        7
    }
    // SAFETY: an extern "C-unwind" fn() -> u64 that does not unwind.
    let ret = unsafe { inst.run(seven as *const () as usize, &[]) }.unwrap();
    assert_eq!(ret.as_u64(), 7);
}
