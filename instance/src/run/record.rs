//! [`RunRecord`]: what the signal handlers, host regions and yields need to
//! know about one instance's runs, and the slots the guest and the host
//! hand values over in.
//!
//! This module needs `unsafe` because the record is shared between the host
//! code of a run, its guest and the signal handlers that interrupt the
//! guest on the same thread, through cells only one of them touches at a
//! time (each access says why).
#![allow(unsafe_code)]

use core::cell::{Cell, UnsafeCell};
use core::ptr;
use std::sync::Arc;

use context::Context;
use nix::sys::signal::SigSet;

use super::slots::{Expect, ResumeSlot, YieldSlot};
use crate::cpu::HostFlags;
use crate::fault::FaultReport;
use crate::kill::KillState;

/// What the handler and host regions read about one instance's runs.
pub(crate) struct RunRecord {
    /// Lowest address of the stack mapping (bottom of the guard region).
    map_start: usize,
    /// Lowest usable address (top of the guard region).
    base: usize,
    /// One past the highest usable address.
    top: usize,
    /// The instance's host context (in the same heap allocation as this
    /// record; set by `bind`).
    host: *const Context,
    /// The instance's guest context (heap-pinned), which a yield saves.
    guest: *mut Context,
    /// Phase, kill request and host-region depth, shared with kill
    /// switches on other threads.
    kill: Arc<KillState>,
    /// Written by the handler when the guest faults; taken by the host
    /// after the run.
    fault: UnsafeCell<Option<FaultReport>>,
    /// Whether the guest may yield (a `start`ed run, not `run`).
    resumable: Cell<bool>,
    /// What the guest yielded, taken by the host.
    yielded: UnsafeCell<Option<YieldSlot>>,
    /// What the yielded guest expects to be resumed with.
    expect: Cell<Expect>,
    /// What the host resumes the guest with, taken by the guest.
    resume: UnsafeCell<Option<ResumeSlot>>,
    /// The record of the run this one is nested in (or null), while it runs.
    outer: Cell<*const RunRecord>,
    /// The signal mask a faulted guest's thread gets back: the host's, read
    /// when the run started or resumed, or none to keep the guest's (see
    /// `ThreadSignalMode`).
    host_mask: Cell<Option<SigSet>>,
    /// The mask the host installs when a handler ended the guest (the
    /// redirect returns into the trampoline with every signal blocked).
    mask_after_redirect: Cell<Option<SigSet>>,
    /// A handler redirected the guest to the host by way of the alternate
    /// signal stack, and the host has not stopped the run yet.
    on_way_back: Cell<bool>,
    /// The CPU flags of the host that entered the guest (nothing on x86_64;
    /// PSTATE.DIT/SSBS/TCO on aarch64), put back after the guest switches
    /// back, in host regions and by a handler's redirect.
    host_flags: Cell<HostFlags>,
}

impl RunRecord {
    pub(crate) fn new(map_start: usize, base: usize, top: usize, kill: Arc<KillState>) -> RunRecord {
        RunRecord {
            map_start,
            base,
            top,
            host: ptr::null(),
            guest: ptr::null_mut(),
            kill,
            fault: UnsafeCell::new(None),
            resumable: Cell::new(false),
            yielded: UnsafeCell::new(None),
            expect: Cell::new(Expect::U64),
            resume: UnsafeCell::new(None),
            outer: Cell::new(ptr::null()),
            host_mask: Cell::new(None),
            mask_after_redirect: Cell::new(None),
            on_way_back: Cell::new(false),
            host_flags: Cell::new(HostFlags::UNSET),
        }
    }

    /// Points the record at its instance's contexts, once they (and the
    /// record) are at their final addresses.
    pub(crate) fn bind(&mut self, host: &Context, guest: &mut Context) {
        self.host = host;
        self.guest = guest;
    }

    /// Points the record at a new stack mapping (a quarantine replaced the
    /// instance's stack; no run is in progress).
    pub(crate) fn set_bounds(&mut self, map_start: usize, base: usize, top: usize) {
        self.map_start = map_start;
        self.base = base;
        self.top = top;
    }

