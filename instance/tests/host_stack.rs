//! `on_host_stack`: host code called from a guest runs on the host's own
//! stack, with the host thread's room, and comes back to the guest.

mod common;

use common::guests::rust_recursion;
use instance::{Error, FaultKind, Instance};

/// Uses about `depth` KiB of stack (each frame holds a 1 KiB array).
fn deep(depth: u32) -> u64 {
    let pad = std::hint::black_box([depth as u8; 1024]);
    if depth == 0 { pad[1] as u64 } else { deep(depth - 1) + pad[7] as u64 }
}

fn stack_pointer() -> usize {
    // SAFETY: reads the stack pointer.
    unsafe { context::Context::get_current_stack_pointer() as usize }
}

#[test]
fn deep_host_code_runs_on_the_host_stack_from_a_small_guest() {
    let mut inst = Instance::new(16 * 1024).unwrap();
    let stack = (inst.stack().mapping_start(), inst.stack().top());
    let (sum, sp_inside) = inst.run_closure(|| instance::on_host_stack(|| (deep(512), stack_pointer()))).unwrap();
    assert_eq!(sum, deep(512));
    assert!(!(stack.0..stack.1).contains(&sp_inside), "ran on the guest's stack");
    // The same code on the guest's 16 KiB stack overflows it.
    let err = inst.run_closure(|| deep(512)).unwrap_err();
    assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::StackOverflow));
}

#[test]
fn on_host_stack_is_a_host_region_and_returns_to_the_guest() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    let out = inst
        .run_closure(|| {
            let inside = instance::on_host_stack(|| (instance::in_host_region(), instance::in_guest()));
            (inside, instance::in_host_region(), stack_pointer())
        })
        .unwrap();
    assert_eq!(out.0, (true, true));
    assert!(!out.1, "the region did not end");
    assert!(inst.stack().contains(out.2), "the guest did not continue on its stack");
    // Yielding from host code is refused.
    let mut inst = Instance::new(64 * 1024).unwrap();
    let r = inst.start_closure(|| instance::on_host_stack(|| instance::yield_value::<u8, u8>(1)).is_err()).unwrap();
    assert_eq!(r.returned(), Some(true));
}

#[test]
fn a_panic_on_the_host_stack_continues_in_the_guest() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    let err = inst.run_closure(|| -> u32 { instance::on_host_stack(|| std::panic::panic_any(11u32)) }).unwrap_err();
    let Error::Panic(p) = err else { panic!("expected a panic") };
    assert_eq!(p.payload().downcast_ref::<u32>(), Some(&11));
    inst.reset().unwrap();
    // Caught inside the guest, the guest goes on.
    let caught = inst
        .run_closure(|| std::panic::catch_unwind(|| instance::on_host_stack(|| -> u8 { panic!("inner") })).is_err())
        .unwrap();
    assert!(caught);
}

#[test]
fn nested_and_repeated_on_host_stack_calls_do_not_overlap() {
    // On the host stack already: called again, it just runs.
    let mut inst = Instance::new(64 * 1024).unwrap();
    let v = inst.run_closure(|| instance::on_host_stack(|| instance::on_host_stack(|| deep(64)))).unwrap();
    assert_eq!(v, deep(64));

    // A run started from host code on the host stack, whose guest goes to
    // the host stack again: its frames go below the first ones.
    let mut outer = Instance::new(64 * 1024).unwrap();
    let v = outer
        .run_closure(|| {
            instance::on_host_stack(|| {
                let marker = std::hint::black_box([0x5au8; 4096]);
                let mut inner = Instance::new(16 * 1024).unwrap();
                let got = inner.run_closure(|| instance::on_host_stack(|| deep(256))).unwrap();
                // The outer host-stack frame is intact.
                assert!(marker.iter().all(|&b| b == 0x5a));
                got
            })
        })
        .unwrap();
    assert_eq!(v, deep(256));

    // A guest of an inner run that the outer guest started on its own stack.
    let mut outer = Instance::new(64 * 1024).unwrap();
    let v = outer
        .run_closure(|| {
            let mut inner = Instance::new(16 * 1024).unwrap();
            inner.run_closure(|| instance::on_host_stack(|| deep(256))).unwrap()
        })
        .unwrap();
    assert_eq!(v, deep(256));
}

#[test]
fn outside_a_run_on_host_stack_just_calls() {
    assert_eq!(instance::on_host_stack(|| 3), 3);
    // And the usual recursion guest still overflows its own stack.
    let mut inst = Instance::new(64 * 1024).unwrap();
    let err = inst.run_closure(|| rust_recursion(0)).unwrap_err();
    assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::StackOverflow));
}
