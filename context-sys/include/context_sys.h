/*
 * context_sys.h - the register block shared by the assembly in
 * src/context_sys_x86_64.S and src/context_sys_aarch64.S, the Rust crate
 * `context-sys` (package stackful-context-sys), and C and C++ users.
 *
 * Targets: x86_64 Linux (System V AMD64 ABI) and aarch64 Linux (AAPCS64).
 * What differs between them (the register block, the boot frame, the
 * registers of the resume window) sits in one section per architecture,
 * `#if defined(__x86_64__)` ... `#elif defined(__aarch64__)` ...; every
 * other line is common.  Any other target is an #error.
 *
 * Language: C11 or later, or C++11 or later.  The layout checks below are
 * _Static_assert / static_assert and the register block's alignment is
 * _Alignas / alignas, spelled for whichever language includes the header;
 * in C++ the declarations are `extern "C"`.  It is tested with
 * `-std=c11 -pedantic -Wall -Wextra -Werror` and the same with
 * `-std=c++17` (context-tests-c/tests/headers.rs).
 *
 * This header is the single source of truth for every offset the assembly
 * uses.  The assembly includes it, the Rust build script turns each
 * `#define CONTEXT_SYS_*` number of the target's section (and the common
 * ones) into a Rust `const`, Rust checks the consts against `offset_of!` at
 * compile time, and C and C++ check them below with static assertions.
 * Change an offset here and all three follow or fail.
 *
 * Only the `#define`s (numbers, and the one string below) are visible to
 * the assembler; the C part is guarded by `__ASSEMBLER__`.
 *
 * ---- Using it from C ---------------------------------------------------
 *
 * The code.  Every routine declared here is in one assembly file per
 * architecture, src/context_sys_<arch>.S, which includes this header.
 * Either assemble it yourself and link the object (from the crate's
 * directory; aarch64: context_sys_aarch64.S, and the cross compiler
 * aarch64-linux-gnu-gcc when not building on aarch64):
 *
 *     cc -c -I include -Wa,--noexecstack src/context_sys_x86_64.S -o context_sys_x86_64.o
 *     cc -std=c11 -I include main.c context_sys_x86_64.o -o main
 *
 * or let cargo build it: `cargo build --release -p stackful-context-sys`
 * leaves the archive libcontext_sys.a in
 * target/release/build/stackful-context-sys-<hash>/out/, to link like the
 * object.  A Rust crate that depends on stackful-context-sys links that
 * archive already; C compiled by its build script may call the routines and
 * finds this header's directory in DEP_CONTEXT_SYS_INCLUDE (see README.md).
 *
 * Starting fn(arguments) on a fresh stack takes these steps, the same the
 * Rust crate `context` takes in Context::init.  The worked example is
 * prepare() in context-tests-c/c/harness.c (a C-only program run by
 * `cargo xtask abi`); context-tests-c/tests/c_path/start_on_fresh_stack.c
 * is this list as a program, built with the two commands above and run by
 * `cargo test -p context-tests-c --test c_path`.  Register names are
 * x86_64's, with aarch64's in brackets.
 *
 *  1. Memory: a stack whose top is 16-byte aligned, with room for fn's
 *     frames; two register blocks, `parent` and `child`.  Neither block
 *     may move until fn has returned: the fresh context holds their
 *     addresses in rbx and r12 [x19 and x20].
 *  2. Spilled arguments (x86_64: integer-class ones after the sixth,
 *     floating ones after the eighth; aarch64: integer-class after the
 *     eighth, floating after the eighth), one 64-bit word each, in order,
 *     the first lowest, from call_sp = top - n - (n % 2) words up: call_sp
 *     is 16-aligned, and the word above them when n is odd is padding
 *     (write 0).
 *  3. The boot frame right below them:
 *     frame = (struct context_sys_boot_frame *)call_sp - 1, zeroed;
 *     frame->gp[..] = the integer-class arguments held in registers
 *     (rdi..r9 [x0..x7]), frame->xmm[0..7] [frame->fp[0..7]] = the first
 *     eight floating ones (a double's bits, or a float's in the low 32),
 *     frame->entry = (uint64_t)(uintptr_t)fn.
 *  4. The resume word right below the frame, in the slot of
 *     CONTEXT_SYS_RESUME_SP_STEP bytes that ends at the frame:
 *     word = (uint64_t *)((char *)frame - CONTEXT_SYS_RESUME_SP_STEP);
 *     *word = (uint64_t)(uintptr_t)&context_sys_start (the rest of the
 *     slot, on aarch64, zero).
 *  5. The child's block, zeroed, then child.rsp [child.sp] = the resume
 *     word's address, child.rbx = &child, child.r12 = &parent
 *     [child.x19 = &child, child.x20 = &parent].
 *  6. context_sys_save_fp_control(&child): the fresh context starts with
 *     the caller's floating-point control state (x86_64: MXCSR and x87
 *     control word; aarch64: FPCR).  Do not skip it on x86_64: a zeroed
 *     block unmasks every floating-point exception (MXCSR 0, x87 control
 *     word 0), so fn's first inexact operation, as plain as 1.0 / 3.0,
 *     raises SIGFPE.  (On aarch64 a zero FPCR is the default state, but fn
 *     should still inherit the caller's rounding and flush-to-zero modes.)
 *  7. context_sys_swap(&parent, &child) calls fn(arguments) on the new
 *     stack.  fn may switch away and be resumed any number of times.  When
 *     it returns, child.ret_rax, child.ret_rdx and child.ret_xmm0
 *     [child.ret_x0, child.ret_x1, child.ret_v0] hold its return
 *     registers, and execution continues in `parent` as last saved (a swap
 *     that saved into it returns).  `parent` must hold a saved context by
 *     then.
 *  8. The child is finished: repeat steps 2-6 before switching to it again.
 *
 * No unwind (C++ exception, pthread_exit, pthread_cancel) may leave fn: see
 * CONTEXT_SYS_UNWIND_ABORT_MESSAGE below.
 */
