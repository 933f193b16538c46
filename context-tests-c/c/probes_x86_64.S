/*
 * probes_x86_64.S - assembly probes that check what C cannot see: the
 * callee-saved registers, MXCSR, the x87 control word and the stack pointer
 * across a context switch and at a fresh context's entry.
 *
 * Offsets of struct ctc_probe come from ctc.h and those of the context
 * register block from context_sys.h; the only numbers written here are the
 * probes' own frame slots, defined once below.
 */

#include "ctc.h"

/*
 * Frame of ctc_swap_checked, above its six pushed registers:
 *
 *     | return address      |
 *     | rbp rbx r12..r15    |  six pushes (48 bytes)
 *     | not_seed            |  rsp + SC_NOT_SEED
 *     | cur_fpucw           |  rsp + SC_CUR_FPUCW  (scratch)
 *     | cur_mxcsr           |  rsp + SC_CUR_MXCSR  (scratch)
 *     | want_fpucw          |  rsp + SC_WANT_FPUCW
 *     | want_mxcsr          |  rsp + SC_WANT_MXCSR
 *     | seed                |  rsp + SC_SEED
 *     | caller_fpucw        |  rsp + SC_CALLER_FPUCW
 *     | caller_mxcsr        |  rsp + SC_CALLER_MXCSR  <- rsp (16-aligned)
 *
 * Entry rsp is 8 mod 16; six pushes keep it 8 mod 16; SC_FRAME = 40 makes
 * it 0 mod 16 at the call of context_sys_swap, as the ABI requires.
 */
#define SC_CALLER_MXCSR 0
#define SC_CALLER_FPUCW 4
#define SC_SEED 8
#define SC_WANT_MXCSR 16
#define SC_WANT_FPUCW 20
#define SC_CUR_MXCSR 24
#define SC_CUR_FPUCW 28
#define SC_NOT_SEED 32
#define SC_FRAME 40

/* reg = seed ^ pattern */
.macro fill reg, pat, seed
    movabs $\pat, \reg
    xor \seed, \reg
.endm

/* if reg != seed ^ pattern: rax |= bit.  Clobbers rcx. */
.macro check reg, pat, seed, bit
    movabs $\pat, %rcx
    xor \seed, %rcx
    cmp %rcx, \reg
    je .Lcheck_ok\@
    or $\bit, %rax
.Lcheck_ok\@:
.endm

    .text

/*
 * uint64_t ctc_swap_checked(struct context_sys_regs *from,   // rdi
 *                           const struct context_sys_regs *to,  // rsi
 *                           uint64_t seed,                    // rdx
 *                           uint32_t mxcsr,                   // ecx
 *                           uint16_t fpucw)                   // r8w
 *
 * Puts recognisable values in every piece of state a switch must keep,
 * switches away, and when resumed reports (as CTC_LOST_* bits) which of
 * them changed.  Restores its caller's registers and control state.
 */
    .p2align 4
    .globl ctc_swap_checked
    .type ctc_swap_checked, @function
