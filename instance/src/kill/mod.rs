//! Termination: the per-instance kill word, [`KillSwitch`], and the
//! real-time signal that stops a guest running terminable code.
//!
//! # The kill word
//!
//! Everything a termination decision needs lives in one `AtomicU64` per
//! instance, so that each decision is one compare-and-swap and every party
//! (the host running the instance, the guest, a switch on another thread,
//! the signal handler) sees the same story: the run's id and phase, whether
//! the guest is in terminable code, whether a kill was requested and its
//! signal sent, and how deep in host regions the guest is. The word's
//! layout and every transition, as pure functions with their table, are in
//! the `word` submodule; [`KillState`] holds the atomic and applies a
//! transition with one helper (`update`: load, compute, compare-and-swap,
//! retry), and keeps the side effects (the run's thread id, `tgkill`, the
//! futex the host waits on for the signal's delivery).
//!
//! A run ends with one CAS by the host that picks `terminated` whenever
//! KILL is set, so whatever [`KillSwitch::terminate`] answered (it also
//! decides with one CAS) agrees with how the run ended.
//!
//! # The signal
//!
//! Only when the guest is running, terminable, and outside host regions
//! does `terminate` send the kill signal, with `tgkill` to the thread the
//! run is on. The handler accepts it only if it was sent by this process
//! with `tgkill` (`si_code == SI_TKILL`, `si_pid == getpid()`), the thread
//! is running an instance whose word still says running, terminable,
//! depth 0 and KILL, and the interrupted stack pointer is in that
//! instance's stack. Then it leaves through the same register rewrite as a
//! fault. A signal that arrives while the host is still switching into the
//! guest diverts the guest's resume word to a pad that ends the run. When
//! the guest comes back, the host marks the run stopped (no more signals
//! for it) and, if one was sent, sleeps on a futex until this thread's
//! handler has taken it, so no kill signal reaches the host's code after
//! the run. Other deliveries (a stray `kill` or `raise`) are counted and
//! ignored; the handler is installed with `SA_RESTART`. A kill that finds
//! the guest in a host region is carried out when the region ends.
//!
//! This module needs `unsafe` for `tgkill` (nix has no wrapper for it, and
//! `pthread_kill` on a thread that may have exited is undefined, while a
//! stale thread id only reaches a thread whose handler ignores it) and to
//! read the kernel's `siginfo_t` in the handler.
#![allow(unsafe_code)]

use core::cell::Cell;
use core::ffi::c_int;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Once;

use nix::errno::Errno;
use nix::sys::signal::SigSet;

use crate::error::Error;

mod word;

use word::{Entry, Guest, Nest, Resume, Signal, Step, Terminable, Word};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ended {
    /// The guest returned (or, for a closure, returned a value).
    Returned = 0,
    /// The guest faulted.
    Faulted = 1,
    /// The closure guest panicked.
    Panicked = 2,
    /// The run was terminated.
    Terminated = 3,
}

/// What [`KillSwitch::terminate`](crate::KillSwitch::terminate) did. The first five mean the run ends
/// with [`Error::Terminated`](crate::Error::Terminated) (see
/// [`Termination::takes_effect`]); the others had no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Termination {
    /// The guest was running terminable code: the kill signal was sent and
    /// the run returns terminated.
    Signalled,
    /// The run had not started: it terminates when it starts, without
    /// executing guest code.
    AtStart,
    /// The guest was suspended in a yield: it terminates when resumed,
    /// without executing guest code after the yield (a closure's frames are
    /// unwound, so its destructors run).
    OnResume,
    /// The guest was inside a host region: the run terminates when the
    /// region ends, with the region's side effects kept.
    AfterHostRegion,
    /// A closure guest outside any [`terminable`](crate::terminable)
    /// region, or a guest that has just come back while the host has not
    /// yet settled its run: the kill is recorded and lands when the guest
    /// enters a terminable region, at
    /// its next yield (the closure is then unwound, its destructors run),
    /// or at the latest when it returns (the run then returns terminated and
    /// its value is dropped).
    Pending,
    /// A termination was already requested for this run; nothing more was
    /// done.
    AlreadyRequested,
    /// The run this switch is for had already ended this way: no effect.
    Finished(Ended),
    /// The run this switch is for was discarded by a reset, or a later run
    /// has started: no effect on it.
    Superseded,
    /// The instance was dropped: no effect.
    Dropped,
}

