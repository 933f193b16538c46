//! Review 2: host code in a host region (and on_host_stack, whose fresh
//! context copies the guest's MXCSR at its init) runs with the guest's
//! MXCSR control bits. A guest (C/JIT code; inline asm here) that unmasks
//! an SSE exception makes ordinary host float code in a region raise
//! SIGFPE, a host fault that kills the process. AC and DF are cleared on
//! region entry; the FP controls are not.
mod common;

use std::hint::black_box;

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
