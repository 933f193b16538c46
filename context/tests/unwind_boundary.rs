//! No unwind leaves an entry function through `context_sys_start`: a panic
//! (or a forced unwind) that reaches it aborts the process with
//! [`context::UNWIND_ABORT_MESSAGE`] instead of continuing into the host
//! frames that switched into the child. A panic caught inside the entry
//! never gets there and is unaffected.
//!
//! The cases that must abort run in a child process (this test binary re-run
//! with the case in the environment); the parent checks how it died.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use context::valgrind::StackRegistration;
use context::{Context, ContextHandle, UNWIND_ABORT_MESSAGE};
use test_support::child::{ChildOutcome, child_case, run_child};

/// Selects the case a re-run of this binary executes.
const CASE_VAR: &str = "CONTEXT_UNWIND_CASE";
/// Printed by the host when its `catch_unwind` caught the child's panic:
/// the bug this file guards against.
const CAUGHT: &str = "host caught an unwind from the child";
/// Printed by the host when the child returned normally.
const RETURNED: &str = "child returned";

const STACK_WORDS: usize = 32 * 1024;

/// A 256 KiB child stack (unwinding and the panic hook need room).
#[repr(C, align(16))]
struct Stack([u64; STACK_WORDS]);

thread_local! {
    /// The parent the `pthread_exit` case's child would return to.
    static PARENT: Cell<*const Context> = const { Cell::new(std::ptr::null()) };
}

extern "C-unwind" fn panicking_entry() -> u64 {
    panic!("a panic inside a child context's entry function");
}

extern "C-unwind" fn self_catching_entry() -> u64 {
    catch_unwind(|| -> u64 { panic!("caught inside the entry") }).unwrap_or(42)
}

extern "C-unwind" fn pthread_exiting_entry() -> u64 {
    unsafe extern "C" {
        fn pthread_exit(retval: *mut core::ffi::c_void) -> !;
    }
    // SAFETY: pthread_exit takes any pointer as the thread's result; it
    // forcibly unwinds this thread, which is what the case checks.
    unsafe { pthread_exit(std::ptr::null_mut()) }
}

/// Runs `entry` in a fresh child whose parent is `parent`, entered by a
/// swap from `from`, inside the host's own `catch_unwind`. Prints what the
/// host saw and returns the child's rax if it returned.
fn host_runs(entry: usize, linked: bool) -> Option<u64> {
    let mut stack = Box::new(Stack([0; STACK_WORDS]));
    let _registration = StackRegistration::for_stack(&stack.0).unwrap();
    let mut parent = ContextHandle::new();
    let mut other = ContextHandle::new();
    let child = ContextHandle::create_and_init(&mut stack.0, &mut parent, entry, &[]).unwrap();
    PARENT.set(&*parent);
    // Entered from its parent the child is linked (its backtrace continues
    // into this function); entered from `other`, the parent's block was
    // never saved into and the child is unlinked.
    let from = if linked { &mut parent } else { &mut other };
    // SAFETY: the child was just prepared on `stack`; `stack`, `parent` and
    // `child` outlive the run (the child returns to `parent`, which for an
    // unlinked child only happens after the host was saved into `other`;
    // the returning case is run linked).
    let caught = catch_unwind(AssertUnwindSafe(|| unsafe { Context::swap(from, &child) }));
    if caught.is_err() {
        println!("{CAUGHT}");
        return None;
    }
    println!("{RETURNED}");
    Some(child.get_retval_gp(0))
}

/// The child side: runs the case named in the environment, if any.
#[test]
fn cases() {
    // A child that dies of SIGABRT writes no core file (child_case).
    let Some(case) = child_case(CASE_VAR) else { return };
    match case.as_str() {
        "panic_linked" => {
            host_runs(panicking_entry as *const () as usize, true);
        }
        "panic_unlinked" => {
            host_runs(panicking_entry as *const () as usize, false);
        }
        "pthread_exit" => {
            let t =
                std::thread::spawn(|| catch_unwind(|| host_runs(pthread_exiting_entry as *const () as usize, true)));
            let joined = t.join();
            println!("the thread ended: {joined:?}");
        }
        "self_catching" => {
            let ret = host_runs(self_catching_entry as *const () as usize, true);
            println!("value {ret:?}");
        }
        other => panic!("unknown case {other}"),
    }
}

/// Re-runs this test binary for `case` only; kills it after 60 s.
fn run_case(case: &str) -> ChildOutcome {
    run_child("cases", CASE_VAR, case)
}

/// Asserts that `case` died of SIGABRT with the message, after its panic
/// message (if `panic` is given) and without the host catching anything.
fn assert_aborts_with_message(case: &str, panic: Option<&str>) {
    let out = run_case(case);
    assert_eq!(out.status.signal(), Some(nix::libc::SIGABRT), "{case}: {out:#?}");
    assert!(out.stderr.contains(UNWIND_ABORT_MESSAGE), "{case}: {out:#?}");
    if let Some(panic) = panic {
        let at = out.stderr.find(panic).unwrap_or_else(|| panic!("{case}: no panic message: {out:#?}"));
        assert!(at < out.stderr.find(UNWIND_ABORT_MESSAGE).unwrap(), "{case}: {out:#?}");
    }
    assert!(!out.stdout.contains(CAUGHT), "{case}: the host caught the unwind: {out:#?}");
    assert!(!out.stdout.contains(RETURNED), "{case}: {out:#?}");
}

#[test]
fn a_panicking_entry_aborts_instead_of_unwinding_into_the_host() {
    assert_aborts_with_message("panic_linked", Some("a panic inside a child context's entry function"));
}

#[test]
fn a_panicking_entry_of_an_unlinked_child_aborts_with_the_message() {
    assert_aborts_with_message("panic_unlinked", Some("a panic inside a child context's entry function"));
}

#[test]
fn pthread_exit_inside_a_child_aborts_instead_of_unwinding_into_the_host() {
    assert_aborts_with_message("pthread_exit", None);
}

#[test]
fn an_entry_that_catches_its_own_panic_returns_normally() {
    let out = run_case("self_catching");
    assert_eq!(out.status.code(), Some(0), "{out:#?}");
    assert!(out.stdout.contains(RETURNED) && out.stdout.contains("value Some(42)"), "{out:#?}");
    assert!(!out.stderr.contains(UNWIND_ABORT_MESSAGE), "{out:#?}");
}

#[test]
fn the_abort_message_is_one_line_naming_the_routine() {
    assert!(UNWIND_ABORT_MESSAGE.starts_with("context-sys: "));
    assert!(UNWIND_ABORT_MESSAGE.contains("context_sys_start"));
    assert!(UNWIND_ABORT_MESSAGE.ends_with('\n') && UNWIND_ABORT_MESSAGE.matches('\n').count() == 1);
}
