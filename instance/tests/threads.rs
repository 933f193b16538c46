//! A suspended closure never runs, unwinds or drops its frames on a thread
//! other than the one it yielded on: safe code cannot make two threads
//! share one thread's `!Send` data through a cross-thread resume.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use instance::{Error, Instance, Outcome, State, ThreadOp};

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// A closure that borrows this thread's `COUNTER` across yields and bumps it
/// after each (the race of the issue: resumed on another thread, two threads
/// would mutate one `Cell`).
fn counter_guest(rounds: u64) -> impl FnOnce() -> u64 + Send + 'static {
    move || {
        COUNTER.with(|c| {
            for _ in 0..rounds {
                instance::yield_value::<(), ()>(()).unwrap();
                c.set(c.get() + 1);
            }
            c.get()
        })
    }
}

#[test]
fn resuming_a_suspended_closure_on_another_thread_is_refused_and_it_stays_suspended() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    assert!(matches!(inst.start_closure(counter_guest(3)).unwrap(), Outcome::Yielded(_)));
    let home = std::thread::current().id();
    let mut inst = std::thread::spawn(move || {
        let err = inst.resume::<u64, ()>(()).unwrap_err();
        match err {
            Error::WrongThread { op, yielded_on, here } => {
                assert_eq!(op, ThreadOp::Resume);
                assert_eq!(yielded_on, home);
                assert_eq!(here, std::thread::current().id());
            }
            other => panic!("expected WrongThread, got {other:?}"),
        }
        assert_eq!(inst.state(), State::Yielded);
        // Reset is refused there too (it would unwind the frames).
        assert!(matches!(inst.reset(), Err(Error::WrongThread { op: ThreadOp::Reset, .. })));
        assert_eq!(COUNTER.with(Cell::get), 0, "the other thread's cell was touched");
        inst
    })
    .join()
    .unwrap();
    // Back home, it continues where it was.
    assert!(matches!(inst.resume::<u64, ()>(()).unwrap(), Outcome::Yielded(_)));
    assert!(matches!(inst.resume::<u64, ()>(()).unwrap(), Outcome::Yielded(_)));
    assert_eq!(inst.resume::<u64, ()>(()).unwrap().returned(), Some(3));
    assert_eq!(COUNTER.with(Cell::get), 3);
}

#[test]
fn many_threads_passing_a_suspended_closure_around_never_lose_an_update() {
    // The lost-update race of the issue, attempted many times: the closure
    // may only ever continue on its home thread, so its count is exact.
    let mut inst = Instance::new(64 * 1024).unwrap();
    let rounds = 200;
    assert!(matches!(inst.start_closure(counter_guest(rounds)).unwrap(), Outcome::Yielded(_)));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut result = None;
    for _ in 0..rounds {
        let r = refused.clone();
        inst = std::thread::spawn(move || {
            if let Err(Error::WrongThread { .. }) = inst.resume::<u64, ()>(()) {
                r.fetch_add(1, Ordering::SeqCst);
            }
            inst
        })
        .join()
        .unwrap();
        match inst.resume::<u64, ()>(()).unwrap() {
            Outcome::Yielded(_) => {}
            Outcome::Returned(n) => result = Some(n),
            _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
        }
    }
    assert_eq!(result, Some(rounds));
    assert_eq!(refused.load(Ordering::SeqCst), rounds as usize);
}

struct CountsDrop(Arc<AtomicUsize>);
impl Drop for CountsDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn guest_holding(drops: Arc<AtomicUsize>) -> impl FnOnce() -> u32 + Send + 'static {
    move || {
        let _held = CountsDrop(drops);
        instance::yield_value::<(), ()>(()).unwrap();
        1
    }
}

#[test]
fn dropping_a_suspended_closure_on_another_thread_abandons_its_frames() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut inst = Instance::new(64 * 1024).unwrap();
    inst.start_closure(guest_holding(drops.clone())).unwrap();
    std::thread::spawn(move || drop(inst)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0, "a destructor of the closure's frames ran on another thread");

    // On its own thread, dropping unwinds it: the destructor runs once.
    let mut inst = Instance::new(64 * 1024).unwrap();
    inst.start_closure(guest_holding(drops.clone())).unwrap();
    drop(inst);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_suspended_closure_moved_away_and_back_can_be_reset_at_home() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut inst = Instance::new(64 * 1024).unwrap();
    inst.start_closure(guest_holding(drops.clone())).unwrap();
    let mut inst = std::thread::spawn(move || inst).join().unwrap();
    inst.reset().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(inst.run_closure(|| 9).unwrap(), 9);
}

#[test]
fn into_stack_on_another_thread_abandons_the_suspended_closure() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut inst = Instance::new(64 * 1024).unwrap();
    inst.start_closure(guest_holding(drops.clone())).unwrap();
    let stack = std::thread::spawn(move || inst.into_stack().unwrap()).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    // The stack is reusable.
    let mut inst = Instance::with_stack(stack);
    assert_eq!(inst.run_closure(|| 4).unwrap(), 4);
}

extern "C" fn raw_yields_twice(x: u64) -> u64 {
    let a = instance::yield_u64(x).unwrap();
    let b = instance::yield_u64(a).unwrap();
    a + b
}

#[test]
fn a_raw_guest_may_still_be_resumed_on_another_thread() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    // SAFETY: an extern "C" fn of one u64 that does not unwind and holds no
    // thread-bound state across its yields.
    let first = unsafe { inst.start(raw_yields_twice as *const () as usize, &[context::Val::U64(1)]) }.unwrap();
    assert_eq!(first.yielded().and_then(|y| y.as_u64()), Some(1));
    let mut inst = std::thread::spawn(move || {
        assert_eq!(inst.resume::<context::UntypedRetVal, u64>(2).unwrap().yielded().and_then(|y| y.as_u64()), Some(2));
        inst
    })
    .join()
    .unwrap();
    assert_eq!(inst.resume::<context::UntypedRetVal, u64>(3).unwrap().returned().map(|r| r.as_u64()), Some(5));
}
