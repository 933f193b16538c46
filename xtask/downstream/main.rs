//! A user's first program on the published crates, built by
//! `cargo xtask release-check` from the packaged `.crate` files: it runs
//! guests through `instance` (Rust ones, and the C and C++ guests of
//! `c/`, which `build.rs` compiles against the packaged headers) and a
//! child context through `context` directly, prints one line per check,
//! and ends with `downstream smoke: ok` (exit 0) when every check held,
//! exit 1 otherwise.

use std::process::ExitCode;

use context::{Context, ContextHandle, UntypedRetVal, Val};
use instance::{Error, FaultKind, INSTANCE_E_NOT_IN_GUEST, INSTANCE_E_NOT_RESUMABLE, Instance, Outcome};

// c/guest.c and c/guest.cpp, compiled by build.rs.
unsafe extern "C" {
    /// Yields `a` with `instance_yield`, returns the resumed value plus `b`
    /// (1000 + the negated status if the yield was refused).
    fn downstream_c_guest(a: u64, b: u64) -> u64;
    /// `instance_yield` called outside any guest: its status.
    safe fn downstream_c_yield_outside() -> i32;
    /// 1 if `context_sys_get_current_stack_pointer` returns a stack pointer
    /// just below the caller's locals and the register block has the size
    /// `context_sys.h` gives.
    safe fn downstream_c_stack_pointer_ok() -> i32;
    /// C++17: yields `2 * a`, returns the resumed value plus 100 if
    /// `instance_in_guest` says so.
    fn downstream_cpp_guest(a: u64) -> u64;
}

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

    // SAFETY: `downstream_c_guest` is a C function of two u64s that
    // returns a u64 and does not unwind.
    let r = unsafe { inst.start(downstream_c_guest as *const () as usize, &[Val::U64(5), Val::U64(7)]) };
    let yielded = match &r {
        Ok(Outcome::Yielded(y)) => y.as_u64(),
        _ => None,
    };
    check("C guest (instance.h), start: instance_yield(5)", yielded == Some(5), format!("{r:?}"));
    let r = inst.resume::<UntypedRetVal, u64>(30).map(|o| o.returned().map(|r| r.as_u64()));
    check("C guest, resume(30): returns 30 + 7", matches!(r, Ok(Some(37))), format!("{r:?}"));

    // SAFETY: as above.
    let r =
        unsafe { inst.run(downstream_c_guest as *const () as usize, &[Val::U64(5), Val::U64(7)]) }.map(|r| r.as_u64());
    let want = 1000 + u64::from(INSTANCE_E_NOT_RESUMABLE.unsigned_abs());
    let ok = r.as_ref().is_ok_and(|&v| v == want);
    check("C guest under run (not resumable): INSTANCE_E_NOT_RESUMABLE", ok, format!("{r:?}"));

    let rc = downstream_c_yield_outside();
    check("C instance_yield outside a guest: INSTANCE_E_NOT_IN_GUEST", rc == INSTANCE_E_NOT_IN_GUEST, rc.to_string());

    // SAFETY: `downstream_cpp_guest` is an `extern "C"` function of a u64
    // that returns a u64 and does not unwind (it throws nothing).
    let r = unsafe { inst.start(downstream_cpp_guest as *const () as usize, &[Val::U64(4)]) };
    let yielded = match &r {
        Ok(Outcome::Yielded(y)) => y.as_u64(),
        _ => None,
    };
    check("C++17 guest (instance.h), start: instance_yield(8)", yielded == Some(8), format!("{r:?}"));
    let r = inst.resume::<UntypedRetVal, u64>(1).map(|o| o.returned().map(|r| r.as_u64()));
    check("C++17 guest, resume(1): returns 1 + 100 (in a guest)", matches!(r, Ok(Some(101))), format!("{r:?}"));

    let ok = downstream_c_stack_pointer_ok();
    check("C context_sys_get_current_stack_pointer (context_sys.h)", ok == 1, ok.to_string());

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
