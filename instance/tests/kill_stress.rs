//! Races between kills and runs: kills at random delays against guests that
//! return, fault or yield at once; and many threads running instances that
//! return, fault, overflow, yield or are killed at random. Counts scale with
//! `INSTANCE_STRESS_SCALE` (default 1) for local soak runs.

mod common;

use common::{Rng, scale};

use std::sync::mpsc;
use std::time::{Duration, Instant};

use context::{UntypedRetVal, Val};
use instance::{Ended, Error, FaultKind, Instance, KillSwitch, Outcome, State, Termination, yield_u64};

const STACK: usize = 64 * 1024;

/// The kill-signal counters are process-wide: the tests here run one at a
/// time so that each reads its own deltas.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

extern "C" fn returns() -> u64 {
    7
}

extern "C" fn faults() -> u64 {
    // SAFETY: faults on purpose (address 16 is never mapped).
    unsafe { (std::hint::black_box(16usize) as *const u64).read_volatile() }
}

extern "C" fn yields() -> u64 {
    match yield_u64(1) {
        Ok(v) => v + 1,
        Err(_) => 0,
    }
}

#[allow(unconditional_recursion)]
extern "C" fn overflows(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 32]);
    overflows(pad[1] + 1) + pad[5]
}

extern "C" fn spins() -> u64 {
    loop {
        std::hint::spin_loop();
    }
}

fn addr(f: extern "C" fn() -> u64) -> usize {
    f as usize
}

/// A thread that fires switches after a busy-waited delay and reports what
/// `terminate` said.
struct Killer {
    jobs: mpsc::Sender<(KillSwitch, Duration)>,
    answers: mpsc::Receiver<Termination>,
}

impl Killer {
    fn new() -> Killer {
        let (jobs, rx) = mpsc::channel::<(KillSwitch, Duration)>();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            loop {
                // Polled, not blocked on, so that the kill follows the send
                // within the few microseconds a run takes.
                let (switch, delay) = match rx.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::TryRecvError::Empty) => {
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(mpsc::TryRecvError::Disconnected) => return,
                };
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                if tx.send(switch.terminate()).is_err() {
                    return;
                }
            }
        });
        Killer { jobs, answers }
    }
}

#[test]
fn kills_at_random_delays_against_guests_that_end_at_once_agree_with_the_run() {
    common::deadline();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = instance::kill_signal_counts();
    let runs = scale(10_000);
    let killer = Killer::new();
    let mut rng = Rng(0xdead_beef);
    let mut inst = Instance::new(STACK).unwrap();
    let started = Instant::now();
    let mut tally = [0usize; 6];
    for i in 0..runs {
        let kind = rng.next() % 3;
        // Mostly within the few microseconds a run takes, sometimes later.
        let delay =
            Duration::from_nanos(if rng.next().is_multiple_of(4) { rng.next() % 20_000 } else { rng.next() % 3_000 });
        killer.jobs.send((inst.kill_switch(), delay)).unwrap();
        // SAFETY: the three guests are extern "C" fn() -> u64 that do not
        // unwind.
        let r = unsafe {
            match kind {
                0 => inst.start(addr(returns), &[]),
                1 => inst.start(addr(faults), &[]),
                _ => inst.start(addr(yields), &[]),
            }
        };
        let t = killer.answers.recv().unwrap();
        match (kind, r) {
            (_, Err(Error::Terminated)) => {
                assert!(
                    matches!(t, Termination::Signalled | Termination::AtStart | Termination::Pending),
                    "run {i} kind {kind}: {t:?}"
                );
                assert_eq!(inst.state(), State::Terminated);
                tally[3] += 1;
            }
            (0, Ok(Outcome::Returned(v))) => {
                assert_eq!(v.as_u64(), 7);
                assert_eq!(t, Termination::Finished(Ended::Returned), "run {i}");
                tally[0] += 1;
            }
            (1, Err(Error::Fault(report))) => {
                assert_eq!(report.kind, FaultKind::MemoryFault);
                assert_eq!(t, Termination::Finished(Ended::Faulted), "run {i}");
                tally[1] += 1;
            }
            (2, Ok(Outcome::Yielded(y))) => {
                assert_eq!(y.as_u64(), Some(1));
                assert_eq!(t, Termination::OnResume, "run {i}");
                assert!(matches!(inst.resume::<UntypedRetVal, u64>(5), Err(Error::Terminated)));
                tally[2] += 1;
            }
            (kind, other) => panic!("run {i} kind {kind}: unexpected {other:?} with {t:?}"),
        }
        if inst.state() != State::Returned {
            inst.reset().unwrap();
        }
        // Now and then: the instance runs normally, and resumes normally.
        if i % 64 == 0 {
            assert_eq!(inst.run_closure(|| 11).unwrap(), 11);
            // SAFETY: as above.
            let y = unsafe { inst.start(addr(yields), &[]) }.unwrap();
            assert!(matches!(y, Outcome::Yielded(_)));
            assert_eq!(inst.resume::<UntypedRetVal, u64>(5).unwrap().returned().unwrap().as_u64(), 6);
            tally[4] += 1;
        }
    }
    let after = instance::kill_signal_counts();
    let accepted = after.accepted - before.accepted;
    let ignored = after.ignored - before.ignored;
    let outside = after.outside_runs - before.outside_runs;
    eprintln!(
        "{runs} kill races in {:?}: returned {}, faulted {}, yielded then terminated {}, terminated {}; \
         kill signals accepted {}, taken while the run was ending {}, outside runs {}",
        started.elapsed(),
        tally[0],
        tally[1],
        tally[2],
        tally[3],
        accepted,
        ignored,
        outside
    );
    // No kill signal reached the host's code: every one was taken while
    // its run was still in progress.
    assert_eq!(outside, 0, "kill signals delivered outside any run");
    assert_eq!(tally[0] + tally[1] + tally[2] + tally[3], runs);
    // Each accepted signal ended exactly one run that `terminate` reported
    // as signalled.
    assert!(accepted as usize <= tally[3]);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Return,
    Fault,
    Overflow,
    Yield,
    Killed,
}

