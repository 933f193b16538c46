/*
 * probes_aarch64.S - assembly probes that check what C cannot see: the
 * callee-saved registers x19-x28, fp, d8-d15, FPCR and the stack pointer
 * across a context switch and at a fresh context's entry (AAPCS64).
 *
 * The aarch64 counterpart of probes_x86_64.S, with the same three routines
 * and the same contract (ctc.h declares both).  Offsets of struct ctc_probe
 * come from ctc.h's aarch64 section; the only numbers written here are the
 * probes' own frame slots, defined once below.
 *
 * Every global routine begins with `bti c`, so that it may be reached by
 * `blr` from code built with -mbranch-protection (qemu's default CPU
 * enforces BTI on pages the GNU property note at the end marks).
 */

#include "ctc.h"

/* GNU property note: NT_GNU_PROPERTY_TYPE_0, and the AArch64 feature word
 * GNU_PROPERTY_AARCH64_FEATURE_1_AND with its BTI bit. */
#define NT_GNU_PROPERTY_TYPE_0 5
#define GNU_PROPERTY_AARCH64_FEATURE_1_AND 0xc0000000
#define GNU_PROPERTY_AARCH64_FEATURE_1_BTI 1

/*
 * Frame of ctc_swap_checked (sp stays 16-aligned: SC_FRAME is a multiple
 * of 16, and Linux aarch64 has no red zone, so the frame is allocated
 * before anything is stored in it):
 *
 *     | caller's frame      |  <- sp at entry (CFA)
 *     | not_seed            |  sp + SC_NOT_SEED
 *     | want_fpcr           |  sp + SC_WANT_FPCR
 *     | seed                |  sp + SC_SEED
 *     | caller_fpcr         |  sp + SC_CALLER_FPCR
 *     | d8 .. d15           |  sp + SC_D8 (four pairs)
 *     | x19 .. x28          |  sp + SC_X19 (five pairs)
 *     | x29, x30            |  sp + SC_FP  <- sp in the body
 */
#define SC_FP 0
#define SC_X19 16
#define SC_X21 32
#define SC_X23 48
#define SC_X25 64
#define SC_X27 80
#define SC_D8 96
#define SC_D10 112
#define SC_D12 128
#define SC_D14 144
#define SC_CALLER_FPCR 160
#define SC_SEED 168
#define SC_WANT_FPCR 176
#define SC_NOT_SEED 184
#define SC_FRAME 192

/*
 * Frame of ctc_probe_child once it has recorded its entry state:
 *
 *     | stack arguments     |  <- sp at entry (CFA)
 *     | (padding)           |  sp + PC_PAD
 *     | x19                 |  sp + PC_X19
 *     | x29, x30            |  sp + PC_FP  <- sp in the body
 */
#define PC_FP 0
#define PC_X19 16
#define PC_PAD 24
#define PC_FRAME 32

/* DWARF numbers of d8..d15 (v8..v15 are 72..79), for the CFI below. */
#define DWARF_D8 72

/* reg = a 64-bit constant, in four 16-bit pieces. */
.macro mov64 reg, value
    movz \reg, #((\value) & 0xffff)
    movk \reg, #(((\value) >> 16) & 0xffff), lsl #16
    movk \reg, #(((\value) >> 32) & 0xffff), lsl #32
    movk \reg, #(((\value) >> 48) & 0xffff), lsl #48
.endm

/* reg = seed ^ pattern (reg must not be seed). */
.macro fill reg, pat, seed
    mov64 \reg, \pat
    eor \reg, \reg, \seed
.endm

/* dreg = the bits of seed ^ pattern.  Clobbers x9. */
.macro fill_d dreg, pat, seed
    fill x9, \pat, \seed
    fmov \dreg, x9
.endm

/* if reg != x12 ^ pattern: x11 |= bit.  Clobbers x9. */
.macro check reg, pat, bit
    fill x9, \pat, x12
    cmp \reg, x9
    b.eq .Lcheck_ok\@
    orr x11, x11, #\bit
.Lcheck_ok\@:
.endm

/* The same for the bits of a d register.  Clobbers x9, x10. */
.macro check_d dreg, pat, bit
    fmov x10, \dreg
    check x10, \pat, \bit
