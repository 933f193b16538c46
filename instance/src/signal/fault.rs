//! The fault handler: whose fault a signal is, the report, and the
//! redirect back to the host.
//!
//! This module needs `unsafe` to read the kernel's `siginfo_t` and
//! `ucontext_t` and to rewrite the interrupted state.
#![allow(unsafe_code)]

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::{ac_clearing_entry, chain};
use crate::fault::{FaultKind, FaultReport};
use crate::run::{RunRecord, redirect_to_host, with_current};

ac_clearing_entry!("instance_fault_entry", handle_fault);

unsafe extern "C" {
    /// [`handle_fault`] behind the AC-clearing entry (see
    /// `ac_clearing_entry!`); the address given to `sigaction`.
    pub(super) fn instance_fault_entry(signum: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void);
}

/// The handler for every fault signal (entered through
/// `instance_fault_entry`, with EFLAGS.AC clear).
extern "C" fn handle_fault(signum: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    let errno = Errno::last_raw();
    // SAFETY: the kernel passes a valid siginfo and ucontext for an
    // SA_SIGINFO handler.
    let recovered = unsafe { recover(signum, info, uctx.cast()) };
    if !recovered {
        // SAFETY: as above; `chain` forwards them unchanged.
        unsafe { chain(signum, info, uctx) };
    }
    Errno::set_raw(errno);
}

/// If the fault is the running guest's, records it and redirects the
/// interrupted context to the run core's `fault_return`; returns whether it did.
///
/// # Safety
///
/// `info` and `uc` must be the pointers the kernel passed to the handler.
unsafe fn recover(signum: c_int, info: *mut libc::siginfo_t, uc: *mut libc::ucontext_t) -> bool {
    // SAFETY: the caller passes the kernel's siginfo.
    let info = unsafe { &*info };
    if info.si_code <= 0 {
        return false;
    }
    // SAFETY: the caller passes the kernel's ucontext.
    let uc = unsafe { &mut *uc };
    with_current(|record| record.is_some_and(|record| recover_in(record, signum, info, uc)))
}

/// [`recover`] for the current run's `record`.
fn recover_in(record: &RunRecord, signum: c_int, info: &libc::siginfo_t, uc: &mut libc::ucontext_t) -> bool {
    let sp = crate::cpu::uc_sp(uc);
    let pc = crate::cpu::uc_pc(uc);
    if !record.in_mapping(sp) {
        return false;
    }
    if record.in_host_region() {
        // The host's fault, forwarded as if we were not there; but a host
        // region that ran out of the guest's stack would otherwise die
        // without a word (Rust's own report knows only thread stacks).
        if signum == libc::SIGSEGV {
            // SAFETY: si_addr is valid to read for SIGSEGV.
            let addr = unsafe { info.si_addr() } as usize;
            if record.in_guard(addr) || record.in_guard(sp) {
                report_region_overflow(addr);
            }
        }
        return false;
    }
    let Some((signal, kind)) = super::fault_kind(signum) else { return false };
    // SAFETY: si_addr is valid to read for the five fault signals.
    let addr = unsafe { info.si_addr() } as usize;
    let kind = if signal == Signal::SIGSEGV && (record.in_guard(addr) || record.in_guard(sp)) {
        FaultKind::StackOverflow
    } else {
        kind
    };
    record.set_fault(FaultReport { kind, signal, code: info.si_code, addr, pc, sp });
    // SAFETY: `uc` is the kernel's, and the guest it interrupted is
    // abandoned now that its fault is recorded.
    unsafe { redirect_to_host(uc, record) };
    true
}

/// Writes, once per process, to stderr that host code in a host region
/// overflowed the guest's stack (the fault then goes to the host's handler
/// and, as for any host fault, normally kills the process). Async-signal-
/// safe: one `write` of a message built in a stack buffer.
fn report_region_overflow(addr: usize) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    const HEAD: &[u8] = b"instance: host code in a host region overflowed the guest's stack (fault at 0x";
    const TAIL: &[u8] = b"); run deep host code with instance::on_host_stack\n";
    let mut buf = [0u8; HEAD.len() + 16 + TAIL.len()];
    buf[..HEAD.len()].copy_from_slice(HEAD);
    let mut n = HEAD.len();
    let digits = (usize::BITS - addr.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        buf[n] = b"0123456789abcdef"[(addr >> (i * 4)) & 0xf];
        n += 1;
    }
    buf[n..n + TAIL.len()].copy_from_slice(TAIL);
    n += TAIL.len();
    // SAFETY: writes `n` initialised bytes of a live buffer to fd 2; a
    // failure leaves nothing to do.
    let _ = unsafe { libc::write(2, buf.as_ptr().cast(), n) };
}
