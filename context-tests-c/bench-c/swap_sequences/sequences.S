/*
 * sequences.S - candidate instruction sequences for context_sys_swap, to be
 * timed against each other by main.c (see docs/PERFORMANCE.md).  Not part
 * of any build; compile by hand:
 *
 *   d=context-tests-c/bench-c/swap_sequences
 *   cc -O2 -I context-sys/include $d/main.c $d/sequences.S -o /tmp/swap_sequences
 *
 * Every routine has context_sys_swap's contract except where its comment
 * says it drops part of it (those exist only to split the cost).  No CFI:
 * nothing unwinds through them.  Offsets come from context_sys.h.
 */
#include "context_sys.h"

.macro save_gprs
    mov %rsp, CONTEXT_SYS_OFF_RSP(%rdi)
    mov %rbx, CONTEXT_SYS_OFF_RBX(%rdi)
    mov %rbp, CONTEXT_SYS_OFF_RBP(%rdi)
    mov %r12, CONTEXT_SYS_OFF_R12(%rdi)
    mov %r13, CONTEXT_SYS_OFF_R13(%rdi)
    mov %r14, CONTEXT_SYS_OFF_R14(%rdi)
    mov %r15, CONTEXT_SYS_OFF_R15(%rdi)
.endm

.macro load_and_jump
    mov CONTEXT_SYS_OFF_RSP(%rsi), %rax
    mov (%rax), %rcx
    lea 8(%rax), %rsp
    mov CONTEXT_SYS_OFF_RBX(%rsi), %rbx
    mov CONTEXT_SYS_OFF_RBP(%rsi), %rbp
    mov CONTEXT_SYS_OFF_R13(%rsi), %r13
    mov CONTEXT_SYS_OFF_R14(%rsi), %r14
    mov CONTEXT_SYS_OFF_R15(%rsi), %r15
    mov CONTEXT_SYS_OFF_R12(%rsi), %r12
    jmp *%rcx
.endm

    .text

/* The sequence before this change: compare both control words after
 * storing them, load only what differs. */
    .p2align 4
    .globl seq_compare_both
    .type seq_compare_both, @function
seq_compare_both:
    save_gprs
    stmxcsr CONTEXT_SYS_OFF_MXCSR(%rdi)
    fnstcw CONTEXT_SYS_OFF_FPUCW(%rdi)
    mov CONTEXT_SYS_OFF_MXCSR(%rsi), %eax
    xor CONTEXT_SYS_OFF_MXCSR(%rdi), %eax
    test $CONTEXT_SYS_MXCSR_CONTROL_MASK, %eax
    jnz .Lcb_mxcsr
.Lcb_mxcsr_done:
    movzwl CONTEXT_SYS_OFF_FPUCW(%rsi), %eax
    cmp CONTEXT_SYS_OFF_FPUCW(%rdi), %ax
    jne .Lcb_fpucw
.Lcb_fpucw_done:
    load_and_jump
.Lcb_mxcsr:
    ldmxcsr CONTEXT_SYS_OFF_MXCSR(%rsi)
    jmp .Lcb_mxcsr_done
.Lcb_fpucw:
    fldcw CONTEXT_SYS_OFF_FPUCW(%rsi)
    jmp .Lcb_fpucw_done
    .size seq_compare_both, .-seq_compare_both

/* The sequence now in context_sys_swap: MXCSR stored first and always
 * loaded; the x87 control word compared and loaded only if it differs. */
    .p2align 4
    .globl seq_load_mxcsr
    .type seq_load_mxcsr, @function
seq_load_mxcsr:
    stmxcsr CONTEXT_SYS_OFF_MXCSR(%rdi)
    fnstcw CONTEXT_SYS_OFF_FPUCW(%rdi)
    save_gprs
    ldmxcsr CONTEXT_SYS_OFF_MXCSR(%rsi)
    movzwl CONTEXT_SYS_OFF_FPUCW(%rsi), %eax
    cmp CONTEXT_SYS_OFF_FPUCW(%rdi), %ax
    jne .Llm_fpucw
.Llm_fpucw_done:
    load_and_jump
.Llm_fpucw:
    fldcw CONTEXT_SYS_OFF_FPUCW(%rsi)
    jmp .Llm_fpucw_done
    .size seq_load_mxcsr, .-seq_load_mxcsr

/* Boost fcontext's way: store both, load both, no comparison. */
    .p2align 4
    .globl seq_load_both
    .type seq_load_both, @function
seq_load_both:
    stmxcsr CONTEXT_SYS_OFF_MXCSR(%rdi)
    fnstcw CONTEXT_SYS_OFF_FPUCW(%rdi)
    save_gprs
    ldmxcsr CONTEXT_SYS_OFF_MXCSR(%rsi)
    fldcw CONTEXT_SYS_OFF_FPUCW(%rsi)
    load_and_jump
    .size seq_load_both, .-seq_load_both

/* Breakdown only (drops MXCSR and x87 preservation): stmxcsr alone. */
    .p2align 4
    .globl seq_store_mxcsr_only
    .type seq_store_mxcsr_only, @function
seq_store_mxcsr_only:
    stmxcsr CONTEXT_SYS_OFF_MXCSR(%rdi)
    save_gprs
    load_and_jump
    .size seq_store_mxcsr_only, .-seq_store_mxcsr_only

/* Breakdown only (drops MXCSR and x87 preservation): registers alone. */
    .p2align 4
    .globl seq_gprs_only
    .type seq_gprs_only, @function
seq_gprs_only:
    save_gprs
    load_and_jump
    .size seq_gprs_only, .-seq_gprs_only

/* A fresh context starts here: rsp is 8 past a 16-aligned address after
 * the resume word was popped, so the call below enters seq_child with
 * rsp + 8 16-aligned, as the ABI wants. */
    .p2align 4
    .globl seq_child_start
    .type seq_child_start, @function
seq_child_start:
    call seq_child
    ud2
    .size seq_child_start, .-seq_child_start

    .section .note.GNU-stack, "", @progbits
