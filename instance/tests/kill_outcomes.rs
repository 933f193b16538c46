//! Termination: every outcome `KillSwitch::terminate` can report, and the
//! run agreeing with it; timeouts; stray kill signals; kills around
//! allocation.

mod common;

use common::{Rng, scale};

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use context::Val;
use instance::{Ended, Error, Instance, State, Termination, host_region, terminable};

const STACK: usize = 128 * 1024;

/// A guest's progress, shared with the host: stage numbers it reached.
struct Progress(AtomicU64);

impl Progress {
    fn new() -> Arc<Progress> {
        Arc::new(Progress(AtomicU64::new(0)))
    }
    fn wait_for(&self, stage: u64) {
        while self.0.load(Ordering::SeqCst) < stage {
            std::thread::yield_now();
        }
    }
}

extern "C" fn spin(progress: *const Progress) -> u64 {
    // SAFETY: the test passes a live Progress.
    let p = unsafe { &*progress };
    p.0.store(1, Ordering::SeqCst);
    loop {
        std::hint::spin_loop();
    }
}

extern "C" fn sleep_long(progress: *const Progress) -> u64 {
    // SAFETY: the test passes a live Progress.
    let p = unsafe { &*progress };
    p.0.store(1, Ordering::SeqCst);
    let ts = libc::timespec { tv_sec: 100, tv_nsec: 0 };
    // SAFETY: nanosleep with a valid timespec.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    p.0.store(2, Ordering::SeqCst);
    0
}

extern "C" fn read_from(addr: usize) -> u64 {
    // SAFETY: faults on purpose.
    unsafe { (addr as *const u64).read_volatile() }
}

fn arg(p: &Arc<Progress>) -> [Val; 1] {
    [Val::CPtr(Arc::as_ptr(p).cast::<c_void>())]
}

/// Runs a raw entry on its own thread; the switch fires once the guest
/// reached stage 1; returns (termination, run result, progress).
fn kill_raw(entry: usize) -> (Termination, Result<u64, Error>, u64) {
    let p = Progress::new();
    let mut inst = Instance::new(STACK).unwrap();
    let switch = inst.kill_switch();
    let pp = p.clone();
    let runner = std::thread::spawn(move || {
        // SAFETY: entry is extern "C" fn(*const Progress) -> u64 that does
        // not unwind; `pp` outlives the run.
        let r = unsafe { inst.run(entry, &arg(&pp)) }.map(|v| v.as_u64());
        (r, inst.state())
    });
    p.wait_for(1);
    let t = switch.terminate();
    let (r, state) = runner.join().unwrap();
    if r.is_err() {
        assert_eq!(state, State::Terminated);
    }
    (t, r, p.0.load(Ordering::SeqCst))
}

#[test]
fn a_spinning_raw_entry_is_terminated() {
    common::deadline();
    let (t, r, _) = kill_raw(spin as extern "C" fn(*const Progress) -> u64 as usize);
    assert_eq!(t, Termination::Signalled);
    assert!(matches!(r, Err(Error::Terminated)));
}

#[test]
fn a_guest_blocked_in_nanosleep_is_terminated() {
    common::deadline();
    let (t, r, stage) = kill_raw(sleep_long as extern "C" fn(*const Progress) -> u64 as usize);
    assert_eq!(t, Termination::Signalled);
    assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
    assert_eq!(stage, 1, "nothing after the sleep ran");
}

#[test]
fn a_closure_is_terminable_only_inside_a_terminable_region() {
    common::deadline();
    let p = Progress::new();
    let mut inst = Instance::new(STACK).unwrap();
    let switch = inst.kill_switch();
    let pp = p.clone();
    let runner = std::thread::spawn(move || {
        let r = inst.run_closure(move || {
            pp.0.store(1, Ordering::SeqCst);
            // Not terminable: the kill waits.
            pp.wait_for(2);
            pp.0.store(3, Ordering::SeqCst);
            terminable(|| {
                pp.0.store(4, Ordering::SeqCst);
                loop {
                    std::hint::spin_loop();
                }
            })
        });
        (r, inst)
    });
    p.wait_for(1);
    assert_eq!(switch.terminate(), Termination::Pending);
    p.0.store(2, Ordering::SeqCst);
    let (r, mut inst) = runner.join().unwrap();
    assert!(matches!(r, Err(Error::Terminated)));
    // The closure ran up to the terminable region, and not into it.
    assert_eq!(p.0.load(Ordering::SeqCst), 3);

    // Inside a terminable region: signalled while spinning.
    inst.reset().unwrap();
    let p = Progress::new();
    let switch = inst.kill_switch();
    let pp = p.clone();
    let runner = std::thread::spawn(move || {
        inst.run_closure(move || {
            terminable(|| {
                pp.0.store(1, Ordering::SeqCst);
                loop {
                    std::hint::spin_loop();
                }
            })
        })
    });
    p.wait_for(1);
    assert_eq!(switch.terminate(), Termination::Signalled);
    assert!(matches!(runner.join().unwrap(), Err(Error::Terminated)));
}

