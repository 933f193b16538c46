/*
 * ctc.h - declarations shared by the C test children, the assembly probes
 * and (through hand-written mirrors checked in Rust) the tests of
 * context-tests-c.
 *
 * Like context_sys.h, the offsets the assembly probes use are defined here
 * once as numbers and checked against the C structs with _Static_assert; the
 * Rust mirrors are checked against the same numbers with offset_of!.
 */
#ifndef CTC_H
#define CTC_H

#include "context_sys.h"

#if defined(__x86_64__)

/* x86_64 (System V). */

/* ---- struct ctc_probe: what the probe child saw and what it was told ---- */

/* Filled by ctc_probe_child at entry, before it touches any register. */
#define CTC_PROBE_ENTRY_RSP 0     /* rsp at entry: points at the return address */
/* rdi, rsi, rdx, rcx, r8, r9 at entry (ctc_probe.gp[0..6]) */
#define CTC_PROBE_RDI 8
#define CTC_PROBE_RSI 16
#define CTC_PROBE_RDX 24
#define CTC_PROBE_RCX 32
#define CTC_PROBE_R8 40
#define CTC_PROBE_R9 48
#define CTC_PROBE_RAX 56          /* rax at entry (al bounds a variadic callee's vector registers) */
/* xmm0..xmm7 at entry, all 128 bits each (ctc_probe.xmm[0..8]) */
#define CTC_PROBE_XMM0 64
#define CTC_PROBE_XMM1 80
#define CTC_PROBE_XMM2 96
#define CTC_PROBE_XMM3 112
#define CTC_PROBE_XMM4 128
#define CTC_PROBE_XMM5 144
#define CTC_PROBE_XMM6 160
#define CTC_PROBE_XMM7 176
#define CTC_PROBE_ENTRY_MXCSR 192 /* MXCSR at entry */
#define CTC_PROBE_ENTRY_FPUCW 196 /* x87 control word at entry */
/* Inputs. */
#define CTC_PROBE_SELF 200        /* the child's own register block */
#define CTC_PROBE_PARENT 208      /* the block to swap back to once */
#define CTC_PROBE_SEED 216        /* seeds the register patterns */
#define CTC_PROBE_CHILD_MXCSR 224 /* MXCSR the child runs with while suspended */
#define CTC_PROBE_CHILD_FPUCW 228 /* x87 control word likewise */
#define CTC_PROBE_NSPILL 232      /* how many stack arguments to copy (at most 24) */
/* Results. */
#define CTC_PROBE_CHILD_MASK 240  /* what the child found changed when resumed */
#define CTC_PROBE_SPILLED 248     /* the stack arguments as the child saw them */
#define CTC_PROBE_MAX_SPILL 24
#define CTC_PROBE_SIZE 440

/* How far above the entry function's rsp its first stack argument is: the
 * return address that `call` pushed lies between. */
#define CTC_PROBE_ARGS_ABOVE_SP 8

/* Bits of the masks returned by ctc_swap_checked and stored in
 * ctc_probe.child_mask: which piece of state was not as it was left. */
#define CTC_LOST_RBX 0x1
#define CTC_LOST_RBP 0x2
#define CTC_LOST_R12 0x4
#define CTC_LOST_R13 0x8
#define CTC_LOST_R14 0x10
#define CTC_LOST_R15 0x20
#define CTC_LOST_MXCSR 0x40
#define CTC_LOST_FPUCW 0x80
#define CTC_LOST_STACK 0x100

/* The patterns a seed turns into: register = seed XOR constant. */
#define CTC_PAT_RBX 0x0b0b0b0b1b1b1b1b
#define CTC_PAT_RBP 0x0d0d0d0d1d1d1d1d
#define CTC_PAT_R12 0x1212121202020202
#define CTC_PAT_R13 0x1313131303030303
#define CTC_PAT_R14 0x1414141404040404
#define CTC_PAT_R15 0x1515151505050505
/* What ctc_probe_child returns: rax = seed ^ RET_RAX, rdx = seed ^ RET_RDX,
 * xmm0 = { seed ^ RET_XMM_LO, seed ^ RET_XMM_HI }. */
