//! `Context` and `ContextHandle`: the saved state of one execution context
//! and the operations that switch between them.
//!
//! This module needs `unsafe` because it is the boundary with the assembly in
//! `context-sys`: it writes a start-up frame onto a caller-provided stack,
//! hands raw addresses of register blocks to code that keeps them, and calls
//! routines that continue on another stack. Each such place says why it
//! holds; the rest of the crate is safe code.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::convert::Infallible;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use context_sys::{BootFrame, ContextRegs};
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use crate::arch::{RESUME_SLOT_WORDS, boot_arg_slots, fresh_regs, retvals, zeroed_boot};
use crate::bits::{FpRegValue, V128, fp_from_bits};
use crate::entry::EntryPoint;
use crate::error::Error;
use crate::plan::{Classifier, FrameShape, Slot};
use crate::retval::UntypedRetVal;
use crate::val::{Val, val_to_stack};

/// Words in a [`BootFrame`].
const BOOT_WORDS: usize = core::mem::size_of::<BootFrame>() / core::mem::size_of::<u64>();
const _: () = assert!(BOOT_WORDS * core::mem::size_of::<u64>() == core::mem::size_of::<BootFrame>());
const _: () = assert!(core::mem::size_of::<BootFrame>() == context_sys::layout::BOOT_SIZE);

/// The registers, return values and signal mask of one execution context.
///
/// A `Context` becomes a valid target for [`Context::swap`] or
/// [`Context::set`] in one of two ways: [`Context::init`] prepares it to call
/// a function on a fresh stack, or a `swap` *from* it saves the running
/// context into it.
///
/// # Layout
///
/// `#[repr(C, align(64))]`: the register block the assembly reads
/// ([`context_sys::ContextRegs`]) comes first, so rsp, the callee-saved
/// registers, MXCSR and the x87 control word share one cache line; the return
/// registers follow, then the mask recorded by `init` ([`Context::sigset`]).
///
/// # Movement
///
/// After [`Context::init`], the child's stack and registers hold the
/// addresses of both the child and the parent `Context`: neither may move
/// (or be dropped) until the child's entry function has returned. Keep
/// contexts that are switched between in a [`ContextHandle`], which
/// allocates them on the heap where they never move.
///
/// # Threads
///
/// A suspended context may be resumed on another thread. Code running in it
/// must then not rely on thread-locals it touched before the switch in the
/// same function: the compiler may keep a thread-local's address in a
/// register or stack slot across the call to `swap`, and after the move that
/// address is the old thread's. Re-read such state through a function that
/// is not inlined into the migrating frame, or pass it by pointer.
#[repr(C, align(64))]
pub struct Context {
    /// Written by the assembly through raw pointers (the child's return path
    /// stores its return registers here while Rust may hold `&Context`), so
    /// it lives in an `UnsafeCell`.
    regs: UnsafeCell<ContextRegs>,
    /// The signal mask recorded by `init`, as the kernel reads it from a
    /// `sigset_t`: its first word, bit `n - 1` for signal `n` (see
    /// [`mask_word`]).
    sigmask: u64,
}

// SAFETY: `Context` is plain data. The only mutation behind a shared
// reference is done by the assembly during `swap`/`set`, which are `unsafe`
// and require the caller to own the contexts involved for the switch.
unsafe impl Sync for Context {}

impl Default for Context {
    fn default() -> Context {
        Context::new()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("regs", &self.regs()).finish_non_exhaustive()
    }
}

impl Context {
    /// A context with nothing saved yet. It is not a valid target for a
    /// switch until [`Context::init`] prepares it or a [`Context::swap`] from
    /// it saves into it.
    pub fn new() -> Context {
        Context { regs: UnsafeCell::new(ContextRegs::default()), sigmask: 0 }
    }

