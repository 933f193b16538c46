//! Switching: many round trips, interleaved children, a child that starts
//! its own child, re-initialising one context and stack, and contexts on
//! several threads at once.

mod common;

use common::{TestStack, link, yield_to_parent};
use context::{Context, ContextHandle, Val};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, Ordering};

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// Counts up, yielding to the parent after each step, `n` times; returns a
/// value derived from its arguments and the count.
extern "C" fn counting_child(n: u64, salt: u64) -> u64 {
    for _ in 0..n {
        COUNTER.set(COUNTER.get() + 1);
        yield_to_parent();
    }
    salt ^ COUNTER.get()
}

fn fnaddr(f: *const ()) -> usize {
    f as usize
}

#[test]
fn ten_thousand_round_trips_resume_the_child_where_it_left_off() {
    const N: u64 = 10_000;
    COUNTER.set(0);
    let mut stack = TestStack::new(16 * 1024);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::create_and_init(
        stack.slice(),
        &mut parent,
        fnaddr(counting_child as *const ()),
        &[Val::U64(N), Val::U64(0xabc0_0000)],
    )
    .expect("init");
    link(&mut child, &parent);
    for i in 1..=N {
        // SAFETY: both contexts are heap-pinned; the stack outlives the run.
        unsafe { Context::swap(&mut parent, &child) };
        assert_eq!(COUNTER.get(), i, "the child ran exactly one step");
    }
    // SAFETY: as above; this time the child returns.
    unsafe { Context::swap(&mut parent, &child) };
    assert_eq!(child.get_retval_gp(0), 0xabc0_0000 ^ N);
}

thread_local! {
    static TRACE: std::cell::RefCell<Vec<(u64, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
    static LINKS: Cell<[(*mut Context, *const Context); 2]> =
        const { Cell::new([(std::ptr::null_mut(), std::ptr::null()); 2]) };
}

/// Child `id` appends (id, step) to the trace of the thread it runs on and
/// switches back to the parent that thread registered, `steps` times.
extern "C" fn tracing_child(id: u64, steps: u64) -> u64 {
    for step in 0..steps {
        TRACE.with_borrow_mut(|t| t.push((id, step)));
        let (me, parent) = LINKS.get()[id as usize];
        // SAFETY: the test keeps both contexts alive and pinned.
        unsafe { Context::swap(&mut *me, &*parent) };
    }
    id * 100 + steps
}

#[test]
fn two_children_interleaved_keep_their_own_state() {
    let mut s0 = TestStack::new(16 * 1024);
    let mut s1 = TestStack::new(16 * 1024);
    let mut parent = ContextHandle::new();
    let entry = fnaddr(tracing_child as *const ());
    let mut c0 = ContextHandle::create_and_init(s0.slice(), &mut parent, entry, &[Val::U64(0), Val::U64(3)]).unwrap();
    let mut c1 = ContextHandle::create_and_init(s1.slice(), &mut parent, entry, &[Val::U64(1), Val::U64(5)]).unwrap();
    LINKS.set([(&mut *c0 as *mut Context, &*parent as *const Context), (&mut *c1 as *mut Context, &*parent)]);
    TRACE.with_borrow_mut(Vec::clear);
    let order = [1, 0, 1, 1, 0, 0, 1, 1, 1];
    for &which in &order {
        let c = if which == 0 { &c0 } else { &c1 };
        // SAFETY: contexts pinned, stacks alive; each child is suspended.
        unsafe { Context::swap(&mut parent, c) };
    }
    let trace = TRACE.with_borrow(Clone::clone);
    assert_eq!(trace, vec![(1, 0), (0, 0), (1, 1), (1, 2), (0, 1), (0, 2), (1, 3), (1, 4)]);
    // The last swap into c1 ran it to completion (5 steps done); c0 needs one more.
    assert_eq!(c1.get_retval_gp(0), 105);
    // SAFETY: as above.
    unsafe { Context::swap(&mut parent, &c0) };
    assert_eq!(c0.get_retval_gp(0), 3);
}

extern "C" fn grandchild(x: u64) -> u64 {
    x * 7
}

/// Starts a grandchild on a stack of its own, runs it to completion and
/// returns what it returned plus the child's own argument.
extern "C" fn child_with_child(x: u64) -> u64 {
    let mut stack = TestStack::new(8 * 1024);
    let mut me = ContextHandle::new();
    let gc =
        ContextHandle::create_and_init(stack.slice(), &mut me, fnaddr(grandchild as *const ()), &[Val::U64(x + 1)])
            .expect("init grandchild");
    // SAFETY: `me` and `gc` are pinned and live until the grandchild returns.
    unsafe { Context::swap(&mut me, &gc) };
    gc.get_retval_gp(0) + x
}

#[test]
fn a_child_can_start_and_finish_a_child_of_its_own() {
    let mut stack = TestStack::new(32 * 1024);
    let mut parent = ContextHandle::new();
    let child = ContextHandle::create_and_init(
        stack.slice(),
        &mut parent,
        fnaddr(child_with_child as *const ()),
        &[Val::U64(5)],
    )
    .unwrap();
    // SAFETY: pinned contexts, live stack.
    unsafe { Context::swap(&mut parent, &child) };
    assert_eq!(child.get_retval_gp(0), 6 * 7 + 5);
}

extern "C" fn add3(a: u64, b: f64, c: i32) -> f64 {
    a as f64 + b + c as f64
}

#[test]
fn one_context_and_stack_can_be_reinitialised_a_hundred_times() {
    let mut stack = TestStack::new(8 * 1024);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    for i in 0..100u64 {
        Context::init(
            stack.slice(),
            &mut parent,
            &mut child,
            fnaddr(add3 as *const ()),
            &[Val::U64(i), Val::F64(0.5), Val::I32(-(i as i32))],
        )
        .expect("init");
        // SAFETY: pinned contexts, live stack.
        unsafe { Context::swap(&mut parent, &child) };
        assert_eq!(child.get_untyped_retval().as_f64(), 0.5);
    }
}

#[test]
fn contexts_run_on_several_threads_at_once() {
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                const N: u64 = 5_000;
                COUNTER.set(0);
                let mut stack = TestStack::new(16 * 1024);
                let mut parent = ContextHandle::new();
                let mut child = ContextHandle::create_and_init(
                    stack.slice(),
                    &mut parent,
                    fnaddr(counting_child as *const ()),
                    &[Val::U64(N), Val::U64(t << 32)],
                )
                .expect("init");
                link(&mut child, &parent);
                for i in 1..=N + 1 {
                    // SAFETY: this thread's own pinned contexts and stack.
                    unsafe { Context::swap(&mut parent, &child) };
                    assert_eq!(COUNTER.get(), i.min(N));
                }
                child.get_retval_gp(0)
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().expect("thread"), ((t as u64) << 32) ^ 5_000);
    }
}

