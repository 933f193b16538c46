//! ABI probes (run by `cargo xtask abi` and with the workspace tests): for
//! 0 to 16 arguments spilled on the stack, an assembly child records its
//! entry state and checks its own callee-saved registers, MXCSR and x87
//! control word across a switch, while the host does the same on its side.
//!
//! What is demanded, per spill count:
//! * at entry, rsp + 8 is 16-byte aligned and is where the first stack
//!   argument sits, just below the stack top (after any padding);
//! * rdi..r9, xmm0..xmm7 (upper halves zero), al and the stack arguments are
//!   exactly the argument plan's;
//! * the child starts with the MXCSR control bits and x87 control word the
//!   thread had at `init` (not those of whoever switches to it);
//! * rbx, rbp, r12–r15, MXCSR control bits, x87 control word and the stack
//!   survive every switch, on both sides, including the child's return;
//! * the child's rax, rdx and xmm0 are collected whole.

mod common;

use std::ffi::c_void;

use context::{ArgPlan, Context, ContextHandle, Val};
use context_tests_c::consts::{
    LOST_MXCSR, LOST_RBX, PAT_RET_RAX, PAT_RET_RDX, PAT_RET_XMM_HI, PAT_RET_XMM_LO, PROBE_MAX_SPILL,
};
use context_tests_c::ffi::{self, CtcProbe};
use context_tests_c::{DEFAULT_FP_CONTROL, Stack, fp_control_bits, set_fp_control};

use common::{Shared, regs_of};

const MXCSR_CONTROL: u32 = context_sys::layout::MXCSR_CONTROL_MASK as u32;

/// MXCSR values with every rounding mode, and flush-to-zero plus
/// denormals-are-zero on half of them; all exceptions stay masked.
fn mxcsr_variant(k: usize) -> u32 {
    0x1f80 | ((k as u32 & 3) << 13) | if k & 4 != 0 { 0x8040 } else { 0 }
}

/// x87 control words with every precision and rounding control.
fn fpucw_variant(k: usize) -> u16 {
    [0x037f, 0x027f, 0x0f7f, 0x077f, 0x0b7f, 0x007f][k % 6]
}

/// The probe's arguments: the probe pointer and five integers fill rdi..r9,
/// `nfp` floats go in xmm registers, and `spill` more go on the stack
/// (floats among them once the xmm registers are full).
fn probe_args(probe: *mut CtcProbe, spill: usize, nfp: usize) -> Vec<Val> {
    let mut args = vec![Val::CPtr(probe.cast_const().cast::<c_void>())];
    args.extend((1..6u64).map(|i| Val::U64(0x0101_0101_0101_0101 * i)));
    args.extend((0..nfp as u64).map(|i| {
        if i % 2 == 0 {
            Val::F64(f64::from_bits(0x4000_0000_0000_0000 | i))
        } else {
            Val::F32(f32::from_bits(0x7fa0_0000 | i as u32))
        }
    }));
    args.extend((0..spill as u64).map(|j| {
        if nfp == 8 && j % 2 == 1 {
            Val::F64(f64::from_bits(0xfff0_0000_0000_0001 + j))
        } else {
            Val::I64(-(j as i64) - 1)
        }
    }));
    args
}

