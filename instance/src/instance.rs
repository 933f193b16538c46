//! [`Instance`]: a guard-page stack, the contexts that run on it, and the
//! bookkeeping that turns a guest's fault or panic into a returned error.
//!
//! This module needs `unsafe` to switch contexts (the guest runs on a stack
//! that only this instance knows is alive) and to pass the closure slot to
//! the guest through a raw pointer.
#![allow(unsafe_code)]

use core::any::{Any, TypeId};
use core::cell::Cell;
use core::ffi::c_void;
use core::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use context::{Context, EntryPoint, UntypedRetVal, Val};
use nix::sys::signal::SigSet;

use crate::error::{Error, Operation, ThreadOp};
use crate::fault::FaultReport;
use crate::kill::{Ended, KillState};
use crate::run::{ClosureSlot, Expect, Nested, ResumeSlot, RunRecord, TRAMPOLINE_AREA, closure_entry};
use crate::stack::Stack;
use crate::state::State;
use crate::switch::KillSwitch;
use crate::yielding::Yielded;

// The stack's guard and scrubbing options: `Instance::with_guard`,
// `set_scrub_stack`, and the scrub that `reset` and `into_stack` call.
mod stack_options;

// The way into a guest (`enter`) and the one settle path (`conclude`,
// `settle`).
mod enter;
use enter::{Back, Exit, How, OutputType};

/// How a resumable run got back to the host: it returned, or it yielded.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome<T> {
    /// The guest returned this.
    Returned(T),
    /// The guest yielded this and waits in [`State::Yielded`] for
    /// [`Instance::resume`].
    Yielded(Yielded),
}

impl<T> Outcome<T> {
    /// The returned value, if the guest returned.
    pub fn returned(self) -> Option<T> {
        match self {
            Outcome::Returned(t) => Some(t),
            Outcome::Yielded(_) => None,
        }
    }

    /// The yielded value, if the guest yielded.
    pub fn yielded(self) -> Option<Yielded> {
        match self {
            Outcome::Returned(_) => None,
            Outcome::Yielded(y) => Some(y),
        }
    }
}

