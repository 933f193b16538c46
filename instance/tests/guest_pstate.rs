//! aarch64: a guest that changes the PSTATE bits EL0 can write (DIT,
//! data-independent timing; SSBS, speculative store bypass safe; TCO, MTE's
//! tag check override) or enters SME's streaming mode leaves none of it to
//! the host: not after a return, a yield, a fault or a kill, and not inside
//! a host region. Only the bits the CPU has (per `AT_HWCAP`/`AT_HWCAP2`, as
//! the library reads them) are tested; the test says which it could not.
//! qemu-user 7.2 emulates all of them but reports only MTE and SME, so
//! there DIT and SSBS are skipped (the library leaves a bit alone that the
//! kernel does not report, since `mrs` of an absent register is undefined).
#![cfg(target_arch = "aarch64")]

mod common;

use std::time::Duration;

use common::guests::NoAccessPage;
use context::Val;
use instance::{Error, FaultKind, Instance, Outcome};

const DIT: u64 = 1 << 24;
const TCO: u64 = 1 << 25;
const SSBS: u64 = 1 << 12;

/// The PSTATE bits among DIT, SSBS and TCO this CPU reports.
fn present() -> u64 {
    // SAFETY: getauxval only reads the auxiliary vector.
    let (hwcap, hwcap2) = unsafe { (libc::getauxval(libc::AT_HWCAP), libc::getauxval(libc::AT_HWCAP2)) };
    let mut bits = 0;
    if hwcap & (1 << 24) != 0 {
        bits |= DIT;
    }
    if hwcap & (1 << 28) != 0 {
        bits |= SSBS;
    }
    if hwcap2 & (1 << 18) != 0 {
        bits |= TCO;
    }
    bits
}

fn has_sme() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_HWCAP2) & (1 << 23) != 0 }
}

/// The present bits as they are now.
fn pstate() -> u64 {
    let p = present();
    let (mut d, mut s, mut t) = (0u64, 0u64, 0u64);
    // SAFETY: each register is read only if the CPU has it.
    unsafe {
        if p & DIT != 0 {
            core::arch::asm!("mrs {}, s3_3_c4_c2_5", out(reg) d);
        }
        if p & SSBS != 0 {
            core::arch::asm!("mrs {}, s3_3_c4_c2_6", out(reg) s);
        }
        if p & TCO != 0 {
            core::arch::asm!("mrs {}, s3_3_c4_c2_7", out(reg) t);
        }
    }
    (d & DIT) | (s & SSBS) | (t & TCO)
}

/// Writes the present bits to `bits`.
extern "C" fn set_pstate(bits: u64) {
    let p = present();
    // SAFETY: each register is written only if the CPU has it; these bits
    // change timing, speculation and tag checking, not memory safety.
    unsafe {
        if p & DIT != 0 {
            core::arch::asm!("msr s3_3_c4_c2_5, {}", in(reg) bits & DIT);
        }
        if p & SSBS != 0 {
            core::arch::asm!("msr s3_3_c4_c2_6, {}", in(reg) bits & SSBS);
        }
        if p & TCO != 0 {
            core::arch::asm!("msr s3_3_c4_c2_7, {}", in(reg) bits & TCO);
        }
    }
}

/// SVCR (streaming mode bit 0, ZA bit 1), 0 without SME.
fn svcr() -> u64 {
    if !has_sme() {
        return 0;
    }
    let v: u64;
    // SAFETY: SVCR exists (HWCAP2_SME); reading it has no effect.
    unsafe { core::arch::asm!("mrs {}, s3_3_c4_c2_2", out(reg) v) };
    v
}

/// Enters streaming mode with ZA on (`smstart`), if the CPU has SME. Only
/// integer code may follow until the guest ends.
#[inline(always)]
fn smstart() {
    if has_sme() {
        // SAFETY: `smstart` (msr svcrsmza, #3); the vector registers it
        // zeroes are declared clobbered.
        unsafe {
            core::arch::asm!(".inst 0xd503477f", out("v8") _, out("v9") _, out("v10") _, out("v11") _,
                out("v12") _, out("v13") _, out("v14") _, out("v15") _, clobber_abi("C"))
        };
    }
}

/// What the host runs with in these tests: every present bit the opposite
/// of what the guests set.
fn host_bits() -> u64 {
    0
}

fn guest_bits() -> u64 {
    present()
}