    /// A copy of the saved register block, for inspection.
    pub fn regs(&self) -> ContextRegs {
        // SAFETY: reading plain data; the assembly only writes it during a
        // switch, which cannot run concurrently with this `&self` borrow on
        // the same thread, and a cross-thread switch requires the (unsafe)
        // caller of `swap` to have exclusive use of the context.
        unsafe { *self.regs.get() }
    }

    /// Prepares `child` so that the first switch to it calls
    /// `fptr(args...)` on `stack`, and when that function returns, stores its
    /// return registers (rax, rdx, xmm0) in `child` and continues in
    /// `parent`.
    ///
    /// Arguments follow the System V AMD64 rules: the first six integer-class
    /// values in rdi, rsi, rdx, rcx, r8, r9, the first eight floating values
    /// in xmm0–xmm7, the rest on the stack in order, with the stack 16-byte
    /// aligned at the call (argument registers that carry no argument hold
    /// unspecified values, as after any call). The stack's top (one past its
    /// last word) must be 16-byte aligned. The child starts with the calling
    /// thread's MXCSR and x87 control word; the calling thread's signal mask
    /// is recorded in both `child` and `parent` (see
    /// [`Context::set_from_signal`]).
    ///
    /// Everything is validated before anything is written, and nothing is
    /// written outside `stack`.
    ///
    /// The entry function must not unwind: if it does (a panic in an
    /// `extern "C-unwind"` entry, a C++ exception, `pthread_exit`), the
    /// process aborts with [`UNWIND_ABORT_MESSAGE`](crate::UNWIND_ABORT_MESSAGE)
    /// instead of unwinding into the frames that switched to the child (see
    /// the crate docs).
    ///
    /// # Cost
    ///
    /// Linux keeps a thread's signal mask only in the kernel, so recording
    /// it takes one `rt_sigprocmask` system call: about 150 ns of the
    /// roughly 170 ns an init + run + return of a one-argument entry takes
    /// on a reused stack, against about 12 ns without it (the benchmark
    /// machine of `docs/PERFORMANCE.md`; a system call is dearer in a VM).
    /// [`Context::init_with_sigmask`] takes the mask from the caller instead
    /// and makes no system call: use it when the thread's mask is known
    /// (read once, passed to many inits) or when
    /// [`Context::set_from_signal`] is never used.
    ///
    /// # Errors
    ///
    /// Checked in this order: [`Error::EmptyStack`],
    /// [`Error::UnalignedStack`], [`Error::StackTooSmall`] (with the bytes
    /// needed for the start-up frame and spilled arguments),
    /// [`Error::NullEntryPoint`]; then [`Error::SignalMask`] if the mask
    /// cannot be read.
    ///
    /// # Movement
    ///
    /// `child` and `parent` must stay where they are until the entry
    /// function returns (see [`Context`]'s "Movement").
    ///
    /// ```
    /// use context::{Context, ContextHandle, Val};
    ///
    /// extern "C" fn add(a: u64, b: f64) -> f64 {
    ///     a as f64 + b
    /// }
    ///
    /// #[repr(align(16))]
    /// struct Stack([u64; 1024]);
    /// let mut stack = Box::new(Stack([0; 1024]));
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::new();
    /// Context::init(&mut stack.0, &mut parent, &mut child, add as extern "C" fn(_, _) -> _, &[Val::U64(2), Val::F64(0.5)])?;
    /// // SAFETY: both contexts are heap-pinned and the stack outlives the run.
    /// unsafe { Context::swap(&mut parent, &child) };
    /// assert_eq!(child.get_untyped_retval().as_f64(), 2.5);
    /// # Ok::<(), context::Error>(())
    /// ```
    pub fn init(
        stack: &mut [u64],
        parent: &mut Context,
        child: &mut Context,
        fptr: impl Into<EntryPoint>,
        args: &[Val],
    ) -> Result<(), Error> {
        let fptr = fptr.into().addr();
        let shape = Context::validate(stack, fptr, args)?;
        let mask = SigSet::thread_get_mask().map_err(Error::SignalMask)?;
        Context::write_start(stack, parent, child, fptr, args, &shape, mask_word(&mask));
        Ok(())
    }

