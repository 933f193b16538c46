//! The run record: what the signal handler and host regions need to know
//! about the run a thread is executing, and the thread-local pointer to it.
//!
//! A record lives on the heap, owned by its [`Instance`](crate::Instance),
//! so its address is stable for the instance's life. While a run is in
//! progress the thread-local [`current`] points at it; nested runs chain the
//! records through `outer`.
//!
//! This module needs `unsafe` because the record is shared, by raw pointer,
//! between the host code of a run, the guest, and the signal handler that
//! interrupts the guest on the same thread.
#![allow(unsafe_code)]

use core::cell::{Cell, UnsafeCell};
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use context::Context;

use crate::fault::FaultReport;

thread_local! {
    /// The record of the run this thread is executing, or null. `const`
    /// initialised and without destructor, so reading it is
    /// async-signal-safe (no lazy initialisation, no registration).
    static CURRENT: Cell<*const RunRecord> = const { Cell::new(ptr::null()) };
}

/// The record of the innermost run on this thread, or null.
pub(crate) fn current() -> *const RunRecord {
    CURRENT.get()
}

/// Makes `record` the current run; returns the one it replaces.
pub(crate) fn set_current(record: *const RunRecord) -> *const RunRecord {
    CURRENT.replace(record)
}

/// Whether this thread is executing a guest right now (outside any host
/// region or inside one).
pub fn in_guest() -> bool {
    !current().is_null()
}

/// What the handler and host regions read about one instance's runs.
pub(crate) struct RunRecord {
    /// Lowest address of the stack mapping (bottom of the guard region).
    map_start: usize,
    /// Lowest usable address (top of the guard region).
    base: usize,
    /// One past the highest usable address.
    top: usize,
    /// The instance's host context (heap-pinned in a `ContextHandle`).
    host: *const Context,
    /// Depth of host regions the guest is inside. Atomic because a kill
    /// switch on another thread will need to read it.
    regions: AtomicU32,
    /// Written by the handler when the guest faults; taken by the host
    /// after the run.
    fault: UnsafeCell<Option<FaultReport>>,
}

impl RunRecord {
    pub(crate) fn new(map_start: usize, base: usize, top: usize, host: *const Context) -> RunRecord {
        RunRecord { map_start, base, top, host, regions: AtomicU32::new(0), fault: UnsafeCell::new(None) }
    }

    pub(crate) fn in_mapping(&self, addr: usize) -> bool {
        addr >= self.map_start && addr < self.top
    }

    pub(crate) fn in_guard(&self, addr: usize) -> bool {
        addr >= self.map_start && addr < self.base
    }

    pub(crate) fn top(&self) -> usize {
        self.top
    }

    pub(crate) fn host(&self) -> &Context {
        // SAFETY: `host` points into the ContextHandle owned by the same
        // instance as this record; the handle's context never moves and
        // lives as long as the instance (and so this record).
        unsafe { &*self.host }
    }

    pub(crate) fn in_host_region(&self) -> bool {
        self.regions.load(Ordering::SeqCst) != 0
    }

    pub(crate) fn enter_region(&self) {
        self.regions.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn leave_region(&self) {
        self.regions.fetch_sub(1, Ordering::SeqCst);
    }

    /// Called by the handler.
    pub(crate) fn set_fault(&self, report: FaultReport) {
        // SAFETY: only the thread running this record's guest touches
        // `fault`: the handler (interrupting the guest) writes it, the host
        // reads it after the guest has switched back. Never concurrently.
        unsafe { *self.fault.get() = Some(report) };
    }

    /// Called by the host around a run.
    pub(crate) fn take_fault(&self) -> Option<FaultReport> {
        // SAFETY: as in `set_fault`; the guest is not running now.
        unsafe { (*self.fault.get()).take() }
    }

    pub(crate) fn reset_regions(&self) {
        self.regions.store(0, Ordering::SeqCst);
    }
}
