//! Stack clash: a C guest built without stack probes, whose 60 KiB local
//! is touched at its lowest byte first, steps more than a page below its
//! stack in one go. The default guard (`instance::DEFAULT_GUARD_SIZE`,
//! 64 KiB) must catch it as a stack overflow, and the stack mapped just
//! below must never see the write.

use instance::{DEFAULT_GUARD_SIZE, Error, FaultKind, Instance, Stack, page_size};

// Linked for its C archive, which holds the guest below.
use context_tests_c as _;

unsafe extern "C" {
    fn ctc_inst_frame_60k() -> u64;
}

/// `CTC_INST_FRAME_BYTES` in `c/instance_guests.c`.
const FRAME_BYTES: usize = 60 * 1024;

/// Usable bytes of the overflowing instance: far less than the frame, so
/// the frame's first write lands `FRAME_BYTES - SMALL` (about 44 KiB) below
/// the stack's base: past a one-page guard, inside a 64 KiB one.
const SMALL: usize = 16 * 1024;

// The frame skips a one-page guard and fits in the default one.
const _: () = assert!(FRAME_BYTES < DEFAULT_GUARD_SIZE && SMALL < FRAME_BYTES);

/// What the neighbour's stack is filled with.
const SENTINEL: u64 = 0x5e47_1e1a_5e47_1e1a;

fn frame_entry() -> usize {
    ctc_inst_frame_60k as unsafe extern "C" fn() -> u64 as usize
}

/// Runs the 60 KiB-frame guest on `inst`.
fn run_frame(inst: &mut Instance) -> Result<u64, Error> {
    // SAFETY: ctc_inst_frame_60k is uint64_t(void) and does not unwind.
    unsafe { inst.run(frame_entry(), &[]) }.map(|r| r.as_u64())
}

#[test]
fn an_unprobed_60k_frame_is_a_stack_overflow_in_the_default_guard() {
    let mut inst = Instance::new(SMALL).unwrap();
    let stack = inst.stack();
    let (base, guard) = (stack.base(), stack.guard_size());
    assert_eq!(guard, DEFAULT_GUARD_SIZE.next_multiple_of(page_size()));
    let err = run_frame(&mut inst).unwrap_err();
    let report = *err.fault().unwrap_or_else(|| panic!("expected a fault, got {err:?}"));
    assert_eq!(report.kind, FaultKind::StackOverflow, "{report:?}");
    assert!(inst.stack().in_guard(report.addr), "fault address {:#x} not in the guard of {:?}", report.addr, inst);
    // The write skipped a one-page guard: it is not the guard's top page.
    assert!(report.addr < base - page_size(), "fault address {:#x} within a page of the base {base:#x}", report.addr);
    assert!(inst.stack().contains(report.sp));
    // The instance is fine afterwards, and the same frame runs on a stack
    // that has room for it.
    inst.reset().unwrap();
    let mut roomy = Instance::new(FRAME_BYTES + 16 * 1024).unwrap();
    assert_eq!(run_frame(&mut roomy).unwrap(), 3);
}

/// Two stacks made one after the other, the first directly above the
/// second: `(upper, lower)`. Consecutive mappings usually touch, but in
/// which order depends on who places them: the kernel hands out addresses
/// top-down (the first mapping is the upper one), qemu-user's own
/// allocator bottom-up (the first is the lower one). Both orders are tried.
fn adjacent_pair(upper_size: usize, lower_size: usize) -> (Stack, Stack) {
    let mut made = Vec::new();
    for _ in 0..16 {
        let upper = Stack::new(upper_size).unwrap();
        let lower = Stack::new(lower_size).unwrap();
        if lower.top() == upper.mapping_start() {
            return (upper, lower);
        }
        // Keep the misses mapped so the next pair is not placed over them.
        made.push((upper, lower));
        let lower = Stack::new(lower_size).unwrap();
        let upper = Stack::new(upper_size).unwrap();
        if lower.top() == upper.mapping_start() {
            return (upper, lower);
        }
        made.push((upper, lower));
    }
    panic!("no two consecutive stacks were adjacent: {made:?}");
}

#[test]
fn an_overflowing_60k_frame_never_reaches_the_adjacent_stack() {
    let (upper, mut lower) = adjacent_pair(SMALL, 2 * FRAME_BYTES);
    lower.as_words_mut().fill(SENTINEL);
    let mut upper = Instance::with_stack(upper);
    // Without a large enough guard, the frame's first write would land in
    // `lower`'s usable part and the run would return 3.
    let err = run_frame(&mut upper).unwrap_err();
    let report = *err.fault().unwrap_or_else(|| panic!("expected a fault, got {err:?}"));
    assert_eq!(report.kind, FaultKind::StackOverflow, "{report:?}");
    assert!(upper.stack().in_guard(report.addr));
    let changed = lower.as_words_mut().iter().filter(|&&w| w != SENTINEL).count();
    assert_eq!(changed, 0, "{changed} words of the neighbour's stack changed");

    // The other way round: the lower instance has room for the frame, and
    // its run leaves the upper instance (above it) alone; the upper one
    // resets and runs again.
    let mut lower = Instance::with_stack(lower);
    assert_eq!(run_frame(&mut lower).unwrap(), 3);
    upper.reset().unwrap();
    assert_eq!(run_frame(&mut upper).unwrap_err().fault().map(|f| f.kind), Some(FaultKind::StackOverflow));
    assert_eq!(run_frame(&mut lower).unwrap(), 3);
}

#[test]
fn a_guard_chosen_per_instance_is_used() {
    let page = page_size();
    // A smaller guard than the default is allowed, and reported as asked.
    let inst = Instance::with_guard(SMALL, 3 * page).unwrap();
    assert_eq!((inst.stack().size(), inst.stack().guard_size()), (SMALL, 3 * page));
    // A larger one catches the frame too (whatever the default is).
    let mut inst = Instance::with_guard(SMALL, 128 * 1024).unwrap();
    let report = *run_frame(&mut inst).unwrap_err().fault().unwrap();
    assert_eq!(report.kind, FaultKind::StackOverflow);
    assert!(inst.stack().in_guard(report.addr));
    assert!(matches!(Instance::with_guard(SMALL, 0), Err(Error::Stack(instance::StackError::ZeroGuard))));
}