    /// Exactly [`Context::init`], except that `sigmask` is recorded in
    /// `child` and `parent` instead of the calling thread's signal mask: no
    /// system call is made.
    ///
    /// For callers that prepare many contexts on one thread whose mask they
    /// know (read it once with [`SigSet::thread_get_mask`] and pass it to
    /// every call), or that never leave a context with
    /// [`Context::set_from_signal`] (pass any mask, for example
    /// [`SigSet::empty`]). The mask only matters to `set_from_signal`, which
    /// installs it; a mask that is not the thread's is installed all the
    /// same.
    ///
    /// # Errors
    ///
    /// Those of [`Context::init`], in the same order, except
    /// [`Error::SignalMask`]: [`Error::EmptyStack`],
    /// [`Error::UnalignedStack`], [`Error::StackTooSmall`],
    /// [`Error::NullEntryPoint`]. Nothing is written when it fails.
    ///
    /// # Movement
    ///
    /// As for [`Context::init`].
    ///
    /// Reading the mask once and preparing many children with it:
    ///
    /// ```
    /// use context::{Context, ContextHandle, Val};
    /// use nix::sys::signal::SigSet;
    ///
    /// extern "C" fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// #[repr(align(16))]
    /// struct Stack([u64; 1024]);
    /// let mut stack = Box::new(Stack([0; 1024]));
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::new();
    ///
    /// // One system call, then none per child.
    /// let mask = SigSet::thread_get_mask().expect("read the signal mask");
    /// for x in 0..100u64 {
    ///     Context::init_with_sigmask(&mut stack.0, &mut parent, &mut child, square as extern "C" fn(_) -> _, &[Val::U64(x)], &mask)?;
    ///     // SAFETY: both contexts are heap-pinned and the stack outlives the run.
    ///     unsafe { Context::swap(&mut parent, &child) };
    ///     assert_eq!(child.get_retval_gp(0), x * x);
    /// }
    /// assert_eq!(child.sigset(), mask);
    /// # Ok::<(), context::Error>(())
    /// ```
    #[inline]
    pub fn init_with_sigmask(
        stack: &mut [u64],
        parent: &mut Context,
        child: &mut Context,
        fptr: impl Into<EntryPoint>,
        args: &[Val],
        sigmask: &SigSet,
    ) -> Result<(), Error> {
        let fptr = fptr.into().addr();
        let shape = Context::validate(stack, fptr, args)?;
        Context::write_start(stack, parent, child, fptr, args, &shape, mask_word(sigmask));
        Ok(())
    }

