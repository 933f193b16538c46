//! 100,000 yield/resume round trips keep what the ABI promises both sides:
//! rbx, rbp, r12–r15, rsp, the MXCSR control bits and the x87 control word.
//!
//! An assembly probe loads a pattern into every callee-saved register and
//! both control registers, calls a function (the guest's yield, or the
//! host's resume), and stores what it finds when that call returns. The
//! guest and the host use different patterns, changing every round.

mod common;

use std::arch::global_asm;
use std::ffi::c_void;

use context::{UntypedRetVal, Val};
use instance::{Instance, Outcome, yield_u64};

/// What the probe loads before the call and finds after it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pattern {
    gp: [u64; 6], // rbx, rbp, r12, r13, r14, r15
    mxcsr: u32,
    fpucw: u16,
    pad: u16,
}

const _: () = {
    assert!(std::mem::offset_of!(Pattern, mxcsr) == 48);
    assert!(std::mem::offset_of!(Pattern, fpucw) == 52);
};

global_asm!(
    // void inst_test_probe_call(void (*f)(void *), void *arg,
    //                           const Pattern *pattern, Pattern *found)
    ".p2align 4",
    ".globl inst_test_probe_call",
    ".type inst_test_probe_call, @function",
    "inst_test_probe_call:",
    ".cfi_startproc",
    "push %rbp",
    ".cfi_adjust_cfa_offset 8",
    "push %rbx",
    ".cfi_adjust_cfa_offset 8",
    "push %r12",
    ".cfi_adjust_cfa_offset 8",
    "push %r13",
    ".cfi_adjust_cfa_offset 8",
    "push %r14",
    ".cfi_adjust_cfa_offset 8",
    "push %r15",
    ".cfi_adjust_cfa_offset 8",
    "sub $24, %rsp", // [rsp]: found, [rsp+8]: our mxcsr, [rsp+12]: our fpucw; rsp 16-aligned
    ".cfi_adjust_cfa_offset 24",
    "mov %rcx, 0(%rsp)",
    "stmxcsr 8(%rsp)",
    "fnstcw 12(%rsp)",
    "ldmxcsr 48(%rdx)",
    "fldcw 52(%rdx)",
    "mov 0(%rdx), %rbx",
    "mov 8(%rdx), %rbp",
    "mov 16(%rdx), %r12",
    "mov 24(%rdx), %r13",
    "mov 32(%rdx), %r14",
    "mov 40(%rdx), %r15",
    "mov %rdi, %rax",
    "mov %rsi, %rdi",
    "call *%rax",
    "mov 0(%rsp), %rcx",
    "mov %rbx, 0(%rcx)",
    "mov %rbp, 8(%rcx)",
    "mov %r12, 16(%rcx)",
    "mov %r13, 24(%rcx)",
    "mov %r14, 32(%rcx)",
    "mov %r15, 40(%rcx)",
    "stmxcsr 48(%rcx)",
    "fnstcw 52(%rcx)",
    "ldmxcsr 8(%rsp)",
    "fldcw 12(%rsp)",
    "add $24, %rsp",
    ".cfi_adjust_cfa_offset -24",
    "pop %r15",
    ".cfi_adjust_cfa_offset -8",
    "pop %r14",
    ".cfi_adjust_cfa_offset -8",
    "pop %r13",
    ".cfi_adjust_cfa_offset -8",
    "pop %r12",
    ".cfi_adjust_cfa_offset -8",
    "pop %rbx",
    ".cfi_adjust_cfa_offset -8",
    "pop %rbp",
    ".cfi_adjust_cfa_offset -8",
    "ret",
    ".cfi_endproc",
    ".size inst_test_probe_call, .-inst_test_probe_call",
    options(att_syntax),
);

unsafe extern "C" {
    fn inst_test_probe_call(
        f: extern "C" fn(*mut c_void),
        arg: *mut c_void,
        pattern: *const Pattern,
        found: *mut Pattern,
    );
}

/// A pattern for round `i` of side `seed`: distinctive words, and control
/// registers with every exception masked but rounding modes, flush-to-zero,
/// denormals-are-zero (MXCSR) and precision and rounding control (x87)
/// varying.
fn pattern(i: u64, seed: u64) -> Pattern {
    let mut gp = [0u64; 6];
    for (k, w) in gp.iter_mut().enumerate() {
        *w = (seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(k as u32 * 11) ^ (k as u64) << 56;
    }
    let r = i.wrapping_add(seed);
    let mxcsr =
        0x1f80 | (((r & 3) as u32) << 13) | if r & 4 != 0 { 0x8000 } else { 0 } | if r & 8 != 0 { 0x40 } else { 0 };
    let pc = [0u16, 2, 3][(r % 3) as usize];
    let fpucw = 0x007f | (pc << 8) | ((((r >> 4) & 3) as u16) << 10);
    Pattern { gp, mxcsr, fpucw, pad: 0 }
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
