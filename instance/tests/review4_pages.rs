//! Review 4: page-size independence (arm64 kernels ship with 4, 16 or
//! 64 KiB pages). Sizes and guards round to the system's page, the default
//! guard stays at least 64 KiB, and an overflow of a one-page stack is a
//! stack overflow in the guard, recovered, on whatever page size the
//! process sees. Run it under `qemu-aarch64 -p 65536` too: there, a panic
//! (in any program, not only ours) crashes qemu-user 7.2, so this file
//! avoids `Result::unwrap` on paths that should not fail and keeps every
//! check an assertion.

mod common;

use common::guests::c_recursion;
use context::Val;
use instance::{FaultKind, Instance, Stack, alt_stack_size, page_size};

fn sysconf_page() -> usize {
    // SAFETY: sysconf only reads a system value.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

#[test]
fn sizes_and_guards_round_to_the_systems_page() {
    common::deadline();
    let page = page_size();
    assert_eq!(page, sysconf_page());
    eprintln!("review4_pages: page size {page}");
    for size in [1, page - 1, page, page + 1, 3 * page + 5] {
        let s = Stack::new(size).expect("Stack::new");
        assert_eq!(s.size(), size.div_ceil(page) * page, "size {size}");
        assert_eq!(s.guard_size() % page, 0);
        assert!(s.guard_size() >= 64 * 1024, "default guard {} below 64 KiB", s.guard_size());
        assert_eq!(s.mapping_start() % page, 0);
        assert_eq!(s.base(), s.mapping_start() + s.guard_size());
        assert_eq!(s.top(), s.base() + s.size());
        assert!(s.in_guard(s.mapping_start()) && s.in_guard(s.base() - 1) && !s.in_guard(s.base()));
        assert_eq!(common::perms_at(s.base() - 1).as_deref(), Some("---p"));
        assert_eq!(common::perms_at(s.base()).as_deref(), Some("rw-p"));
        let g = Stack::with_guard(size, 1).expect("Stack::with_guard");
        assert_eq!(g.guard_size(), page, "a 1-byte guard is one page");
    }
    assert_eq!(alt_stack_size() % page, 0);
}

#[test]
fn a_one_page_stack_overflows_into_its_guard_and_recovers() {
    common::deadline();
    let page = page_size();
    for guard in [1, page, 64 * 1024] {
        let stack = Stack::with_guard(1, guard).expect("stack");
        let (lo, base) = (stack.mapping_start(), stack.base());
        let mut inst = Instance::with_stack(stack);
        for round in 0..3 {
            // SAFETY: c_recursion is extern "C" fn(u64) -> u64 that
            // overflows.
            let r = unsafe { inst.run(c_recursion as *const () as usize, &[Val::U64(0)]) };
            let f = r.err().and_then(|e| e.fault().copied());
            assert!(f.is_some(), "guard {guard} round {round}: no fault");
            let f = f.unwrap_or_else(|| unreachable!());
            assert_eq!(f.kind, FaultKind::StackOverflow, "guard {guard} round {round}: {f:?}");
            assert!(lo <= f.addr && f.addr < base, "guard {guard}: fault at {:#x} not in the guard", f.addr);
            assert!(inst.reset().is_ok());
            let ok = inst.run_closure(|| 5u32);
            assert!(matches!(ok, Ok(5)), "guard {guard}: the instance did not run again");
        }
    }
}