impl Termination {
    /// Whether the run this switch is for ends (or has ended) terminated
    /// because of this call.
    ///
    /// Unless the run never comes: [`Instance::reset`](crate::Instance::reset)
    /// or dropping the instance discards the run a switch is for, with its
    /// pending kill. A kill answered [`AtStart`](Termination::AtStart) (for
    /// the next run) or [`OnResume`](Termination::OnResume) (for a yielded
    /// one) is then dropped with that run: the run started after a reset is
    /// a new run, which the old switch does not reach
    /// ([`Superseded`](Termination::Superseded)).
    pub fn takes_effect(self) -> bool {
        matches!(
            self,
            Termination::Signalled
                | Termination::AtStart
                | Termination::OnResume
                | Termination::AfterHostRegion
                | Termination::Pending
        )
    }
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Termination::Signalled => f.write_str("signalled the running guest"),
            Termination::AtStart => f.write_str("the run will terminate when it starts"),
            Termination::OnResume => f.write_str("the yielded guest will terminate when resumed"),
            Termination::AfterHostRegion => f.write_str("the run will terminate when its host region ends"),
            Termination::Pending => f.write_str("pending until the closure enters a terminable region"),
            Termination::AlreadyRequested => f.write_str("already requested"),
            Termination::Finished(how) => write!(f, "no effect: the run already ended ({how:?})"),
            Termination::Superseded => f.write_str("no effect: the run was reset or a later run started"),
            Termination::Dropped => f.write_str("no effect: the instance was dropped"),
        }
    }
}

thread_local! {
    /// This thread's kernel thread id, or 0 until first asked. `gettid` is
    /// a system call (glibc does not cache it), and every run records the
    /// id of the thread it is on, so it is read once per thread.
    static TID: Cell<c_int> = const { Cell::new(0) };
}

/// Whether the fork handler that forgets the cached id is registered; the
/// cache is used only if it is.
static TID_FORK_HANDLER: AtomicBool = AtomicBool::new(false);
static TID_FORK_HANDLER_ONCE: Once = Once::new();

/// Runs in the child of `fork`, on its only thread, whose id is new.
extern "C" fn forget_tid_after_fork() {
    let _ = TID.try_with(|t| t.set(0));
}

/// The calling thread's kernel id, from the per-thread cache.
///
/// A thread keeps its id for life, except across `fork`: the child's thread
/// has a new one while its thread-locals are copies of the parent's. A
/// `pthread_atfork` child handler clears the cache there; if it cannot be
/// registered, every call asks the kernel.
fn current_tid() -> c_int {
    TID_FORK_HANDLER_ONCE.call_once(|| {
        // SAFETY: registers a handler with no preparation or parent part;
        // the child part only writes a const-initialised thread-local.
        // nix has no pthread_atfork.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_tid_after_fork)) };
        TID_FORK_HANDLER.store(rc == 0, Ordering::SeqCst);
    });
    let ask = || nix::unistd::gettid().as_raw();
    if !TID_FORK_HANDLER.load(Ordering::Relaxed) {
        return ask();
    }
    TID.try_with(|t| match t.get() {
        0 => {
            let tid = ask();
            t.set(tid);
            tid
        }
        tid => tid,
    })
    .unwrap_or_else(|_| ask())
}

