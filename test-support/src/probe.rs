//! The callee-saved register probe: what a call must preserve, seen from
//! the caller.
//!
//! [`probe_call`] loads a [`Pattern`] into rbx, rbp, r12–r15, MXCSR and the
//! x87 control word, calls a function with two pointer arguments, and when
//! that call returns stores what those registers hold into another
//! `Pattern`; it restores the caller's own values before it returns. The
//! function may switch to other contexts and back any number of times in
//! between (`context_sys::swap`, a guest's yield, a host's resume): the
//! found pattern must equal the loaded one.

use std::arch::global_asm;
use std::ffi::c_void;

/// What the probe loads before the call and finds after it.
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
const _: () = {
    assert!(std::mem::offset_of!(Pattern, mxcsr) == 48);
    assert!(std::mem::offset_of!(Pattern, fpucw) == 52);
};

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

unsafe extern "C" {
    #[link_name = "test_support_probe_call"]
    fn probe_call_asm(f: *const (), a: *const c_void, b: *const c_void, pattern: *const Pattern, found: *mut Pattern);
}

/// Loads `pattern` into rbx, rbp, r12–r15, MXCSR and the x87 control word,
/// calls `f(a, b)`, stores what those registers hold when it returns into
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
/// * `pattern`'s MXCSR has no reserved bit set.
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
