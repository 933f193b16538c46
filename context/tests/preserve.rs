//! What a switch must preserve: rbx, rbp, r12–r15, rsp, the MXCSR control
//! bits and the x87 control word, per context and in both directions, and
//! the control state a fresh child starts with.
//!
//! An assembly probe (test-support's) loads a pattern into every
//! callee-saved register and the two control registers, swaps, and on
//! return stores what it finds.

mod common;

use common::TestStack;

use context::{Context, ContextHandle, Val};
use context_sys::ContextRegs;
use std::arch::global_asm;
use test_support::probe::{Pattern, probe_call};

global_asm!(
    // u64 ctx_test_fp_control(void): mxcsr in the low 32 bits, fpucw above.
    ".p2align 4",
    ".globl ctx_test_fp_control",
    ".type ctx_test_fp_control, @function",
    "ctx_test_fp_control:",
    ".cfi_startproc",
    "sub $8, %rsp",
    ".cfi_adjust_cfa_offset 8",
    "stmxcsr 0(%rsp)",
    "fnstcw 4(%rsp)",
    "movl 0(%rsp), %eax",
    "movzwl 4(%rsp), %ecx",
    "shl $32, %rcx",
    "or %rcx, %rax",
    "add $8, %rsp",
    ".cfi_adjust_cfa_offset -8",
    "ret",
    ".cfi_endproc",
    ".size ctx_test_fp_control, .-ctx_test_fp_control",
    // void ctx_test_set_fp_control(u32 mxcsr, u16 fpucw)
    ".p2align 4",
    ".globl ctx_test_set_fp_control",
    ".type ctx_test_set_fp_control, @function",
    "ctx_test_set_fp_control:",
    ".cfi_startproc",
    "sub $8, %rsp",
    ".cfi_adjust_cfa_offset 8",
    "movl %edi, 0(%rsp)",
    "movw %si, 4(%rsp)",
    "ldmxcsr 0(%rsp)",
    "fldcw 4(%rsp)",
    "add $8, %rsp",
    ".cfi_adjust_cfa_offset -8",
    "ret",
    ".cfi_endproc",
    ".size ctx_test_set_fp_control, .-ctx_test_set_fp_control",
    options(att_syntax),
);

unsafe extern "C" {
    fn ctx_test_fp_control() -> u64;
    fn ctx_test_set_fp_control(mxcsr: u32, fpucw: u16);
}

/// The probe around `context_sys::swap(from, to)`: loads `pattern` into
/// the callee-saved and control registers, swaps, and stores what it finds
/// on return into `found` (test-support's probe, shared with instance's
/// yield_preserve).
///
/// # Safety
///
/// Those of `context_sys::swap` for `from` and `to`, and `pattern` and
/// `found` valid until the swap returns.
unsafe fn ctx_test_probe_swap(
    from: *mut ContextRegs,
    to: *const ContextRegs,
    pattern: *const Pattern,
    found: *mut Pattern,
) {
    // SAFETY: swap takes two pointers and does not unwind; the caller
    // passes valid blocks and patterns that outlive the switch.
    unsafe { probe_call(context_sys::swap as *const (), from.cast(), to.cast(), pattern, found) }
}

/// The register block of a context: `Context` is `repr(C)` with the block
/// at offset 0 (see its "Layout").
fn regs_of(c: &mut ContextHandle) -> *mut ContextRegs {
    (&mut **c as *mut Context).cast()
}

/// The child: swaps back to its parent with its own pattern loaded, and
/// records what it finds when resumed.
extern "C" fn probe_child(me: *mut ContextRegs, parent: *const ContextRegs, pat: *const Pattern, found: *mut Pattern) {
    // SAFETY: the test passes live, pinned register blocks and patterns.
    unsafe { ctx_test_probe_swap(me, parent, pat, found) };
}

const MXCSR_CONTROL: u32 = 0xffc0;

fn pattern(seed: u64, mxcsr: u32, fpucw: u16) -> Pattern {
    let mut gp = [0u64; 6];
    for (i, g) in gp.iter_mut().enumerate() {
        *g = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32 * 9) ^ (i as u64 + 1);
    }
    Pattern { gp, mxcsr, fpucw, pad: 0 }
}

fn control(p: &Pattern) -> ([u64; 6], u32, u16) {
    (p.gp, p.mxcsr & MXCSR_CONTROL, p.fpucw)
}