/// Odd seeds run in `ThreadSignalMode::Keep` (our alternate stack stays
/// installed between runs and is unmapped when the thread exits), even ones
/// in the default `Restore`.
fn one_thread(seed: u64, runs: usize) -> [usize; 5] {
    if seed % 2 == 1 {
        instance::set_thread_signal_mode(instance::ThreadSignalMode::Keep).unwrap();
    }
    let mut rng = Rng(seed);
    let mut done = [0usize; 5];
    let mut inst = Instance::new(STACK).unwrap();
    for i in 0..runs {
        let kind = [Kind::Return, Kind::Fault, Kind::Overflow, Kind::Yield, Kind::Killed][(rng.next() % 5) as usize];
        if inst.state() != State::Ready && inst.state() != State::Returned {
            inst.reset().unwrap();
        }
        // Now and then a fresh instance, so that stacks come and go.
        if i % 97 == 0 {
            inst = Instance::new(STACK).unwrap();
        }
        inst.set_timeout(if kind == Kind::Killed { Some(Duration::from_micros(200)) } else { None });
        // SAFETY: every guest is an extern "C" fn of the given arguments
        // that does not unwind.
        let r = unsafe {
            match kind {
                Kind::Return => inst.start(addr(returns), &[]),
                Kind::Fault => inst.start(addr(faults), &[]),
                Kind::Overflow => inst.start(overflows as extern "C" fn(u64) -> u64 as usize, &[Val::U64(1)]),
                Kind::Yield => inst.start(addr(yields), &[]),
                Kind::Killed => inst.start(addr(spins), &[]),
            }
        };
        match (kind, r) {
            (Kind::Return, Ok(Outcome::Returned(v))) => assert_eq!(v.as_u64(), 7),
            (Kind::Fault, Err(Error::Fault(f))) => assert_eq!(f.kind, FaultKind::MemoryFault),
            (Kind::Overflow, Err(Error::Fault(f))) => assert_eq!(f.kind, FaultKind::StackOverflow),
            (Kind::Yield, Ok(Outcome::Yielded(y))) => {
                assert_eq!(y.as_u64(), Some(1));
                let v = inst.resume::<UntypedRetVal, u64>(i as u64).unwrap().returned().unwrap();
                assert_eq!(v.as_u64(), i as u64 + 1);
            }
            (Kind::Killed, Err(Error::Terminated)) => {}
            (kind, other) => panic!("run {i}: {kind:?} ended as {other:?}"),
        }
        done[kind as usize] += 1;
    }
    done
}

#[test]
fn many_threads_running_many_instances_get_their_own_outcomes() {
    common::deadline();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Warm up as many threads as the stress uses (thread stacks, malloc
    // arenas, the watchdog) so that the baseline counts them.
    let threads = 8;
    let warm: Vec<_> = (0..threads).map(|t| std::thread::spawn(move || one_thread(t, 50))).collect();
    for w in warm {
        w.join().unwrap();
    }
    let maps0 = common::maps_lines();
    let ours0 = our_sized_mappings();
    let runs = scale(2000);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads).map(|t| std::thread::spawn(move || one_thread(1000 + t, runs))).collect();
    let mut total = [0usize; 5];
    for h in handles {
        let done = h.join().unwrap();
        for (t, d) in total.iter_mut().zip(done) {
            *t += d;
        }
    }
    eprintln!(
        "{threads} threads x {runs} runs in {:?}: return {}, fault {}, overflow {}, yield {}, killed {}",
        started.elapsed(),
        total[0],
        total[1],
        total[2],
        total[3],
        total[4]
    );
    assert_eq!(total.iter().sum::<usize>(), threads as usize * runs);
    assert!(total.iter().all(|&n| n > 0));
    // The C library may keep a mapping or two more or less (malloc arenas,
    // its cache of thread stacks) from one round of threads to the next; a
    // leak of ours would be one mapping per instance or thread (hundreds).
    let maps1 = common::maps_lines();
    assert!(maps1 <= maps0 + 16, "mappings back to baseline: {maps0} before, {maps1} after");
    // Ours exactly: anonymous read/write mappings of a guest stack's or an
    // alternate signal stack's usable size.
    assert_eq!(our_sized_mappings(), ours0, "guest and alternate stacks all unmapped");
    assert_eq!(instance::watchdog_threads(), 1);
}

/// Anonymous read/write mappings whose size is that of a guest stack's
/// usable part or of an alternate signal stack.
fn our_sized_mappings() -> usize {
    let sizes = [STACK, instance::alt_stack_size()];
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 5 || f[1] != "rw-p" {
                return false;
            }
            let Some((lo, hi)) = f[0].split_once('-') else { return false };
            let (lo, hi) = (usize::from_str_radix(lo, 16).unwrap(), usize::from_str_radix(hi, 16).unwrap());
            sizes.contains(&(hi - lo))
        })
        .count()
}
