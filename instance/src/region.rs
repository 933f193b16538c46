//! Host regions: host code (allocation, locks, I/O) that a guest calls, and
//! whose faults are therefore the host's; and terminable regions, where a
//! closure guest may be stopped by a [`KillSwitch`](crate::KillSwitch).
//!
//! This module needs `unsafe` to dereference the current run record and to
//! end a run whose termination waited for a region.
#![allow(unsafe_code)]

use crate::run::{RunRecord, current, end_run_from_guest};

/// Runs `f` as host code: while it runs, a fault on this thread is not
/// reported as the guest's but goes to the handler installed before ours
/// (a host null dereference inside the region kills the process with
/// SIGSEGV, as it would without this crate), and a termination of the run
/// waits until the region ends.
///
/// When `f` returns and a termination was requested meanwhile for a guest
/// in terminable code, the run ends right there: `f`'s side effects are
/// kept, its return value and the guest's frames are abandoned (nothing on
/// them is dropped), and the run returns
/// [`Error::Terminated`](crate::Error::Terminated). This is what makes kills
/// safe around allocation: put the allocation (or lock) in a region and a
/// kill can never stop it half-way.
///
/// Regions nest. Outside a run, `f` is simply called. A panic in `f` leaves
/// the region before it propagates.
///
/// ```
/// let mut inst = instance::Instance::new(64 * 1024)?;
/// let n = inst.run_closure(|| instance::host_region(|| vec![1, 2, 3].len()))?;
/// assert_eq!(n, 3);
/// # Ok::<(), instance::Error>(())
/// ```
pub fn host_region<T>(f: impl FnOnce() -> T) -> T {
    let record = current();
    if record.is_null() {
        return f();
    }
    // SAFETY: a non-null current record belongs to the run this thread is
    // executing, whose instance outlives this call (it is running us).
    let record: &RunRecord = unsafe { &*record };
    let region = Region::enter(record);
    let out = f();
    region.leave();
    out
}

/// An entered host region; `leave` ends it normally, dropping it (during an
/// unwind) ends it without acting on a pending kill.
pub(crate) struct Region<'a> {
    record: &'a RunRecord,
}

impl<'a> Region<'a> {
    pub(crate) fn enter(record: &'a RunRecord) -> Region<'a> {
        record.enter_region();
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

/// Whether this thread is inside a host region of the run it is executing.
pub fn in_host_region() -> bool {
    let record = current();
    // SAFETY: as in `host_region`.
    !record.is_null() && unsafe { &*record }.in_host_region()
}

/// Runs `f` as terminable guest code: while it runs (outside host regions
/// inside it), a [`KillSwitch`](crate::KillSwitch) stops the run at once
/// with the kill signal. Raw entry points are always terminable; closure
/// guests only inside this, because ordinary Rust code allocates and takes
/// locks that a kill must not interrupt (wrap those in
/// [`host_region`] inside `f`).
///
/// A run stopped inside `f` abandons the guest's frames as a fault does:
/// nothing on them is dropped. If a kill was requested before `f` starts,
/// the run ends before `f` runs. Outside a run, `f` is simply called.
///
/// ```
/// use std::time::Duration;
/// let mut inst = instance::Instance::new(64 * 1024)?;
/// inst.set_timeout(Some(Duration::from_millis(10)));
/// let err = inst.run_closure(|| instance::terminable(|| loop { std::hint::spin_loop() })).unwrap_err();
/// assert!(matches!(err, instance::Error::Terminated));
/// # Ok::<(), instance::Error>(())
/// ```
pub fn terminable<T>(f: impl FnOnce() -> T) -> T {
    let record = current();
    if record.is_null() {
        return f();
    }
    // SAFETY: as in `host_region`.
    let record: &RunRecord = unsafe { &*record };
    let (was, end) = record.kill().set_terminable(true);
    if end {
        // SAFETY: guest code of this run; abandoning is the contract.
        unsafe { end_run_from_guest(record) }
    }
    struct Restore<'a>(&'a RunRecord, bool);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill().set_terminable(self.1);
        }
    }
    let restore = Restore(record, was);
    let out = f();
    core::mem::forget(restore);
    let (_, end) = record.kill().set_terminable(was);
    // A kill that was sent while `f` ran but had not landed yet: end now
    // rather than let the closure run on unstoppable.
    if end && !was {
        // SAFETY: as above.
        unsafe { end_run_from_guest(record) }
    }
    out
}
