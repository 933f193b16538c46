//! Fresh guard-page stacks: map a stack with a guard region below it, run a
//! trivial entry on it, unmap it — every iteration.
//!
//! The raw baseline is the kernel work any such stack costs: `mmap` the whole
//! region `PROT_NONE`, `mprotect` the usable part read-write, write one word
//! at the top (the page fault a run takes), `munmap`. The others must do at
//! least that; the ratio to it is their own overhead. It maps the same guard
//! as ours (`instance::DEFAULT_GUARD_SIZE`); corosensei and Boost keep their
//! own default of one guard page (a guard's size changes no system call).

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use boost_context::stack::ProtectedFixedSizeStack;
use corosensei::ScopedCoroutine;
use corosensei::stack::DefaultStack;
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, mprotect, munmap};

use super::Op;
use super::context_ops::STACK_BYTES;

/// The system's page size (4, 16 or 64 KiB on arm64 kernels: never
/// assumed), as `instance` reads it.
pub fn page_size() -> usize {
    instance::page_size()
}

/// A guard region of `instance::DEFAULT_GUARD_SIZE` (rounded up to pages)
/// plus `usable` read-write bytes above it, mapped with raw system calls and
/// unmapped on drop.
pub struct RawStack {
    base: NonNull<core::ffi::c_void>,
    len: usize,
    guard: usize,
}

impl RawStack {
    /// Maps the region `PROT_NONE`, then opens everything above the guard.
    pub fn new(usable: usize) -> nix::Result<RawStack> {
        let guard = instance::DEFAULT_GUARD_SIZE.next_multiple_of(page_size());
        let len = usable.next_multiple_of(page_size()) + guard;
        let nz = NonZeroUsize::new(len).ok_or(nix::errno::Errno::EINVAL)?;
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let base = unsafe { mmap_anonymous(None, nz, ProtFlags::PROT_NONE, MapFlags::MAP_PRIVATE) }?;
        let stack = RawStack { base, len, guard };
        // SAFETY: the range lies inside the mapping just made.
        unsafe { mprotect(base.byte_add(guard), len - guard, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE) }?;
        Ok(stack)
    }

    /// One past the highest usable byte (page-aligned, so 16-aligned).
    pub fn top(&self) -> *mut u64 {
        // SAFETY: one past the end of the mapping.
        unsafe { self.base.as_ptr().byte_add(self.len).cast() }
    }

    /// The usable part, as words.
    pub fn words(&mut self) -> &mut [u64] {
        let n = (self.len - self.guard) / 8;
        // SAFETY: the usable part is mapped read-write, owned by `self`,
        // page-aligned, and borrowed mutably through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.top().sub(n), n) }
    }
}

impl Drop for RawStack {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`, unmapped once.
        let r = unsafe { munmap(self.base, self.len) };
        debug_assert!(r.is_ok(), "munmap of our own mapping failed: {r:?}");
    }
}

/// mmap + mprotect + one touch + munmap.
pub struct RawFreshStack;

impl RawFreshStack {
    pub fn new() -> RawFreshStack {
        RawFreshStack
    }
}

impl Op for RawFreshStack {
    #[inline]
    fn run(&mut self) {
        let stack = RawStack::new(STACK_BYTES).expect("mmap a stack");
        // SAFETY: the word just below the top is in the read-write part.
        unsafe { stack.top().sub(1).write_volatile(7) };
        black_box(&stack);
    }
}

/// corosensei: `DefaultStack::new`, run an identity coroutine, drop.
pub struct CorosenseiFreshStack;

impl CorosenseiFreshStack {
    pub fn new() -> CorosenseiFreshStack {
        CorosenseiFreshStack
    }
}

impl Op for CorosenseiFreshStack {
    #[inline]
    fn run(&mut self) {
        let mut stack = DefaultStack::new(STACK_BYTES).expect("mmap a stack");
        let co = ScopedCoroutine::<u64, (), u64, _>::with_stack(&mut stack, |_y, input| input);
        black_box(co.scope(|mut c| c.resume(black_box(7))));
    }
}

/// The child of [`BoostFreshStack`]: hands its input back, never resumed.
extern "C" fn boost_return(t: boost_context::Transfer) -> ! {
    // SAFETY: `t.context` is the suspended parent, which is alive.
    unsafe { t.context.resume(t.data) };
    std::process::abort()
}

/// Boost: `ProtectedFixedSizeStack::new`, run, drop.
pub struct BoostFreshStack;

impl BoostFreshStack {
    pub fn new() -> BoostFreshStack {
        BoostFreshStack
    }
}

impl Op for BoostFreshStack {
    #[inline]
    fn run(&mut self) {
        let stack = ProtectedFixedSizeStack::new(STACK_BYTES).expect("mmap a stack");
        // SAFETY: the stack outlives the context, which is abandoned after
        // handing back its input.
        let ctx = unsafe { boost_context::Context::new(&stack, boost_return) };
        // SAFETY: starts `boost_return`, which resumes us straight back.
        black_box(unsafe { ctx.resume(black_box(7)) }.data);
    }
}