/// A guest's home: a guard-page [`Stack`], the host and guest contexts, and
/// the record the fault handler consults.
///
/// Run a raw entry point with [`Instance::run`] or a Rust closure with
/// [`Instance::run_closure`]; start one that may yield with
/// [`Instance::start`] or [`Instance::start_closure`] and continue it with
/// [`Instance::resume`]. A fault (including a stack overflow) or a panic in
/// the guest comes back as an [`Error`]; the instance then needs
/// [`Instance::reset`] before it runs again (see [`State`]). A
/// [`KillSwitch`] from [`Instance::kill_switch`], or a timeout
/// ([`Instance::set_timeout`]), terminates a run.
///
/// ```
/// use instance::{Error, FaultKind, Instance, State};
///
/// let mut inst = Instance::new(64 * 1024)?;
/// assert_eq!(inst.run_closure(|| 6 * 7)?, 42);
///
/// // A Rust recursion that never ends overflows into the guard region.
/// fn recurse(n: u64) -> u64 {
///     let pad = std::hint::black_box([n; 64]);
///     recurse(pad[3] + 1) + pad[7]
/// }
/// let err = inst.run_closure(|| recurse(0)).unwrap_err();
/// assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::StackOverflow));
/// assert_eq!(inst.state(), State::Faulted);
///
/// inst.reset()?;
/// assert_eq!(inst.run_closure(|| "again")?, "again");
/// # Ok::<(), Error>(())
/// ```
///
/// # Dropping or resetting a suspended guest
///
/// A closure suspended in [`yield_value`](crate::yield_value) is unwound:
/// the yield point panics with a private payload that is caught where the
/// closure was called, so every destructor on its frames runs exactly once
/// (on the thread that drops or resets). A suspended raw entry point, or a
/// closure suspended in the C `instance_yield` (C frames cannot be
/// unwound), is discarded: its frames are abandoned and its stack is reused
/// by the next run or unmapped with the instance.
///
/// # Threads
///
/// An `Instance` is `Send`: it may move to another thread between runs and
/// while suspended. A suspended *closure* stays with the thread it yielded
/// on, because its frames may hold that thread's data: [`Instance::resume`]
/// and [`Instance::reset`] anywhere else return [`Error::WrongThread`] (the
/// guest stays suspended), and dropping the instance anywhere else abandons
/// the closure's frames without running their destructors (what they own
/// is leaked). A raw guest ([`Instance::start`]) may be resumed on any
/// thread; keeping its state valid there is part of `start`'s contract.
///
/// ```
/// use instance::{Error, Instance};
/// use std::cell::Cell;
///
/// thread_local! { static HITS: Cell<u32> = const { Cell::new(0) }; }
///
/// let mut inst = Instance::new(64 * 1024)?;
/// inst.start_closure(|| {
///     // A borrow of this thread's cell, held across the yield.
///     HITS.with(|hits| {
///         instance::yield_value::<(), ()>(()).unwrap();
///         hits.set(hits.get() + 1);
///     })
/// })?;
/// let mut inst = std::thread::spawn(move || {
///     let err = inst.resume::<(), ()>(()).unwrap_err();
///     assert!(matches!(err, Error::WrongThread { .. }));
///     inst
/// })
/// .join()
/// .unwrap();
/// inst.resume::<(), ()>(())?; // back on the thread it yielded on
/// assert_eq!(HITS.with(Cell::get), 1);
/// # Ok::<(), Error>(())
/// ```
///
/// One case the thread check cannot see: a suspended closure kept in a
/// `thread_local!` is dropped, and so unwound, while its thread exits, in an
/// order of thread-local destruction this crate does not control; if its
/// frames borrow another thread-local that was destroyed first, their
/// destructors see it destroyed. Drop or reset suspended closures before
/// their thread ends, not from thread-local destructors.
///
/// What a closure captures must be `Send` (the instance may move before it
/// starts), so a capture of thread-bound data does not compile:
///
/// ```compile_fail
/// let shared = std::rc::Rc::new(1);
/// let mut inst = instance::Instance::new(64 * 1024).unwrap();
/// inst.start_closure(move || *shared + 1);
/// ```
///
/// # Movement
///
/// What the guest and the handler point at (the contexts, the run record,
/// the stack mapping) lives on the heap or in the mapping and does not move
/// with the `Instance`.
pub struct Instance {
    // Field order is drop order: the record and contexts refer to the
    // stack's addresses only as numbers, so any order is sound; the stack
    // goes last anyway.
    pinned: Box<Pinned>,
    state: State,
    last_fault: Option<FaultReport>,
    kill: Arc<KillState>,
    /// The heap slot of a started closure, while its run lasts.
    closure: Option<Box<dyn ClosureOut>>,
    /// The type a started run returns (for `resume`'s check).
    output: OutputType,
    timeout: Option<Duration>,
    /// The thread a closure guest yielded on, while it is suspended: the
    /// only thread that may resume or unwind it (see "Threads" at
    /// [`Instance`]).
    suspended_on: Option<ThreadId>,
    /// Whether `reset` and `into_stack` scrub the stack (see `stack_options`).
    scrub_stack: bool,
    /// Whether the current or last run is a closure guest's (safe code),
    /// whose abandoned frames taint the stack.
    closure_run: bool,
    /// The stack holds abandoned frames of a closure guest (see
    /// [`Instance::quarantine_stack`]): it must never be written, reused or
    /// unmapped again.
    tainted: bool,
    /// The owner vouched that closure guests lend nothing on their frames
    /// ([`Instance::set_reuse_abandoned_stack`]): abandoned frames do not
    /// taint.
    reuse_abandoned: bool,
    /// Dropped by hand in `Drop` (never, when tainted).
    stack: ManuallyDrop<Stack>,
}

/// What must stay at one address for an instance's life, in one
/// allocation: the host and guest contexts (the guest's stack and the run
/// record point at them) and the run record (the thread-local current-run
/// pointer and the handler point at it).
struct Pinned {
    host: Context,
    guest: Context,
    record: RunRecord,
}

thread_local! {
    /// The allocation of the last instance this thread gave the stack back
    /// from ([`Instance::into_stack`]), for the next [`Instance::with_stack`]
    /// here: a pool's take, run, give back then allocates nothing for it (a
    /// 64-byte aligned allocation of a kilobyte, which the C allocator's
    /// aligned path makes dear).
    static SPARE_PINNED: Cell<Option<Box<Pinned>>> = const { Cell::new(None) };
}

/// Keeps `pinned`, no longer used by any instance, as this thread's spare
/// (dropping the one it replaces); drops it during thread exit.
///
/// Nothing refers to it any more: the thread's current run is another (or
/// none), the handlers reach a record only as the current run, and kill
/// switches hold the kill state, not the record; it is as free as memory
/// handed back to the allocator.
fn recycle(pinned: Box<Pinned>) {
    let mut pinned = Some(pinned);
    let _ = SPARE_PINNED.try_with(|spare| drop(spare.replace(pinned.take())));
}