#ifndef CONTEXT_SYS_H
#define CONTEXT_SYS_H

/* ---- struct context_sys_regs: one execution context's saved state ------ */

#if defined(__x86_64__)

/* x86_64: */

/* Stack pointer of the suspended context.  It points at the address to
 * resume at (for a suspended swap, the return address its `call` pushed;
 * for a fresh context, the start routine's address; for a context that
 * Rust's inlined switch suspended, context_sys::swap_inline, an address
 * inside the caller just past that switch, with the word one below the
 * caller's rsp).  Every switch into a block loads all six callee-saved
 * registers from it; a block saved by swap_inline holds only its rbx, rbp,
 * rsp, MXCSR and x87 control word, its r12-r15 keep older values (that
 * switch declares them clobbered, so the code it returns to needs none of
 * them).  C code may resume such a block like any other. */
#define CONTEXT_SYS_OFF_RSP 0
/* Callee-saved general-purpose registers (System V AMD64). */
#define CONTEXT_SYS_OFF_RBX 8
#define CONTEXT_SYS_OFF_RBP 16
#define CONTEXT_SYS_OFF_R12 24
#define CONTEXT_SYS_OFF_R13 32
#define CONTEXT_SYS_OFF_R14 40
#define CONTEXT_SYS_OFF_R15 48
/* MXCSR as written by `stmxcsr` (only the control bits, 6..15, are
 * callee-saved; the status bits travel along but are never compared). */
#define CONTEXT_SYS_OFF_MXCSR 56
/* x87 FPU control word as written by `fnstcw`. */
#define CONTEXT_SYS_OFF_FPUCW 60
/* Two bytes of padding at 62 keep the hot part at exactly one cache line. */
/* Return registers of a finished entry function: rax, rdx, xmm0. */
#define CONTEXT_SYS_OFF_RET_RAX 64
#define CONTEXT_SYS_OFF_RET_RDX 72
#define CONTEXT_SYS_OFF_RET_XMM0 80
#define CONTEXT_SYS_REGS_SIZE 96
#define CONTEXT_SYS_REGS_ALIGN 16

/* Mask of the MXCSR control bits (DAZ, exception masks, rounding, FZ). */
#define CONTEXT_SYS_MXCSR_CONTROL_MASK 0xffc0

/* ---- struct context_sys_boot_frame: a fresh context's first frame ------ */

/* The frame is plain data that whoever prepares a context (the Rust crate
 * `context`, or a C user) writes on the new stack; no assembly builds it.
 *
 *     higher addresses
 *     | spilled argument n    |
 *     | ...                   |
 *     | spilled argument 1    |  <- frame + BOOT_SIZE: 16-aligned, the rsp
 *     +-----------------------+     at the `call` of the entry function
 *     | struct boot_frame     |  <- frame: context_sys_start's rsp on entry
 *     +-----------------------+
 *     | &context_sys_start    |  <- regs.rsp = frame - 8 (the resume word)
 *     lower addresses
 *
 * Offsets below are from the frame's base, i.e. from context_sys_start's
 * rsp on entry.  Floating arguments are passed as the low 64 bits of each
 * xmm register (movq zeroes the upper half). */
