//! The callee-saved register probe: what a call must preserve, seen from
//! the caller.
//!
//! [`probe_call`] loads a [`Pattern`] into rbx, rbp, r12–r15, MXCSR and the
//! x87 control word (aarch64: x19–x28, fp, d8–d15 and FPCR; lr is the
//! call's own), calls a function with two pointer arguments, and when
//! that call returns stores what those registers hold into another
//! `Pattern`; it restores the caller's own values before it returns. The
//! function may switch to other contexts and back any number of times in
//! between (`context_sys::swap`, a guest's yield, a host's resume): the
//! found pattern must equal the loaded one.

use std::arch::global_asm;
use std::ffi::c_void;

/// What the probe loads before the call and finds after it.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pattern {
    /// rbx, rbp, r12, r13, r14, r15.
    pub gp: [u64; 6],
    pub mxcsr: u32,
    pub fpucw: u16,
    pub pad: u16,
}

// The offsets the assembly below uses.
#[cfg(target_arch = "x86_64")]
const _: () = {
    assert!(std::mem::offset_of!(Pattern, mxcsr) == 48);
    assert!(std::mem::offset_of!(Pattern, fpucw) == 52);
};

#[cfg(target_arch = "x86_64")]
global_asm!(
    // void test_support_probe_call(void (*f)(void *, void *), void *a, void *b,
    //                              const Pattern *pattern, Pattern *found)
    ".p2align 4",
    ".globl test_support_probe_call",
    ".type test_support_probe_call, @function",
    "test_support_probe_call:",
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
    "mov %r8, 0(%rsp)",
    "stmxcsr 8(%rsp)",
    "fnstcw 12(%rsp)",
    "ldmxcsr 48(%rcx)",
    "fldcw 52(%rcx)",
    "mov 0(%rcx), %rbx",
    "mov 8(%rcx), %rbp",
    "mov 16(%rcx), %r12",
    "mov 24(%rcx), %r13",
    "mov 32(%rcx), %r14",
    "mov 40(%rcx), %r15",
    "mov %rdi, %rax", // f(a, b)
    "mov %rsi, %rdi",
    "mov %rdx, %rsi",
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
    ".size test_support_probe_call, .-test_support_probe_call",
    options(att_syntax),
);

/// What the probe loads before the call and finds after it (aarch64).
#[cfg(target_arch = "aarch64")]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pattern {
    /// x19–x28, then x29 (fp).
    pub gp: [u64; 11],
    /// d8–d15, the low halves of v8–v15.
    pub fp: [u64; 8],
    /// FPCR.
    pub fpcr: u64,
}

// The offsets the assembly below uses.
#[cfg(target_arch = "aarch64")]
const _: () = {
    assert!(std::mem::offset_of!(Pattern, gp) == 0);
    assert!(std::mem::offset_of!(Pattern, fp) == 88);
    assert!(std::mem::offset_of!(Pattern, fpcr) == 152);
};