// SAFETY: what moving an `Instance` to another thread lets a safe caller
// do there, and why none of it races:
// * The run record's cells are touched only by the thread executing a run,
//   which holds `&mut Instance` for its whole duration; between runs (and
//   while suspended) nothing refers to them.
// * A suspended closure guest's frames may hold `!Send` data of the thread
//   it yielded on (a borrow of a `thread_local!`, an `Rc`, a guard), which
//   `F: Send` does not rule out. Another thread can neither run them nor
//   drop them: `resume` and `reset` return `Error::WrongThread` there
//   (`check_thread`), and `drop`/`into_stack` there abandon the frames
//   without unwinding them (`discard_suspended`). Only the yielding thread
//   continues or unwinds them.
// * What crosses threads with the instance is `Send`: the closure (`F`), its
//   result (`T`), yielded and resume values (`Box<dyn Any + Send>`).
// * A raw guest (`start`) resumed on another thread is the caller's duty
//   under `start`'s `unsafe` contract.
unsafe impl Send for Instance {}

/// A started closure's slot with its types erased.
trait ClosureOut: Send {
    fn take(&mut self) -> Option<std::thread::Result<Box<dyn Any + Send>>>;
}

impl<F: Send, T: Send + 'static> ClosureOut for ClosureSlot<F, T> {
    fn take(&mut self) -> Option<std::thread::Result<Box<dyn Any + Send>>> {
        self.out.take().map(|r| r.map(|t| Box::new(t) as Box<dyn Any + Send>))
    }
}

/// How often a suspended closure that keeps yielding while being unwound
/// (because it caught the unwind panic) is asked again before it is
/// discarded.
const UNWIND_TRIES: usize = 8;

impl Instance {
    /// An instance on a new stack of `stack_size` usable bytes with a
    /// [`DEFAULT_GUARD_SIZE`](crate::DEFAULT_GUARD_SIZE) guard region (sizes
    /// rounded up to pages; [`Instance::with_guard`] chooses the guard).
    ///
    /// # Errors
    ///
    /// [`Error::Stack`] for a bad size or a failed mapping.
    pub fn new(stack_size: usize) -> Result<Instance, Error> {
        Ok(Instance::with_stack(Stack::new(stack_size)?))
    }

    /// An instance that runs on `stack` (for example one from a
    /// [`StackPool`](crate::StackPool); get it back with
    /// [`Instance::into_stack`]).
    pub fn with_stack(stack: Stack) -> Instance {
        let kill = Arc::new(KillState::new());
        let record = RunRecord::new(stack.mapping_start(), stack.base(), stack.top(), kill.clone());
        let fresh = Pinned { host: Context::new(), guest: Context::new(), record };
        let mut pinned = match SPARE_PINNED.try_with(Cell::take).ok().flatten() {
            Some(mut spare) => {
                *spare = fresh;
                spare
            }
            None => Box::new(fresh),
        };
        let Pinned { host, guest, record } = &mut *pinned;
        record.bind(host, guest);
        Instance {
            pinned,
            state: State::Ready,
            last_fault: None,
            kill,
            closure: None,
            output: OutputType::of::<()>(),
            timeout: None,
            suspended_on: None,
            scrub_stack: true,
            closure_run: false,
            tainted: false,
            reuse_abandoned: false,
            stack: ManuallyDrop::new(stack),
        }
    }

    /// Gives the stack back, for reuse in another instance or a pool. A
    /// suspended guest is unwound or discarded first, as by `drop`; then the
    /// stack is scrubbed (see [`Instance::set_scrub_stack`]). A stack that
    /// holds abandoned frames of a closure guest is quarantined and a fresh
    /// one of the same size is given instead (see
    /// [`quarantined_stacks`](crate::quarantined_stacks)).
    ///
    /// # Errors
    ///
    /// [`Error::Stack`] if the fresh stack of a quarantine cannot be mapped
    /// (the instance is dropped; its stack stays quarantined).
    pub fn into_stack(mut self) -> Result<Stack, Error> {
        let nested = self.discard_suspended();
        self.kill.dropped();
        self.quarantine_stack()?;
        self.scrub_stack_if_asked();
        let this = ManuallyDrop::new(self);
        // SAFETY: each field is read exactly once and `this` is never
        // dropped, so nothing is dropped twice; the fields other than the
        // stack are dropped here as `drop` would.
        let stack = unsafe {
            recycle(core::ptr::read(&this.pinned));
            drop(core::ptr::read(&this.kill));
            drop(core::ptr::read(&this.closure));
            ManuallyDrop::into_inner(core::ptr::read(&this.stack))
        };
        // Last: may end the caller's own run (see `discard_suspended`).
        drop(nested);
        Ok(stack)
    }

