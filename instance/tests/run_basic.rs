//! Plain runs without faults: raw entry points with arguments and return
//! values, closures, panics, misuse, nesting, host regions.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use context::Val;
use instance::{Error, Instance, Operation, StackError, State};

const STACK: usize = 128 * 1024;

extern "C" fn sum9(a: i8, b: u16, c: i32, d: u64, e: f32, f: bool, g: i64, h: f64, i: u8) -> f64 {
    a as f64 + b as f64 + c as f64 + d as f64 + e as f64 + f as u8 as f64 + g as f64 + h + i as f64
}

extern "C" fn many_ints(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64, i: u64, j: u64) -> u64 {
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i + 10 * j
}

extern "C" fn negate(x: i32) -> i32 {
    -x
}

#[test]
fn raw_entry_gets_its_arguments_and_returns_its_value() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let args = [
        Val::I8(-1),
        Val::U16(2),
        Val::I32(-3),
        Val::U64(4),
        Val::F32(0.5),
        Val::Bool(true),
        Val::I64(-6),
        Val::F64(0.25),
        Val::U8(9),
    ];
    // SAFETY: sum9's parameters match `args`; it does not unwind.
    let r = unsafe { inst.run(sum9 as *const () as usize, &args) }.unwrap();
    assert_eq!(r.as_f64(), -1.0 + 2.0 - 3.0 + 4.0 + 0.5 + 1.0 - 6.0 + 0.25 + 9.0);
    assert_eq!(inst.state(), State::Returned);
    let ten: Vec<Val> = (1..=10u64).map(Val::U64).collect();
    // SAFETY: ten u64 parameters, four of them on the stack.
    let r = unsafe { inst.run(many_ints as *const () as usize, &ten) }.unwrap();
    assert_eq!(r.as_u64(), (1..=10u64).map(|k| k * k).sum());
    // SAFETY: one i32 parameter.
    let r = unsafe { inst.run(negate as *const () as usize, &[Val::I32(5)]) }.unwrap();
    assert_eq!(r.as_i32(), -5);
}

#[test]
fn bad_input_is_a_typed_error() {
    common::deadline();
    assert!(matches!(Instance::new(0), Err(Error::Stack(StackError::ZeroSize))));
    let mut inst = Instance::new(instance::page_size()).unwrap();
    // SAFETY: the entry point is rejected before anything runs.
    let err = unsafe { inst.run(0, &[]) }.unwrap_err();
    assert!(matches!(err, Error::Context(context::Error::NullEntryPoint)), "{err:?}");
    // More 8-byte stack slots than one page holds, whatever the page size.
    let too_many: Vec<Val> = (0..(instance::page_size() / 8 + 16) as u64).map(Val::U64).collect();
    // SAFETY: rejected before anything runs (the arguments do not fit).
    let err = unsafe { inst.run(many_ints as *const () as usize, &too_many) }.unwrap_err();
    assert!(matches!(err, Error::Context(context::Error::StackTooSmall { .. })), "{err:?}");
    // Bad input does not change the state.
    assert_eq!(inst.state(), State::Ready);
    assert_eq!(inst.run_closure(|| 1).unwrap(), 1);
}

#[test]
fn closure_returns_an_owned_value_and_runs_again() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let name = String::from("guest");
    let got = inst.run_closure(move || format!("hello, {name}")).unwrap();
    assert_eq!(got, "hello, guest");
    for i in 0..100u64 {
        assert_eq!(inst.run_closure(move || vec![i; 3]).unwrap(), vec![i; 3]);
    }
    // Borrowing closures work too.
    let mut counter = 0;
    inst.run_closure(|| counter += 5).unwrap();
    assert_eq!(counter, 5);
}

#[test]
fn guest_runs_on_the_instance_stack() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let (lo, hi) = (inst.stack().base(), inst.stack().top());
    let sp = inst
        .run_closure(|| {
            let local = 0u8;
            std::hint::black_box(&local) as *const u8 as usize
        })
        .unwrap();
    assert!(lo <= sp && sp < hi, "{sp:#x} not in {lo:#x}..{hi:#x}");
    assert!(!instance::in_guest());
    assert!(inst.run_closure(instance::in_guest).unwrap());
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

