//! Review 4, aarch64 with SME: TPIDR2_EL0 and ZA, the SME state a guest can
//! leave behind besides streaming mode.
//!
//! TPIDR2_EL0 is the SME ABI's lazy-save pointer: non-null means "ZA holds
//! live data whose owner's save block is at this address", and the ABI's
//! support routines (`__arm_tpidr2_save`, `__arm_za_disable`, which glibc's
//! `longjmp` and the unwinder call) store ZA through the block it points at.
//! A guest that leaves its own (or a made-up) pointer there must not hand
//! it to the host: the host's next such call would write through a
//! guest-chosen pointer with ZA already off. And the host's own lazy-save
//! state (ZA on, TPIDR2 = its block) must survive a run that did not touch
//! ZA: turning ZA off under it loses the host's ZA contents (its caller,
//! seeing TPIDR2 still set, does not restore them).
//!
//! Skipped (with a message) where the CPU reports no SME; qemu-user's
//! default CPU has it.
#![cfg(target_arch = "aarch64")]

mod common;

use std::time::Duration;

use context::Val;
use instance::{Error, FaultKind, Instance, Outcome};

fn has_sme() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_HWCAP2) & (1 << 23) != 0 }
}

fn tpidr2() -> u64 {
    let v: u64;
    // SAFETY: TPIDR2_EL0 exists (the callers checked SME); reading it has
    // no effect.
    unsafe { core::arch::asm!("mrs {}, s3_3_c13_c0_5", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn set_tpidr2(v: u64) {
    // SAFETY: TPIDR2_EL0 exists; it is a plain thread register that only
    // the SME ABI's routines interpret, and these tests call none of them.
    unsafe { core::arch::asm!("msr s3_3_c13_c0_5, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

fn svcr() -> u64 {
    let v: u64;
    // SAFETY: SVCR exists (SME); reading it has no effect.
    unsafe { core::arch::asm!("mrs {}, s3_3_c4_c2_2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// A made-up save block address a hostile guest leaves in TPIDR2.
const GUEST_BLOCK: u64 = 0x0bad_0000_0000;

/// Runs `f` on a thread of its own with TPIDR2 = 0 and ZA off, and checks
/// the host's TPIDR2 and SVCR after it.
fn on_thread(what: &'static str, f: impl FnOnce() + Send + 'static) {
    common::deadline();
    if !has_sme() {
        eprintln!("{what}: the CPU reports no SME, not tested");
        return;
    }
    std::thread::spawn(move || {
        assert_eq!(tpidr2(), 0);
        assert_eq!(svcr(), 0);
        f();
        let (t, s) = (tpidr2(), svcr());
        // Leave the thread clean whatever the outcome.
        set_tpidr2(0);
        assert_eq!(t, 0, "{what}: the guest's TPIDR2 (lazy-save pointer) followed the host");
        assert_eq!(s, 0, "{what}: the guest's SME state followed the host");
    })
    .join()
    .unwrap();
}

extern "C" fn set_tpidr2_then_return(v: u64) -> u64 {
    set_tpidr2(v);
    7
}

extern "C" fn set_tpidr2_then_fault(v: u64) -> u64 {
    set_tpidr2(v);
    // SAFETY: faults on purpose.
    unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
    0
}

extern "C" fn set_tpidr2_then_spin(v: u64) -> u64 {
    set_tpidr2(v);
    // SAFETY: spins until killed; no memory touched.
    unsafe { core::arch::asm!("2:", "b 2b", options(noreturn, nomem, nostack)) }
}

/// Turns ZA on (`smstart za`) without streaming mode, so the code after it
/// is ordinary.
fn za_on() {
    // SAFETY: `smstart za` (msr svcrza, #1) only enables (and zeroes) ZA.
    unsafe { core::arch::asm!(".inst 0xd503457f", options(nomem, nostack, preserves_flags)) };
}

extern "C" fn za_on_with_tpidr2_then_return(v: u64) -> u64 {
    za_on();
    set_tpidr2(v);
    7
}

#[test]
fn a_returning_guests_tpidr2_does_not_follow_the_host() {
    on_thread("return", || {
        let mut inst = Instance::new(64 * 1024).unwrap();
        // SAFETY: an extern "C" fn(u64) -> u64.
        let r = unsafe { inst.run(set_tpidr2_then_return as *const () as usize, &[Val::U64(GUEST_BLOCK)]) };
        assert_eq!(r.unwrap().as_u64(), 7);
    });
    on_thread("return with ZA on", || {
        let mut inst = Instance::new(64 * 1024).unwrap();
        // SAFETY: an extern "C" fn(u64) -> u64.
        let r = unsafe { inst.run(za_on_with_tpidr2_then_return as *const () as usize, &[Val::U64(GUEST_BLOCK)]) };
        assert_eq!(r.unwrap().as_u64(), 7);
    });
}

#[test]
fn a_faulting_guests_tpidr2_does_not_follow_the_host() {
    on_thread("fault", || {
        let mut inst = Instance::new(64 * 1024).unwrap();
        // SAFETY: an extern "C" fn(u64) -> u64 that faults.
        let err =
            unsafe { inst.run(set_tpidr2_then_fault as *const () as usize, &[Val::U64(GUEST_BLOCK)]) }.unwrap_err();
        assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::IllegalInstruction));
    });
}

#[test]
fn a_killed_guests_tpidr2_does_not_follow_the_host() {
    on_thread("kill", || {
        let mut inst = Instance::new(64 * 1024).unwrap();
        inst.set_timeout(Some(Duration::from_millis(20)));
        // SAFETY: an extern "C" fn(u64) -> u64 that spins; terminable.
        let r = unsafe { inst.run(set_tpidr2_then_spin as *const () as usize, &[Val::U64(GUEST_BLOCK)]) };
        assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
    });
}

#[test]
fn a_yielding_guests_tpidr2_does_not_follow_the_host_nor_reach_a_host_region() {
    on_thread("yield", || {
        let mut inst = Instance::new(256 * 1024).unwrap();
        let out = inst
            .start_closure(|| {
                set_tpidr2(GUEST_BLOCK);
                let in_region = instance::host_region(tpidr2);
                set_tpidr2(GUEST_BLOCK);
                instance::yield_u64(1).unwrap();
                in_region
            })
            .unwrap();
        assert!(matches!(out, Outcome::Yielded(_)));
        assert_eq!(tpidr2(), 0, "the yielded guest's TPIDR2 followed the host");
        let in_region = inst.resume::<u64, u64>(0).unwrap().returned().unwrap();
        assert_eq!(in_region, 0, "a host region ran with the guest's TPIDR2");
    });
}

/// The SME ABI's lazy-save block (`TPIDR2_EL0` points at it).
#[repr(C, align(16))]
struct Tpidr2Block {
    za_save_buffer: u64,
    num_za_save_slices: u16,
    reserved: [u8; 6],
}

/// Streaming vector length in bytes (`rdsvl x0, #1`).
fn svl() -> usize {
    let v: u64;
    // SAFETY: `rdsvl x0, #1` reads the streaming vector length; SME exists.
    unsafe { core::arch::asm!(".inst 0x04bf5820", out("x0") v, options(nomem, nostack, preserves_flags)) };
    v as usize
}

/// Loads ZA's horizontal slice 0 from `src` (`ldr za[w12, 0], [x0]`).
fn load_za_slice0(src: &[u8]) {
    assert!(src.len() >= svl());
    // SAFETY: ZA is on (the caller's duty); reads SVL bytes of `src`.
    unsafe { core::arch::asm!(".inst 0xe1000000", in("x0") src.as_ptr(), in("w12") 0u32, options(nostack, readonly)) };
}

/// Stores ZA's horizontal slice 0 into `dst` (`str za[w12, 0], [x0]`).
fn store_za_slice0(dst: &mut [u8]) {
    assert!(dst.len() >= svl());
    // SAFETY: ZA is on (the caller's duty); writes SVL bytes of `dst`.
    unsafe { core::arch::asm!(".inst 0xe1200000", in("x0") dst.as_mut_ptr(), in("w12") 0u32, options(nostack)) };
}

extern "C" fn plain_guest() -> u64 {
    41
}

extern "C" fn faulting_guest() -> u64 {
    // SAFETY: faults on purpose.
    unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
    0
}

/// Streaming mode on (ZA untouched: it stays as the host had it), then a
/// fault: the way back leaves streaming mode, the host's ZA must survive.
extern "C" fn streaming_then_fault() -> u64 {
    // SAFETY: `smstart sm`; only the udf follows.
    unsafe { core::arch::asm!(".inst 0xd503437f", "udf #0", options(nomem, nostack, noreturn)) }
}

#[test]
fn the_hosts_dormant_za_survives_a_guest_that_does_not_touch_za() {
    common::deadline();
    if !has_sme() {
        eprintln!("dormant ZA: the CPU reports no SME, not tested");
        return;
    }
    let guests: [(&str, extern "C" fn() -> u64); 3] =
        [("return", plain_guest), ("fault", faulting_guest), ("streaming fault", streaming_then_fault)];
    for (what, guest) in guests {
        dormant_za_survives(what, guest);
    }
}

fn dormant_za_survives(what: &'static str, guest: extern "C" fn() -> u64) {
    std::thread::spawn(move || {
        let n = svl();
        let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        let mut save = vec![0u8; n * n];
        // The host has ZA live and a lazy save set up, as a compiler does
        // around a call from a function with ZA state to one without (such
        // as `Instance::run`).
        za_on();
        load_za_slice0(&data);
        let block =
            Tpidr2Block { za_save_buffer: save.as_mut_ptr() as u64, num_za_save_slices: n as u16, reserved: [0; 6] };
        let block_addr = &block as *const Tpidr2Block as u64;
        set_tpidr2(block_addr);
        let mut inst = Instance::new(64 * 1024).unwrap();
        // SAFETY: an extern "C" fn() -> u64 (that may fault).
        let r = unsafe { inst.run(guest as usize, &[]) };
        let (t, s) = (tpidr2(), svcr());
        let mut back = vec![0u8; n];
        if s & 2 != 0 {
            store_za_slice0(&mut back);
        }
        // Clean up: no lazy save pending, ZA off.
        set_tpidr2(0);
        // SAFETY: `smstop za` turns ZA off.
        unsafe { core::arch::asm!(".inst 0xd503447f", options(nomem, nostack, preserves_flags)) };
        match r {
            Ok(v) => assert_eq!(v.as_u64(), 41, "{what}"),
            Err(e) => assert_eq!(e.fault().map(|f| f.kind), Some(FaultKind::IllegalInstruction), "{what}"),
        }
        assert_eq!(t, block_addr, "{what}: the host's lazy-save pointer changed");
        assert_eq!(s, 2, "{what}: ZA was turned off under the host's pending lazy save (its contents are lost), or streaming mode left on");
        assert_eq!(back, data, "{what}: the host's ZA contents changed");
        let _ = &save;
    })
    .join()
    .unwrap();
}