    /// Replaces a tainted stack by a fresh one of the same size and guard,
    /// leaking the tainted mapping as it is.
    ///
    /// Safe code in a closure guest may lend memory on its own frames to
    /// something that outlives them: a thread of `std::thread::scope`
    /// reading a local, say. When the frames are abandoned (a fault, a kill
    /// that lands in guest code, a suspended closure discarded without
    /// unwinding), the scope never ends, so its threads may go on using that
    /// memory for as long as the process lives. Unmapping it, zeroing it or
    /// running the next guest on it would be a use after free or a data race
    /// from safe code; so the mapping is left alone for good (its touched
    /// pages stay committed) and counted by
    /// [`quarantined_stacks`](crate::quarantined_stacks). A raw guest's
    /// frames are the caller's business under [`Instance::run`]'s contract
    /// and do not taint.
    /// A closure guest's frames were just abandoned on the stack.
    fn abandon_closure_frames(&mut self) {
        self.tainted |= !self.reuse_abandoned;
    }

    /// Lets [`Instance::reset`] and [`Instance::into_stack`] reuse (and
    /// scrub) a stack on which a closure guest's frames were abandoned,
    /// instead of quarantining it (see
    /// [`quarantined_stacks`](crate::quarantined_stacks)). Off by default.
    ///
    /// A sandbox whose Rust closure guests fault often would otherwise keep
    /// one stack mapping per fault for the life of the process.
    ///
    /// # Safety
    ///
    /// No closure guest run on this instance may make memory on its own
    /// stack frames reachable by anything that outlives a fault or a kill
    /// of the guest: no `std::thread::scope` thread borrowing a local, no
    /// pointer to a local sent to another thread, stored in a static or in
    /// heap data the host keeps. Misuse: a guest that spawns a scoped thread
    /// reading one of its locals and then overflows its stack leaves that
    /// thread reading memory the next run overwrites (a data race, and a use
    /// after free once the stack is unmapped).
    pub unsafe fn set_reuse_abandoned_stack(&mut self, reuse: bool) {
        self.reuse_abandoned = reuse;
    }

    fn quarantine_stack(&mut self) -> Result<(), Error> {
        if !self.tainted {
            return Ok(());
        }
        let fresh = Stack::with_guard(self.stack.size(), self.stack.guard_size())?;
        let old = core::mem::replace(&mut *self.stack, fresh);
        core::mem::forget(old);
        QUARANTINED.fetch_add(1, Ordering::Relaxed);
        self.pinned.record.set_bounds(self.stack.mapping_start(), self.stack.base(), self.stack.top());
        self.tainted = false;
        Ok(())
    }

    /// A switch that terminates this instance's current run, or its next
    /// run if none is in progress (see [`KillSwitch`]).
    pub fn kill_switch(&self) -> KillSwitch {
        KillSwitch::new(self.kill.clone())
    }

    /// Bounds every later run, and every resume, to `timeout` of wall
    /// time from its start (None: no bound). A run that exceeds it is
    /// terminated as by [`KillSwitch::terminate`]; the process's single
    /// watchdog thread does it.
    ///
    /// Works on threads that block signals: a run with a timeout unblocks
    /// the kill signal for its duration and restores the thread's mask
    /// afterwards (see [`KillSwitch`]'s "Blocked signals").
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// The timeout set by [`Instance::set_timeout`].
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The instance's stack.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Where the instance is in its life cycle.
    pub fn state(&self) -> State {
        self.state
    }

    /// The report of the fault that put the instance in
    /// [`State::Faulted`], until the next reset.
    pub fn last_fault(&self) -> Option<&FaultReport> {
        self.last_fault.as_ref()
    }