#define CONTEXT_SYS_BOOT_XMM0 0
#define CONTEXT_SYS_BOOT_XMM1 8
#define CONTEXT_SYS_BOOT_XMM2 16
#define CONTEXT_SYS_BOOT_XMM3 24
#define CONTEXT_SYS_BOOT_XMM4 32
#define CONTEXT_SYS_BOOT_XMM5 40
#define CONTEXT_SYS_BOOT_XMM6 48
#define CONTEXT_SYS_BOOT_XMM7 56
#define CONTEXT_SYS_BOOT_RDI 64
#define CONTEXT_SYS_BOOT_RSI 72
#define CONTEXT_SYS_BOOT_RDX 80
#define CONTEXT_SYS_BOOT_RCX 88
#define CONTEXT_SYS_BOOT_R8 96
#define CONTEXT_SYS_BOOT_R9 104
#define CONTEXT_SYS_BOOT_ENTRY 112
#define CONTEXT_SYS_BOOT_PAD 120
/* Size of the frame, and so the offset of the first spilled argument. */
#define CONTEXT_SYS_BOOT_SIZE 128
#define CONTEXT_SYS_BOOT_ALIGN 16

/* In a fresh context, until it first returns, rbx holds the address of its
 * own register block and r12 the address of its parent's. */

/* A resumed context's stack pointer is its resume word's address plus this
 * (the word pops as a return address would). */
#define CONTEXT_SYS_RESUME_SP_STEP 8

#elif defined(__aarch64__)

/* aarch64 (AAPCS64): */

/* Stack pointer of the suspended context.  It points at a 16-byte slot
 * whose first word is the address to resume at (for a suspended swap, its
 * caller's return address, which the swap stored there; for a fresh
 * context, the start routine's address) and whose second is padding. */
#define CONTEXT_SYS_OFF_SP 0
/* Callee-saved general-purpose registers x19-x28. */
#define CONTEXT_SYS_OFF_X19 8
#define CONTEXT_SYS_OFF_X20 16
#define CONTEXT_SYS_OFF_X21 24
#define CONTEXT_SYS_OFF_X22 32
#define CONTEXT_SYS_OFF_X23 40
#define CONTEXT_SYS_OFF_X24 48
#define CONTEXT_SYS_OFF_X25 56
#define CONTEXT_SYS_OFF_X26 64
#define CONTEXT_SYS_OFF_X27 72
#define CONTEXT_SYS_OFF_X28 80
/* The frame pointer x29 and the link register x30 (the resume address of a
 * suspended swap, restored into x30 as a return would leave it). */
#define CONTEXT_SYS_OFF_FP 88
#define CONTEXT_SYS_OFF_LR 96
/* Callee-saved low 64 bits of v8-v15. */
#define CONTEXT_SYS_OFF_D8 104
#define CONTEXT_SYS_OFF_D9 112
#define CONTEXT_SYS_OFF_D10 120
#define CONTEXT_SYS_OFF_D11 128
#define CONTEXT_SYS_OFF_D12 136
#define CONTEXT_SYS_OFF_D13 144
#define CONTEXT_SYS_OFF_D14 152
#define CONTEXT_SYS_OFF_D15 160
/* FPCR as read by `mrs` (rounding, FZ, DN, AHP, FZ16, trap enables): the
 * floating-point control state, all of it per context.  The status
 * register FPSR is caller-saved and never switched. */
#define CONTEXT_SYS_OFF_FPCR 168
/* Return registers of a finished entry function: x0, x1, q0 (v0). */
#define CONTEXT_SYS_OFF_RET_X0 176
#define CONTEXT_SYS_OFF_RET_X1 184
#define CONTEXT_SYS_OFF_RET_V0 192
#define CONTEXT_SYS_REGS_SIZE 208
#define CONTEXT_SYS_REGS_ALIGN 16

/* ---- struct context_sys_boot_frame: a fresh context's first frame ------ */

/* As on x86_64, plain data written by whoever prepares a context:
 *
 *     higher addresses
 *     | spilled argument n    |
 *     | ...                   |
 *     | spilled argument 1    |  <- frame + BOOT_SIZE: 16-aligned, the sp
 *     +-----------------------+     at the `blr` of the entry function
 *     | struct boot_frame     |  <- frame: context_sys_start's sp on entry
 *     +-----------------------+
 *     | 0 (padding)           |  <- frame - 8
 *     | &context_sys_start    |  <- regs.sp = frame - 16 (the resume word)
 *     lower addresses
 *
 * Offsets below are from the frame's base.  Floating arguments are passed
 * as the low 64 bits of v0-v7 (`ldr dN` zeroes the rest of the register).
 * Spilled arguments take one 8-byte slot each, in declaration order. */