ctc_swap_checked:
    .cfi_startproc
    push %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    push %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    push %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    push %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    push %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    push %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    sub $SC_FRAME, %rsp
    .cfi_adjust_cfa_offset SC_FRAME

    stmxcsr SC_CALLER_MXCSR(%rsp)
    fnstcw SC_CALLER_FPUCW(%rsp)
    mov %rdx, SC_SEED(%rsp)
    mov %rdx, %rax
    not %rax
    mov %rax, SC_NOT_SEED(%rsp)
    mov %ecx, SC_WANT_MXCSR(%rsp)
    mov %r8w, SC_WANT_FPUCW(%rsp)
    ldmxcsr SC_WANT_MXCSR(%rsp)
    fldcw SC_WANT_FPUCW(%rsp)
    fill %rbx, CTC_PAT_RBX, %rdx
    fill %rbp, CTC_PAT_RBP, %rdx
    fill %r12, CTC_PAT_R12, %rdx
    fill %r13, CTC_PAT_R13, %rdx
    fill %r14, CTC_PAT_R14, %rdx
    fill %r15, CTC_PAT_R15, %rdx

    call context_sys_swap

    xor %eax, %eax
    mov SC_SEED(%rsp), %rdx
    check %rbx, CTC_PAT_RBX, %rdx, CTC_LOST_RBX
    check %rbp, CTC_PAT_RBP, %rdx, CTC_LOST_RBP
    check %r12, CTC_PAT_R12, %rdx, CTC_LOST_R12
    check %r13, CTC_PAT_R13, %rdx, CTC_LOST_R13
    check %r14, CTC_PAT_R14, %rdx, CTC_LOST_R14
    check %r15, CTC_PAT_R15, %rdx, CTC_LOST_R15
    /* MXCSR: only the control bits are callee-saved. */
    stmxcsr SC_CUR_MXCSR(%rsp)
    mov SC_CUR_MXCSR(%rsp), %ecx
    xor SC_WANT_MXCSR(%rsp), %ecx
    and $CONTEXT_SYS_MXCSR_CONTROL_MASK, %ecx
    jz .Lsc_mxcsr_ok
    or $CTC_LOST_MXCSR, %rax
.Lsc_mxcsr_ok:
    fnstcw SC_CUR_FPUCW(%rsp)
    movzwl SC_CUR_FPUCW(%rsp), %ecx
    cmp SC_WANT_FPUCW(%rsp), %cx
    je .Lsc_fpucw_ok
    or $CTC_LOST_FPUCW, %rax
.Lsc_fpucw_ok:
    /* The two copies of the seed on this stack must still be complements. */
    mov SC_SEED(%rsp), %rcx
    xor SC_NOT_SEED(%rsp), %rcx
    cmp $-1, %rcx
    je .Lsc_stack_ok
    or $CTC_LOST_STACK, %rax
.Lsc_stack_ok:

    ldmxcsr SC_CALLER_MXCSR(%rsp)
    fldcw SC_CALLER_FPUCW(%rsp)
    add $SC_FRAME, %rsp
    .cfi_adjust_cfa_offset -SC_FRAME
    pop %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    pop %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    pop %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    pop %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    pop %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    pop %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    ret
    .cfi_endproc
    .size ctc_swap_checked, .-ctc_swap_checked

/*
 * void ctc_probe_child(struct ctc_probe *p, ...)   // p in rdi
 *
 * An entry function for a fresh context.  At entry, before anything is
 * touched, it stores rsp, rdi..r9, rax, xmm0..xmm7 (whole), MXCSR and the
 * x87 control word into *p, and copies p->nspill words from above its
 * return address (its stack arguments).  Then it switches back to
 * p->parent once through ctc_swap_checked, records what that found in
 * p->child_mask, and returns the CTC_PAT_RET_* patterns of p->seed in rax,
 * rdx and both halves of xmm0.
 *
 *     | stack argument 2 |  rsp + 16 at entry
 *     | stack argument 1 |  rsp + 8 at entry: 16-aligned
 *     | return address   |  <- rsp at entry
 */
    .p2align 4
    .globl ctc_probe_child
    .type ctc_probe_child, @function
