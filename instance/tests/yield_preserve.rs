//! 100,000 yield/resume round trips keep what the ABI promises both sides:
//! on x86_64 rbx, rbp, r12–r15, rsp, the MXCSR control bits and the x87
//! control word; on aarch64 x19–x28, fp, sp, d8–d15 and FPCR.
//!
//! An assembly probe (test-support's) loads a pattern into every
//! callee-saved register and both control registers, calls a function (the
//! guest's yield, or the host's resume), and stores what it finds when that
//! call returns. The guest and the host use different patterns, changing
//! every round.

mod common;

use std::ffi::c_void;

use context::{UntypedRetVal, Val};
use instance::{Instance, Outcome, yield_u64};
use test_support::probe::{Pattern, probe_call};

/// The probe around `f(arg)` (test-support's, shared with context's
/// preserve tests): loads `pattern` into the callee-saved and control
/// registers, calls, and stores what it finds on return into `found`.
///
/// # Safety
///
/// `f` must not unwind; `arg`, `pattern` and `found` must stay valid until
/// the call returns.
unsafe fn inst_test_probe_call(
    f: extern "C" fn(*mut c_void),
    arg: *mut c_void,
    pattern: *const Pattern,
    found: *mut Pattern,
) {
    // SAFETY: `f` takes one pointer (it ignores the second argument
    // register) and does not unwind; the caller keeps the pointers valid.
    unsafe { probe_call(f as *const (), arg, std::ptr::null(), pattern, found) }
}

/// Distinctive word `k` of round `i` of side `seed`.
fn word(i: u64, seed: u64, k: usize) -> u64 {
    (seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(k as u32 * 11) ^ (k as u64) << 56
}

/// A pattern for round `i` of side `seed`: distinctive words, and control
/// registers with every exception masked but rounding modes, flush-to-zero,
/// denormals-are-zero (MXCSR) and precision and rounding control (x87)
/// varying.
#[cfg(target_arch = "x86_64")]
fn pattern(i: u64, seed: u64) -> Pattern {
    let gp = std::array::from_fn(|k| word(i, seed, k));
    let r = i.wrapping_add(seed);
    let mxcsr =
        0x1f80 | (((r & 3) as u32) << 13) | if r & 4 != 0 { 0x8000 } else { 0 } | if r & 8 != 0 { 0x40 } else { 0 };
    let pc = [0u16, 2, 3][(r % 3) as usize];
    let fpucw = 0x007f | (pc << 8) | ((((r >> 4) & 3) as u16) << 10);
    Pattern { gp, mxcsr, fpucw, pad: 0 }
}

/// A pattern for round `i` of side `seed`: distinctive words in the general
/// and d registers, and FPCR with its rounding mode, flush-to-zero, default
/// NaN and alternative half-precision bits varying.
#[cfg(target_arch = "aarch64")]
fn pattern(i: u64, seed: u64) -> Pattern {
    let gp = std::array::from_fn(|k| word(i, seed, k));
    let fp = std::array::from_fn(|k| word(i, seed, k + 11));
    let r = i.wrapping_add(seed);
    let fpcr = (r << 22) & test_support::fp::FPCR_TESTABLE;
    Pattern { gp, fp, fpcr }
}

const GUEST_SEED: u64 = 0x6a09_e667_f3bc_c908;
const HOST_SEED: u64 = 0xbb67_ae85_84ca_a73b;

struct GuestStep {
    value: u64,
    resumed: u64,
}

extern "C" fn guest_yield(arg: *mut c_void) {
    // SAFETY: the guest passes its own live GuestStep.
    let step = unsafe { &mut *arg.cast::<GuestStep>() };
    step.resumed = yield_u64(step.value).unwrap_or(u64::MAX);
}

/// The guest: `n` rounds of probe-wrapped yields; returns how many rounds
/// found a register or control word changed, or a wrong resume value.
extern "C" fn guest(n: u64) -> u64 {
    let mut bad = 0;
    for i in 0..n {
        let pat = pattern(i, GUEST_SEED);
        let mut found = Pattern::default();
        let mut step = GuestStep { value: i, resumed: 0 };
        // SAFETY: the probe calls guest_yield with &mut step and writes
        // `found`; it restores everything it changed.
        unsafe {
            inst_test_probe_call(guest_yield, (&mut step as *mut GuestStep).cast(), &pat, &mut found);
        }
        if found != pat || step.resumed != i.wrapping_mul(3) {
            bad += 1;
        }
    }
    bad
}

struct HostStep<'a> {
    inst: &'a mut Instance,
    value: u64,
    out: Option<Result<Outcome<UntypedRetVal>, instance::Error>>,
}

extern "C" fn host_resume(arg: *mut c_void) {
    // SAFETY: the host passes its own live HostStep.
    let step = unsafe { &mut *arg.cast::<HostStep>() };
    step.out = Some(step.inst.resume::<UntypedRetVal, u64>(step.value));
}

fn rounds() -> u64 {
    let k: u64 = std::env::var("INSTANCE_STRESS_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    100_000 * k.max(1)
}

#[test]
fn yield_resume_round_trips_preserve_callee_saved_state_on_both_sides() {
    common::deadline();
    let n = rounds();
    let mut inst = Instance::new(256 * 1024).unwrap();
    // SAFETY: guest is extern "C" fn(u64) -> u64 and does not unwind.
    let mut out = unsafe { inst.start(guest as extern "C" fn(u64) -> u64 as usize, &[Val::U64(n)]) }.unwrap();
    let mut host_bad = 0u64;
    let mut i = 0u64;
    let ret = loop {
        match out {
            Outcome::Yielded(y) => {
                assert_eq!(y.as_u64(), Some(i));
                let pat = pattern(i, HOST_SEED);
                let mut found = Pattern::default();
                let mut step = HostStep { inst: &mut inst, value: i.wrapping_mul(3), out: None };
                // SAFETY: as in `guest`.
                unsafe {
                    inst_test_probe_call(host_resume, (&mut step as *mut HostStep).cast(), &pat, &mut found);
                }
                if found != pat {
                    host_bad += 1;
                }
                out = step.out.take().unwrap().unwrap();
                i += 1;
            }
            Outcome::Returned(r) => break r,
            _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
        }
    };
    assert_eq!(i, n);
    assert_eq!(host_bad, 0, "host rounds that found a register or control word changed");
    assert_eq!(ret.as_u64(), 0, "guest rounds that found a register or control word changed");
}
