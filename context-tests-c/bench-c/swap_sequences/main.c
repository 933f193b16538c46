/*
 * main.c - times each sequence of sequences.S as a round trip (parent ->
 * child -> parent), interleaving the sequences and keeping each one's best
 * batch, so that a busy machine slows them all alike.  Prints ns per round
 * trip.  Build: see sequences.S.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "context_sys.h"

typedef void swap_fn(struct context_sys_regs *from, const struct context_sys_regs *to);
extern swap_fn seq_compare_both, seq_load_mxcsr, seq_load_both, seq_store_mxcsr_only, seq_gprs_only;
extern void seq_child_start(void);

static struct context_sys_regs parent, child;
static swap_fn *current;

/* The child: switch straight back, forever. */
void seq_child(void);
void seq_child(void)
{
    for (;;)
        current(&child, &parent);
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(void)
{
    static const struct {
        const char *name;
        swap_fn *fn;
    } seqs[] = {
        {"compare both, load if different (before)", seq_compare_both},
        {"always load MXCSR, compare x87 CW (now)", seq_load_mxcsr},
        {"always load both (Boost's way)", seq_load_both},
        {"breakdown: GPRs + stmxcsr, no loads", seq_store_mxcsr_only},
        {"breakdown: GPRs only", seq_gprs_only},
    };
    enum { N = sizeof seqs / sizeof seqs[0], BATCH = 20000, ROUNDS = 300, WORDS = 4096 };
    static uint64_t stack[WORDS] __attribute__((aligned(16)));
    double best[N];
    for (int k = 0; k < N; k++)
        best[k] = 1e30;

    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < N; k++) {
            current = seqs[k].fn;
            memset(&child, 0, sizeof child);
            /* Resume word at a 16-aligned slot: after it is popped, rsp is
             * 8 past alignment, so seq_child_start's call aligns the child. */
            stack[WORDS - 2] = (uint64_t)(uintptr_t)seq_child_start;
            child.rsp = (uint64_t)(uintptr_t)&stack[WORDS - 2];
            __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(child.mxcsr), "=m"(child.fpucw));
            double t0 = now_ns();
            for (int i = 0; i < BATCH; i++)
                current(&parent, &child);
            double per = (now_ns() - t0) / BATCH;
            if (per < best[k])
                best[k] = per;
        }
    }
    for (int k = 0; k < N; k++)
        printf("%6.2f ns  %s\n", best[k], seqs[k].name);
    return 0;
}
