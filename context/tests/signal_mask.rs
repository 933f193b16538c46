//! `set_from_signal` leaves a real signal handler and restores the exact
//! signal mask the thread had at `init`. Its own test binary: it installs a
//! process-wide handler.

mod common;

use common::TestStack;

use context::{Context, ContextHandle};
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

static PARENT: AtomicPtr<Context> = AtomicPtr::new(std::ptr::null_mut());
static HANDLED: AtomicU64 = AtomicU64::new(0);

extern "C" fn leave_through_set_from_signal(_signal: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    let parent = PARENT.load(Ordering::SeqCst);
    // SAFETY: the test stored a pinned parent that is suspended in its swap
    // into the child; leaving the handler this way is what the API is for.
    let _failed = unsafe { Context::set_from_signal(&*parent) };
    // Only reached if the mask could not be set: fail loudly.
    std::process::abort();
}

extern "C" fn raise_sigusr1() -> u64 {
    // The handler never returns here.
    nix::sys::signal::raise(Signal::SIGUSR1).expect("raise");
    0xbad
}

/// The thread's mask as the set of blocked signal numbers 1..=64.
fn blocked() -> Vec<i32> {
    members(&SigSet::thread_get_mask().expect("read mask"))
}

fn members(mask: &SigSet) -> Vec<i32> {
    // SAFETY: `as_ref` gives a valid sigset_t; sigismember only reads it.
    (1..=64).filter(|&s| unsafe { libc::sigismember(mask.as_ref(), s) } == 1).collect()
}

#[test]
fn set_from_signal_restores_the_exact_mask_recorded_at_init() {
    // A mask with standard and real-time signals blocked.
    let original = SigSet::thread_get_mask().expect("read mask");
    let mut raw: libc::sigset_t = *original.as_ref();
    // SAFETY: `raw` is a valid sigset_t owned by this frame; the calls only
    // modify it and set this thread's mask from it.
    unsafe {
        libc::sigaddset(&mut raw, libc::SIGUSR2);
        libc::sigaddset(&mut raw, libc::SIGHUP);
        libc::sigaddset(&mut raw, libc::SIGRTMIN() + 3);
        assert_eq!(libc::pthread_sigmask(libc::SIG_SETMASK, &raw, std::ptr::null_mut()), 0);
    }
    let expected = blocked();
    assert!(expected.contains(&(libc::SIGRTMIN() + 3)) && expected.contains(&libc::SIGUSR2));

    // While the handler runs, SIGUSR1 itself and SIGWINCH, SIGPIPE are
    // blocked too; none of that may leak out.
    let mut handler_mask = SigSet::empty();
    handler_mask.add(Signal::SIGWINCH);
    handler_mask.add(Signal::SIGPIPE);
    let action = SigAction::new(SigHandler::Handler(leave_through_set_from_signal), SaFlags::empty(), handler_mask);
    // SAFETY: the handler only touches atomics and leaves via set_from_signal.
    let old = unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("install handler");

    let mut stack = TestStack::new(16 * 1024);
    let mut parent = ContextHandle::new();
    let child = ContextHandle::create_and_init(stack.slice(), &mut parent, raise_sigusr1 as *const () as usize, &[])
        .expect("init");
    PARENT.store(&mut *parent, Ordering::SeqCst);
    // SAFETY: pinned contexts; the child leaves through the handler, which
    // continues in `parent` right after this swap.
    unsafe { Context::swap(&mut parent, &child) };

    let after = blocked();
    // Restore the test thread's state before asserting.
    // SAFETY: reinstalls the handler that was there before.
    unsafe { sigaction(Signal::SIGUSR1, &old) }.expect("restore handler");
    original.thread_set_mask().expect("restore mask");

    assert_eq!(HANDLED.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!(after, expected, "mask after leaving the handler");
    assert_eq!(child.get_retval_gp(0), 0, "the child never returned");
    assert_eq!(members(&parent.sigset()), expected, "mask recorded in the parent");
    assert_eq!(members(&child.sigset()), expected, "mask recorded in the child");
}