    /// The body shared by [`Context::init`] and
    /// [`Context::init_with_sigmask`]: writes the start-up frame and both
    /// contexts. Cannot fail; `shape` is what `validate` returned for these
    /// `stack`, `fptr` and `args`.
    ///
    /// Each argument is classified and converted once, straight into its
    /// register slot in the boot frame or its stack slot (see [`ArgPlan`](crate::ArgPlan)
    /// for the layout, which this must and is tested to reproduce). Natively
    /// nothing else of the boot frame is written but the entry.
    #[inline(always)]
    fn write_start(
        stack: &mut [u64],
        parent: &mut Context,
        child: &mut Context,
        fptr: usize,
        args: &[Val],
        shape: &FrameShape,
        mask: u64,
    ) {
        // A stack that was run on before may be marked dead below its old
        // stack pointer by memcheck; it is ours to write again. The check is
        // inlined so that natively no call is made.
        let on_valgrind = crate::valgrind::running_on_valgrind();
        if on_valgrind {
            crate::valgrind::make_stack_writable(stack);
        }

        // The frame, from the saved rsp (sp) up to the top: the resume slot
        // (the resume word, then on aarch64 a zero word), the boot frame,
        // then `tail`: the spilled arguments (first one lowest) and the
        // padding. `validate` checked that it fits, and it is never shorter
        // than the resume slot and the boot frame.
        let words = stack.len();
        let frame = &mut stack[shape.resume_index(words)..];
        let Some((head, tail)) = frame.split_first_chunk_mut::<{ RESUME_SLOT_WORDS + BOOT_WORDS }>() else {
            unreachable!("a start-up frame always holds the resume slot and the boot frame")
        };
        let (resume_slot, boot) = head.split_at_mut(RESUME_SLOT_WORDS);
        let [resume_word, slot_rest @ ..] = resume_slot else { unreachable!("the resume slot has at least one word") };
        // The resume slot's second word (aarch64) is zero, as the start
        // routine's stack expects it.
        slot_rest.fill(0);
        debug_assert_eq!(tail.len(), shape.spilled + shape.padding / 8);
        debug_assert!(boot.as_ptr().cast::<BootFrame>().is_aligned());
        // SAFETY: `boot` is BOOT_WORDS initialised, exclusively borrowed
        // words: exactly a `BootFrame` (asserted below at compile time),
        // which is plain `u64`s, so any bits are a valid value. It is 16-byte
        // aligned as `BootFrame` requires: the top of the stack is (checked
        // by `validate`) and what lies above the boot frame, the spilled
        // arguments and their padding, is a multiple of 16 bytes (the plan's
        // invariant, property-tested in `plan`).
        let boot = unsafe { &mut *boot.as_mut_ptr().cast::<BootFrame>() };
        // Only the entry and the slots of registers that carry arguments are
        // written (stores are most of init's time). The start routine loads
        // the others too, getting what the stack held (initialised: it is a
        // `[u64]`), which the entry never reads: an argument register it is
        // not passed means nothing to it. Under valgrind the stack was just
        // declared undefined, so there the frame is zeroed, and memcheck
        // sees the start routine load defined values.
        if on_valgrind {
            *boot = zeroed_boot();
        }
        boot.entry = fptr as u64;
        let (gp_slots, fp_slots) = boot_arg_slots(boot);
        let mut slots = tail.iter_mut();
        let mut classes = Classifier::default();
        for a in args {
            let word = val_to_stack(a);
            match classes.place(a) {
                Slot::Gp(i) => gp_slots[i] = word,
                Slot::Fp(i) => fp_slots[i] = word,
                // `tail` has a slot for every spilled argument (same shape).
                Slot::Stack => {
                    if let Some(slot) = slots.next() {
                        *slot = word;
                    }
                }
            }
        }
        // What is left above the spilled arguments is the padding word, if any.
        if let Some(padding) = slots.next() {
            *padding = 0;
        }
        debug_assert!(slots.next().is_none());
        *resume_word = context_sys::start as unsafe extern "C" fn() as usize as u64;

        let sp = resume_word as *mut u64 as u64;
        let parent_regs = parent.regs.get_mut() as *mut ContextRegs;
        let child_ptr = child.regs.get();
        let regs = child.regs.get_mut();
        *regs = fresh_regs(sp, child_ptr as u64, parent_regs as u64);
        // SAFETY: `regs` is a valid, exclusively borrowed register block.
        unsafe { context_sys::save_fp_control(regs) };
        child.sigmask = mask;
        parent.sigmask = mask;
    }