extern "C" fn in_host_region(progress: *const Progress) -> u64 {
    // SAFETY: the test passes a live Progress.
    let p = unsafe { &*progress };
    host_region(|| {
        p.0.store(1, Ordering::SeqCst);
        p.wait_for(2);
        // The region's side effect, which must be kept.
        p.0.store(3, Ordering::SeqCst);
    });
    p.0.store(4, Ordering::SeqCst);
    0
}

#[test]
fn a_kill_inside_a_host_region_lands_when_the_region_ends() {
    common::deadline();
    let p = Progress::new();
    let mut inst = Instance::new(STACK).unwrap();
    let switch = inst.kill_switch();
    let pp = p.clone();
    let runner = std::thread::spawn(move || {
        // SAFETY: extern "C" fn(*const Progress) -> u64; pp outlives it.
        unsafe { inst.run(in_host_region as extern "C" fn(*const Progress) -> u64 as usize, &arg(&pp)) }
    });
    p.wait_for(1);
    assert_eq!(switch.terminate(), Termination::AfterHostRegion);
    p.0.store(2, Ordering::SeqCst);
    assert!(matches!(runner.join().unwrap(), Err(Error::Terminated)));
    assert_eq!(p.0.load(Ordering::SeqCst), 3, "side effects kept, nothing after the region");
}

#[test]
fn finished_and_faulted_runs_are_not_affected() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let s = inst.kill_switch();
    // SAFETY: reads address 8, which faults; extern "C" fn(usize) -> u64.
    let err = unsafe { inst.run(read_from as extern "C" fn(usize) -> u64 as usize, &[Val::USize(8)]) }.unwrap_err();
    assert!(err.fault().is_some());
    assert_eq!(s.terminate(), Termination::Finished(Ended::Faulted));
    inst.reset().unwrap();
    assert_eq!(s.terminate(), Termination::Superseded);
    let s = inst.kill_switch();
    assert_eq!(inst.run_closure(|| 1).unwrap(), 1);
    assert_eq!(s.terminate(), Termination::Finished(Ended::Returned));
    // The switch of an earlier run does not touch a later one.
    assert_eq!(inst.run_closure(|| 2).unwrap(), 2);
    assert_eq!(s.terminate(), Termination::Superseded);
    assert!(!s.terminate().takes_effect());
}

#[test]
fn stray_kill_signals_are_harmless() {
    common::deadline();
    let sig = instance::kill_signal();
    instance::install_handlers().unwrap();
    let before = instance::kill_signal_counts();
    // Sent by this thread to itself outside any run (tgkill): taken before
    // raise returns, by this thread, which runs no instance.
    // SAFETY: raise only sends a signal whose handler is installed.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
    let after_raise = instance::kill_signal_counts();
    assert!(after_raise.outside_runs > before.outside_runs, "{before:?} -> {after_raise:?}");
    assert!(after_raise.ignored > before.ignored);
    // Raised by a running guest at itself with no kill requested.
    let mut inst = Instance::new(STACK).unwrap();
    let r = inst
        .run_closure(move || {
            terminable(|| {
                // SAFETY: as above.
                unsafe { libc::raise(sig) };
                5
            })
        })
        .unwrap();
    assert_eq!(r, 5);
    // Sent to the whole process (kill, SI_USER): any thread that does not
    // block it may take it, including another test's thread in the middle
    // of a run, so only its being ignored is certain.
    // SAFETY: kill only sends a signal whose handler is installed.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
    while instance::kill_signal_counts().ignored < before.ignored + 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(inst.run_closure(|| 6).unwrap(), 6);
}

#[test]
fn set_kill_signal_refuses_bad_numbers() {
    assert!(matches!(instance::set_kill_signal(libc::SIGSEGV), Err(Error::KillSignal { signum: libc::SIGSEGV, .. })));
    assert!(matches!(instance::set_kill_signal(libc::SIGRTMAX() + 1), Err(Error::KillSignal { .. })));
    let current = instance::kill_signal();
    assert!(instance::set_kill_signal(current).is_ok());
    let other = if current == libc::SIGRTMAX() { current - 1 } else { current + 1 };
    assert!(matches!(instance::set_kill_signal(other), Err(Error::KillSignal { in_use, .. }) if in_use == current));
}

