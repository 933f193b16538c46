/*
 * context_sys_x86_64.S - switching between execution contexts, x86_64
 * System V.
 *
 * Every offset comes from include/context_sys.h; none is computed here.
 * Register numbers in the hand-written CFI follow the DWARF numbering of
 * the System V AMD64 psABI: rbx = 3, rbp = 6, rsp = 7, r12..r15 = 12..15,
 * and the return address (rip) = 16.
 *
 * What a suspended context looks like: its callee-saved registers, MXCSR and
 * x87 control word sit in its `struct context_sys_regs`; `regs.rsp` points at
 * one word on its own stack that holds the address to continue at.  To
 * resume it, load that word, set rsp one word above it (where a `ret` would
 * have left it), and jump.  An indirect `jmp` is used instead of `ret`
 * because a `ret` onto another stack always misses in the return-stack
 * predictor, which costs more than the rest of the switch.
 */

#include "context_sys.h"

/* DWARF expression opcodes and CFA instructions used below. */
#define DW_CFA_def_cfa_expression 0x0f
#define DW_CFA_expression 0x10
#define DW_CFA_val_expression 0x16
#define DW_OP_deref 0x06
#define DW_OP_plus_uconst 0x23
#define DW_OP_mul 0x1e     /* pop two, push their product */
#define DW_OP_plus 0x22    /* pop two, push their sum */
#define DW_OP_eq 0x29      /* pop two, push 1 if equal, else 0 */
#define DW_OP_lit0 0x30
#define DW_OP_breg4 0x74   /* rsi + sleb128 offset */
#define DW_OP_breg5 0x75   /* rdi + sleb128 offset */
#define DW_OP_breg12 0x7c  /* r12 + sleb128 offset */

/* Pointer encoding of the personality routine in context_sys_start's CIE
 * (the LSB's DW_EH_PE_* values): DW_EH_PE_pcrel (0x10, relative to the
 * address of the pointer itself) | DW_EH_PE_sdata4 (0x0b, a signed 32-bit
 * word).  The routine is local to this object, so a direct pc-relative word
 * reaches it from .eh_frame in any link (PIE, shared object, static); no
 * indirect DW.ref word (0x80) is needed, as it is for a personality that
 * may live in another shared object. */
#define DW_EH_PE_pcrel_sdata4 0x1b

/* Linux x86_64 system call and errno numbers (kernel ABI, stable):
 * arch/x86/entry/syscalls/syscall_64.tbl and asm-generic/errno-base.h. */
#define SYS_write 1
#define EINTR 4

/*
 * cfi_saved_at dwarf_reg, dw_op_breg, offset
 *
 * Tells the unwinder that the caller's value of `dwarf_reg` is stored in
 * memory at (base register + offset), i.e. in a context_sys_regs block.
 * Bytes: DW_CFA_expression, the register, the expression's length (2), then
 * the expression DW_OP_bregN <offset>.  The offset is encoded as a one-byte
 * SLEB128, which holds 0..63; the .error below keeps that true.
 */
.macro cfi_saved_at dwarf_reg, dw_op_breg, offset
    .if (\offset) > 63
    .error "cfi_saved_at: offset does not fit a one-byte SLEB128"
    .endif
    .cfi_escape DW_CFA_expression, \dwarf_reg, 2, \dw_op_breg, \offset
.endm

/*
 * load_context_and_jump base, dw_op_breg, loaded, end
 *
 * Continue in the context whose register block is at %\base (rdi or rsi),
 * with the MXCSR and x87 control word already dealt with by the caller.
 * Clobbers rax and rcx.
 *
 * The resume window (a contract: "The resume window" in
 * include/context_sys.h states it for users, and the Rust crate `context`
 * builds `divert_pending_resume` on it).  Instruction by instruction, with
 * the state a signal handler sees when it interrupts the thread with its pc
 * at that instruction (not yet executed):
 *
 *   I1  mov CONTEXT_SYS_OFF_RSP(%base), %rax   nothing of the target read
 *   I2  mov (%rax), %rcx        rax = &resume word; the word not read yet
 *   \loaded:
 *   I3  lea 8(%rax), %rsp       rax = &resume word, rcx = the word's value
 *                               (read by I2); rsp still the caller's
 *   I4..I9  six loads from the block into rbx, rbp, r13, r14, r15, r12:
 *                               rax and rcx as at I3; rsp = rax + 8 (the
 *                               target's stack)
 *   IJ  jmp *%rcx               the same
 *   \end:
 *
 * So for a pc in [\loaded, \end) the switch will continue at rcx whatever
 * the resume word says by then: rewriting the word diverts it only if rcx
 * is rewritten too.  For a pc at I2 or before (or anywhere else) the word
 * has not been read, and rewriting the word is enough.  Nothing between I3
 * and IJ writes rax or rcx.  \loaded and \end are local labels; they emit
 * no bytes and no symbol, and context_sys_resume_windows (below) hands
 * their addresses out.  Keep rax and rcx in these roles, and I2 just before
 * \loaded, or change the header's contract (a breaking change) and
 * `context::divert_pending_resume` with it.
 *
 * The stack is switched first, so that from then on the CFA is simply the
 * resumed context's rsp (the resume address lies just below it, at CFA - 8)
 * and each callee-saved register is described as "still in the block" until
 * it is loaded, then as "same value".  An unwinder interrupted anywhere in
 * here sees one consistent caller: the context being resumed.
 */