/// The kill word of one instance and the thread its current run is on.
pub(crate) struct KillState {
    word: AtomicU64,
    tid: AtomicI32,
    /// Set (to 1) by the handler on the run's thread when the kill signal
    /// sent for the current run has been delivered; the host waits on it
    /// (futex) before leaving a run whose word says SENT, so that no kill
    /// signal is still pending when the host's own code continues.
    delivered: AtomicU32,
    /// The run id (plus one; 0 = none) whose kill signal `tgkill` has
    /// queued: from then on the signal is pending on the run's thread,
    /// delivered, or taken by someone else (a guest's `sigwait` or
    /// `signalfd`), and `settle_signal` can tell which.
    queued: AtomicU64,
    /// Host regions entered beyond the word's [`MAX_DEPTH`](word::MAX_DEPTH).
    deeper: AtomicU32,
}

impl KillState {
    pub(crate) fn new() -> KillState {
        KillState {
            word: AtomicU64::new(Word::new().to_bits()),
            tid: AtomicI32::new(0),
            delivered: AtomicU32::new(0),
            queued: AtomicU64::new(0),
            deeper: AtomicU32::new(0),
        }
    }

    fn read(&self) -> Word {
        Word::from_bits(self.word.load(Ordering::SeqCst))
    }

    /// Applies the pure transition `f` to the word with one
    /// compare-and-swap, calling `f` again on the fresh word whenever
    /// another party changed it meanwhile; returns the answer of the call
    /// that took effect. A transition that answers `None` leaves the word
    /// alone (nothing is written).
    fn update<R>(&self, f: impl Fn(Word) -> Step<R>) -> R {
        let mut bits = self.word.load(Ordering::SeqCst);
        loop {
            let (new, answer) = f(Word::from_bits(bits));
            let Some(new) = new else { return answer };
            match self.word.compare_exchange(bits, new.to_bits(), Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return answer,
                Err(now) => bits = now,
            }
        }
    }

    /// The id a switch made now targets: the current run, or the next one
    /// if the last has ended.
    pub(crate) fn target_id(&self) -> u32 {
        self.read().target()
    }

    /// Host, before switching to a new run. Returns false if a kill was
    /// requested before the run started (the run is then ended as
    /// terminated and must not enter the guest).
    pub(crate) fn start(&self, terminable: bool) -> bool {
        self.tid.store(current_tid(), Ordering::SeqCst);
        self.delivered.store(0, Ordering::SeqCst);
        self.deeper.store(0, Ordering::SeqCst);
        let terminable = if terminable { Terminable::Yes } else { Terminable::No };
        self.update(|w| w.start(terminable)) == Entry::Go
    }

    /// Host, before switching back into a yielded guest. Returns false if
    /// a kill is pending (the word stays yielded; the caller discards the
    /// guest and ends the run).
    pub(crate) fn resume(&self, unwinding: bool) -> bool {
        self.tid.store(current_tid(), Ordering::SeqCst);
        self.delivered.store(0, Ordering::SeqCst);
        let how = if unwinding { Resume::Unwind } else { Resume::Continue };
        self.update(|w| w.resume(how)) == Entry::Go
    }

    /// Guest, about to switch to the host in a yield. Returns false if a
    /// kill is pending: the guest must end the run instead.
    pub(crate) fn suspend(&self) -> bool {
        self.update(Word::suspend) == Guest::Continue
    }

    /// Host, right after the guest came back: unless it yielded, the run
    /// stops being running, so that no kill signal is sent for it any
    /// more (a later `terminate` still marks it terminated, without a
    /// signal).
    pub(crate) fn stop(&self) {
        self.update(Word::stop);
    }

    pub(crate) fn is_yielded(&self) -> bool {
        self.read().is_yielded()
    }

    /// Host, when a run is over: records how it ended, `Terminated` if a
    /// kill was requested, and returns that.
    pub(crate) fn finish(&self, natural: Ended) -> Ended {
        self.update(|w| w.finish(natural))
    }

    /// Host: discards the current run (reset); the next run gets a new id.
    pub(crate) fn reset(&self) {
        self.update(Word::reset);
    }

