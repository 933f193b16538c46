//! ABI probes (run by `cargo xtask abi` and with the workspace tests): for
//! 0 to 16 arguments spilled on the stack, an assembly child records its
//! entry state and checks its own callee-saved registers and floating-point
//! control state across a switch, while the host does the same on its side.
//!
//! What is demanded, per spill count:
//! * at entry, the first stack argument is 16-byte aligned (x86_64: at
//!   rsp + 8, above the return address; aarch64: at sp) and sits just
//!   below the stack top (after any padding);
//! * the integer argument registers (rdi..r9; x0..x7), the floating ones
//!   (xmm0..xmm7; q0..q7, upper halves zero), on x86_64 al, and the stack
//!   arguments are exactly the argument plan's;
//! * the child starts with the control state (MXCSR control bits and x87
//!   control word; FPCR) the thread had at `init`, not that of whoever
//!   switches to it;
//! * the callee-saved registers (rbx, rbp, r12–r15; x19–x28, fp, d8–d15),
//!   the control state and the stack survive every switch, on both sides,
//!   including the child's return;
//! * the child's return registers (rax, rdx, xmm0; x0, x1, q0) are
//!   collected whole.

mod common;

use std::ffi::c_void;

use context::{ArgPlan, Context, ContextHandle, FP_ARG_REGS, GP_ARG_REGS, Val};
use context_tests_c::consts::{PROBE_ARGS_ABOVE_SP, PROBE_MAX_SPILL};
use context_tests_c::ffi::{self, CtcProbe};
use context_tests_c::{DEFAULT_FP_CONTROL, FpControl, Stack, fp_control_bits, set_fp_control};

use common::{Shared, regs_of};

// The probe's return patterns and the bits of the negative control, by
// each architecture's register names.
#[cfg(target_arch = "aarch64")]
use context_tests_c::consts::{
    LOST_FPCR as LOST_CONTROL, LOST_X19 as LOST_FIRST_REG, PAT_RET_V0_HI as RET_FP_HI, PAT_RET_V0_LO as RET_FP_LO,
    PAT_RET_X0 as RET_GP0, PAT_RET_X1 as RET_GP1,
};
#[cfg(target_arch = "x86_64")]
use context_tests_c::consts::{
    LOST_MXCSR as LOST_CONTROL, LOST_RBX as LOST_FIRST_REG, PAT_RET_RAX as RET_GP0, PAT_RET_RDX as RET_GP1,
    PAT_RET_XMM_HI as RET_FP_HI, PAT_RET_XMM_LO as RET_FP_LO,
};

/// A bit of the control state that `ctc_corrupt_and_set` flips: x86_64 MXCSR
/// bit 13 (rounding down), aarch64 FPCR bit 22 (RMode: toward plus
/// infinity).
#[cfg(target_arch = "x86_64")]
const CONTROL_FLIP: u32 = 0x2000;
#[cfg(target_arch = "aarch64")]
const CONTROL_FLIP: u32 = 1 << 22;

/// The probe's arguments: the probe pointer and more integers fill every
/// integer argument register, `nfp` floats go in floating registers, and
/// `spill` more go on the stack (floats among them once the floating
/// registers are full).
fn probe_args(probe: *mut CtcProbe, spill: usize, nfp: usize) -> Vec<Val> {
    let mut args = vec![Val::CPtr(probe.cast_const().cast::<c_void>())];
    args.extend((1..GP_ARG_REGS as u64).map(|i| Val::U64(0x0101_0101_0101_0101 * i)));
    args.extend((0..nfp as u64).map(|i| {
        if i % 2 == 0 {
            Val::F64(f64::from_bits(0x4000_0000_0000_0000 | i))
        } else {
            Val::F32(f32::from_bits(0x7fa0_0000 | i as u32))
        }
    }));
    args.extend((0..spill as u64).map(|j| {
        if nfp == FP_ARG_REGS && j % 2 == 1 {
            Val::F64(f64::from_bits(0xfff0_0000_0000_0001 + j))
        } else {
            Val::I64(-(j as i64) - 1)
        }
    }));
    args
}

/// On x86_64, al at entry must bound the vector arguments (the child is
/// variadic); aarch64 has no such register.
#[cfg(target_arch = "x86_64")]
fn check_vector_count(p: &CtcProbe, nfp: usize, what: &str) {
    let al = p.rax & 0xff;
    assert!(al as usize >= nfp && al <= 8, "{what}: al = {al} does not bound the {nfp} vector arguments");
}
#[cfg(target_arch = "aarch64")]
fn check_vector_count(_: &CtcProbe, _: usize, _: &str) {}

