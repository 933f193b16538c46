//! A user's first program on the published crates, built by
//! `cargo xtask release-check` from the packaged `.crate` files: it runs
//! guests through `instance` and a child context through `context`
//! directly, prints one line per check, and ends with
//! `downstream smoke: ok` (exit 0) when every check held, exit 1 otherwise.

use std::process::ExitCode;

use context::{Context, ContextHandle, Val};
use instance::{Error, FaultKind, Instance};

extern "C" fn add(a: u64, b: u64) -> u64 {
    a + b
}

extern "C" fn write_to(addr: usize) -> u64 {
    // SAFETY: faults on purpose: nothing is mapped at the address it gets.
    unsafe { (addr as *mut u64).write_volatile(1) };
    0
}

/// Room for the child context's frames, 16-byte aligned as `init` needs.
#[repr(align(16))]
struct ChildStack([u64; 8192]);

fn main() -> ExitCode {
    let mut failed = 0;
    let mut check = |what: &str, ok: bool, got: String| {
        println!("{what}: {got}: {}", if ok { "ok" } else { "FAILED" });
        failed += u32::from(!ok);
    };

    let mut inst = Instance::new(64 * 1024).expect("an instance");

    // SAFETY: `add` is an `extern "C" fn(u64, u64) -> u64` that does not unwind.
    let r = unsafe { inst.run(add as *const () as usize, &[Val::U64(40), Val::U64(2)]) }.map(|r| r.as_u64());
    check("instance, raw entry add(40, 2)", matches!(r, Ok(42)), format!("{r:?}"));

    // SAFETY: `write_to` is an `extern "C" fn(usize) -> u64` that does not
    // unwind; it faults, which the instance turns into an error.
    let r = unsafe { inst.run(write_to as *const () as usize, &[Val::USize(8)]) };
    let ok = matches!(&r, Err(Error::Fault(f)) if f.kind == FaultKind::MemoryFault && f.addr == 8);
    check("instance, raw entry writing to 0x8", ok, format!("{r:?}"));
    let reset = inst.reset();
    check("instance, reset after the fault", reset.is_ok(), format!("{reset:?}"));

    let r = inst.run_closure(|| (1..=10u64).sum::<u64>());
    check("instance, closure after the reset", matches!(r, Ok(55)), format!("{r:?}"));

    let mut stack = Box::new(ChildStack([0; 8192]));
    let mut parent = ContextHandle::new();
    let args = [Val::U64(20), Val::U64(22)];
    match ContextHandle::create_and_init(&mut stack.0, &mut parent, add as *const () as usize, &args) {
        Ok(kid) => {
            // SAFETY: the stack and both contexts outlive the child, which
            // returns (to `parent`) without switching anywhere else.
            unsafe { Context::swap(&mut parent, &kid) };
            let got = kid.get_retval_gp(0);
            check("context, ContextHandle running add(20, 22)", got == 42, got.to_string());
        }
        Err(e) => check("context, ContextHandle running add(20, 22)", false, format!("init failed: {e}")),
    }
    let empty = ContextHandle::create_and_init(&mut [], &mut parent, add as *const () as usize, &args);
    check("context, init on an empty stack is an error", empty.is_err(), format!("{:?}", empty.err()));

    if failed == 0 {
        println!("downstream smoke: ok");
        ExitCode::SUCCESS
    } else {
        println!("downstream smoke: {failed} check(s) FAILED");
        ExitCode::FAILURE
    }
}
