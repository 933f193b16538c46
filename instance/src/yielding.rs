//! Yield and resume: a guest hands a value to the host and waits to be
//! resumed with one, from Rust ([`yield_value`]) or from C
//! (`instance_yield`, declared in `include/instance.h`).
//!
//! # How it works
//!
//! The guest stores what it yields (and the type it wants back) in its
//! instance's run record, marks the run yielded in the kill word, and
//! switches from the guest context to the host context with
//! `Context::swap`. The host finds the run yielded, and later stores the
//! resume value in the record and switches back, possibly from another
//! thread. Everything the guest reads after the switch comes from the
//! record it held before (which belongs to the instance, not the thread),
//! and per-thread state is read again through functions that are never
//! inlined ([`crate::in_guest`] and friends).
//!
//! This module needs `unsafe` for the switch itself and for the C entry
//! points.
#![allow(unsafe_code)]

use core::any::{Any, TypeId};
use core::fmt;

use context::Context;

use crate::run::{Expect, Region, ResumeSlot, RunRecord, UnwindRequest, YieldSlot, end_run_from_guest, with_current};

/// A value a guest yielded.
pub struct Yielded {
    slot: YieldSlot,
}

impl Yielded {
    pub(crate) fn new(slot: YieldSlot) -> Yielded {
        Yielded { slot }
    }

    /// The value as a `Y`, or `self` back if it is not one. A `u64` yielded
    /// from C is a `u64`.
    pub fn downcast<Y: Any>(self) -> Result<Y, Yielded> {
        match self.slot {
            YieldSlot::Value(value, name) => match value.downcast::<Y>() {
                Ok(y) => Ok(*y),
                Err(value) => Err(Yielded { slot: YieldSlot::Value(value, name) }),
            },
            YieldSlot::U64(v) => {
                let mut v = Some(v);
                match (&mut v as &mut dyn Any).downcast_mut::<Option<Y>>() {
                    Some(y) => Ok(y.take().expect("just set")),
                    None => Err(Yielded { slot: YieldSlot::U64(v.expect("not taken")) }),
                }
            }
        }
    }

    /// A reference to the value if it is a `Y`.
    pub fn downcast_ref<Y: Any>(&self) -> Option<&Y> {
        match &self.slot {
            YieldSlot::Value(value, _) => value.downcast_ref::<Y>(),
            YieldSlot::U64(v) => (v as &dyn Any).downcast_ref::<Y>(),
        }
    }

    /// The value if it is a `u64` (every C yield is).
    pub fn as_u64(&self) -> Option<u64> {
        self.downcast_ref::<u64>().copied()
    }

    /// The name of the yielded value's type.
    pub fn type_name(&self) -> &'static str {
        match &self.slot {
            YieldSlot::Value(_, name) => name,
            YieldSlot::U64(_) => "u64",
        }
    }
}

impl fmt::Debug for Yielded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.slot {
            YieldSlot::U64(v) => f.debug_tuple("Yielded").field(v).finish(),
            YieldSlot::Value(_, name) => f.debug_tuple("Yielded").field(name).finish(),
        }
    }
}

/// Why [`yield_value`] could not yield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum YieldError {
    /// The calling thread is not running a guest.
    #[error("cannot yield: not running inside a guest")]
    NotInGuest,
    /// The run was started with `run`/`run_closure`, which cannot be
    /// suspended (use `start`/`start_closure`).
    #[error("cannot yield: this run was not started as resumable (use start or start_closure)")]
    NotResumable,
    /// The caller is inside a host region (host code does not yield).
    #[error("cannot yield from inside a host region")]
    InHostRegion,
    /// The guest is unwinding (a panic, or the unwinding of a dropped
    /// suspended closure): a destructor that yields then could not be
    /// unwound again.
    #[error("cannot yield while the guest is unwinding")]
    Unwinding,
    /// The host resumed with a value of another type (the host checks this
    /// first, so it is only reachable through a bug).
    #[error("resumed with a value that is not a {expected}")]
    WrongType {
        /// The type the guest asked for.
        expected: &'static str,
    },
}