    /// Saves the current context into `from` and continues in `to`. Returns
    /// when something later switches back to `from`.
    ///
    /// Saved and restored: rbx, rbp, r12–r15, rsp, the MXCSR control bits and
    /// the x87 control word, as the ABI promises a caller across a call.
    ///
    /// # Safety
    ///
    /// * `to` must be a valid target: prepared by [`Context::init`] (and its
    ///   entry not yet returned), or saved into by a `swap` from a context
    ///   that is not running now.
    /// * The stack `to` runs on must still be allocated, and every context
    ///   it may continue in (its parent) must still be at its address.
    /// * If nothing ever switches back to `from`, the frames above this call
    ///   are abandoned without running destructors.
    ///
    /// An unwind never comes out of this call: if the child's entry
    /// function unwinds, the process aborts with
    /// [`UNWIND_ABORT_MESSAGE`](crate::UNWIND_ABORT_MESSAGE) (see
    /// [`Context::init`]), so a `catch_unwind` around a swap catches nothing
    /// from the child.
    ///
    /// Misuse: swapping to a context whose stack was freed, or to one that is
    /// already running on another thread, jumps into memory that is not
    /// what the saved registers describe.
    ///
    /// On x86_64, in builds with `panic = "unwind"` (the default), the
    /// switch is inlined into the caller ([`context_sys::swap_inline`]): no
    /// call, and of r12–r15 the compiler saves only what the caller still
    /// needs. With `panic = "abort"`, where unwind tables can be switched
    /// off (`-C force-unwind-tables=no`) and the inlined switch's CFI would
    /// not assemble, it is the call [`Context::swap_out_of_line`] makes. A
    /// switch into `to` that a signal handler may have to divert while it
    /// is under way ([`divert_pending_resume`](crate::divert_pending_resume))
    /// must use [`Context::swap_out_of_line`] in every build.
    #[inline(always)]
    pub unsafe fn swap(from: &mut Context, to: &Context) {
        // SAFETY: the caller promises `to` is a valid target (see above);
        // `from` is exclusively borrowed and valid for the save. With
        // panic = "unwind" every function has unwind tables, which the
        // block's CFI needs.
        #[cfg(all(target_arch = "x86_64", panic = "unwind"))]
        unsafe {
            context_sys::swap_inline(from.regs.get(), to.regs.get())
        }
        // SAFETY: as above.
        #[cfg(not(all(target_arch = "x86_64", panic = "unwind")))]
        unsafe {
            context_sys::swap(from.regs.get(), to.regs.get())
        }
    }

    /// [`Context::swap`], made by a call of the assembly's
    /// `context_sys_swap` instead of inline: the switch whose resume
    /// window [`divert_pending_resume`](crate::divert_pending_resume)
    /// knows, so a signal handler that interrupts it after it has read
    /// `to`'s resume address can still divert it. It saves all six
    /// callee-saved registers into `from`, and shows in a debugger's
    /// backtrace as its own frame.
    ///
    /// # Safety
    ///
    /// The duties of [`Context::swap`].
    #[inline]
    pub unsafe fn swap_out_of_line(from: &mut Context, to: &Context) {
        // SAFETY: the caller promises `to` is a valid target (see
        // `Context::swap`); `from` is exclusively borrowed and valid for
        // the save.
        unsafe { context_sys::swap(from.regs.get(), to.regs.get()) }
    }

    /// Continues in `to` without saving the current context.
    ///
    /// # Safety
    ///
    /// The duties of [`Context::swap`]'s `to`. Everything on the current
    /// stack is abandoned: no destructors run and no frame above this call
    /// is returned to.
    #[inline]
    pub unsafe fn set(to: &Context) -> ! {
        // SAFETY: the caller promises `to` is a valid target.
        unsafe { context_sys::set(to.regs.get()) }
    }

