//! The values that cross between host and guest: what a guest yields, what
//! it is resumed with, the type it expects back, and a closure guest's
//! inputs and output with the entry point that runs it.
//!
//! This module needs `unsafe` for the one raw pointer the closure entry is
//! handed (the C calling convention passes the slot as an argument).
#![allow(unsafe_code)]

use core::any::{Any, TypeId};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a guest yielded, carried from guest to host.
pub(crate) enum YieldSlot {
    Value(Box<dyn Any + Send>, &'static str),
    U64(u64),
}

/// What the host resumes a guest with.
pub(crate) enum ResumeSlot {
    Value(Box<dyn Any + Send>),
    U64(u64),
    /// Drop the suspended closure: the yield point panics with a private
    /// payload caught where the closure was called.
    Unwind,
}

/// The type a yielded guest wants back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    /// A Rust value of this type (`yield_value`).
    Type(TypeId, &'static str),
    /// A `u64` (the C `instance_yield`): resumed without allocating, and
    /// discarded rather than unwound (C frames cannot be unwound).
    U64,
}

impl Expect {
    pub(crate) fn can_unwind(self) -> bool {
        matches!(self, Expect::Type(..))
    }
}

/// The private payload of the panic that unwinds a dropped suspended
/// closure; `closure_entry` recognises it.
pub(crate) struct UnwindRequest;

/// The closure guest's inputs and output, on the host's stack for the run
/// (`run_closure`) or on the heap (`start_closure`).
pub(crate) struct ClosureSlot<F, T> {
    pub(crate) f: Option<F>,
    pub(crate) out: Option<std::thread::Result<T>>,
}

/// Entry point of a closure guest: calls the closure, catching any panic
/// here, before it could unwind into `context_sys_start`.
pub(crate) extern "C" fn closure_entry<F: FnOnce() -> T, T>(slot: *mut ClosureSlot<F, T>) {
    // SAFETY: the caller passes a pointer to a live slot and does not touch
    // the slot until the guest has switched back.
    let slot = unsafe { &mut *slot };
    if let Some(f) = slot.f.take() {
        slot.out = Some(catch_unwind(AssertUnwindSafe(f)));
    }
}
