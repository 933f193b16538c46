//! Review 2: host code in a host region (and on_host_stack, whose fresh
//! context copies the guest's MXCSR at its init) runs with the guest's
//! MXCSR control bits. A guest (C/JIT code; inline asm here) that unmasks
//! an SSE exception makes ordinary host float code in a region raise
//! SIGFPE, a host fault that kills the process. AC and DF are cleared on
//! region entry; the FP controls are not.
//!
//! aarch64 has no FP traps to unmask here (qemu implements none, and most
//! cores none either): there the test checks the region runs with the
//! host's FPCR and gives the guest its own back.
mod common;

use std::hint::black_box;

#[cfg(target_arch = "x86_64")]
fn unmask_divide_by_zero() {
    let mut csr: u32 = 0;
    // SAFETY: stores and loads MXCSR (only the divide-by-zero mask changes),
    // standing in for guest machine code.
    unsafe {
        core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr);
        csr &= !(1 << 9); // ZM: divide-by-zero masked -> unmasked
        core::arch::asm!("ldmxcsr [{}]", in(reg) &csr);
    }
}

#[cfg(target_arch = "x86_64")]
fn case(which: &str) {
    let mut inst = instance::Instance::new(64 * 1024).unwrap();
    let r = inst.run_closure(|| {
        unmask_divide_by_zero();
        let q = match which {
            "region" => instance::host_region(|| black_box(1.0f64) / black_box(0.0f64)),
            _ => instance::on_host_stack(|| black_box(1.0f64) / black_box(0.0f64)),
        };
        // The guest's own control comes back after the region.
        let mut csr: u32 = 0;
        // SAFETY: stores MXCSR into a local.
        unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr) };
        assert_eq!(csr & (1 << 9), 0, "the guest's unmasked divide-by-zero was not restored");
        q
    });
    assert_eq!(r.unwrap(), f64::INFINITY);
    println!("run returned infinity");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn host_region_inherits_guest_fp_exception_masks() {
    if let Some(c) = common::child_case() {
        case(&c);
        return;
    }
    for which in ["region", "host_stack"] {
        let out = common::run_child("host_region_inherits_guest_fp_exception_masks", which);
        println!("{which}: status {:?} stdout {:?} stderr {:?}", out.status, out.stdout.lines().last(), out.stderr);
        assert!(out.status.success(), "{which}: host code in the region died of the guest's MXCSR");
    }
}

#[test]
#[cfg(target_arch = "aarch64")]
fn host_regions_run_with_the_hosts_fpcr() {
    use test_support::fp::{FPCR_FZ, FPCR_ROUND_DOWN, fpcr, set_fpcr};
    // On a thread of its own: the FPCR set here must not leak to others.
    std::thread::spawn(|| {
        let host = 1 << 25; // default NaN, round to nearest
        set_fpcr(host);
        let guest = FPCR_FZ | FPCR_ROUND_DOWN;
        let mut inst = instance::Instance::new(64 * 1024).unwrap();
        let seen = inst
            .run_closure(move || {
                set_fpcr(guest);
                let in_region = instance::host_region(fpcr);
                let after_region = fpcr();
                let on_host = instance::on_host_stack(fpcr);
                let after_host_stack = fpcr();
                // Round down in the guest: 1/10 comes out below the nearest
                // double (0.1 rounds up to nearest).
                let tenth = black_box(1.0f64) / black_box(10.0f64);
                (in_region, after_region, on_host, after_host_stack, tenth)
            })
            .unwrap();
        assert_eq!(seen.0, host, "host region ran with the guest's FPCR");
        assert_eq!(seen.1, guest, "the guest's FPCR was not given back after the region");
        assert_eq!(seen.2, host, "on_host_stack ran with the guest's FPCR");
        assert_eq!(seen.3, guest, "the guest's FPCR was not given back after on_host_stack");
        assert!(seen.4 < 0.1, "the guest's rounding mode was not in effect");
        assert_eq!(fpcr(), host, "the host's FPCR changed");
    })
    .join()
    .unwrap();
}
