//! A child context to look at in a debugger.
//!
//! `host_enters_child` starts `child_entry` on a stack of its own; the child
//! calls `child_breakpoint_here`. Stop there in gdb and `bt` shows the
//! child's frames, then `context_sys_start`, then the host frames that
//! switched into the child:
//!
//! ```text
//! cargo build -p stackful-context --example gdb_backtrace
//! gdb -batch -ex 'break child_breakpoint_here' -ex run -ex bt target/debug/examples/gdb_backtrace
//! ```
//!
//! With the argument `unlinked`, the child is entered from a context that
//! is not its parent, whose register block was never saved into: the
//! backtrace then ends cleanly at `context_sys_start`.
//!
//! Without a debugger: `print` makes the child print
//! `std::backtrace::Backtrace::force_capture()`, and `panic` makes it panic
//! inside `catch_unwind` (run it with `RUST_BACKTRACE=1`):
//!
//! ```text
//! cargo run -p stackful-context --example gdb_backtrace -- print
//! RUST_BACKTRACE=1 cargo run -p stackful-context --example gdb_backtrace -- panic
//! ```
//!
//! `cargo xtask gdb` runs both under gdb and checks the backtraces. The
//! stack is registered with valgrind, so the example also runs clean under
//! `valgrind` (`cargo xtask valgrind` does that too).

use std::cell::Cell;
use std::hint::black_box;

use context::valgrind::StackRegistration;
use context::{Context, ContextHandle, Val};

const STACK_WORDS: usize = 16 * 1024;

/// 128 KiB, 16-byte aligned at the top.
#[repr(C, align(16))]
struct Stack([u64; STACK_WORDS]);

thread_local! {
    /// (the unlinked child, where it goes back to) for `unlinked_child_entry`.
    static HOME: Cell<(*mut Context, *const Context)> =
        const { Cell::new((std::ptr::null_mut(), std::ptr::null())) };
}

/// Where to put the breakpoint. `no_mangle` gives it one plain symbol name
/// that gdb finds in debug and release builds alike.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn child_breakpoint_here(x: u64) -> u64 {
    black_box(x) * 2
}

/// The child's entry: runs on the child's stack, returns to its parent.
extern "C" fn child_entry(x: u64) -> u64 {
    let doubled = child_breakpoint_here(x);
    black_box(doubled) + 1
}

#[inline(never)]
fn child_prints_backtrace() {
    println!("{}", std::backtrace::Backtrace::force_capture());
}

extern "C" fn printing_child_entry(_: u64) -> u64 {
    child_prints_backtrace();
    0
}

#[inline(never)]
fn child_panics() {
    panic!("a panic inside a child context");
}

extern "C" fn panicking_child_entry(_: u64) -> u64 {
    // A panic must never unwind out of an entry function (there is no Rust
    // frame above it): catch it on the child's own stack.
    let caught = std::panic::catch_unwind(child_panics).is_err();
    u64::from(caught)
}

/// An entry whose parent was never saved into: it cannot return there, so
/// it switches back to the context that entered it.
extern "C" fn unlinked_child_entry(x: u64) -> u64 {
    let doubled = child_breakpoint_here(x);
    let (me, home) = HOME.get();
    // SAFETY: both contexts are heap-pinned by `host_enters_unlinked_child`,
    // which is suspended in its swap to us and outlives this run.
    unsafe { Context::swap(&mut *me, &*home) };
    unreachable!("nothing resumes this child after {doubled}");
}

#[inline(never)]
fn host_enters_child(entry: extern "C" fn(u64) -> u64) -> u64 {
    let mut stack = Box::new(Stack([0; STACK_WORDS]));
    let _registration = StackRegistration::for_stack(&stack.0).expect("the stack is not empty");
    let mut parent = ContextHandle::new();
    let child =
        ContextHandle::create_and_init(&mut stack.0, &mut parent, entry, &[Val::U64(20)]).expect("a valid start-up");
    // SAFETY: both contexts are heap-pinned and the stack outlives the run,
    // which ends by returning into `parent`.
    unsafe { Context::swap(&mut parent, &child) };
    black_box(child.get_retval_gp(0))
}

#[inline(never)]
fn host_enters_unlinked_child() {
    let mut stack = Box::new(Stack([0; STACK_WORDS]));
    let _registration = StackRegistration::for_stack(&stack.0).expect("the stack is not empty");
    let mut never_saved = ContextHandle::new();
    let mut home = ContextHandle::new();
    let entry = unlinked_child_entry as extern "C" fn(u64) -> u64;
    let mut child = ContextHandle::create_and_init(&mut stack.0, &mut never_saved, entry, &[Val::U64(20)])
        .expect("a valid start-up");
    HOME.set((&mut *child, &*home));
    // SAFETY: the child comes back by swapping to `home`; the contexts and
    // the stack live until then.
    unsafe { Context::swap(&mut home, &child) };
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("unlinked") => {
            host_enters_unlinked_child();
            println!("the unlinked child came back");
        }
        Some("print") => {
            host_enters_child(printing_child_entry);
        }
        Some("panic") => {
            let caught = host_enters_child(panicking_child_entry);
            println!("the child caught its panic: {}", caught == 1);
        }
        _ => println!("the child returned {}", host_enters_child(child_entry)),
    }
}