#define CONTEXT_SYS_BOOT_X0 0
#define CONTEXT_SYS_BOOT_X1 8
#define CONTEXT_SYS_BOOT_X2 16
#define CONTEXT_SYS_BOOT_X3 24
#define CONTEXT_SYS_BOOT_X4 32
#define CONTEXT_SYS_BOOT_X5 40
#define CONTEXT_SYS_BOOT_X6 48
#define CONTEXT_SYS_BOOT_X7 56
#define CONTEXT_SYS_BOOT_D0 64
#define CONTEXT_SYS_BOOT_D1 72
#define CONTEXT_SYS_BOOT_D2 80
#define CONTEXT_SYS_BOOT_D3 88
#define CONTEXT_SYS_BOOT_D4 96
#define CONTEXT_SYS_BOOT_D5 104
#define CONTEXT_SYS_BOOT_D6 112
#define CONTEXT_SYS_BOOT_D7 120
#define CONTEXT_SYS_BOOT_ENTRY 128
#define CONTEXT_SYS_BOOT_PAD 136
/* Size of the frame, and so the offset of the first spilled argument. */
#define CONTEXT_SYS_BOOT_SIZE 144
#define CONTEXT_SYS_BOOT_ALIGN 16

/* In a fresh context, until it first returns, x19 holds the address of its
 * own register block and x20 the address of its parent's. */

/* A resumed context's stack pointer is its resume word's address plus this
 * (the whole 16-byte slot is popped: sp stays 16-aligned). */
#define CONTEXT_SYS_RESUME_SP_STEP 16

#else
#error "context_sys.h: the target must be x86_64 or aarch64 (Linux)"
#endif

/* ---- the resume window: a switch into a context, caught halfway ------- */

/* A suspended context continues at the address in its resume word, the
 * 64-bit word at regs.rsp [regs.sp].  Rewriting that word while the context
 * is not running changes where it continues (a kill switch sends a guest to
 * a routine that ends its run this way).  A signal handler that does so may
 * have interrupted its own thread in the middle of a switch into that very
 * context, after the word was read.  Every switch into a context
 * (context_sys_swap into *to, context_sys_set into *to, and
 * context_sys_start's return into the parent) ends with these instructions.
 * Two registers carry the switch: ADDR (the word's address) and NEXT (the
 * word's value).
 *
 * x86_64: ADDR = rax, NEXT = rcx; `base` is rsi in context_sys_swap and
 * rdi in the other two:
 *
 *     I1  mov  CONTEXT_SYS_OFF_RSP(base), %rax   rax = regs.rsp = &resume word
 *     I2  mov  (%rax), %rcx                      rcx = the resume word
 *   loaded:
 *     I3  lea  8(%rax), %rsp                     rsp = &resume word + 8
 *         mov  ..(base), %rbx / rbp / r13 / r14 / r15 / r12   (rax, rcx kept)
 *     IJ  jmp  *%rcx
 *   end:
 *
 * aarch64: ADDR = x9, NEXT = x10; `base` is x1 in context_sys_swap and x0
 * in the other two:
 *
 *     I1  ldr  x9, [base, #CONTEXT_SYS_OFF_SP]   x9 = regs.sp = &resume word
 *     I2  ldr  x10, [x9]                         x10 = the resume word
 *   loaded:
 *     I3  add  sp, x9, #16                       sp = &resume word + 16
 *         ldp/ldr ..[base]: x19-x28, fp, lr, d8-d15   (x9, x10 kept)
 *     IJ  ret  x10
 *   end:
 *
 * Seen from a handler (through the interrupted registers of its ucontext,
 * whose pc is the next instruction to execute):
 *
 *  - pc in [loaded, end): the switch has read the word.  ADDR holds the
 *    word's address, NEXT the value the word held when I2 ran, and the
 *    switch will continue at NEXT.  From the instruction after I3 on, the
 *    stack pointer is already ADDR + CONTEXT_SYS_RESUME_SP_STEP, on the
 *    target's stack.  To divert the switch, rewrite the word and the
 *    interrupted NEXT; ADDR and the stack pointer stay as they are.
 *  - pc anywhere else, I1 and I2 included: the switch (if it is one) has
 *    not read the word yet and will read the new value.  Rewrite only the
 *    word.
 *
 * Either way the diverted context continues at the new address as a
 * resumption would: stack pointer = &resume word + CONTEXT_SYS_RESUME_SP_STEP
 * (for a fresh context or a suspended swap that is 16-byte aligned, like
 * the stack just after a return), the callee-saved registers as saved in
 * its block, ADDR = &resume word, NEXT = the new address.  Both tests
 * belong together: a pc in a window is a switch into the target only if
 * ADDR equals the target's saved stack pointer, and a NEXT that differs
 * from the word's old value means the word changed after I2 read it.
 *
 * context_sys_resume_windows() reports [loaded, end) of the three switches
 * as addresses in the running process, in a struct context_sys_resume_windows
 * whose offsets follow.  The labels add no instruction or symbol to the
 * switches.  The registers and order above are part of this header's ABI;
 * the Rust crate `context` builds `divert_pending_resume` on them. */