    /// Restores the signal mask recorded in `to` by [`Context::init`] (or
    /// given to [`Context::init_with_sigmask`]), then continues in `to` like
    /// [`Context::set`]. Meant for leaving a signal handler: the mask the
    /// kernel installed for the handler is replaced by the one the thread had
    /// when the context was prepared.
    ///
    /// Returns only if the mask cannot be set.
    ///
    /// # Errors
    ///
    /// [`Error::SignalMask`] if `pthread_sigmask` fails (the context is not
    /// switched).
    ///
    /// # Safety
    ///
    /// The duties of [`Context::set`]. Also, leaving a handler this way skips
    /// the kernel's sigreturn: the alternate-signal-stack state and the FPU
    /// state saved in the signal frame are not restored.
    pub unsafe fn set_from_signal(to: &Context) -> Result<Infallible, Error> {
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&to.sigset()), None).map_err(Error::SignalMask)?;
        // SAFETY: forwarded to the caller.
        unsafe { Context::set(to) }
    }

    /// The signal mask recorded by the last [`Context::init`] or
    /// [`Context::init_with_sigmask`] involving this context (as child or
    /// parent); empty before that.
    ///
    /// Linux signals are numbered 1 to 64 and the kernel reads exactly
    /// those 64 bits of a `sigset_t`, so that is what is recorded: the set
    /// returned holds the same signals as the one given to init (it is
    /// `==` to it, and [`Context::set_from_signal`] installs the same
    /// mask), with the words of `sigset_t` past the first, which no Linux
    /// signal occupies, zero.
    pub fn sigset(&self) -> SigSet {
        sigset_of_word(self.sigmask)
    }

    /// Every check of [`Context::init`] that does not need the signal mask,
    /// in the order its errors are documented; the shape of the start-up
    /// frame when all pass.
    #[inline(always)]
    fn validate(stack: &[u64], fptr: usize, args: &[Val]) -> Result<FrameShape, Error> {
        let top = stack.as_ptr() as usize + core::mem::size_of_val(stack);
        let shape = FrameShape::of(args);
        shape.check(stack.len(), top)?;
        if fptr == 0 {
            return Err(Error::NullEntryPoint);
        }
        Ok(shape)
    }

    /// The caller's current stack pointer.
    ///
    /// # Safety
    ///
    /// No duty; it is `unsafe` only to keep the signature of Lucet's
    /// context module, whose API this crate keeps.
    #[inline(always)]
    pub unsafe fn get_current_stack_pointer() -> u64 {
        // SAFETY: the routine only reads rsp.
        unsafe { context_sys::get_current_stack_pointer() }
    }

    /// Zeroes the stored return registers.
    pub fn clear_retvals(&mut self) {
        crate::arch::clear_retvals(self.regs.get_mut());
    }

    /// The stored integer return register: 0 is rax, 1 is rdx (aarch64: x0,
    /// x1; the high half of a 128-bit or two-word struct return). Any other
    /// index reads 0; use [`Context::retval_gp`] to have it reported as an
    /// error.
    pub fn get_retval_gp(&self, idx: usize) -> u64 {
        self.retval_gp(idx).unwrap_or(0)
    }

    /// The stored integer return register, checked: 0 is rax, 1 is rdx
    /// (aarch64: x0, x1).
    ///
    /// # Errors
    ///
    /// [`Error::RetvalIndex`] for any other index.
    pub fn retval_gp(&self, idx: usize) -> Result<u64, Error> {
        let (gp, _) = retvals(&self.regs());
        gp.get(idx).copied().ok_or(Error::RetvalIndex { index: idx })
    }

    /// The stored xmm0 return register (aarch64: q0), in the
    /// architecture's type ([`FpRegValue`]: `__m128` on x86_64).
    pub fn get_retval_fp(&self) -> FpRegValue {
        let (_, [lo, hi]) = retvals(&self.regs());
        fp_from_bits(lo, hi)
    }

    /// The stored xmm0 return register (aarch64: q0), as the portable
    /// [`V128`].
    pub fn get_retval_v128(&self) -> V128 {
        let (_, [lo, hi]) = retvals(&self.regs());
        V128::from_bits(lo, hi)
    }

    /// The stored return registers, to be read as the entry's return type.
    pub fn get_untyped_retval(&self) -> UntypedRetVal {
        UntypedRetVal::new(self.get_retval_gp(0), self.get_retval_fp())
    }

    /// A context whose saved stack pointer is `sp` and nothing else, for
    /// unit tests that need a made-up suspended context.
    #[cfg(test)]
    pub(crate) fn with_saved_sp(sp: u64) -> Context {
        Context { regs: UnsafeCell::new(crate::arch::regs_with_sp(sp)), sigmask: 0 }
    }
}

