//! Review 4, aarch64: FPCR across the ways a guest leaves. A guest that
//! leaves FPCR with odd bits (rounding mode, FZ, DN, AHP) and is killed (by
//! a timeout while spinning, by another thread while in a system call),
//! faults, or yields: the host gets its own FPCR back bit for bit, a
//! resumed guest gets its own back, and a fresh guest starts with the
//! host's. Also the other direction: the host runs with every testable bit
//! set and the guest clears them.
#![cfg(target_arch = "aarch64")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use context::Val;
use instance::{Error, FaultKind, Instance, Outcome, Termination};
use test_support::fp::{FPCR_FZ, FPCR_ROUND_DOWN, FPCR_TESTABLE, fpcr, set_fpcr};

/// Alternative half-precision and default NaN: bits a host rarely has.
const AHP_DN: u64 = 1 << 26 | 1 << 25;

/// Runs `f` on a thread of its own (FPCR is per thread) with FPCR `host`,
/// and asserts the thread still has exactly `host` afterwards.
fn with_host_fpcr(what: &'static str, host: u64, f: impl FnOnce() + Send + 'static) {
    common::deadline();
    std::thread::spawn(move || {
        set_fpcr(host);
        assert_eq!(fpcr(), host, "{what}: FPCR bits not settable here");
        f();
        assert_eq!(fpcr(), host, "{what}: the host's FPCR was not given back");
    })
    .join()
    .unwrap();
}

extern "C" fn read_fpcr() -> u64 {
    fpcr()
}

extern "C" fn set_fpcr_then_spin(bits: u64, progress: *const AtomicU64) -> u64 {
    set_fpcr(bits);
    // SAFETY: the test passes a live counter.
    unsafe { &*progress }.store(1, Ordering::SeqCst);
    // SAFETY: spins until the kill arrives; no memory touched.
    unsafe { core::arch::asm!("2:", "b 2b", options(noreturn, nomem, nostack)) }
}

/// Sets FPCR, then sleeps in a raw `nanosleep` system call (so no libc
/// wrapper sits between the guest and the kernel) until killed.
extern "C" fn set_fpcr_then_sleep(bits: u64, progress: *const AtomicU64) -> u64 {
    set_fpcr(bits);
    // SAFETY: the test passes a live counter.
    unsafe { &*progress }.store(1, Ordering::SeqCst);
    let ts = libc::timespec { tv_sec: 30, tv_nsec: 0 };
    loop {
        let ret: u64;
        // SAFETY: nanosleep(&ts, NULL) as a raw system call; it only reads
        // `ts`.
        unsafe {
            core::arch::asm!("svc #0", in("x8") libc::SYS_nanosleep, inlateout("x0") &ts as *const libc::timespec => ret,
                in("x1") 0usize, options(nostack))
        };
        let _ = ret;
    }
}

extern "C" fn set_fpcr_then_fault(bits: u64) -> u64 {
    set_fpcr(bits);
    // SAFETY: faults on purpose (udf).
    unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
    0
}

#[test]
fn a_fresh_guest_starts_with_the_hosts_fpcr_and_leaves_it_alone() {
    for host in [0, AHP_DN, FPCR_TESTABLE, FPCR_FZ | FPCR_ROUND_DOWN] {
        with_host_fpcr("fresh guest", host, move || {
            let mut inst = Instance::new(64 * 1024).unwrap();
            for _ in 0..2 {
                // SAFETY: an extern "C" fn() -> u64.
                let seen = unsafe { inst.run(read_fpcr as *const () as usize, &[]) }.unwrap().as_u64();
                assert_eq!(seen, host, "a fresh guest did not start with the host's FPCR");
                // A guest that changes it, then returns.
                let seen = inst
                    .run_closure(|| {
                        set_fpcr(FPCR_TESTABLE & !fpcr());
                        fpcr()
                    })
                    .unwrap();
                assert_eq!(seen, FPCR_TESTABLE & !host);
                assert_eq!(fpcr(), host, "a returning guest's FPCR followed the host");
            }
        });
    }
}

