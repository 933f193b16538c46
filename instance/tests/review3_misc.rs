//! Review (9884d43 and the way back): the thread's cached instance
//! allocation reused by `with_stack` under aliasing, threads and panics;
//! guests that overflow their stack over and over in both modes; and
//! Rust's own stack-overflow report on a Keep-mode thread whose guests
//! faulted (child processes).

mod common;

use std::hint::black_box;
use std::sync::Mutex;

use common::{ChildOutcome, run_child};
use context::Val;
use instance::{Error, FaultKind, Instance, StackPool, State, Termination, ThreadSignalMode};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

extern "C" fn returns(v: u64) -> u64 {
    v
}

#[allow(unconditional_recursion)]
extern "C" fn overflows(n: u64) -> u64 {
    let pad = black_box([n; 64]);
    overflows(pad[1] + 1) + pad[5]
}

#[test]
fn instances_made_from_the_cached_allocation_are_independent_of_the_ones_before() {
    common::deadline();
    let _s = serial();
    let pool = StackPool::new(64 * 1024, instance::DEFAULT_GUARD_SIZE, 4).unwrap();
    for round in 0..200u64 {
        let mut a = Instance::with_stack(pool.take().unwrap());
        let mut b = Instance::with_stack(pool.take().unwrap());
        let old_a = a.kill_switch();
        // a's allocation becomes the spare; c is made from it while b lives.
        // SAFETY: extern "C" fn(u64) -> u64.
        let ra = unsafe { a.run(returns as extern "C" fn(u64) -> u64 as usize, &[Val::U64(round)]) };
        assert_eq!(ra.unwrap().as_u64(), round);
        pool.put(a.into_stack().unwrap()).unwrap();
        let mut c = Instance::with_stack(pool.take().unwrap());
        // The old instance's switch must not reach the new one.
        assert!(matches!(old_a.terminate(), Termination::Dropped), "round {round}: {:?}", old_a.terminate());
        // SAFETY: as above.
        let rc = unsafe { c.run(returns as extern "C" fn(u64) -> u64 as usize, &[Val::U64(round + 1)]) };
        assert_eq!(rc.unwrap().as_u64(), round + 1, "round {round}: c was killed by a's switch");
        // A panic between giving back and taking again.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let s = c.into_stack().unwrap();
            let _d = Instance::with_stack(s);
            panic!("between");
        }));
        assert!(r.is_err());
        // b, made before, still works and faults cleanly; faults of e (from the
        // spare again) stay e's.
        let mut e = Instance::new(64 * 1024).unwrap();
        // SAFETY: as above.
        let rb = unsafe { b.run(overflows as extern "C" fn(u64) -> u64 as usize, &[Val::U64(0)]) };
        assert_eq!(rb.unwrap_err().fault().map(|f| f.kind), Some(FaultKind::StackOverflow), "round {round}");
        assert_eq!(e.state(), State::Ready);
        assert_eq!(b.state(), State::Faulted);
        // b moves to another thread and gives its stack back there.
        let h = std::thread::spawn(move || {
            let s = b.into_stack().unwrap();
            let mut f = Instance::with_stack(s);
            assert_eq!(f.run_closure(move || round * 2).unwrap(), round * 2);
            f.into_stack().unwrap()
        });
        pool.put(h.join().unwrap()).unwrap();
        assert_eq!(e.run_closure(move || round + 7).unwrap(), round + 7);
    }
}

#[test]
fn a_raw_guest_overflows_its_stack_thousands_of_times_in_both_modes() {
    common::deadline();
    let _s = serial();
    for mode in [ThreadSignalMode::Restore, ThreadSignalMode::Keep] {
        instance::set_thread_signal_mode(mode).unwrap();
        // The thread's alternate stack for runs is made by its first run.
        assert_eq!(Instance::new(instance::page_size()).unwrap().run_closure(|| 1).unwrap(), 1);
        let maps = common::maps_lines();
        let mut inst = Instance::new(64 * 1024).unwrap();
        let guard = (inst.stack().mapping_start(), inst.stack().base());
        for i in 0..common::scale(2000) {
            // SAFETY: extern "C" fn(u64) -> u64 that overflows; nothing uses
            // its frames after.
            let r = unsafe { inst.run(overflows as extern "C" fn(u64) -> u64 as usize, &[Val::U64(i as u64)]) };
            match r {
                Err(Error::Fault(f)) => {
                    assert_eq!(f.kind, FaultKind::StackOverflow, "{mode:?} {i}");
                    assert!(guard.0 <= f.addr && f.addr < guard.1, "{mode:?} {i}: {f:?}");
                }
                other => panic!("{mode:?} {i}: {:?}", other.map(|_| ())),
            }
            inst.reset().unwrap();
            if i % 100 == 0 {
                assert_eq!(inst.run_closure(move || i + 1).unwrap(), i + 1);
            }
        }
        drop(inst);
        let now = common::maps_lines();
        // Slack for the C allocator's arenas growing (a leak per fault would be
        // thousands of lines).
        assert!(now <= maps + 4, "{mode:?}: mappings leaked: {maps} -> {now}");
    }
    instance::set_thread_signal_mode(ThreadSignalMode::Restore).unwrap();
}

// ---- Rust's own report after guests faulted on a Keep thread ----------

#[allow(unconditional_recursion)]
fn host_recursion(n: u64) -> u64 {
    let pad = black_box([n; 128]);
    host_recursion(pad[3] + 1) + pad[7]
}

#[test]
fn child() {
    let Some(case) = common::child_case() else { return };
    let mode = if case.starts_with("keep") { ThreadSignalMode::Keep } else { ThreadSignalMode::Restore };
    let on_main = case.ends_with("main");
    let body = move || {
        instance::set_thread_signal_mode(mode).unwrap();
        let mut inst = Instance::new(64 * 1024).unwrap();
        for _ in 0..50 {
            // SAFETY: as above.
            let r = unsafe { inst.run(overflows as extern "C" fn(u64) -> u64 as usize, &[Val::U64(0)]) };
            assert_eq!(r.unwrap_err().fault().map(|f| f.kind), Some(FaultKind::StackOverflow));
            inst.reset().unwrap();
        }
        black_box(host_recursion(0));
    };
    if on_main {
        body();
    } else {
        std::thread::Builder::new().name("host-thread".into()).spawn(body).unwrap().join().unwrap();
    }
}

fn overflow_case(case: &str) -> ChildOutcome {
    let out = run_child("child", case);
    assert_eq!(out.signal(), Some(libc::SIGABRT), "{case}: {out:?}");
    assert!(out.stderr.contains("has overflowed its stack"), "{case}: {out:?}");
    out
}

#[test]
fn a_host_stack_overflow_after_guests_overflowed_on_a_keep_thread_gets_rusts_message() {
    // Serial: the overflow test counts this process's mappings.
    let _s = serial();
    overflow_case("keep-thread");
    overflow_case("restore-thread");
}