.macro load_context_and_jump base, dw_op_breg, loaded, end
    mov CONTEXT_SYS_OFF_RSP(%\base), %rax   /* I1: rax = regs.rsp = &resume word */
    mov (%rax), %rcx                        /* I2: rcx = the address to continue at */
\loaded:                                    /* from here rcx holds it: the window */
    lea 8(%rax), %rsp                       /* I3: pop it, as `ret` would */
    .cfi_def_cfa %rsp, 0
    .cfi_offset %rip, -8
    cfi_saved_at 3, \dw_op_breg, CONTEXT_SYS_OFF_RBX
    cfi_saved_at 6, \dw_op_breg, CONTEXT_SYS_OFF_RBP
    cfi_saved_at 12, \dw_op_breg, CONTEXT_SYS_OFF_R12
    cfi_saved_at 13, \dw_op_breg, CONTEXT_SYS_OFF_R13
    cfi_saved_at 14, \dw_op_breg, CONTEXT_SYS_OFF_R14
    cfi_saved_at 15, \dw_op_breg, CONTEXT_SYS_OFF_R15
    mov CONTEXT_SYS_OFF_RBX(%\base), %rbx
    .cfi_same_value %rbx
    mov CONTEXT_SYS_OFF_RBP(%\base), %rbp
    .cfi_same_value %rbp
    mov CONTEXT_SYS_OFF_R13(%\base), %r13
    .cfi_same_value %r13
    mov CONTEXT_SYS_OFF_R14(%\base), %r14
    .cfi_same_value %r14
    mov CONTEXT_SYS_OFF_R15(%\base), %r15
    .cfi_same_value %r15
    /* r12 last: while the block is addressed through r12 (in
     * context_sys_start the base is a copy of it) nothing is lost. */
    mov CONTEXT_SYS_OFF_R12(%\base), %r12
    .cfi_same_value %r12
    jmp *%rcx                               /* IJ: continue at rcx, rsp = rax + 8 */
\end:                                       /* the window ends with the jump */
.endm

/*
 * load_fp_control base
 *
 * Gives MXCSR's control bits and the x87 control word the values saved in
 * the block at %\base, executing ldmxcsr or fldcw only when the saved
 * control bits differ from the current ones (why: see context_sys_swap).
 * For the paths that hold no saved copy of the current values (set, and
 * the start routine's return): they are stored into the red zone, the 8
 * bytes below rsp, which the ABI lets a function use without moving rsp
 * (signal frames are placed below it).  Straight-line apart from two
 * forward branches, rsp unchanged: no CFI needed.  Clobbers eax.
 *
 *     | caller's frame ... |  <- rsp
 *     | fpucw now  (2 B)   |  <- rsp - 4
 *     | mxcsr now  (4 B)   |  <- rsp - 8
 */
.macro load_fp_control base
    stmxcsr -8(%rsp)
    fnstcw -4(%rsp)
    mov CONTEXT_SYS_OFF_MXCSR(%\base), %eax
    xor -8(%rsp), %eax
    test $CONTEXT_SYS_MXCSR_CONTROL_MASK, %eax
    jz 1f
    ldmxcsr CONTEXT_SYS_OFF_MXCSR(%\base)
1:
    movzwl CONTEXT_SYS_OFF_FPUCW(%\base), %eax
    cmp -4(%rsp), %ax
    je 2f
    fldcw CONTEXT_SYS_OFF_FPUCW(%\base)
