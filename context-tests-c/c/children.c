/*
 * children.c - hand-written C children for the context tests.
 *
 * Each is an ordinary C function: the tests run it as the entry of a fresh
 * context and also call it directly, and demand the same results.  Whatever
 * gcc (or any C compiler) expects of a caller, these children get it only if
 * the context crate places arguments exactly as a C caller would.
 */
#include <fenv.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ctc.h"

/* The C library's rounding modes, for the Rust tests. */
const int ctc_fe_modes[4] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};

/* ---- the per-thread record used by recording children ---- */

static _Thread_local struct ctc_record ctc_record_tls;

struct ctc_record *ctc_record_this_thread(void) {
    return &ctc_record_tls;
}

struct ctc_record *ctc_record_begin(uint64_t fn_id, uint64_t nargs) {
    struct ctc_record *r = &ctc_record_tls;
    uint64_t calls = r->calls;
    memset(r, 0, sizeof *r);
    r->fn_id = fn_id;
    r->nargs = nargs;
    r->calls = calls + 1;
    return r;
}

uint64_t ctc_record_mix(const struct ctc_record *r) {
    /* A multiply-xorshift fold: every bit of every argument moves the result. */
    uint64_t h = 0x9e3779b97f4a7c15u ^ r->fn_id;
    for (uint64_t i = 0; i < r->nargs && i < CTC_MAX_ARGS; i++) {
        h ^= r->args[i];
        h *= 0xbf58476d1ce4e5b9u;
        h ^= h >> 31;
    }
    return h;
}

/* ---- every scalar type, interleaved, 24 parameters ---- */

/* All twelve C scalar kinds twice over, in an order that alternates the
 * integer and floating classes so that both register files fill up and
 * spill in between each other.  Returns an exact integer fold of the bits. */
int64_t ctc_mix24(int8_t a, uint8_t b, float c, int16_t d, double e, uint16_t f, int32_t g, float h, uint32_t i,
                  int64_t j, double k, uint64_t l, bool m, void *n, float o, int8_t p, double q, uint16_t r,
                  float s, int32_t t, double u, bool v, const char *w, double x) {
    struct ctc_record *rec = ctc_record_begin(1001, 24);
    uint64_t *g_ = rec->args;
    g_[0] = (uint64_t)(int64_t)a;
    g_[1] = b;
    g_[2] = ctc_bits_f32(c);
    g_[3] = (uint64_t)(int64_t)d;
    g_[4] = ctc_bits_f64(e);
    g_[5] = f;
    g_[6] = (uint64_t)(int64_t)g;
    g_[7] = ctc_bits_f32(h);
    g_[8] = i;
    g_[9] = (uint64_t)j;
    g_[10] = ctc_bits_f64(k);
    g_[11] = l;
    g_[12] = m;
    g_[13] = (uint64_t)(uintptr_t)n;
    g_[14] = ctc_bits_f32(o);
    g_[15] = (uint64_t)(int64_t)p;
    g_[16] = ctc_bits_f64(q);
    g_[17] = r;
    g_[18] = ctc_bits_f32(s);
    g_[19] = (uint64_t)(int64_t)t;
    g_[20] = ctc_bits_f64(u);
    g_[21] = v;
    g_[22] = (uint64_t)(uintptr_t)w;
    g_[23] = ctc_bits_f64(x);
    return (int64_t)ctc_record_mix(rec);
}

/* Sixteen floating parameters then eight integers: the last eight floats
 * go on the stack, and on x86_64 the last two integers after them.  Returns a
 * double computed with ordinary (rounded) arithmetic. */
