//! Backtraces taken inside a child context: linked ones continue into the
//! host frames that switched into the child; unlinked ones (the parent's
//! block never saved into) end cleanly at `context_sys_start`.
//!
//! Each test runs a child on its own heap stack, registered with valgrind
//! so that `cargo xtask valgrind` can run this file under memcheck.
#![allow(unsafe_code)]

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::hint::black_box;

use context::valgrind::StackRegistration;
use context::{Context, ContextHandle};
use test_support::child::run_child_with;

const STACK_WORDS: usize = 32 * 1024;

/// A 256 KiB stack for one child (backtrace symbolisation is deep).
#[repr(C, align(16))]
struct Stack([u64; STACK_WORDS]);

impl Stack {
    fn new() -> Box<Stack> {
        Box::new(Stack([0; STACK_WORDS]))
    }
}

thread_local! {
    /// (the running child, where it goes when done) for the child entries.
    static SWITCH: Cell<(*mut Context, *const Context)> =
        const { Cell::new((std::ptr::null_mut(), std::ptr::null())) };
    /// A context the child continues in via `set`, for the "entered by set" case.
    static NEXT: Cell<*const Context> = const { Cell::new(std::ptr::null()) };
    /// The backtrace the child captured, as printed.
    static CAPTURED: RefCell<String> = const { RefCell::new(String::new()) };
    /// Set by a child that zeroes its parent's saved rsp for the capture.
    static ZERO_PARENT: Cell<*mut Context> = const { Cell::new(std::ptr::null_mut()) };
}

/// The symbol of every frame of a printed `Backtrace`, outermost last.
fn frame_symbols(printed: &str) -> Vec<String> {
    printed
        .lines()
        .filter_map(|line| {
            let (index, symbol) = line.trim_start().split_once(": ")?;
            index.parse::<usize>().ok().map(|_| symbol.to_string())
        })
        .collect()
}

/// Position of the first frame of the function `name`. Debug builds print
/// full paths (`backtrace::host_runs_linked_child`), release builds with
/// line tables only print the bare name.
fn position(frames: &[String], name: &str) -> Option<usize> {
    let path_end = format!("::{name}");
    frames.iter().position(|f| f == name || f.ends_with(&path_end))
}

#[inline(never)]
fn child_captures_backtrace() {
    let printed = Backtrace::force_capture().to_string();
    CAPTURED.with(|c| *c.borrow_mut() = black_box(printed));
}

/// Captures with the parent's saved stack pointer zeroed, then puts it back.
#[inline(never)]
fn child_captures_with_parent_cleared() {
    let parent = ZERO_PARENT.get();
    // SAFETY: `Context` is `repr(C)` with its register block first (see its
    // "Layout" docs), so its address is that of a `ContextRegs`; the parent
    // is suspended, its block is not being read or written by anything else.
    let regs = unsafe { &mut *parent.cast::<context_sys::ContextRegs>() };
    #[cfg(target_arch = "x86_64")]
    let sp = &mut regs.rsp;
    #[cfg(target_arch = "aarch64")]
    let sp = &mut regs.sp;
    let saved = *sp;
    *sp = 0;
    child_captures_backtrace();
    *sp = saved;
}

extern "C" fn child_entry_returns() -> u64 {
    child_captures_backtrace();
    black_box(7)
}

extern "C" fn child_entry_clears_parent() -> u64 {
    child_captures_with_parent_cleared();
    black_box(7)
}

/// Captures, then switches to the context in `SWITCH` instead of returning
/// (its parent cannot be returned to).
extern "C" fn child_entry_switches_home() {
    child_captures_backtrace();
    let (me, home) = SWITCH.get();
    // SAFETY: both contexts are heap-pinned by the host function, which is
    // suspended in its swap to us and outlives this run.
    unsafe { Context::swap(&mut *me, &*home) };
    unreachable!("nothing resumes this child");
}

/// Continues in `NEXT` without saving (abandons this small launcher stack).
extern "C" fn launcher_sets_next() {
    let next = NEXT.get();
    // SAFETY: `next` is a prepared child whose stack and contexts the host
    // function keeps alive.
    unsafe { Context::set(&*next) }
}

#[inline(never)]
fn host_runs_linked_child(entry: extern "C" fn() -> u64) -> u64 {
    let mut stack = Stack::new();
    let _registration = StackRegistration::for_stack(&stack.0).unwrap();
    let mut parent = ContextHandle::new();
    let child = ContextHandle::create_and_init(&mut stack.0, &mut parent, entry as usize, &[]).unwrap();
    ZERO_PARENT.set(&mut *parent);
    // SAFETY: both contexts are heap-pinned and the stack outlives the run,
    // which ends by returning into `parent`.
    unsafe { Context::swap(&mut parent, &child) };
    black_box(child.get_retval_gp(0))
}

#[inline(never)]
fn host_runs_child_with_unsaved_parent() {
    let mut stack = Stack::new();
    let _registration = StackRegistration::for_stack(&stack.0).unwrap();
    let mut never_saved = ContextHandle::new();
    let mut home = ContextHandle::new();
    let mut child = ContextHandle::create_and_init(
        &mut stack.0,
        &mut never_saved,
        child_entry_switches_home as extern "C" fn() as usize,
        &[],
    )
    .unwrap();
    SWITCH.set((&mut *child, &*home));
    // SAFETY: the child is entered from `home`, not from its parent, and
    // comes back by swapping to `home`; everything lives until then.
    unsafe { Context::swap(&mut home, &child) };
    black_box(&stack);
}

