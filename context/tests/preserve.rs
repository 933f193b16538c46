//! What a switch must preserve: rbx, rbp, r12–r15, rsp, the MXCSR control
//! bits and the x87 control word (aarch64: x19–x28, fp, sp, d8–d15 and
//! FPCR), per context and in both directions, and the control state a
//! fresh child starts with.
//!
//! An assembly probe (test-support's) loads a pattern into every
//! callee-saved register and the control registers, swaps, and on return
//! stores what it finds.

mod common;

use common::TestStack;

use context::{Context, ContextHandle, Val};
use context_sys::ContextRegs;
use test_support::probe::{Pattern, probe_call};

/// The FP control state of each architecture: the values the tests load,
/// patterns holding them, and reading and writing the thread's own.
#[cfg(target_arch = "x86_64")]
mod ctl {
    use std::arch::global_asm;
    use test_support::probe::Pattern;

    /// MXCSR and the x87 control word.
    pub type Ctl = (u32, u16);

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

    const MXCSR_CONTROL: u32 = 0xffc0;

    /// Rounding modes, flush-to-zero, denormals-are-zero, unmasked
    /// exceptions (no float math runs while they are loaded); x87 rounding
    /// and precision control. Under valgrind only the defaults: its CPU
    /// keeps MXCSR and the x87 control word at their defaults whatever is
    /// loaded, so only the registers can be checked there.
    pub fn values() -> Vec<Ctl> {
        let mxcsrs = [0x1f80, 0x7f80, 0x3f80, 0x9fc0, 0x1d80 | 0x3f];
        let cws = [0x037f, 0x0f7f, 0x027f, 0x077f];
        if context::valgrind::running_on_valgrind() {
            return vec![(mxcsrs[0], cws[0])];
        }
        mxcsrs
            .iter()
            .zip(cws.iter().cycle())
            .map(|(&m, &c)| (m, c))
            .chain([(0x7f80, 0x037f), (0x1f80, 0x0f7f)])
            .collect()
    }

    /// Values for a fresh child to start with.
    pub fn start_values() -> Vec<Ctl> {
        vec![(0x7f80, 0x0f7f), (0x9f80, 0x027f), (0x1f80, 0x037f)]
    }

    /// Another control state than `c` (a different rounding mode).
    pub fn vary(c: Ctl) -> Ctl {
        (c.0 ^ 0x6000, c.1)
    }

    pub fn pattern(gp: [u64; 11], c: Ctl) -> Pattern {
        let mut six = [0; 6];
        six.copy_from_slice(&gp[..6]);
        Pattern { gp: six, mxcsr: c.0, fpucw: c.1, pad: 0 }
    }

    /// What a switch must keep of a pattern: the registers, the MXCSR
    /// control bits (not its status flags) and the x87 control word.
    pub fn kept(p: &Pattern) -> ([u64; 6], u32, u16) {
        (p.gp, p.mxcsr & MXCSR_CONTROL, p.fpucw)
    }

    /// The thread's control state, as a word (what a child returns).
    pub fn current_word() -> u64 {
        // SAFETY: reads MXCSR and the x87 control word only.
        unsafe { ctx_test_fp_control() }
    }

    /// The control bits of a word [`current_word`] returned.
    pub fn control_of_word(w: u64) -> Ctl {
        (w as u32 & MXCSR_CONTROL, (w >> 32) as u16)
    }

    /// The control bits of `c`, as [`control_of_word`] gives them.
    pub fn control(c: Ctl) -> Ctl {
        (c.0 & MXCSR_CONTROL, c.1)
    }

    /// Loads the control state of a word [`current_word`] returned.
    ///
    /// # Safety
    ///
    /// Only control bits change: the caller does no floating-point math
    /// that depends on them until it puts the old ones back.
    pub unsafe fn set_word(w: u64) {
        // SAFETY: forwarded; the values come from MXCSR and the x87 CW.
        unsafe { ctx_test_set_fp_control(w as u32, (w >> 32) as u16) }
    }

    /// The word of `c`.
    pub fn word(c: Ctl) -> u64 {
        u64::from(c.0) | u64::from(c.1) << 32
    }
}

