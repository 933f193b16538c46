//! Host regions: host code (allocation, locks, I/O) that a guest calls, and
//! whose faults are therefore the host's; and terminable regions, where a
//! closure guest may be stopped by a [`KillSwitch`](crate::KillSwitch).
//!
//! This module needs `unsafe` to dereference the current run record, to
//! end a run whose termination waited for a region, and to run host code on
//! the host's own stack ([`on_host_stack`]).
#![allow(unsafe_code)]

use core::ffi::c_void;
use std::panic::resume_unwind;

use context::{Context, Val};
use nix::sys::signal::SigSet;

use crate::cpu::{self, FpControl};
use crate::run::{ClosureSlot, Region, RunRecord, closure_entry, end_run_from_guest, with_current};

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
/// the region before it propagates; a termination that waited for the
/// region is then not carried out (ending the run in the middle of an unwind
/// would abandon frames while panicking): the run goes on until the guest
/// returns, yields, or enters [`terminable`] or leaves another region
/// normally. `f` runs with the host's floating-point control (MXCSR and x87
/// control word, as the host had them when it entered the guest), and the
/// guest's comes back afterwards; AC and DF are cleared for it.
///
/// ```
/// let mut inst = instance::Instance::new(64 * 1024)?;
/// let n = inst.run_closure(|| instance::host_region(|| vec![1, 2, 3].len()))?;
/// assert_eq!(n, 3);
/// # Ok::<(), instance::Error>(())
/// ```
pub fn host_region<T>(f: impl FnOnce() -> T) -> T {
    with_current(|record| {
        let Some(record) = record else { return f() };
        let region = Region::enter(record);
        // Host code runs with the host's floating-point control (rounding,
        // exception masks, FTZ/DAZ), not the guest's: a guest that unmasked
        // an exception must not make the host's float code trap.
        let fp = HostFpControl::enter(record);
        let out = f();
        drop(fp);
        region.leave();
        out
    })
}

/// The guest's floating-point control (MXCSR and x87 control word on
/// x86_64, FPCR on aarch64), while a host region runs with the host's
/// (restored on drop, also when `f` panics).
struct HostFpControl {
    guest: Option<FpControl>,
}

impl HostFpControl {
    fn enter(record: &RunRecord) -> HostFpControl {
        let host = cpu::saved_fp_control(record.host());
        let guest = cpu::fp_control();
        if guest == host {
            return HostFpControl { guest: None };
        }
        cpu::load_fp_control(host);
        HostFpControl { guest: Some(guest) }
    }
}

impl Drop for HostFpControl {
    fn drop(&mut self) {
        if let Some(guest) = self.guest {
            cpu::load_fp_control(guest);
        }
    }
}

/// Runs `f` as host code ([`host_region`]) on the host's own stack instead
/// of the guest's, and returns its result.
///
/// A host region called from a guest runs on the guest's stack, which is
/// sized for the guest: deep host code (a parser, a logger that formats, a
/// recursive algorithm) can overflow it, and an overflow inside a host
/// region is the host's fault, which kills the process (with a message
/// naming it, see [`host_region`]). `on_host_stack` switches to the stack of
/// the host that started the run (the thread's stack, below the frames of
/// the host suspended in the run) for the duration of `f`, so `f` has what
/// the host thread has, and an overflow there is reported by Rust's own
/// "has overflowed its stack" handler.
///
/// Use [`host_region`] for short host calls (allocation, a lock, a small
/// write): it costs two atomic updates. Use `on_host_stack` when the host
/// code may need more stack than the guest can spare: it costs a context
/// preparation and two switches more (tens of nanoseconds).
///
/// A panic in `f` is carried back to the guest's stack and continues there.
/// Inside a nested run the host's stack is that of the innermost host not
/// running on an instance's stack; called while already on it, `f` is just
/// called. Outside a run, `f` is simply called.
///
/// ```
/// let mut inst = instance::Instance::new(16 * 1024)?;
/// // 256 KiB of host stack for a guest whose own stack is 16 KiB.
/// let n = inst.run_closure(|| instance::on_host_stack(|| {
///     let big = std::hint::black_box([1u8; 1 << 18]);
///     big.iter().map(|&b| b as u32).sum::<u32>()
/// }))?;
/// assert_eq!(n, 1 << 18);
/// # Ok::<(), instance::Error>(())
/// ```
pub fn on_host_stack<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: reads the stack pointer; no duty beyond calling it.
    let here = unsafe { Context::get_current_stack_pointer() } as usize;
    // Where the innermost host not on an instance's stack has its stack
    // pointer, when this thread runs a guest and is on that guest's stack.
    let top = with_current(|record| record.filter(|r| r.in_mapping(here)).map(host_stack_top));
    let Some(top) = top else {
        // Outside a run, or already on a host's stack (inside
        // `on_host_stack`, or in the host code of a run that never switched
        // stacks).
        return host_region(f);
    };
    host_region(|| {
        // SAFETY: `top` lies on the stack of a host suspended in a switch
        // (found by `host_stack_top`), below its live frames; nothing uses
        // that memory until the host resumes, which only happens after the
        // guest (us) switches back, after `run_below` returned (the host
        // region keeps the run from ending before).
        unsafe { run_below(top, f) }
    })
}

