//! A child on its own stack takes nine arguments (two spill onto its stack),
//! hands values back to its parent one at a time, and returns a `double`.
//!
//! Run with `cargo run --release -p stackful-context --example pingpong`.

use context::{Context, ContextHandle, Val};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Where the child puts each value it hands over, and the two contexts.
static OUT: AtomicU64 = AtomicU64::new(0);
static CHILD: AtomicPtr<Context> = AtomicPtr::new(std::ptr::null_mut());
static PARENT: AtomicPtr<Context> = AtomicPtr::new(std::ptr::null_mut());

fn hand_over(v: u64) {
    OUT.store(v, Ordering::SeqCst);
    // SAFETY: main keeps both contexts pinned and alive until the child returns.
    unsafe { Context::swap(&mut *CHILD.load(Ordering::SeqCst), &*PARENT.load(Ordering::SeqCst)) };
}

#[allow(clippy::too_many_arguments)]
extern "C" fn fibonacci(count: u64, a: i8, b: u16, c: i32, d: f32, e: bool, f: i64, g: f64, h: u8) -> f64 {
    let (mut x, mut y) = (0u64, 1u64);
    for _ in 0..count {
        hand_over(x);
        (x, y) = (y, x + y);
    }
    a as f64 + b as f64 + c as f64 + d as f64 + e as u8 as f64 + f as f64 + g + h as f64
}

/// A stack for the child: the top must be 16-byte aligned.
#[repr(C, align(16))]
struct Stack([u64; 8192]);

fn main() -> Result<(), context::Error> {
    let mut stack = Box::new(Stack([0; 8192]));
    let mut parent = ContextHandle::new();
    let args = [
        Val::U64(10),
        Val::I8(-1),
        Val::U16(2),
        Val::I32(-3),
        Val::F32(0.5),
        Val::Bool(true),
        Val::I64(-6),
        Val::F64(0.25),
        Val::U8(9),
    ];
    let mut child = ContextHandle::create_and_init(
        &mut stack.0,
        &mut parent,
        fibonacci as extern "C" fn(_, _, _, _, _, _, _, _, _) -> _,
        &args,
    )?;
    CHILD.store(&mut *child, Ordering::SeqCst);
    PARENT.store(&mut *parent, Ordering::SeqCst);

    print!("values handed over:");
    for _ in 0..10 {
        // SAFETY: both contexts are heap-pinned; the stack outlives the child.
        unsafe { Context::swap(&mut parent, &child) };
        print!(" {}", OUT.load(Ordering::SeqCst));
    }
    // SAFETY: as above; this time the child returns.
    unsafe { Context::swap(&mut parent, &child) };
    println!();
    println!("returned: {} ({})", child.get_untyped_retval().as_f64(), child.get_untyped_retval());
    Ok(())
}
