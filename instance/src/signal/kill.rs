//! The kill signal's handler and its counters: it accepts a delivery only
//! when it is this process's termination of the run on its thread, and
//! then ends the run like a fault (or diverts a switch into the guest that
//! it interrupted). See the `kill` module for the kill word and the signal
//! number.
//!
//! This module needs `unsafe` to read the kernel's `siginfo_t` and
//! `ucontext_t`, to install the handler with libc (nix's `Signal` cannot
//! name a real-time signal) and to rewrite the guest's resume word.
#![allow(unsafe_code)]

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

use super::ac_clearing_entry;
use crate::kill::kill_signal;
use crate::run::{RunRecord, in_guest, kill_pad, redirect_to_host, with_current};

static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static IGNORED: AtomicU64 = AtomicU64::new(0);
static OUTSIDE: AtomicU64 = AtomicU64::new(0);

/// How many kill signals the handler accepted (each ended a run) and
/// ignored (stray, or aimed at a run that had just stopped being
/// terminable), and how many of all of them arrived while the thread was
/// running no instance at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KillSignalCounts {
    /// Signals that ended a run.
    pub accepted: u64,
    /// Signals the handler dropped without effect.
    pub ignored: u64,
    /// Signals (counted in `ignored`) that arrived while the thread ran no
    /// instance: sent with `kill`/`raise` from elsewhere. A kill sent by a
    /// [`KillSwitch`](crate::KillSwitch) is always taken before its run returns, so it never
    /// lands here.
    pub outside_runs: u64,
}

/// Process-wide counts of kill signals seen by the handler.
pub fn kill_signal_counts() -> KillSignalCounts {
    KillSignalCounts {
        accepted: ACCEPTED.load(Ordering::Relaxed),
        ignored: IGNORED.load(Ordering::Relaxed),
        outside_runs: OUTSIDE.load(Ordering::Relaxed),
    }
}

/// Installs the kill handler (called once, from `install_handlers`).
pub(crate) fn install_kill_handler() -> Result<(), (c_int, Errno)> {
    let sig = kill_signal();
    // SAFETY: a zeroed sigaction is a valid starting point; we fill the
    // handler, flags and an empty mask. nix's Signal enum cannot name
    // real-time signals, so this uses libc.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction =
        instance_kill_entry as unsafe extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: installs an async-signal-safe handler valid for the life of
    // the process.
    Errno::result(unsafe { libc::sigaction(sig, &action, core::ptr::null_mut()) }).map_err(|e| (sig, e))?;
    Ok(())
}

ac_clearing_entry!("instance_kill_entry", handle_kill);

unsafe extern "C" {
    /// [`handle_kill`] behind the AC-clearing entry (a guest that set
    /// EFLAGS.AC and was killed must not make the handler's own accesses
    /// fault); the address given to `sigaction`.
    fn instance_kill_entry(signum: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void);
}

/// The kill signal's handler (entered through `instance_kill_entry`, with
/// EFLAGS.AC clear).
extern "C" fn handle_kill(_signum: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    let errno = Errno::last_raw();
    // SAFETY: the kernel passes valid pointers to an SA_SIGINFO handler.
    let accepted = unsafe { accept_kill(info, uctx.cast()) };
    if accepted {
        ACCEPTED.fetch_add(1, Ordering::Relaxed);
    } else {
        IGNORED.fetch_add(1, Ordering::Relaxed);
    }
    Errno::set_raw(errno);
}

/// # Safety
///
/// `info` and `uc` must be the pointers the kernel passed to the handler.
unsafe fn accept_kill(info: *mut libc::siginfo_t, uc: *mut libc::ucontext_t) -> bool {
    // SAFETY: the caller passes the kernel's siginfo.
    let info = unsafe { &*info };
    // SAFETY: for SI_TKILL the kill fields (si_pid) are the valid ones.
    if info.si_code != libc::SI_TKILL || unsafe { info.si_pid() } != nix::unistd::getpid().as_raw() {
        if !in_guest() {
            OUTSIDE.fetch_add(1, Ordering::Relaxed);
        }
        return false;
    }
    // SAFETY: the caller passes the kernel's ucontext.
    let uc = unsafe { &mut *uc };
    with_current(|record| match record {
        Some(record) => accept_kill_in(record, uc),
        None => {
            OUTSIDE.fetch_add(1, Ordering::Relaxed);
            false
        }
    })
}

