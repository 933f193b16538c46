//! Operations that need the `instance` crate: a fault in the guest back in
//! the host, a run on a fresh guard-page stack, a run on a pooled stack,
//! and the scrub of a stack a guest touched.
//!
//! Each run comes in the two [`ThreadSignalMode`]s, as a const parameter
//! `KEEP`: `false` is the default `Restore` (our alternate stack installed
//! and the thread's own put back by every run, the mask read per run),
//! `true` is `Keep` (no system call per run). `new()` sets the bench
//! thread's mode, since cases run one after another on one thread.

use std::hint::black_box;

use context::Val;
use instance::{DEFAULT_GUARD_SIZE, FaultKind, Instance, Stack, StackPool, ThreadSignalMode};

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
/// as `Error::Fault`; reset the instance for the next iteration. `SCRUB` is
/// the default (the reset scrubs the stack, `Stack::quick_scrub`); without
/// it, the fault path alone.
pub struct OursFault<const KEEP: bool, const SCRUB: bool> {
    inst: Instance,
    page: NoAccessPage,
}

impl<const KEEP: bool, const SCRUB: bool> OursFault<KEEP, SCRUB> {
    pub fn new() -> Self {
        set_mode(KEEP);
        let mut inst = Instance::new(STACK_BYTES).expect("map an instance stack");
        inst.set_scrub_stack(SCRUB);
        OursFault { inst, page: NoAccessPage::new() }
    }
}

impl<const KEEP: bool, const SCRUB: bool> Op for OursFault<KEEP, SCRUB> {
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
/// identity entry, give the stack back. `SCRUB` is the default (the
/// instance's `into_stack` scrubs with `Stack::quick_scrub`: the top page
/// by hand, one `madvise` below it, a `mincore` every 64th time; the pool's
/// `put` then finds nothing to do); without it neither scrubs.
pub struct OursPooledRun<const KEEP: bool, const SCRUB: bool> {
    pool: StackPool,
}

impl<const KEEP: bool, const SCRUB: bool> OursPooledRun<KEEP, SCRUB> {
    pub fn new() -> Self {
        set_mode(KEEP);
        let pool = StackPool::new(STACK_BYTES, DEFAULT_GUARD_SIZE, 4).expect("a pool of 64 KiB stacks");
        let pool = pool.scrub_on_put(SCRUB);
        // Warm the pool so the timed loop never maps.
        let warm = pool.take().expect("map a pooled stack");
        pool.put(warm).expect("same pool");
        OursPooledRun { pool }
    }
}

impl<const KEEP: bool, const SCRUB: bool> Op for OursPooledRun<KEEP, SCRUB> {
    #[inline]
    fn run(&mut self) {
        let mut inst = Instance::with_stack(self.pool.take().expect("a pooled stack"));
        inst.set_scrub_stack(SCRUB);
        // SAFETY: `identity` is an extern "C" fn of one u64 that returns.
        let r = unsafe { inst.run(identity as *const () as usize, &[Val::U64(black_box(7))]) };
        black_box(r.expect("the entry returns").as_u64());
        self.pool.put(inst.into_stack().expect("a stack")).expect("same pool");
    }
}

/// Usable bytes of the scrubbed stack: room below the touched pages, as a
/// guest's stack has.
const SCRUB_STACK_BYTES: usize = 256 * 1024;

/// Ours: dirty the top `PAGES` pages of a 256 KiB stack (one word at the
/// top of each, so the whole page below it is zeroed, as after a guest's
/// frames), then `Stack::scrub`: one `mincore`, one `madvise` for the
/// untouched rest, `PAGES` pages of zeros.
pub struct OursScrub<const PAGES: usize> {
    stack: Stack,
}

impl<const PAGES: usize> OursScrub<PAGES> {
    pub fn new() -> Self {
        OursScrub { stack: Stack::new(SCRUB_STACK_BYTES).expect("map a stack") }
    }
}

impl<const PAGES: usize> Op for OursScrub<PAGES> {
    #[inline]
    fn run(&mut self) {
        let per_page = instance::page_size() / 8;
        let words = self.stack.as_words_mut();
        let n = words.len();
        for p in 0..PAGES {
            words[n - 1 - p * per_page] = black_box(7);
        }
        black_box(self.stack.scrub().expect("mincore of our own stack"));
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
