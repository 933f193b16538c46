//! CPU state a guest may leave behind that host code must not inherit: the
//! EFLAGS bits a guest can set from user mode (alignment check, direction,
//! trap) and the floating-point control words (MXCSR, x87 control word).
//!
//! A leaf: it knows nothing of runs or signals. This module needs `unsafe`
//! for the `asm!` that reads and writes those registers.
#![allow(unsafe_code)]

/// EFLAGS.TF: single-step trap.
pub(crate) const EFLAGS_TF: u64 = 1 << 8;
/// EFLAGS.DF: string instructions count down; the ABI wants it clear at
/// every call and return.
pub(crate) const EFLAGS_DF: u64 = 1 << 10;
/// EFLAGS.AC: with CR0.AM (set by Linux), misaligned user accesses raise
/// SIGBUS.
pub(crate) const EFLAGS_AC: u64 = 1 << 18;

/// Host, right after a guest switched back to it (returned, yielded, or
/// left through a handler): clears the flags a guest may leave set that
/// would break the host's code, the alignment check (AC, a SIGBUS at the
/// host's first misaligned access) and the direction flag (DF, which the
/// ABI wants clear, and which makes `memcpy` run backwards). Reading the
/// flags is cheap; `popfq` is not, so they are written only when one is
/// set. (After a fault or kill the handler has already cleared them in
/// the interrupted state; a guest that returns or yields does not pass
/// through the kernel.)
#[inline(always)]
pub(crate) fn clear_guest_flags() {
    let flags: u64;
    // SAFETY: pushes the flags on the stack and pops them into a register:
    // no memory but the stack word, no flag changed.
    unsafe { core::arch::asm!("pushfq", "pop {}", out(reg) flags, options(preserves_flags)) };
    if flags & (EFLAGS_AC | EFLAGS_DF) != 0 {
        // SAFETY: writes the same flags with AC and DF cleared, both of
        // which only make the code that follows behave as the ABI expects.
        // The stack word is 8-aligned (rsp is), so `popfq` itself cannot
        // trip the alignment check.
        unsafe { core::arch::asm!("push {}", "popfq", in(reg) flags & !(EFLAGS_AC | EFLAGS_DF)) };
    }
}

/// MXCSR's control bits: DAZ, the exception masks, rounding, FZ (the
/// architecture's; the low six are the sticky status flags).
pub(crate) const MXCSR_CONTROL: u32 = 0xffc0;

pub(crate) fn fp_control() -> (u32, u16) {
    let mut mxcsr = 0u32;
    let mut fpucw = 0u16;
    // SAFETY: stores MXCSR and the x87 control word into two locals.
    unsafe {
        core::arch::asm!("stmxcsr [{}]", "fnstcw [{}]", in(reg) &mut mxcsr, in(reg) &mut fpucw, options(nostack));
    }
    (mxcsr, fpucw)
}

pub(crate) fn set_fp_control(mxcsr: u32, fpucw: u16) {
    // SAFETY: loads values that were MXCSR and x87 control word contents
    // (the host's or the guest's saved ones), so every reserved bit is clear.
    unsafe {
        core::arch::asm!("ldmxcsr [{}]", "fldcw [{}]", in(reg) &mxcsr, in(reg) &fpucw, options(nostack));
    }
}