#define CONTEXT_SYS_RESUME_SWAP_LOADED 0
#define CONTEXT_SYS_RESUME_SWAP_END 8
#define CONTEXT_SYS_RESUME_SET_LOADED 16
#define CONTEXT_SYS_RESUME_SET_END 24
#define CONTEXT_SYS_RESUME_START_LOADED 32
#define CONTEXT_SYS_RESUME_START_END 40
#define CONTEXT_SYS_RESUME_WINDOWS_SIZE 48
#define CONTEXT_SYS_RESUME_WINDOWS_ALIGN 8

/* ---- no unwind leaves an entry function ------------------------------- */

/* An unwind (a Rust panic, a C++ exception, pthread_exit or pthread_cancel)
 * that nothing inside a context's entry function catches reaches
 * context_sys_start.  Its unwind information links a backtrace to the
 * parent's frames, but no unwind may follow that link: the personality
 * routine of context_sys_start writes this line to fd 2 and calls abort().
 * The build script of the Rust crate turns it into
 * `context_sys::UNWIND_ABORT_MESSAGE`. */
#define CONTEXT_SYS_UNWIND_ABORT_MESSAGE "context-sys: an unwind (a Rust panic, a C++ exception or a thread exit) reached context_sys_start and would leave the context's entry function into the frames that switched to it; aborting\n"

/* ---- valgrind client requests (context_sys_valgrind_client_request) ---- */

/* A request block is this many 64-bit words: the request code, then up to
 * five arguments.  The codes are valgrind's own (valgrind.h), reproduced so
 * that neither Rust nor C users need valgrind's headers. */
#define CONTEXT_SYS_VALGRIND_REQUEST_WORDS 6
/* Answers 0 on a real CPU, else how many valgrinds deep we run (1 usually). */
#define CONTEXT_SYS_VALGRIND_RUNNING_ON_VALGRIND 0x1001
/* (lowest byte, highest byte) of a stack -> a stack id. */
#define CONTEXT_SYS_VALGRIND_STACK_REGISTER 0x1501
/* (stack id) -> forget that stack. */
#define CONTEXT_SYS_VALGRIND_STACK_DEREGISTER 0x1502
/* (stack id, lowest byte, highest byte) -> move that stack. */
#define CONTEXT_SYS_VALGRIND_STACK_CHANGE 0x1503
/* (address, length) -> memcheck: the bytes are addressable but undefined.
 * VG_USERREQ_TOOL_BASE('M','C') + 1. */
#define CONTEXT_SYS_VALGRIND_MAKE_MEM_UNDEFINED 0x4d430001

#ifndef __ASSEMBLER__

#if defined(__cplusplus)
#if __cplusplus < 201103L
#error "context_sys.h needs C++11 or later (static_assert, alignas)"
#endif
#elif !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L
#error "context_sys.h needs C11 or later (_Static_assert, _Alignas)"
#endif

#include <stddef.h>
#include <stdint.h>

/* The spellings that differ between the languages.  Private to this
 * header: #undef'd at its end. */
#if defined(__cplusplus)
#define CONTEXT_SYS_ALIGNAS_(n) alignas(n)
#define CONTEXT_SYS_ALIGNOF_(t) alignof(t)
#define CONTEXT_SYS_STATIC_ASSERT_(cond, msg) static_assert(cond, msg)
#define CONTEXT_SYS_NORETURN_ [[noreturn]]
#else
#define CONTEXT_SYS_ALIGNAS_(n) _Alignas(n)
#define CONTEXT_SYS_ALIGNOF_(t) _Alignof(t)
#define CONTEXT_SYS_STATIC_ASSERT_(cond, msg) _Static_assert(cond, msg)
#if __STDC_VERSION__ >= 202311L
/* C23 spells it as C++ does and makes _Noreturn obsolescent. */
#define CONTEXT_SYS_NORETURN_ [[noreturn]]
#else
#define CONTEXT_SYS_NORETURN_ _Noreturn
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__x86_64__)