fn probe_once(spill: usize, k: usize) {
    let nfp = [0, 1, 5, 8][k % 4];
    let what = format!("spill {spill}, {nfp} xmm arguments, variant {k}");
    let mut stack = Stack::new(32 * 1024);
    let top = stack.as_mut_slice().as_ptr_range().end as u64;
    let mut host = ContextHandle::new();
    let mut child = ContextHandle::new();
    let seed = 0x5eed_0000_0000_0000 ^ ((spill as u64) << 8) ^ k as u64;
    let probe = Shared::new(CtcProbe::new(regs_of(&child), regs_of(&host)));
    probe.update(|p| {
        p.seed = seed;
        p.child_mxcsr = mxcsr_variant(k + 1);
        p.child_fpucw = fpucw_variant(k + 1);
        p.nspill = spill as u64;
    });
    let args = probe_args(probe.ptr(), spill, nfp);
    let plan = ArgPlan::new(&args);
    assert_eq!(plan.spilled, spill, "{what}: the test's own argument list is wrong");

    // Prepare the child under one control state, switch to it from another.
    let init_ctl = (mxcsr_variant(k + 2), fpucw_variant(k + 2));
    set_fp_control(init_ctl.0, init_ctl.1);
    let entry = ffi::ctc_probe_child as *const () as usize;
    let r = Context::init(stack.as_mut_slice(), &mut host, &mut child, entry, &args);
    set_fp_control(DEFAULT_FP_CONTROL.0, DEFAULT_FP_CONTROL.1);
    r.expect("valid probe child");

    let host_ctl = (mxcsr_variant(k + 3), fpucw_variant(k + 3));
    // SAFETY: both contexts are heap-pinned, the stack outlives the child,
    // and the child switches back to `host` once before returning to it.
    let lost = unsafe { ffi::ctc_swap_checked(regs_of(&host), regs_of(&child), seed ^ 1, host_ctl.0, host_ctl.1) };
    assert_eq!(lost, 0, "{what}: the host lost state across the child's first run: {lost:#x}");

    let p = probe.get();
    assert_eq!((p.entry_rsp + 8) % 16, 0, "{what}: rsp + 8 not 16-aligned at entry (rsp {:#x})", p.entry_rsp);
    assert_eq!(
        p.entry_rsp + 8,
        top - plan.padding as u64 - 8 * spill as u64,
        "{what}: the first stack argument is not just below the top"
    );
    assert_eq!(p.gp, plan.gp, "{what}: rdi..r9 at entry");
    for i in 0..nfp {
        assert_eq!(p.xmm[i], [plan.fp[i], 0], "{what}: xmm{i} at entry");
    }
    let al = p.rax & 0xff;
    assert!(al as usize >= nfp && al <= 8, "{what}: al = {al} does not bound the {nfp} vector arguments");
    assert_eq!(p.entry_mxcsr & MXCSR_CONTROL, init_ctl.0 & MXCSR_CONTROL, "{what}: MXCSR at entry is not init's");
    assert_eq!(p.entry_fpucw, init_ctl.1, "{what}: x87 control word at entry is not init's");
    let spilled: Vec<u64> = ArgPlan::spilled_values(&args).collect();
    assert_eq!(&p.spilled[..spill], &spilled[..], "{what}: stack arguments at entry");

    let host_ctl = (mxcsr_variant(k + 5), fpucw_variant(k + 4));
    // SAFETY: as above; this time the child returns, to `host`.
    let lost = unsafe { ffi::ctc_swap_checked(regs_of(&host), regs_of(&child), seed ^ 2, host_ctl.0, host_ctl.1) };
    assert_eq!(lost, 0, "{what}: the host lost state across the child's return: {lost:#x}");
    let p = probe.get();
    assert_eq!(p.child_mask, 0, "{what}: the child lost state across its switch: {:#x}", p.child_mask);
    assert_eq!(child.get_retval_gp(0), seed ^ PAT_RET_RAX, "{what}: rax");
    assert_eq!(child.get_retval_gp(1), seed ^ PAT_RET_RDX, "{what}: rdx");
    assert_eq!(child.get_untyped_retval().fp_bits(), (seed ^ PAT_RET_XMM_LO, seed ^ PAT_RET_XMM_HI), "{what}: xmm0");
    assert_eq!(fp_control_bits(), DEFAULT_FP_CONTROL, "{what}: the test thread's control state changed");
}

#[test]
fn entry_state_and_callee_saved_state_hold_for_spill_counts_0_to_16() {
    const { assert!(PROBE_MAX_SPILL >= 16) };
    for spill in 0..=16 {
        for k in 0..6 {
            probe_once(spill, k);
        }
    }
}

#[test]
fn the_checked_swap_notices_a_spoiled_register_and_mxcsr() {
    // A negative control: if the saved state is damaged, the probe says so.
    let mut stack = Stack::new(32 * 1024);
    let mut host = ContextHandle::new();
    let host_regs = regs_of(&host);
    let args = [Val::CPtr(host_regs.cast_const().cast()), Val::U64(0x40), Val::U32(0x2000)];
    let entry = ffi::ctc_corrupt_and_set as *const () as usize;
    let child = ContextHandle::create_and_init(stack.as_mut_slice(), &mut host, entry, &args).expect("valid child");
    // SAFETY: the child continues in `host`, which this call has just saved
    // (with rbx flipped, still a valid value for this frame to find wrong).
    let lost = unsafe { ffi::ctc_swap_checked(host_regs, regs_of(&child), 77, 0x1f80, 0x037f) };
    assert_eq!(lost, LOST_RBX | LOST_MXCSR);
    assert_eq!(fp_control_bits(), DEFAULT_FP_CONTROL);
}
