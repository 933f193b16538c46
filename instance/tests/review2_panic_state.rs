//! Review 2: a closure guest whose frames are abandoned in the middle of a
//! panic (a fault in the panic hook, or in a destructor run by the unwind)
//! leaves std's per-thread panic state behind on the host thread.
mod common;

use instance::{Instance, yield_value};
use std::fmt;

/// A Display whose formatting overflows any stack (safe code).
struct Evil(u64);
impl fmt::Display for Evil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pad = std::hint::black_box([self.0; 64]);
        write!(f, "{}", Evil(pad[3] + 1))?;
        write!(f, "{}", pad[7])
    }
}

/// A destructor that overflows the stack (safe code).
struct BadDrop;
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    recurse(pad[3] + 1) + pad[7]
}
impl Drop for BadDrop {
    fn drop(&mut self) {
        std::hint::black_box(recurse(0));
    }
}

fn case_hook_fault() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    // The default hook formats the message: the Display overflows the
    // guest's stack inside the hook.
    let err = inst.run_closure(|| -> u32 { panic!("{}", Evil(0)) }).unwrap_err();
    println!("first run: {err}");
    println!("panicking after: {}", std::thread::panicking());
    // An ordinary, caught host panic afterwards.
    let caught = std::panic::catch_unwind(|| panic!("host panic"));
    println!("host panic caught: {}", caught.is_err());
    // And an ordinary guest panic on a fresh instance.
    let mut other = Instance::new(64 * 1024).unwrap();
    let r = other.run_closure(|| -> u32 { panic!("guest panic") });
    println!("guest panic: {:?}", r.map_err(|e| e.to_string()));
}

fn case_drop_fault() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    let err = inst
        .run_closure(|| -> u32 {
            let _g = BadDrop;
            panic!("plain")
        })
        .unwrap_err();
    println!("first run: {err}");
    println!("panicking after: {}", std::thread::panicking());
    let mut other = Instance::new(64 * 1024).unwrap();
    let out = other.start_closure(|| yield_value::<u32, u32>(1).map_err(|e| e.to_string()));
    println!("fresh instance yield: {:?}", out.map(|o| format!("{o:?}")));
}

#[test]
fn fault_in_panic_hook_poisons_the_thread() {
    if let Some(case) = common::child_case() {
        if case == "hook" {
            case_hook_fault();
        }
        return;
    }
    // The thread's panic state cannot be repaired after its frames were
    // abandoned mid-panic: the process aborts at once, saying why, instead
    // of running on with `panicking()` stuck.
    let out = common::run_child("fault_in_panic_hook_poisons_the_thread", "hook");
    assert_eq!(out.signal(), Some(libc::SIGABRT), "{out:?}");
    assert!(out.stderr.contains("a guest faulted or was killed while panicking"), "{out:?}");
    assert!(!out.stdout.contains("panicking after"), "{out:?}");
}

#[test]
fn fault_in_unwinding_drop_leaves_thread_panicking() {
    if let Some(case) = common::child_case() {
        if case == "drop" {
            case_drop_fault();
        }
        return;
    }
    let out = common::run_child("fault_in_unwinding_drop_leaves_thread_panicking", "drop");
    assert_eq!(out.signal(), Some(libc::SIGABRT), "{out:?}");
    assert!(out.stderr.contains("a guest faulted or was killed while panicking"), "{out:?}");
    assert!(!out.stdout.contains("panicking after"), "{out:?}");
}
