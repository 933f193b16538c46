/*
 * context_sys_aarch64.S - switching between execution contexts, aarch64
 * Linux (AAPCS64).
 *
 * Every offset comes from include/context_sys.h (its aarch64 section); none
 * is computed here.  Register numbers in the hand-written CFI follow the
 * DWARF numbering of the AArch64 ABI: x0..x30 = 0..30 (x29 is fp, x30 is
 * lr and the return-address column), sp = 31, v0..v31 = 64..95, so
 * d8..d15 = 72..79.
 *
 * What a suspended context looks like: its callee-saved registers and FPCR
 * sit in its `struct context_sys_regs`; `regs.sp` points at a 16-byte slot
 * on its own stack whose first word holds the address to continue at (the
 * resume word; the second word is padding, so that sp stays 16-aligned).
 * To resume it, load that word, set sp just above the slot, and `ret` to
 * the word.  `ret xN` rather than `br xN`: a return is never checked
 * against a BTI landing pad, and the address it goes to (just after a
 * `bl`, or the start routine) need not be one.
 *
 * Every global routine begins with `bti c`, a no-op on cores without BTI,
 * so that it may be reached by `blr` (through a PLT or a function pointer)
 * from code built with -mbranch-protection; the note at the end of the file
 * tells the linker this object is BTI-clean.
 */

#include "context_sys.h"

/* DWARF expression opcodes and CFA instructions used below. */
#define DW_CFA_def_cfa_expression 0x0f
#define DW_CFA_expression 0x10
#define DW_CFA_val_expression 0x16
#define DW_OP_deref 0x06
#define DW_OP_plus_uconst 0x23
#define DW_OP_mul 0x1e     /* pop two, push their product */
#define DW_OP_plus 0x22    /* pop two, push their sum */
#define DW_OP_eq 0x29      /* pop two, push 1 if equal, else 0 */
#define DW_OP_lit0 0x30
#define DW_OP_breg0 0x70   /* x0 + sleb128 offset */
#define DW_OP_breg1 0x71   /* x1 + sleb128 offset */
#define DW_OP_breg20 0x84  /* x20 + sleb128 offset */
#define DWARF_LR 30        /* x30, also the return-address column */

/* The personality pointer's encoding in context_sys_start's CIE:
 * DW_EH_PE_pcrel (0x10) | DW_EH_PE_sdata4 (0x0b), as on x86_64 (see
 * context_sys_x86_64.S for why a direct pc-relative word suffices). */
#define DW_EH_PE_pcrel_sdata4 0x1b

/* Linux aarch64 system call and errno numbers (kernel ABI, stable): the
 * generic table include/uapi/asm-generic/unistd.h, and errno-base.h. */
#define SYS_write 64
#define EINTR 4

/* GNU property note: NT_GNU_PROPERTY_TYPE_0, and the AArch64 feature word
 * GNU_PROPERTY_AARCH64_FEATURE_1_AND with its BTI bit. */
#define NT_GNU_PROPERTY_TYPE_0 5
#define GNU_PROPERTY_AARCH64_FEATURE_1_AND 0xc0000000
#define GNU_PROPERTY_AARCH64_FEATURE_1_BTI 1

/*
 * cfi_saved_at dwarf_reg, dw_op_breg, offset
 *
 * Tells the unwinder that the caller's value of `dwarf_reg` is stored in
 * memory at (base register + offset), i.e. in a context_sys_regs block.
 * Bytes: DW_CFA_expression, the register, the expression's length, then
 * DW_OP_bregN <offset> with the offset as SLEB128: one byte for 0..63, two
 * for 64..8191 (the block's d8..d15 and fp, lr lie above 63).
 */