/// Bytes left unused below a suspended host's stack pointer (its red zone
/// and then some).
const HOST_STACK_SLACK: usize = 256;

/// Bytes of the host stack handed to `Context::init` for the boot frame;
/// the code then runs on below it, on the rest of the host's stack.
const HOST_STACK_WINDOW: usize = 1024;

/// The stack pointer of the innermost host of this thread that does not run
/// on an instance's stack: the lowest live point of the host's own stack.
fn host_stack_top(record: &RunRecord) -> usize {
    let mut r = record;
    loop {
        let host_sp = r.host().regs().stack_pointer() as usize;
        match r.outer() {
            Some(outer) if outer.in_mapping(host_sp) => r = outer,
            _ => return host_sp,
        }
    }
}

/// Runs `f` on a fresh context whose stack begins below `host_sp`, and
/// returns its result (or continues its panic).
///
/// # Safety
///
/// The memory below `host_sp` (down to wherever `f` needs) must be a stack
/// that nothing else uses until this returns: the stack of a host that is
/// suspended in a switch and stays so.
unsafe fn run_below<F: FnOnce() -> T, T>(host_sp: usize, f: F) -> T {
    let top = (host_sp - HOST_STACK_SLACK) & !15;
    let base = top - HOST_STACK_WINDOW;
    // SAFETY: the window lies just below the suspended host's stack pointer,
    // on its stack (the caller's duty), 16-aligned, and nothing else
    // refers to it while this function runs.
    let window = unsafe { core::slice::from_raw_parts_mut(base as *mut u64, HOST_STACK_WINDOW / 8) };
    let mut slot = ClosureSlot { f: Some(f), out: None };
    let entry = closure_entry::<F, T> as extern "C" fn(*mut ClosureSlot<F, T>) as usize;
    let arg = Val::CPtr(&mut slot as *mut ClosureSlot<F, T> as *const c_void);
    let mut parent = Context::new();
    let mut child = Context::new();
    // The window holds the boot frame and one register argument, and the
    // entry is not null, so this does not fail; if it did, `f` would run
    // here, on the guest's stack, as in a plain host region.
    if Context::init_with_sigmask(window, &mut parent, &mut child, entry, &[arg], &SigSet::empty()).is_ok() {
        // SAFETY: `child` was just prepared to call `closure_entry` (which
        // catches every panic) on the host's stack and return to `parent`;
        // both contexts live in this frame until the switch comes back.
        unsafe { Context::swap(&mut parent, &child) };
    }
    let out = match slot.f.take() {
        Some(f) => Ok(f()),
        None => slot.out.take().unwrap_or_else(|| Err(Box::new("on_host_stack: no result"))),
    };
    match out {
        Ok(value) => value,
        Err(payload) => resume_unwind(payload),
    }
}

/// Whether this thread is inside a host region of the run it is executing.
pub fn in_host_region() -> bool {
    with_current(|record| record.is_some_and(RunRecord::in_host_region))
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
    with_current(|record| match record {
        None => f(),
        Some(record) => terminable_in(record, f),
    })
}

fn terminable_in<T>(record: &RunRecord, f: impl FnOnce() -> T) -> T {
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