    /// Makes a faulted, panicked, terminated, yielded or finished instance
    /// ready to run again. Whatever a faulted or terminated guest left on
    /// the stack is abandoned (its destructors do not run); a yielded guest
    /// is unwound or discarded (see the type's docs). Then the stack is
    /// scrubbed (see [`Instance::set_scrub_stack`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the instance is running (which can be
    /// observed only from inside its own guest).
    pub fn reset(&mut self) -> Result<(), Error> {
        if !self.state.can_reset() {
            return Err(Error::InvalidState { op: Operation::Reset, state: self.state });
        }
        self.check_thread(ThreadOp::Reset)?;
        // Dropped last (see `discard_suspended`).
        let _nested = self.discard_suspended();
        self.kill.reset();
        self.state = State::Ready;
        self.last_fault = None;
        let _ = self.pinned.record.take_fault();
        self.pinned.record.clear_slots();
        // A tainted stack is replaced, not scrubbed (its memory may still be
        // in use); should that fail, the next run tries again first.
        self.quarantine_stack()?;
        self.scrub_stack_if_asked();
        Ok(())
    }

    /// Unwinds (closure suspended in `yield_value`) or discards (raw entry,
    /// C yield) a yielded guest; leaves the kill word for the caller to
    /// settle.
    ///
    /// The unwinding is a run nested in the caller's, if the caller is a
    /// guest, so a kill of that outer run waits for it: the returned guard
    /// holds that outer run's region, and ending it may end the outer run
    /// right there (abandoning the caller's frames). The caller drops it
    /// only once its own bookkeeping is complete.
    #[must_use = "drop the guard after the instance's bookkeeping"]
    fn discard_suspended(&mut self) -> Option<Nested> {
        if self.state != State::Yielded {
            return None;
        }
        let mut nested = None;
        // A closure suspended on another thread is abandoned, not unwound:
        // its destructors must not run here (see "Threads").
        let here = self.check_thread(ThreadOp::Reset).is_ok();
        let mut unwound = false;
        if here && self.closure.is_some() && self.pinned.record.expect().can_unwind() {
            nested = Some(Nested::enter());
            for _ in 0..UNWIND_TRIES {
                // SAFETY: the guest is suspended in `yield_value`, which
                // answers the unwind request by panicking to the
                // closure's entry.
                match unsafe { self.enter(How::Unwind) } {
                    Ok(Back::Yielded(_)) => continue,
                    // Unwound to `closure_entry`, which caught the request
                    // (a kill landing in the destructors leaves no result).
                    Ok(Back::Came) => {
                        unwound = self.closure.as_mut().and_then(|c| c.take()).is_some();
                        break;
                    }
                    _ => break,
                }
            }
        }
        if self.closure.is_some() && !unwound {
            self.abandon_closure_frames();
        }
        self.closure = None;
        self.suspended_on = None;
        self.pinned.record.clear_slots();
        self.pinned.record.set_resumable(false);
        self.state = State::Ready;
        nested
    }

    /// Refuses to resume or unwind a suspended closure on another thread
    /// than the one it yielded on.
    fn check_thread(&self, op: ThreadOp) -> Result<(), Error> {
        match self.suspended_on {
            Some(yielded_on) if self.closure.is_some() => {
                let here = std::thread::current().id();
                if here == yielded_on { Ok(()) } else { Err(Error::WrongThread { op, yielded_on, here }) }
            }
            _ => Ok(()),
        }
    }

    fn check_runnable(&self) -> Result<(), Error> {
        if self.state.can_run() { Ok(()) } else { Err(Error::InvalidState { op: Operation::Run, state: self.state }) }
    }