.macro cfi_saved_at dwarf_reg, dw_op_breg, offset
    .if (\offset) < 64
    .cfi_escape DW_CFA_expression, \dwarf_reg, 2, \dw_op_breg, (\offset)
    .elseif (\offset) < 8192
    .cfi_escape DW_CFA_expression, \dwarf_reg, 3, \dw_op_breg, ((\offset) & 0x7f) | 0x80, (\offset) >> 7
    .else
    .error "cfi_saved_at: offset does not fit a two-byte SLEB128"
    .endif
.endm

/*
 * adjacent first, second
 *
 * The routines move registers in pairs (stp/ldp), which needs the second
 * field of each pair 8 bytes above the first: checked here, at assembly
 * time, for every pair used, so a layout change in the header that breaks
 * a pair stops the build instead of corrupting a register.
 */
.macro adjacent first, second
    .if (\second) != (\first) + 8
    .error "adjacent: a register pair's fields are not consecutive in context_sys.h"
    .endif
.endm
    adjacent CONTEXT_SYS_OFF_X19, CONTEXT_SYS_OFF_X20
    adjacent CONTEXT_SYS_OFF_X21, CONTEXT_SYS_OFF_X22
    adjacent CONTEXT_SYS_OFF_X23, CONTEXT_SYS_OFF_X24
    adjacent CONTEXT_SYS_OFF_X25, CONTEXT_SYS_OFF_X26
    adjacent CONTEXT_SYS_OFF_X27, CONTEXT_SYS_OFF_X28
    adjacent CONTEXT_SYS_OFF_FP, CONTEXT_SYS_OFF_LR
    adjacent CONTEXT_SYS_OFF_D8, CONTEXT_SYS_OFF_D9
    adjacent CONTEXT_SYS_OFF_D10, CONTEXT_SYS_OFF_D11
    adjacent CONTEXT_SYS_OFF_D12, CONTEXT_SYS_OFF_D13
    adjacent CONTEXT_SYS_OFF_D14, CONTEXT_SYS_OFF_D15
    adjacent CONTEXT_SYS_OFF_RET_X0, CONTEXT_SYS_OFF_RET_X1
    adjacent CONTEXT_SYS_BOOT_X0, CONTEXT_SYS_BOOT_X1
    adjacent CONTEXT_SYS_BOOT_X2, CONTEXT_SYS_BOOT_X3
    adjacent CONTEXT_SYS_BOOT_X4, CONTEXT_SYS_BOOT_X5
    adjacent CONTEXT_SYS_BOOT_X6, CONTEXT_SYS_BOOT_X7
    adjacent CONTEXT_SYS_BOOT_D0, CONTEXT_SYS_BOOT_D1
    adjacent CONTEXT_SYS_BOOT_D2, CONTEXT_SYS_BOOT_D3
    adjacent CONTEXT_SYS_BOOT_D4, CONTEXT_SYS_BOOT_D5
    adjacent CONTEXT_SYS_BOOT_D6, CONTEXT_SYS_BOOT_D7
    .if CONTEXT_SYS_RESUME_SP_STEP != 16
    .error "the resume slot is 16 bytes on aarch64 (add sp, x9, #16 below)"
    .endif

/*
 * load_context_and_jump base, dw_op_breg, loaded, end
 *
 * Continue in the context whose register block is at \base (x0 or x1),
 * with FPCR already dealt with by the caller.  Clobbers x9 and x10.
 *
 * The resume window (a contract: "The resume window" in
 * include/context_sys.h states it for users, and the Rust crate `context`
 * builds `divert_pending_resume` on it).  Instruction by instruction, with
 * the state a signal handler sees when it interrupts the thread with its pc
 * at that instruction (not yet executed):
 *
 *   I1  ldr x9, [base, #OFF_SP]  nothing of the target read
 *   I2  ldr x10, [x9]            x9 = &resume word; the word not read yet
 *   \loaded:
 *   I3  add sp, x9, #16          x9 = &resume word, x10 = the word's value
 *                                (read by I2); sp still the caller's
 *   I4..  loads of x19..x28, fp, lr, d8..d15 from the block:
 *                                x9 and x10 as at I3; sp = x9 + 16 (the
 *                                target's stack)
 *   IJ  ret x10                  the same
 *   \end:
 *
 * So for a pc in [\loaded, \end) the switch will continue at x10 whatever
 * the resume word says by then: rewriting the word diverts it only if x10
 * is rewritten too.  For a pc at I2 or before the word has not been read,
 * and rewriting the word is enough.  Nothing between I3 and IJ writes x9
 * or x10.  Keep x9 and x10 in these roles, and I2 just before \loaded, or
 * change the header's contract and `context::divert_pending_resume` with
 * it.
 *
 * The stack is switched first, so that from then on the CFA is simply the
 * resumed context's sp (its return address, the resume word, lies at
 * CFA - 16) and each callee-saved register is described as "still in the
 * block" until it is loaded, then as "same value".
 */
