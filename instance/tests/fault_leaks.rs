//! The same instance faulting (every way) and running again 10,000 times
//! leaks no mapping, no memory and no file descriptor.
//!
//! One test in its own binary, so nothing else maps or unmaps meanwhile.

// Clippy 1.88 (the MSRV) calls `|| illegal_instruction()` a redundant closure, but an
// `extern "C" fn` item is not `FnOnce` on current Rust, so its suggestion
// (`run_closure(illegal_instruction)`) does not compile there.
#![allow(clippy::redundant_closure)]

mod common;

use common::guests::*;
use context::Val;
use instance::{FaultKind, Instance};

#[test]
fn ten_thousand_faults_and_reruns_leak_nothing() {
    common::deadline();
    let page = NoAccessPage::new();
    let bus = TruncatedMapping::new();
    let mut inst = Instance::new(64 * 1024).unwrap();
    // SAFETY: the closures below lend nothing on their frames to anything
    // that outlives them, so the stack may be reused after their faults
    // (without this, each closure fault quarantines one stack for good).
    unsafe { inst.set_reuse_abandoned_stack(true) };
    let mut other_thread_inst = Some(Instance::new(64 * 1024).unwrap());

    let cycle = |inst: &mut Instance, i: u32| {
        let (p, b) = (page.0, bus.addr);
        let (want, err) = match i % 8 {
            0 => (FaultKind::MemoryFault, inst.run_closure(move || write_to(p)).map(drop)),
            1 => (FaultKind::MemoryFault, inst.run_closure(|| read_from(UNMAPPED)).map(drop)),
            2 => (FaultKind::IllegalInstruction, inst.run_closure(|| illegal_instruction()).map(drop)),
            3 => (FaultKind::Arithmetic, inst.run_closure(|| arithmetic_fault()).map(drop)),
            4 => (FaultKind::Breakpoint, inst.run_closure(|| breakpoint()).map(drop)),
            5 => (FaultKind::StackOverflow, inst.run_closure(|| rust_recursion(0)).map(drop)),
            // SAFETY: c_recursion is extern "C" (u64) -> u64.
            6 => (
                FaultKind::StackOverflow,
                unsafe { inst.run(c_recursion as *const () as usize, &[Val::U64(0)]) }.map(drop),
            ),
            _ => (FaultKind::BusError, inst.run_closure(move || read_from(b)).map(drop)),
        };
        assert_eq!(err.unwrap_err().fault().map(|f| f.kind), Some(want), "cycle {i}");
        inst.reset().unwrap();
        assert_eq!(inst.run_closure(move || i + 1).unwrap(), i + 1);
        inst.reset().unwrap();
    };

    // Warm up: the handlers, this thread's alternate stack, the allocator.
    for i in 0..16 {
        cycle(&mut inst, i);
    }
    let (maps0, rss0, fds0) = (common::maps_lines(), common::rss_bytes(), common::fd_count());
    for i in 0..10_000 {
        cycle(&mut inst, i);
    }
    assert_eq!(common::maps_lines(), maps0, "mappings leaked");
    assert_eq!(instance::quarantined_stacks(), 0);
    assert_eq!(common::fd_count(), fds0, "file descriptors leaked");
    let rss = common::rss_bytes();
    assert!(rss <= rss0 + (2 << 20), "RSS grew from {rss0} to {rss}");

    // A thread that runs instances gets an alternate signal stack, which is
    // unmapped when the thread exits.
    let mut moved = other_thread_inst.take().unwrap();
    let alt = std::thread::spawn(move || {
        let r = moved.run_closure(|| illegal_instruction()).map(drop);
        assert!(r.unwrap_err().fault().is_some());
        moved.reset().unwrap();
        moved.run_closure(current_alt_stack).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(alt.1, instance::alt_stack_size());
    // That instance's closure fault quarantined its stack (the default).
    assert_eq!(instance::quarantined_stacks(), 1);
    assert_eq!(common::perms_at(alt.0), None, "the exited thread's alternate stack is still mapped");
}

/// This thread's alternate signal stack (base, size).
fn current_alt_stack() -> (usize, usize) {
    let mut ss = std::mem::MaybeUninit::<libc::stack_t>::uninit();
    // SAFETY: a query-only sigaltstack writes `ss`.
    assert_eq!(unsafe { libc::sigaltstack(std::ptr::null(), ss.as_mut_ptr()) }, 0);
    // SAFETY: written by the successful call.
    let ss = unsafe { ss.assume_init() };
    (ss.ss_sp as usize, ss.ss_size)
}
