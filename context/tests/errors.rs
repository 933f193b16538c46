//! Every bad input to `Context::init` returns its own error, leaves the
//! stack and both contexts untouched, and never panics.

mod common;

use common::TestStack;
use context::{ArgPlan, Context, ContextHandle, Error, Val};

extern "C" fn entry(a: u64) -> u64 {
    a
}

const SENTINEL: u64 = 0x5a5a_5a5a_5a5a_5a5a;

fn fptr() -> usize {
    entry as *const () as usize
}

/// Runs `init` on `backing[range]` and checks that it failed with `want`
/// without writing anything anywhere in `backing` or to either context.
fn expect_error(backing: &mut [u64], range: std::ops::Range<usize>, fptr: usize, args: &[Val], want: Error) {
    backing.fill(SENTINEL);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    let (p0, c0) = (parent.regs(), child.regs());
    let got = Context::init(&mut backing[range], &mut parent, &mut child, fptr, args);
    assert_eq!(got, Err(want));
    assert!(backing.iter().all(|&w| w == SENTINEL), "a failed init wrote to memory");
    assert_eq!((parent.regs(), child.regs()), (p0, c0), "a failed init changed a context");
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
        b.fill(SENTINEL);
        let mut parent = ContextHandle::new();
        let mut child = ContextHandle::new();
        Context::init(&mut b[len - needed / 8..len], &mut parent, &mut child, fptr(), &args).expect("exact fit");
        assert!(b[..len - needed / 8].iter().all(|&w| w == SENTINEL), "init wrote below the stack");
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
        "return register index 2 is out of range: 0 is rax, 1 is rdx"
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
