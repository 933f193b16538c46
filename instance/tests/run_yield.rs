//! Yield and resume without signals: sequences of typed values, raw entries
//! yielding u64s, resuming on another thread, misuse errors, and what
//! dropping or resetting a suspended guest does. Suitable for valgrind.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use context::{UntypedRetVal, Val};
use instance::{Error, Instance, Operation, Outcome, State, Termination, YieldError, yield_u64, yield_value};

const STACK: usize = 128 * 1024;

#[test]
fn closure_yields_a_sequence_and_gets_typed_values_back() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let out = inst
        .start_closure(|| {
            let mut total = 0u64;
            for i in 0..5u32 {
                let got: u64 = yield_value::<String, u64>(format!("step {i}")).unwrap();
                total += got;
            }
            total
        })
        .unwrap();
    let mut y = out.yielded().expect("first yield");
    for i in 0..5u64 {
        assert_eq!(inst.state(), State::Yielded);
        assert_eq!(y.type_name(), core::any::type_name::<String>());
        assert_eq!(y.downcast::<String>().unwrap(), format!("step {i}"));
        match inst.resume::<u64, u64>(10 * (i + 1)).unwrap() {
            Outcome::Yielded(next) => y = next,
            Outcome::Returned(total) => {
                assert_eq!(i, 4);
                assert_eq!(total, 10 + 20 + 30 + 40 + 50);
                assert_eq!(inst.state(), State::Returned);
                // The instance runs normally afterwards.
                assert_eq!(inst.run_closure(|| 7).unwrap(), 7);
                return;
            }
            _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
        }
    }
    panic!("the guest never returned");
}

extern "C" fn raw_counter(n: u64) -> u64 {
    let mut acc = 0;
    for i in 0..n {
        acc += yield_u64(i).unwrap();
    }
    acc
}

#[test]
fn raw_entry_yields_u64s() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    // SAFETY: raw_counter is extern "C" fn(u64) -> u64 and does not unwind.
    let mut out = unsafe { inst.start(raw_counter as extern "C" fn(u64) -> u64 as usize, &[Val::U64(4)]) }.unwrap();
    let mut expect = 0;
    loop {
        match out {
            Outcome::Yielded(y) => {
                assert_eq!(y.as_u64(), Some(expect));
                expect += 1;
                out = inst.resume::<UntypedRetVal, u64>(100).unwrap();
            }
            Outcome::Returned(ret) => {
                assert_eq!(ret.as_u64(), 400);
                assert_eq!(expect, 4);
                break;
            }
            _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
        }
    }
}

/// A raw guest written in Rust that yields the id of the thread it runs on
/// (hashed) six times and returns how many times it found itself on another
/// thread than before when resumed.
extern "C" fn yields_its_thread(_: u64) -> u64 {
    let mut moved = 0;
    let mut last = std::thread::current().id();
    for _ in 0..6 {
        // Thread-local state read afresh after each switch.
        assert!(instance::in_guest());
        let tid = std::thread::current().id();
        moved += u64::from(tid != last);
        last = tid;
        instance::yield_u64(thread_token()).unwrap();
    }
    moved
}

/// The calling thread's id as a number (`ThreadId` has no `u64` form).
fn thread_token() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut h);
    h.finish()
}

#[test]
fn yield_on_one_thread_resume_on_another() {
    common::deadline();
    // A raw guest continues on whichever thread resumes it.
    let mut inst = Instance::new(STACK).unwrap();
    // SAFETY: an extern "C" fn of one u64 that does not unwind and keeps no
    // thread-bound state across its yields.
    let first = unsafe { inst.start(yields_its_thread as *const () as usize, &[Val::U64(0)]) }.unwrap();
    assert_eq!(first.yielded().unwrap().as_u64(), Some(thread_token()));
    let mut result = None;
    for _ in 0..6 {
        let (back, out, token) = std::thread::spawn(move || {
            let out = inst.resume::<UntypedRetVal, u64>(0);
            (inst, out, thread_token())
        })
        .join()
        .unwrap();
        inst = back;
        match out.unwrap() {
            // Each resume ran the guest on the resuming thread.
            Outcome::Yielded(y) => assert_eq!(y.as_u64(), Some(token)),
            Outcome::Returned(moved) => result = Some(moved.as_u64()),
            _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
        }
    }
    // Resumed six times, each time on a new thread; the sixth resume returns
    // without looking.
    assert_eq!(result, Some(5));
    assert!(!instance::in_guest());

    // A closure does not: only the thread it yielded on may continue it
    // (its frames may hold that thread's data); see tests/threads.rs.
    let mut inst = Instance::new(STACK).unwrap();
    inst.start_closure(|| yield_value::<(), u32>(()).unwrap()).unwrap();
    let mut inst = std::thread::spawn(move || {
        assert!(matches!(inst.resume::<u32, u32>(1), Err(Error::WrongThread { .. })));
        inst
    })
    .join()
    .unwrap();
    assert_eq!(inst.resume::<u32, u32>(2).unwrap().returned(), Some(2));
}