    /// Runs the raw entry point `entry` with `args` (System V rules, see
    /// [`Context::init`]) on the instance's stack and returns its return
    /// registers.
    ///
    /// ```
    /// use context::Val;
    /// extern "C" fn mul(a: u64, b: f64) -> f64 {
    ///     a as f64 * b
    /// }
    /// let mut inst = instance::Instance::new(16 * 1024)?;
    /// // SAFETY: `mul` is an extern "C" function taking (u64, f64) that
    /// // does not unwind.
    /// let ret = unsafe { inst.run(mul as extern "C" fn(_, _) -> _, &[Val::U64(3), Val::F64(0.5)]) }?;
    /// assert_eq!(ret.as_f64(), 1.5);
    /// # Ok::<(), instance::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Fault`] if the guest faulted (the instance is then
    /// [`State::Faulted`]); [`Error::InvalidState`] if the instance may not
    /// run; [`Error::Context`] if the arguments do not fit or `entry` is 0;
    /// the setup errors ([`Error::SignalHandler`], [`Error::AltStack`],
    /// [`Error::ThreadExiting`]).
    ///
    /// # Safety
    ///
    /// * `entry` must be the address of a function with the C calling
    ///   convention whose parameters match `args` in number and class.
    /// * The function must not unwind (a Rust panic must be caught inside
    ///   it), and must not `longjmp` or switch out of the instance's stack
    ///   other than by returning or faulting.
    /// * What it reaches through pointers in `args` must be valid for what
    ///   it does with them.
    /// * Nothing may use memory on its frames once they are abandoned (a
    ///   fault, a kill, a discarded yield): the stack is reused by the next
    ///   run (closure guests get quarantined stacks instead; raw ones do
    ///   not).
    ///
    /// Misuse: passing a `fn(u64)` with no arguments lets it read garbage
    /// from rdi. An entry that unwinds never unwinds into this call: a
    /// panic in an `extern "C"` entry aborts in Rust's "cannot unwind"
    /// shim; one in an `extern "C-unwind"` entry (or a C++ exception,
    /// `pthread_exit`) reaches the context's start-up routine, which
    /// writes [`context::UNWIND_ABORT_MESSAGE`] to standard error (after
    /// the panic hook's message) and aborts the process with SIGABRT. A
    /// `catch_unwind` around `run` catches nothing from the guest.
    pub unsafe fn run(&mut self, entry: impl Into<EntryPoint>, args: &[Val]) -> Result<UntypedRetVal, Error> {
        // SAFETY: the caller's duties are ours.
        match unsafe { self.start_raw(entry.into().addr(), args, false) }? {
            Outcome::Returned(ret) => Ok(ret),
            // A run started by `run` refuses to yield.
            Outcome::Yielded(_) => Err(Error::InvalidState { op: Operation::CollectResult, state: State::Yielded }),
        }
    }

    /// Like [`Instance::run`], but the guest may yield (with the C
    /// `instance_yield` or [`yield_u64`](crate::yield_u64)); continue it
    /// with [`Instance::resume`]`::<UntypedRetVal, u64>`.
    ///
    /// # Errors
    ///
    /// As [`Instance::run`], plus [`Error::Terminated`].
    ///
    /// # Safety
    ///
    /// The duties of [`Instance::run`], and: what the guest reaches
    /// through pointers in `args` must stay valid until the run has
    /// returned, faulted or been terminated, reset or dropped (a suspended
    /// guest still holds them). An entry that unwinds, here or after a
    /// [`Instance::resume`], aborts the process as described for `run`.
    pub unsafe fn start(
        &mut self,
        entry: impl Into<EntryPoint>,
        args: &[Val],
    ) -> Result<Outcome<UntypedRetVal>, Error> {
        // SAFETY: the caller's duties are ours.
        unsafe { self.start_raw(entry.into().addr(), args, true) }
    }

    /// # Safety
    ///
    /// As [`Instance::start`].
    unsafe fn start_raw(
        &mut self,
        entry: usize,
        args: &[Val],
        resumable: bool,
    ) -> Result<Outcome<UntypedRetVal>, Error> {
        let _nested = Nested::enter();
        self.check_runnable()?;
        self.prepare(entry, args, false)?;
        self.closure = None;
        self.output = OutputType::of::<UntypedRetVal>();
        self.pinned.record.set_resumable(resumable);
        // SAFETY: the guest context was just prepared on our stack; the
        // caller vouches for the entry point.
        let back = unsafe { self.enter(How::Start { terminable: true }) }?;
        let exit = self.conclude(back, Instance::raw_value);
        self.settle(exit)
    }

    /// What a raw entry returned: its return registers.
    fn raw_value(&mut self) -> Option<std::thread::Result<UntypedRetVal>> {
        Some(Ok(self.pinned.guest.get_untyped_retval()))
    }