struct CountsDrops(#[allow(dead_code)] u64);

impl Drop for CountsDrops {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn panic_is_caught_with_its_payload_and_destructors_run_once() {
    common::deadline();
    #[derive(Debug, PartialEq)]
    struct Payload(u32, &'static str);

    let mut inst = Instance::new(STACK).unwrap();
    let before = DROPS.load(Ordering::SeqCst);
    let captured = CountsDrops(1);
    let err = inst
        .run_closure(move || -> u32 {
            let _keep = &captured;
            let _local = CountsDrops(2);
            let _boxed = Box::new(CountsDrops(3));
            std::panic::panic_any(Payload(7, "boom"))
        })
        .unwrap_err();
    // The captured value, the local and the boxed one: each dropped once.
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 3);
    let panic = err.into_panic().unwrap();
    assert_eq!(panic.payload().downcast_ref::<Payload>(), Some(&Payload(7, "boom")));
    assert_eq!(inst.state(), State::Panicked);

    // A panicked instance must be reset before it runs again.
    let misuse = inst.run_closure(|| 0).unwrap_err();
    assert!(matches!(misuse, Error::InvalidState { op: Operation::Run, state: State::Panicked }), "{misuse:?}");
    assert_eq!(misuse.to_string(), "cannot run an instance that is panicked");
    inst.reset().unwrap();
    assert_eq!(inst.run_closure(|| 3).unwrap(), 3);
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 3);

    // The payload can be re-raised in the host.
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panic.resume())).unwrap_err();
    assert_eq!(again.downcast_ref::<Payload>(), Some(&Payload(7, "boom")));
}

#[test]
fn panic_message_is_kept() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let err = inst.run_closure(|| -> () { panic!("lost {} marbles", 3) }).unwrap_err();
    assert_eq!(err.to_string(), "the guest panicked: lost 3 marbles");
    let panic = err.into_panic().unwrap();
    assert_eq!(panic.message(), Some("lost 3 marbles"));
    inst.reset().unwrap();
    let err = inst.run_closure(|| -> () { panic!("static") }).unwrap_err();
    assert_eq!(err.into_panic().unwrap().into_payload().downcast_ref::<&str>(), Some(&"static"));
}

#[test]
fn reset_is_allowed_from_every_resting_state() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    inst.reset().unwrap();
    assert_eq!(inst.state(), State::Ready);
    inst.run_closure(|| ()).unwrap();
    assert_eq!(inst.state(), State::Returned);
    inst.reset().unwrap();
    assert_eq!(inst.state(), State::Ready);
}

#[test]
fn nested_instances_keep_their_own_outcomes() {
    common::deadline();
    let mut outer = Instance::new(STACK).unwrap();
    let (inner_value, inner_panic, inner_state, inner_again) = outer
        .run_closure(|| {
            let mut inner = Instance::new(STACK).unwrap();
            let v = inner.run_closure(|| 40 + 2).unwrap();
            let p = inner.run_closure(|| -> u8 { panic!("inner") }).unwrap_err().into_panic().unwrap();
            let state = inner.state();
            inner.reset().unwrap();
            let again = inner.run_closure(|| "inner again").unwrap();
            (v, p.message().map(str::to_owned), state, again)
        })
        .unwrap();
    assert_eq!(inner_value, 42);
    assert_eq!(inner_panic.as_deref(), Some("inner"));
    assert_eq!(inner_state, State::Panicked);
    assert_eq!(inner_again, "inner again");
    assert_eq!(outer.state(), State::Returned);

    // The outer guest panics after its inner one returned: the outer's.
    let err = outer
        .run_closure(|| -> () {
            let mut inner = Instance::new(STACK).unwrap();
            assert_eq!(inner.run_closure(|| 1).unwrap(), 1);
            panic!("outer")
        })
        .unwrap_err();
    assert_eq!(err.into_panic().unwrap().message(), Some("outer"));
    assert_eq!(outer.state(), State::Panicked);
}

#[test]
fn host_region_runs_host_code_and_nests() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let seen = inst
        .run_closure(|| {
            let before = instance::in_host_region();
            let (inside, nested) =
                instance::host_region(|| (instance::in_host_region(), instance::host_region(instance::in_host_region)));
            (before, inside, nested, instance::in_host_region())
        })
        .unwrap();
    assert_eq!(seen, (false, true, true, false));
    // Outside a run the region is just a call.
    assert_eq!(instance::host_region(|| 5), 5);
    assert!(!instance::in_host_region());
    // A panic inside a region leaves the region on its way out.
    let err = inst
        .run_closure(|| {
            let _ = std::panic::catch_unwind(|| instance::host_region(|| panic!("in region")));
            instance::in_host_region()
        })
        .unwrap();
    assert!(!err);
}

#[test]
fn instances_move_between_threads_between_runs() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    assert_eq!(inst.run_closure(|| 1).unwrap(), 1);
    let mut inst = std::thread::spawn(move || {
        assert_eq!(inst.run_closure(|| 2).unwrap(), 2);
        inst
    })
    .join()
    .unwrap();
    assert_eq!(inst.run_closure(|| 3).unwrap(), 3);
}

#[test]
fn stack_comes_back_for_reuse() {
    common::deadline();
    let pool = instance::StackPool::new(STACK, instance::page_size(), 4).unwrap();
    let stack = pool.take().unwrap();
    let top = stack.top();
    let mut inst = Instance::with_stack(stack);
    assert_eq!(inst.run_closure(|| 8).unwrap(), 8);
    pool.put(inst.into_stack().unwrap()).unwrap();
    let mut inst = Instance::with_stack(pool.take().unwrap());
    assert_eq!(inst.stack().top(), top);
    assert_eq!(inst.run_closure(|| 9).unwrap(), 9);
}
