use context::{Context, ContextHandle};
use std::cell::Cell;
use std::hint::black_box;

thread_local! {
    static HOME: Cell<(*mut Context, *const Context)> = const { Cell::new((std::ptr::null_mut(), std::ptr::null())) };
}

#[repr(align(16))]
struct Stack([u64; 16 * 1024]);

#[inline(never)]
fn child_breakpoint_here(x: u64) -> u64 {
    black_box(x) * 2
}

extern "C" fn child_entry(x: u64) -> u64 {
    let r = child_breakpoint_here(x);
    black_box(r) + 1
}

extern "C" fn unlinked_child_entry(x: u64) -> u64 {
    let r = child_breakpoint_here(x);
    let (me, home) = HOME.get();
    unsafe { Context::swap(&mut *me, &*home) };
    r
}

#[inline(never)]
fn host_enters_child() -> u64 {
    let mut stack = Box::new(Stack([0; 16 * 1024]));
    let mut parent = ContextHandle::new();
    let kid =
        ContextHandle::create_and_init(&mut stack.0, &mut parent, child_entry as *const () as usize, &[20u64.into()])
            .unwrap();
    unsafe { Context::swap(&mut parent, &kid) };
    black_box(kid.get_retval_gp(0))
}

#[inline(never)]
fn host_enters_unlinked_child() {
    let mut stack = Box::new(Stack([0; 16 * 1024]));
    let mut orphan = ContextHandle::new();
    let mut home = ContextHandle::new();
    let mut kid = ContextHandle::create_and_init(
        &mut stack.0,
        &mut orphan,
        unlinked_child_entry as *const () as usize,
        &[20u64.into()],
    )
    .unwrap();
    HOME.set((&mut *kid as *mut Context, &*home as *const Context));
    unsafe { Context::swap(&mut home, &kid) };
    black_box(&stack);
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("unlinked") {
        host_enters_unlinked_child();
    } else {
        println!("{}", host_enters_child());
    }
}
