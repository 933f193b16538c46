//! Every run ends, and the thread's mask comes back exactly, when the thread
//! running it blocks every signal (a common worker-thread pattern), in both
//! `ThreadSignalMode`s.
//!
//! Each case runs on a thread of its own that blocks everything first, so
//! the test harness's threads keep their masks. A hang fails the whole
//! binary through `common::deadline`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use context::Val;
use instance::{Error, FaultKind, Instance, Termination, ThreadSignalMode, set_thread_signal_mode};
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

const MODES: [ThreadSignalMode; 2] = [ThreadSignalMode::Restore, ThreadSignalMode::Keep];

/// The mask a thread that blocked everything has after runs in `mode`:
/// the same in Restore mode; in Keep mode the fault signals and the kill
/// signal are unblocked (Keep leaves them so, see `ThreadSignalMode`).
fn expected_after(mode: ThreadSignalMode, before: SigSet) -> SigSet {
    match mode {
        ThreadSignalMode::Keep => {
            let mut set = before;
            for s in instance::FAULT_SIGNALS {
                set.remove(s);
            }
            let mut raw: libc::sigset_t = *set.as_ref();
            // SAFETY: removes a valid signal number from an initialised set.
            unsafe { libc::sigdelset(&mut raw, instance::kill_signal()) };
            // SAFETY: `raw` is an initialised set.
            unsafe { SigSet::from_sigset_t_unchecked(raw) }
        }
        _ => before,
    }
}

/// Runs `f` on a new thread in `mode` with every signal blocked, and checks
/// the thread's mask afterwards (`expected_after`).
fn on_blocking_thread(mode: ThreadSignalMode, f: impl FnOnce(SigSet) + Send + 'static) {
    common::deadline();
    std::thread::spawn(move || {
        set_thread_signal_mode(mode).unwrap();
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None).unwrap();
        let before = SigSet::thread_get_mask().unwrap();
        f(expected_after(mode, before));
        assert_eq!(SigSet::thread_get_mask().unwrap(), expected_after(mode, before), "{mode:?}");
        set_thread_signal_mode(ThreadSignalMode::Restore).unwrap();
    })
    .join()
    .unwrap();
}

extern "C" fn spin_forever() -> u64 {
    loop {
        std::hint::spin_loop();
    }
}

/// Spins until `*flag` is non-zero, then returns 5.
extern "C" fn spin_until(flag: *const AtomicU64) -> u64 {
    // SAFETY: the test passes a pointer to an AtomicU64 that outlives the run.
    let flag = unsafe { &*flag };
    while flag.load(Ordering::SeqCst) == 0 {
        std::hint::spin_loop();
    }
    5
}

/// Blocks the kill signal itself (a guest that misbehaves), reports that it
/// has, then spins until `*flag` is non-zero and returns 6.
extern "C" fn block_kill_then_spin_until(flag: *const AtomicU64) -> u64 {
    // SAFETY: a local set; the kill signal number is valid.
    unsafe {
        let mut set = core::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, instance::kill_signal());
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
    }
    // SAFETY: as in `spin_until`.
    let flag = unsafe { &*flag };
    flag.store(1, Ordering::SeqCst);
    while flag.load(Ordering::SeqCst) == 1 {
        std::hint::spin_loop();
    }
    6
}

/// A guest that writes to an unmapped address (SIGSEGV).
fn write_to_unmapped() {
    // SAFETY: a deliberate fault, recovered by the instance.
    unsafe { core::ptr::without_provenance_mut::<u64>(8).write_volatile(1) }
}

#[test]
fn timeout_ends_a_spinning_guest_on_a_thread_that_blocks_every_signal() {
    for mode in MODES {
        on_blocking_thread(mode, move |_| {
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.set_timeout(Some(Duration::from_millis(5)));
            for _ in 0..3 {
                // SAFETY: extern "C" fn without arguments that never unwinds.
                let r = unsafe { inst.run(spin_forever as *const () as usize, &[]) };
                assert!(matches!(r, Err(Error::Terminated)), "{mode:?}: {r:?}");
                inst.reset().unwrap();
            }
        });
    }
}