#define CTC_PAT_RET_RAX 0x7261787261787261
#define CTC_PAT_RET_RDX 0x7264787264787264
#define CTC_PAT_RET_XMM_LO 0x786d6d306c6f7730
#define CTC_PAT_RET_XMM_HI 0x786d6d3068696768

#elif defined(__aarch64__)

/* ---- struct ctc_probe: what the probe child saw and what it was told ---- */

/* aarch64 (AAPCS64). Filled by ctc_probe_child at entry, before it touches
 * any register. */
#define CTC_PROBE_ENTRY_SP 0      /* sp at entry: the first stack argument */
/* x0..x7 at entry (ctc_probe.gp[0..8]) */
#define CTC_PROBE_X0 8
#define CTC_PROBE_X1 16
#define CTC_PROBE_X2 24
#define CTC_PROBE_X3 32
#define CTC_PROBE_X4 40
#define CTC_PROBE_X5 48
#define CTC_PROBE_X6 56
#define CTC_PROBE_X7 64
#define CTC_PROBE_PAD0 72         /* keeps v[] where `stp q` can store it (a multiple of 16) */
/* q0..q7 at entry, all 128 bits each (ctc_probe.v[0..8]) */
#define CTC_PROBE_V0 80
#define CTC_PROBE_V1 96
#define CTC_PROBE_V2 112
#define CTC_PROBE_V3 128
#define CTC_PROBE_V4 144
#define CTC_PROBE_V5 160
#define CTC_PROBE_V6 176
#define CTC_PROBE_V7 192
#define CTC_PROBE_ENTRY_FPCR 208  /* FPCR at entry */
/* Inputs. */
#define CTC_PROBE_SELF 216        /* the child's own register block */
#define CTC_PROBE_PARENT 224      /* the block to swap back to once */
#define CTC_PROBE_SEED 232        /* seeds the register patterns */
#define CTC_PROBE_CHILD_FPCR 240  /* FPCR the child runs with while suspended */
#define CTC_PROBE_NSPILL 248      /* how many stack arguments to copy (at most 24) */
/* Results. */
#define CTC_PROBE_CHILD_MASK 256  /* what the child found changed when resumed */
#define CTC_PROBE_SPILLED 264     /* the stack arguments as the child saw them */
#define CTC_PROBE_MAX_SPILL 24
#define CTC_PROBE_SIZE 456

/* How far above the entry function's sp its first stack argument is: on
 * aarch64 `blr` pushes nothing, so sp points at it. */
#define CTC_PROBE_ARGS_ABOVE_SP 0

/* Bits of the masks returned by ctc_swap_checked and stored in
 * ctc_probe.child_mask: which piece of state was not as it was left. */
#define CTC_LOST_X19 0x1
#define CTC_LOST_X20 0x2
#define CTC_LOST_X21 0x4
#define CTC_LOST_X22 0x8
#define CTC_LOST_X23 0x10
#define CTC_LOST_X24 0x20
#define CTC_LOST_X25 0x40
#define CTC_LOST_X26 0x80
#define CTC_LOST_X27 0x100
#define CTC_LOST_X28 0x200
#define CTC_LOST_FP 0x400
#define CTC_LOST_D8 0x800
#define CTC_LOST_D9 0x1000
#define CTC_LOST_D10 0x2000
#define CTC_LOST_D11 0x4000
#define CTC_LOST_D12 0x8000
#define CTC_LOST_D13 0x10000
#define CTC_LOST_D14 0x20000
#define CTC_LOST_D15 0x40000
#define CTC_LOST_FPCR 0x80000
#define CTC_LOST_STACK 0x100000

