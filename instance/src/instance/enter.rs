//! The way into a guest and the one way a run's end is written down:
//! [`Instance::enter`] switches in (handlers, alternate stack, signal mask,
//! the run's activation, the switch) and reports how the switch came back
//! ([`Back`]); [`Instance::conclude`] asks the kill word how the run ended
//! ([`Exit`]); [`Instance::settle`] alone writes that into the instance.
//!
//! This module needs `unsafe` for the switch into the guest and for the
//! abort message written when a guest was abandoned mid-panic.
#![allow(unsafe_code)]

use core::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Instant;

use context::Context;

use super::{Instance, Outcome};
use crate::cpu;
use crate::error::{Error, Operation, Panic};
use crate::fault::FaultReport;
use crate::kill::Ended;
use crate::run::{Activation, ResumeSlot, in_guest};
use crate::signal::{AltStackGuard, RunMask, install_handlers, thread_signal_mode};
use crate::state::State;
use crate::watchdog;
use crate::yielding::Yielded;

/// How `enter` goes into the guest.
pub(super) enum How {
    Start { terminable: bool },
    Resume(ResumeSlot),
    Unwind,
}

/// How the guest came back to `enter`, as the switch saw it. Whether a run
/// that came back was terminated is the kill word's to say
/// ([`Instance::conclude`] asks it).
pub(super) enum Back {
    /// Through the host context without a yield or a fault report: the
    /// guest returned, or a kill ended it from guest code.
    Came,
    Yielded(Yielded),
    Faulted(FaultReport),
    /// A kill was pending: the guest was not entered.
    NotEntered,
}

/// How a run ended: what [`Instance::settle`] writes into the instance.
pub(super) enum Exit<V> {
    /// The guest returned `V` (a raw entry's registers, a closure's value).
    Returned(V),
    Yielded(Yielded),
    Faulted(FaultReport),
    /// The closure guest panicked with this payload.
    Panicked(Box<dyn Any + Send>),
    /// A kill was requested for the run (whatever else happened).
    Terminated,
    /// A closure run came back without a result and was not killed. Only a
    /// kill ends a closure from inside, so this is not expected; it is
    /// reported rather than assumed away.
    Lost,
}

/// The type a started run returns, for `resume`'s check and downcast.
#[derive(Clone, Copy)]
pub(super) struct OutputType {
    id: TypeId,
    name: &'static str,
}

impl OutputType {
    pub(super) fn of<T: 'static>() -> OutputType {
        OutputType { id: TypeId::of::<T>(), name: core::any::type_name::<T>() }
    }

    /// [`Error::OutputType`] unless the run returns a `T`.
    pub(super) fn check<T: 'static>(self) -> Result<(), Error> {
        if TypeId::of::<T>() == self.id {
            Ok(())
        } else {
            Err(Error::OutputType { expected: self.name, got: core::any::type_name::<T>() })
        }
    }

    /// The returned value as the `T` the caller asked for.
    pub(super) fn downcast<T: 'static>(self, outcome: Outcome<Box<dyn Any + Send>>) -> Result<Outcome<T>, Error> {
        match outcome {
            Outcome::Returned(value) => match value.downcast::<T>() {
                Ok(t) => Ok(Outcome::Returned(*t)),
                Err(_) => Err(Error::OutputType { expected: self.name, got: core::any::type_name::<T>() }),
            },
            Outcome::Yielded(y) => Ok(Outcome::Yielded(y)),
        }
    }
}

impl Instance {
    /// How the run that came back as `back` ended. Asks the kill word,
    /// which says [`Ended::Terminated`] whenever a kill was requested for
    /// the run (so a terminate that said it takes effect always does), and
    /// takes the guest's result with `value`. A closure's frames abandoned
    /// by a fault or a kill in its code taint the stack here.
    pub(super) fn conclude<V>(
        &mut self,
        back: Back,
        value: impl FnOnce(&mut Self) -> Option<std::thread::Result<V>>,
    ) -> Exit<V> {
        let exit = match back {
            Back::Yielded(y) => return Exit::Yielded(y),
            // Ended terminated in the kill word already: by `start`, or by
            // `resume` after it discarded the suspended guest.
            Back::NotEntered => return Exit::Terminated,
            Back::Faulted(report) => {
                if self.closure_run {
                    self.abandon_closure_frames();
                }
                (Ended::Faulted, Exit::Faulted(report))
            }
            Back::Came => match value(self) {
                Some(Ok(v)) => (Ended::Returned, Exit::Returned(v)),
                Some(Err(payload)) => (Ended::Panicked, Exit::Panicked(payload)),
                // Ended from guest code by a kill (no result): the
                // closure's frames are abandoned.
                None => {
                    self.abandon_closure_frames();
                    (Ended::Returned, Exit::Lost)
                }
            },
        };
        match self.kill.finish(exit.0) {
            Ended::Terminated => Exit::Terminated,
            _ => exit.1,
        }
    }