double ctc_fp16_int8(float a0, double a1, float a2, double a3, float a4, double a5, float a6, double a7, float a8,
                     double a9, float a10, double a11, float a12, double a13, float a14, double a15, int8_t b0,
                     uint8_t b1, int16_t b2, uint16_t b3, int32_t b4, uint32_t b5, int64_t b6, uint64_t b7) {
    double f = a0 + 2 * a1 + 3 * a2 + 4 * a3 + 5 * a4 + 6 * a5 + 7 * a6 + 8 * a7;
    f += 9 * a8 + 10 * a9 + 11 * a10 + 12 * a11 + 13 * a12 + 14 * a13 + 15 * a14 + 16 * a15;
    double i = (double)b0 - (double)b1 + (double)b2 - (double)b3 + (double)b4 - (double)b5;
    i += (double)b6 / 3.0 + (double)b7 / 7.0;
    return f * 0.5 + i;
}

/* Twenty-four pointers: six (aarch64: eight) in registers, the rest on the
 * stack. */
uint64_t ctc_ptr24(void *p0, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6, void *p7, void *p8,
                   void *p9, void *p10, void *p11, void *p12, void *p13, void *p14, void *p15, void *p16, void *p17,
                   void *p18, void *p19, void *p20, void *p21, void *p22, void *p23) {
    void *p[24] = {p0,  p1,  p2,  p3,  p4,  p5,  p6,  p7,  p8,  p9,  p10, p11,
                   p12, p13, p14, p15, p16, p17, p18, p19, p20, p21, p22, p23};
    uint64_t h = 0;
    for (int k = 0; k < 24; k++) h = h * 31 + (uint64_t)(uintptr_t)p[k];
    return h;
}

/* No parameters at all. */
uint64_t ctc_none(void) {
    return 0x6e6f6e65u;
}

/* ---- return types ---- */

float ctc_ret_f32(float a, double b, int32_t c) {
    return a * 2.0f + (float)b - (float)c;
}

double ctc_ret_f64(double a, float b, int64_t c) {
    return a / 3.0 + b - (double)c;
}

bool ctc_ret_bool(uint64_t x, int8_t y) {
    return x > 1000 && y < 0;
}

int8_t ctc_ret_i8(int32_t x) {
    return (int8_t)(x * 3);
}

uint16_t ctc_ret_u16(uint32_t x) {
    return (uint16_t)(x ^ 0xbeef);
}

void *ctc_ret_ptr(void *base, size_t offset) {
    return (char *)base + offset;
}

/* Two INTEGER eightbytes: returned in rax:rdx (aarch64: x0:x1). */
struct ctc_pair_u64 {
    uint64_t lo;
    uint64_t hi;
};

struct ctc_pair_u64 ctc_ret_pair(uint64_t a, uint64_t b, double scale) {
    struct ctc_pair_u64 r = {a * 3 + (uint64_t)scale, b ^ 0xa5a5a5a5a5a5a5a5u};
    return r;
}

/* Four int32 packed into two INTEGER eightbytes: rax:rdx (aarch64: x0:x1). */
struct ctc_i32x4 {
    int32_t a, b, c, d;
};

struct ctc_i32x4 ctc_ret_i32x4(int32_t x, int16_t y, int8_t z) {
    struct ctc_i32x4 r = {x, -x, y * 1000, z - 7};
    return r;
}

/* An INTEGER eightbyte then an SSE one: rax and xmm0.  On aarch64 a
 * 16-byte struct that is not a homogeneous float aggregate comes back in
 * x0:x1 whole, the double's bits in x1. */
struct ctc_int_dbl {
    int64_t i;
    double d;
};

struct ctc_int_dbl ctc_ret_int_dbl(int64_t i, double d) {
    struct ctc_int_dbl r = {i * -5, d * 0.25};
    return r;
}

/* An SSE eightbyte then an INTEGER one: xmm0 and rax (aarch64: x0:x1,
 * the double's bits in x0). */
struct ctc_dbl_int {
    double d;
    int64_t i;
};

struct ctc_dbl_int ctc_ret_dbl_int(double d, int64_t i) {
    struct ctc_dbl_int r = {d + 1.5, i + 77};
    return r;
}

/* A 128-bit integer: rax:rdx, low half in rax (aarch64: x0:x1, low in x0). */
unsigned __int128 ctc_ret_u128(uint64_t hi, uint64_t lo) {
    unsigned __int128 v = ((unsigned __int128)hi << 64) | lo;
    return v * 3 + 1;
}