/* The patterns a seed turns into: register = seed XOR constant. */
#define CTC_PAT_X19 0x1919191909090909
#define CTC_PAT_X20 0x2020202010101010
#define CTC_PAT_X21 0x2121212111111111
#define CTC_PAT_X22 0x2222222212121212
#define CTC_PAT_X23 0x2323232313131313
#define CTC_PAT_X24 0x2424242414141414
#define CTC_PAT_X25 0x2525252515151515
#define CTC_PAT_X26 0x2626262616161616
#define CTC_PAT_X27 0x2727272717171717
#define CTC_PAT_X28 0x2828282818181818
#define CTC_PAT_FP 0x2929292919191919
/* d8..d15 get bit patterns (moved with fmov, never computed with). */
#define CTC_PAT_D8 0x0808080880808080
#define CTC_PAT_D9 0x0909090990909090
#define CTC_PAT_D10 0x1010101001010101
#define CTC_PAT_D11 0x1111111101111111
#define CTC_PAT_D12 0x1212121201212121
#define CTC_PAT_D13 0x1313131301313131
#define CTC_PAT_D14 0x1414141401414141
#define CTC_PAT_D15 0x1515151501515151
/* What ctc_probe_child returns: x0 = seed ^ RET_X0, x1 = seed ^ RET_X1,
 * q0 = { seed ^ RET_V0_LO, seed ^ RET_V0_HI }. */
#define CTC_PAT_RET_X0 0x7830783078307830
#define CTC_PAT_RET_X1 0x7831783178317831
#define CTC_PAT_RET_V0_LO 0x76306c6f76306c6f
#define CTC_PAT_RET_V0_HI 0x7630686976306869

#else
#error "ctc.h: the target must be x86_64 or aarch64"
#endif

#ifndef __ASSEMBLER__

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)

struct ctc_probe {
    uint64_t entry_rsp;
    uint64_t gp[6];
    uint64_t rax;
    uint64_t xmm[8][2];
    uint32_t entry_mxcsr;
    uint16_t entry_fpucw;
    uint16_t pad0;
    struct context_sys_regs *self;
    struct context_sys_regs *parent;
    uint64_t seed;
    uint32_t child_mxcsr;
    uint16_t child_fpucw;
    uint16_t pad1;
    uint64_t nspill;
    uint64_t child_mask;
    uint64_t spilled[CTC_PROBE_MAX_SPILL];
};

_Static_assert(offsetof(struct ctc_probe, entry_rsp) == CTC_PROBE_ENTRY_RSP, "entry_rsp");
_Static_assert(offsetof(struct ctc_probe, gp[0]) == CTC_PROBE_RDI, "rdi");
_Static_assert(offsetof(struct ctc_probe, gp[1]) == CTC_PROBE_RSI, "rsi");
_Static_assert(offsetof(struct ctc_probe, gp[2]) == CTC_PROBE_RDX, "rdx");
_Static_assert(offsetof(struct ctc_probe, gp[3]) == CTC_PROBE_RCX, "rcx");
_Static_assert(offsetof(struct ctc_probe, gp[4]) == CTC_PROBE_R8, "r8");
_Static_assert(offsetof(struct ctc_probe, gp[5]) == CTC_PROBE_R9, "r9");
_Static_assert(offsetof(struct ctc_probe, rax) == CTC_PROBE_RAX, "rax");
_Static_assert(offsetof(struct ctc_probe, xmm[0]) == CTC_PROBE_XMM0, "xmm0");
_Static_assert(offsetof(struct ctc_probe, xmm[1]) == CTC_PROBE_XMM1, "xmm1");
_Static_assert(offsetof(struct ctc_probe, xmm[2]) == CTC_PROBE_XMM2, "xmm2");
_Static_assert(offsetof(struct ctc_probe, xmm[3]) == CTC_PROBE_XMM3, "xmm3");
_Static_assert(offsetof(struct ctc_probe, xmm[4]) == CTC_PROBE_XMM4, "xmm4");
_Static_assert(offsetof(struct ctc_probe, xmm[5]) == CTC_PROBE_XMM5, "xmm5");
_Static_assert(offsetof(struct ctc_probe, xmm[6]) == CTC_PROBE_XMM6, "xmm6");
_Static_assert(offsetof(struct ctc_probe, xmm[7]) == CTC_PROBE_XMM7, "xmm7");
_Static_assert(offsetof(struct ctc_probe, entry_mxcsr) == CTC_PROBE_ENTRY_MXCSR, "entry_mxcsr");
_Static_assert(offsetof(struct ctc_probe, entry_fpucw) == CTC_PROBE_ENTRY_FPUCW, "entry_fpucw");
_Static_assert(offsetof(struct ctc_probe, self) == CTC_PROBE_SELF, "self");
_Static_assert(offsetof(struct ctc_probe, parent) == CTC_PROBE_PARENT, "parent");
_Static_assert(offsetof(struct ctc_probe, seed) == CTC_PROBE_SEED, "seed");
_Static_assert(offsetof(struct ctc_probe, child_mxcsr) == CTC_PROBE_CHILD_MXCSR, "child_mxcsr");
_Static_assert(offsetof(struct ctc_probe, child_fpucw) == CTC_PROBE_CHILD_FPUCW, "child_fpucw");
_Static_assert(offsetof(struct ctc_probe, nspill) == CTC_PROBE_NSPILL, "nspill");
_Static_assert(offsetof(struct ctc_probe, child_mask) == CTC_PROBE_CHILD_MASK, "child_mask");
_Static_assert(offsetof(struct ctc_probe, spilled) == CTC_PROBE_SPILLED, "spilled");
_Static_assert(sizeof(struct ctc_probe) == CTC_PROBE_SIZE, "probe size");