ctc_probe_child:
    .cfi_startproc
    mov %rsp, CTC_PROBE_ENTRY_RSP(%rdi)
    mov %rdi, CTC_PROBE_RDI(%rdi)
    mov %rsi, CTC_PROBE_RSI(%rdi)
    mov %rdx, CTC_PROBE_RDX(%rdi)
    mov %rcx, CTC_PROBE_RCX(%rdi)
    mov %r8, CTC_PROBE_R8(%rdi)
    mov %r9, CTC_PROBE_R9(%rdi)
    mov %rax, CTC_PROBE_RAX(%rdi)
    movdqu %xmm0, CTC_PROBE_XMM0(%rdi)
    movdqu %xmm1, CTC_PROBE_XMM1(%rdi)
    movdqu %xmm2, CTC_PROBE_XMM2(%rdi)
    movdqu %xmm3, CTC_PROBE_XMM3(%rdi)
    movdqu %xmm4, CTC_PROBE_XMM4(%rdi)
    movdqu %xmm5, CTC_PROBE_XMM5(%rdi)
    movdqu %xmm6, CTC_PROBE_XMM6(%rdi)
    movdqu %xmm7, CTC_PROBE_XMM7(%rdi)
    stmxcsr CTC_PROBE_ENTRY_MXCSR(%rdi)
    fnstcw CTC_PROBE_ENTRY_FPUCW(%rdi)

    /* Copy min(nspill, CTC_PROBE_MAX_SPILL) stack arguments. */
    mov CTC_PROBE_NSPILL(%rdi), %rcx
    cmp $CTC_PROBE_MAX_SPILL, %rcx
    jbe .Lprobe_count_ok
    mov $CTC_PROBE_MAX_SPILL, %ecx
.Lprobe_count_ok:
    xor %r10d, %r10d
.Lprobe_copy:
    cmp %rcx, %r10
    jae .Lprobe_copied
    mov 8(%rsp,%r10,8), %r11
    mov %r11, CTC_PROBE_SPILLED(%rdi,%r10,8)
    inc %r10
    jmp .Lprobe_copy
.Lprobe_copied:

    /* Keep p in rbx (saved for our caller); rsp becomes 16-aligned. */
    push %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    mov %rdi, %rbx
    mov CTC_PROBE_SELF(%rbx), %rdi
    mov CTC_PROBE_PARENT(%rbx), %rsi
    mov CTC_PROBE_SEED(%rbx), %rdx
    mov CTC_PROBE_CHILD_MXCSR(%rbx), %ecx
    movzwl CTC_PROBE_CHILD_FPUCW(%rbx), %r8d
    call ctc_swap_checked
    mov %rax, CTC_PROBE_CHILD_MASK(%rbx)

    mov CTC_PROBE_SEED(%rbx), %rcx
    fill %rax, CTC_PAT_RET_RAX, %rcx
    fill %rdx, CTC_PAT_RET_RDX, %rcx
    fill %r8, CTC_PAT_RET_XMM_LO, %rcx
    fill %r9, CTC_PAT_RET_XMM_HI, %rcx
    movq %r8, %xmm0
    movq %r9, %xmm1
    punpcklqdq %xmm1, %xmm0
    pop %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    ret
    .cfi_endproc
    .size ctc_probe_child, .-ctc_probe_child

/*
 * void ctc_set_fp_control(uint32_t mxcsr,   // edi
 *                         uint16_t fpucw)   // si
 *
 * A leaf: uses the red zone below rsp for the two memory operands.
 */
    .p2align 4
    .globl ctc_set_fp_control
    .type ctc_set_fp_control, @function
ctc_set_fp_control:
    .cfi_startproc
    mov %edi, -8(%rsp)
    ldmxcsr -8(%rsp)
    mov %si, -4(%rsp)
    fldcw -4(%rsp)
    ret
    .cfi_endproc
    .size ctc_set_fp_control, .-ctc_set_fp_control

/*
 * uint64_t ctc_get_fp_control(void)
 *
 * MXCSR in bits 0..31, the x87 control word in bits 32..47.
 */
    .p2align 4
    .globl ctc_get_fp_control
    .type ctc_get_fp_control, @function
ctc_get_fp_control:
    .cfi_startproc
    stmxcsr -8(%rsp)
    fnstcw -4(%rsp)
    mov -8(%rsp), %eax
    movzwl -4(%rsp), %ecx
    shl $32, %rcx
    or %rcx, %rax
    ret
    .cfi_endproc
    .size ctc_get_fp_control, .-ctc_get_fp_control

    .section .note.GNU-stack, "", @progbits