2:
.endm

    .text

/*
 * void context_sys_swap(struct context_sys_regs *from,      // rdi
 *                       const struct context_sys_regs *to)  // rsi
 *
 * Saves the caller's callee-saved state into *from and continues in *to.
 * When someone later resumes *from, this call returns.
 *
 *     from's stack on entry          after the save, from->rsp points here
 *     | caller's frame     |
 *     | return address     |  <- rsp  == from->rsp
 *
 * MXCSR and the x87 control word are stored every time, and each is loaded
 * only when *to's control bits differ from ours.  Both loads are expensive
 * when they change the register: fldcw is microcoded everywhere, and on
 * Intel cores an ldmxcsr whose value differs from the current MXCSR costs
 * about 55 ns, status bits included.  Since the status bits (the sticky
 * exception flags) are caller-saved and differ between any two contexts
 * that did different float work, loading *to's MXCSR unconditionally would
 * pay that on almost every switch of a real program.  So only the control
 * bits (CONTEXT_SYS_MXCSR_CONTROL_MASK) are compared, and when they match
 * our status bits are simply left as they are.  The comparison reads back
 * the word stmxcsr just stored; on Zen 4 that store-to-load costs ~3 ns a
 * round trip over loading blindly, a price that holds on every vendor,
 * where the blind load's cliff does not.
 *
 * stmxcsr goes first so that its latency overlaps the register stores.
 */
    .p2align 4
    .globl context_sys_swap
    .type context_sys_swap, @function
context_sys_swap:
    .cfi_startproc
    stmxcsr CONTEXT_SYS_OFF_MXCSR(%rdi)
    fnstcw CONTEXT_SYS_OFF_FPUCW(%rdi)
    mov %rsp, CONTEXT_SYS_OFF_RSP(%rdi)
    mov %rbx, CONTEXT_SYS_OFF_RBX(%rdi)
    mov %rbp, CONTEXT_SYS_OFF_RBP(%rdi)
    mov %r12, CONTEXT_SYS_OFF_R12(%rdi)
    mov %r13, CONTEXT_SYS_OFF_R13(%rdi)
    mov %r14, CONTEXT_SYS_OFF_R14(%rdi)
    mov %r15, CONTEXT_SYS_OFF_R15(%rdi)

    /* MXCSR and x87 control word: each only if its control bits differ. */
    mov CONTEXT_SYS_OFF_MXCSR(%rsi), %eax
    xor CONTEXT_SYS_OFF_MXCSR(%rdi), %eax
    test $CONTEXT_SYS_MXCSR_CONTROL_MASK, %eax
    jnz .Lswap_load_mxcsr
.Lswap_mxcsr_done:
    movzwl CONTEXT_SYS_OFF_FPUCW(%rsi), %eax
    cmp CONTEXT_SYS_OFF_FPUCW(%rdi), %ax
    jne .Lswap_load_fpucw
.Lswap_fpucw_done:
    .cfi_remember_state
    load_context_and_jump rsi, DW_OP_breg4, .Lswap_resume_loaded, .Lswap_resume_end

    /* Out of line, so the common path falls through.  The CFI here is
     * that of the body above: CFA = rsp + 8, nothing moved. */
.Lswap_load_mxcsr:
    .cfi_restore_state
    .cfi_remember_state
    ldmxcsr CONTEXT_SYS_OFF_MXCSR(%rsi)
    jmp .Lswap_mxcsr_done
.Lswap_load_fpucw:
    .cfi_restore_state
    fldcw CONTEXT_SYS_OFF_FPUCW(%rsi)
    jmp .Lswap_fpucw_done
    .cfi_endproc
    .size context_sys_swap, .-context_sys_swap

/*
 * void context_sys_set(const struct context_sys_regs *to)  // rdi
 *
 * Continues in *to without saving anything; never returns.  MXCSR and the
 * x87 control word are loaded only where their control bits differ from
 * the current ones (load_fp_control).
 */
    .p2align 4
    .globl context_sys_set
    .type context_sys_set, @function
context_sys_set:
    .cfi_startproc
    load_fp_control rdi
    load_context_and_jump rdi, DW_OP_breg5, .Lset_resume_loaded, .Lset_resume_end
    .cfi_endproc
    .size context_sys_set, .-context_sys_set