.endm

    .text

/*
 * uint64_t ctc_swap_checked(struct context_sys_regs *from,     // x0
 *                           const struct context_sys_regs *to,  // x1
 *                           uint64_t seed,                      // x2
 *                           uint64_t fpcr)                      // x3
 *
 * Puts recognisable values in every piece of state a switch must keep
 * (x19-x28, fp, d8-d15, FPCR, and two complementary copies of the seed on
 * its stack), switches away, and when resumed reports (as CTC_LOST_* bits)
 * which of them changed.  Restores its caller's registers and FPCR.  lr is
 * not checked: that the call returned here at all is the check.
 */
    .p2align 4
    .globl ctc_swap_checked
    .type ctc_swap_checked, %function
ctc_swap_checked:
    .cfi_startproc
    bti c
    sub sp, sp, #SC_FRAME
    .cfi_def_cfa_offset SC_FRAME
    stp x29, x30, [sp, #SC_FP]
    .cfi_rel_offset x29, SC_FP
    .cfi_rel_offset x30, SC_FP + 8
    stp x19, x20, [sp, #SC_X19]
    .cfi_rel_offset x19, SC_X19
    .cfi_rel_offset x20, SC_X19 + 8
    stp x21, x22, [sp, #SC_X21]
    .cfi_rel_offset x21, SC_X21
    .cfi_rel_offset x22, SC_X21 + 8
    stp x23, x24, [sp, #SC_X23]
    .cfi_rel_offset x23, SC_X23
    .cfi_rel_offset x24, SC_X23 + 8
    stp x25, x26, [sp, #SC_X25]
    .cfi_rel_offset x25, SC_X25
    .cfi_rel_offset x26, SC_X25 + 8
    stp x27, x28, [sp, #SC_X27]
    .cfi_rel_offset x27, SC_X27
    .cfi_rel_offset x28, SC_X27 + 8
    stp d8, d9, [sp, #SC_D8]
    .cfi_rel_offset DWARF_D8 + 0, SC_D8
    .cfi_rel_offset DWARF_D8 + 1, SC_D8 + 8
    stp d10, d11, [sp, #SC_D10]
    .cfi_rel_offset DWARF_D8 + 2, SC_D10
    .cfi_rel_offset DWARF_D8 + 3, SC_D10 + 8
    stp d12, d13, [sp, #SC_D12]
    .cfi_rel_offset DWARF_D8 + 4, SC_D12
    .cfi_rel_offset DWARF_D8 + 5, SC_D12 + 8
    stp d14, d15, [sp, #SC_D14]
    .cfi_rel_offset DWARF_D8 + 6, SC_D14
    .cfi_rel_offset DWARF_D8 + 7, SC_D14 + 8

    mrs x9, fpcr
    str x9, [sp, #SC_CALLER_FPCR]
    str x2, [sp, #SC_SEED]
    mvn x9, x2
    str x9, [sp, #SC_NOT_SEED]
    str x3, [sp, #SC_WANT_FPCR]
    msr fpcr, x3
    fill x19, CTC_PAT_X19, x2
    fill x20, CTC_PAT_X20, x2
    fill x21, CTC_PAT_X21, x2
    fill x22, CTC_PAT_X22, x2
    fill x23, CTC_PAT_X23, x2
    fill x24, CTC_PAT_X24, x2
    fill x25, CTC_PAT_X25, x2
    fill x26, CTC_PAT_X26, x2
    fill x27, CTC_PAT_X27, x2
    fill x28, CTC_PAT_X28, x2
    /* fp too: nothing walks frame records through this call, and the CFA
     * is described from sp, so the unwinder does not need it. */
    fill x29, CTC_PAT_FP, x2
    fill_d d8, CTC_PAT_D8, x2
    fill_d d9, CTC_PAT_D9, x2
    fill_d d10, CTC_PAT_D10, x2
    fill_d d11, CTC_PAT_D11, x2
    fill_d d12, CTC_PAT_D12, x2
    fill_d d13, CTC_PAT_D13, x2
    fill_d d14, CTC_PAT_D14, x2
    fill_d d15, CTC_PAT_D15, x2

    bl context_sys_swap

    mov x11, #0
    ldr x12, [sp, #SC_SEED]
    check x19, CTC_PAT_X19, CTC_LOST_X19
    check x20, CTC_PAT_X20, CTC_LOST_X20
    check x21, CTC_PAT_X21, CTC_LOST_X21
    check x22, CTC_PAT_X22, CTC_LOST_X22
    check x23, CTC_PAT_X23, CTC_LOST_X23
    check x24, CTC_PAT_X24, CTC_LOST_X24
    check x25, CTC_PAT_X25, CTC_LOST_X25
    check x26, CTC_PAT_X26, CTC_LOST_X26
    check x27, CTC_PAT_X27, CTC_LOST_X27
    check x28, CTC_PAT_X28, CTC_LOST_X28
    check x29, CTC_PAT_FP, CTC_LOST_FP
    check_d d8, CTC_PAT_D8, CTC_LOST_D8
    check_d d9, CTC_PAT_D9, CTC_LOST_D9
    check_d d10, CTC_PAT_D10, CTC_LOST_D10
    check_d d11, CTC_PAT_D11, CTC_LOST_D11
    check_d d12, CTC_PAT_D12, CTC_LOST_D12
    check_d d13, CTC_PAT_D13, CTC_LOST_D13
    check_d d14, CTC_PAT_D14, CTC_LOST_D14
    check_d d15, CTC_PAT_D15, CTC_LOST_D15
    /* FPCR is control state only (the status flags live in FPSR): all of
     * it is per context. */
    mrs x9, fpcr
    ldr x10, [sp, #SC_WANT_FPCR]
    cmp x9, x10
    b.eq .Lsc_fpcr_ok
    orr x11, x11, #CTC_LOST_FPCR
.Lsc_fpcr_ok:
    /* The two copies of the seed on this stack must still be complements. */
    ldr x10, [sp, #SC_NOT_SEED]
    eor x9, x12, x10
    cmn x9, #1
    b.eq .Lsc_stack_ok
    orr x11, x11, #CTC_LOST_STACK
.Lsc_stack_ok:

    ldr x9, [sp, #SC_CALLER_FPCR]
    msr fpcr, x9
    mov x0, x11
    ldp d14, d15, [sp, #SC_D14]
    .cfi_restore DWARF_D8 + 6
    .cfi_restore DWARF_D8 + 7
    ldp d12, d13, [sp, #SC_D12]
    .cfi_restore DWARF_D8 + 4
    .cfi_restore DWARF_D8 + 5
    ldp d10, d11, [sp, #SC_D10]
    .cfi_restore DWARF_D8 + 2
    .cfi_restore DWARF_D8 + 3
    ldp d8, d9, [sp, #SC_D8]
    .cfi_restore DWARF_D8 + 0
    .cfi_restore DWARF_D8 + 1
    ldp x27, x28, [sp, #SC_X27]
    .cfi_restore x27
    .cfi_restore x28
    ldp x25, x26, [sp, #SC_X25]
    .cfi_restore x25
    .cfi_restore x26
    ldp x23, x24, [sp, #SC_X23]
    .cfi_restore x23
    .cfi_restore x24
    ldp x21, x22, [sp, #SC_X21]
    .cfi_restore x21
    .cfi_restore x22
    ldp x19, x20, [sp, #SC_X19]
    .cfi_restore x19
    .cfi_restore x20
    ldp x29, x30, [sp, #SC_FP]
    .cfi_restore x29
    .cfi_restore x30
    add sp, sp, #SC_FRAME
    .cfi_def_cfa_offset 0
    ret
    .cfi_endproc
    .size ctc_swap_checked, .-ctc_swap_checked

/*
 * void ctc_probe_child(struct ctc_probe *p, ...)   // p in x0
 *
 * An entry function for a fresh context.  At entry, before anything is
 * touched, it stores sp, x0..x7, q0..q7 (whole) and FPCR into *p, and
 * copies p->nspill words from sp up (its stack arguments: `blr` pushes
 * nothing, so the first one is at sp).  Then it switches back to p->parent
 * once through ctc_swap_checked, records what that found in
 * p->child_mask, and returns the CTC_PAT_RET_* patterns of p->seed in x0,
 * x1 and both halves of q0.
 *
 *     | stack argument 2 |  sp + 8 at entry
 *     | stack argument 1 |  <- sp at entry: 16-aligned
 */
    .p2align 4
    .globl ctc_probe_child
    .type ctc_probe_child, %function
ctc_probe_child:
    .cfi_startproc
    bti c
    mov x9, sp
    str x9, [x0, #CTC_PROBE_ENTRY_SP]
    stp x0, x1, [x0, #CTC_PROBE_X0]
    stp x2, x3, [x0, #CTC_PROBE_X2]
    stp x4, x5, [x0, #CTC_PROBE_X4]
    stp x6, x7, [x0, #CTC_PROBE_X6]
    stp q0, q1, [x0, #CTC_PROBE_V0]
    stp q2, q3, [x0, #CTC_PROBE_V2]
    stp q4, q5, [x0, #CTC_PROBE_V4]
    stp q6, q7, [x0, #CTC_PROBE_V6]
    mrs x9, fpcr
    str x9, [x0, #CTC_PROBE_ENTRY_FPCR]

    /* Copy min(nspill, CTC_PROBE_MAX_SPILL) stack arguments. */
    ldr x9, [x0, #CTC_PROBE_NSPILL]
    mov x10, #CTC_PROBE_MAX_SPILL
    cmp x9, x10
    csel x9, x9, x10, ls
    add x12, x0, #CTC_PROBE_SPILLED
    mov x10, #0
.Lprobe_copy:
    cmp x10, x9
    b.hs .Lprobe_copied
    ldr x11, [sp, x10, lsl #3]
    str x11, [x12, x10, lsl #3]
    add x10, x10, #1
    b .Lprobe_copy
.Lprobe_copied:

    /* A frame record, and p kept in x19 (saved for our caller). */
    stp x29, x30, [sp, #-PC_FRAME]!
    .cfi_def_cfa_offset PC_FRAME
    .cfi_rel_offset x29, PC_FP
    .cfi_rel_offset x30, PC_FP + 8
    str x19, [sp, #PC_X19]
    .cfi_rel_offset x19, PC_X19
    mov x29, sp
    mov x19, x0
    ldr x0, [x19, #CTC_PROBE_SELF]
    ldr x1, [x19, #CTC_PROBE_PARENT]
    ldr x2, [x19, #CTC_PROBE_SEED]
    ldr x3, [x19, #CTC_PROBE_CHILD_FPCR]
    bl ctc_swap_checked
    str x0, [x19, #CTC_PROBE_CHILD_MASK]

    ldr x9, [x19, #CTC_PROBE_SEED]
    fill x0, CTC_PAT_RET_X0, x9
    fill x1, CTC_PAT_RET_X1, x9
    fill x10, CTC_PAT_RET_V0_LO, x9
    fill x11, CTC_PAT_RET_V0_HI, x9
    fmov d0, x10
    mov v0.d[1], x11
    ldr x19, [sp, #PC_X19]
    .cfi_restore x19
    ldp x29, x30, [sp], #PC_FRAME
    .cfi_restore x29
    .cfi_restore x30
    .cfi_def_cfa_offset 0
    ret
    .cfi_endproc
    .size ctc_probe_child, .-ctc_probe_child

/*
 * void ctc_set_fp_control(uint64_t fpcr)   // x0
 */
    .p2align 4
    .globl ctc_set_fp_control
    .type ctc_set_fp_control, %function
ctc_set_fp_control:
    .cfi_startproc
    bti c
    msr fpcr, x0
    ret
    .cfi_endproc
    .size ctc_set_fp_control, .-ctc_set_fp_control

/*
 * uint64_t ctc_get_fp_control(void)
 *
 * FPCR, all 64 bits as `mrs` reads them.
 */
    .p2align 4
    .globl ctc_get_fp_control
    .type ctc_get_fp_control, %function
ctc_get_fp_control:
    .cfi_startproc
    bti c
    mrs x0, fpcr
    ret
    .cfi_endproc
    .size ctc_get_fp_control, .-ctc_get_fp_control

/*
 * The GNU property note: every global routine above begins with `bti c`
 * and every other branch target is reached by a direct branch or a return,
 * so this object is BTI-clean.  Pointer authentication is not claimed.
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