    pub(crate) fn dropped(&self) {
        self.update(Word::dropped);
    }

    /// Guest: enters a host region.
    pub(crate) fn enter_region(&self) {
        if self.update(Word::enter_region) == Nest::Full {
            // Deeper than the word counts (only unpaired C region entries
            // get here): the excess is counted aside, and the word keeps
            // saying "in a region" until it is left again. Only the guest's
            // own thread enters and leaves its regions, so nothing else
            // changes the depth meanwhile.
            self.deeper.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Guest: leaves a host region. Returns true if the run must end now
    /// (a kill waited for this region, and the guest is terminable).
    pub(crate) fn leave_region(&self) -> bool {
        if self.deeper.load(Ordering::SeqCst) != 0 {
            self.deeper.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        // At depth 0 (an unpaired leave: the C `instance_host_region_leave`
        // is callable anywhere) there is nothing to leave.
        self.update(Word::leave_region) == Guest::EndRun
    }

    pub(crate) fn in_region(&self) -> bool {
        self.read().in_region()
    }

    /// Guest: marks the closure terminable or not; returns the previous
    /// setting and whether the run must end now (a kill is pending and the
    /// guest is terminable outside host regions).
    pub(crate) fn set_terminable(&self, on: bool) -> (bool, bool) {
        let terminable = if on { Terminable::Yes } else { Terminable::No };
        let (was, then) = self.update(|w| w.set_terminable(terminable));
        (was == Terminable::Yes, then == Guest::EndRun)
    }

    /// Host, on the run's thread, when the guest has come back: if a kill
    /// signal was sent for this run, waits until this thread's handler has
    /// taken it (it may still be on its way from the sending thread, or
    /// pending here), so that it cannot reach the host's code later. The
    /// wait sleeps in the kernel (futex); the signal's delivery interrupts
    /// it, and the handler has set `delivered` by then.
    ///
    /// It ends also when the signal can no longer come: `tgkill` has queued
    /// it, yet it is neither pending on this thread nor delivered, because
    /// the guest took it itself (`sigwait`, `signalfd`). Delivery to this
    /// thread happens only while this thread returns from a system call, so
    /// "not pending and not delivered" seen here after the queueing is final.
    pub(crate) fn settle_signal(&self) {
        let w = self.read();
        if w.signal() == Signal::NotSent || self.delivered.load(Ordering::SeqCst) != 0 {
            return;
        }
        let queued_mark = u64::from(w.id()) + 1;
        // The signal may be pending behind a mask that blocks it (the
        // host's, put back by a fault in ThreadSignalMode::Restore, or one
        // the guest set): let it in for the wait, or the wait never ends.
        let reblock = unblock_kill_signal().is_ok_and(|old| blocks_kill_signal(&old));
        let tick = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
        while self.delivered.load(Ordering::SeqCst) == 0 {
            if self.queued.load(Ordering::SeqCst) == queued_mark && !kill_signal_pending() {
                // Re-read: the handler may have run inside sigpending.
                if self.delivered.load(Ordering::SeqCst) == 0 {
                    break;
                }
            }
            // SAFETY: FUTEX_WAIT on a live, aligned u32 that we own, for at
            // most `tick`; it returns at once if the value is no longer 0,
            // and when a signal interrupts it. nix has no futex.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.delivered.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    0u32,
                    &tick as *const libc::timespec,
                )
            };
        }
        if reblock {
            block_kill_signal();
        }
    }

    /// Handler: marks the signal sent for this run as delivered; returns
    /// whether one was outstanding.
    pub(crate) fn mark_delivered(&self) -> bool {
        self.read().signal() == Signal::Sent && self.delivered.swap(1, Ordering::SeqCst) == 0
    }

    /// Handler: whether a kill signal may end the run now.
    pub(crate) fn accepts(&self) -> bool {
        self.read().accepts()
    }

    pub(crate) fn terminate(&self, target: u32) -> Termination {
        let answer = self.update(|w| w.terminate(target));
        if answer == Termination::Signalled {
            // The word said running with id `target` when it took KILL and
            // SENT, so `tid` is that run's thread.
            send_kill(self.tid.load(Ordering::SeqCst));
            self.queued.store(u64::from(target) + 1, Ordering::SeqCst);
        }
        answer
    }
}

// ---- the signal: which one, masks, sending ---------------------------------

/// 0 until fixed: then the signal number in use.
static KILL_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The default kill signal: `SIGRTMIN() + 3` (the C library keeps the
/// first real-time signals for itself and reports the first free one as
/// `SIGRTMIN()`).
pub fn default_kill_signal() -> c_int {
    libc::SIGRTMIN() + 3
}

/// Chooses the real-time signal used to terminate guests. Must be called
/// before the handlers are installed (the first run or
/// [`install_handlers`](crate::install_handlers)).
///
/// # Errors
///
/// [`Error::KillSignal`] if `signum` is not in `SIGRTMIN()..=SIGRTMAX()`
/// or another signal is already in use.
pub fn set_kill_signal(signum: c_int) -> Result<(), Error> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if signum < min || signum > max {
        return Err(Error::KillSignal { signum, min, max, in_use: KILL_SIGNAL.load(Ordering::SeqCst) });
    }
    match KILL_SIGNAL.compare_exchange(0, signum, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => Ok(()),
        Err(cur) if cur == signum => Ok(()),
        Err(cur) => Err(Error::KillSignal { signum, min, max, in_use: cur }),
    }
}

/// The kill signal, fixing the default if none was chosen.
pub fn kill_signal() -> c_int {
    let _ = KILL_SIGNAL.compare_exchange(0, default_kill_signal(), Ordering::SeqCst, Ordering::SeqCst);
    KILL_SIGNAL.load(Ordering::SeqCst)
}

/// The kill signal as a one-signal set (nix's `Signal` cannot name a
/// real-time signal).
fn kill_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set; the
    // signal is a valid real-time signal number.
    unsafe {
        let mut set = core::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, kill_signal());
        set
    }
}