    /// Runs `f` on the instance's stack and returns its result.
    ///
    /// A panic in `f` is caught on the guest's stack (it never unwinds
    /// through the context switch) and returned as [`Error::Panic`], with
    /// the guest's destructors run by the unwinding; re-raise it with
    /// [`Panic::resume`](crate::Panic::resume).
    ///
    /// # Faults in Rust code
    ///
    /// When `f` faults or overflows its stack, its frames are abandoned,
    /// as if its thread had vanished: nothing it owned is dropped, locks it
    /// held stay held, and data it was changing through references may be
    /// left half-changed. Keep guests that may fault away from state the
    /// host keeps using (or reach it only inside a
    /// [`host_region`](crate::host_region), whose faults are the host's).
    ///
    /// Since something may still use memory on those frames (a thread of a
    /// `std::thread::scope` that `f` opened, reading one of its locals), the
    /// stack is never reused after that: [`Instance::reset`] gives the
    /// instance a fresh stack and leaves the old one mapped and untouched
    /// for good ([`quarantined_stacks`] counts them). The same holds when a
    /// kill lands in `f`'s code, or a suspended closure is discarded without
    /// being unwound. An owner whose guests lend nothing on their frames can
    /// opt out with the `unsafe` [`Instance::set_reuse_abandoned_stack`].
    ///
    /// # Errors
    ///
    /// [`Error::Panic`], [`Error::Fault`], [`Error::InvalidState`], and the
    /// setup errors of [`Instance::run`].
    pub fn run_closure<F, T>(&mut self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> T,
    {
        let _nested = Nested::enter();
        self.check_runnable()?;
        let mut slot = ClosureSlot { f: Some(f), out: None };
        let entry = closure_entry::<F, T> as extern "C" fn(*mut ClosureSlot<F, T>) as usize;
        let arg = Val::CPtr(&mut slot as *mut ClosureSlot<F, T> as *const c_void);
        self.prepare(entry, &[arg], true)?;
        self.closure = None;
        self.pinned.record.set_resumable(false);
        // SAFETY: `closure_entry` is an extern "C" fn taking one pointer
        // that catches every panic; `slot` outlives the run, which cannot
        // yield (the record is not resumable).
        let back = unsafe { self.enter(How::Start { terminable: false }) }?;
        // Refused by `yield_value` for a run that is not resumable; never
        // settled as yielded (the slot dies with this frame, so the run must
        // not look resumable).
        if let Back::Yielded(_) = back {
            return Err(Error::InvalidState { op: Operation::CollectResult, state: State::Yielded });
        }
        let exit = self.conclude(back, |_| slot.out.take());
        match self.settle(exit)? {
            Outcome::Returned(value) => Ok(value),
            Outcome::Yielded(_) => unreachable!("a yield was answered above"),
        }
    }

    /// Starts `f` on the instance's stack as a guest that may yield with
    /// [`yield_value`](crate::yield_value); continue it with
    /// [`Instance::resume`]. `f` and its result must be `Send + 'static`,
    /// since a suspended guest outlives this call and may be resumed on
    /// another thread.
    ///
    /// # Errors
    ///
    /// As [`Instance::run_closure`], plus [`Error::Terminated`].
    pub fn start_closure<F, T>(&mut self, f: F) -> Result<Outcome<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _nested = Nested::enter();
        self.check_runnable()?;
        let mut slot = Box::new(ClosureSlot { f: Some(f), out: None });
        let entry = closure_entry::<F, T> as extern "C" fn(*mut ClosureSlot<F, T>) as usize;
        let arg = Val::CPtr(&mut *slot as *mut ClosureSlot<F, T> as *const c_void);
        self.prepare(entry, &[arg], true)?;
        // The slot is on the heap: moving the box into the instance keeps
        // the address the guest was given.
        self.closure = Some(slot);
        self.output = OutputType::of::<T>();
        self.pinned.record.set_resumable(true);
        // SAFETY: `closure_entry` catches every panic; the slot lives in
        // `self.closure` until the run is over.
        let back = unsafe { self.enter(How::Start { terminable: false }) }?;
        let exit = self.conclude(back, Instance::closure_value);
        let outcome = self.settle(exit)?;
        self.output.downcast(outcome)
    }

    /// What a started closure returned (or the panic it caught), taken from
    /// its heap slot; none if a kill ended it from inside.
    fn closure_value(&mut self) -> Option<std::thread::Result<Box<dyn Any + Send>>> {
        self.closure.take().and_then(|mut c| c.take())
    }