/* ---- the assembly probes (probes_x86_64.S) ---- */

/* Loads MXCSR = mxcsr, x87 CW = fpucw, and rbx, rbp, r12..r15 with the
 * patterns of `seed`; keeps two copies of the seed on its stack; calls
 * context_sys_swap(from, to).  When something resumes `from`, it checks all
 * of that state and returns a CTC_LOST_* mask of what changed (0 = intact),
 * after restoring the caller's registers and control state. */
uint64_t ctc_swap_checked(struct context_sys_regs *from, const struct context_sys_regs *to, uint64_t seed,
                          uint32_t mxcsr, uint16_t fpucw);

/* An entry function for a fresh context: records its entry state into *p
 * (rdi), copies p->nspill stack arguments, then behaves like
 * ctc_swap_checked(p->self, p->parent, p->seed, p->child_mxcsr,
 * p->child_fpucw) storing the mask in p->child_mask, and returns the
 * CTC_PAT_RET_* patterns in rax, rdx and xmm0. */
void ctc_probe_child(struct ctc_probe *p, ...);

/* Sets the calling thread's MXCSR and x87 control word. */
void ctc_set_fp_control(uint32_t mxcsr, uint16_t fpucw);
/* Reads them: MXCSR in the low 32 bits, the control word in bits 32..47. */
uint64_t ctc_get_fp_control(void);

#elif defined(__aarch64__)

struct ctc_probe {
    uint64_t entry_sp;
    uint64_t gp[8];
    uint64_t pad0;
    uint64_t v[8][2];
    uint64_t entry_fpcr;
    struct context_sys_regs *self;
    struct context_sys_regs *parent;
    uint64_t seed;
    uint64_t child_fpcr;
    uint64_t nspill;
    uint64_t child_mask;
    uint64_t spilled[CTC_PROBE_MAX_SPILL];
};