// A Linux `sigset_t` (glibc's and musl's alike: an array of `unsigned long`)
// holds signal `n` in bit `n - 1` of its words, and the kernel has 64
// signals, all in the first word: glibc's `pthread_sigmask` hands the kernel
// exactly those 8 bytes (`_NSIG / 8`). So the first word is all of a mask
// that means anything, and it is what a `Context` records.
const _: () = assert!(core::mem::size_of::<nix::libc::sigset_t>() >= core::mem::size_of::<u64>());
const _: () = assert!(core::mem::align_of::<nix::libc::sigset_t>() >= core::mem::align_of::<u64>());

/// The signals of `set`, as the kernel reads them: the first word of its
/// `sigset_t`.
#[inline(always)]
fn mask_word(set: &SigSet) -> u64 {
    let raw: &nix::libc::sigset_t = set.as_ref();
    // SAFETY: a `sigset_t` is at least one `u64` long and at least as
    // aligned (asserted above), and its first word is initialised by every
    // way of making a `SigSet` (`sigemptyset`, `sigfillset`, the kernel's
    // answer to `pthread_sigmask`, which writes exactly that word).
    unsafe { core::ptr::from_ref(raw).cast::<u64>().read() }
}

/// The `SigSet` holding exactly the signals of `word` (as [`mask_word`]
/// reads them); its other words are those of an empty set.
fn sigset_of_word(word: u64) -> SigSet {
    let mut raw: nix::libc::sigset_t = *SigSet::empty().as_ref();
    // SAFETY: `raw` is an initialised `sigset_t` owned by this frame, at
    // least one `u64` long and aligned for it (asserted above).
    unsafe { core::ptr::from_mut(&mut raw).cast::<u64>().write(word) };
    // SAFETY: `raw` is a valid `sigset_t`: an empty set (from
    // `sigemptyset`) with its first word, the one holding signals 1 to 64,
    // replaced by bits that stand for signals of that range.
    unsafe { SigSet::from_sigset_t_unchecked(raw) }
}

/// The caller's current stack pointer (the same as
/// [`Context::get_current_stack_pointer`]).
///
/// # Safety
///
/// No duty; it is `unsafe` only to keep the signature of Lucet's context
/// module, whose API this crate keeps.
#[inline(always)]
pub unsafe fn get_current_stack_pointer() -> u64 {
    // SAFETY: the routine only reads rsp.
    unsafe { context_sys::get_current_stack_pointer() }
}

/// A heap-allocated [`Context`] that never moves: the way to hold contexts
/// whose addresses a child's stack refers to.
///
/// Dereferences to `Context`; frees it on drop.
///
/// # Movement
///
/// Moving the handle moves only the pointer; the `Context` stays put.
pub struct ContextHandle {
    ctx: NonNull<Context>,
}

// SAFETY: a ContextHandle owns its Context like a Box does, and Context is
// Send and Sync.
unsafe impl Send for ContextHandle {}
// SAFETY: as above; shared access only gives `&Context`.
unsafe impl Sync for ContextHandle {}

impl ContextHandle {
    /// A fresh heap-allocated [`Context::new`].
    pub fn new() -> ContextHandle {
        ContextHandle { ctx: NonNull::from(Box::leak(Box::new(Context::new()))) }
    }

    /// A new context prepared by [`Context::init`] with `parent` as its
    /// parent.
    ///
    /// # Errors
    ///
    /// Those of [`Context::init`].
    pub fn create_and_init(
        stack: &mut [u64],
        parent: &mut ContextHandle,
        fptr: impl Into<EntryPoint>,
        args: &[Val],
    ) -> Result<ContextHandle, Error> {
        let mut child = ContextHandle::new();
        Context::init(stack, parent, &mut child, fptr, args)?;
        Ok(child)
    }