    /// The one place that writes how a run ended into the instance: its
    /// state, last fault, started closure, resumability, the thread a
    /// suspended closure belongs to, and the value slots.
    pub(super) fn settle<V>(&mut self, exit: Exit<V>) -> Result<Outcome<V>, Error> {
        if let Exit::Yielded(y) = exit {
            debug_assert!(self.pinned.record.resumable(), "only a resumable run is settled as yielded");
            self.state = State::Yielded;
            if self.closure.is_some() {
                self.suspended_on = Some(std::thread::current().id());
            }
            return Ok(Outcome::Yielded(y));
        }
        self.closure = None;
        self.pinned.record.set_resumable(false);
        match exit {
            Exit::Yielded(_) => unreachable!("handled above"),
            Exit::Returned(value) => {
                self.state = State::Returned;
                Ok(Outcome::Returned(value))
            }
            Exit::Panicked(payload) => {
                self.state = State::Panicked;
                Err(Error::Panic(Panic::new(payload)))
            }
            Exit::Faulted(report) => {
                self.state = State::Faulted;
                self.last_fault = Some(report);
                Err(Error::Fault(report))
            }
            Exit::Terminated => {
                self.state = State::Terminated;
                self.pinned.record.clear_slots();
                Err(Error::Terminated)
            }
            Exit::Lost => Err(Error::InvalidState { op: Operation::CollectResult, state: State::Running }),
        }
    }

    /// Switches to the guest (prepared by [`Instance::prepare`], or
    /// suspended in a yield) and returns when it comes back.
    ///
    /// # Safety
    ///
    /// For `How::Start`, the guest context must have just been prepared by
    /// [`Instance::prepare`], for an entry point that honours
    /// [`Instance::run`]'s duties. For `How::Resume`/`How::Unwind`, the
    /// guest must be suspended in a yield.
    pub(super) unsafe fn enter(&mut self, how: How) -> Result<Back, Error> {
        install_handlers()?;
        // The outermost run of a thread installs our alternate signal stack
        // (unless the thread keeps it installed); nested runs are already on
        // it. Dropped last, after the activation.
        let (_alt, mode, entering_keep) = if in_guest() {
            (None, thread_signal_mode(), false)
        } else {
            let (guard, mode, entering_keep) = AltStackGuard::enter()?;
            (Some(guard), mode, entering_keep)
        };
        // Dropped after the activation is finished, i.e. after the kill
        // signal is settled: blocks again what the run unblocked (see
        // `RunMask`).
        let signals = RunMask::enter(mode, entering_keep, self.timeout.is_some() || self.killable())?;
        self.pinned.record.set_host_mask(signals.host_mask());
        let _ = self.pinned.record.take_fault();
        let ticket = self.timeout.map(|t| watchdog::arm(Instant::now() + t, self.kill_switch())).transpose()?;
        // Current from here, just before the kill word says running, so that
        // a kill signal arriving before the switch completes finds this run;
        // not earlier, so that a stray signal let in by `RunMask` counts as
        // arriving outside runs, and a fault in the setup is the outer
        // run's (if any).
        // The host's CPU flags, which the guest's host regions and a
        // handler that abandons the guest put back (see `cpu`).
        let host_flags = cpu::host_flags();
        self.pinned.record.set_host_flags(host_flags);
        let activation = Activation::begin(&self.pinned.record);
        let go = match how {
            How::Start { terminable } => self.kill.start(terminable),
            How::Resume(value) => {
                self.pinned.record.put_resume(value);
                self.kill.resume(false)
            }
            How::Unwind => {
                self.pinned.record.put_resume(ResumeSlot::Unwind);
                self.kill.resume(true)
            }
        };
        if go {
            let panicking_before = std::thread::panicking();
            self.state = State::Running;
            // SAFETY: the caller prepared or suspended `guest`; the host
            // context is heap-pinned and is where the guest returns
            // (through `context_sys_start`), yields to, or is sent back to
            // by the fault and kill handlers. Out of line: the kill
            // handler may interrupt this switch and divert it
            // (`divert_pending_resume` knows only the assembly's windows).
            unsafe { Context::swap_out_of_line(&mut self.pinned.host, &self.pinned.guest) };
            cpu::restore_host_flags(host_flags);
            if std::thread::panicking() && !panicking_before {
                abandoned_while_panicking();
            }
            activation.finish();
        } else {
            drop(activation);
        }
        if let Some(ticket) = ticket {
            watchdog::disarm(ticket);
        }
        if !go {
            return Ok(Back::NotEntered);
        }
        if self.kill.is_yielded() {
            let y = self.pinned.record.take_yield().map(Yielded::new);
            return Ok(match y {
                Some(y) => Back::Yielded(y),
                None => Back::Came,
            });
        }
        Ok(match self.pinned.record.take_fault() {
            Some(report) => Back::Faulted(report),
            None => Back::Came,
        })
    }
}

/// A guest faulted or was killed in the middle of a panic (in the panic
/// hook, or in a destructor run by the unwinding) and its frames were
/// abandoned: std's count of the thread's panics in progress stays raised
/// for good, and there is no way to lower it (the next panic on this thread
/// would abort, `thread::panicking()` would lie). Abort with a message
/// instead of running on in that state.
#[cold]
fn abandoned_while_panicking() -> ! {
    const MSG: &[u8] = b"instance: a guest faulted or was killed while panicking (in the panic hook or a destructor during unwinding); its frames were abandoned and this thread's panic state cannot be restored: aborting\n";
    // SAFETY: writes a static message to fd 2, then aborts.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::abort()
    }
}

impl Instance {
    /// Whether a run started now could be terminated: a [`KillSwitch`]
    /// exists (the watchdog holds one while a timeout is armed). None can
    /// be made while the run lasts: that needs `&self`, and the run holds
    /// `&mut self`; a switch dropped meanwhile only makes the answer
    /// pessimistic.
    fn killable(&self) -> bool {
        Arc::strong_count(&self.kill) > KILL_STATE_OWN_REFS
    }
}

/// References to an instance's kill state that the instance itself holds:
/// its own and its run record's.
const KILL_STATE_OWN_REFS: usize = 2;
