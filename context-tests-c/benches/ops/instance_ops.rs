//! Operations that need the `instance` crate: a fault in the guest back in
//! the host, a run on a fresh guard-page stack, and a run on a pooled stack.
//!
//! Each comes in the two [`ThreadSignalMode`]s, as a const parameter
//! `KEEP`: `false` is the default `Restore` (our alternate stack installed
//! and the thread's own put back by every run, the mask read per run),
//! `true` is `Keep` (no system call per run). `new()` sets the bench
//! thread's mode, since cases run one after another on one thread.

use std::hint::black_box;

use context::Val;
use instance::{DEFAULT_GUARD_SIZE, FaultKind, Instance, StackPool, ThreadSignalMode};

use super::Op;
use super::c_baseline::NoAccessPage;
use super::context_ops::STACK_BYTES;

/// A guest that reads `*p`; given a `PROT_NONE` page it faults.
extern "C" fn read_word(p: *const i32) -> i32 {
    // SAFETY: none needed by the guest's own logic: `p` is either readable
    // or a page whose fault the instance's handler turns into an error.
    unsafe { p.read_volatile() }
}

extern "C" fn identity(x: u64) -> u64 {
    x
}

/// Puts the calling (bench) thread in the mode a case measures.
fn set_mode(keep: bool) {
    let mode = if keep { ThreadSignalMode::Keep } else { ThreadSignalMode::Restore };
    instance::set_thread_signal_mode(mode).expect("not inside a run");
}

/// Ours: run a guest that reads a `PROT_NONE` page; the fault comes back
/// as `Error::Fault`; reset the instance for the next iteration.
pub struct OursFault<const KEEP: bool> {
    inst: Instance,
    page: NoAccessPage,
}

impl<const KEEP: bool> OursFault<KEEP> {
    pub fn new() -> Self {
        set_mode(KEEP);
        OursFault { inst: Instance::new(STACK_BYTES).expect("map an instance stack"), page: NoAccessPage::new() }
    }
}

impl<const KEEP: bool> Op for OursFault<KEEP> {
    #[inline]
    fn run(&mut self) {
        let arg = Val::CPtr(self.page.ptr().cast());
        // SAFETY: `read_word` is an extern "C" fn of one pointer that does
        // not unwind; the page it reads stays mapped (PROT_NONE).
        let r = unsafe { self.inst.run(read_word as *const () as usize, &[arg]) };
        let kind = r.expect_err("a read of a PROT_NONE page faults").fault().map(|f| f.kind);
        assert_eq!(kind, Some(FaultKind::MemoryFault));
        self.inst.reset().expect("a faulted instance can be reset");
    }
}

/// Ours: `Instance::new` (mmap + mprotect), run an identity entry, drop
/// (munmap).
pub struct OursFreshStack<const KEEP: bool>;

impl<const KEEP: bool> OursFreshStack<KEEP> {
    pub fn new() -> Self {
        set_mode(KEEP);
        OursFreshStack
    }
}

impl<const KEEP: bool> Op for OursFreshStack<KEEP> {
    #[inline]
    fn run(&mut self) {
        let mut inst = Instance::new(STACK_BYTES).expect("map an instance stack");
        // SAFETY: `identity` is an extern "C" fn of one u64 that returns.
        let r = unsafe { inst.run(identity as *const () as usize, &[Val::U64(black_box(7))]) };
        black_box(r.expect("the entry returns").as_u64());
    }
}

/// Ours: take a stack from a pool, build an instance on it, run an
/// identity entry, give the stack back.
pub struct OursPooledRun<const KEEP: bool> {
    pool: StackPool,
}

impl<const KEEP: bool> OursPooledRun<KEEP> {
    pub fn new() -> Self {
        set_mode(KEEP);
        let pool = StackPool::new(STACK_BYTES, DEFAULT_GUARD_SIZE, 4).expect("a pool of 64 KiB stacks");
        // Warm the pool so the timed loop never maps.
        let warm = pool.take().expect("map a pooled stack");
        pool.put(warm).expect("same pool");
        OursPooledRun { pool }
    }
}

impl<const KEEP: bool> Op for OursPooledRun<KEEP> {
    #[inline]
    fn run(&mut self) {
        let mut inst = Instance::with_stack(self.pool.take().expect("a pooled stack"));
        // SAFETY: `identity` is an extern "C" fn of one u64 that returns.
        let r = unsafe { inst.run(identity as *const () as usize, &[Val::U64(black_box(7))]) };
        black_box(r.expect("the entry returns").as_u64());
        self.pool.put(inst.into_stack()).expect("same pool");
    }
}

/// Ours: run an identity entry again and again on one kept instance (no
/// per-run allocation): the part of a pooled run that is the run itself.
pub struct OursReusedInstance<const KEEP: bool> {
    inst: Instance,
}

impl<const KEEP: bool> OursReusedInstance<KEEP> {
    pub fn new() -> Self {
        set_mode(KEEP);
        OursReusedInstance { inst: Instance::new(STACK_BYTES).expect("map an instance stack") }
    }
}

impl<const KEEP: bool> Op for OursReusedInstance<KEEP> {
    #[inline]
    fn run(&mut self) {
        // SAFETY: `identity` is an extern "C" fn of one u64 that returns.
        let r = unsafe { self.inst.run(identity as *const () as usize, &[Val::U64(black_box(7))]) };
        black_box(r.expect("the entry returns").as_u64());
    }
}