    /// A new context prepared by [`Context::init_with_sigmask`] with
    /// `parent` as its parent and `sigmask` recorded in both.
    ///
    /// # Errors
    ///
    /// Those of [`Context::init_with_sigmask`].
    pub fn create_and_init_with_sigmask(
        stack: &mut [u64],
        parent: &mut ContextHandle,
        fptr: impl Into<EntryPoint>,
        args: &[Val],
        sigmask: &SigSet,
    ) -> Result<ContextHandle, Error> {
        let mut child = ContextHandle::new();
        Context::init_with_sigmask(stack, parent, &mut child, fptr, args, sigmask)?;
        Ok(child)
    }
}

impl Default for ContextHandle {
    fn default() -> ContextHandle {
        ContextHandle::new()
    }
}

impl fmt::Debug for ContextHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ContextHandle").field(&**self).finish()
    }
}

impl Deref for ContextHandle {
    type Target = Context;
    fn deref(&self) -> &Context {
        // SAFETY: `ctx` came from Box::leak, is freed only in Drop, and
        // `&self` ties the borrow to the handle.
        unsafe { self.ctx.as_ref() }
    }
}

impl DerefMut for ContextHandle {
    fn deref_mut(&mut self) -> &mut Context {
        // SAFETY: as in `deref`; `&mut self` makes the borrow exclusive.
        unsafe { self.ctx.as_mut() }
    }
}

impl Drop for ContextHandle {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from Box::leak in `new` and is dropped once.
        drop(unsafe { Box::from_raw(self.ctx.as_ptr()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;
    use nix::sys::signal::Signal;

    /// Signal numbers 1..=64 that `set` holds, asked through libc.
    fn members(set: &SigSet) -> Vec<libc::c_int> {
        // SAFETY: `as_ref` gives a valid sigset_t; sigismember only reads it.
        (1..=64).filter(|&s| unsafe { libc::sigismember(set.as_ref(), s) } == 1).collect()
    }

    #[test]
    fn mask_word_holds_signal_n_in_bit_n_minus_1() {
        assert_eq!(mask_word(&SigSet::empty()), 0);
        assert_eq!(mask_word(&SigSet::from(Signal::SIGHUP)), 1);
        assert_eq!(mask_word(&SigSet::from(Signal::SIGUSR1)), 1 << (libc::SIGUSR1 - 1));
        let mut raw = *SigSet::empty().as_ref();
        // SAFETY: `raw` is a valid sigset_t owned by this frame.
        assert_eq!(unsafe { libc::sigaddset(&mut raw, 64) }, 0, "signal 64 exists on Linux");
        // SAFETY: `raw` is a valid sigset_t.
        assert_eq!(mask_word(&unsafe { SigSet::from_sigset_t_unchecked(raw) }), 1 << 63);
    }

    #[test]
    fn every_signal_round_trips_through_the_recorded_word() {
        for s in 1..=64 {
            let mut raw = *SigSet::empty().as_ref();
            // SAFETY: `raw` is a valid sigset_t owned by this frame.
            if unsafe { libc::sigaddset(&mut raw, s) } != 0 {
                // glibc keeps signals 32 and 33 to itself.
                continue;
            }
            // SAFETY: `raw` is a valid sigset_t.
            let set = unsafe { SigSet::from_sigset_t_unchecked(raw) };
            let back = sigset_of_word(mask_word(&set));
            assert_eq!(members(&back), vec![s], "signal {s}");
            assert_eq!(back, set, "signal {s}");
        }
    }

    #[test]
    fn full_and_empty_sets_round_trip() {
        for set in [SigSet::all(), SigSet::empty(), SigSet::thread_get_mask().expect("read mask")] {
            let back = sigset_of_word(mask_word(&set));
            assert_eq!(back, set);
            assert_eq!(members(&back), members(&set));
        }
    }
}