_Static_assert(offsetof(struct ctc_probe, entry_sp) == CTC_PROBE_ENTRY_SP, "entry_sp");
_Static_assert(offsetof(struct ctc_probe, gp[0]) == CTC_PROBE_X0, "x0");
_Static_assert(offsetof(struct ctc_probe, gp[1]) == CTC_PROBE_X1, "x1");
_Static_assert(offsetof(struct ctc_probe, gp[2]) == CTC_PROBE_X2, "x2");
_Static_assert(offsetof(struct ctc_probe, gp[3]) == CTC_PROBE_X3, "x3");
_Static_assert(offsetof(struct ctc_probe, gp[4]) == CTC_PROBE_X4, "x4");
_Static_assert(offsetof(struct ctc_probe, gp[5]) == CTC_PROBE_X5, "x5");
_Static_assert(offsetof(struct ctc_probe, gp[6]) == CTC_PROBE_X6, "x6");
_Static_assert(offsetof(struct ctc_probe, gp[7]) == CTC_PROBE_X7, "x7");
_Static_assert(offsetof(struct ctc_probe, pad0) == CTC_PROBE_PAD0, "pad0");
_Static_assert(offsetof(struct ctc_probe, v[0]) == CTC_PROBE_V0, "v0");
_Static_assert(offsetof(struct ctc_probe, v[1]) == CTC_PROBE_V1, "v1");
_Static_assert(offsetof(struct ctc_probe, v[2]) == CTC_PROBE_V2, "v2");
_Static_assert(offsetof(struct ctc_probe, v[3]) == CTC_PROBE_V3, "v3");
_Static_assert(offsetof(struct ctc_probe, v[4]) == CTC_PROBE_V4, "v4");
_Static_assert(offsetof(struct ctc_probe, v[5]) == CTC_PROBE_V5, "v5");
_Static_assert(offsetof(struct ctc_probe, v[6]) == CTC_PROBE_V6, "v6");
_Static_assert(offsetof(struct ctc_probe, v[7]) == CTC_PROBE_V7, "v7");
_Static_assert(offsetof(struct ctc_probe, entry_fpcr) == CTC_PROBE_ENTRY_FPCR, "entry_fpcr");
_Static_assert(offsetof(struct ctc_probe, self) == CTC_PROBE_SELF, "self");
_Static_assert(offsetof(struct ctc_probe, parent) == CTC_PROBE_PARENT, "parent");
_Static_assert(offsetof(struct ctc_probe, seed) == CTC_PROBE_SEED, "seed");
_Static_assert(offsetof(struct ctc_probe, child_fpcr) == CTC_PROBE_CHILD_FPCR, "child_fpcr");
_Static_assert(offsetof(struct ctc_probe, nspill) == CTC_PROBE_NSPILL, "nspill");
_Static_assert(offsetof(struct ctc_probe, child_mask) == CTC_PROBE_CHILD_MASK, "child_mask");
_Static_assert(offsetof(struct ctc_probe, spilled) == CTC_PROBE_SPILLED, "spilled");
_Static_assert(sizeof(struct ctc_probe) == CTC_PROBE_SIZE, "probe size");

/* ---- the assembly probes (probes_aarch64.S) ---- */

/* Loads FPCR = fpcr, and x19..x28, fp, d8..d15 with the patterns of `seed`;
 * keeps two copies of the seed on its stack; calls context_sys_swap(from,
 * to).  When something resumes `from`, it checks all of that state and
 * returns a CTC_LOST_* mask of what changed (0 = intact), after restoring
 * the caller's registers and FPCR. */
uint64_t ctc_swap_checked(struct context_sys_regs *from, const struct context_sys_regs *to, uint64_t seed,
                          uint64_t fpcr);

/* An entry function for a fresh context: records its entry state into *p
 * (x0), copies p->nspill stack arguments, then behaves like
 * ctc_swap_checked(p->self, p->parent, p->seed, p->child_fpcr) storing the
 * mask in p->child_mask, and returns the CTC_PAT_RET_* patterns in x0, x1
 * and q0. */
void ctc_probe_child(struct ctc_probe *p, ...);

/* Sets the calling thread's FPCR. */
void ctc_set_fp_control(uint64_t fpcr);
/* Reads it. */
uint64_t ctc_get_fp_control(void);

#endif

/* ---- what recording children saw (children.c, generated children) ---- */

#define CTC_MAX_ARGS 24

/* The calling thread's record of the last recording child that ran on it. */
struct ctc_record {
    uint64_t fn_id;
    uint64_t nargs;
    uint64_t calls;
    uint64_t args[CTC_MAX_ARGS];
};

/* This thread's record (thread-local, so tests may run in parallel). */
struct ctc_record *ctc_record_this_thread(void);
/* Starts a record for function `fn_id` with `nargs` arguments. */
struct ctc_record *ctc_record_begin(uint64_t fn_id, uint64_t nargs);
/* A 64-bit mix of everything recorded, for return values. */
uint64_t ctc_record_mix(const struct ctc_record *r);

static inline uint64_t ctc_bits_f32(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}
static inline uint64_t ctc_bits_f64(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}
static inline float ctc_f32_from(uint64_t w) {
    uint32_t b = (uint32_t)w;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
static inline double ctc_f64_from(uint64_t w) {
    double d;
    memcpy(&d, &w, sizeof d);
    return d;
}

#endif /* __ASSEMBLER__ */
#endif /* CTC_H */
