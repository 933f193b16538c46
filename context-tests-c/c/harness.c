/*
 * harness.c - the C-only path: a program that uses include/context_sys.h
 * and the assembly with no Rust at all, as a C user would.
 *
 * It prepares fresh contexts by hand (the boot frame, the resume word, rbx
 * and r12, the control state), switches with context_sys_swap, collects
 * return values from the register block, leaves with context_sys_set, and
 * checks context_sys_get_current_stack_pointer.  `cargo xtask abi` builds it
 * with `cc` straight from context-sys/src/context_sys_x86_64.S and runs it;
 * it prints one line per failed check and exits non-zero if any failed.
 */
#include <fenv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "context_sys.h"

static int checks, failures;

#define CHECK(cond, ...)                                              \
    do {                                                              \
        checks++;                                                     \
        if (!(cond)) {                                                \
            failures++;                                               \
            fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__);    \
            fprintf(stderr, __VA_ARGS__);                             \
            fputc('\n', stderr);                                      \
        }                                                             \
    } while (0)

#define STACK_WORDS 8192
static _Alignas(16) uint64_t stack_a[STACK_WORDS];
static _Alignas(16) uint64_t stack_b[STACK_WORDS];

static struct context_sys_regs host, child_a, child_b;

/*
 * Prepares `c` so that the first switch to it calls entry(...) with rdi..r9
 * from gp, xmm0..7 from the low 64 bits in fp, and `nspill` words on the
 * stack, on `stack` (`words` words, top 16-aligned), continuing in `parent`
 * when entry returns.  The same steps as the Rust crate's Context::init.
 *
 *     | padding (0 or 1 word) |  <- top
 *     | spilled words         |  <- call_sp: 16-aligned
 *     | boot frame            |
 *     | &context_sys_start    |  <- c->rsp
 */
static void prepare(struct context_sys_regs *c, struct context_sys_regs *parent, uint64_t *stack, size_t words,
                    uintptr_t entry, const uint64_t gp[6], const uint64_t fp[8], const uint64_t *spill,
                    size_t nspill) {
    uint64_t *top = stack + words;
    size_t pad = nspill % 2;
    uint64_t *call_sp = top - pad - nspill;
    for (size_t i = 0; i < nspill; i++) call_sp[i] = spill[i];
    if (pad) top[-1] = 0;
    struct context_sys_boot_frame *frame = (struct context_sys_boot_frame *)call_sp - 1;
    memset(frame, 0, sizeof *frame);
    for (int i = 0; i < 8; i++) frame->xmm[i] = fp ? fp[i] : 0;
    for (int i = 0; i < 6; i++) frame->gp[i] = gp ? gp[i] : 0;
    frame->entry = entry;
    uint64_t *resume = (uint64_t *)frame - 1;
    *resume = (uint64_t)(uintptr_t)&context_sys_start;
    memset(c, 0, sizeof *c);
    c->rsp = (uint64_t)(uintptr_t)resume;
    c->rbx = (uint64_t)(uintptr_t)c;
    c->r12 = (uint64_t)(uintptr_t)parent;
    context_sys_save_fp_control(c);
}

static uint64_t bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* ---- a child with 6 integer, 8 double and 3 stack arguments that yields once ---- */

static bool yield_enabled;
static uint64_t seen[17];
static int yields;

static double child_args(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f, double x0, double x1,
                         double x2, double x3, double x4, double x5, double x6, double x7, uint64_t s0, uint64_t s1,
                         uint64_t s2) {
    uint64_t v[17] = {a,         b,         c,         d,         e,         f,         bits(x0), bits(x1), bits(x2),
                      bits(x3), bits(x4), bits(x5), bits(x6), bits(x7), s0,        s1,        s2};
    memcpy(seen, v, sizeof v);
    if (yield_enabled) {
        yields++;
        context_sys_swap(&child_a, &host);
    }
    double sum = x0 + x1 * 2 + x2 * 3 + x3 * 4 + x4 * 5 + x5 * 6 + x6 * 7 + x7 * 8;
    return sum + (double)(a + b + c + d + e + f) + (double)(s0 ^ s1 ^ s2);
}

static void test_arguments_yield_and_double_result(void) {
    const uint64_t gp[6] = {1, 0xffffffffffffffffu, 3, 0x8000000000000000u, 5, 6};
    uint64_t fp[8];
    for (int i = 0; i < 8; i++) fp[i] = bits(0.5 + i);
    const uint64_t spill[3] = {0x1111, 0x2222, 0x4444};

    yield_enabled = false;
    double direct = child_args(gp[0], gp[1], gp[2], gp[3], gp[4], gp[5], from_bits(fp[0]), from_bits(fp[1]),
                               from_bits(fp[2]), from_bits(fp[3]), from_bits(fp[4]), from_bits(fp[5]),
                               from_bits(fp[6]), from_bits(fp[7]), spill[0], spill[1], spill[2]);
    memset(seen, 0, sizeof seen);

    yield_enabled = true;
    yields = 0;
    prepare(&child_a, &host, stack_a, STACK_WORDS, (uintptr_t)&child_args, gp, fp, spill, 3);
    context_sys_swap(&host, &child_a);
    CHECK(yields == 1, "child_args did not yield once (%d)", yields);
    for (int i = 0; i < 6; i++) CHECK(seen[i] == gp[i], "integer argument %d: %#llx", i, (unsigned long long)seen[i]);
    for (int i = 0; i < 8; i++) CHECK(seen[6 + i] == fp[i], "double argument %d: %#llx", i, (unsigned long long)seen[6 + i]);
    for (int i = 0; i < 3; i++) CHECK(seen[14 + i] == spill[i], "stack argument %d: %#llx", i, (unsigned long long)seen[14 + i]);
    context_sys_swap(&host, &child_a);
    CHECK(yields == 1, "child_args yielded again");
    CHECK(child_a.ret_xmm0[0] == bits(direct), "double result %#llx, direct call gave %#llx",
          (unsigned long long)child_a.ret_xmm0[0], (unsigned long long)bits(direct));
}