#[test]
fn timeouts_use_one_watchdog_thread_for_the_process() {
    common::deadline();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut inst = Instance::new(STACK).unwrap();
                inst.set_timeout(Some(Duration::from_millis(5)));
                for _ in 0..5 {
                    let p = Progress::new();
                    // SAFETY: spin is extern "C" fn(*const Progress); p outlives it.
                    let r = unsafe { inst.run(spin as extern "C" fn(*const Progress) -> u64 as usize, &arg(&p)) };
                    assert!(matches!(r, Err(Error::Terminated)));
                    inst.reset().unwrap();
                    let r = inst.run_closure(|| {
                        terminable(|| {
                            loop {
                                std::hint::spin_loop();
                            }
                        })
                    });
                    assert!(matches!(r, Err(Error::Terminated)));
                    inst.reset().unwrap();
                    // A run that finishes in time is not touched (with a
                    // timeout no scheduling delay of a loaded machine
                    // reaches: 5 ms did, once, with four builds running).
                    inst.set_timeout(Some(Duration::from_secs(10)));
                    assert_eq!(inst.run_closure(|| 9).unwrap(), 9);
                    inst.set_timeout(Some(Duration::from_millis(5)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(instance::watchdog_threads(), 1);
}

#[test]
fn kills_at_random_points_while_allocating_never_deadlock_the_host() {
    common::deadline();
    let runs = scale(1000);
    let mut rng = Rng(0x5eed);
    let mut inst = Instance::new(STACK).unwrap();
    // SAFETY: the closures lend nothing on their frames to anything that
    // outlives a kill, so the killed runs' stacks may be reused (else each
    // kill quarantines one).
    unsafe { inst.set_reuse_abandoned_stack(true) };
    let allocated = Arc::new(AtomicUsize::new(0));
    for i in 0..runs {
        let switch = inst.kill_switch();
        let delay = Duration::from_micros(rng.next() % 200);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            switch.terminate()
        });
        let a = allocated.clone();
        let seed = rng.next();
        let r = inst.run_closure(move || {
            let mut rng = Rng(seed);
            terminable(|| {
                loop {
                    // Allocation and freeing only inside host regions: a
                    // kill waits for the region to end.
                    host_region(|| {
                        let n = 1 + (rng.next() % 4096) as usize;
                        let mut v: Vec<u8> = Vec::with_capacity(n);
                        v.resize(n, i as u8);
                        let s = format!("{}", v.len());
                        a.fetch_add(s.len(), Ordering::Relaxed);
                    });
                }
            })
        });
        let t = killer.join().unwrap();
        assert!(matches!(r, Err(Error::Terminated)), "run {i}: {r:?}");
        // Pending: the kill came before the closure entered `terminable`
        // (closures are not terminable outside it); it lands on entry.
        assert!(t.takes_effect(), "{t:?}");
        // The host's allocator is usable.
        let v: Vec<u64> = (0..64).collect();
        assert_eq!(v.iter().sum::<u64>(), 2016);
        inst.reset().unwrap();
    }
    assert!(allocated.load(Ordering::Relaxed) > 0);
}

/// Counts its drops.
struct Tally(Arc<AtomicUsize>);

impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_pending_kill_at_a_yield_unwinds_the_closure_instead() {
    common::deadline();
    let p = Progress::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut inst = Instance::new(STACK).unwrap();
    let switch = inst.kill_switch();
    let (pp, d) = (p.clone(), drops.clone());
    let runner = std::thread::spawn(move || {
        let r = inst.start_closure(move || {
            let _t = Tally(d);
            pp.0.store(1, Ordering::SeqCst);
            pp.wait_for(2);
            let _: u8 = instance::yield_value::<u8, u8>(1).unwrap();
            pp.0.store(3, Ordering::SeqCst);
        });
        (r.map(|o| o.returned().is_some()), inst.state())
    });
    p.wait_for(1);
    assert_eq!(switch.terminate(), Termination::Pending);
    p.0.store(2, Ordering::SeqCst);
    let (r, state) = runner.join().unwrap();
    assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
    assert_eq!(state, State::Terminated);
    assert_eq!(p.0.load(Ordering::SeqCst), 2, "nothing after the yield ran");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the closure's locals were dropped once");
}
