//! C guests of the `instance` crate: yield and resume through
//! `instance/include/instance.h`, on one thread and across threads, and C
//! code a kill must stop (a `for(;;)`, a `nanosleep`, `malloc` inside host
//! regions).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use context::{UntypedRetVal, Val};
use instance::{Error, Instance, Outcome, State, Termination};
use test_support::scale;

// Linked for its C archive, which holds the guests below.
use context_tests_c as _;

unsafe extern "C" {
    fn ctc_inst_yield_sum(n: u64) -> u64;
    fn ctc_inst_yield_status() -> i64;
    fn ctc_inst_yield_mixed(n: u64, scale: f64) -> u64;
    fn ctc_inst_spin(progress: *const AtomicU64) -> u64;
    fn ctc_inst_sleep(progress: *const AtomicU64) -> u64;
    fn ctc_inst_alloc_forever(progress: *const AtomicU64, seed: u64) -> u64;
}

const STACK: usize = 128 * 1024;

#[test]
fn c_guest_yields_and_is_resumed_with_u64s() {
    let mut inst = Instance::new(STACK).unwrap();
    // SAFETY: ctc_inst_yield_sum is uint64_t(uint64_t) and does not unwind.
    let mut out =
        unsafe { inst.start(ctc_inst_yield_sum as unsafe extern "C" fn(u64) -> u64 as usize, &[Val::U64(10)]) }
            .unwrap();
    let mut i = 0u64;
    loop {
        match out {
            Outcome::Yielded(y) => {
                assert_eq!(y.as_u64(), Some(i));
                // A u64 guest refuses other types, and stays suspended.
                assert!(matches!(
                    inst.resume::<UntypedRetVal, u32>(1),
                    Err(Error::ResumeType { expected: "u64", got: "u32" })
                ));
                out = inst.resume::<UntypedRetVal, u64>(i * i).unwrap();
                i += 1;
            }
            Outcome::Returned(ret) => {
                assert_eq!(ret.as_u64(), (0..10u64).map(|k| k * k).sum::<u64>());
                break;
            }
            _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
        }
    }
    assert_eq!(i, 10);
}

#[test]
fn c_yield_is_refused_where_it_may_not_yield() {
    // Outside any guest.
    // SAFETY: plain C call.
    assert_eq!(unsafe { ctc_inst_yield_status() }, instance::INSTANCE_E_NOT_IN_GUEST as i64);
    // In a run started with `run`.
    let mut inst = Instance::new(STACK).unwrap();
    // SAFETY: int64_t(void), does not unwind.
    let r = unsafe { inst.run(ctc_inst_yield_status as unsafe extern "C" fn() -> i64 as usize, &[]) }.unwrap();
    assert_eq!(r.as_i64(), instance::INSTANCE_E_NOT_RESUMABLE as i64);
}

/// What `ctc_inst_yield_mixed` computes, with the same resume values.
fn mixed_expected(n: u64, scale: f64, resumed: impl Fn(u64) -> u64) -> (Vec<u64>, u64) {
    let mut x = scale;
    let mut acc: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut yields = Vec::new();
    for i in 0..n {
        yields.push(x.to_bits() ^ acc);
        let r = resumed(i);
        acc = acc.wrapping_mul(6364136223846793005).wrapping_add(r);
        x = x * 1.5 + (r & 0xff) as f64;
    }
    (yields, x.to_bits() ^ acc)
}

#[test]
fn c_guest_state_survives_yields_resumed_on_other_threads() {
    let n = 24u64;
    let resumed = |i: u64| i.wrapping_mul(0x1234_5678_9abc_def1) ^ 0xff;
    let (yields, ret) = mixed_expected(n, 0.75, resumed);
    let mut inst = Instance::new(STACK).unwrap();
    // SAFETY: uint64_t(uint64_t, double), does not unwind.
    let out = unsafe {
        inst.start(
            ctc_inst_yield_mixed as unsafe extern "C" fn(u64, f64) -> u64 as usize,
            &[Val::U64(n), Val::F64(0.75)],
        )
    }
    .unwrap();
    let mut y = out.yielded().unwrap();
    for i in 0..n {
        assert_eq!(y.as_u64(), Some(yields[i as usize]), "yield {i}");
        let (back, out) = std::thread::spawn(move || {
            let out = inst.resume::<UntypedRetVal, u64>(resumed(i));
            (inst, out)
        })
        .join()
        .unwrap();
        inst = back;
        match out.unwrap() {
            Outcome::Yielded(next) => y = next,
            Outcome::Returned(r) => {
                assert_eq!(i, n - 1);
                assert_eq!(r.as_u64(), ret);
                return;
            }
            _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
        }
    }
    panic!("never returned");
}

fn kill_c(entry: usize, extra: &[Val]) -> (Termination, Result<u64, Error>, u64) {
    let progress = Arc::new(AtomicU64::new(0));
    let mut inst = Instance::new(STACK).unwrap();
    let switch = inst.kill_switch();
    let p = progress.clone();
    let extra: Vec<u64> = extra.iter().map(context::val_to_stack).collect();
    let runner = std::thread::spawn(move || {
        let mut args = vec![Val::CPtr(Arc::as_ptr(&p).cast())];
        args.extend(extra.into_iter().map(Val::U64));
        // SAFETY: the guests take (uint64_t *progress[, uint64_t]) and do
        // not unwind; `p` outlives the run.
        let r = unsafe { inst.run(entry, &args) }.map(|v| v.as_u64());
        assert_eq!(r.is_err(), inst.state() == State::Terminated);
        drop(p);
        r
    });
    while progress.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let t = switch.terminate();
    let r = runner.join().unwrap();
    (t, r, progress.load(Ordering::SeqCst))
}

#[test]
fn a_c_for_ever_loop_is_terminated() {
    let (t, r, _) = kill_c(ctc_inst_spin as unsafe extern "C" fn(*const AtomicU64) -> u64 as usize, &[]);
    assert_eq!(t, Termination::Signalled);
    assert!(matches!(r, Err(Error::Terminated)));
}

#[test]
fn a_c_guest_in_nanosleep_is_terminated() {
    let (t, r, progress) = kill_c(ctc_inst_sleep as unsafe extern "C" fn(*const AtomicU64) -> u64 as usize, &[]);
    assert_eq!(t, Termination::Signalled);
    assert!(matches!(r, Err(Error::Terminated)));
    assert_eq!(progress, 1, "nothing after the sleep ran");
}

#[test]
fn c_guests_killed_while_allocating_never_deadlock_the_host() {
    let mut inst = Instance::new(STACK).unwrap();
    let mut seed = 0x1234_5678u64;
    for i in 0..scale(1000) {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let progress = AtomicU64::new(0);
        let switch = inst.kill_switch();
        let delay = Duration::from_micros(seed % 300);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            switch.terminate()
        });
        // SAFETY: uint64_t(uint64_t *, uint64_t), does not unwind;
        // `progress` outlives the run.
        let r = unsafe {
            inst.run(
                ctc_inst_alloc_forever as unsafe extern "C" fn(*const AtomicU64, u64) -> u64 as usize,
                &[Val::CPtr((&progress as *const AtomicU64).cast()), Val::U64(seed)],
            )
        };
        let t = killer.join().unwrap();
        assert!(matches!(r, Err(Error::Terminated)), "run {i}: {r:?}");
        assert!(t.takes_effect(), "run {i}: {t:?}");
        // The host allocates normally afterwards.
        let v: Vec<u64> = (0..100).collect();
        assert_eq!(v.len(), 100);
        inst.reset().unwrap();
    }
}
