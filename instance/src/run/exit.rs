//! The ways a guest leaves through a signal handler: the handler rewrites
//! the interrupted state so that its sigreturn continues in
//! [`fault_return`], which switches to the host: on the top of the
//! alternate signal stack with the host's mask already installed by the
//! sigreturn (the usual way), or on the top of the instance's stack with
//! every signal blocked, the host then installing the mask the redirect
//! left for it (when the handler does not run on an alternate stack).
//!
//! This module needs `unsafe` to rewrite the kernel's ucontext and to
//! switch to the host context without saving the abandoned guest.
#![allow(unsafe_code)]

use context::Context;
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use super::RunRecord;
use super::with_current;
use crate::cpu;

/// Bytes kept free above the spot where [`fault_return`] starts, below the
/// top of the alternate signal stack (or of the instance's stack).
const TRAMPOLINE_HEADROOM: usize = 256;

/// Bytes at the top of every instance stack that guests never get: when
/// the way back cannot run on an alternate signal stack (see
/// [`redirect_to_host`]), the frames of [`fault_return`] (and of the switch
/// it makes) live there, below [`TRAMPOLINE_HEADROOM`]. A faulted or
/// killed guest's frames are abandoned, and may still be in use (a
/// closure's quarantined stack): the handler's way back must not write
/// over them.
pub(crate) const TRAMPOLINE_AREA: usize = 1024;

/// Bytes an alternate signal stack must have for the way back to run on it
/// (`fault_return`'s frames and the switch's need well under this).
const WAY_BACK_MIN_ALT: usize = 4096;

/// Rewrites the interrupted register state `uc` so that returning from the
/// handler continues in [`fault_return`], with the signal mask the host
/// gets. Any handler that ends a guest run from a signal (a fault; a kill
/// that lands in guest code) goes back this way, so the kernel's sigreturn
/// restores what it saved.
///
/// Two ways, chosen by where the handler runs:
///
/// * On the alternate signal stack, with the interrupted code not on it
///   (every run installs ours, so this is the usual case): `fault_return`
///   continues at the top of that stack, entered through
///   `instance_way_back`, and the kernel's sigreturn installs the mask the
///   host gets. Nothing is written on the instance's stack, so a signal
///   taken on the way back (a profiler's, without `SA_ONSTACK`) puts its
///   frame on the alternate stack too, never over the abandoned frames; a
///   kill signal taken there is counted for the run without rewriting
///   anything (see the kill handler and [`RunRecord::on_way_back`]). One
///   system call fewer per fault than the other way.
/// * Otherwise (the guest disabled or replaced the alternate stack):
///   `fault_return` continues on the top of the instance's stack, with
///   every signal blocked, and the host installs its mask itself once it
///   has stopped the run, so that no signal frame lands over the abandoned
///   frames below it (a signal frame is kilobytes) and no kill signal lands
///   in the way back.
///
/// # Safety
///
/// * `uc` must be the ucontext the kernel passed to the running handler,
///   which interrupted the guest of `record`'s run on this thread.
/// * Nothing may need the guest's frames any more: they are abandoned.
pub(crate) unsafe fn redirect_to_host(uc: &mut libc::ucontext_t, record: &RunRecord) {
    // The mask the host gets once it is back: in ThreadSignalMode::Restore,
    // the host's as read when the run started (or resumed), whatever the
    // guest did to its own; in Keep, the one the guest faulted with, as
    // after a return.
    // SAFETY: uc_sigmask is an initialised sigset_t the kernel wrote.
    let after = record.host_mask().unwrap_or_else(|| unsafe { SigSet::from_sigset_t_unchecked(uc.uc_sigmask) });
    let way_back_sp = free_alt_stack_top(uc).map(|top| (top - TRAMPOLINE_HEADROOM) & !15);
    let flags = record.host_flags();
    match way_back_sp {
        // `instance_way_back` aligns the stack pointer and calls
        // `fault_return`; its return address column is undefined, so
        // unwinders stop there without a word written here (the top of the
        // alternate stack holds this handler's own signal frame until
        // sigreturn).
        Some(sp) => cpu::resume_at(uc, way_back_entry(), sp, flags),
        // Continue in `fault_return()` on the instance's stack, as if it
        // had been called with a return address of 0, so that unwinders
        // stop there.
        None => {
            let top = record.top().wrapping_sub(TRAMPOLINE_HEADROOM) & !15;
            // SAFETY: the words below `top` lie in the usable part of the
            // instance's stack (the stack is at least a page, far more than
            // the headroom and the trampoline area), which is mapped
            // read/write and no longer in use by the abandoned guest.
            unsafe { cpu::resume_as_call(uc, fault_return as extern "C" fn() -> ! as usize, top, flags) };
        }
    }
    if way_back_sp.is_some() {
        record.set_on_way_back(true);
        uc.uc_sigmask = *after.as_ref();
    } else {
        record.set_mask_after_redirect(Some(after));
        uc.uc_sigmask = *SigSet::all().as_ref();
    }
}

