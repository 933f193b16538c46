//! [`Instance`]: a guard-page stack, the contexts that run on it, and the
//! bookkeeping that turns a guest's fault or panic into a returned error.
//!
//! This module needs `unsafe` to switch contexts (the guest runs on a stack
//! that only this instance knows is alive) and to pass the closure slot to
//! the guest through a raw pointer.
#![allow(unsafe_code)]

use core::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use context::{Context, ContextHandle, UntypedRetVal, Val};

use crate::error::{Error, Panic};
use crate::fault::FaultReport;
use crate::run::{RunRecord, current, set_current};
use crate::signal::{AltStackGuard, install_handlers};
use crate::stack::Stack;
use crate::state::State;

/// A guest's home: a guard-page [`Stack`], the host and guest contexts, and
/// the record the fault handler consults.
///
/// Run a raw entry point with [`Instance::run`] or a Rust closure with
/// [`Instance::run_closure`]. A fault (including a stack overflow) or a
/// panic in the guest comes back as an [`Error`]; the instance then needs
/// [`Instance::reset`] before it runs again (see [`State`]).
///
/// ```
/// use instance::{Error, FaultKind, Instance, State};
///
/// let mut inst = Instance::new(64 * 1024)?;
/// assert_eq!(inst.run_closure(|| 6 * 7)?, 42);
///
/// // A Rust recursion that never ends overflows into the guard page.
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
/// # Movement
///
/// An `Instance` may be moved between runs; what the guest and the handler
/// point at (the contexts, the run record, the stack mapping) lives on the
/// heap or in the mapping and does not move with it.
pub struct Instance {
    // Field order is drop order: the record and contexts refer to the
    // stack's addresses only as numbers, so any order is sound; the stack
    // goes last anyway.
    record: Box<RunRecord>,
    host: ContextHandle,
    guest: ContextHandle,
    state: State,
    last_fault: Option<FaultReport>,
    stack: Stack,
}

// SAFETY: the run record's cells are touched only by the thread executing a
// run, which holds `&mut Instance` for its whole duration; between runs
// nothing refers to them, so the instance may move to another thread.
unsafe impl Send for Instance {}

/// The closure guest's inputs and output, on the host's stack for the run.
struct ClosureSlot<F, T> {
    f: Option<F>,
    out: Option<std::thread::Result<T>>,
}

/// Entry point of a closure guest: calls the closure, catching any panic
/// here, before it could unwind into `context_sys_start`.
extern "C" fn closure_entry<F: FnOnce() -> T, T>(slot: *mut ClosureSlot<F, T>) {
    // SAFETY: `run_closure` passes a pointer to its own live slot and does
    // not touch the slot until the guest has switched back.
    let slot = unsafe { &mut *slot };
    if let Some(f) = slot.f.take() {
        slot.out = Some(catch_unwind(AssertUnwindSafe(f)));
    }
}

