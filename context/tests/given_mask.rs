//! `Context::init_with_sigmask`: records the mask it is given (not the
//! thread's) in child and parent, `set_from_signal` out of a real signal
//! handler then installs exactly that mask, and apart from the mask it
//! prepares the same stack and registers as `Context::init`.
//!
//! Its own test binary: it installs a process-wide SIGUSR1 handler and sets
//! the thread's mask; the tests that do so hold `SIGNALS`.

mod common;

use common::TestStack;

use context::{Context, ContextHandle, Val};
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Held by every test that installs the handler or changes the thread's mask.
static SIGNALS: Mutex<()> = Mutex::new(());

/// Where the SIGUSR1 handler continues (with `set_from_signal`).
static TARGET: AtomicPtr<Context> = AtomicPtr::new(std::ptr::null_mut());
static HANDLED: AtomicU64 = AtomicU64::new(0);
/// The blocked signals (bit n-1 for signal n) seen by `record_mask` on entry.
static SEEN_AT_ENTRY: AtomicU64 = AtomicU64::new(0);

extern "C" fn leave_through_set_from_signal(_signal: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    let target = TARGET.load(Ordering::SeqCst);
    // SAFETY: the test stored a heap-pinned context that is a valid target
    // (a parent suspended in its swap, or a freshly prepared child) and
    // keeps it alive until control is back in the test.
    let _failed = unsafe { Context::set_from_signal(&*target) };
    // Only reached if the mask could not be set: fail loudly.
    std::process::abort();
}

extern "C" fn raise_sigusr1() -> u64 {
    // The handler never returns here.
    nix::sys::signal::raise(Signal::SIGUSR1).expect("raise");
    0xbad
}

/// A child that records the kernel's view of the mask as soon as it runs.
extern "C" fn record_mask() -> u64 {
    SEEN_AT_ENTRY.store(bits(&SigSet::thread_get_mask().expect("read mask")), Ordering::SeqCst);
    0x600d
}

/// Signals 1..=64 blocked in `mask`, as a bit set (bit n-1 for signal n).
fn bits(mask: &SigSet) -> u64 {
    // SAFETY: `as_ref` gives a valid sigset_t; sigismember only reads it.
    (1..=64).filter(|&s| unsafe { libc::sigismember(mask.as_ref(), s) } == 1).fold(0, |acc, s| acc | 1 << (s - 1))
}

/// The calling thread's blocked signals, read from the kernel.
fn blocked() -> u64 {
    bits(&SigSet::thread_get_mask().expect("read mask"))
}

/// A mask with exactly `signals` blocked.
fn mask_of(signals: &[libc::c_int]) -> SigSet {
    // SAFETY: `raw` is a sigset_t owned by this frame, initialised by
    // sigemptyset before sigaddset modifies it and before it is converted.
    unsafe {
        let mut raw: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut raw);
        for &s in signals {
            assert_eq!(libc::sigaddset(&mut raw, s), 0, "signal {s}");
        }
        SigSet::from_sigset_t_unchecked(raw)
    }
}

/// Installs the handler with SIGWINCH and SIGPIPE added to the mask while it
/// runs (so a leak of the handler's mask would show), sets the thread's mask
/// to `thread`, calls `body`, then puts the handler and the mask back.
/// Returns what `body` returned.
fn with_handler_and_thread_mask<T>(thread: &SigSet, body: impl FnOnce() -> T) -> T {
    let mut handler_mask = SigSet::empty();
    handler_mask.add(Signal::SIGWINCH);
    handler_mask.add(Signal::SIGPIPE);
    let action = SigAction::new(SigHandler::Handler(leave_through_set_from_signal), SaFlags::empty(), handler_mask);
    let original = SigSet::thread_get_mask().expect("read mask");
    // SAFETY: the handler only touches atomics and leaves via set_from_signal.
    let old = unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("install handler");
    thread.thread_set_mask().expect("set the thread's mask");
    let out = body();
    original.thread_set_mask().expect("restore mask");
    // SAFETY: reinstalls the handler that was there before.
    unsafe { sigaction(Signal::SIGUSR1, &old) }.expect("restore handler");
    out
}

