/*
 * aarch64_smoke.c - the steps at the top of context_sys.h, in C, against
 * context_sys_aarch64.S: built with aarch64-linux-gnu-gcc and run under
 * qemu-aarch64 by `cargo xtask aarch64`, so that the assembly is checked
 * even where the Rust target is not installed.
 *
 * Ten integer and ten double arguments (x0-x7 and d0-d7 in registers, the
 * rest on the stack in declaration order), a switch back and a resumption,
 * the callee-saved d8 across both switches, the return value, and FPCR
 * kept per context.  Prints "aarch64 smoke: ok" and exits 0 only if every
 * check passed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "context_sys.h"

#if !defined(__aarch64__)
#error "aarch64_smoke.c is the aarch64 smoke test"
#endif

#define STACK_WORDS 8192
static _Alignas(16) uint64_t stack[STACK_WORDS];
static struct context_sys_regs parent, child;
static int failures;

#define CHECK(cond, ...)                 \
    do {                                 \
        if (!(cond)) {                   \
            printf("FAILED: " __VA_ARGS__); \
            printf("\n");                \
            failures++;                  \
        }                                \
    } while (0)

static uint64_t fpcr(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}

static void set_fpcr(uint64_t v) { __asm__ volatile("msr fpcr, %0" ::"r"(v)); }

/* Round toward zero: FPCR.RMode (bits 23:22) = 0b11. */
#define RMODE_ZERO (3u << 22)

static uint64_t seen[10];
static double seen_f[10];
static uint64_t child_fpcr;

static uint64_t entry(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                      uint64_t a7, uint64_t a8, uint64_t a9, double f0, double f1, double f2, double f3, double f4,
                      double f5, double f6, double f7, double f8, double f9) {
    uint64_t a[10] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9};
    double f[10] = {f0, f1, f2, f3, f4, f5, f6, f7, f8, f9};
    memcpy(seen, a, sizeof a);
    memcpy(seen_f, f, sizeof f);
    set_fpcr(fpcr() | RMODE_ZERO); /* the child's own rounding mode */
    /* Every callee-saved register holds something else when the child
     * switches back, so the host's values can only come from its block. */
    __asm__ volatile(
        "fmov d8, #1.0\n fmov d9, #1.0\n fmov d10, #1.0\n fmov d11, #1.0\n"
        "fmov d12, #1.0\n fmov d13, #1.0\n fmov d14, #1.0\n fmov d15, #1.0\n"
        "mov x19, #1\n mov x20, #1\n mov x21, #1\n mov x22, #1\n mov x23, #1\n"
        "mov x24, #1\n mov x25, #1\n mov x26, #1\n mov x27, #1\n mov x28, #1\n" ::
            : "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15", "x19", "x20", "x21", "x22", "x23", "x24", "x25",
              "x26", "x27", "x28");
    context_sys_swap(&child, &parent);
    child_fpcr = fpcr();
    return a0 * 1000 + a9;
}

int main(void) {
    uint64_t *top = stack + STACK_WORDS;
    /* Step 2: a8, a9, f8, f9 spill, in declaration order. */
    double f8 = 8.5, f9 = 9.5;
    const size_t n = 4;
    uint64_t *call_sp = top - n - n % 2;
    call_sp[0] = 109;
    call_sp[1] = 110;
    memcpy(&call_sp[2], &f8, 8);
    memcpy(&call_sp[3], &f9, 8);
    /* Step 3 */
    struct context_sys_boot_frame *frame = (struct context_sys_boot_frame *)call_sp - 1;
    memset(frame, 0, sizeof *frame);
    for (int i = 0; i < 8; i++) {
        double v = i + 0.5;
        frame->gp[i] = 101 + (uint64_t)i;
        memcpy(&frame->fp[i], &v, 8);
    }
    frame->entry = (uint64_t)(uintptr_t)&entry;
    /* Step 4 */
    uint64_t *word = (uint64_t *)((char *)frame - CONTEXT_SYS_RESUME_SP_STEP);
    word[0] = (uint64_t)(uintptr_t)&context_sys_start;
    word[1] = 0;
    /* Step 5 */
    memset(&child, 0, sizeof child);
    child.sp = (uint64_t)(uintptr_t)word;
    child.x19 = (uint64_t)(uintptr_t)&child;
    child.x20 = (uint64_t)(uintptr_t)&parent;
    /* Step 6 */
    context_sys_save_fp_control(&child);
    CHECK(child.fpcr == fpcr(), "save_fp_control stored %llx, FPCR is %llx", (unsigned long long)child.fpcr,
          (unsigned long long)fpcr());

    register double keep __asm__("d8") = 42.25;
    register double keep15 __asm__("d15") = -3.5;
    register uint64_t keep_x __asm__("x28") = 0x2828;
    __asm__ volatile("" : "+w"(keep), "+w"(keep15), "+r"(keep_x));
    uint64_t host_fpcr = fpcr();
    /* Step 7 */
    context_sys_swap(&parent, &child);
    __asm__ volatile("" : "+w"(keep), "+w"(keep15), "+r"(keep_x));
    CHECK(keep == 42.25 && keep15 == -3.5, "d8, d15 were %f, %f after the first switch back", keep, keep15);
    CHECK(keep_x == 0x2828, "x28 was %llx after the first switch back", (unsigned long long)keep_x);
    CHECK(fpcr() == host_fpcr, "the child's FPCR (%llx) leaked into the host (%llx)", (unsigned long long)fpcr(),
          (unsigned long long)host_fpcr);
    for (int i = 0; i < 10; i++) {
        CHECK(seen[i] == 101 + (uint64_t)i, "integer argument %d was %llu", i, (unsigned long long)seen[i]);
        CHECK(seen_f[i] == i + 0.5, "double argument %d was %f", i, seen_f[i]);
    }
    context_sys_swap(&parent, &child);
    __asm__ volatile("" : "+w"(keep), "+w"(keep15), "+r"(keep_x));
    CHECK(keep == 42.25 && keep15 == -3.5, "d8, d15 were %f, %f after the child returned", keep, keep15);
    CHECK(keep_x == 0x2828, "x28 was %llx after the child returned", (unsigned long long)keep_x);
    CHECK((child_fpcr & RMODE_ZERO) == RMODE_ZERO, "the child's FPCR was not kept across its switch (%llx)",
          (unsigned long long)child_fpcr);
    CHECK(fpcr() == host_fpcr, "the host's FPCR was not restored at the return");
    CHECK(child.ret_x0 == 101 * 1000 + 110, "the child returned %llu", (unsigned long long)child.ret_x0);
    CHECK(context_sys_get_current_stack_pointer() % 16 == 0, "sp is not 16-aligned");
    if (failures == 0) printf("aarch64 smoke: ok\n");
    return failures != 0;
}