/*
 * context_sys_start - where every fresh context begins.  Never called: the
 * first switch into a fresh context pops the resume word that points here.
 *
 * On entry:
 *   rsp  -> struct context_sys_boot_frame (16-aligned)
 *   rbx  =  this context's own register block (return values go there)
 *   r12  =  the parent's register block (where to go when the entry returns)
 *
 *     | spilled argument n    |
 *     | ...                   |
 *     | spilled argument 1    |  <- rsp + CONTEXT_SYS_BOOT_SIZE (16-aligned)
 *     | pad                   |
 *     | entry                 |
 *     | rdi .. r9             |
 *     | xmm0 .. xmm7          |  <- rsp
 *
 * Loads the argument registers, calls the entry with rsp 16-aligned (so it
 * sees rsp + 8 aligned, as the ABI promises), stores rax, rdx and xmm0 into
 * its own block, and continues in the parent.
 *
 * Unwinding (what a backtrace taken inside the child sees above the entry):
 *
 * Linked - the parent's block has been saved into (parent->rsp != 0), which
 * is the case when the child was entered by a swap from its parent.  The
 * frame that "called" the entry is then the parent as it was when it last
 * switched away, so the backtrace continues into the host:
 *
 *     child's stack                      parent's stack
 *     | entry's frames ... |             | host frames ...          |
 *     | ret into start     | --CFI-->    | resume word (ret addr)   | <- parent->rsp
 *                                        CFA = parent->rsp + 8
 *
 * CFA = parent->rsp + 8 (the parent's resume word is at parent->rsp, where a
 * return address sits at CFA - 8), the return address is that word, and the
 * parent's callee-saved registers live in its block at r12 + offset.
 *
 * Unlinked - parent->rsp == 0: nothing was ever saved into the parent (a
 * `Context::new()` parent, the child entered by `set` or by a swap from some
 * other context).  Following the link would read address 0, so the entry is
 * called from a second call site whose CFI marks the return address
 * undefined: libgcc, gdb and every DWARF unwinder treat that as the
 * outermost frame, exactly like `_start` or a thread's `clone`, and the
 * backtrace ends at context_sys_start without garbage or error.  Which call
 * site is used is decided once, when the child starts.
 *
 * As a second line of defence, the linked site's return-address rule is
 * itself conditional: should parent->rsp read 0 (the parent's block zeroed
 * after the child started), it yields return address 0, which libgcc takes
 * as the end of the stack instead of dereferencing address 0.
 *
 * Limit: the link is only as fresh as the parent's block.  If the parent has
 * been resumed since it last saved (it runs elsewhere, on another thread, or
 * returned past that frame), the words at parent->rsp are stale and a
 * backtrace through the link may show wrong host frames.
 *
 * No unwind leaves the entry through here.  The link above is for reading
 * the stack (backtraces, debuggers), not for unwinding it: an exception
 * unwinder that followed it would land in the parent's frames on the
 * parent's stack, in the middle of the swap that entered the child, and run
 * the host's landing pads while the child still counts as running.  So this
 * routine's FDE names a personality routine,
 * context_sys_start_personality below, that aborts the process.  An unwinder
 * calls the personality of every frame it reaches in its search phase (a
 * Rust panic, a C++ throw) and in a forced unwind (pthread_exit,
 * pthread_cancel) before it steps to the frame's caller; the frame of
 * context_sys_start is reached only when nothing inside the entry took the
 * unwind, since a handler in the entry (catch_unwind, catch) ends the search
 * and the unwind below this frame.  Backtraces (_Unwind_Backtrace, gdb,
 * valgrind) call no personality and still follow the link.
 */
    .p2align 4
    .globl context_sys_start
    .type context_sys_start, @function