/// One past the highest address of the alternate signal stack that the
/// handler of `uc` runs on, if it runs on one and the interrupted code was
/// not on it (so that, once the handler has returned, nothing on it is
/// live), and it is large enough for the way back.
fn free_alt_stack_top(uc: &libc::ucontext_t) -> Option<usize> {
    let ss = &uc.uc_stack;
    // The kernel saved the alternate stack as configured when the signal
    // came, with SS_ONSTACK if the interrupted sp was on it, SS_DISABLE if
    // there was none.
    if ss.ss_flags & (libc::SS_DISABLE | libc::SS_ONSTACK) != 0 || ss.ss_size < WAY_BACK_MIN_ALT {
        return None;
    }
    let lo = ss.ss_sp as usize;
    let hi = lo.checked_add(ss.ss_size)?;
    // The ucontext lies in the signal frame, on the stack the handler runs
    // on: on this alternate stack, or the handler is not on it.
    let here = uc as *const libc::ucontext_t as usize;
    (lo < here && here < hi).then_some(hi)
}

// Where the way back starts on the alternate signal stack (see
// `redirect_to_host`): entered by the handler's sigreturn, with the stack
// pointer 16-aligned near the top of that stack. Calls `fault_return`, which
// never returns. The return address column is undefined so that unwinders
// stop here.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".p2align 4",
    ".globl instance_way_back",
    ".hidden instance_way_back",
    ".type instance_way_back, @function",
    "instance_way_back:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "and $-16, %rsp",
    "call {way_back}",
    "ud2",
    ".cfi_endproc",
    ".size instance_way_back, .-instance_way_back",
    way_back = sym fault_return,
    options(att_syntax),
);

// aarch64: entered by sigreturn, not by a branch, so with BTYPE clear (the
// redirect clears it); `bti c` all the same, for a BTI-guarded build.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".p2align 4",
    ".globl instance_way_back",
    ".hidden instance_way_back",
    ".type instance_way_back, %function",
    "instance_way_back:",
    ".cfi_startproc",
    ".cfi_undefined x30",
    "hint #34", // bti c
    "mov x9, sp",
    "and x9, x9, #-16",
    "mov sp, x9",
    "bl {way_back}",
    "udf #0",
    ".cfi_endproc",
    ".size instance_way_back, .-instance_way_back",
    way_back = sym fault_return,
);

unsafe extern "C" {
    /// See the `global_asm!` above; never called, only returned into.
    fn instance_way_back();
}

fn way_back_entry() -> usize {
    instance_way_back as unsafe extern "C" fn() as usize
}

/// Host, once a run it switched into is stopped: installs the mask that a
/// handler's redirect left for it (see [`redirect_to_host`]), if any.
pub(crate) fn restore_mask_after_redirect(record: &RunRecord) {
    if let Some(mask) = record.set_mask_after_redirect(None) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
    }
}

/// Where a faulted or killed guest continues after the handler returns (on
/// the same thread, its run still current): switches to the host context
/// of the current run.
extern "C" fn fault_return() -> ! {
    // What the guest may have left on that sigreturn cannot clear: the x87
    // register stack (x86_64), streaming mode (aarch64).
    cpu::leave_guest_modes();
    with_current(|record| match record {
        // SAFETY: the record is the run the handler found current (the
        // redirect left it so); its host context was saved by the `swap`
        // that started the run and is waiting in it. Everything on the
        // guest's stack is abandoned.
        Some(record) => unsafe { Context::set(record.host()) },
        // Only a redirect by our handler enters here, and it does so only
        // for a current run.
        None => std::process::abort(),
    })
}

// ---- the kill pad -----------------------------------------------------------

// Where a guest lands when a kill arrived while its host was switching
// into it: entered through the guest's resume word instead of the guest's
// own code (x86_64: a `jmp` with rsp just above that word; aarch64: `ret
// x10` with sp just above the word's 16-byte slot). Realigns the stack for
// a call and calls `kill_landing`, which never returns. The return address
// column is undefined so that unwinders stop here.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".p2align 4",
    ".globl instance_kill_pad",
    ".hidden instance_kill_pad",
    ".type instance_kill_pad, @function",
    "instance_kill_pad:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    // rsp + 8 must be a multiple of 16 at the callee's entry.
    "and $-16, %rsp",
    "call {landing}",
    "ud2",
    ".cfi_endproc",
    ".size instance_kill_pad, .-instance_kill_pad",
    landing = sym kill_landing,
    options(att_syntax),
);

// aarch64: `ret` is no BTI-checked branch; `bti c` all the same, for a
// BTI-guarded build.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".p2align 4",
    ".globl instance_kill_pad",
    ".hidden instance_kill_pad",
    ".type instance_kill_pad, %function",
    "instance_kill_pad:",
    ".cfi_startproc",
    ".cfi_undefined x30",
    "hint #34", // bti c
    "mov x9, sp",
    "and x9, x9, #-16",
    "mov sp, x9",
    "bl {landing}",
    "udf #0",
    ".cfi_endproc",
    ".size instance_kill_pad, .-instance_kill_pad",
    landing = sym kill_landing,
);

unsafe extern "C" {
    /// See the `global_asm!` above; never called, only jumped to.
    fn instance_kill_pad();
}

/// The address a diverted resumption continues at: `instance_kill_pad`,
/// which ends the current run from the guest's stack (see the kill
/// handler's `divert_guest`).
pub(crate) fn kill_pad() -> usize {
    instance_kill_pad as unsafe extern "C" fn() as usize
}

/// Ends the run of this thread's current record from the guest's stack.
extern "C" fn kill_landing() -> ! {
    with_current(|record| match record {
        // SAFETY: only reached through a resume word rewritten by
        // `divert_guest`, on the thread whose current record is that run's
        // (it set it before switching in), on the guest's stack.
        Some(record) => unsafe { super::end_run_from_guest(record) },
        // `divert_guest` rewrites only the current run's guest.
        None => std::process::abort(),
    })
}
