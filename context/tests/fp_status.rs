//! A switch loads MXCSR or the x87 control word only when the control bits
//! differ: the status bits (sticky exception flags) are caller-saved and
//! left as they are. Loading a different MXCSR costs ~55 ns on Intel cores,
//! and two contexts whose float work differed always have different flags,
//! so a switch that loaded them would pay it on nearly every switch.
//!
//! aarch64: the status flags live in their own register, FPSR, which no
//! switch touches; FPCR is loaded only when it differs. The `aarch64`
//! module below checks both.

#[cfg(target_arch = "x86_64")]
use context::{Context, ContextHandle};
#[cfg(target_arch = "x86_64")]
use test_support::fp::{mxcsr, set_mxcsr};

#[cfg(target_arch = "x86_64")]
const DEFAULT_MXCSR: u32 = 0x1f80;
/// Precision (inexact) and zero-divide exception flags.
#[cfg(target_arch = "x86_64")]
const PE: u32 = 0x20;
#[cfg(target_arch = "x86_64")]
const ZE: u32 = 0x04;
#[cfg(target_arch = "x86_64")]
const STATUS: u32 = 0x3f;

/// Records the MXCSR it starts with, raises ZE, and returns.
#[cfg(target_arch = "x86_64")]
extern "C" fn child(seen: *mut u32) {
    // SAFETY: the test passes a live u32.
    unsafe { seen.write(mxcsr()) };
    set_mxcsr(mxcsr() | ZE);
}

#[cfg(target_arch = "x86_64")]
#[repr(align(16))]
struct Stack([u64; 4096]);

/// Valgrind's CPU keeps MXCSR at its default whatever is loaded: nothing
/// here can be observed under it.
#[cfg(target_arch = "x86_64")]
fn observable() -> bool {
    !context::valgrind::running_on_valgrind()
}

/// Prepares a child running `entry(&seen)` while MXCSR is `at_init`, then
/// switches into it with MXCSR `at_switch`; returns the MXCSR the child
/// started with, the host's after the child returned, and what the child's
/// context recorded at init. The caller's MXCSR is put back.
#[cfg(target_arch = "x86_64")]
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

#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
extern "C" fn child_changes_rounding(seen: *mut u32) {
    // SAFETY: the test passes a live u32.
    unsafe { seen.write(mxcsr()) };
    set_mxcsr(mxcsr() | 0x6000);
}

#[cfg(target_arch = "x86_64")]
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

#[cfg(target_arch = "aarch64")]
mod aarch64 {
    use context::{Context, ContextHandle, Val};
    use test_support::fp::{FPCR_FZ, FPCR_ROUND_DOWN, fpcr, fpsr, set_fpcr, set_fpsr};

    /// FPSR cumulative flags: invalid operation, divide by zero, inexact.
    const IOC: u64 = 1 << 0;
    const DZC: u64 = 1 << 1;
    const IXC: u64 = 1 << 4;

    #[repr(align(16))]
    struct Stack([u64; 4096]);

    /// What the child saw at entry: (FPCR, FPSR).
    #[repr(C)]
    #[derive(Default)]
    struct Seen {
        fpcr: u64,
        fpsr: u64,
    }

    /// Records FPCR and FPSR, then raises DZC and sets round-down.
    extern "C" fn child(seen: *mut Seen) {
        // SAFETY: the test passes a live Seen.
        unsafe { seen.write(Seen { fpcr: fpcr(), fpsr: fpsr() }) };
        set_fpsr(fpsr() | DZC);
        set_fpcr(fpcr() | FPCR_ROUND_DOWN);
    }

    /// Prepares the child while FPCR is `at_init`, switches into it with
    /// FPCR `at_switch` and FPSR `flags`; returns what the child saw, and
    /// FPCR and FPSR after it returned. Puts the caller's values back.
    fn round_trip(at_init: u64, at_switch: u64, flags: u64) -> (Seen, u64, u64) {
        let (before_cr, before_sr) = (fpcr(), fpsr());
        let mut stack = Box::new(Stack([0; 4096]));
        let mut parent = ContextHandle::new();
        let mut seen = Seen::default();
        set_fpcr(at_init);
        let child = ContextHandle::create_and_init(
            &mut stack.0,
            &mut parent,
            child as extern "C" fn(_),
            &[Val::CPtr(&mut seen as *mut Seen as *const _)],
        );
        set_fpcr(at_switch);
        set_fpsr(flags);
        let child = child.expect("init");
        assert_eq!(child.regs().fpcr, at_init, "init recorded the thread's FPCR");
        // SAFETY: heap-pinned contexts; the stack outlives the run.
        unsafe { Context::swap(&mut parent, &child) };
        let (after_cr, after_sr) = (fpcr(), fpsr());
        set_fpcr(before_cr);
        set_fpsr(before_sr);
        (seen, after_cr, after_sr)
    }

    #[test]
    fn switches_leave_fpsr_alone_in_both_directions() {
        for at_init in [0, FPCR_FZ] {
            let (seen, after_cr, after_sr) = round_trip(at_init, at_init, IOC | IXC);
            // The child started with the host's flags (nothing loaded FPSR) ...
            assert_eq!(seen.fpsr & (IOC | IXC | DZC), IOC | IXC, "FPSR at the child's entry: {:#x}", seen.fpsr);
            // ... and the host got the child's DZC back with the return.
            assert_eq!(after_sr & (IOC | IXC | DZC), IOC | IXC | DZC, "FPSR after the return: {after_sr:#x}");
            assert_eq!(after_cr, at_init, "the host's FPCR after the return");
        }
    }

    #[test]
    fn switches_load_an_fpcr_that_differs_in_both_directions() {
        // The child is made with flush-to-zero; the host runs with 0.
        let (seen, after_cr, _) = round_trip(FPCR_FZ, 0, 0);
        assert_eq!(seen.fpcr, FPCR_FZ, "the child's FPCR was not loaded");
        // The child set round-down on its own; the return restored the host's.
        assert_eq!(after_cr, 0, "the host's FPCR was not restored: {after_cr:#x}");
        // And the other way: the host has round-down, the child was made
        // with the default.
        let (seen, after_cr, _) = round_trip(0, FPCR_ROUND_DOWN, 0);
        assert_eq!(seen.fpcr, 0);
        assert_eq!(after_cr, FPCR_ROUND_DOWN);
    }
}