/** One execution context's saved state.  Must not move while a fresh
 * context's stack refers to it (see context_sys_start). */
struct context_sys_regs {
    uint64_t rsp;
    uint64_t rbx;
    uint64_t rbp;
    uint64_t r12;
    uint64_t r13;
    uint64_t r14;
    uint64_t r15;
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
    uint64_t ret_rax;
    uint64_t ret_rdx;
    CONTEXT_SYS_ALIGNAS_(CONTEXT_SYS_REGS_ALIGN) uint64_t ret_xmm0[2];
};

/** The first frame of a fresh context (see the diagram above).  `gp`
 * holds rdi, rsi, rdx, rcx, r8, r9 in that order.  Aligned to
 * CONTEXT_SYS_BOOT_ALIGN through its first member. */
struct context_sys_boot_frame {
    CONTEXT_SYS_ALIGNAS_(CONTEXT_SYS_BOOT_ALIGN) uint64_t xmm[8];
    uint64_t gp[6];
    uint64_t entry;
    uint64_t pad;
};

#elif defined(__aarch64__)

/** One execution context's saved state.  Must not move while a fresh
 * context's stack refers to it (see context_sys_start).  d8..d15 are the
 * low 64 bits of v8..v15, as `str dN` writes them. */
struct context_sys_regs {
    CONTEXT_SYS_ALIGNAS_(CONTEXT_SYS_REGS_ALIGN) uint64_t sp;
    uint64_t x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
    uint64_t fp;
    uint64_t lr;
    uint64_t d8, d9, d10, d11, d12, d13, d14, d15;
    uint64_t fpcr;
    uint64_t ret_x0;
    uint64_t ret_x1;
    uint64_t ret_v0[2];
};

/** The first frame of a fresh context (see the diagram above).  `gp`
 * holds x0..x7, `fp` the low 64 bits of v0..v7.  Aligned to
 * CONTEXT_SYS_BOOT_ALIGN through its first member. */
struct context_sys_boot_frame {
    CONTEXT_SYS_ALIGNAS_(CONTEXT_SYS_BOOT_ALIGN) uint64_t gp[8];
    uint64_t fp[8];
    uint64_t entry;
    uint64_t pad;
};

#endif

/** Where the three switches into a context hold the target's resume
 * address in NEXT (rcx [x10]): each window is [loaded, end), as code
 * addresses (see "the resume window" above). */
struct context_sys_resume_windows {
    uint64_t swap_loaded;
    uint64_t swap_end;
    uint64_t set_loaded;
    uint64_t set_end;
    uint64_t start_loaded;
    uint64_t start_end;
};

/** Save callee-saved state (x86_64: rbx, rbp, r12-r15, rsp, MXCSR, x87
 * control word; aarch64: x19-x28, fp, lr, sp, d8-d15, FPCR) into *from and
 * continue in *to.  Returns when something switches
 * back to *from.  *to must be a block saved by a swap, or a fresh context
 * prepared as the top of this header describes. */
void context_sys_swap(struct context_sys_regs *from, const struct context_sys_regs *to);
/** Continue in *to without saving anything. */
CONTEXT_SYS_NORETURN_ void context_sys_set(const struct context_sys_regs *to);
/** Where a fresh context starts: its address goes in the resume word (step
 * 4 at the top of this header).  Never call it directly. */
void context_sys_start(void);
/** Store the calling thread's floating-point control state into *regs
 * (x86_64: its mxcsr and fpucw; aarch64: its fpcr; nothing else).  Step 6
 * of preparing a fresh context: without it an x86_64 context starts with
 * both zero, every floating-point exception unmasked. */
void context_sys_save_fp_control(struct context_sys_regs *regs);
/** The caller's stack pointer as it is after this call returns. */
uint64_t context_sys_get_current_stack_pointer(void);
/** Store the addresses of the three resume windows into *windows.
 * Async-signal-safe (it uses no stack and no memory but *windows). */
void context_sys_resume_windows(struct context_sys_resume_windows *windows);
/** Make one valgrind client request: request[0] is the code
 * (CONTEXT_SYS_VALGRIND_*), request[1..5] its arguments.  Returns valgrind's
 * answer, or default_value when not running under valgrind. */
uint64_t context_sys_valgrind_client_request(const uint64_t request[CONTEXT_SYS_VALGRIND_REQUEST_WORDS],
                                             uint64_t default_value);