fn probe_once(spill: usize, k: usize) {
    let nfp = [0, 1, 5, FP_ARG_REGS][k % 4];
    let what = format!("spill {spill}, {nfp} floating register arguments, variant {k}");
    let mut stack = Stack::new(32 * 1024);
    let top = stack.as_mut_slice().as_ptr_range().end as u64;
    let mut host = ContextHandle::new();
    let mut child = ContextHandle::new();
    let seed = 0x5eed_0000_0000_0000 ^ ((spill as u64) << 8) ^ k as u64;
    let probe = Shared::new(CtcProbe::new(regs_of(&child), regs_of(&host)));
    probe.update(|p| {
        p.seed = seed;
        p.set_child_control(FpControl::variant(k + 1));
        p.nspill = spill as u64;
    });
    let args = probe_args(probe.ptr(), spill, nfp);
    let plan = ArgPlan::new(&args);
    assert_eq!(plan.spilled, spill, "{what}: the test's own argument list is wrong");

    // Prepare the child under one control state, switch to it from another.
    let init_ctl = FpControl::variant(k + 2);
    set_fp_control(init_ctl);
    let entry = ffi::ctc_probe_child as *const () as usize;
    let r = Context::init(stack.as_mut_slice(), &mut host, &mut child, entry, &args);
    set_fp_control(DEFAULT_FP_CONTROL);
    r.expect("valid probe child");

    // SAFETY: both contexts are heap-pinned, the stack outlives the child,
    // and the child switches back to `host` once before returning to it.
    let lost = unsafe { ffi::swap_checked(regs_of(&host), regs_of(&child), seed ^ 1, FpControl::variant(k + 3)) };
    assert_eq!(lost, 0, "{what}: the host lost state across the child's first run: {lost:#x}");

    let p = probe.get();
    let first_arg = p.entry_sp() + PROBE_ARGS_ABOVE_SP;
    assert_eq!(first_arg % 16, 0, "{what}: the stack arguments are not 16-aligned at entry (sp {:#x})", p.entry_sp());
    assert_eq!(
        first_arg,
        top - plan.padding as u64 - 8 * spill as u64,
        "{what}: the first stack argument is not just below the top"
    );
    assert_eq!(p.gp, plan.gp, "{what}: integer argument registers at entry");
    for i in 0..nfp {
        assert_eq!(p.fp_regs()[i], [plan.fp[i], 0], "{what}: floating register {i} at entry");
    }
    check_vector_count(&p, nfp, &what);
    assert_eq!(
        p.entry_control().control_bits(),
        init_ctl.control_bits(),
        "{what}: control state at entry is not init's"
    );
    let spilled: Vec<u64> = ArgPlan::spilled_values(&args).collect();
    assert_eq!(&p.spilled[..spill], &spilled[..], "{what}: stack arguments at entry");

    // SAFETY: as above; this time the child returns, to `host`.
    let lost = unsafe { ffi::swap_checked(regs_of(&host), regs_of(&child), seed ^ 2, FpControl::variant(k + 5)) };
    assert_eq!(lost, 0, "{what}: the host lost state across the child's return: {lost:#x}");
    let p = probe.get();
    assert_eq!(p.child_mask, 0, "{what}: the child lost state across its switch: {:#x}", p.child_mask);
    assert_eq!(child.get_retval_gp(0), seed ^ RET_GP0, "{what}: first integer return register");
    assert_eq!(child.get_retval_gp(1), seed ^ RET_GP1, "{what}: second integer return register");
    assert_eq!(
        child.get_untyped_retval().fp_bits(),
        (seed ^ RET_FP_LO, seed ^ RET_FP_HI),
        "{what}: floating return register"
    );
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
fn the_checked_swap_notices_a_spoiled_register_and_control_state() {
    // A negative control: if the saved state is damaged, the probe says so.
    let mut stack = Stack::new(32 * 1024);
    let mut host = ContextHandle::new();
    let host_regs = regs_of(&host);
    let args = [Val::CPtr(host_regs.cast_const().cast()), Val::U64(0x40), Val::U32(CONTROL_FLIP)];
    let entry = ffi::ctc_corrupt_and_set as *const () as usize;
    let child = ContextHandle::create_and_init(stack.as_mut_slice(), &mut host, entry, &args).expect("valid child");
    // SAFETY: the child continues in `host`, which this call has just saved
    // (with rbx [x19] flipped, still a valid value for this frame to find
    // wrong).
    let lost = unsafe { ffi::swap_checked(host_regs, regs_of(&child), 77, DEFAULT_FP_CONTROL) };
    assert_eq!(lost, LOST_FIRST_REG | LOST_CONTROL);
    assert_eq!(fp_control_bits(), DEFAULT_FP_CONTROL);
}