context_sys_start:
    .cfi_startproc
    /* CIE augmentation "zPR": the personality pointer, encoded as above. */
    .cfi_personality DW_EH_PE_pcrel_sdata4, context_sys_start_personality
    /* DW_CFA_def_cfa_expression, length 5:
     *   DW_OP_breg12 CONTEXT_SYS_OFF_RSP   push r12 + offsetof(rsp)
     *   DW_OP_deref                        load parent->rsp
     *   DW_OP_plus_uconst 8                step over the resume word */
    .cfi_escape DW_CFA_def_cfa_expression, 5, DW_OP_breg12, CONTEXT_SYS_OFF_RSP, DW_OP_deref, DW_OP_plus_uconst, 8
    /* DW_CFA_val_expression, rip (16), length 13: the return address is
     * *(parent->rsp), or 0 when parent->rsp is 0.  Written without branches
     * (valgrind's CFI reader knows no DW_OP_bra or DW_OP_dup): when
     * parent->rsp is 0 it dereferences &parent->rsp instead, which holds 0.
     *   DW_OP_breg12 CONTEXT_SYS_OFF_RSP   push &parent->rsp
     *   DW_OP_deref                        parent->rsp
     *   DW_OP_breg12 CONTEXT_SYS_OFF_RSP   push &parent->rsp
     *   DW_OP_deref                        parent->rsp
     *   DW_OP_lit0                         push 0
     *   DW_OP_eq                           1 if parent->rsp == 0, else 0
     *   DW_OP_breg12 CONTEXT_SYS_OFF_RSP   push &parent->rsp
     *   DW_OP_mul                          &parent->rsp if it holds 0, else 0
     *   DW_OP_plus                         parent->rsp, or &parent->rsp
     *   DW_OP_deref                        the resume word, or 0 */
    .cfi_escape DW_CFA_val_expression, 16, 13, DW_OP_breg12, CONTEXT_SYS_OFF_RSP, DW_OP_deref, DW_OP_breg12, CONTEXT_SYS_OFF_RSP, DW_OP_deref, DW_OP_lit0, DW_OP_eq, DW_OP_breg12, CONTEXT_SYS_OFF_RSP, DW_OP_mul, DW_OP_plus, DW_OP_deref
    cfi_saved_at 3, DW_OP_breg12, CONTEXT_SYS_OFF_RBX
    cfi_saved_at 6, DW_OP_breg12, CONTEXT_SYS_OFF_RBP
    cfi_saved_at 12, DW_OP_breg12, CONTEXT_SYS_OFF_R12
    cfi_saved_at 13, DW_OP_breg12, CONTEXT_SYS_OFF_R13
    cfi_saved_at 14, DW_OP_breg12, CONTEXT_SYS_OFF_R14
    cfi_saved_at 15, DW_OP_breg12, CONTEXT_SYS_OFF_R15
    movq CONTEXT_SYS_BOOT_XMM0(%rsp), %xmm0
    movq CONTEXT_SYS_BOOT_XMM1(%rsp), %xmm1
    movq CONTEXT_SYS_BOOT_XMM2(%rsp), %xmm2
    movq CONTEXT_SYS_BOOT_XMM3(%rsp), %xmm3
    movq CONTEXT_SYS_BOOT_XMM4(%rsp), %xmm4
    movq CONTEXT_SYS_BOOT_XMM5(%rsp), %xmm5
    movq CONTEXT_SYS_BOOT_XMM6(%rsp), %xmm6
    movq CONTEXT_SYS_BOOT_XMM7(%rsp), %xmm7
    mov CONTEXT_SYS_BOOT_RDI(%rsp), %rdi
    mov CONTEXT_SYS_BOOT_RSI(%rsp), %rsi
    mov CONTEXT_SYS_BOOT_RDX(%rsp), %rdx
    mov CONTEXT_SYS_BOOT_RCX(%rsp), %rcx
    mov CONTEXT_SYS_BOOT_R8(%rsp), %r8
    mov CONTEXT_SYS_BOOT_R9(%rsp), %r9
    mov CONTEXT_SYS_BOOT_ENTRY(%rsp), %r11
    /* al bounds the vector registers a variadic callee must spill. */
    mov $8, %eax
    lea CONTEXT_SYS_BOOT_SIZE(%rsp), %rsp
    /* Linked or not (see above): has the parent's block been saved into? */
    cmpq $0, CONTEXT_SYS_OFF_RSP(%r12)
    je .Lstart_unlinked
    .cfi_remember_state
    call *%r11
.Lstart_returned:
    /* The entry returned: keep its return registers, then go to the parent. */
    mov %rax, CONTEXT_SYS_OFF_RET_RAX(%rbx)
    mov %rdx, CONTEXT_SYS_OFF_RET_RDX(%rbx)
    movups %xmm0, CONTEXT_SYS_OFF_RET_XMM0(%rbx)
    mov %r12, %rdi
    load_fp_control rdi
    load_context_and_jump rdi, DW_OP_breg5, .Lstart_resume_loaded, .Lstart_resume_end

