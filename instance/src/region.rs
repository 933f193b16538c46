//! Host regions: host code (allocation, locks, I/O) that a guest calls, and
//! whose faults are therefore the host's.
//!
//! This module needs `unsafe` to dereference the current run record.
#![allow(unsafe_code)]

use crate::run::{RunRecord, current};

/// Runs `f` as host code: while it runs, a fault on this thread is not
/// reported as the guest's but goes to the handler installed before ours
/// (a host null dereference inside the region kills the process with
/// SIGSEGV, as it would without this crate).
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
    struct Leave<'a>(&'a RunRecord);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.leave_region();
        }
    }
    record.enter_region();
    let _leave = Leave(record);
    f()
}

/// Whether this thread is inside a host region of the run it is executing.
pub fn in_host_region() -> bool {
    let record = current();
    // SAFETY: as in `host_region`.
    !record.is_null() && unsafe { &*record }.in_host_region()
}