/// The host's view after a guest ended: its own bits, no streaming mode,
/// and vector code working (it would be undefined in streaming mode).
fn assert_host_state(what: &str) {
    assert_eq!(pstate(), host_bits(), "{what}: the guest's PSTATE bits followed the host");
    assert_eq!(svcr(), 0, "{what}: the guest's streaming mode followed the host");
    let v = std::hint::black_box([1.5f64, 2.5]);
    assert_eq!(v.iter().sum::<f64>(), 4.0);
}

extern "C" fn set_then_return(bits: u64) -> u64 {
    set_pstate(bits);
    smstart();
    7
}

extern "C" fn set_then_fault(bits: u64, addr: usize) -> u64 {
    set_pstate(bits);
    smstart();
    // SAFETY: the point is to fault on the test's PROT_NONE page.
    unsafe { core::arch::asm!("str xzr, [{}]", in(reg) addr) };
    0
}

extern "C" fn set_then_spin(bits: u64) -> u64 {
    set_pstate(bits);
    smstart();
    // SAFETY: spins until the kill arrives; no memory touched.
    unsafe { core::arch::asm!("2:", "b 2b", options(noreturn, nomem, nostack)) }
}

/// Runs `f` on a thread of its own (the bits are per thread) with the
/// host's bits set.
fn on_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        set_pstate(host_bits());
        assert_host_state("before");
        f();
    })
    .join()
    .unwrap();
}

fn report_what_is_tested() {
    let p = present();
    eprintln!(
        "guest_pstate: DIT {}, SSBS {}, TCO {}, SME {}",
        if p & DIT != 0 { "tested" } else { "not reported by the CPU" },
        if p & SSBS != 0 { "tested" } else { "not reported by the CPU" },
        if p & TCO != 0 { "tested" } else { "not reported by the CPU" },
        if has_sme() { "tested" } else { "not reported by the CPU" },
    );
}

#[test]
fn the_guests_flags_do_not_follow_a_return() {
    common::deadline();
    report_what_is_tested();
    on_thread(|| {
        let mut inst = Instance::new(64 * 1024).unwrap();
        // SAFETY: an extern "C" fn(u64) -> u64 that does not unwind.
        let r = unsafe { inst.run(set_then_return as *const () as usize, &[Val::U64(guest_bits())]) }.unwrap();
        assert_eq!(r.as_u64(), 7);
        assert_host_state("return");
    });
}

#[test]
fn the_guests_flags_do_not_follow_a_fault() {
    common::deadline();
    on_thread(|| {
        let page = NoAccessPage::new();
        let mut inst = Instance::new(64 * 1024).unwrap();
        for _ in 0..3 {
            let args = [Val::U64(guest_bits()), Val::USize(page.0)];
            // SAFETY: an extern "C" fn(u64, usize) -> u64 that faults.
            let err = unsafe { inst.run(set_then_fault as *const () as usize, &args) }.unwrap_err();
            assert_eq!(err.fault().map(|f| (f.kind, f.addr)), Some((FaultKind::MemoryFault, page.0)), "{err:?}");
            assert_host_state("fault");
            inst.reset().unwrap();
        }
    });
}

#[test]
fn the_guests_flags_do_not_follow_a_kill() {
    common::deadline();
    on_thread(|| {
        let mut inst = Instance::new(64 * 1024).unwrap();
        inst.set_timeout(Some(Duration::from_millis(20)));
        // SAFETY: an extern "C" fn(u64) -> u64, terminable (a raw entry).
        let r = unsafe { inst.run(set_then_spin as *const () as usize, &[Val::U64(guest_bits())]) };
        assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
        assert_host_state("kill");
    });
}

#[test]
fn the_guests_flags_do_not_follow_a_yield_or_reach_a_host_region() {
    common::deadline();
    on_thread(|| {
        let mut inst = Instance::new(256 * 1024).unwrap();
        let out = inst
            .start_closure(|| {
                set_pstate(guest_bits());
                let in_region = instance::host_region(pstate);
                let in_guest_after_region = pstate();
                set_pstate(guest_bits());
                instance::yield_u64(1).unwrap();
                // The guest's own bits are the guest's business after a
                // resume: it set them again before yielding, the resume
                // gives the guest what the host switched in with.
                (in_region, in_guest_after_region)
            })
            .unwrap();
        assert!(matches!(out, Outcome::Yielded(_)));
        assert_host_state("yield");
        let (in_region, after) = inst.resume::<(u64, u64), u64>(0).unwrap().returned().unwrap();
        assert_eq!(in_region, host_bits(), "a host region ran with the guest's PSTATE bits");
        // Host regions put back the host's bits on entry and do not give
        // the guest its own back: the guest sees the host's after it.
        assert_eq!(after, host_bits());
        assert_host_state("return after resume");
    });
}