/// Unblocks the kill signal on the calling thread; returns the mask it had.
pub(crate) fn unblock_kill_signal() -> Result<SigSet, Errno> {
    let set = kill_sigset();
    let mut old = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` is initialised and `old` receives the previous mask.
    Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, old.as_mut_ptr()) })?;
    // SAFETY: pthread_sigmask succeeded, so it wrote `old`.
    Ok(unsafe { SigSet::from_sigset_t_unchecked(old.assume_init()) })
}

/// The kill signal if it is fixed already (chosen or defaulted), without
/// fixing it.
pub(crate) fn fixed_kill_signal() -> Option<c_int> {
    match KILL_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Whether the kill signal is pending on the calling thread (or the
/// process).
fn kill_signal_pending() -> bool {
    let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending writes the pending set into `set`; sigismember
    // reads it once written.
    unsafe { libc::sigpending(set.as_mut_ptr()) == 0 && libc::sigismember(set.as_ptr(), kill_signal()) == 1 }
}

/// Blocks the kill signal on the calling thread again.
pub(crate) fn block_kill_signal() {
    let set = kill_sigset();
    // SAFETY: `set` is initialised; no old mask is asked for. It cannot fail
    // with valid arguments.
    let _ = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) };
}

/// Whether `mask` blocks the kill signal.
pub(crate) fn blocks_kill_signal(mask: &SigSet) -> bool {
    // SAFETY: sigismember only reads an initialised set.
    unsafe { libc::sigismember(mask.as_ref(), kill_signal()) == 1 }
}

fn send_kill(tid: c_int) {
    let sig = kill_signal();
    // SAFETY: tgkill only sends a signal; the handler for `sig` is
    // installed before any run can be marked running. A tid that has since
    // been reused by another thread of this process reaches our handler,
    // which ignores it. nix has no tgkill.
    let _ = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
}