impl Instance {
    /// An instance on a new stack of `stack_size` usable bytes with one
    /// guard page (sizes rounded up to pages).
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
        let host = ContextHandle::new();
        let record = Box::new(RunRecord::new(stack.mapping_start(), stack.base(), stack.top(), &*host));
        Instance { record, host, guest: ContextHandle::new(), state: State::Ready, last_fault: None, stack }
    }

    /// Gives the stack back, for reuse in another instance or a pool.
    pub fn into_stack(self) -> Stack {
        self.stack
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

    /// Makes a faulted, panicked or finished instance ready to run again.
    /// Whatever a faulted guest left on the stack is abandoned (its
    /// destructors do not run).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when the instance is running (which can be
    /// observed only from inside its own guest).
    pub fn reset(&mut self) -> Result<(), Error> {
        if !self.state.can_reset() {
            return Err(Error::InvalidState { op: "reset", state: self.state });
        }
        self.state = State::Ready;
        self.last_fault = None;
        self.record.reset_regions();
        let _ = self.record.take_fault();
        Ok(())
    }

    fn check_runnable(&self) -> Result<(), Error> {
        if self.state.can_run() { Ok(()) } else { Err(Error::InvalidState { op: "run", state: self.state }) }
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
    /// let ret = unsafe { inst.run(mul as usize, &[Val::U64(3), Val::F64(0.5)]) }?;
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
    ///
    /// Misuse: passing a `fn(u64)` with no arguments lets it read garbage
    /// from rdi; an entry that panics aborts the process.
    pub unsafe fn run(&mut self, entry: usize, args: &[Val]) -> Result<UntypedRetVal, Error> {
        self.check_runnable()?;
        Context::init(self.stack.as_words_mut(), &mut self.host, &mut self.guest, entry, args)?;
        // SAFETY: the guest context was just prepared on our stack; the
        // caller vouches for the entry point.
        match unsafe { self.switch_to_guest() }? {
            Some(report) => Err(self.faulted(report)),
            None => {
                self.state = State::Returned;
                Ok(self.guest.get_untyped_retval())
            }
        }
    }

    /// Runs `f` on the instance's stack and returns its result.
    ///
    /// A panic in `f` is caught on the guest's stack (it never unwinds
    /// through the context switch) and returned as [`Error::Panic`], with
    /// the guest's destructors run by the unwinding; re-raise it with
    /// [`Panic::resume`].
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
    /// # Errors
    ///
    /// [`Error::Panic`], [`Error::Fault`], [`Error::InvalidState`], and the
    /// setup errors of [`Instance::run`].
    pub fn run_closure<F, T>(&mut self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> T,
    {
        self.check_runnable()?;
        let mut slot = ClosureSlot { f: Some(f), out: None };
        let entry = closure_entry::<F, T> as extern "C" fn(*mut ClosureSlot<F, T>) as usize;
        let arg = Val::CPtr(&mut slot as *mut ClosureSlot<F, T> as *const c_void);
        Context::init(self.stack.as_words_mut(), &mut self.host, &mut self.guest, entry, &[arg])?;
        // SAFETY: `closure_entry` is an extern "C" fn taking one pointer
        // that catches every panic; `slot` outlives the run.
        if let Some(report) = unsafe { self.switch_to_guest() }? {
            return Err(self.faulted(report));
        }
        match slot.out.take() {
            Some(Ok(value)) => {
                self.state = State::Returned;
                Ok(value)
            }
            Some(Err(payload)) => {
                self.state = State::Panicked;
                Err(Error::Panic(Panic::new(payload)))
            }
            // The entry always fills `out` before returning; a guest that
            // came back without a result and without a fault cannot occur.
            None => Err(Error::InvalidState { op: "collect the result of", state: State::Running }),
        }
    }

    fn faulted(&mut self, report: FaultReport) -> Error {
        self.state = State::Faulted;
        self.last_fault = Some(report);
        Error::Fault(report)
    }

    /// Switches to the prepared guest context and returns when it has
    /// returned (`None`) or faulted (`Some(report)`).
    ///
    /// # Safety
    ///
    /// `self.guest` must have just been prepared by `Context::init` on
    /// `self.stack` with `self.host` as parent, for an entry point that
    /// honours [`Instance::run`]'s duties.
    unsafe fn switch_to_guest(&mut self) -> Result<Option<FaultReport>, Error> {
        install_handlers()?;
        let outer = current();
        // The outermost run of a thread installs our alternate signal stack;
        // nested runs are already on it.
        let _alt = if outer.is_null() { Some(AltStackGuard::enter()?) } else { None };
        let _ = self.record.take_fault();
        self.state = State::Running;
        set_current(&*self.record);
        // SAFETY: the caller prepared `guest`; the host context is
        // heap-pinned and is where the guest returns (through
        // `context_sys_start`) or is sent back to by the fault handler.
        unsafe { Context::swap(&mut self.host, &self.guest) };
        set_current(outer);
        Ok(self.record.take_fault())
    }
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
