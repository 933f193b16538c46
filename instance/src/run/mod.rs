//! The run core: which run a thread is executing, how a run begins and
//! ends, and every way out of a guest.
//!
//! * [`RunRecord`] (`record.rs`): what the handlers, host regions and
//!   yields read about one instance's runs, and the value slots
//!   (`slots.rs`) it holds. A record lives on the heap, owned by its
//!   [`Instance`](crate::Instance), so its address is stable for the
//!   instance's life.
//! * The thread-local current run, reachable only through [`with_current`]:
//!   the one place that turns the pointer into a reference. Nested runs
//!   chain the records through [`RunRecord::outer`].
//! * [`Activation`]: a run's time as the current run. `begin` makes the
//!   record current; `finish`, once the guest came back, stops the kill
//!   word, installs the mask a handler's redirect left, settles a sent kill
//!   signal and restores the outer run, in that order (a kill signal may
//!   still be on its way until the word is stopped, and must be taken
//!   before the host's code runs on).
//! * The ways out of a guest: returning through the closure entry or the
//!   start routine (`slots.rs`), the handler's redirect ([`exit`]),
//!   [`end_run_from_guest`] (kills that land in guest code, host regions
//!   that end a killed run) and [`Region`], the host region guard.
//!
//! This module needs `unsafe` for the dereference in [`with_current`] and
//! to switch to the host context without saving the abandoned guest.
#![allow(unsafe_code)]

mod exit;
mod record;
mod slots;

pub(crate) use exit::{TRAMPOLINE_AREA, kill_pad, redirect_to_host};
pub(crate) use record::RunRecord;
pub(crate) use slots::{ClosureSlot, Expect, ResumeSlot, UnwindRequest, YieldSlot, closure_entry};

use core::cell::Cell;
use core::ptr;

use context::Context;

thread_local! {
    /// The record of the run this thread is executing, or null. `const`
    /// initialised and without destructor, so reading it is
    /// async-signal-safe (no lazy initialisation, no registration).
    static CURRENT: Cell<*const RunRecord> = const { Cell::new(ptr::null()) };
}

/// The record of the innermost run on this thread, or null.
///
/// Never inlined: a guest that yields on one thread may be resumed on
/// another, and a caller that had the thread-local's address computed
/// before the switch must not reuse it after (see `context::Context`'s
/// "Threads" section). Each call computes it afresh.
#[inline(never)]
fn current() -> *const RunRecord {
    CURRENT.get()
}

/// Makes `record` the current run; returns the one it replaces. Never
/// inlined, for the reason given at [`current`].
#[inline(never)]
fn set_current(record: *const RunRecord) -> *const RunRecord {
    CURRENT.replace(record)
}

/// Calls `f` with the run this thread is executing (the innermost one), if
/// any. The reference lives only for the call: code that switches away
/// inside `f` (a yield) finds the same record when it continues, because
/// the record belongs to the instance, not the thread, and the instance
/// outlives every run of it.
///
/// Async-signal-safe: the thread-local is `const`-initialised and has no
/// destructor.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&RunRecord>) -> R) -> R {
    // SAFETY: the pointer is null or was set by `Activation::begin` to a
    // record that lives in its instance's pinned heap allocation; it is
    // reset (to the outer run's record) by that activation's end before the
    // instance's `&mut` borrow that started the run ends, so while it is
    // current the instance, and the record, are alive and not moved. The
    // record is only used through `&` (its cells handle the sharing between
    // host, guest and handler on this thread).
    f(unsafe { current().as_ref() })
}

/// Whether this thread is executing a guest right now (outside any host
/// region or inside one).
pub fn in_guest() -> bool {
    with_current(|record| record.is_some())
}

/// A run's time as the current run of its thread (see the module docs).
pub(crate) struct Activation<'a> {
    record: &'a RunRecord,
    /// The run that was current before (this run is nested in it), or null.
    outer: *const RunRecord,
}