/* ---- two-register results ---- */

struct pair {
    uint64_t lo, hi;
};

static struct pair child_pair(uint64_t a, uint64_t b) {
    struct pair p = {a * 3, b ^ 0x5a5a5a5a5a5a5a5au};
    return p;
}

struct int_dbl {
    int64_t i;
    double d;
};

static struct int_dbl child_int_dbl(int64_t i, double d) {
    struct int_dbl r = {-i, d / 4};
    return r;
}

static void test_struct_results(void) {
    const uint64_t gp[6] = {0x0123456789abcdefu, 42, 0, 0, 0, 0};
    prepare(&child_a, &host, stack_a, STACK_WORDS, (uintptr_t)&child_pair, gp, NULL, NULL, 0);
    context_sys_swap(&host, &child_a);
    struct pair direct = child_pair(gp[0], gp[1]);
    CHECK(child_a.ret_rax == direct.lo && child_a.ret_rdx == direct.hi, "pair result in rax:rdx");

    const uint64_t gp2[6] = {(uint64_t)-77, 0, 0, 0, 0, 0};
    const uint64_t fp2[8] = {bits(10.0), 0, 0, 0, 0, 0, 0, 0};
    prepare(&child_a, &host, stack_a, STACK_WORDS, (uintptr_t)&child_int_dbl, gp2, fp2, NULL, 0);
    context_sys_swap(&host, &child_a);
    struct int_dbl d2 = child_int_dbl(-77, 10.0);
    CHECK((int64_t)child_a.ret_rax == d2.i && child_a.ret_xmm0[0] == bits(d2.d), "int/double result in rax, xmm0");
}

/* ---- leaving with context_sys_set ---- */

static int set_ran;

static void child_set(void) {
    set_ran++;
    context_sys_set(&host);
}

static void test_set(void) {
    volatile uint64_t local = 0xfeedfacecafebeefu;
    set_ran = 0;
    prepare(&child_a, &host, stack_a, STACK_WORDS, (uintptr_t)&child_set, NULL, NULL, NULL, 0);
    context_sys_swap(&host, &child_a);
    CHECK(set_ran == 1, "the child that leaves by set ran %d times", set_ran);
    CHECK(local == 0xfeedfacecafebeefu, "a local of the host changed across set");
}

/* ---- two children switching straight to each other ---- */

static uint64_t ping_count, pong_count;

static void child_ping(uint64_t rounds) {
    for (uint64_t i = 0; i < rounds; i++) {
        ping_count++;
        context_sys_swap(&child_a, &child_b);
    }
}

static void child_pong(void) {
    for (;;) {
        pong_count++;
        CHECK(pong_count == ping_count, "ping %llu, pong %llu", (unsigned long long)ping_count,
              (unsigned long long)pong_count);
        context_sys_swap(&child_b, &child_a);
    }
}

static void test_ping_pong(void) {
    const uint64_t rounds[6] = {1000, 0, 0, 0, 0, 0};
    ping_count = pong_count = 0;
    prepare(&child_a, &host, stack_a, STACK_WORDS, (uintptr_t)&child_ping, rounds, NULL, NULL, 0);
    prepare(&child_b, &host, stack_b, STACK_WORDS, (uintptr_t)&child_pong, NULL, NULL, NULL, 0);
    context_sys_swap(&host, &child_a);
    CHECK(ping_count == 1000 && pong_count == 1000, "ping-pong counts %llu, %llu", (unsigned long long)ping_count,
          (unsigned long long)pong_count);
}

/* ---- control state: a fresh child starts with the state at preparation ---- */

static int child_round;

static void child_rounding(void) {
    child_round = fegetround();
    context_sys_swap(&child_a, &host);
    child_round = child_round == fegetround() ? child_round : -1;
}

static void test_rounding(void) {
    fesetround(FE_UPWARD);
    prepare(&child_a, &host, stack_a, STACK_WORDS, (uintptr_t)&child_rounding, NULL, NULL, NULL, 0);
    fesetround(FE_TONEAREST);
    context_sys_swap(&host, &child_a);
    CHECK(child_round == FE_UPWARD, "the child started with rounding mode %#x, not upward", child_round);
    CHECK(fegetround() == FE_TONEAREST, "the host's rounding mode changed");
    context_sys_swap(&host, &child_a);
    CHECK(child_round == FE_UPWARD, "the child's rounding mode changed across a switch");
    CHECK(fegetround() == FE_TONEAREST, "the host's rounding mode changed on the child's return");
}

/* ---- the stack pointer ---- */

static void test_stack_pointer(void) {
    uint64_t sp = context_sys_get_current_stack_pointer();
    uint64_t here;
    __asm__ volatile("mov %%rsp, %0" : "=r"(here));
    CHECK(sp % 16 == 0, "rsp after a call is %#llx, not 16-aligned", (unsigned long long)sp);
    CHECK(sp == here, "get_current_stack_pointer gave %#llx, rsp is %#llx", (unsigned long long)sp,
          (unsigned long long)here);
}

int main(void) {
    test_arguments_yield_and_double_result();
    test_struct_results();
    test_set();
    test_ping_pong();
    test_rounding();
    test_stack_pointer();
    printf("c harness: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
