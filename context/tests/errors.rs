//! Every bad input to `Context::init` and `Context::init_with_sigmask`
//! returns its own error (the same one from both), leaves the stack and both
//! contexts untouched, and never panics.

mod common;

use common::TestStack;
use context::{ArgPlan, Context, ContextHandle, Error, Val};
use nix::sys::signal::{SigSet, Signal};

extern "C" fn entry(a: u64) -> u64 {
    a
}

const SENTINEL: u64 = 0x5a5a_5a5a_5a5a_5a5a;

fn fptr() -> usize {
    entry as *const () as usize
}

/// A mask to hand `init_with_sigmask`, different from a fresh context's
/// empty one so that a write of it would show.
fn some_mask() -> SigSet {
    let mut m = SigSet::empty();
    m.add(Signal::SIGUSR2);
    m.add(Signal::SIGHUP);
    m
}

/// Runs `init` and `init_with_sigmask` on `backing[range]` and checks that
/// both failed with `want` without writing anything anywhere in `backing` or
/// to either context (registers or recorded mask).
fn expect_error(backing: &mut [u64], range: std::ops::Range<usize>, fptr: usize, args: &[Val], want: Error) {
    let mask = some_mask();
    for with_mask in [false, true] {
        backing.fill(SENTINEL);
        let mut parent = ContextHandle::new();
        let mut child = ContextHandle::new();
        let (p0, c0) = (parent.regs(), child.regs());
        let stack = &mut backing[range.clone()];
        let got = if with_mask {
            Context::init_with_sigmask(stack, &mut parent, &mut child, fptr, args, &mask)
        } else {
            Context::init(stack, &mut parent, &mut child, fptr, args)
        };
        assert_eq!(got, Err(want), "with_mask: {with_mask}");
        assert!(backing.iter().all(|&w| w == SENTINEL), "a failed init wrote to memory (with_mask: {with_mask})");
        assert_eq!((parent.regs(), child.regs()), (p0, c0), "a failed init changed a context (with_mask: {with_mask})");
        assert_eq!(
            (parent.sigset(), child.sigset()),
            (SigSet::empty(), SigSet::empty()),
            "a failed init recorded a mask (with_mask: {with_mask})"
        );
    }
}

#[test]
fn empty_stack_is_an_error() {
    let mut backing = TestStack::new(64);
    let b = backing.slice();
    expect_error(b, 0..0, fptr(), &[], Error::EmptyStack);
    let len = b.len();
    expect_error(b, len..len, fptr(), &[Val::U64(1)], Error::EmptyStack);
}

#[test]
fn stack_whose_top_is_not_16_byte_aligned_is_an_error() {
    let mut backing = TestStack::new(256);
    let b = backing.slice();
    let len = b.len();
    // `slice()` ends 16-aligned, so ending one word earlier is misaligned.
    expect_error(b, 0..len - 1, fptr(), &[], Error::UnalignedStack);
    expect_error(b, 1..len - 3, fptr(), &[Val::U64(1)], Error::UnalignedStack);
}

#[test]
fn null_entry_point_is_an_error() {
    let mut backing = TestStack::new(256);
    let b = backing.slice();
    let len = b.len();
    expect_error(b, 0..len, 0, &[Val::U64(1)], Error::NullEntryPoint);
}

#[test]
fn stack_too_small_for_the_frame_and_spilled_arguments_reports_both_sizes() {
    for n in [0usize, 6, 7, 9, 20, 40] {
        let args: Vec<Val> = (0..n as u64).map(Val::U64).collect();
        let needed = ArgPlan::new(&args).frame_bytes;
        let mut backing = TestStack::new(256);
        let b = backing.slice();
        let len = b.len();
        // Every size below `needed` that keeps the top aligned fails ...
        let mut words = needed / 8 - 1;
        while words > 0 {
            expect_error(b, len - words..len, fptr(), &args, Error::StackTooSmall { needed, available: words * 8 });
            words -= 1;
        }
        // ... and exactly `needed` succeeds, writing only inside the stack.
        for with_mask in [false, true] {
            b.fill(SENTINEL);
            let mut parent = ContextHandle::new();
            let mut child = ContextHandle::new();
            let stack = &mut b[len - needed / 8..len];
            if with_mask {
                Context::init_with_sigmask(stack, &mut parent, &mut child, fptr(), &args, &some_mask())
            } else {
                Context::init(stack, &mut parent, &mut child, fptr(), &args)
            }
            .expect("exact fit");
            assert!(b[..len - needed / 8].iter().all(|&w| w == SENTINEL), "init wrote below the stack ({with_mask})");
        }
    }
}

#[test]
fn errors_say_what_was_wrong_with_the_numbers() {
    assert_eq!(
        Error::StackTooSmall { needed: 152, available: 64 }.to_string(),
        "stack too small: the start-up frame and spilled arguments need 152 bytes, the stack has 64"
    );
    assert_eq!(Error::UnalignedStack.to_string(), "the top of the stack is not 16-byte aligned");
    assert_eq!(Error::EmptyStack.to_string(), "the stack is empty");
    assert_eq!(Error::NullEntryPoint.to_string(), "the entry point is a null function pointer");
    assert_eq!(
        Error::RetvalIndex { index: 2 }.to_string(),
        if cfg!(target_arch = "x86_64") {
            "return register index 2 is out of range: 0 is rax, 1 is rdx"
        } else {
            "return register index 2 is out of range: 0 is x0, 1 is x1"
        }
    );
}

#[test]
fn out_of_range_return_register_index_is_an_error_not_a_panic() {
    let ctx = Context::new();
    assert_eq!(ctx.retval_gp(2), Err(Error::RetvalIndex { index: 2 }));
    assert_eq!(ctx.retval_gp(usize::MAX), Err(Error::RetvalIndex { index: usize::MAX }));
    assert_eq!(ctx.get_retval_gp(7), 0);
    assert_eq!(ctx.retval_gp(0), Ok(0));
}

#[test]
fn with_several_faults_the_first_in_documented_order_is_reported_by_both_inits() {
    let mut backing = TestStack::new(256);
    let b = backing.slice();
    let len = b.len();
    let many: Vec<Val> = (0..40u64).map(Val::U64).collect();
    // Empty beats everything, misalignment beats size, size beats a null entry.
    expect_error(b, len..len, 0, &many, Error::EmptyStack);
    expect_error(b, 0..len - 1, 0, &many, Error::UnalignedStack);
    let needed = ArgPlan::new(&many).frame_bytes;
    expect_error(b, len - 2..len, 0, &many, Error::StackTooSmall { needed, available: 16 });
}

#[test]
fn create_and_init_with_sigmask_reports_the_error_and_makes_no_child() {
    let mut backing = TestStack::new(64);
    let b = backing.slice();
    let len = b.len();
    let mut parent = ContextHandle::new();
    let got = ContextHandle::create_and_init_with_sigmask(&mut b[..len - 1], &mut parent, fptr(), &[], &some_mask());
    assert_eq!(got.err(), Some(Error::UnalignedStack));
    let got = ContextHandle::create_and_init_with_sigmask(&mut b[..], &mut parent, 0, &[], &some_mask());
    assert_eq!(got.err(), Some(Error::NullEntryPoint));
    assert_eq!(parent.sigset(), SigSet::empty(), "the parent is untouched");
}