impl<'a> Activation<'a> {
    /// Makes `record` the current run of this thread, nested in the run
    /// that was current (if any). Before the kill word says running, so
    /// that a kill signal arriving before the switch completes finds it.
    pub(crate) fn begin(record: &'a RunRecord) -> Activation<'a> {
        let outer = current();
        record.set_outer(outer);
        set_current(record);
        Activation { record, outer }
    }

    /// Once the guest came back (returned, yielded, faulted, ended by a
    /// kill): stops the kill word (no kill signal is sent for this run from
    /// here on), installs the mask a handler's redirect left for the host,
    /// waits for a kill signal that was sent to be taken, and restores the
    /// outer run as current, in that order.
    pub(crate) fn finish(self) {
        let kill = self.record.kill();
        kill.stop();
        self.record.set_on_way_back(false);
        exit::restore_mask_after_redirect(self.record);
        kill.settle_signal();
        // Dropping restores the outer run.
    }
}

/// Restores the outer run as current: after `finish`, or at once when the
/// run did not enter its guest (a kill was pending at its start).
impl Drop for Activation<'_> {
    fn drop(&mut self) {
        set_current(self.outer);
        // The outer record may not outlive this run: `outer()` must never
        // find it once this run is no longer current.
        self.record.set_outer(ptr::null());
    }
}

/// An entered host region; `leave` ends it normally, dropping it (during an
/// unwind) ends it without acting on a pending kill.
pub(crate) struct Region<'a> {
    record: &'a RunRecord,
}

impl<'a> Region<'a> {
    pub(crate) fn enter(record: &'a RunRecord) -> Region<'a> {
        record.enter_region();
        // Host code follows: a guest's alignment check or direction flag
        // (x86_64), or its PSTATE bits and streaming mode (aarch64), must
        // not reach it.
        crate::cpu::restore_host_flags(record.host_flags());
        Region { record }
    }

    /// Leaves the region; ends the run here if a kill waited for it.
    pub(crate) fn leave(self) {
        let record = self.record;
        core::mem::forget(self);
        if record.leave_region() {
            // SAFETY: we are guest code of this run (the region was entered
            // by the guest on this thread), and the documented contract of
            // regions is that the guest's frames are abandoned here.
            unsafe { end_run_from_guest(record) }
        }
    }
}

impl Drop for Region<'_> {
    fn drop(&mut self) {
        let _ = self.record.leave_region();
    }
}

/// The host region that a nested run is, for the run it is nested in: the
/// inner run counts as a host region of the outer one, so a kill of the
/// outer run waits for the inner run to come back and then ends the outer
/// run (when this is dropped, after the inner instance's bookkeeping).
pub(crate) struct Nested {
    /// Whether a run was current (and its region entered) at `enter`.
    entered: bool,
}

impl Nested {
    pub(crate) fn enter() -> Nested {
        let entered = with_current(|record| record.map(RunRecord::enter_region).is_some());
        Nested { entered }
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        if !self.entered {
            return;
        }
        // The same record as at `enter`: the inner run restored it when it
        // ended, and the outer guest cannot have yielded meanwhile (it is
        // in a host region, where yields are refused).
        with_current(|record| {
            if let Some(record) = record
                && record.leave_region()
                && !std::thread::panicking()
            {
                // SAFETY: we are guest code of the outer run on its stack;
                // the inner instance's bookkeeping is complete, and the
                // outer guest's frames are abandoned as documented for kills.
                unsafe { end_run_from_guest(record) }
            }
        });
    }
}

/// Ends the current run of `record` from guest code: switches to its host
/// context, abandoning the guest's frames. The host sees the kill request
/// and reports the run as terminated.
///
/// # Safety
///
/// The caller must be guest code of `record`'s run on this thread, on the
/// instance's stack, with nothing above it that must run (the frames are
/// abandoned, as after a fault).
pub(crate) unsafe fn end_run_from_guest(record: &RunRecord) -> ! {
    // Stopped before the switch: a kill signal still on its way must find
    // the run no longer running, or it would take the host's code between
    // here and the host's own `stop` for the switch into the guest and
    // divert the guest's (stale, abandoned) resume word.
    record.kill().stop();
    // SAFETY: the host context was saved by the switch that entered the
    // guest and is waiting in it; the caller accepts the abandonment.
    unsafe { Context::set(record.host()) }
}