.Lstart_unlinked:
    /* The same call, from a site whose unwind row says "outermost frame":
     * no return address, CFA = rsp (nothing above belongs to a caller).  The
     * callee-saved rules are never used once rip is undefined. */
    .cfi_restore_state
    .cfi_def_cfa %rsp, 0
    .cfi_undefined %rip
    call *%r11
    /* By now the parent must have been saved into, or returning to it is the
     * caller's bug (as it would be without this path). */
    jmp .Lstart_returned
    .cfi_endproc
    .size context_sys_start, .-context_sys_start

/*
 * _Unwind_Reason_Code context_sys_start_personality(
 *         int version,                          // edi
 *         _Unwind_Action actions,               // esi
 *         uint64_t exception_class,             // rdx
 *         struct _Unwind_Exception *exception,  // rcx
 *         struct _Unwind_Context *context)      // r8
 *
 * The personality routine of context_sys_start (Itanium C++ ABI, base
 * level: the unwinder calls it with these arguments for each frame whose
 * CIE names it).  It is reached only by an unwind that would leave the
 * entry function (see context_sys_start), and every answer it could give is
 * wrong: _URC_CONTINUE_UNWIND lets the unwind into the parent's frames,
 * _URC_HANDLER_FOUND needs a landing pad that could only lose the unwind's
 * frames and the parent's return, and an error code makes a Rust panic
 * abort with "failed to initiate panic" and pthread_exit abort with another
 * message, neither naming the cause.  So whatever the arguments, it writes
 * CONTEXT_SYS_UNWIND_ABORT_MESSAGE to fd 2 and calls abort().
 *
 * It runs inside the unwinder, maybe in a signal handler or with the heap
 * locked, so it allocates nothing and makes only async-signal-safe calls:
 * the write system call directly (its result in rax is bytes written or
 * -errno, so no errno is touched), retried after a short write or EINTR and
 * abandoned on any other error, then abort().  The arguments are ignored.
 *
 *     on entry                      during the calls
 *     | unwinder's frames |         | unwinder's frames |
 *     | return address    | <- rsp  | return address    |
 *                                   | 8 bytes, unused   | <- rsp (16-aligned)
 *
 * A local symbol: only .eh_frame refers to it; it is not part of the ABI.
 */
    .p2align 4
    .type context_sys_start_personality, @function
context_sys_start_personality:
    .cfi_startproc
    sub $8, %rsp                     /* 16-align rsp for the call of abort */
    .cfi_adjust_cfa_offset 8
    lea .Lunwind_abort_message(%rip), %rsi  /* rsi = first byte not written */
    mov $.Lunwind_abort_message_len, %edx   /* rdx = bytes not written */
.Lpersonality_write:
    mov $SYS_write, %eax
    mov $2, %edi                     /* standard error */
    syscall                          /* rax = written or -errno; rcx, r11 lost */
    cmp $-EINTR, %rax
    je .Lpersonality_write           /* interrupted before writing: again */
    test %rax, %rax
    jle .Lpersonality_abort          /* an error, or nothing written: give up */
    add %rax, %rsi                   /* 0 < rax <= rdx: step over what went */
    sub %rax, %rdx
    jnz .Lpersonality_write          /* a short write: the rest */
.Lpersonality_abort:
    call abort@PLT                   /* does not return */
    ud2
    .cfi_endproc
    .size context_sys_start_personality, .-context_sys_start_personality

    .section .rodata
.Lunwind_abort_message:
    .ascii CONTEXT_SYS_UNWIND_ABORT_MESSAGE
    .set .Lunwind_abort_message_len, . - .Lunwind_abort_message
    .text

/*
 * void context_sys_save_fp_control(struct context_sys_regs *regs)  // rdi
 *
 * Stores the calling thread's MXCSR and x87 control word into *regs, so a
 * fresh context can start with the control state of the thread that made it.
 */
    .p2align 4
    .globl context_sys_save_fp_control
    .type context_sys_save_fp_control, @function
context_sys_save_fp_control:
    .cfi_startproc
    stmxcsr CONTEXT_SYS_OFF_MXCSR(%rdi)
    fnstcw CONTEXT_SYS_OFF_FPUCW(%rdi)
    ret
    .cfi_endproc
    .size context_sys_save_fp_control, .-context_sys_save_fp_control

