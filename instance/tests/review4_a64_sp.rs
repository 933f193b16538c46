//! Review 4, aarch64: a guest that leaves sp misaligned (sp & 15 != 0) and
//! then faults or is killed. qemu does not check sp alignment, silicon does
//! (SCTLR_EL1.SA0): the way back must not touch memory through sp before
//! it realigns it. Under qemu this checks what can be checked: the report
//! gives the misaligned sp exactly, the run ends cleanly, with and without
//! the alternate signal stack (the guest can disable it, and then the way
//! back runs on the instance's stack), and the instance runs again.
#![cfg(target_arch = "aarch64")]

mod common;

use std::time::Duration;

use common::guests::NoAccessPage;
use context::Val;
use instance::{Error, FaultKind, Instance};

/// Moves sp down by `skew` bytes (1..=15, so misaligned) and executes
/// `udf`. Never returns.
extern "C" fn misaligned_udf(skew: u64) -> u64 {
    // SAFETY: sp stays inside the instance's stack; the udf ends the run
    // (x9 is clobbered, which a noreturn asm may do).
    unsafe {
        core::arch::asm!("mov x9, sp", "sub x9, x9, x10", "mov sp, x9", "udf #0", in("x10") skew, options(noreturn))
    }
}

/// Moves sp down by `skew` bytes and stores to `addr` (a PROT_NONE page).
extern "C" fn misaligned_store(skew: u64, addr: usize) -> u64 {
    // SAFETY: as above; the store faults.
    unsafe {
        core::arch::asm!("mov x9, sp", "sub x9, x9, x10", "mov sp, x9", "str xzr, [x11]", "udf #1",
            in("x10") skew, in("x11") addr, options(noreturn))
    }
}

/// Moves sp down by `skew` bytes and spins until killed.
extern "C" fn misaligned_spin(skew: u64) -> u64 {
    // SAFETY: as above; no memory is touched.
    unsafe {
        core::arch::asm!("mov x9, sp", "sub x9, x9, x10", "mov sp, x9", "2:", "b 2b", in("x10") skew, options(noreturn))
    }
}

/// Disables this thread's alternate signal stack, then as
/// [`misaligned_udf`]: the handler runs on the instance's stack below the
/// misaligned sp, and the way back on the instance's stack's top.
extern "C" fn no_alt_stack_misaligned_udf(skew: u64) -> u64 {
    let ss = libc::stack_t { ss_sp: core::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
    // SAFETY: disables this thread's alternate stack (the run gives it
    // back afterwards).
    assert_eq!(unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) }, 0);
    misaligned_udf(skew)
}

extern "C" fn sp_now() -> u64 {
    let sp: u64;
    // SAFETY: reads sp only.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

fn check_again(inst: &mut Instance) {
    inst.reset().unwrap();
    // SAFETY: an extern "C" fn() -> u64.
    let sp = unsafe { inst.run(sp_now as *const () as usize, &[]) }.unwrap().as_u64();
    assert!(inst.stack().contains(sp as usize));
}

#[test]
fn a_fault_with_a_misaligned_sp_is_reported_with_that_sp_and_recovered() {
    common::deadline();
    let mut inst = Instance::new(64 * 1024).unwrap();
    for skew in [1u64, 4, 8, 12, 15] {
        // SAFETY: an extern "C" fn(u64) -> u64 that faults.
        let err = unsafe { inst.run(misaligned_udf as *const () as usize, &[Val::U64(skew)]) }.unwrap_err();
        let f = *err.fault().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(f.kind, FaultKind::IllegalInstruction);
        assert_eq!(f.sp & 15, (16 - skew as usize) & 15, "skew {skew}: reported sp {:#x}", f.sp);
        assert!(inst.stack().contains(f.sp));
        check_again(&mut inst);
    }
}

#[test]
fn a_memory_fault_with_a_misaligned_sp_is_recovered() {
    common::deadline();
    let page = NoAccessPage::new();
    let mut inst = Instance::new(64 * 1024).unwrap();
    for skew in [3u64, 8] {
        let args = [Val::U64(skew), Val::USize(page.0)];
        // SAFETY: an extern "C" fn(u64, usize) -> u64 that faults.
        let err = unsafe { inst.run(misaligned_store as *const () as usize, &args) }.unwrap_err();
        let f = *err.fault().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!((f.kind, f.addr), (FaultKind::MemoryFault, page.0));
        assert_ne!(f.sp & 15, 0);
        check_again(&mut inst);
    }
}

#[test]
fn a_kill_with_a_misaligned_sp_is_recovered() {
    common::deadline();
    let mut inst = Instance::new(64 * 1024).unwrap();
    for skew in [1u64, 8] {
        inst.set_timeout(Some(Duration::from_millis(20)));
        // SAFETY: an extern "C" fn(u64) -> u64 that spins; terminable.
        let r = unsafe { inst.run(misaligned_spin as *const () as usize, &[Val::U64(skew)]) };
        assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
        inst.set_timeout(None);
        check_again(&mut inst);
    }
}

#[test]
fn a_fault_with_a_misaligned_sp_and_no_alternate_stack_is_recovered() {
    common::deadline();
    let mut inst = Instance::new(64 * 1024).unwrap();
    for skew in [4u64, 8] {
        // SAFETY: an extern "C" fn(u64) -> u64 that faults.
        let err =
            unsafe { inst.run(no_alt_stack_misaligned_udf as *const () as usize, &[Val::U64(skew)]) }.unwrap_err();
        let f = *err.fault().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(f.kind, FaultKind::IllegalInstruction);
        assert_ne!(f.sp & 15, 0);
        check_again(&mut inst);
    }
}