    /// Resumes a yielded guest with `value` and runs it until it returns
    /// (`Outcome::Returned(T)`, `T` being what the run returns:
    /// `UntypedRetVal` for a raw entry, the closure's result type for a
    /// closure) or yields again. May be called on another thread than the
    /// one the guest yielded on.
    ///
    /// A guest terminated while yielded ends here without running any of
    /// its code after the yield (a closure's frames are unwound, so its
    /// destructors run): [`Error::Terminated`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] unless the instance is [`State::Yielded`];
    /// [`Error::ResumeType`] if the guest waits for another type than `R`,
    /// [`Error::OutputType`] if the run does not return a `T` (both leave
    /// the guest suspended); then what a run returns.
    pub fn resume<T: 'static, R: Any + Send>(&mut self, value: R) -> Result<Outcome<T>, Error> {
        let _nested = Nested::enter();
        if self.state != State::Yielded {
            return Err(Error::InvalidState { op: Operation::Resume, state: self.state });
        }
        self.check_thread(ThreadOp::Resume)?;
        self.output.check::<T>()?;
        let got = core::any::type_name::<R>();
        let slot = match self.pinned.record.expect() {
            Expect::Type(id, name) => {
                if TypeId::of::<R>() != id {
                    return Err(Error::ResumeType { expected: name, got });
                }
                ResumeSlot::Value(Box::new(value))
            }
            Expect::U64 => {
                let mut value = Some(value);
                match (&mut value as &mut dyn Any).downcast_mut::<Option<u64>>().and_then(Option::take) {
                    Some(v) => ResumeSlot::U64(v),
                    None => return Err(Error::ResumeType { expected: "u64", got }),
                }
            }
        };
        // SAFETY: the guest is suspended in a yield, which takes the resume
        // slot when it continues.
        let back = unsafe { self.enter(How::Resume(slot)) }?;
        // A kill pending at the resume: the suspended guest is unwound or
        // discarded first (a closure's destructors run), then the run ends.
        // The guard of an outer run is dropped last (see
        // `discard_suspended`).
        if let Back::NotEntered = back {
            let nested = self.discard_suspended();
            let _ = self.kill.finish(Ended::Terminated);
            let result = self.settle::<T>(Exit::Terminated);
            drop(nested);
            return result;
        }
        if self.closure.is_some() {
            let exit = self.conclude(back, Instance::closure_value);
            self.settle(exit).and_then(|outcome| self.output.downcast(outcome))
        } else {
            let exit = self.conclude(back, Instance::raw_value);
            let boxed = self.settle(exit).map(|outcome| match outcome {
                Outcome::Returned(ret) => Outcome::Returned(Box::new(ret) as Box<dyn Any + Send>),
                Outcome::Yielded(y) => Outcome::Yielded(y),
            });
            boxed.and_then(|outcome| self.output.downcast(outcome))
        }
    }

    /// Prepares the guest context to call `entry(args)` on the instance's
    /// stack, with the host context as its parent.
    ///
    /// The mask the contexts record is not read from the thread (no system
    /// call): nothing here ever `set_from_signal`s into them. The fault
    /// handler restores the mask kept in the run record instead, which
    /// `enter` reads per run when the thread's mode asks for it.
    ///
    /// `closure`: whether the guest is a closure (see `closure_run`). A
    /// stack still tainted (its quarantine failed at `reset`) is replaced
    /// first.
    fn prepare(&mut self, entry: usize, args: &[Val], closure: bool) -> Result<(), Error> {
        self.quarantine_stack()?;
        self.closure_run = closure;
        let Pinned { host, guest, .. } = &mut *self.pinned;
        // The top of the stack is the fault trampoline's (see
        // `TRAMPOLINE_AREA`); the guest starts below it.
        let words = self.stack.as_words_mut();
        let guest_words = words.len().saturating_sub(TRAMPOLINE_AREA / 8);
        Context::init_with_sigmask(&mut words[..guest_words], host, guest, entry, args, &SigSet::empty())?;
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let nested = self.discard_suspended();
        self.kill.dropped();
        if self.tainted {
            // Quarantined for good: never unmapped (see `quarantine_stack`).
            QUARANTINED.fetch_add(1, Ordering::Relaxed);
        } else {
            // SAFETY: dropped exactly once, here; `into_stack` takes the
            // stack out without running this `drop`.
            unsafe { ManuallyDrop::drop(&mut self.stack) };
        }
        // Last: may end the caller's own run (see `discard_suspended`); the
        // other fields then stay allocated with the abandoned frames.
        drop(nested);
    }
}

/// Stacks left mapped for good because they held abandoned frames of a
/// closure guest (see [`Instance::reset`]).
static QUARANTINED: AtomicUsize = AtomicUsize::new(0);

/// How many stacks this process has quarantined: left mapped, untouched,
/// for the rest of its life, because a closure guest's frames on them were
/// abandoned (it faulted, a kill landed in its code, or it was discarded
/// while suspended without being unwound) and safe code may still use
/// memory on them. Each keeps the pages its guests touched committed.
pub fn quarantined_stacks() -> usize {
    QUARANTINED.load(Ordering::Relaxed)
}

impl core::fmt::Debug for Instance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Instance")
            .field("state", &self.state)
            .field("stack", &self.stack)
            .field("last_fault", &self.last_fault)
            .finish_non_exhaustive()
    }
}
