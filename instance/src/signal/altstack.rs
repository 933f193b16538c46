//! The per-thread alternate signal stack that runs install, and the
//! thread's [`ThreadSignalMode`].
//!
//! This module needs `unsafe` for `sigaltstack` and to map the stack.
#![allow(unsafe_code)]

use core::cell::RefCell;
use core::ffi::c_void;
use core::mem::MaybeUninit;

use nix::errno::Errno;

use super::mask::fault_sigset;
use crate::error::Error;
use crate::run::in_guest;
use crate::stack::{Stack, page_size};

/// Stack the handler and whatever it chains to may use on our alternate
/// stack, on top of the kernel's minimum for the signal frame. Our handler
/// needs well under a page; chained handlers (Rust's stack-overflow report,
/// a host's own handler) may format and write, so give them room. The pages
/// are committed only if used.
const HANDLER_STACK_NEEDS: usize = 64 * 1024;

/// Bytes of the alternate signal stack each thread gets for runs:
/// `getauxval(AT_MINSIGSTKSZ)` (at least `MINSIGSTKSZ`) plus what the
/// handler and the handlers it chains to need, rounded up to pages.
pub fn alt_stack_size() -> usize {
    // SAFETY: getauxval only reads the auxiliary vector; nix lacks it.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    let bytes = min.max(libc::MINSIGSTKSZ) + HANDLER_STACK_NEEDS;
    bytes.div_ceil(page_size()) * page_size()
}

/// What runs do to a thread's signal state; chosen per thread with
/// [`set_thread_signal_mode`].
///
/// The two modes trade system calls per run against how completely a run
/// leaves the thread as it found it:
///
/// | | [`Restore`](ThreadSignalMode::Restore) (default) | [`Keep`](ThreadSignalMode::Keep) |
/// |---|---|---|
/// | our alternate signal stack | installed by each outermost run, the thread's own put back when it ends | installed by the first run, stays until the mode is set back or the thread exits |
/// | signal mask after a fault | the one the run started with, whatever the guest did | the one the guest faulted with (as after a return) |
/// | fault signals and kill signal | unblocked for the run, blocked again after if the thread had them blocked | unblocked when Keep is set (and by the first run) and left so: block them again only after setting Restore, or set Keep again after |
/// | system calls per run | 3 (`sigaltstack` × 2, `rt_sigprocmask`), 4 if the thread blocks a fault or kill signal | none; 1 (`rt_sigprocmask`) for a run that can be terminated |
///
/// In both modes the handler always runs on our alternate stack during a
/// run, and the MXCSR and x87 control word come back as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ThreadSignalMode {
    /// Every run gives the thread's alternate signal stack back and a
    /// faulted run restores the signal mask it started with.
    #[default]
    Restore,
    /// Our alternate signal stack stays installed on this thread between
    /// runs, and the signal mask is not read at each run.
    ///
    /// The fault signals and the kill signal are unblocked when this mode
    /// is set and stay so: runs do not read the mask. A thread that blocks
    /// them again while in Keep (a worker that blocks every signal between
    /// jobs) must set Keep again before its next run; otherwise a guest's
    /// fault meets a blocked SIGSEGV, and the kernel kills the process.
    ///
    /// Host code of this thread that takes a signal on the alternate stack
    /// between runs takes it on ours (larger than the usual one). Do not
    /// change the thread's alternate stack with `sigaltstack` while in this
    /// mode: set [`Restore`](ThreadSignalMode::Restore) first, which puts the
    /// thread's own back at once. When the thread exits, its own is put back
    /// too (unless someone else replaced ours meanwhile) before ours is
    /// unmapped.
    Keep,
}

/// One thread's alternate-stack state.
struct ThreadAlt {
    /// Our alternate signal stack, made on first use.
    stack: Option<Stack>,
    mode: ThreadSignalMode,
    /// In [`ThreadSignalMode::Keep`], once ours is installed: the thread's
    /// own setting, to put back later.
    kept_over: Option<libc::stack_t>,
}

impl ThreadAlt {
    /// Puts the thread's own setting back if ours is still the installed
    /// one (someone else's later change is left alone: Rust's std thread
    /// teardown, for one, disables the alternate stack itself, and a thread
    /// it started ends with none either way).
    fn give_back(&mut self) -> Result<(), Errno> {
        let (Some(own), Some(stack)) = (self.kept_over, self.stack.as_ref()) else { return Ok(()) };
        let mut now = MaybeUninit::<libc::stack_t>::uninit();
        // SAFETY: a query: sigaltstack writes the current setting to `now`.
        Errno::result(unsafe { libc::sigaltstack(core::ptr::null(), now.as_mut_ptr()) })?;
        // SAFETY: sigaltstack succeeded, so it wrote `now`.
        let now = unsafe { now.assume_init() };
        if now.ss_flags & libc::SS_DISABLE == 0 && now.ss_sp as usize == stack.base() {
            // Fails (EPERM) only while this thread runs on ours, i.e. when
            // called from a signal handler; ours then stays, and so does the
            // record of the thread's own.
            put_back(own)?;
        }
        self.kept_over = None;
        Ok(())
    }
}

impl Drop for ThreadAlt {
    fn drop(&mut self) {
        // Before `stack` is unmapped: never leave it installed. (A thread
        // exits on its own stack, so putting the thread's own back works.)
        let _ = self.give_back();
    }
}

thread_local! {
    /// This thread's alternate signal stack for runs and its mode. The
    /// stack is unmapped when the thread exits, after the thread's own
    /// setting was put back.
    static ALT: RefCell<ThreadAlt> =
        const { RefCell::new(ThreadAlt { stack: None, mode: ThreadSignalMode::Restore, kept_over: None }) };
}

