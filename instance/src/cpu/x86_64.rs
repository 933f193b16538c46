//! x86_64: the EFLAGS bits a guest can set from user mode (alignment check,
//! direction, trap), the floating-point control words (MXCSR, x87 control
//! word), and the interrupted registers of a ucontext (`gregs`).
#![allow(unsafe_code)]

use context::Context;

/// EFLAGS.TF: single-step trap.
const EFLAGS_TF: u64 = 1 << 8;
/// EFLAGS.DF: string instructions count down; the ABI wants it clear at
/// every call and return.
const EFLAGS_DF: u64 = 1 << 10;
/// EFLAGS.AC: with CR0.AM (set by Linux), misaligned user accesses raise
/// SIGBUS.
const EFLAGS_AC: u64 = 1 << 18;

/// The flags the host runs with. On x86_64 nothing needs reading: the host
/// runs with AC and DF clear (the ABI's DF; AC is never set by compiled
/// code), so putting the host's flags back means clearing them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostFlags;

impl HostFlags {
    /// Before the first run: none read yet.
    pub(crate) const UNSET: HostFlags = HostFlags;
}

/// The flags of the host about to enter a guest (nothing to read here).
#[inline(always)]
pub(crate) fn host_flags() -> HostFlags {
    HostFlags
}

/// Host, right after a guest switched back to it (returned, yielded, or
/// left through a handler), or entering a host region: clears the flags a
/// guest may leave set that would break the host's code, the alignment
/// check (AC, a SIGBUS at the host's first misaligned access) and the
/// direction flag (DF, which the ABI wants clear, and which makes `memcpy`
/// run backwards). Reading the flags is cheap; `popfq` is not, so they are
/// written only when one is set. (After a fault or kill the handler has
/// already cleared them in the interrupted state; a guest that returns or
/// yields does not pass through the kernel.)
#[inline(always)]
pub(crate) fn restore_host_flags(_: HostFlags) {
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
const MXCSR_CONTROL: u32 = 0xffc0;

/// The floating-point control state: MXCSR's control bits and the x87
/// control word (the status flags are not part of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FpControl {
    mxcsr_control: u32,
    fpucw: u16,
}

/// The control state the thread runs with now.
pub(crate) fn fp_control() -> FpControl {
    let mut mxcsr = 0u32;
    let mut fpucw = 0u16;
    // SAFETY: stores MXCSR and the x87 control word into two locals.
    unsafe {
        core::arch::asm!("stmxcsr [{}]", "fnstcw [{}]", in(reg) &mut mxcsr, in(reg) &mut fpucw, options(nostack));
    }
    FpControl { mxcsr_control: mxcsr & MXCSR_CONTROL, fpucw }
}

/// The control state saved in a suspended context's register block.
pub(crate) fn saved_fp_control(context: &Context) -> FpControl {
    let regs = context.regs();
    FpControl { mxcsr_control: regs.mxcsr & MXCSR_CONTROL, fpucw: regs.fpucw }
}

/// Makes `control` the thread's, keeping MXCSR's status flags as they are.
pub(crate) fn load_fp_control(control: FpControl) {
    let mut mxcsr = 0u32;
    // SAFETY: stores MXCSR into a local.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut mxcsr, options(nostack)) };
    let mxcsr = (mxcsr & !MXCSR_CONTROL) | control.mxcsr_control;
    // SAFETY: loads values that were MXCSR and x87 control word contents
    // (the host's or the guest's saved ones), so every reserved bit is clear.
    unsafe {
        core::arch::asm!("ldmxcsr [{}]", "fldcw [{}]", in(reg) &mxcsr, in(reg) &control.fpucw, options(nostack));
    }
}

/// On the way back from a handler that abandoned a guest, before host code
/// runs: the guest may have left values on the x87 register stack, which
/// the ABI wants empty at calls. `fninit` empties it (and resets the
/// control word, which `Context::set` loads again from the host's
/// context).
#[inline(always)]
pub(crate) fn leave_guest_modes() {
    // SAFETY: fninit only changes x87 state.
    unsafe { core::arch::asm!("fninit", options(nomem, nostack, preserves_flags)) };
}

/// The interrupted stack pointer of a handler's ucontext.
#[inline(always)]
pub(crate) fn uc_sp(uc: &libc::ucontext_t) -> usize {
    uc.uc_mcontext.gregs[libc::REG_RSP as usize] as usize
}

/// The interrupted instruction pointer of a handler's ucontext.
#[inline(always)]
pub(crate) fn uc_pc(uc: &libc::ucontext_t) -> usize {
    uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize
}

/// Rewrites `uc` so that the handler's sigreturn continues at `pc` with the
/// stack pointer `sp`, no frame pointer (unwinders stop), and the host's
/// flags: DF clear as the ABI wants at calls, and a trap flag or alignment
/// check left set by the guest not following the host.
pub(crate) fn resume_at(uc: &mut libc::ucontext_t, pc: usize, sp: usize, _: HostFlags) {
    let gregs = &mut uc.uc_mcontext.gregs;
    gregs[libc::REG_RIP as usize] = pc as i64;
    gregs[libc::REG_RSP as usize] = sp as i64;
    gregs[libc::REG_RBP as usize] = 0;
    gregs[libc::REG_EFL as usize] &= !(EFLAGS_DF | EFLAGS_TF | EFLAGS_AC) as i64;
}

/// [`resume_at`] the function `f`, as if called with the stack pointer
/// `top` (16-aligned) before the call and a return address of 0, so that
/// unwinders stop there: the return address slot is the word below `top`.
///
/// # Safety
///
/// The 8 bytes below `top` must be writable and unused.
pub(crate) unsafe fn resume_as_call(uc: &mut libc::ucontext_t, f: usize, top: usize, flags: HostFlags) {
    let entry_sp = top - 8;
    // SAFETY: the caller's duty.
    unsafe { (entry_sp as *mut u64).write(0) };
    resume_at(uc, f, entry_sp, flags);
}
