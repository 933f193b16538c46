//! A switch loads MXCSR or the x87 control word only when the control bits
//! differ: the status bits (sticky exception flags) are caller-saved and
//! left as they are. Loading a different MXCSR costs ~55 ns on Intel cores,
//! and two contexts whose float work differed always have different flags,
//! so a switch that loaded them would pay it on nearly every switch.
#![cfg(target_arch = "x86_64")]

use context::{Context, ContextHandle};
use test_support::fp::{mxcsr, set_mxcsr};

const DEFAULT_MXCSR: u32 = 0x1f80;
/// Precision (inexact) and zero-divide exception flags.
const PE: u32 = 0x20;
const ZE: u32 = 0x04;
const STATUS: u32 = 0x3f;

/// Records the MXCSR it starts with, raises ZE, and returns.
extern "C" fn child(seen: *mut u32) {
    // SAFETY: the test passes a live u32.
    unsafe { seen.write(mxcsr()) };
    set_mxcsr(mxcsr() | ZE);
}

#[repr(align(16))]
struct Stack([u64; 4096]);

/// Valgrind's CPU keeps MXCSR at its default whatever is loaded: nothing
/// here can be observed under it.
fn observable() -> bool {
    !context::valgrind::running_on_valgrind()
}

/// Prepares a child running `entry(&seen)` while MXCSR is `at_init`, then
/// switches into it with MXCSR `at_switch`; returns the MXCSR the child
/// started with, the host's after the child returned, and what the child's
/// context recorded at init. The caller's MXCSR is put back.
fn round_trip(entry: extern "C" fn(*mut u32), at_init: u32, at_switch: u32) -> (u32, u32, u32) {
    let before = mxcsr();
    set_mxcsr(at_init);
    let mut stack = Box::new(Stack([0; 4096]));
    let mut parent = ContextHandle::new();
    let mut seen = 0u32;
    let child = ContextHandle::create_and_init(
        &mut stack.0,
        &mut parent,
        entry as *const () as usize,
        &[context::Val::CPtr(&mut seen as *mut u32 as *const _)],
    )
    .unwrap();
    let recorded = child.regs().mxcsr;
    set_mxcsr(at_switch);
    // SAFETY: heap-pinned contexts, the stack outlives the run.
    unsafe { Context::swap(&mut parent, &child) };
    let after = mxcsr();
    set_mxcsr(before);
    (seen, after, recorded)
}

#[test]
fn switches_leave_status_flags_alone_when_control_bits_match() {
    if !observable() {
        return;
    }
    // The child is prepared with no status flags, and the host has an
    // inexact flag when it switches.
    let (seen, after, recorded) = round_trip(child, DEFAULT_MXCSR, DEFAULT_MXCSR | PE);
    assert_eq!(recorded & STATUS, 0);
    // Same control bits: swap did not load the child's MXCSR, so the child
    // started with the host's flag ...
    assert_eq!(seen & !STATUS, DEFAULT_MXCSR, "control bits {seen:#x}");
    assert_ne!(seen & PE, 0, "swap loaded the child's status bits: {seen:#x}");
    // ... and the start routine's return did not load the parent's: the
    // child's ZE came back with it.
    assert_ne!(after & ZE, 0, "the return loaded the parent's status bits: {after:#x}");
    assert_eq!(after & !STATUS, DEFAULT_MXCSR);
}

/// Sets round-toward-zero (control bits 13-14) and reports what it had.
extern "C" fn child_changes_rounding(seen: *mut u32) {
    // SAFETY: the test passes a live u32.
    unsafe { seen.write(mxcsr()) };
    set_mxcsr(mxcsr() | 0x6000);
}

#[test]
fn switches_load_control_bits_that_differ_in_both_directions() {
    if !observable() {
        return;
    }
    // The child is made with flush-to-zero (bit 15); the host then runs
    // with the default.
    let (seen, after, _) = round_trip(child_changes_rounding, DEFAULT_MXCSR | 0x8000, DEFAULT_MXCSR | PE);
    assert_eq!(seen & !STATUS, DEFAULT_MXCSR | 0x8000, "the child's control bits were not loaded: {seen:#x}");
    assert_eq!(after & !STATUS, DEFAULT_MXCSR, "the host's control bits were not restored: {after:#x}");
}