    /// The record of the run this one is nested in, while this one runs.
    pub(crate) fn outer(&self) -> Option<&RunRecord> {
        // SAFETY: `outer` is set by `Activation::begin` to the record that
        // was current when this run began (or null), and set back to null
        // when that activation ends; so it is non-null only while this run
        // is an activation on the stack of this thread's runs. That record
        // is the run this thread was executing as host code of which this
        // run was started: it is suspended in the switch into this run and
        // outlives it (its instance is borrowed by the frames waiting below
        // us). So while this run is current, the outer record is live.
        unsafe { self.outer.get().as_ref() }
    }

    pub(super) fn set_outer(&self, outer: *const RunRecord) {
        self.outer.set(outer);
    }

    pub(crate) fn host_mask(&self) -> Option<SigSet> {
        self.host_mask.get()
    }

    /// Sets the mask the host installs after a redirect; returns the one
    /// it replaces. Written by a handler of the running guest, read by the
    /// host after the guest switched back: never concurrently.
    pub(crate) fn set_mask_after_redirect(&self, mask: Option<SigSet>) -> Option<SigSet> {
        self.mask_after_redirect.replace(mask)
    }

    /// Whether the thread is on its way back from a handler's redirect to
    /// the host on the alternate signal stack (set by the redirect, cleared
    /// by the host once it has stopped the run): code interrupted on the
    /// alternate stack is then that way back (or a handler over it), not a
    /// handler over the guest. Read by a handler of this thread only.
    pub(crate) fn on_way_back(&self) -> bool {
        self.on_way_back.get()
    }

    pub(crate) fn set_on_way_back(&self, on: bool) {
        self.on_way_back.set(on);
    }

    pub(crate) fn set_host_mask(&self, mask: Option<SigSet>) {
        self.host_mask.set(mask);
    }

    /// The flags the host entered the guest with (see `host_flags`).
    pub(crate) fn host_flags(&self) -> HostFlags {
        self.host_flags.get()
    }

    /// Written by the host before it switches into the guest; read by the
    /// guest's host regions and handlers: never concurrently.
    pub(crate) fn set_host_flags(&self, flags: HostFlags) {
        self.host_flags.set(flags);
    }

    pub(crate) fn kill(&self) -> &KillState {
        &self.kill
    }

    /// The guest context, for the yield's switch.
    pub(crate) fn guest_ptr(&self) -> *mut Context {
        self.guest
    }

    pub(crate) fn resumable(&self) -> bool {
        self.resumable.get()
    }

    pub(crate) fn set_resumable(&self, on: bool) {
        self.resumable.set(on);
    }

    pub(crate) fn expect(&self) -> Expect {
        self.expect.get()
    }

    /// Guest side of a yield: what it hands over and what it wants back.
    pub(crate) fn put_yield(&self, value: YieldSlot, expect: Expect) {
        self.expect.set(expect);
        // SAFETY: guest and host of one run never execute at the same time;
        // the host takes the slot only after the guest switched to it.
        unsafe { *self.yielded.get() = Some(value) };
    }

    pub(crate) fn take_yield(&self) -> Option<YieldSlot> {
        // SAFETY: as in `put_yield`; the guest is suspended.
        unsafe { (*self.yielded.get()).take() }
    }

    pub(crate) fn put_resume(&self, value: ResumeSlot) {
        // SAFETY: as in `put_yield`; the guest is suspended.
        unsafe { *self.resume.get() = Some(value) };
    }

    pub(crate) fn take_resume(&self) -> Option<ResumeSlot> {
        // SAFETY: as in `put_yield`; the guest runs, the host waits.
        unsafe { (*self.resume.get()).take() }
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
        // SAFETY: `host` was bound to the context beside this record in the
        // instance's one heap allocation, which never moves and
        // lives as long as the instance (and so this record).
        unsafe { &*self.host }
    }

    pub(crate) fn in_host_region(&self) -> bool {
        self.kill.in_region()
    }

    pub(crate) fn enter_region(&self) {
        self.kill.enter_region();
    }

    /// Returns true if the run must end now (a kill waited for the region).
    #[must_use]
    pub(crate) fn leave_region(&self) -> bool {
        self.kill.leave_region()
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

    /// Drops whatever a discarded yield left in the slots.
    pub(crate) fn clear_slots(&self) {
        drop(self.take_yield());
        drop(self.take_resume());
    }
}