/// [`accept_kill`] for the current run's `record`, with `uc` the kernel's
/// ucontext of the handler.
fn accept_kill_in(record: &RunRecord, uc: &mut libc::ucontext_t) -> bool {
    // Interrupted on the alternate signal stack: another handler was
    // running (over the guest, or our fault handler over a guest that just
    // faulted). Neither the guest's registers nor its saved context are
    // what this handler may rewrite then (the context's saved stack pointer
    // is stale while the guest runs; writing through it would hit live or
    // abandoned frames). Send the signal again, to arrive when the
    // interrupted handler is done.
    // (uc_stack holds the alternate stack as configured when the signal
    // came; its flags do not say whether the thread was on it, the range
    // does, as the kernel's own test reads it.)
    let sp = crate::cpu::uc_sp(uc);
    let alt = uc.uc_stack.ss_sp as usize;
    let on_alt = uc.uc_stack.ss_flags & libc::SS_DISABLE == 0 && sp > alt && sp - alt <= uc.uc_stack.ss_size;
    if record.on_way_back() {
        // Not a handler over the guest: the way back to the host, which a
        // redirect sent onto the alternate stack (or a handler over it), or
        // the host after the way back switched to it and before it stopped
        // the run (the way back's sigreturn unblocked this signal). The
        // guest is already abandoned and the host will stop the run; the
        // signal only has to be counted for the run, which then ends
        // terminated. Diverting the guest here would write the kill pad's
        // address into its abandoned frames (found by review).
        mark_delivered(record);
        return record.kill().accepts();
    }
    if on_alt {
        // Blocked in the interrupted handler too (else it would be
        // delivered again before that handler runs one instruction, for
        // ever): it arrives when that handler's own sigreturn unblocks it.
        // SAFETY: uc_sigmask is the interrupted context's initialised mask;
        // tgkill and gettid only send a signal to this thread and read its
        // id; all async-signal-safe.
        unsafe {
            libc::sigaddset(&mut uc.uc_sigmask, kill_signal());
            libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::syscall(libc::SYS_gettid), kill_signal());
        }
        return false;
    }
    mark_delivered(record);
    if !record.kill().accepts() {
        return false;
    }
    if !record.in_mapping(sp) {
        // The kill is for this thread's run, but the thread is in the
        // run's host code: between marking the run running and switching
        // into the guest (or after the guest came back and before the host
        // settles the run). Make the guest's next resumption land in
        // `instance_kill_pad` instead of its own code, so that a kill sent
        // into this window is not lost. Once the run is settled the
        // rewrite is moot (the next run prepares the context afresh).
        // SAFETY: `uc` is the kernel's for this thread.
        unsafe { divert_guest(record, uc) };
        return false;
    }
    // SAFETY: `uc` is the kernel's and interrupted this record's guest,
    // which is abandoned: the host will see KILL and end the run.
    unsafe { redirect_to_host(uc, record) };
    true
}

/// Accounts for the signal: it was sent for the innermost run of this
/// thread that is waiting for one (an outer run's signal can arrive while
/// an inner run is current).
fn mark_delivered(record: &RunRecord) {
    let mut r = Some(record);
    while let Some(rr) = r {
        if rr.kill().mark_delivered() {
            break;
        }
        r = rr.outer();
    }
}

/// Rewrites the resume word of `record`'s guest so that switching into it
/// continues in the run core's kill pad, including a switch into it that this
/// handler interrupted after it read the old resume address
/// ([`context::divert_pending_resume`] knows where the switch keeps it).
///
/// # Safety
///
/// `record` must be the current run of this thread, whose guest context is
/// not running, and `uc` the kernel's ucontext of this handler.
unsafe fn divert_guest(record: &RunRecord, uc: &mut libc::ucontext_t) {
    // SAFETY: the guest context is heap-pinned and only read here; the host
    // code interrupted never writes it while switching in.
    let guest = unsafe { &*record.guest_ptr() };
    if !record.in_mapping(guest.regs().stack_pointer() as usize) {
        return;
    }
    let pad = kill_pad();
    // SAFETY: the guest is suspended and not running (the caller's duty);
    // its resume word lies in the instance's stack mapping (checked above),
    // read/write, and only this thread's handler and its interrupted switch
    // touch it; `uc` is this handler's ucontext, restored by sigreturn; the
    // pad is written for a resumption's state (rsp just above the word).
    unsafe { context::divert_pending_resume(guest, pad, uc) };
}
