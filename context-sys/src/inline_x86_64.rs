//! [`swap_inline`]: the switch of [`swap`](crate::swap), as an `asm!` block
//! the compiler places inside its caller (x86_64).

use crate::{ContextRegs, layout};

/// Saves the current context into `*from` and continues in `*to`, like
/// [`swap`](crate::swap), but as an `asm!` block inlined into the caller
/// instead of a call of `context_sys_swap`.
///
/// What it saves, and why that is enough:
///
/// * `rsp`, `rbx`, `rbp`, MXCSR and the x87 control word go into `*from`
///   exactly as `context_sys_swap` stores them, and the resume word (at
///   `from.rsp`) holds the address just past this block. Any switch into
///   `*from` (a later `swap_inline`, `context_sys_swap`, `context_sys_set`,
///   or the start routine's return to its parent) loads them back.
/// * r12–r15 are **not** saved: the block tells the compiler that they, and
///   every caller-saved register (`clobber_abi("C")`: rax, rcx, rdx, rsi,
///   rdi, r8–r11, the vector, mask and x87/MMX registers), come back with
///   other values, so the compiler keeps across it only what it needs, in
///   rbx, rbp or its own frame. The `r12`..`r15` fields of `*from` keep
///   whatever they held, and the switch that resumes `*from` loads those
///   stale values into registers the compiler no longer counts on. (rbx and
///   rbp are reserved by LLVM and cannot be declared clobbered, so they are
///   saved.)
/// * The switch into `*to` is the one every switch makes (the header's
///   "The resume window"): load `to.rsp`, the word there, set rsp one word
///   above it, load `*to`'s six callee-saved registers, jump. So `*to` may
///   have been suspended by either kind of swap, or prepared as a fresh
///   context for [`start`](crate::start).
///
/// MXCSR's control bits and the x87 control word are loaded from `*to`
/// only when they differ from the current ones, as in `context_sys_swap`
/// (the status bits are left as they are).
///
/// The resume word is written just below the caller's rsp without moving
/// rsp (the 128-byte red zone, which the compiler does not use around an
/// `asm!` block that is allowed to use the stack), so the caller's own
/// unwind rules stay right for every instruction on this side of the
/// switch; from the instruction that moves rsp to the target's stack up to
/// the jump, the block's CFI describes the target as the frame being
/// resumed, like the assembly's. A backtrace (gdb, a profiler) taken at any
/// instruction is therefore coherent.
///
/// Not divertable: `context::divert_pending_resume` recognises a switch in
/// progress only inside the resume windows of the assembly
/// ([`resume_windows`](crate::resume_windows)), so code that diverts
/// contexts from a signal handler must switch into them with
/// [`swap`](crate::swap).
///
/// # Safety
///
/// The duties of [`swap`](crate::swap): `from` valid for writes, `to` a
/// suspended or freshly prepared context that is not running anywhere,
/// with its stack and register blocks live; and the code that continues
/// must eventually resume `*from` (or never need the frames above this
/// call again).
///
/// # Build requirement
///
/// The caller's function must have unwind tables: the block carries CFI
/// directives, which do not assemble in a function without them. Rust on
/// Linux emits them by default, and always with `panic = "unwind"`; only
/// `-C panic=abort -C force-unwind-tables=no` without debug info removes
/// them (`context::Context::swap` then calls [`swap`](crate::swap) instead,
/// see its docs).
#[inline(always)]
pub unsafe fn swap_inline(from: *mut ContextRegs, to: *const ContextRegs) {
    // With AVX the caller may hold dirty upper halves of the vector
    // registers, which the compiler clears (`vzeroupper`) before a real
    // call: the other side may run legacy SSE code, which pays for dirty
    // upper state on many cores. The main block clobbers every vector
    // register anyway, so declaring them clobbered here costs nothing.
    #[cfg(target_feature = "avx")]
    // SAFETY: vzeroupper only zeroes the upper halves of ymm/zmm0-15,
    // which are declared clobbered; no memory, no stack, no flags.
    unsafe {
        core::arch::asm!("vzeroupper", clobber_abi("C"), options(nomem, nostack, preserves_flags))
    };
    // SAFETY: the caller's duties above make `from` writable and `to` a
    // context whose resume word, stack and registers a switch may load.
    // The block leaves rsp as it found it on return (the resumer sets rsp
    // one word above the resume word, which sits one word below the rsp the
    // block was entered with), restores rbx and rbp (through `*from`), and
    // declares every other register it may change as clobbered. The red
    // zone word it writes is below rsp, which the compiler keeps free
    // because the block may use the stack (no `nostack`).
    unsafe {
        core::arch::asm!(
            // -- save the current context into *from (rdi) --------------
            "stmxcsr [rdi + {mxcsr}]",         // from.mxcsr (status bits too)
            "fnstcw [rdi + {fpucw}]",          // from.fpucw
            "lea rax, [rip + 2f]",             // where *from continues
            "mov [rsp - 8], rax",              // the resume word, below rsp
            "lea rax, [rsp - 8]",
            "mov [rdi + {rsp}], rax",          // from.rsp = &resume word
            "mov [rdi + {rbx}], rbx",          // from.rbx
            "mov [rdi + {rbp}], rbp",          // from.rbp
            // -- MXCSR control bits and x87 control word of *to (rsi) ----
            "mov eax, [rsi + {mxcsr}]",        // to.mxcsr ^ from.mxcsr,
            "xor eax, [rdi + {mxcsr}]",        //   control bits only
            "test eax, {mask}",
            "jnz 3f",                          // differ: load (out of line)
            "4:",
            "movzx eax, word ptr [rsi + {fpucw}]",
            "cmp ax, word ptr [rdi + {fpucw}]", // to.fpucw == from.fpucw?
            "jne 5f",
            "6:",
            // -- the switch: the header's resume window, rax and rcx ----
            "mov rax, [rsi + {rsp}]",          // I1: rax = to.rsp = &resume word
            "mov rcx, [rax]",                  // I2: rcx = where *to continues
            ".cfi_remember_state",
            "lea rsp, [rax + 8]",              // I3: onto *to's stack
            // From here the frame is *to's, as in load_context_and_jump:
            // CFA = rsp, return address just below it, each callee-saved
            // register still in *to (rsi + its offset) until loaded.
            ".cfi_def_cfa rsp, 0",
            ".cfi_offset rip, -8",
            ".cfi_escape 0x10, 3, 2, 0x74, {rbx}",  // DW_CFA_expression rbx: DW_OP_breg4 (rsi) + off
            ".cfi_escape 0x10, 6, 2, 0x74, {rbp}",  // rbp
            ".cfi_escape 0x10, 12, 2, 0x74, {r12}", // r12
            ".cfi_escape 0x10, 13, 2, 0x74, {r13}", // r13
            ".cfi_escape 0x10, 14, 2, 0x74, {r14}", // r14
            ".cfi_escape 0x10, 15, 2, 0x74, {r15}", // r15
            "mov rbx, [rsi + {rbx}]",          // to.rbx
            ".cfi_same_value rbx",
            "mov rbp, [rsi + {rbp}]",          // to.rbp
            ".cfi_same_value rbp",
            "mov r12, [rsi + {r12}]",          // to.r12
            ".cfi_same_value r12",
            "mov r13, [rsi + {r13}]",          // to.r13
            ".cfi_same_value r13",
            "mov r14, [rsi + {r14}]",          // to.r14
            ".cfi_same_value r14",
            "mov r15, [rsi + {r15}]",          // to.r15
            ".cfi_same_value r15",
            "jmp rcx",                         // IJ: continue in *to
            // Back on this side: the caller's own unwind rules again.
            ".cfi_restore_state",
            "3:",
            "ldmxcsr [rsi + {mxcsr}]",         // to's MXCSR (control differs)
            "jmp 4b",
            "5:",
            "fldcw [rsi + {fpucw}]",           // to's x87 control word
            "jmp 6b",
            // Where *from continues, with rsp as it was on entry and rbx,
            // rbp loaded from *from by whoever switched back.
            "2:",
            mxcsr = const layout::OFF_MXCSR,
            fpucw = const layout::OFF_FPUCW,
            rsp = const layout::OFF_RSP,
            rbx = const layout::OFF_RBX,
            rbp = const layout::OFF_RBP,
            r12 = const layout::OFF_R12,
            r13 = const layout::OFF_R13,
            r14 = const layout::OFF_R14,
            r15 = const layout::OFF_R15,
            mask = const layout::MXCSR_CONTROL_MASK,
            in("rdi") from,
            in("rsi") to,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
}

/// The escapes above encode each offset as a one-byte SLEB128.
const _: () = {
    assert!(layout::OFF_RBX < 64 && layout::OFF_RBP < 64);
    assert!(layout::OFF_R12 < 64 && layout::OFF_R13 < 64 && layout::OFF_R14 < 64 && layout::OFF_R15 < 64);
};