#[test]
fn set_from_signal_into_the_parent_installs_the_given_mask_not_the_one_at_init() {
    let _g = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
    let rt = libc::SIGRTMIN() + 3;
    // The thread blocks SIGTERM at init; the mask given differs from it in
    // both directions (a standard and a real-time signal more, SIGTERM not).
    let thread = mask_of(&[libc::SIGTERM]);
    let given = mask_of(&[libc::SIGUSR2, libc::SIGHUP, rt]);
    let (after, child_sig, parent_sig, ret) = with_handler_and_thread_mask(&thread, || {
        assert_eq!(blocked(), bits(&thread));
        let mut stack = TestStack::new(16 * 1024);
        let mut parent = ContextHandle::new();
        let child = ContextHandle::create_and_init_with_sigmask(
            stack.slice(),
            &mut parent,
            raise_sigusr1 as *const () as usize,
            &[],
            &given,
        )
        .expect("init");
        HANDLED.store(0, Ordering::SeqCst);
        TARGET.store(&mut *parent, Ordering::SeqCst);
        // SAFETY: pinned contexts; the child leaves through the handler,
        // which continues in `parent` right after this swap.
        unsafe { Context::swap(&mut parent, &child) };
        (blocked(), child.sigset(), parent.sigset(), child.get_retval_gp(0))
    });
    assert_eq!(HANDLED.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!(after, bits(&given), "kernel mask after leaving the handler");
    assert_ne!(after, bits(&thread), "the thread's mask at init must not be what is restored");
    assert_eq!(bits(&child_sig), bits(&given), "mask recorded in the child");
    assert_eq!(bits(&parent_sig), bits(&given), "mask recorded in the parent");
    assert_eq!(ret, 0, "the child never returned");
}

#[test]
fn set_from_signal_into_a_fresh_child_starts_it_with_the_given_mask() {
    let _g = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
    let rt = libc::SIGRTMIN() + 5;
    // Several masks for the child that is entered from the handler,
    // including the empty one while the thread blocks signals.
    let thread = mask_of(&[libc::SIGUSR2, libc::SIGALRM]);
    for given in [mask_of(&[]), mask_of(&[libc::SIGINT, rt]), mask_of(&[libc::SIGQUIT, libc::SIGCHLD, libc::SIGTTIN])] {
        let (seen, after, ret) = with_handler_and_thread_mask(&thread, || {
            let mut raiser_stack = TestStack::new(16 * 1024);
            let mut fresh_stack = TestStack::new(16 * 1024);
            let mut parent = ContextHandle::new();
            let mut raiser = ContextHandle::new();
            let mut fresh = ContextHandle::new();
            // The raiser records the thread's mask; the fresh child (which
            // returns into `parent`) records `given`.
            Context::init(raiser_stack.slice(), &mut parent, &mut raiser, raise_sigusr1 as *const () as usize, &[])
                .expect("init the raiser");
            Context::init_with_sigmask(
                fresh_stack.slice(),
                &mut parent,
                &mut fresh,
                record_mask as *const () as usize,
                &[],
                &given,
            )
            .expect("init the fresh child");
            assert_eq!(bits(&raiser.sigset()), bits(&thread), "init records the thread's mask");
            HANDLED.store(0, Ordering::SeqCst);
            SEEN_AT_ENTRY.store(u64::MAX, Ordering::SeqCst);
            TARGET.store(&mut *fresh, Ordering::SeqCst);
            // SAFETY: pinned contexts and live stacks. The raiser's handler
            // continues in `fresh`, whose entry returns into `parent`, right
            // after this swap.
            unsafe { Context::swap(&mut parent, &raiser) };
            (SEEN_AT_ENTRY.load(Ordering::SeqCst), blocked(), fresh.get_retval_gp(0))
        });
        assert_eq!(HANDLED.load(Ordering::SeqCst), 1, "the handler ran once");
        assert_eq!(seen, bits(&given), "kernel mask at the fresh child's entry");
        assert_eq!(after, bits(&given), "kernel mask back in the parent");
        assert_eq!(ret, 0x600d, "the fresh child returned into the parent");
    }
}

// ---------------------------------------------------------------------------
// Same stack, same registers as `init`.
// ---------------------------------------------------------------------------

extern "C" fn sum_mixed(a: u64, b: f64, c: i32, d: f32, e: u8, f: f64, g: i64, h: u64, i: f64, j: u16, k: i8) -> f64 {
    a as f64 + b + c as f64 + d as f64 + e as f64 + f + g as f64 + h as f64 + i + j as f64 + k as f64
}

const SENTINEL: u64 = 0xa5a5_5a5a_a5a5_5a5a;

/// Words of the backing store below the stack handed to init: they must
/// stay as they were.
const BELOW: usize = 64;

/// Everything one init writes: the frame (from the child's saved sp up to
/// the top), the words below the stack it was given, both register blocks
/// and both recorded masks. (The rest of the stack is not compared: init
/// tells memcheck all of it is undefined, so reading it would be an error
/// under valgrind.)
#[derive(Debug, PartialEq, Eq)]
struct Written {
    frame: Vec<u64>,
    below: Vec<u64>,
    child: context_sys::ContextRegs,
    parent: context_sys::ContextRegs,
    child_mask: u64,
    parent_mask: u64,
}

/// Runs `prepare` on a sentinel-filled stack with two fresh contexts at the
/// same addresses every time, and returns what it wrote.
fn written(
    backing: &mut TestStack,
    parent: &mut ContextHandle,
    child: &mut ContextHandle,
    prepare: impl FnOnce(&mut [u64], &mut Context, &mut Context) -> Result<(), context::Error>,
) -> Written {
    let b = backing.slice();
    b.fill(SENTINEL);
    **parent = Context::new();
    **child = Context::new();
    let (below, stack) = b.split_at_mut(BELOW);
    prepare(stack, parent, child).expect("prepare");
    let sp_index = (child.regs().stack_pointer() as usize - stack.as_ptr() as usize) / 8;
    Written {
        frame: stack[sp_index..].to_vec(),
        below: below.to_vec(),
        child: child.regs(),
        parent: parent.regs(),
        child_mask: bits(&child.sigset()),
        parent_mask: bits(&parent.sigset()),
    }
}

fn args_of(n: usize) -> Vec<Val> {
    (0..n as u64)
        .map(|i| match i % 5 {
            0 => Val::U64(i << 40 | 7),
            1 => Val::F64(i as f64 * 0.5),
            2 => Val::I32(-(i as i32)),
            3 => Val::F32(i as f32 + 0.25),
            _ => Val::I8(-1),
        })
        .collect()
}

#[test]
fn init_with_the_threads_mask_writes_exactly_what_init_writes() {
    // Reads the thread's mask but changes nothing: no lock needed, but the
    // other tests here change the mask, so hold it for a stable reading.
    let _g = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
    let mut stack = TestStack::new(1024);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    let entry = sum_mixed as *const () as usize;
    for n in [0usize, 1, 6, 7, 11, 14, 15, 24, 40] {
        let args = args_of(n);
        let by_init = written(&mut stack, &mut parent, &mut child, |s, p, c| Context::init(s, p, c, entry, &args));
        let mask = SigSet::thread_get_mask().expect("read mask");
        let given = written(&mut stack, &mut parent, &mut child, |s, p, c| {
            Context::init_with_sigmask(s, p, c, entry, &args, &mask)
        });
        assert_eq!(by_init, given, "{n} arguments");
        assert!(by_init.below.iter().all(|&w| w == SENTINEL), "init wrote below its stack ({n} arguments)");
        assert_eq!(by_init.frame.len(), context::ArgPlan::new(&args).frame_bytes / 8, "{n} arguments");
    }
}

#[test]
fn init_with_a_different_mask_differs_from_init_only_in_the_masks() {
    let _g = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
    let mut stack = TestStack::new(1024);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    let entry = sum_mixed as *const () as usize;
    let other = mask_of(&[libc::SIGUSR1, libc::SIGRTMIN()]);
    assert_ne!(bits(&other), blocked());
    let args = args_of(11);
    let by_init = written(&mut stack, &mut parent, &mut child, |s, p, c| Context::init(s, p, c, entry, &args));
    let given = written(&mut stack, &mut parent, &mut child, |s, p, c| {
        Context::init_with_sigmask(s, p, c, entry, &args, &other)
    });
    assert_eq!((given.child_mask, given.parent_mask), (bits(&other), bits(&other)));
    assert_eq!((by_init.child_mask, by_init.parent_mask), (blocked(), blocked()));
    assert_eq!(
        (&given.frame, &given.below, given.child, given.parent),
        (&by_init.frame, &by_init.below, by_init.child, by_init.parent)
    );
}

#[test]
fn children_prepared_with_a_mask_read_once_run_and_return_like_init_children() {
    let mask = SigSet::thread_get_mask().expect("read mask");
    let mut stack_a = TestStack::new(4096);
    let mut stack_b = TestStack::new(4096);
    let mut parent = ContextHandle::new();
    let entry = sum_mixed as *const () as usize;
    for round in 0..5u64 {
        let args = [
            Val::U64(round),
            Val::F64(1.5),
            Val::I32(-3),
            Val::F32(0.25),
            Val::U8(200),
            Val::F64(-2.0),
            Val::I64(-(round as i64) * 1000),
            Val::U64(u64::from(u32::MAX)),
            Val::F64(0.125),
            Val::U16(65535),
            Val::I8(-128),
        ];
        let expected =
            sum_mixed(round, 1.5, -3, 0.25, 200, -2.0, -(round as i64) * 1000, u64::from(u32::MAX), 0.125, 65535, -128);
        let a = ContextHandle::create_and_init(stack_a.slice(), &mut parent, entry, &args).expect("init");
        let b = ContextHandle::create_and_init_with_sigmask(stack_b.slice(), &mut parent, entry, &args, &mask)
            .expect("init_with_sigmask");
        // SAFETY: both children are heap-pinned on live stacks and return
        // into `parent`, which is heap-pinned too.
        unsafe {
            Context::swap(&mut parent, &a);
            Context::swap(&mut parent, &b);
        }
        assert_eq!(a.get_untyped_retval().as_f64(), expected, "round {round}, init");
        assert_eq!(b.get_untyped_retval().as_f64(), expected, "round {round}, init_with_sigmask");
        #[cfg(target_arch = "x86_64")]
        assert_eq!((a.regs().mxcsr, a.regs().fpucw), (b.regs().mxcsr, b.regs().fpucw));
        #[cfg(target_arch = "aarch64")]
        assert_eq!(a.regs().fpcr, b.regs().fpcr);
    }
}

extern "C" fn nothing() -> u64 {
    0
}

/// Every blockable signal from 1 to 64 that glibc lets a program add, alone
/// and all together, with `SigSet::all()`: init records each bit, in child
/// and parent, whatever the mask recorded there before.
#[test]
fn every_signal_of_a_given_mask_is_recorded_in_child_and_parent() {
    let addable: Vec<libc::c_int> = (1..=64)
        .filter(|&s| {
            let mut raw = *SigSet::empty().as_ref();
            // SAFETY: `raw` is a valid sigset_t owned by this closure.
            unsafe { libc::sigaddset(&mut raw, s) == 0 }
        })
        .collect();
    assert!(addable.contains(&64) && addable.contains(&1), "{addable:?}");
    let mut masks: Vec<SigSet> = addable.iter().map(|&s| mask_of(&[s])).collect();
    masks.push(mask_of(&addable));
    masks.push(SigSet::all());
    masks.push(SigSet::empty());
    let mut stack = TestStack::new(1024);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    for (i, mask) in masks.iter().enumerate() {
        // An unrelated mask first, so that a stale record would show.
        let other = if i % 2 == 0 { SigSet::all() } else { SigSet::empty() };
        Context::init_with_sigmask(
            stack.slice(),
            &mut parent,
            &mut child,
            nothing as extern "C" fn() -> u64,
            &[],
            &other,
        )
        .expect("init");
        Context::init_with_sigmask(
            stack.slice(),
            &mut parent,
            &mut child,
            nothing as extern "C" fn() -> u64,
            &[],
            mask,
        )
        .expect("init");
        assert_eq!(bits(&child.sigset()), bits(mask), "child, mask {i}");
        assert_eq!(bits(&parent.sigset()), bits(mask), "parent, mask {i}");
        assert_eq!(child.sigset(), *mask, "child, mask {i}");
        assert_eq!(parent.sigset(), *mask, "parent, mask {i}");
    }
}