#[cfg(target_arch = "aarch64")]
mod ctl {
    use test_support::fp::{FPCR_FZ, FPCR_ROUND_DOWN, fpcr, set_fpcr};
    use test_support::probe::Pattern;

    /// FPCR.
    pub type Ctl = u64;

    /// FPCR.DN (default NaN) and AHP (alternative half precision).
    const DN: u64 = 1 << 25;
    const AHP: u64 = 1 << 26;
    /// FPCR.RMode = round towards plus infinity (RP).
    const ROUND_UP: u64 = 0b01 << 22;

    /// Rounding modes, flush-to-zero, default NaN, alternative half
    /// precision (no float math runs while they are loaded).
    pub fn values() -> Vec<Ctl> {
        vec![0, FPCR_ROUND_DOWN, FPCR_FZ, ROUND_UP | FPCR_FZ | DN, AHP | 0b11 << 22]
    }

    /// Values for a fresh child to start with.
    pub fn start_values() -> Vec<Ctl> {
        vec![FPCR_ROUND_DOWN, FPCR_FZ | DN, 0]
    }

    /// Another control state than `c` (a different rounding mode).
    pub fn vary(c: Ctl) -> Ctl {
        c ^ ROUND_UP
    }

    pub fn pattern(gp: [u64; 11], c: Ctl) -> Pattern {
        let mut fp = [0; 8];
        for (i, d) in fp.iter_mut().enumerate() {
            *d = gp[i].rotate_right(17) ^ 0x7ff0_0000_0000_0001;
        }
        Pattern { gp, fp, fpcr: c }
    }

    /// What a switch must keep of a pattern: all of it (FPSR, the status
    /// register, is not in it).
    pub fn kept(p: &Pattern) -> Pattern {
        *p
    }

    /// The thread's control state, as a word (what a child returns).
    pub fn current_word() -> u64 {
        fpcr()
    }

    pub fn control_of_word(w: u64) -> Ctl {
        w
    }

    pub fn control(c: Ctl) -> Ctl {
        c
    }

    /// Loads the control state of a word [`current_word`] returned.
    ///
    /// # Safety
    ///
    /// No duty beyond the x86_64 one's (kept for the same signature).
    pub unsafe fn set_word(w: u64) {
        set_fpcr(w)
    }

    pub fn word(c: Ctl) -> u64 {
        c
    }
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

fn pattern(seed: u64, c: ctl::Ctl) -> Pattern {
    let mut gp = [0u64; 11];
    for (i, g) in gp.iter_mut().enumerate() {
        *g = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32 * 9) ^ (i as u64 + 1);
    }
    ctl::pattern(gp, c)
}

use ctl::kept as control;

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
    let values = ctl::values();
    let mut seed = 1;
    for &a in &values {
        for &b in &values {
            seed += 1;
            round_trip(pattern(seed, a), pattern(seed * 31, b), pattern(seed * 77, ctl::vary(a)));
            // Equal control words take the no-reload path.
            round_trip(pattern(seed, a), pattern(seed * 5, a), pattern(seed * 3, a));
        }
    }
}

extern "C" fn report_fp_control() -> u64 {
    ctl::current_word()
}

#[test]
fn fresh_child_starts_with_the_control_words_of_the_thread_at_init() {
    if context::valgrind::running_on_valgrind() {
        eprintln!("skipped under valgrind: it does not model non-default MXCSR or x87 control words");
        return;
    }
    for c in ctl::start_values() {
        let mut stack = TestStack::new(4 * 1024);
        let mut parent = ContextHandle::new();
        let mut kid = ContextHandle::new();
        let before = ctl::current_word();
        // SAFETY: only control bits change; nothing between here and the
        // reset below does floating-point arithmetic that depends on them.
        unsafe { ctl::set_word(ctl::word(c)) };
        let r = Context::init(stack.slice(), &mut parent, &mut kid, report_fp_control as *const () as usize, &[]);
        // SAFETY: restores the values read above.
        unsafe { ctl::set_word(before) };
        r.expect("init");
        // SAFETY: pinned contexts, live stack.
        unsafe { Context::swap(&mut parent, &kid) };
        let seen = kid.get_retval_gp(0);
        assert_eq!(ctl::control_of_word(seen), ctl::control(c));
        assert_eq!(ctl::current_word(), before, "the host's control words are back after the child returned");
    }
}
