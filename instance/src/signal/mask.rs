//! The signal mask around a run: the signals a run needs deliverable,
//! whatever the thread blocks.
//!
//! This module needs `unsafe` to build `sigset_t`s with libc (nix's
//! `Signal` cannot name the real-time kill signal).
#![allow(unsafe_code)]

use core::ffi::c_int;
use core::mem::MaybeUninit;

use nix::errno::Errno;
use nix::sys::signal::SigSet;

use super::FAULT_SIGNALS;
use super::altstack::ThreadSignalMode;
use crate::error::Error;

/// The signals a run needs deliverable: the five fault signals (the kernel
/// kills the process when a CPU fault meets a blocked fault signal) and the
/// kill signal (a blocked one never stops a spinning guest).
fn run_signals() -> impl Iterator<Item = c_int> {
    FAULT_SIGNALS.map(|s| s as c_int).into_iter().chain([crate::kill::kill_signal()])
}

/// [`run_signals`] as a set.
fn run_sigset() -> libc::sigset_t {
    let mut set = fault_sigset();
    // SAFETY: adds a valid signal number to an initialised set.
    unsafe { libc::sigaddset(&mut set, crate::kill::kill_signal()) };
    set
}

/// The five fault signals as a set.
pub(super) fn fault_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a local set with valid signal
    // numbers.
    unsafe {
        let mut set = core::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for signal in FAULT_SIGNALS {
            libc::sigaddset(&mut set, signal as c_int);
        }
        set
    }
}

/// The signal mask around one run (or resume): in effect from `enter` until
/// dropped, which the host does after the run's kill signal is settled.
///
/// A run needs the fault signals and the kill signal deliverable, whatever
/// mask the thread keeps (worker threads often block every signal): a CPU
/// fault that meets a blocked SIGSEGV kills the process, and a blocked kill
/// signal never stops a spinning guest.
///
/// * [`ThreadSignalMode::Restore`]: the run unblocks them (reading the old
///   mask in the same system call, the one a run makes anyway), and drop
///   blocks again those the thread had blocked (one more call, only then):
///   the thread's mask comes back exactly, after a fault too.
/// * [`ThreadSignalMode::Keep`]: they are unblocked when the thread enters
///   Keep mode (its first run installs our alternate stack) and stay so;
///   later runs make no system call, except a run that can be terminated
///   (a [`KillSwitch`](crate::KillSwitch) exists or a timeout is set), which
///   unblocks them again in case the thread blocked them since.
pub(crate) struct RunMask {
    host_mask: Option<SigSet>,
    reblock: Option<libc::sigset_t>,
}

impl RunMask {
    /// `entering_keep`: this run installed our alternate stack for Keep
    /// mode; `killable`: the run can be terminated.
    pub(crate) fn enter(mode: ThreadSignalMode, entering_keep: bool, killable: bool) -> Result<RunMask, Error> {
        match mode {
            ThreadSignalMode::Restore => {
                let set = run_sigset();
                let mut old = MaybeUninit::<libc::sigset_t>::uninit();
                // SAFETY: `set` is initialised and `old` receives the mask.
                Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, old.as_mut_ptr()) })
                    .map_err(Error::SignalMask)?;
                // SAFETY: pthread_sigmask succeeded, so it wrote `old`.
                let old = unsafe { old.assume_init() };
                // The run's signals that the thread had blocked.
                // SAFETY: sigemptyset/sigaddset fill a local set,
                // sigismember reads an initialised one.
                let reblock = unsafe {
                    let mut both = core::mem::zeroed::<libc::sigset_t>();
                    libc::sigemptyset(&mut both);
                    let mut any = false;
                    for signum in run_signals() {
                        if libc::sigismember(&old, signum) == 1 {
                            libc::sigaddset(&mut both, signum);
                            any = true;
                        }
                    }
                    any.then_some(both)
                };
                // SAFETY: `old` is the thread's mask as the kernel wrote it.
                Ok(RunMask { host_mask: Some(unsafe { SigSet::from_sigset_t_unchecked(old) }), reblock })
            }
            ThreadSignalMode::Keep => {
                if entering_keep || killable {
                    // Built only here: most Keep runs make no call, and
                    // filling a set costs more than the rest of this.
                    let set = run_sigset();
                    // SAFETY: `set` is initialised; no old mask asked for.
                    Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut()) })
                        .map_err(Error::SignalMask)?;
                }
                Ok(RunMask { host_mask: None, reblock: None })
            }
        }
    }

    /// The mask a fault restores (see `RunRecord::host_mask`): the thread's
    /// as it was before the run in Restore mode, none in Keep mode.
    pub(crate) fn host_mask(&self) -> Option<SigSet> {
        self.host_mask
    }
}

impl Drop for RunMask {
    fn drop(&mut self) {
        if let Some(set) = &self.reblock {
            // SAFETY: blocks an initialised set of signals the thread had
            // blocked before the run; cannot fail with valid arguments.
            let _ = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, core::ptr::null_mut()) };
        }
    }
}