fn round_trip(host1: Pattern, child: Pattern, host2: Pattern) {
    let mut stack = TestStack::new(8 * 1024);
    let mut parent = ContextHandle::new();
    let mut kid = ContextHandle::new();
    let mut found_child = Pattern::default();
    let (p_regs, k_regs) = (regs_of(&mut parent), regs_of(&mut kid));
    Context::init(
        stack.slice(),
        &mut parent,
        &mut kid,
        probe_child as *const () as usize,
        &[
            Val::CPtr(k_regs.cast()),
            Val::CPtr(p_regs.cast()),
            Val::CPtr((&child as *const Pattern).cast()),
            Val::CPtr((&mut found_child as *mut Pattern).cast()),
        ],
    )
    .expect("init");
    let mut found1 = Pattern::default();
    let mut found2 = Pattern::default();
    // SAFETY: pinned contexts, live stack; the probe restores our own
    // callee-saved registers and control state before returning.
    unsafe { ctx_test_probe_swap(p_regs, k_regs, &host1, &mut found1) };
    assert_eq!(control(&found1), control(&host1), "host's state after the child swapped back (child ran {child:x?})");
    // SAFETY: as above; this time the child returns through the start routine.
    unsafe { ctx_test_probe_swap(p_regs, k_regs, &host2, &mut found2) };
    assert_eq!(control(&found_child), control(&child), "child's state after the host swapped back in");
    assert_eq!(control(&found2), control(&host2), "host's state after the child returned");
}

#[test]
fn swap_preserves_callee_saved_registers_and_control_words_in_both_directions() {
    let default_mxcsr = 0x1f80;
    let default_cw = 0x037f;
    // Rounding modes, flush-to-zero, denormals-are-zero, unmasked
    // exceptions (no float math runs while they are loaded); x87 rounding
    // and precision control.
    let mut mxcsrs = vec![default_mxcsr, 0x7f80, 0x3f80, 0x9fc0, 0x1d80 | 0x3f];
    let mut cws = vec![default_cw, 0x0f7f, 0x027f, 0x077f];
    if context::valgrind::running_on_valgrind() {
        // Valgrind's CPU keeps MXCSR and the x87 control word at their
        // defaults whatever is loaded; only the registers can be checked.
        mxcsrs.truncate(1);
        cws.truncate(1);
    }
    let mut seed = 1;
    for &m1 in &mxcsrs {
        for &m2 in &mxcsrs {
            for (&c1, &c2) in cws.iter().zip(cws.iter().rev()) {
                seed += 1;
                round_trip(pattern(seed, m1, c1), pattern(seed * 31, m2, c2), pattern(seed * 77, m1 ^ 0x6000, c1));
                // Equal control words take the no-reload path.
                round_trip(pattern(seed, m1, c1), pattern(seed * 5, m1, c1), pattern(seed * 3, m1, c1));
            }
        }
    }
}

extern "C" fn report_fp_control() -> u64 {
    // SAFETY: reads MXCSR and the x87 control word only.
    unsafe { ctx_test_fp_control() }
}

#[test]
fn fresh_child_starts_with_the_control_words_of_the_thread_at_init() {
    if context::valgrind::running_on_valgrind() {
        eprintln!("skipped under valgrind: it does not model non-default MXCSR or x87 control words");
        return;
    }
    for (mxcsr, cw) in [(0x7f80u32, 0x0f7fu16), (0x9f80, 0x027f), (0x1f80, 0x037f)] {
        let mut stack = TestStack::new(4 * 1024);
        let mut parent = ContextHandle::new();
        let mut kid = ContextHandle::new();
        // SAFETY: only control bits change; nothing between here and the
        // reset below does floating-point arithmetic that depends on them.
        let before = unsafe { ctx_test_fp_control() };
        // SAFETY: as above.
        unsafe { ctx_test_set_fp_control(mxcsr, cw) };
        let r = Context::init(stack.slice(), &mut parent, &mut kid, report_fp_control as *const () as usize, &[]);
        // SAFETY: restores the values read above.
        unsafe { ctx_test_set_fp_control(before as u32, (before >> 32) as u16) };
        r.expect("init");
        // SAFETY: pinned contexts, live stack.
        unsafe { Context::swap(&mut parent, &kid) };
        let seen = kid.get_retval_gp(0);
        assert_eq!((seen as u32 & MXCSR_CONTROL, (seen >> 32) as u16), (mxcsr & MXCSR_CONTROL, cw));
        // SAFETY: reads only.
        let after = unsafe { ctx_test_fp_control() };
        assert_eq!(after, before, "the host's control words are back after the child returned");
    }
}