/// Calls `f` with the current guest's record if it may yield.
fn with_yielding_record<R>(f: impl FnOnce(&RunRecord) -> R) -> Result<R, YieldError> {
    with_current(|record| {
        let record = record.ok_or(YieldError::NotInGuest)?;
        if std::thread::panicking() {
            return Err(YieldError::Unwinding);
        }
        if !record.resumable() {
            return Err(YieldError::NotResumable);
        }
        if record.in_host_region() {
            return Err(YieldError::InHostRegion);
        }
        Ok(f(record))
    })
}

/// Switches to the host with `value`, and returns what the guest is resumed
/// with. Ends the run instead if a kill is pending.
///
/// # Safety
///
/// `record` must be the current run's, checked by `with_yielding_record`, and
/// the caller must be that run's guest code on the instance's stack.
#[inline(never)]
unsafe fn switch_out(record: &RunRecord, value: YieldSlot, expect: Expect) -> ResumeSlot {
    record.put_yield(value, expect);
    if !record.kill().suspend() {
        // A kill is pending: the run ends here instead of yielding. A Rust
        // yield unwinds the closure (destructors run, as for a kill while
        // yielded); a u64 yield abandons the frames.
        drop(record.take_yield());
        if expect.can_unwind() {
            return ResumeSlot::Unwind;
        }
        // SAFETY: guest code of this run, per the caller's duty.
        unsafe { end_run_from_guest(record) }
    }
    // SAFETY: the guest context is heap-pinned and is the one this code
    // runs in; the host context is waiting in the switch that entered us.
    // We may come back on another thread.
    unsafe { Context::swap(&mut *record.guest_ptr(), record.host()) };
    // A kill requested after the host marked us running again, whose
    // signal found the host still switching: end here.
    if record.kill().accepts() {
        // SAFETY: guest code of this run, per the caller's duty.
        unsafe { end_run_from_guest(record) }
    }
    // The host always stores a resume value before switching back in.
    record.take_resume().unwrap_or(ResumeSlot::Unwind)
}

/// Yields `value` to the host and returns the value the guest is resumed
/// with, a `R`. The host sees [`Outcome::Yielded`](crate::Outcome) and
/// resumes with [`Instance::resume`](crate::Instance::resume), maybe on
/// another thread; resuming with anything but an `R` is an error there and
/// leaves the guest suspended.
///
/// When the host drops or resets the suspended instance (or terminates it),
/// this call does not return: it unwinds the closure's frames with a
/// private panic payload caught where the closure was called, so its
/// destructors run exactly once. Do not swallow that panic with
/// `catch_unwind` inside the guest (if you do, the next yield unwinds
/// again).
///
/// ```
/// use instance::{Instance, Outcome};
/// let mut inst = Instance::new(64 * 1024)?;
/// let first = inst.start_closure(|| {
///     let got: u32 = instance::yield_value::<&str, u32>("ready").unwrap();
///     got * 2
/// })?;
/// let Outcome::Yielded(y) = first else { panic!("expected a yield") };
/// assert_eq!(y.downcast::<&str>().unwrap(), "ready");
/// assert_eq!(inst.resume::<u32, u32>(21)?.returned(), Some(42));
/// # Ok::<(), instance::Error>(())
/// ```
///
/// # Errors
///
/// [`YieldError`] if the caller is not a guest of a resumable run, or is in
/// a host region.
pub fn yield_value<Y: Any + Send, R: Any + Send>(value: Y) -> Result<R, YieldError> {
    with_yielding_record(|record| yield_value_in(record, value))?
}

fn yield_value_in<Y: Any + Send, R: Any + Send>(record: &RunRecord, value: Y) -> Result<R, YieldError> {
    // Boxing allocates: not terminable code.
    let region = Region::enter(record);
    let slot = YieldSlot::Value(Box::new(value), core::any::type_name::<Y>());
    let expect = Expect::Type(TypeId::of::<R>(), core::any::type_name::<R>());
    // SAFETY: `record` was checked by `with_yielding_record`; we are its
    // guest.
    let resumed = unsafe { switch_out(record, slot, expect) };
    let out = match resumed {
        ResumeSlot::Value(v) => {
            v.downcast::<R>().map(|r| *r).map_err(|_| YieldError::WrongType { expected: core::any::type_name::<R>() })
        }
        ResumeSlot::U64(v) => {
            let mut v = Some(v);
            (&mut v as &mut dyn Any)
                .downcast_mut::<Option<R>>()
                .and_then(Option::take)
                .ok_or(YieldError::WrongType { expected: core::any::type_name::<R>() })
        }
        ResumeSlot::Unwind => {
            drop(region);
            std::panic::resume_unwind(Box::new(UnwindRequest))
        }
    };
    region.leave();
    out
}