/// Sets what runs on the calling thread do to its signal state (see
/// [`ThreadSignalMode`]). Setting [`Restore`](ThreadSignalMode::Restore)
/// after [`Keep`](ThreadSignalMode::Keep) puts the thread's own alternate
/// stack back now.
///
/// # Errors
///
/// [`Error::SignalModeInRun`] if the thread is running an instance (from a
/// guest or a host region), [`Error::AltStack`] if the thread's own
/// alternate stack cannot be put back (called from a signal handler running
/// on ours; the mode stays `Keep`), [`Error::ThreadExiting`] during thread
/// exit.
///
/// # Example
///
/// ```
/// use instance::{Instance, ThreadSignalMode};
///
/// instance::set_thread_signal_mode(ThreadSignalMode::Keep)?;
/// let mut inst = Instance::new(64 * 1024)?;
/// for i in 0..1000u32 {
///     assert_eq!(inst.run_closure(move || i)?, i); // no system call per run
/// }
/// // Puts the thread's own alternate stack back now (thread exit does too).
/// instance::set_thread_signal_mode(ThreadSignalMode::Restore)?;
/// # Ok::<(), instance::Error>(())
/// ```
pub fn set_thread_signal_mode(mode: ThreadSignalMode) -> Result<(), Error> {
    if in_guest() {
        return Err(Error::SignalModeInRun);
    }
    ALT.try_with(|cell| {
        let mut alt = cell.borrow_mut();
        if mode == ThreadSignalMode::Restore {
            alt.give_back().map_err(Error::AltStack)?;
        } else {
            // Keep reads no mask per run: what runs need unblocked is
            // unblocked now (and again whenever Keep is set). The kill
            // signal only if it is fixed (setting the mode must not fix it;
            // the first run, which fixes it, unblocks it then).
            let mut set = fault_sigset();
            if let Some(kill) = crate::kill::fixed_kill_signal() {
                // SAFETY: adds a valid signal number to an initialised set.
                unsafe { libc::sigaddset(&mut set, kill) };
            }
            // SAFETY: `set` is initialised; no old mask is asked for.
            Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut()) })
                .map_err(Error::SignalMask)?;
        }
        alt.mode = mode;
        Ok(())
    })
    .map_err(|_| Error::ThreadExiting)?
}

/// The calling thread's [`ThreadSignalMode`].
pub fn thread_signal_mode() -> ThreadSignalMode {
    ALT.try_with(|cell| cell.borrow().mode).unwrap_or_default()
}

/// Puts a setting that `sigaltstack` reported back in place.
fn put_back(mut own: libc::stack_t) -> Result<(), Errno> {
    // SS_ONSTACK is an output-only flag; SS_DISABLE and SS_AUTODISARM are
    // given back as they were.
    own.ss_flags &= !libc::SS_ONSTACK;
    // SAFETY: `own` is what sigaltstack reported for this thread; the
    // memory it names is the thread's, not ours. It fails only while the
    // thread runs on the alternate stack being replaced.
    Errno::result(unsafe { libc::sigaltstack(&own, core::ptr::null_mut()) }).map(drop)
}

/// Our alternate signal stack, installed for the duration of a run (or,
/// in [`ThreadSignalMode::Keep`], for the thread); puts the thread's own one
/// (or none) back on drop when the run installed it for itself.
pub(crate) struct AltStackGuard {
    restore: Option<libc::stack_t>,
}

impl AltStackGuard {
    /// Makes sure this thread's alternate signal stack is installed (making
    /// it first if needed); returns it with the thread's mode.
    ///
    /// The flag says whether this call installed it for
    /// [`ThreadSignalMode::Keep`] (the thread enters Keep mode now).
    pub(crate) fn enter() -> Result<(AltStackGuard, ThreadSignalMode, bool), Error> {
        ALT.try_with(|cell| {
            let mut alt = cell.borrow_mut();
            let mode = alt.mode;
            if mode == ThreadSignalMode::Keep && alt.kept_over.is_some() {
                return Ok((AltStackGuard { restore: None }, mode, false));
            }
            let stack = match alt.stack.take() {
                Some(stack) => stack,
                None => Stack::with_guard(alt_stack_size(), page_size())?,
            };
            let stack = alt.stack.insert(stack);
            let ours = libc::stack_t { ss_sp: stack.base() as *mut c_void, ss_flags: 0, ss_size: stack.size() };
            let mut saved = MaybeUninit::<libc::stack_t>::uninit();
            // SAFETY: `ours` describes a mapped read/write region that
            // lives until the thread exits (and is uninstalled before it is
            // unmapped); `saved` receives the old setting. nix has no
            // sigaltstack.
            Errno::result(unsafe { libc::sigaltstack(&ours, saved.as_mut_ptr()) }).map_err(Error::AltStack)?;
            // SAFETY: sigaltstack succeeded, so it wrote `saved`.
            let saved = unsafe { saved.assume_init() };
            Ok(match mode {
                ThreadSignalMode::Keep => {
                    alt.kept_over = Some(saved);
                    (AltStackGuard { restore: None }, mode, true)
                }
                ThreadSignalMode::Restore => (AltStackGuard { restore: Some(saved) }, mode, false),
            })
        })
        .map_err(|_| Error::ThreadExiting)?
    }
}

impl Drop for AltStackGuard {
    fn drop(&mut self) {
        if let Some(own) = self.restore {
            // Cannot fail: the run has ended, so the thread is back on its
            // own stack (a run cannot start on ours: `enter` fails then).
            let _ = put_back(own);
        }
    }
}
