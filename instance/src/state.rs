//! The life cycle of an [`Instance`](crate::Instance).
//!
//! ```text
//!            run / run_closure                guest returns
//!   Ready ─────────────────────> Running ─────────────────────> Returned ──┐
//!     ^                             │  guest faults                        │
//!     │                             ├────────────────────────> Faulted     │ run again
//!     │                             │  closure guest panics       │        │
//!     │                             ├────────────────────────> Panicked    │
//!     │                             │  killed / timed out         │        │
//!     │                             ├────────────────────────> Terminated  │
//!     │                             │  guest yields   resume      │        │
//!     │                             └──────────> Yielded ──> Running       │
//!     │              reset (unwinds or discards a Yielded guest)  │        │
//!     └───────────────────────────────────────────────────────────┴────────┘
//! ```
//!
//! `Ready` and `Returned` may run; `Yielded` may only be resumed (or reset,
//! or dropped); `Faulted`, `Panicked` and `Terminated` must be
//! [`reset`](crate::Instance::reset) first, so that a caller never runs an
//! instance again without having looked at why it stopped. The enum is
//! `#[non_exhaustive]`.

use core::fmt;

/// Where an [`Instance`](crate::Instance) is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Fresh or reset: may run.
    Ready,
    /// A guest is executing on the instance's stack (observable only from
    /// inside the guest).
    Running,
    /// The last guest returned normally: may run again.
    Returned,
    /// The last guest faulted: must be reset before it runs again.
    Faulted,
    /// The last (closure) guest panicked: must be reset before it runs
    /// again.
    Panicked,
    /// The guest yielded and waits to be resumed (or reset, or dropped).
    Yielded,
    /// The last run was terminated: must be reset before it runs again.
    Terminated,
}

impl State {
    /// A lower-case name (`"ready"`, `"running"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Running => "running",
            State::Returned => "returned",
            State::Faulted => "faulted",
            State::Panicked => "panicked",
            State::Yielded => "yielded",
            State::Terminated => "terminated",
        }
    }

    /// Whether a new run may start from this state.
    pub fn can_run(self) -> bool {
        matches!(self, State::Ready | State::Returned)
    }

    /// Whether [`Instance::reset`](crate::Instance::reset) is allowed.
    pub fn can_reset(self) -> bool {
        !matches!(self, State::Running)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