/* ---- variadic children: on x86_64 the caller must set al to bound the vector
 * registers; on aarch64 Linux variadic arguments go where named ones would ---- */

int64_t ctc_va_sum(int count, ...) {
    va_list ap;
    va_start(ap, count);
    int64_t s = 0;
    for (int k = 0; k < count; k++) s = s * 7 + va_arg(ap, int64_t);
    va_end(ap);
    return s;
}

double ctc_va_dsum(int count, ...) {
    va_list ap;
    va_start(ap, count);
    double s = 0;
    for (int k = 0; k < count; k++) s = s * 0.5 + va_arg(ap, double);
    va_end(ap);
    return s;
}

/* ---- children that yield through context_sys_swap ---- */

/* How a yielding child reaches its parent.  With `self == NULL` the child
 * never yields, which is how the tests call it directly. */
struct ctc_yielder {
    struct context_sys_regs *self;
    struct context_sys_regs *parent;
    uint64_t yielded;
    uint64_t yields;
};

static void ctc_yield(struct ctc_yielder *y, uint64_t value) {
    if (y->self == NULL) return;
    y->yielded = value;
    y->yields++;
    context_sys_swap(y->self, y->parent);
}

/* Yields `times` values computed from its arguments, keeping them live in
 * locals (and so in callee-saved registers or on its own stack) across every
 * switch, then returns a fold of everything as a double. */
double ctc_yield_mix(struct ctc_yielder *y, uint64_t times, int8_t a, double b, uint16_t c, float d, int32_t e,
                     double f, uint64_t g, float h, int64_t i, double j, bool k, float l, uint8_t m, double n,
                     int16_t o, float p, uint32_t q, double r, void *s, float t) {
    uint64_t acc = 0;
    double facc = 0;
    for (uint64_t step = 0; step < times; step++) {
        acc = acc * 131 + (uint64_t)(int64_t)a + c + (uint64_t)(int64_t)e + g + (uint64_t)i + k + m;
        acc += (uint64_t)(int64_t)o + q + (uint64_t)(uintptr_t)s + step;
        facc = facc * 0.75 + b + d + f + h + j + l + n + p + r + t;
        ctc_yield(y, acc ^ ctc_bits_f64(facc));
    }
    return facc + (double)(acc % 1000003);
}

/* Sets the rounding mode to `mode` (an FE_* value) in this context, divides
 * before and after each of `times` yields, and returns how many of those
 * divisions rounded as `mode` says.  The parent, which keeps its own mode,
 * checks the same on its side. */
int32_t ctc_yield_rounding(struct ctc_yielder *y, int32_t mode, uint64_t times) {
    if (fesetround(mode) != 0) return -1;
    /* Round-to-nearest takes 1/3 down and 1/10 up, so together they tell
     * each of the other three modes from it. */
    volatile double one = 1.0, three = 3.0, ten = 10.0;
    double third = one / three, tenth = one / ten;
    int32_t good = 0;
    for (uint64_t step = 0; step < times; step++) {
        ctc_yield(y, step);
        if (fegetround() == mode && one / three == third && one / ten == tenth) good++;
    }
    fesetround(FE_TONEAREST);
    return good;
}

/* Yields forever, one counter value at a time; never returns.  Used to
 * check contexts that are abandoned, and ping-pong between two children. */
void ctc_yield_forever(struct ctc_yielder *y) {
    for (uint64_t n = 1;; n++) ctc_yield(y, n);
}

/* ---- a swap schedule among several contexts, run by C workers ---- */

#define CTC_SCHED_MAX 8
#define CTC_SCHED_LOG 256

/* A schedule of switches: workers 1..=n take turns in `order`; index 0 is
 * the host.  Every switch goes through ctc_swap_checked, so each worker
 * also checks its callee-saved registers and floating-point control state
 * survived. */