#[inline(never)]
fn host_sets_child_with_unsaved_parent() {
    let mut stack = Stack::new();
    let mut launcher_stack = Stack::new();
    let _registration = StackRegistration::for_stack(&stack.0).unwrap();
    let _launcher_registration = StackRegistration::for_stack(&launcher_stack.0).unwrap();
    let mut never_saved = ContextHandle::new();
    let mut home = ContextHandle::new();
    let mut child = ContextHandle::create_and_init(
        &mut stack.0,
        &mut never_saved,
        child_entry_switches_home as extern "C" fn() as usize,
        &[],
    )
    .unwrap();
    let launcher = ContextHandle::create_and_init(
        &mut launcher_stack.0,
        &mut home,
        launcher_sets_next as extern "C" fn() as usize,
        &[],
    )
    .unwrap();
    SWITCH.set((&mut *child, &*home));
    NEXT.set(&*child);
    // SAFETY: the launcher `set`s into the child, which swaps back to
    // `home`; all contexts and stacks live until then.
    unsafe { Context::swap(&mut home, &launcher) };
    black_box((&stack, &launcher_stack));
}

fn captured() -> Vec<String> {
    CAPTURED.with(|c| frame_symbols(&c.borrow()))
}

#[test]
fn backtrace_in_child_continues_into_the_host_function() {
    assert_eq!(host_runs_linked_child(child_entry_returns), 7);
    let frames = captured();
    let capture = position(&frames, "child_captures_backtrace");
    let entry = position(&frames, "child_entry_returns");
    let start = position(&frames, "context_sys_start");
    let host = position(&frames, "host_runs_linked_child");
    let test = position(&frames, "backtrace_in_child_continues_into_the_host_function");
    assert!(
        matches!((capture, entry, start, host, test), (Some(a), Some(b), Some(c), Some(d), Some(e)) if a < b && b < c && c < d && d < e),
        "child frames, then context_sys_start, then the host function and its caller; got {frames:#?}"
    );
}

/// What an unlinked backtrace must look like: the child's frames, then
/// `context_sys_start` as the very last frame.
fn assert_ends_at_start(frames: &[String], entry: &str) {
    let capture = position(frames, "child_captures_backtrace");
    let entry_at = position(frames, entry);
    let start = position(frames, "context_sys_start");
    assert!(
        matches!((capture, entry_at, start), (Some(a), Some(b), Some(c)) if a < b && b < c && c + 1 == frames.len()),
        "child frames, then context_sys_start as the last frame; got {frames:#?}"
    );
}

#[test]
fn backtrace_of_child_whose_parent_was_never_saved_ends_at_start() {
    host_runs_child_with_unsaved_parent();
    let frames = captured();
    assert_ends_at_start(&frames, "child_entry_switches_home");
    assert_eq!(position(&frames, "host_runs_child_with_unsaved_parent"), None);
}

#[test]
fn backtrace_of_child_entered_by_set_ends_at_start() {
    host_sets_child_with_unsaved_parent();
    let frames = captured();
    assert_ends_at_start(&frames, "child_entry_switches_home");
    assert_eq!(position(&frames, "host_sets_child_with_unsaved_parent"), None);
    assert_eq!(position(&frames, "launcher_sets_next"), None);
}

#[test]
fn backtrace_after_parent_block_is_cleared_ends_at_start() {
    // The child starts linked, then its parent's saved rsp reads 0 while
    // the backtrace is taken: the unwinder must stop, not read address 0.
    assert_eq!(host_runs_linked_child(child_entry_clears_parent), 7);
    let frames = captured();
    let cleared = position(&frames, "child_captures_with_parent_cleared");
    let start = position(&frames, "context_sys_start");
    assert!(
        matches!((cleared, start), (Some(a), Some(b)) if a < b && b + 1 == frames.len()),
        "child frames, then context_sys_start as the last frame; got {frames:#?}"
    );
}

/// Selects the child-process role of `panic_in_child_prints_a_backtrace_through_the_host`.
const PANIC_CASE: &str = "CONTEXT_BACKTRACE_TEST_PANIC_CASE";

#[inline(never)]
fn child_panics() {
    panic!("deliberate panic inside a child context");
}

extern "C" fn child_entry_catches_panic() -> u64 {
    // A panic must never unwind into context_sys_start: catch it here.
    let caught = std::panic::catch_unwind(child_panics).is_err();
    u64::from(black_box(caught))
}

#[test]
fn panic_in_child_prints_a_backtrace_through_the_host() {
    if std::env::var_os(PANIC_CASE).is_some() {
        // Child process: the default panic hook prints the backtrace.
        assert_eq!(host_runs_linked_child(child_entry_catches_panic), 1);
        return;
    }
    let out = run_child_with("panic_in_child_prints_a_backtrace_through_the_host", PANIC_CASE, "1", |child| {
        child.env("RUST_BACKTRACE", "1");
    });
    let stderr = &out.stderr;
    assert!(out.status.success(), "the child process failed: {}\n{stderr}", out.status);
    assert!(stderr.contains("deliberate panic inside a child context"), "no panic message in:\n{stderr}");
    let trace =
        stderr.split_once("stack backtrace:").map(|(_, t)| t).unwrap_or_else(|| panic!("no backtrace in:\n{stderr}"));
    let frames = frame_symbols(trace);
    let panics = position(&frames, "child_panics");
    let start = position(&frames, "context_sys_start");
    let host = position(&frames, "host_runs_linked_child");
    assert!(
        matches!((panics, start, host), (Some(a), Some(b), Some(c)) if a < b && b < c),
        "panicking child frame, then context_sys_start, then the host; got {frames:#?}"
    );
}
