//! Errors of the `instance` crate, and the caught-panic payload.

use core::any::Any;
use core::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::fault::FaultReport;
use crate::stack::StackError;
use crate::state::State;

/// Why a run did not return a value, or what was wrong with a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input to the context layer (arguments that do not fit the stack,
    /// a null entry point, ...).
    #[error(transparent)]
    Context(#[from] context::Error),
    /// A stack could not be made or handled.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The guest faulted; the instance is now [`State::Faulted`].
    #[error("the guest faulted: {0}")]
    Fault(FaultReport),
    /// A closure guest panicked; the instance is now [`State::Panicked`].
    /// [`Panic::resume`] re-raises it in the host.
    #[error("the guest panicked: {0}")]
    Panic(Panic),
    /// The operation is not allowed in the instance's current state.
    #[error("cannot {op} an instance that is {state}")]
    InvalidState {
        /// What was attempted.
        op: Operation,
        /// The state the instance was in.
        state: State,
    },
    /// Installing the process-wide handler for `signal` failed.
    #[error("could not install the handler for {signal}")]
    SignalHandler {
        /// The signal whose handler could not be installed.
        signal: Signal,
        /// The error `sigaction` returned.
        #[source]
        errno: Errno,
    },
    /// Installing the handler of the kill signal failed.
    #[error("could not install the handler for the kill signal {signum}")]
    KillHandler {
        /// The kill signal's number.
        signum: i32,
        /// The error `sigaction` returned.
        #[source]
        errno: Errno,
    },
    /// A kill signal outside the real-time range, or a change after one
    /// was fixed.
    #[error("kill signal {signum} refused: it must be in {min}..={max} and match the one in use ({in_use}, 0 = none)")]
    KillSignal {
        /// The signal asked for.
        signum: i32,
        /// `SIGRTMIN()`.
        min: i32,
        /// `SIGRTMAX()`.
        max: i32,
        /// The signal already in use, or 0.
        in_use: i32,
    },
    /// The run was terminated by a [`KillSwitch`](crate::KillSwitch) or a
    /// timeout; the instance is now [`State::Terminated`].
    #[error("the guest was terminated")]
    Terminated,
    /// [`Instance::resume`](crate::Instance::resume) with a value of a type
    /// the yielded guest does not accept; the guest stays suspended.
    #[error("cannot resume with a {got}: the guest waits for a {expected}")]
    ResumeType {
        /// The type the guest waits for.
        expected: &'static str,
        /// The type given.
        got: &'static str,
    },
    /// [`Instance::resume`](crate::Instance::resume) asked for a result type
    /// the run does not produce; the guest stays suspended.
    #[error("cannot collect a {got} from a run that returns {expected}")]
    OutputType {
        /// What the run returns.
        expected: &'static str,
        /// The type asked for.
        got: &'static str,
    },
    /// Switching the thread's alternate signal stack failed (for example
    /// because a run was started from a handler running on it).
    #[error("could not switch the alternate signal stack")]
    AltStack(#[source] Errno),
    /// Reading the thread's signal mask failed.
    #[error("could not read or change the signal mask")]
    SignalMask(#[source] Errno),
    /// The process-wide watchdog thread that serves timeouts could not be
    /// started.
    #[error("could not start the timeout watchdog thread")]
    WatchdogThread(#[source] std::io::Error),
    /// [`set_thread_signal_mode`](crate::set_thread_signal_mode) was called
    /// while the thread runs an instance.
    #[error("cannot change the thread's signal mode while it runs an instance")]
    SignalModeInRun,
    /// A closure guest suspended in a yield may be resumed or unwound only
    /// on the thread it yielded on: its frames may hold that thread's data
    /// (a borrow of a `thread_local!`, a `MutexGuard`, an `Rc`), which
    /// another thread must not touch. The guest stays suspended; resume or
    /// reset it on `yielded_on` (dropping it elsewhere abandons its frames).
    #[error(
        "cannot {op} a closure guest on thread {here:?}: it yielded on thread {yielded_on:?}, and only that thread may continue it"
    )]
    WrongThread {
        /// What was attempted.
        op: ThreadOp,
        /// The thread the closure yielded on.
        yielded_on: std::thread::ThreadId,
        /// The calling thread.
        here: std::thread::ThreadId,
    },
    /// The thread is exiting and its thread-local state is gone.
    #[error("the thread is exiting; its thread-local instance state is gone")]
    ThreadExiting,
}

impl Error {
    /// The fault report, if this is [`Error::Fault`].
    pub fn fault(&self) -> Option<&FaultReport> {
        match self {
            Error::Fault(report) => Some(report),
            _ => None,
        }
    }

    /// The caught panic, if this is [`Error::Panic`].
    pub fn into_panic(self) -> Option<Panic> {
        match self {
            Error::Panic(panic) => Some(panic),
            _ => None,
        }
    }
}

/// What [`Error::InvalidState`] refused; displayed as the verb the error
/// message uses ("cannot run an instance that is faulted").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Starting a run ([`Instance::run`](crate::Instance::run),
    /// [`start`](crate::Instance::start) and their closure forms).
    Run,
    /// [`Instance::reset`](crate::Instance::reset).
    Reset,
    /// [`Instance::resume`](crate::Instance::resume).
    Resume,
    /// Collecting a run's result: a run that cannot yield came back
    /// yielded, or a closure run came back without a result.
    CollectResult,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Run => "run",
            Operation::Reset => "reset",
            Operation::Resume => "resume",
            Operation::CollectResult => "collect the result of",
        })
    }
}

/// What [`Error::WrongThread`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThreadOp {
    /// [`Instance::resume`](crate::Instance::resume).
    Resume,
    /// [`Instance::reset`](crate::Instance::reset).
    Reset,
}

impl fmt::Display for ThreadOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThreadOp::Resume => "resume",
            ThreadOp::Reset => "reset",
        })
    }
}

/// A panic caught inside a closure guest, with its payload.
///
/// `Send + Sync` like the rest of [`Error`], so that `?` carries it into a
/// `Box<dyn std::error::Error + Send + Sync>`: a panic payload is only
/// `Send`, so it is kept behind a [`Mutex`] (never contended: reading it
/// takes `&self` and locks for the guard's life, [`Panic::payload_mut`] and
/// [`Panic::into_payload`] need no lock). The message is copied out when
/// the panic is caught.
pub struct Panic {
    payload: Mutex<Box<dyn Any + Send + 'static>>,
    message: Option<String>,
}

impl Panic {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> Panic {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some((*s).to_owned())
        } else {
            payload.downcast_ref::<String>().cloned()
        };
        Panic { payload: Mutex::new(payload), message }
    }

    /// The payload, for `downcast_ref` (through the returned guard:
    /// `panic.payload().downcast_ref::<T>()`).
    pub fn payload(&self) -> MutexGuard<'_, Box<dyn Any + Send + 'static>> {
        // Nothing can panic while the lock is held by us, and a poisoned
        // payload is still the payload.
        self.payload.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The payload, mutably (no lock taken).
    pub fn payload_mut(&mut self) -> &mut (dyn Any + Send + 'static) {
        &mut **self.payload.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// The payload, owned.
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        self.payload.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// The panic message when the payload is a `&str` or a `String` (what
    /// `panic!` produces).
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// Re-raises the panic in the caller with its original payload
    /// ([`std::panic::resume_unwind`]).
    pub fn resume(self) -> ! {
        std::panic::resume_unwind(self.into_payload())
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panic").field("message", &self.message()).finish_non_exhaustive()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("(payload is not a string)"))
    }
}