.macro load_context_and_jump base, dw_op_breg, loaded, end
    ldr x9, [\base, #CONTEXT_SYS_OFF_SP]    /* I1: x9 = regs.sp = &resume word */
    ldr x10, [x9]                           /* I2: x10 = the address to continue at */
\loaded:                                    /* from here x10 holds it: the window */
    add sp, x9, #16                         /* I3: pop the slot, as a return would */
    .cfi_def_cfa sp, 0
    .cfi_offset x30, -16
    cfi_saved_at 19, \dw_op_breg, CONTEXT_SYS_OFF_X19
    cfi_saved_at 20, \dw_op_breg, CONTEXT_SYS_OFF_X20
    cfi_saved_at 21, \dw_op_breg, CONTEXT_SYS_OFF_X21
    cfi_saved_at 22, \dw_op_breg, CONTEXT_SYS_OFF_X22
    cfi_saved_at 23, \dw_op_breg, CONTEXT_SYS_OFF_X23
    cfi_saved_at 24, \dw_op_breg, CONTEXT_SYS_OFF_X24
    cfi_saved_at 25, \dw_op_breg, CONTEXT_SYS_OFF_X25
    cfi_saved_at 26, \dw_op_breg, CONTEXT_SYS_OFF_X26
    cfi_saved_at 27, \dw_op_breg, CONTEXT_SYS_OFF_X27
    cfi_saved_at 28, \dw_op_breg, CONTEXT_SYS_OFF_X28
    cfi_saved_at 29, \dw_op_breg, CONTEXT_SYS_OFF_FP
    cfi_saved_at 72, \dw_op_breg, CONTEXT_SYS_OFF_D8
    cfi_saved_at 73, \dw_op_breg, CONTEXT_SYS_OFF_D9
    cfi_saved_at 74, \dw_op_breg, CONTEXT_SYS_OFF_D10
    cfi_saved_at 75, \dw_op_breg, CONTEXT_SYS_OFF_D11
    cfi_saved_at 76, \dw_op_breg, CONTEXT_SYS_OFF_D12
    cfi_saved_at 77, \dw_op_breg, CONTEXT_SYS_OFF_D13
    cfi_saved_at 78, \dw_op_breg, CONTEXT_SYS_OFF_D14
    cfi_saved_at 79, \dw_op_breg, CONTEXT_SYS_OFF_D15
    ldp x19, x20, [\base, #CONTEXT_SYS_OFF_X19]
    .cfi_same_value x19
    .cfi_same_value x20
    ldp x21, x22, [\base, #CONTEXT_SYS_OFF_X21]
    .cfi_same_value x21
    .cfi_same_value x22
    ldp x23, x24, [\base, #CONTEXT_SYS_OFF_X23]
    .cfi_same_value x23
    .cfi_same_value x24
    ldp x25, x26, [\base, #CONTEXT_SYS_OFF_X25]
    .cfi_same_value x25
    .cfi_same_value x26
    ldp x27, x28, [\base, #CONTEXT_SYS_OFF_X27]
    .cfi_same_value x27
    .cfi_same_value x28
    /* lr too: after a return x30 holds the address returned to.  The
     * return-address rule stays "at CFA - 16", the resume word. */
    ldp x29, x30, [\base, #CONTEXT_SYS_OFF_FP]
    .cfi_same_value x29
    ldp d8, d9, [\base, #CONTEXT_SYS_OFF_D8]
    .cfi_same_value 72
    .cfi_same_value 73
    ldp d10, d11, [\base, #CONTEXT_SYS_OFF_D10]
    .cfi_same_value 74
    .cfi_same_value 75
    ldp d12, d13, [\base, #CONTEXT_SYS_OFF_D12]
    .cfi_same_value 76
    .cfi_same_value 77
    ldp d14, d15, [\base, #CONTEXT_SYS_OFF_D14]
    .cfi_same_value 78
    .cfi_same_value 79
    ret x10                                 /* IJ: continue at x10, sp = x9 + 16 */
\end:                                       /* the window ends with the return */
.endm

/*
 * load_fp_control base
 *
 * Gives FPCR the value saved in the block at \base, executing `msr fpcr`
 * only when it differs from the current one (a write of FPCR may
 * synchronise the FP pipeline; reading it is cheap).  Straight-line apart
 * from one forward branch, sp unchanged: no CFI needed.  Clobbers x9, x10.
 */
.macro load_fp_control base
    mrs x9, fpcr
    ldr x10, [\base, #CONTEXT_SYS_OFF_FPCR]
    cmp x9, x10
    b.eq 1f
    msr fpcr, x10
1:
.endm

    .text

/*
 * void context_sys_swap(struct context_sys_regs *from,      // x0
 *                       const struct context_sys_regs *to)  // x1
 *
 * Saves the caller's callee-saved state into *from and continues in *to.
 * When someone later resumes *from, this call returns.
 *
 *     from's stack on entry          after the save, from->sp points here
 *     | caller's frame     |  <- sp  | caller's frame     |
 *                                    | 0 / unused         |
 *                                    | x30 (resume word)  |  <- sp == from->sp
 *
 * The slot is allocated before it is written: Linux aarch64 has no red
 * zone, so a signal delivered here may use any byte below sp.  FPCR is
 * stored every time and written only when *to's differs.
 */
    .p2align 4
    .globl context_sys_swap
    .type context_sys_swap, %function
context_sys_swap:
    .cfi_startproc
    bti c
    sub sp, sp, #16
    .cfi_def_cfa_offset 16
    str x30, [sp]                           /* the resume word: after our caller's bl */
    .cfi_offset x30, -16
    mrs x10, fpcr
    mov x9, sp
    str x9, [x0, #CONTEXT_SYS_OFF_SP]
    stp x19, x20, [x0, #CONTEXT_SYS_OFF_X19]
    stp x21, x22, [x0, #CONTEXT_SYS_OFF_X21]
    stp x23, x24, [x0, #CONTEXT_SYS_OFF_X23]
    stp x25, x26, [x0, #CONTEXT_SYS_OFF_X25]
    stp x27, x28, [x0, #CONTEXT_SYS_OFF_X27]
    stp x29, x30, [x0, #CONTEXT_SYS_OFF_FP]
    stp d8, d9, [x0, #CONTEXT_SYS_OFF_D8]
    stp d10, d11, [x0, #CONTEXT_SYS_OFF_D10]
    stp d12, d13, [x0, #CONTEXT_SYS_OFF_D12]
    stp d14, d15, [x0, #CONTEXT_SYS_OFF_D14]
    str x10, [x0, #CONTEXT_SYS_OFF_FPCR]

    /* FPCR: only if *to's differs from ours. */
    ldr x11, [x1, #CONTEXT_SYS_OFF_FPCR]
    cmp x10, x11
    b.ne .Lswap_load_fpcr
.Lswap_fpcr_done:
    .cfi_remember_state
    load_context_and_jump x1, DW_OP_breg1, .Lswap_resume_loaded, .Lswap_resume_end

    /* Out of line, so the common path falls through.  The CFI here is
     * that of the body above: CFA = sp + 16, lr at CFA - 16. */
.Lswap_load_fpcr:
    .cfi_restore_state
    msr fpcr, x11
    b .Lswap_fpcr_done
    .cfi_endproc
    .size context_sys_swap, .-context_sys_swap

/*
 * void context_sys_set(const struct context_sys_regs *to)  // x0
 *
 * Continues in *to without saving anything; never returns.  FPCR is
 * written only where it differs from the current one (load_fp_control).
 */
    .p2align 4
    .globl context_sys_set
    .type context_sys_set, %function
context_sys_set:
    .cfi_startproc
    bti c
    load_fp_control x0
    load_context_and_jump x0, DW_OP_breg0, .Lset_resume_loaded, .Lset_resume_end
    .cfi_endproc
    .size context_sys_set, .-context_sys_set

/*
 * context_sys_start - where every fresh context begins.  Never called: the
 * first switch into a fresh context returns (`ret x10`) to the resume word
 * that points here.
 *
 * On entry:
 *   sp   -> struct context_sys_boot_frame (16-aligned)
 *   x19  =  this context's own register block (return values go there)
 *   x20  =  the parent's register block (where to go when the entry returns)
 *
 *     | spilled argument n    |
 *     | ...                   |
 *     | spilled argument 1    |  <- sp + CONTEXT_SYS_BOOT_SIZE (16-aligned)
 *     | pad                   |
 *     | entry                 |
 *     | d0 .. d7              |
 *     | x0 .. x7              |  <- sp
 *
 * Loads the argument registers, calls the entry with sp 16-aligned at the
 * spilled arguments, stores x0, x1 and q0 into its own block, and continues
 * in the parent.
 *
 * Unwinding works as on x86_64 (context_sys_x86_64.S describes it at
 * length): linked, when parent->sp != 0, the entry's caller is the parent
 * as it last switched away, CFA = parent->sp + 16, the return address is
 * the parent's resume word *(parent->sp), and the parent's callee-saved
 * registers are in its block at x20 + offset; unlinked, when parent->sp is
 * 0, the entry is called from a second site whose return address is
 * undefined, the outermost frame.  The linked rule yields return address 0
 * should parent->sp read 0 later.  And the personality routine below
 * aborts any unwind that would leave the entry through this frame.
 */
    .p2align 4
    .globl context_sys_start
    .type context_sys_start, %function
context_sys_start:
    .cfi_startproc
    .cfi_personality DW_EH_PE_pcrel_sdata4, context_sys_start_personality
    /* DW_CFA_def_cfa_expression, length 5:
     *   DW_OP_breg20 CONTEXT_SYS_OFF_SP    push x20 + offsetof(sp)
     *   DW_OP_deref                        load parent->sp
     *   DW_OP_plus_uconst 16               step over the resume slot */
    .cfi_escape DW_CFA_def_cfa_expression, 5, DW_OP_breg20, CONTEXT_SYS_OFF_SP, DW_OP_deref, DW_OP_plus_uconst, 16
    /* DW_CFA_val_expression, lr (30), length 13: the return address is
     * *(parent->sp), or 0 when parent->sp is 0 (the same branch-free
     * expression as on x86_64):
     *   DW_OP_breg20 OFF_SP, DW_OP_deref        parent->sp
     *   DW_OP_breg20 OFF_SP, DW_OP_deref,
     *   DW_OP_lit0, DW_OP_eq                    1 if parent->sp == 0
     *   DW_OP_breg20 OFF_SP, DW_OP_mul          &parent->sp if it holds 0, else 0
     *   DW_OP_plus                              parent->sp, or &parent->sp
     *   DW_OP_deref                             the resume word, or 0 */
    .cfi_escape DW_CFA_val_expression, DWARF_LR, 13, DW_OP_breg20, CONTEXT_SYS_OFF_SP, DW_OP_deref, DW_OP_breg20, CONTEXT_SYS_OFF_SP, DW_OP_deref, DW_OP_lit0, DW_OP_eq, DW_OP_breg20, CONTEXT_SYS_OFF_SP, DW_OP_mul, DW_OP_plus, DW_OP_deref
    cfi_saved_at 19, DW_OP_breg20, CONTEXT_SYS_OFF_X19
    cfi_saved_at 20, DW_OP_breg20, CONTEXT_SYS_OFF_X20
    cfi_saved_at 21, DW_OP_breg20, CONTEXT_SYS_OFF_X21
    cfi_saved_at 22, DW_OP_breg20, CONTEXT_SYS_OFF_X22
    cfi_saved_at 23, DW_OP_breg20, CONTEXT_SYS_OFF_X23
    cfi_saved_at 24, DW_OP_breg20, CONTEXT_SYS_OFF_X24
    cfi_saved_at 25, DW_OP_breg20, CONTEXT_SYS_OFF_X25
    cfi_saved_at 26, DW_OP_breg20, CONTEXT_SYS_OFF_X26
    cfi_saved_at 27, DW_OP_breg20, CONTEXT_SYS_OFF_X27
    cfi_saved_at 28, DW_OP_breg20, CONTEXT_SYS_OFF_X28
    cfi_saved_at 29, DW_OP_breg20, CONTEXT_SYS_OFF_FP
    cfi_saved_at 72, DW_OP_breg20, CONTEXT_SYS_OFF_D8
    cfi_saved_at 73, DW_OP_breg20, CONTEXT_SYS_OFF_D9
    cfi_saved_at 74, DW_OP_breg20, CONTEXT_SYS_OFF_D10
    cfi_saved_at 75, DW_OP_breg20, CONTEXT_SYS_OFF_D11
    cfi_saved_at 76, DW_OP_breg20, CONTEXT_SYS_OFF_D12
    cfi_saved_at 77, DW_OP_breg20, CONTEXT_SYS_OFF_D13
    cfi_saved_at 78, DW_OP_breg20, CONTEXT_SYS_OFF_D14
    cfi_saved_at 79, DW_OP_breg20, CONTEXT_SYS_OFF_D15
    bti c
    ldp x0, x1, [sp, #CONTEXT_SYS_BOOT_X0]
    ldp x2, x3, [sp, #CONTEXT_SYS_BOOT_X2]
    ldp x4, x5, [sp, #CONTEXT_SYS_BOOT_X4]
    ldp x6, x7, [sp, #CONTEXT_SYS_BOOT_X6]
    ldp d0, d1, [sp, #CONTEXT_SYS_BOOT_D0]
    ldp d2, d3, [sp, #CONTEXT_SYS_BOOT_D2]
    ldp d4, d5, [sp, #CONTEXT_SYS_BOOT_D4]
    ldp d6, d7, [sp, #CONTEXT_SYS_BOOT_D6]
    ldr x16, [sp, #CONTEXT_SYS_BOOT_ENTRY]
    add sp, sp, #CONTEXT_SYS_BOOT_SIZE
    /* Linked or not: has the parent's block been saved into? */
    ldr x9, [x20, #CONTEXT_SYS_OFF_SP]
    cbz x9, .Lstart_unlinked
    .cfi_remember_state
    blr x16
.Lstart_returned:
    /* The entry returned: keep its return registers, then go to the parent. */
    stp x0, x1, [x19, #CONTEXT_SYS_OFF_RET_X0]
    str q0, [x19, #CONTEXT_SYS_OFF_RET_V0]
    mov x0, x20
    load_fp_control x0
    load_context_and_jump x0, DW_OP_breg0, .Lstart_resume_loaded, .Lstart_resume_end

.Lstart_unlinked:
    /* The same call, from a site whose unwind row says "outermost frame":
     * no return address, CFA = sp. */
    .cfi_restore_state
    .cfi_def_cfa sp, 0
    .cfi_undefined x30
    blr x16
    /* By now the parent must have been saved into, or returning to it is the
     * caller's bug (as it would be without this path). */
    b .Lstart_returned
    .cfi_endproc
    .size context_sys_start, .-context_sys_start

    .section .rodata
.Lunwind_abort_message:
    .ascii CONTEXT_SYS_UNWIND_ABORT_MESSAGE
    .set .Lunwind_abort_message_len, . - .Lunwind_abort_message
    .text

/*
 * _Unwind_Reason_Code context_sys_start_personality(
 *         int version,                          // w0
 *         _Unwind_Action actions,               // w1
 *         uint64_t exception_class,             // x2
 *         struct _Unwind_Exception *exception,  // x3
 *         struct _Unwind_Context *context)      // x4
 *
 * The personality routine of context_sys_start: whatever the arguments, it
 * writes CONTEXT_SYS_UNWIND_ABORT_MESSAGE to fd 2 and calls abort() (why:
 * context_sys_x86_64.S).  Async-signal-safe: the write system call
 * directly (its result in x0 is bytes written or -errno), retried after a
 * short write or EINTR and abandoned on any other error, then abort().
 *
 *     on entry                      during the calls
 *     | unwinder's frames |  <- sp  | unwinder's frames |
 *                                   | x30               |
 *                                   | x29               |  <- sp = x29
 *
 * x19 and x20 hold the message pointer and length across the system call
 * loop (they are callee-saved, and this routine never returns, so they need
 * no saving).  A local symbol: only .eh_frame refers to it.
 */
    .p2align 4
    .type context_sys_start_personality, %function
context_sys_start_personality:
    .cfi_startproc
    bti c
    stp x29, x30, [sp, #-16]!
    .cfi_def_cfa_offset 16
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    mov x29, sp
    adrp x19, .Lunwind_abort_message
    add x19, x19, :lo12:.Lunwind_abort_message   /* x19 = first byte not written */
    mov x20, #.Lunwind_abort_message_len           /* x20 = bytes not written */
.Lpersonality_write:
    mov x0, #2                       /* standard error */
    mov x1, x19
    mov x2, x20
    mov x8, #SYS_write
    svc #0                           /* x0 = written or -errno */
    cmn x0, #EINTR
    b.eq .Lpersonality_write         /* interrupted before writing: again */
    cmp x0, #0
    b.le .Lpersonality_abort         /* an error, or nothing written: give up */
    add x19, x19, x0                 /* 0 < x0 <= x20: step over what went */
    subs x20, x20, x0
    b.ne .Lpersonality_write         /* a short write: the rest */
.Lpersonality_abort:
    bl abort                         /* does not return */
    brk #1
    .cfi_endproc
    .size context_sys_start_personality, .-context_sys_start_personality

/*
 * void context_sys_save_fp_control(struct context_sys_regs *regs)  // x0
 *
 * Stores the calling thread's FPCR into regs->fpcr.
 */
    .p2align 4
    .globl context_sys_save_fp_control
    .type context_sys_save_fp_control, %function
context_sys_save_fp_control:
    .cfi_startproc
    bti c
    mrs x10, fpcr
    str x10, [x0, #CONTEXT_SYS_OFF_FPCR]
    ret
    .cfi_endproc
    .size context_sys_save_fp_control, .-context_sys_save_fp_control

/*
 * uint64_t context_sys_get_current_stack_pointer(void)
 *
 * The caller's sp: a `bl` does not move sp, so it is the same after the
 * return.
 */
    .p2align 4
    .globl context_sys_get_current_stack_pointer
    .type context_sys_get_current_stack_pointer, %function
context_sys_get_current_stack_pointer:
    .cfi_startproc
    bti c
    mov x0, sp
    ret
    .cfi_endproc
    .size context_sys_get_current_stack_pointer, .-context_sys_get_current_stack_pointer

/*
 * void context_sys_resume_windows(struct context_sys_resume_windows *out)  // x0
 *
 * Stores into *out [loaded, end) of the three switches' resume windows
 * (the labels of load_context_and_jump), taken pc-relative with `adr`.
 * Touches only x9 and *out, no stack: async-signal-safe.
 */
    .p2align 4
    .globl context_sys_resume_windows
    .type context_sys_resume_windows, %function
context_sys_resume_windows:
    .cfi_startproc
    bti c
    adr x9, .Lswap_resume_loaded
    str x9, [x0, #CONTEXT_SYS_RESUME_SWAP_LOADED]
    adr x9, .Lswap_resume_end
    str x9, [x0, #CONTEXT_SYS_RESUME_SWAP_END]
    adr x9, .Lset_resume_loaded
    str x9, [x0, #CONTEXT_SYS_RESUME_SET_LOADED]
    adr x9, .Lset_resume_end
    str x9, [x0, #CONTEXT_SYS_RESUME_SET_END]
    adr x9, .Lstart_resume_loaded
    str x9, [x0, #CONTEXT_SYS_RESUME_START_LOADED]
    adr x9, .Lstart_resume_end
    str x9, [x0, #CONTEXT_SYS_RESUME_START_END]
    ret
    .cfi_endproc
    .size context_sys_resume_windows, .-context_sys_resume_windows

/*
 * uint64_t context_sys_valgrind_client_request(
 *         const uint64_t request[CONTEXT_SYS_VALGRIND_REQUEST_WORDS],  // x0
 *         uint64_t default_value)                                      // x1
 *
 * Valgrind's arm64 client-request protocol (as valgrind.h documents it):
 *   - x4 carries the address of the request block,
 *   - x3 carries the default in and valgrind's answer out,
 *   - four rotates of x12 by 3, 13, 51 and 61 bits, 128 in all, leave x12
 *     as it was; they are the marker valgrind's JIT looks for,
 *   - `orr x10, x10, x10` right after the marker selects "client request"
 *     (x10 | x10 = x10, a no-op on a real CPU).
 */
    .p2align 4
    .globl context_sys_valgrind_client_request
    .type context_sys_valgrind_client_request, %function
context_sys_valgrind_client_request:
    .cfi_startproc
    bti c
    mov x4, x0              /* x4 -> request block */
    mov x3, x1              /* x3 = default, valgrind's answer replaces it */
    ror x12, x12, #3        /* marker: four rotates of x12, 128 bits in all */
    ror x12, x12, #13
    ror x12, x12, #51
    ror x12, x12, #61
    orr x10, x10, x10       /* the request: x3 = request(x4) */
    mov x0, x3
    ret
    .cfi_endproc
    .size context_sys_valgrind_client_request, .-context_sys_valgrind_client_request

/*
 * The GNU property note: this object's code is BTI-clean (every place
 * reached by an indirect call begins with `bti c`), so a program linked
 * with -z force-bti, or from objects that all carry the mark, keeps its
 * pages guarded.  Pointer authentication is not claimed: nothing here signs
 * a return address.
 *
 *     namesz 4, descsz 16, type NT_GNU_PROPERTY_TYPE_0, "GNU\0",
 *     pr_type FEATURE_1_AND, pr_datasz 4, pr_data BTI, pad to 8
 */
    .section .note.gnu.property, "a", %note
    .p2align 3
    .long 4
    .long 16
    .long NT_GNU_PROPERTY_TYPE_0
    .asciz "GNU"
    .long GNU_PROPERTY_AARCH64_FEATURE_1_AND
    .long 4
    .long GNU_PROPERTY_AARCH64_FEATURE_1_BTI
    .long 0

    .section .note.GNU-stack, "", %progbits