/// Where a migrating child finds the contexts to switch between. Atomics,
/// not thread-locals: the compiler may keep a thread-local's address in a
/// register across the swap, which would be the old thread's after a move.
struct Migration {
    me: AtomicPtr<Context>,
    parent: AtomicPtr<Context>,
    threads: Mutex<Vec<std::thread::ThreadId>>,
}

extern "C" fn migrating_child(m: *const Migration, steps: u64) -> u64 {
    // SAFETY: the test keeps `Migration` alive until the child has finished.
    let m = unsafe { &*m };
    for _ in 0..steps {
        m.threads.lock().unwrap().push(std::thread::current().id());
        let (me, parent) = (m.me.load(Ordering::SeqCst), m.parent.load(Ordering::SeqCst));
        // SAFETY: both point at pinned contexts the test keeps alive.
        unsafe { Context::swap(&mut *me, &*parent) };
    }
    steps
}

#[test]
fn a_suspended_context_resumes_on_another_thread() {
    let mut stack = TestStack::new(16 * 1024);
    let mut parent = ContextHandle::new();
    let migration =
        Box::new(Migration { me: AtomicPtr::default(), parent: AtomicPtr::default(), threads: Mutex::default() });
    let mut child = ContextHandle::create_and_init(
        stack.slice(),
        &mut parent,
        fnaddr(migrating_child as *const ()),
        &[Val::from(&*migration as *const Migration), Val::U64(2)],
    )
    .unwrap();
    migration.me.store(&mut *child, Ordering::SeqCst);
    migration.parent.store(&mut *parent, Ordering::SeqCst);
    // SAFETY: pinned contexts, live stack.
    unsafe { Context::swap(&mut parent, &child) };
    let main_thread = std::thread::current().id();
    let (migration, other_thread) = std::thread::spawn(move || {
        let mut parent2 = ContextHandle::new();
        migration.parent.store(&mut *parent2, Ordering::SeqCst);
        // SAFETY: `child` is suspended, its stack (moved in `stack`) is alive.
        unsafe { Context::swap(&mut parent2, &child) };
        drop((child, stack, parent2));
        (migration, std::thread::current().id())
    })
    .join()
    .expect("thread");
    assert_eq!(*migration.threads.lock().unwrap(), vec![main_thread, other_thread]);
}