#[test]
fn a_guest_killed_while_spinning_leaves_the_host_its_fpcr() {
    for (host, guest) in [(0, FPCR_TESTABLE), (FPCR_TESTABLE, 0), (AHP_DN, FPCR_FZ | FPCR_ROUND_DOWN)] {
        with_host_fpcr("timeout kill", host, move || {
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.set_timeout(Some(Duration::from_millis(30)));
            let progress = AtomicU64::new(0);
            let args = [Val::U64(guest), Val::CPtr((&progress as *const AtomicU64).cast())];
            // SAFETY: an extern "C" fn(u64, *const AtomicU64) -> u64 that
            // spins; terminable (a raw entry).
            let r = unsafe { inst.run(set_fpcr_then_spin as *const () as usize, &args) };
            assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
            assert_eq!(progress.load(Ordering::SeqCst), 1);
            assert_eq!(fpcr(), host, "the killed guest's FPCR followed the host");
            inst.reset().unwrap();
            inst.set_timeout(None);
            // SAFETY: an extern "C" fn() -> u64.
            let seen = unsafe { inst.run(read_fpcr as *const () as usize, &[]) }.unwrap().as_u64();
            assert_eq!(seen, host, "the next guest started with the killed guest's FPCR");
        });
    }
}

#[test]
fn a_guest_killed_by_another_thread_inside_a_system_call_leaves_the_host_its_fpcr() {
    with_host_fpcr("kill in syscall", AHP_DN, || {
        let mut inst = Instance::new(64 * 1024).unwrap();
        let switch = inst.kill_switch();
        let progress = Arc::new(AtomicU64::new(0));
        let killer = {
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || {
                while progress.load(Ordering::SeqCst) == 0 {
                    std::thread::yield_now();
                }
                // Let the guest get into the system call.
                std::thread::sleep(Duration::from_millis(50));
                switch.terminate()
            })
        };
        let args = [Val::U64(FPCR_FZ | FPCR_ROUND_DOWN), Val::CPtr(Arc::as_ptr(&progress).cast())];
        // SAFETY: an extern "C" fn(u64, *const AtomicU64) -> u64 that
        // sleeps until killed; terminable (a raw entry).
        let r = unsafe { inst.run(set_fpcr_then_sleep as *const () as usize, &args) };
        assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
        assert_eq!(killer.join().unwrap(), Termination::Signalled);
        assert_eq!(fpcr(), AHP_DN, "the killed guest's FPCR followed the host");
    });
}

#[test]
fn a_faulting_guest_leaves_the_host_its_fpcr_both_ways() {
    for (host, guest) in [(0, FPCR_TESTABLE), (FPCR_TESTABLE, 0), (AHP_DN, FPCR_FZ)] {
        with_host_fpcr("fault", host, move || {
            let mut inst = Instance::new(64 * 1024).unwrap();
            for _ in 0..3 {
                // SAFETY: an extern "C" fn(u64) -> u64 that faults.
                let err =
                    unsafe { inst.run(set_fpcr_then_fault as *const () as usize, &[Val::U64(guest)]) }.unwrap_err();
                assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::IllegalInstruction), "{err:?}");
                assert_eq!(fpcr(), host, "the faulted guest's FPCR followed the host");
                inst.reset().unwrap();
            }
        });
    }
}

#[test]
fn a_yielded_guest_gets_its_own_fpcr_back_whatever_the_host_did_meanwhile() {
    with_host_fpcr("yield", AHP_DN, || {
        let mut inst = Instance::new(256 * 1024).unwrap();
        let out = inst
            .start_closure(|| {
                let mut seen = Vec::new();
                for i in 0..4u64 {
                    let mine = (i << 22) & FPCR_TESTABLE | FPCR_FZ;
                    set_fpcr(mine);
                    instance::yield_u64(mine).unwrap();
                    seen.push((mine, fpcr()));
                }
                seen
            })
            .unwrap();
        let mut out = out;
        let mut k = 0;
        let seen = loop {
            match out {
                Outcome::Yielded(y) => {
                    let guest = y.as_u64().unwrap();
                    assert_eq!(fpcr(), AHP_DN, "the yielding guest's FPCR {guest:#x} followed the host");
                    // The host changes its own FPCR between yield and resume.
                    let other = if k % 2 == 0 { FPCR_TESTABLE } else { 0 };
                    set_fpcr(other);
                    out = inst.resume::<Vec<(u64, u64)>, u64>(0).unwrap();
                    assert_eq!(fpcr(), other, "resume changed the host's FPCR");
                    set_fpcr(AHP_DN);
                    k += 1;
                }
                Outcome::Returned(v) => break v,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(seen.len(), 4);
        for (mine, after) in seen {
            assert_eq!(after, mine, "a resumed guest did not get its own FPCR back");
        }
    });
}