/// Yields a `u64` and returns the `u64` the guest is resumed with; for
/// raw entry points written in Rust (no allocation, terminable around it).
///
/// # Errors
///
/// As [`yield_value`].
pub fn yield_u64(value: u64) -> Result<u64, YieldError> {
    // SAFETY: checked by `with_yielding_record`; we are its guest.
    with_yielding_record(|record| match unsafe { switch_out(record, YieldSlot::U64(value), Expect::U64) } {
        ResumeSlot::U64(v) => Ok(v),
        // A u64 yield is discarded, never unwound; the host sends nothing
        // else (it checked the type).
        _ => Err(YieldError::WrongType { expected: "u64" }),
    })?
}

// ---- C API (include/instance.h) -----------------------------------------

/// `instance_yield` status: yielded and resumed.
pub const INSTANCE_OK: i32 = 0;
/// `instance_yield` status: not running inside a guest.
pub const INSTANCE_E_NOT_IN_GUEST: i32 = -1;
/// `instance_yield` status: the run is not resumable.
pub const INSTANCE_E_NOT_RESUMABLE: i32 = -2;
/// `instance_yield` status: inside a host region.
pub const INSTANCE_E_IN_HOST_REGION: i32 = -3;

fn status(err: YieldError) -> i32 {
    match err {
        YieldError::NotInGuest => INSTANCE_E_NOT_IN_GUEST,
        YieldError::NotResumable => INSTANCE_E_NOT_RESUMABLE,
        YieldError::InHostRegion => INSTANCE_E_IN_HOST_REGION,
        YieldError::WrongType { .. } | YieldError::Unwinding => INSTANCE_E_NOT_RESUMABLE,
    }
}

/// C: yields `value` to the host; on return `*resumed` (if not null) holds
/// the value the guest was resumed with. Returns `INSTANCE_OK` or a
/// negative `INSTANCE_E_*` status.
///
/// # Safety
///
/// `resumed` must be null or valid for writing a `u64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn instance_yield(value: u64, resumed: *mut u64) -> i32 {
    match yield_u64(value) {
        Ok(v) => {
            if !resumed.is_null() {
                // SAFETY: the caller passes a writable pointer or null.
                unsafe { resumed.write(v) };
            }
            INSTANCE_OK
        }
        Err(e) => status(e),
    }
}

/// C: whether the calling thread is running a guest (1) or not (0).
#[unsafe(no_mangle)]
pub extern "C" fn instance_in_guest() -> i32 {
    i32::from(crate::in_guest())
}

/// C: enters a host region (see [`host_region`](crate::host_region)); pair
/// with [`instance_host_region_leave`]. Does nothing outside a run. Unlike
/// the Rust `host_region`, it keeps the guest's floating-point control words
/// (C code that changes them can restore them itself).
#[unsafe(no_mangle)]
pub extern "C" fn instance_host_region_enter() {
    with_current(|record| {
        if let Some(record) = record {
            // Left by `instance_host_region_leave`, not by a guard.
            core::mem::forget(Region::enter(record));
        }
    });
}

/// C: leaves a host region; if a termination waited for it, the run ends
/// here (this call does not return, the guest's frames are abandoned).
///
/// # Safety
///
/// Must pair with an earlier [`instance_host_region_enter`] of the same
/// guest, and the caller must accept that its frames are abandoned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn instance_host_region_leave() {
    with_current(|record| {
        if let Some(record) = record
            && record.leave_region()
        {
            // SAFETY: guest code of this run; the caller accepts abandonment.
            unsafe { end_run_from_guest(record) }
        }
    });
}