#[test]
fn misuse_is_an_error_naming_the_state() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    // Resume when not yielded.
    match inst.resume::<u32, u32>(1) {
        Err(Error::InvalidState { op: Operation::Resume, state: State::Ready }) => {}
        other => panic!("{other:?}"),
    }
    inst.start_closure(|| yield_value::<u8, u16>(1).unwrap() as u32).unwrap();
    // Run while yielded.
    match inst.run_closure(|| 1) {
        Err(e @ Error::InvalidState { op: Operation::Run, state: State::Yielded }) => {
            assert_eq!(e.to_string(), "cannot run an instance that is yielded")
        }
        other => panic!("{other:?}"),
    }
    // Resume with the wrong value type: the guest stays suspended.
    match inst.resume::<u32, u32>(5) {
        Err(e @ Error::ResumeType { expected: "u16", got: "u32" }) => {
            assert_eq!(e.to_string(), "cannot resume with a u32: the guest waits for a u16")
        }
        other => panic!("{other:?}"),
    }
    // Asking for the wrong result type: also refused before resuming.
    assert!(matches!(inst.resume::<u64, u16>(5), Err(Error::OutputType { expected: "u32", got: "u64" })));
    assert_eq!(inst.state(), State::Yielded);
    assert_eq!(inst.resume::<u32, u16>(9).unwrap().returned(), Some(9));
    assert!(matches!(
        inst.resume::<u32, u16>(9),
        Err(Error::InvalidState { op: Operation::Resume, state: State::Returned })
    ));

    // Yield outside a guest, inside a non-resumable run, inside a host region.
    assert_eq!(yield_value::<u8, u8>(1), Err(YieldError::NotInGuest));
    assert_eq!(inst.run_closure(|| yield_value::<u8, u8>(1)).unwrap(), Err(YieldError::NotResumable));
    let r = inst.start_closure(|| instance::host_region(|| yield_value::<u8, u8>(1))).unwrap();
    assert_eq!(r.returned(), Some(Err(YieldError::InHostRegion)));
    // SAFETY: raw_counter has the right signature; `run` refuses yields.
    let err = unsafe { inst.run(raw_counter as extern "C" fn(u64) -> u64 as usize, &[Val::U64(0)]) }.unwrap();
    assert_eq!(err.as_u64(), 0);
}

#[test]
fn running_an_instance_from_inside_its_own_host_region_is_an_error() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let ptr = &mut inst as *mut Instance as usize;
    let inner = inst
        .run_closure(move || {
            instance::host_region(|| {
                // SAFETY: deliberately reaches the running instance from
                // its own guest (what a host callback holding a pointer to
                // it could do); only `run_closure`'s state check is used.
                let me = unsafe { &mut *(ptr as *mut Instance) };
                match me.run_closure(|| 1) {
                    Err(Error::InvalidState { op: Operation::Run, state: State::Running }) => 1,
                    _ => 0,
                }
            })
        })
        .unwrap();
    assert_eq!(inner, 1);
}

/// Counts its drops.
struct Tally(Arc<AtomicUsize>);

impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn suspended_with_tallies(inst: &mut Instance, drops: &Arc<AtomicUsize>, after: &Arc<AtomicUsize>) {
    let (captured, on_stack, after) = (Tally(drops.clone()), drops.clone(), after.clone());
    let out = inst
        .start_closure(move || {
            let _local = Tally(on_stack);
            let _boxed = Box::new(Tally(captured.0.clone()));
            let _got: u8 = yield_value::<u8, u8>(1).unwrap();
            after.fetch_add(1, Ordering::SeqCst);
            drop(captured);
        })
        .unwrap();
    assert!(matches!(out, Outcome::Yielded(_)));
}

#[test]
fn dropping_or_resetting_a_suspended_closure_runs_its_destructors_once() {
    common::deadline();
    let drops = Arc::new(AtomicUsize::new(0));
    let after = Arc::new(AtomicUsize::new(0));

    let mut inst = Instance::new(STACK).unwrap();
    suspended_with_tallies(&mut inst, &drops, &after);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(inst);
    // The captured Tally, the local one and the boxed one.
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert_eq!(after.load(Ordering::SeqCst), 0);

    drops.store(0, Ordering::SeqCst);
    let mut inst = Instance::new(STACK).unwrap();
    suspended_with_tallies(&mut inst, &drops, &after);
    inst.reset().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert_eq!(after.load(Ordering::SeqCst), 0);
    assert_eq!(inst.state(), State::Ready);
    assert_eq!(inst.run_closure(|| 5).unwrap(), 5);

    // Dropped on another thread than the one it yielded on, its frames are
    // abandoned (leaked) instead: tests/threads.rs, which does not run under
    // valgrind's leak check.
}