/* offsetof is defined for these standard-layout structs in C++ as well. */
#if defined(__x86_64__)
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, rsp) == CONTEXT_SYS_OFF_RSP, "rsp");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, rbx) == CONTEXT_SYS_OFF_RBX, "rbx");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, rbp) == CONTEXT_SYS_OFF_RBP, "rbp");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, r12) == CONTEXT_SYS_OFF_R12, "r12");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, r13) == CONTEXT_SYS_OFF_R13, "r13");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, r14) == CONTEXT_SYS_OFF_R14, "r14");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, r15) == CONTEXT_SYS_OFF_R15, "r15");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, mxcsr) == CONTEXT_SYS_OFF_MXCSR, "mxcsr");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, fpucw) == CONTEXT_SYS_OFF_FPUCW, "fpucw");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, ret_rax) == CONTEXT_SYS_OFF_RET_RAX, "ret_rax");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, ret_rdx) == CONTEXT_SYS_OFF_RET_RDX, "ret_rdx");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, ret_xmm0) == CONTEXT_SYS_OFF_RET_XMM0, "ret_xmm0");
CONTEXT_SYS_STATIC_ASSERT_(sizeof(struct context_sys_regs) == CONTEXT_SYS_REGS_SIZE, "regs size");
CONTEXT_SYS_STATIC_ASSERT_(CONTEXT_SYS_ALIGNOF_(struct context_sys_regs) == CONTEXT_SYS_REGS_ALIGN, "regs align");

CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[0]) == CONTEXT_SYS_BOOT_XMM0, "xmm0");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[1]) == CONTEXT_SYS_BOOT_XMM1, "xmm1");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[2]) == CONTEXT_SYS_BOOT_XMM2, "xmm2");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[3]) == CONTEXT_SYS_BOOT_XMM3, "xmm3");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[4]) == CONTEXT_SYS_BOOT_XMM4, "xmm4");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[5]) == CONTEXT_SYS_BOOT_XMM5, "xmm5");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[6]) == CONTEXT_SYS_BOOT_XMM6, "xmm6");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, xmm[7]) == CONTEXT_SYS_BOOT_XMM7, "xmm7");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[0]) == CONTEXT_SYS_BOOT_RDI, "rdi");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[1]) == CONTEXT_SYS_BOOT_RSI, "rsi");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[2]) == CONTEXT_SYS_BOOT_RDX, "rdx");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[3]) == CONTEXT_SYS_BOOT_RCX, "rcx");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[4]) == CONTEXT_SYS_BOOT_R8, "r8");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[5]) == CONTEXT_SYS_BOOT_R9, "r9");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, entry) == CONTEXT_SYS_BOOT_ENTRY, "entry");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, pad) == CONTEXT_SYS_BOOT_PAD, "pad");
CONTEXT_SYS_STATIC_ASSERT_(sizeof(struct context_sys_boot_frame) == CONTEXT_SYS_BOOT_SIZE, "boot size");
CONTEXT_SYS_STATIC_ASSERT_(CONTEXT_SYS_ALIGNOF_(struct context_sys_boot_frame) == CONTEXT_SYS_BOOT_ALIGN,
                           "boot align");
#elif defined(__aarch64__)
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, sp) == CONTEXT_SYS_OFF_SP, "sp");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x19) == CONTEXT_SYS_OFF_X19, "x19");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x20) == CONTEXT_SYS_OFF_X20, "x20");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x21) == CONTEXT_SYS_OFF_X21, "x21");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x22) == CONTEXT_SYS_OFF_X22, "x22");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x23) == CONTEXT_SYS_OFF_X23, "x23");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x24) == CONTEXT_SYS_OFF_X24, "x24");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x25) == CONTEXT_SYS_OFF_X25, "x25");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x26) == CONTEXT_SYS_OFF_X26, "x26");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x27) == CONTEXT_SYS_OFF_X27, "x27");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, x28) == CONTEXT_SYS_OFF_X28, "x28");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, fp) == CONTEXT_SYS_OFF_FP, "fp");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, lr) == CONTEXT_SYS_OFF_LR, "lr");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d8) == CONTEXT_SYS_OFF_D8, "d8");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d9) == CONTEXT_SYS_OFF_D9, "d9");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d10) == CONTEXT_SYS_OFF_D10, "d10");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d11) == CONTEXT_SYS_OFF_D11, "d11");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d12) == CONTEXT_SYS_OFF_D12, "d12");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d13) == CONTEXT_SYS_OFF_D13, "d13");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d14) == CONTEXT_SYS_OFF_D14, "d14");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, d15) == CONTEXT_SYS_OFF_D15, "d15");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, fpcr) == CONTEXT_SYS_OFF_FPCR, "fpcr");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, ret_x0) == CONTEXT_SYS_OFF_RET_X0, "ret_x0");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, ret_x1) == CONTEXT_SYS_OFF_RET_X1, "ret_x1");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_regs, ret_v0) == CONTEXT_SYS_OFF_RET_V0, "ret_v0");
CONTEXT_SYS_STATIC_ASSERT_(sizeof(struct context_sys_regs) == CONTEXT_SYS_REGS_SIZE, "regs size");
CONTEXT_SYS_STATIC_ASSERT_(CONTEXT_SYS_ALIGNOF_(struct context_sys_regs) == CONTEXT_SYS_REGS_ALIGN, "regs align");

CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[0]) == CONTEXT_SYS_BOOT_X0, "x0");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[1]) == CONTEXT_SYS_BOOT_X1, "x1");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[2]) == CONTEXT_SYS_BOOT_X2, "x2");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[3]) == CONTEXT_SYS_BOOT_X3, "x3");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[4]) == CONTEXT_SYS_BOOT_X4, "x4");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[5]) == CONTEXT_SYS_BOOT_X5, "x5");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[6]) == CONTEXT_SYS_BOOT_X6, "x6");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, gp[7]) == CONTEXT_SYS_BOOT_X7, "x7");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[0]) == CONTEXT_SYS_BOOT_D0, "d0");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[1]) == CONTEXT_SYS_BOOT_D1, "d1");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[2]) == CONTEXT_SYS_BOOT_D2, "d2");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[3]) == CONTEXT_SYS_BOOT_D3, "d3");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[4]) == CONTEXT_SYS_BOOT_D4, "d4");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[5]) == CONTEXT_SYS_BOOT_D5, "d5");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[6]) == CONTEXT_SYS_BOOT_D6, "d6");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, fp[7]) == CONTEXT_SYS_BOOT_D7, "d7");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, entry) == CONTEXT_SYS_BOOT_ENTRY, "entry");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_boot_frame, pad) == CONTEXT_SYS_BOOT_PAD, "pad");
CONTEXT_SYS_STATIC_ASSERT_(sizeof(struct context_sys_boot_frame) == CONTEXT_SYS_BOOT_SIZE, "boot size");
CONTEXT_SYS_STATIC_ASSERT_(CONTEXT_SYS_ALIGNOF_(struct context_sys_boot_frame) == CONTEXT_SYS_BOOT_ALIGN,
                           "boot align");
#endif
CONTEXT_SYS_STATIC_ASSERT_(CONTEXT_SYS_BOOT_SIZE % 16 == 0, "spilled arguments start 16-aligned");
CONTEXT_SYS_STATIC_ASSERT_(CONTEXT_SYS_RESUME_SP_STEP % 8 == 0 && CONTEXT_SYS_RESUME_SP_STEP <= CONTEXT_SYS_BOOT_ALIGN,
                           "the resume slot fits below the boot frame");

CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_resume_windows, swap_loaded) == CONTEXT_SYS_RESUME_SWAP_LOADED,
                           "swap_loaded");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_resume_windows, swap_end) == CONTEXT_SYS_RESUME_SWAP_END,
                           "swap_end");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_resume_windows, set_loaded) == CONTEXT_SYS_RESUME_SET_LOADED,
                           "set_loaded");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_resume_windows, set_end) == CONTEXT_SYS_RESUME_SET_END,
                           "set_end");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_resume_windows, start_loaded) == CONTEXT_SYS_RESUME_START_LOADED,
                           "start_loaded");
CONTEXT_SYS_STATIC_ASSERT_(offsetof(struct context_sys_resume_windows, start_end) == CONTEXT_SYS_RESUME_START_END,
                           "start_end");
CONTEXT_SYS_STATIC_ASSERT_(sizeof(struct context_sys_resume_windows) == CONTEXT_SYS_RESUME_WINDOWS_SIZE,
                           "resume windows size");
CONTEXT_SYS_STATIC_ASSERT_(CONTEXT_SYS_ALIGNOF_(struct context_sys_resume_windows) == CONTEXT_SYS_RESUME_WINDOWS_ALIGN,
                           "resume windows align");

#ifdef __cplusplus
}
#endif

#undef CONTEXT_SYS_ALIGNAS_
#undef CONTEXT_SYS_ALIGNOF_
#undef CONTEXT_SYS_STATIC_ASSERT_
#undef CONTEXT_SYS_NORETURN_

#endif /* __ASSEMBLER__ */
#endif /* CONTEXT_SYS_H */