#[cfg(target_arch = "aarch64")]
global_asm!(
    // void test_support_probe_call(void (*f)(void *, void *), void *a, void *b,
    //                              const Pattern *pattern, Pattern *found)
    // x0 = f, x1 = a, x2 = b, x3 = pattern, x4 = found.
    //
    // Frame (176 bytes, sp 16-aligned throughout):
    //   [sp, #0]   x29, x30     [sp, #16..#88]  x19-x28
    //   [sp, #96..#152] d8-d15  [sp, #160] found  [sp, #168] our FPCR
    ".p2align 4",
    ".globl test_support_probe_call",
    ".type test_support_probe_call, %function",
    "test_support_probe_call:",
    ".cfi_startproc",
    "hint #34", // bti c: reached by blr
    "stp x29, x30, [sp, #-176]!",
    ".cfi_def_cfa_offset 176",
    ".cfi_offset 29, -176",
    ".cfi_offset 30, -168",
    "stp x19, x20, [sp, #16]",
    ".cfi_offset 19, -160",
    ".cfi_offset 20, -152",
    "stp x21, x22, [sp, #32]",
    ".cfi_offset 21, -144",
    ".cfi_offset 22, -136",
    "stp x23, x24, [sp, #48]",
    ".cfi_offset 23, -128",
    ".cfi_offset 24, -120",
    "stp x25, x26, [sp, #64]",
    ".cfi_offset 25, -112",
    ".cfi_offset 26, -104",
    "stp x27, x28, [sp, #80]",
    ".cfi_offset 27, -96",
    ".cfi_offset 28, -88",
    // DWARF 72-79 are v8-v15 (their low halves d8-d15 are what is saved).
    "stp d8, d9, [sp, #96]",
    ".cfi_offset 72, -80",
    ".cfi_offset 73, -72",
    "stp d10, d11, [sp, #112]",
    ".cfi_offset 74, -64",
    ".cfi_offset 75, -56",
    "stp d12, d13, [sp, #128]",
    ".cfi_offset 76, -48",
    ".cfi_offset 77, -40",
    "stp d14, d15, [sp, #144]",
    ".cfi_offset 78, -32",
    ".cfi_offset 79, -24",
    "mrs x9, fpcr",
    "stp x4, x9, [sp, #160]", // found, our FPCR
    // Load the pattern: FPCR (offset 152), d8-d15 (88..), x19-x28 (0..), fp (80).
    "ldr x9, [x3, #152]",
    "msr fpcr, x9",
    "ldp d8, d9, [x3, #88]",
    "ldp d10, d11, [x3, #104]",
    "ldp d12, d13, [x3, #120]",
    "ldp d14, d15, [x3, #136]",
    "ldp x19, x20, [x3, #0]",
    "ldp x21, x22, [x3, #16]",
    "ldp x23, x24, [x3, #32]",
    "ldp x25, x26, [x3, #48]",
    "ldp x27, x28, [x3, #64]",
    "ldr x29, [x3, #80]",
    "mov x9, x0", // f(a, b)
    "mov x0, x1",
    "mov x1, x2",
    "blr x9",
    // Store what the registers hold now into *found.
    "ldr x9, [sp, #160]",
    "stp x19, x20, [x9, #0]",
    "stp x21, x22, [x9, #16]",
    "stp x23, x24, [x9, #32]",
    "stp x25, x26, [x9, #48]",
    "stp x27, x28, [x9, #64]",
    "str x29, [x9, #80]",
    "stp d8, d9, [x9, #88]",
    "stp d10, d11, [x9, #104]",
    "stp d12, d13, [x9, #120]",
    "stp d14, d15, [x9, #136]",
    "mrs x10, fpcr",
    "str x10, [x9, #152]",
    // Put the caller's values back.
    "ldr x10, [sp, #168]",
    "msr fpcr, x10",
    "ldp d14, d15, [sp, #144]",
    "ldp d12, d13, [sp, #128]",
    "ldp d10, d11, [sp, #112]",
    "ldp d8, d9, [sp, #96]",
    "ldp x27, x28, [sp, #80]",
    "ldp x25, x26, [sp, #64]",
    "ldp x23, x24, [sp, #48]",
    "ldp x21, x22, [sp, #32]",
    "ldp x19, x20, [sp, #16]",
    "ldp x29, x30, [sp], #176",
    ".cfi_def_cfa_offset 0",
    ".cfi_restore 29",
    ".cfi_restore 30",
    "ret",
    ".cfi_endproc",
    ".size test_support_probe_call, .-test_support_probe_call",
);

unsafe extern "C" {
    #[link_name = "test_support_probe_call"]
    fn probe_call_asm(f: *const (), a: *const c_void, b: *const c_void, pattern: *const Pattern, found: *mut Pattern);
}

/// Loads `pattern` into rbx, rbp, r12–r15, MXCSR and the x87 control word
/// (aarch64: x19–x28, fp, d8–d15, FPCR), calls `f(a, b)`, stores what those registers hold when it returns into
/// `*found`, and puts the caller's values back.
///
/// # Safety
///
/// * `f` is the address of an `extern "C"` function that takes (up to) two
///   pointer-sized arguments and does not unwind; `a` and `b` are what it
///   may be called with (a function of one argument ignores `b`).
/// * `pattern` is valid for reads and `found` for writes of a `Pattern`,
///   and both stay valid until the call returns (across any switch `f`
///   makes).
/// * `pattern`'s MXCSR has no reserved bit set (x86_64).
pub unsafe fn probe_call(
    f: *const (),
    a: *const c_void,
    b: *const c_void,
    pattern: *const Pattern,
    found: *mut Pattern,
) {
    // SAFETY: the caller's duties above are those of the assembly routine,
    // which preserves every callee-saved register and its own control state.
    unsafe { probe_call_asm(f, a, b, pattern, found) }
}