#[test]
fn a_yielded_closure_killed_terminates_on_resume_without_running_on() {
    common::deadline();
    let drops = Arc::new(AtomicUsize::new(0));
    let after = Arc::new(AtomicUsize::new(0));
    let mut inst = Instance::new(STACK).unwrap();
    suspended_with_tallies(&mut inst, &drops, &after);
    let switch = inst.kill_switch();
    assert_eq!(switch.terminate(), Termination::OnResume);
    assert_eq!(switch.terminate(), Termination::AlreadyRequested);
    assert!(matches!(inst.resume::<(), u8>(1), Err(Error::Terminated)));
    assert_eq!(inst.state(), State::Terminated);
    assert_eq!(after.load(Ordering::SeqCst), 0, "no guest code after the yield");
    assert_eq!(drops.load(Ordering::SeqCst), 3, "destructors ran once");
    assert_eq!(switch.terminate(), Termination::Finished(instance::Ended::Terminated));
    inst.reset().unwrap();
    assert_eq!(switch.terminate(), Termination::Superseded);
    assert_eq!(inst.run_closure(|| 3).unwrap(), 3);
}

static RAW_AFTER: AtomicUsize = AtomicUsize::new(0);

extern "C" fn raw_yield_then_count() -> u64 {
    let _ = yield_u64(1);
    RAW_AFTER.fetch_add(1, Ordering::SeqCst);
    0
}

#[test]
fn a_suspended_raw_entry_is_discarded_and_its_stack_reused() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let top = inst.stack().top();
    for _ in 0..100 {
        // SAFETY: extern "C" fn() -> u64 that does not unwind.
        let out = unsafe { inst.start(raw_yield_then_count as extern "C" fn() -> u64 as usize, &[]) }.unwrap();
        assert_eq!(out.yielded().unwrap().as_u64(), Some(1));
        inst.reset().unwrap();
    }
    assert_eq!(RAW_AFTER.load(Ordering::SeqCst), 0);
    assert_eq!(inst.stack().top(), top);
    // SAFETY: as above.
    let out = unsafe { inst.start(raw_yield_then_count as extern "C" fn() -> u64 as usize, &[]) }.unwrap();
    assert!(matches!(out, Outcome::Yielded(_)));
    let switch = inst.kill_switch();
    assert_eq!(switch.terminate(), Termination::OnResume);
    assert!(matches!(inst.resume::<UntypedRetVal, u64>(0), Err(Error::Terminated)));
    assert_eq!(RAW_AFTER.load(Ordering::SeqCst), 0);
    // Dropping a suspended raw entry discards it too.
    inst.reset().unwrap();
    // SAFETY: as above.
    unsafe { inst.start(raw_yield_then_count as extern "C" fn() -> u64 as usize, &[]) }.unwrap();
    let stack = inst.into_stack().unwrap();
    assert_eq!(stack.top(), top);
    assert_eq!(RAW_AFTER.load(Ordering::SeqCst), 0);
}

#[test]
fn a_run_killed_before_it_starts_runs_no_guest_code() {
    common::deadline();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut inst = Instance::new(STACK).unwrap();
    let switch = inst.kill_switch();
    assert_eq!(switch.terminate(), Termination::AtStart);
    let r = ran.clone();
    assert!(matches!(inst.run_closure(move || r.fetch_add(1, Ordering::SeqCst)), Err(Error::Terminated)));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(switch.terminate(), Termination::Finished(instance::Ended::Terminated));
    inst.reset().unwrap();
    // A switch made now is for the next run; a finished run's switch has
    // no effect on it.
    let next = inst.kill_switch();
    let r = ran.clone();
    assert_eq!(inst.run_closure(move || r.fetch_add(1, Ordering::SeqCst)).unwrap(), 0);
    assert_eq!(next.terminate(), Termination::Finished(instance::Ended::Returned));
    assert_eq!(switch.terminate(), Termination::Superseded);
    // A switch made after a finished run targets the following run.
    let following = inst.kill_switch();
    assert_eq!(following.terminate(), Termination::AtStart);
    let r = ran.clone();
    assert!(matches!(inst.run_closure(move || r.fetch_add(1, Ordering::SeqCst)), Err(Error::Terminated)));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // Dropped instances.
    inst.reset().unwrap();
    let s = inst.kill_switch();
    drop(inst);
    assert_eq!(s.terminate(), Termination::Dropped);
}