#[test]
fn a_kill_sent_to_a_run_on_a_blocking_thread_ends_it_and_the_host_returns() {
    for mode in MODES {
        on_blocking_thread(mode, move |_| {
            let mut inst = Instance::new(64 * 1024).unwrap();
            for _ in 0..20 {
                let flag = Arc::new(AtomicU64::new(0));
                let switch = inst.kill_switch();
                let killer = {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(1));
                        let said = switch.terminate();
                        // The guest may return on its own now: the host must
                        // still not wait for a signal that cannot arrive.
                        flag.store(1, Ordering::SeqCst);
                        said
                    })
                };
                let arg = Val::CPtr(Arc::as_ptr(&flag).cast());
                // SAFETY: extern "C" fn taking one pointer, valid for the run.
                let r = unsafe { inst.run(spin_until as *const () as usize, &[arg]) };
                let said = killer.join().unwrap();
                if said.takes_effect() {
                    assert!(matches!(r, Err(Error::Terminated)), "{mode:?}: {said:?} but {r:?}");
                    inst.reset().unwrap();
                } else {
                    assert_eq!(r.unwrap().as_u64(), 5, "{mode:?}: {said:?}");
                }
            }
        });
    }
}

#[test]
fn guest_that_blocks_the_kill_signal_still_lets_its_host_return() {
    for mode in MODES {
        on_blocking_thread(mode, move |_| {
            let mut inst = Instance::new(64 * 1024).unwrap();
            let flag = Arc::new(AtomicU64::new(0));
            let switch = inst.kill_switch();
            let killer = {
                let flag = flag.clone();
                std::thread::spawn(move || {
                    while flag.load(Ordering::SeqCst) != 1 {
                        std::thread::yield_now();
                    }
                    let said = switch.terminate();
                    flag.store(2, Ordering::SeqCst);
                    said
                })
            };
            let arg = Val::CPtr(Arc::as_ptr(&flag).cast());
            // SAFETY: extern "C" fn taking one pointer, valid for the run.
            let r = unsafe { inst.run(block_kill_then_spin_until as *const () as usize, &[arg]) };
            assert_eq!(killer.join().unwrap(), Termination::Signalled);
            // The signal waited behind the guest's mask; the run still ended
            // terminated (the kill word decides) instead of hanging.
            assert!(matches!(r, Err(Error::Terminated)), "{mode:?}: {r:?}");
        });
    }
}

#[test]
fn faults_and_returns_on_a_blocking_thread_give_its_mask_back() {
    for mode in MODES {
        on_blocking_thread(mode, move |after| {
            let all = SigSet::thread_get_mask().unwrap();
            let mut inst = Instance::new(64 * 1024).unwrap();
            // A kill switch exists, so runs unblock the kill signal.
            let _switch = inst.kill_switch();
            for _ in 0..5 {
                let err = inst.run_closure(write_to_unmapped).unwrap_err();
                assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::MemoryFault));
                if mode == ThreadSignalMode::Restore {
                    // A fault restores the host's mask: everything.
                    assert_eq!(SigSet::thread_get_mask().unwrap(), all, "a fault gives the host's mask back");
                }
                inst.reset().unwrap();
                assert_eq!(inst.run_closure(|| 3).unwrap(), 3);
                assert_eq!(SigSet::thread_get_mask().unwrap(), after, "{mode:?}");
            }
        });
    }
}

#[test]
fn faults_on_a_blocking_thread_without_kill_switch_are_recovered() {
    // The guest's fault meets an unblocked SIGSEGV in both modes (the kernel
    // kills the process when a CPU fault meets a blocked one).
    for mode in MODES {
        on_blocking_thread(mode, move |_| {
            // In the guest, the run's signals are unblocked and the rest as
            // the thread had them.
            let in_guest = expected_after(ThreadSignalMode::Keep, SigSet::thread_get_mask().unwrap());
            let mut inst = Instance::new(64 * 1024).unwrap();
            for _ in 0..3 {
                let err = inst.run_closure(write_to_unmapped).unwrap_err();
                assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::MemoryFault));
                inst.reset().unwrap();
                let seen = AtomicBool::new(false);
                inst.run_closure(|| seen.store(SigSet::thread_get_mask().unwrap() == in_guest, Ordering::SeqCst))
                    .unwrap();
                assert!(seen.load(Ordering::SeqCst), "{mode:?}: the guest ran with another mask");
            }
        });
    }
}