struct ctc_sched {
    struct context_sys_regs *ctx[CTC_SCHED_MAX + 1];
    const uint8_t *order;
    uint64_t len;
    uint64_t pos;
    uint64_t resumes[CTC_SCHED_MAX + 1];
    uint64_t lost[CTC_SCHED_MAX + 1];
    uint64_t log_len;
    uint64_t log[CTC_SCHED_LOG];
};

/* ctc_swap_checked with the control state worker `me` runs with: each
 * worker picks a different rounding mode and, for odd workers,
 * flush-to-zero (x86_64: MXCSR with DAZ too, and an x87 control word;
 * aarch64: FPCR).  Worker 0, the host, runs with the thread's defaults. */
static uint64_t ctc_sched_swap(struct context_sys_regs *from, const struct context_sys_regs *to, uint64_t seed,
                               uint64_t me) {
#if defined(__x86_64__)
    static const uint16_t cw[4] = {0x037f, 0x077f, 0x0b7f, 0x0e7f};
    uint32_t mxcsr = 0x1f80u | (uint32_t)((me & 3) << 13) | ((me & 1) ? 0x8040u : 0);
    return ctc_swap_checked(from, to, seed, me == 0 ? 0x1f80 : mxcsr, me == 0 ? 0x037f : cw[me & 3]);
#elif defined(__aarch64__)
    /* FPCR.RMode is bits 23:22, FPCR.FZ bit 24. */
    uint64_t fpcr = ((me & 3) << 22) | ((me & 1) ? (UINT64_C(1) << 24) : 0);
    return ctc_swap_checked(from, to, seed, fpcr);
#endif
}

/* The next worker to run, counted as resumed before it runs. */
static uint64_t ctc_sched_next(struct ctc_sched *s) {
    uint64_t next = s->pos < s->len ? s->order[s->pos] : 0;
    s->pos++;
    s->resumes[next]++;
    return next;
}

/* Entry of worker `me`: each time it runs it logs (me, how many times it has
 * run), checks that count against the schedule's, and switches to the next
 * worker (or the host when the schedule ends).  Never returns. */
void ctc_sched_worker(struct ctc_sched *s, uint64_t me) {
    uint64_t runs = 0; /* lives on this worker's own stack */
    for (;;) {
        runs++;
        if (s->log_len < CTC_SCHED_LOG) s->log[s->log_len++] = (me << 32) | runs;
        if (runs != s->resumes[me]) s->lost[me] |= 1u << 16;
        uint64_t next = ctc_sched_next(s);
        uint64_t seed = (me << 56) ^ (runs * 0x9e3779b97f4a7c15u);
        s->lost[me] |= ctc_sched_swap(s->ctx[me], s->ctx[next], seed, me);
    }
}

/* The host's side: starts the schedule and returns when it ends, with the
 * host's own check mask (registers, control state, stack) as it came back. */
uint64_t ctc_sched_run(struct ctc_sched *s, uint64_t seed) {
    uint64_t first = ctc_sched_next(s);
    if (first == 0) return 0;
    s->lost[0] |= ctc_sched_swap(s->ctx[0], s->ctx[first], seed, 0);
    return s->lost[0];
}

/* ---- leaving with context_sys_set ---- */

/* Marks that it ran, then continues in *to without saving anything. */
void ctc_leave_by_set(struct context_sys_regs *to, uint64_t *ran) {
    *ran += 1;
    context_sys_set(to);
}

/* Spoils the saved state of *to (its first callee-saved register and its
 * floating-point control state: x86_64 rbx ^= reg_xor, MXCSR ^= ctl_xor;
 * aarch64 x19 ^= reg_xor, FPCR ^= ctl_xor) and continues in it: the probes
 * must notice. */
void ctc_corrupt_and_set(struct context_sys_regs *to, uint64_t reg_xor, uint32_t ctl_xor) {
#if defined(__x86_64__)
    to->rbx ^= reg_xor;
    to->mxcsr ^= ctl_xor;
#elif defined(__aarch64__)
    to->x19 ^= reg_xor;
    to->fpcr ^= ctl_xor;
#endif
    context_sys_set(to);
}
