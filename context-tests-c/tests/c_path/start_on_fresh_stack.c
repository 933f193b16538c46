/*
 * start_on_fresh_stack.c - the steps at the top of context_sys.h ("Starting
 * fn(arguments) on a fresh stack"), as a C program: no Rust, only the
 * header and the assembly.
 *
 * tests/c_path.rs builds it with the two commands the header gives and
 * compares its output with the lines expected below.  It also builds it
 * once with -DSKIP_SAVE_FP_CONTROL, leaving out step 6, and expects it to
 * die of SIGFPE at the child's first division, as the header says.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "context_sys.h"

/* Step 1: a stack with a 16-aligned top, and two blocks that stay put. */
#define STACK_WORDS 8192 /* 64 KiB */
static _Alignas(16) uint64_t stack[STACK_WORDS];
static struct context_sys_regs parent, child;

/* Seven integer arguments (on x86_64 the seventh goes on the stack; on
 * aarch64 all seven fit in x0..x6) and a double. */
static double entry(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f, uint64_t g, double x) {
    volatile double three = 3.0;
    double third = x / three; /* inexact: SIGFPE if the exception were unmasked */
    printf("child: %llu %llu %llu %llu %llu %llu %llu, x / 3 = %.6f\n", (unsigned long long)a, (unsigned long long)b,
           (unsigned long long)c, (unsigned long long)d, (unsigned long long)e, (unsigned long long)f,
           (unsigned long long)g, third);
    context_sys_swap(&child, &parent); /* switch back; resumed below */
    printf("child: resumed\n");
    return third + (double)(a + b + c + d + e + f + g);
}

/* How many integer arguments travel in registers. */
#if defined(__x86_64__)
#define GP_ARG_REGS 6 /* rdi..r9 */
#else
#define GP_ARG_REGS 8 /* x0..x7 */
#endif
#define INT_ARGS 7

int main(void) {
    uint64_t *top = stack + STACK_WORDS;

    /* Step 2: the integer arguments past the registers (x86_64: g), with
     * one padding word above them when there is an odd number. */
    const size_t n = INT_ARGS > GP_ARG_REGS ? INT_ARGS - GP_ARG_REGS : 0;
    uint64_t *call_sp = top - n - n % 2;
    for (size_t i = 0; i < n; i++) call_sp[i] = INT_ARGS - n + 1 + i; /* g is 7 */
    if (n % 2) call_sp[n] = 0; /* padding */

    /* Step 3: the boot frame right below. */
    struct context_sys_boot_frame *frame = (struct context_sys_boot_frame *)call_sp - 1;
    memset(frame, 0, sizeof *frame);
    for (int i = 0; i < INT_ARGS && i < GP_ARG_REGS; i++) frame->gp[i] = (uint64_t)i + 1; /* a.. in rdi.. [x0..] */
    const double x = 1.0;
#if defined(__x86_64__)
    memcpy(&frame->xmm[0], &x, sizeof x); /* x in xmm0 */
#else
    memcpy(&frame->fp[0], &x, sizeof x); /* x in d0 */
#endif
    frame->entry = (uint64_t)(uintptr_t)&entry;

    /* Step 4: the resume word, in the slot right below the frame. */
    uint64_t *resume = (uint64_t *)((char *)frame - CONTEXT_SYS_RESUME_SP_STEP);
    memset(resume, 0, CONTEXT_SYS_RESUME_SP_STEP);
    *resume = (uint64_t)(uintptr_t)&context_sys_start;

    /* Step 5: the child's block. */
    memset(&child, 0, sizeof child);
#if defined(__x86_64__)
    child.rsp = (uint64_t)(uintptr_t)resume;
    child.rbx = (uint64_t)(uintptr_t)&child;
    child.r12 = (uint64_t)(uintptr_t)&parent;
#else
    child.sp = (uint64_t)(uintptr_t)resume;
    child.x19 = (uint64_t)(uintptr_t)&child;
    child.x20 = (uint64_t)(uintptr_t)&parent;
#endif

    /* Step 6: the caller's floating-point control state. */
#ifndef SKIP_SAVE_FP_CONTROL
    context_sys_save_fp_control(&child);
#endif

    /* Step 7: run it; it switches back once, then returns. */
    context_sys_swap(&parent, &child);
    printf("parent: the child switched back\n");
    context_sys_swap(&parent, &child);
    double result;
#if defined(__x86_64__)
    memcpy(&result, &child.ret_xmm0[0], sizeof result);
#else
    memcpy(&result, &child.ret_v0[0], sizeof result);
#endif
    printf("parent: the child returned %.6f\n", result);
    /* Step 8: to run `child` again, repeat steps 2-6 first. */
    return 0;
}