/*
 * uint64_t context_sys_get_current_stack_pointer(void)
 *
 * The caller's rsp as it will be once this call has returned.
 */
    .p2align 4
    .globl context_sys_get_current_stack_pointer
    .type context_sys_get_current_stack_pointer, @function
context_sys_get_current_stack_pointer:
    .cfi_startproc
    lea 8(%rsp), %rax
    ret
    .cfi_endproc
    .size context_sys_get_current_stack_pointer, .-context_sys_get_current_stack_pointer

/*
 * void context_sys_resume_windows(struct context_sys_resume_windows *out)  // rdi
 *
 * Stores into *out where each of the three switches into a context holds
 * the target's resume address in rcx: [loaded, end) of context_sys_swap,
 * context_sys_set and context_sys_start's return to its parent (the labels
 * of load_context_and_jump; "The resume window" in the header).  The
 * addresses are taken pc-relative, so no relocation is needed in any link.
 * A routine, not a table of addresses in .rodata (absolute addresses there
 * would need load-time relocations) nor global labels in the switches (a
 * symbolizer would then name the rest of each switch, and
 * context_sys_start's unlinked call site, after the label instead of the
 * routine).  Touches only rax and *out, no stack: async-signal-safe.
 * CFA = rsp + 8 throughout.
 */
    .p2align 4
    .globl context_sys_resume_windows
    .type context_sys_resume_windows, @function
context_sys_resume_windows:
    .cfi_startproc
    lea .Lswap_resume_loaded(%rip), %rax
    mov %rax, CONTEXT_SYS_RESUME_SWAP_LOADED(%rdi)
    lea .Lswap_resume_end(%rip), %rax
    mov %rax, CONTEXT_SYS_RESUME_SWAP_END(%rdi)
    lea .Lset_resume_loaded(%rip), %rax
    mov %rax, CONTEXT_SYS_RESUME_SET_LOADED(%rdi)
    lea .Lset_resume_end(%rip), %rax
    mov %rax, CONTEXT_SYS_RESUME_SET_END(%rdi)
    lea .Lstart_resume_loaded(%rip), %rax
    mov %rax, CONTEXT_SYS_RESUME_START_LOADED(%rdi)
    lea .Lstart_resume_end(%rip), %rax
    mov %rax, CONTEXT_SYS_RESUME_START_END(%rdi)
    ret
    .cfi_endproc
    .size context_sys_resume_windows, .-context_sys_resume_windows

/*
 * uint64_t context_sys_valgrind_client_request(
 *         const uint64_t request[CONTEXT_SYS_VALGRIND_REQUEST_WORDS],  // rdi
 *         uint64_t default_value)                                      // rsi
 *
 * Makes one valgrind client request and returns valgrind's answer, or
 * default_value when the process is not running under valgrind.
 * request[0] is the request code (CONTEXT_SYS_VALGRIND_*), request[1..5]
 * its arguments.
 *
 * Valgrind's JIT recognises the instruction sequence below and replaces it
 * with the request; on a real CPU it changes nothing but the flags:
 *   - rax carries the address of the request block,
 *   - rdx carries the default in and valgrind's answer out,
 *   - the four rotates of rdi add up to 3 + 13 + 61 + 51 = 128 bits, two
 *     full turns, so rdi ends as it began; they are the marker valgrind
 *     looks for and must be encoded exactly as rolq $imm8, %rdi,
 *   - `xchgq %rbx, %rbx` right after the marker selects "client request";
 *     it swaps rbx with itself, a no-op.
 * The sequence is the amd64 protocol that valgrind.h documents; it cannot
 * be emitted from Rust reliably (the exact bytes and registers matter), so
 * it lives here.  No stack is used: the CFA stays rsp + 8 throughout.
 */
    .p2align 4
    .globl context_sys_valgrind_client_request
    .type context_sys_valgrind_client_request, @function
context_sys_valgrind_client_request:
    .cfi_startproc
    mov %rdi, %rax          /* rax -> request block */
    mov %rsi, %rdx          /* rdx = default, valgrind's answer replaces it */
    rolq $3, %rdi           /* marker: four rotates of rdi, 128 bits in all */
    rolq $13, %rdi
    rolq $61, %rdi
    rolq $51, %rdi
    xchgq %rbx, %rbx        /* the request: rdx = request(rax) */
    mov %rdx, %rax
    ret
    .cfi_endproc
    .size context_sys_valgrind_client_request, .-context_sys_valgrind_client_request

    .section .note.GNU-stack, "", @progbits
