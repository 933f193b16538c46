//! Raw context switching for x86_64 (System V) and aarch64 (AAPCS64)
//! Linux: the assembly, the register block it reads and writes, and the
//! layout of a fresh context's first frame.
//!
//! This crate is the bottom layer of the workspace. It holds machine code and
//! declarations only: no allocation, no signals, no validation. The safe
//! layer is the `context` crate; use that unless you are writing another
//! safe layer or calling from C (see `include/context_sys.h`, whose path
//! dependents receive as `DEP_CONTEXT_SYS_INCLUDE`).
//!
//! # What the assembly does
//!
//! The routines and their contracts are the same on both architectures;
//! the registers differ (x86_64's first, aarch64's after them).
//!
//! * [`swap`] saves the callee-saved registers and the floating-point
//!   control state into one [`ContextRegs`] and continues in another:
//!   rbx, rbp, r12–r15, rsp, MXCSR and the x87 control word (aarch64:
//!   x19–x28, fp, lr, sp, d8–d15, FPCR). The control state is loaded only when the
//!   target's differs from the current one (a load that changes MXCSR
//!   costs ~55 ns on some Intel CPUs; MXCSR's status bits, like FPSR on
//!   aarch64, are caller-saved and left as they are).
//! * [`set`] continues in a [`ContextRegs`] without saving anything.
//! * [`start`] is where a fresh context begins: it loads the argument
//!   registers from a [`BootFrame`], calls the entry function with the stack
//!   16-byte aligned, stores the return registers rax, rdx, xmm0 (aarch64:
//!   x0, x1, q0) into the context's own block (rbx; x19) and continues in
//!   the parent's (r12; x20). Its unwind information links a backtrace taken
//!   inside the child to the parent's saved frames, and ends it cleanly
//!   when the parent was never saved into.
//! * No unwind leaves an entry function through [`start`]: a Rust panic, a
//!   C++ exception or a forced unwind (`pthread_exit`, `pthread_cancel`)
//!   that nothing inside the entry catches reaches the personality routine
//!   of [`start`], which writes [`UNWIND_ABORT_MESSAGE`] to standard error
//!   and calls `abort()`. Without it the unwinder would follow the
//!   backtrace link into the frames that switched into the child, while the
//!   child still counts as running.
//! * [`resume_windows`] tells where each switch into a context has read the
//!   target's resume address into a register but not yet jumped to it: the
//!   instructions a signal handler must know of to divert such a switch
//!   (see [`ResumeWindows`]).
//! * [`valgrind_client_request`] makes a valgrind client request (stack
//!   registration, "am I running under valgrind?"); a no-op natively.
//!
//! On aarch64 every global routine begins with `bti c` and the object
//! carries a GNU property note marking it BTI-compatible; resumption is a
//! `ret` to the resume address, which needs no landing pad.
//!
//! # Layout
//!
//! Every offset is defined once, in `include/context_sys.h` (one section
//! per architecture); the build script turns the target's `#define`s into
//! the constants of [`layout`], and this crate checks them against
//! `offset_of!` at compile time.
//!
//! ```
//! use context_sys::{layout, ContextRegs};
//! assert_eq!(core::mem::size_of::<ContextRegs>(), layout::REGS_SIZE);
//! # #[cfg(target_arch = "x86_64")]
//! assert_eq!(core::mem::offset_of!(ContextRegs, rsp), layout::OFF_RSP);
//! # #[cfg(target_arch = "aarch64")]
//! assert_eq!(core::mem::offset_of!(ContextRegs, sp), layout::OFF_SP);
//! ```
//!
//! # What it deliberately does not do
//!
//! It does not build initial frames (the caller writes a [`BootFrame`]), save
//! caller-saved or vector registers on a switch (the ABI does not ask a
//! callee to keep them), or support any target but x86_64 and aarch64
//! Linux.

#![no_std]
#![warn(missing_docs)]

#[cfg(target_arch = "x86_64")]
mod inline_x86_64;
#[cfg(target_arch = "x86_64")]
pub use inline_x86_64::swap_inline;

/// Layout constants generated from `include/context_sys.h`.
///
/// `OFF_*` are byte offsets in [`ContextRegs`]; `BOOT_*` are byte offsets
/// in [`BootFrame`]; `RESUME_*` are byte offsets in [`ResumeWindows`];
/// `*_SIZE` and `*_ALIGN` are sizes and alignments;
/// `VALGRIND_*` are the request codes and block size of
/// [`valgrind_client_request`].
pub mod layout {
    include!(concat!(env!("OUT_DIR"), "/layout.rs"));
}

/// What the process writes to standard error (fd 2), as one line, just
/// before it aborts because an unwind reached [`start`] (see the crate
/// docs): `CONTEXT_SYS_UNWIND_ABORT_MESSAGE` in `include/context_sys.h`.
///
/// For a Rust panic the panic hook has already printed the panic's own
/// message (and backtrace, if asked for) above it.
///
/// ```
/// assert!(context_sys::UNWIND_ABORT_MESSAGE.starts_with("context-sys: an unwind"));
/// ```
pub const UNWIND_ABORT_MESSAGE: &str = include!(concat!(env!("OUT_DIR"), "/unwind_abort_message.rs"));

/// The saved state of one execution context, as the assembly reads and
/// writes it (`struct context_sys_regs` in the C header).
///
/// # Layout
///
/// Callee-saved registers, MXCSR and the x87 control word fill exactly one
/// 64-byte cache line; the return registers of a finished entry follow.
/// Offsets are the `layout::OFF_*` constants.
///
/// # Movement
///
/// A fresh context's `rbx` and `r12` hold the addresses of its own block and
/// of its parent's, so neither block may move between preparing the context
/// and the entry function's return.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextRegs {
    /// Stack pointer of the suspended context; points at the resume address.
    pub rsp: u64,
    /// Callee-saved `rbx`.
    pub rbx: u64,
    /// Callee-saved `rbp`.
    pub rbp: u64,
    /// Callee-saved `r12`.
    pub r12: u64,
    /// Callee-saved `r13`.
    pub r13: u64,
    /// Callee-saved `r14`.
    pub r14: u64,
    /// Callee-saved `r15`.
    pub r15: u64,
    /// MXCSR as stored by `stmxcsr`.
    pub mxcsr: u32,
    /// x87 control word as stored by `fnstcw`.
    pub fpucw: u16,
    /// Padding; keeps the hot part at one cache line.
    pub pad: u16,
    /// `rax` of the entry function's return.
    pub ret_rax: u64,
    /// `rdx` of the entry function's return.
    pub ret_rdx: u64,
    /// `xmm0` of the entry function's return, low 64 bits first.
    pub ret_xmm0: [u64; 2],
}

/// The first frame of a fresh context, read by [`start`]
/// (`struct context_sys_boot_frame` in the C header).
///
/// The preparer writes it 16-byte aligned on the new stack, puts the address
/// of [`start`] in the word just below it, sets [`ContextRegs::rsp`] to that
/// word, `rbx` to the context's own block and `r12` to the parent's. Spilled
/// arguments follow the frame, first argument lowest.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootFrame {
    /// Bits of the floating arguments, loaded with `movq` into xmm0–xmm7.
    pub xmm: [u64; 8],
    /// Integer arguments for rdi, rsi, rdx, rcx, r8, r9.
    pub gp: [u64; 6],
    /// Address of the entry function.
    pub entry: u64,
    /// Unused; keeps the spilled arguments 16-byte aligned.
    pub pad: u64,
}

/// The saved state of one execution context, as the assembly reads and
/// writes it (`struct context_sys_regs` in the C header, aarch64 section).
///
/// # Layout
///
/// Callee-saved registers of AAPCS64 (x19–x28, fp, lr, sp, the low halves
/// of v8–v15) and FPCR, then the return registers of a finished entry.
/// Offsets are the `layout::OFF_*` constants.
///
/// # Movement
///
/// A fresh context's `x19` and `x20` hold the addresses of its own block and
/// of its parent's, so neither block may move between preparing the context
/// and the entry function's return.
#[cfg(target_arch = "aarch64")]
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextRegs {
    /// Stack pointer of the suspended context; points at the 16-byte slot
    /// whose first word is the resume address.
    pub sp: u64,
    /// Callee-saved `x19`.
    pub x19: u64,
    /// Callee-saved `x20`.
    pub x20: u64,
    /// Callee-saved `x21`.
    pub x21: u64,
    /// Callee-saved `x22`.
    pub x22: u64,
    /// Callee-saved `x23`.
    pub x23: u64,
    /// Callee-saved `x24`.
    pub x24: u64,
    /// Callee-saved `x25`.
    pub x25: u64,
    /// Callee-saved `x26`.
    pub x26: u64,
    /// Callee-saved `x27`.
    pub x27: u64,
    /// Callee-saved `x28`.
    pub x28: u64,
    /// The frame pointer `x29`.
    pub fp: u64,
    /// The link register `x30` (a suspended swap's return address).
    pub lr: u64,
    /// Low 64 bits of `v8`.
    pub d8: u64,
    /// Low 64 bits of `v9`.
    pub d9: u64,
    /// Low 64 bits of `v10`.
    pub d10: u64,
    /// Low 64 bits of `v11`.
    pub d11: u64,
    /// Low 64 bits of `v12`.
    pub d12: u64,
    /// Low 64 bits of `v13`.
    pub d13: u64,
    /// Low 64 bits of `v14`.
    pub d14: u64,
    /// Low 64 bits of `v15`.
    pub d15: u64,
    /// FPCR as read by `mrs`.
    pub fpcr: u64,
    /// `x0` of the entry function's return.
    pub ret_x0: u64,
    /// `x1` of the entry function's return.
    pub ret_x1: u64,
    /// `q0` (`v0`) of the entry function's return, low 64 bits first.
    pub ret_v0: [u64; 2],
}

/// The first frame of a fresh context, read by [`start`]
/// (`struct context_sys_boot_frame` in the C header, aarch64 section).
///
/// The preparer writes it 16-byte aligned on the new stack, puts the address
/// of [`start`] in the 16-byte slot just below it (first word; the second
/// zero), sets [`ContextRegs::sp`] to that slot, `x19` to the context's own
/// block and `x20` to the parent's. Spilled arguments follow the frame, one
/// 8-byte slot each, first argument lowest.
#[cfg(target_arch = "aarch64")]
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootFrame {
    /// Integer arguments for x0–x7.
    pub gp: [u64; 8],
    /// Bits of the floating arguments, loaded with `ldr dN` into v0–v7.
    pub fp: [u64; 8],
    /// Address of the entry function.
    pub entry: u64,
    /// Unused; keeps the spilled arguments 16-byte aligned.
    pub pad: u64,
}

impl ContextRegs {
    /// The saved stack pointer (`rsp` on x86_64, `sp` on aarch64): the
    /// address of the suspended context's resume word, or 0 for a block
    /// never saved into.
    ///
    /// ```
    /// assert_eq!(context_sys::ContextRegs::default().stack_pointer(), 0);
    /// ```
    #[inline]
    pub const fn stack_pointer(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            self.rsp
        }
        #[cfg(target_arch = "aarch64")]
        {
            self.sp
        }
    }
}

/// Where the three switches into a context hold the target's resume address
/// in a register, filled in by [`resume_windows`] (`struct
/// context_sys_resume_windows` in the C header). Each window is `[loaded,
/// end)` in code addresses of the running process.
///
/// # The resume window
///
/// A suspended context continues at its resume word, the word at
/// [`ContextRegs::stack_pointer`]. Every switch into a context ([`swap`]
/// into `to`, [`set`] into `to`, and [`start`]'s return into the parent)
/// ends with
///
/// ```text
/// x86_64 (ADDR = rax, NEXT = rcx; base: rsi in swap, rdi otherwise)
///     mov  OFF_RSP(base), %rax   ; rax = &resume word
///     mov  (%rax), %rcx          ; rcx = the resume word
/// loaded:
///     lea  8(%rax), %rsp         ; rsp = &resume word + 8, the target's stack
///     mov  ..(base), %rbx, %rbp, %r13, %r14, %r15, %r12   ; rax, rcx kept
///     jmp  *%rcx
/// end:
///
/// aarch64 (ADDR = x9, NEXT = x10; base: x1 in swap, x0 otherwise)
///     ldr  x9, [base, #OFF_SP]   ; x9 = &resume word
///     ldr  x10, [x9]             ; x10 = the resume word
/// loaded:
///     add  sp, x9, #16           ; sp = &resume word + 16, the target's stack
///     ldp  ..[base]: x19-x28, fp, lr, d8-d15   ; x9, x10 kept
///     ret  x10
/// end:
/// ```
///
/// A signal handler whose thread was interrupted with its pc in `[loaded,
/// end)` and ADDR equal to a context's saved stack pointer has caught a
/// switch into that context after it read the resume word: the switch
/// continues at NEXT, so diverting it means rewriting both the word and
/// NEXT. With the pc anywhere else (the first two instructions included)
/// the word has not been read yet, and rewriting it is enough. The C header
/// states the full contract; `context::divert_pending_resume` implements
/// it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeWindows {
    /// First instruction of [`swap`] at which NEXT holds the resume address.
    pub swap_loaded: u64,
    /// Just past [`swap`]'s jump to NEXT.
    pub swap_end: u64,
    /// First instruction of [`set`] at which NEXT holds the resume address.
    pub set_loaded: u64,
    /// Just past [`set`]'s jump to NEXT.
    pub set_end: u64,
    /// First instruction of [`start`]'s return to its parent at which NEXT
    /// holds the parent's resume address.
    pub start_loaded: u64,
    /// Just past that return's jump to NEXT.
    pub start_end: u64,
}

/// Compile-time proof that the Rust structs and the header agree (x86_64).
#[cfg(target_arch = "x86_64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(ContextRegs, rsp) == layout::OFF_RSP);
    assert!(offset_of!(ContextRegs, rbx) == layout::OFF_RBX);
    assert!(offset_of!(ContextRegs, rbp) == layout::OFF_RBP);
    assert!(offset_of!(ContextRegs, r12) == layout::OFF_R12);
    assert!(offset_of!(ContextRegs, r13) == layout::OFF_R13);
    assert!(offset_of!(ContextRegs, r14) == layout::OFF_R14);
    assert!(offset_of!(ContextRegs, r15) == layout::OFF_R15);
    assert!(offset_of!(ContextRegs, mxcsr) == layout::OFF_MXCSR);
    assert!(offset_of!(ContextRegs, fpucw) == layout::OFF_FPUCW);
    assert!(offset_of!(ContextRegs, ret_rax) == layout::OFF_RET_RAX);
    assert!(offset_of!(ContextRegs, ret_rdx) == layout::OFF_RET_RDX);
    assert!(offset_of!(ContextRegs, ret_xmm0) == layout::OFF_RET_XMM0);
    assert!(size_of::<ContextRegs>() == layout::REGS_SIZE);
    assert!(align_of::<ContextRegs>() == layout::REGS_ALIGN);

    let xmm = [
        layout::BOOT_XMM0,
        layout::BOOT_XMM1,
        layout::BOOT_XMM2,
        layout::BOOT_XMM3,
        layout::BOOT_XMM4,
        layout::BOOT_XMM5,
        layout::BOOT_XMM6,
        layout::BOOT_XMM7,
    ];
    let mut i = 0;
    while i < xmm.len() {
        assert!(offset_of!(BootFrame, xmm) + i * size_of::<u64>() == xmm[i]);
        i += 1;
    }
    let gp = [layout::BOOT_RDI, layout::BOOT_RSI, layout::BOOT_RDX, layout::BOOT_RCX, layout::BOOT_R8, layout::BOOT_R9];
    let mut i = 0;
    while i < gp.len() {
        assert!(offset_of!(BootFrame, gp) + i * size_of::<u64>() == gp[i]);
        i += 1;
    }
    assert!(offset_of!(BootFrame, entry) == layout::BOOT_ENTRY);
    assert!(offset_of!(BootFrame, pad) == layout::BOOT_PAD);
    assert!(size_of::<BootFrame>() == layout::BOOT_SIZE);
    assert!(align_of::<BootFrame>() == layout::BOOT_ALIGN);
};

/// Compile-time proof that the Rust structs and the header agree (aarch64).
#[cfg(target_arch = "aarch64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(ContextRegs, sp) == layout::OFF_SP);
    let x = [
        layout::OFF_X19,
        layout::OFF_X20,
        layout::OFF_X21,
        layout::OFF_X22,
        layout::OFF_X23,
        layout::OFF_X24,
        layout::OFF_X25,
        layout::OFF_X26,
        layout::OFF_X27,
        layout::OFF_X28,
    ];
    let mut i = 0;
    while i < x.len() {
        assert!(offset_of!(ContextRegs, x19) + i * size_of::<u64>() == x[i]);
        i += 1;
    }
    assert!(offset_of!(ContextRegs, x28) == layout::OFF_X28);
    assert!(offset_of!(ContextRegs, fp) == layout::OFF_FP);
    assert!(offset_of!(ContextRegs, lr) == layout::OFF_LR);
    let d = [
        layout::OFF_D8,
        layout::OFF_D9,
        layout::OFF_D10,
        layout::OFF_D11,
        layout::OFF_D12,
        layout::OFF_D13,
        layout::OFF_D14,
        layout::OFF_D15,
    ];
    let mut i = 0;
    while i < d.len() {
        assert!(offset_of!(ContextRegs, d8) + i * size_of::<u64>() == d[i]);
        i += 1;
    }
    assert!(offset_of!(ContextRegs, d15) == layout::OFF_D15);
    assert!(offset_of!(ContextRegs, fpcr) == layout::OFF_FPCR);
    assert!(offset_of!(ContextRegs, ret_x0) == layout::OFF_RET_X0);
    assert!(offset_of!(ContextRegs, ret_x1) == layout::OFF_RET_X1);
    assert!(offset_of!(ContextRegs, ret_v0) == layout::OFF_RET_V0);
    assert!(size_of::<ContextRegs>() == layout::REGS_SIZE);
    assert!(align_of::<ContextRegs>() == layout::REGS_ALIGN);

    let gp = [
        layout::BOOT_X0,
        layout::BOOT_X1,
        layout::BOOT_X2,
        layout::BOOT_X3,
        layout::BOOT_X4,
        layout::BOOT_X5,
        layout::BOOT_X6,
        layout::BOOT_X7,
    ];
    let fp = [
        layout::BOOT_D0,
        layout::BOOT_D1,
        layout::BOOT_D2,
        layout::BOOT_D3,
        layout::BOOT_D4,
        layout::BOOT_D5,
        layout::BOOT_D6,
        layout::BOOT_D7,
    ];
    let mut i = 0;
    while i < gp.len() {
        assert!(offset_of!(BootFrame, gp) + i * size_of::<u64>() == gp[i]);
        assert!(offset_of!(BootFrame, fp) + i * size_of::<u64>() == fp[i]);
        i += 1;
    }
    assert!(offset_of!(BootFrame, entry) == layout::BOOT_ENTRY);
    assert!(offset_of!(BootFrame, pad) == layout::BOOT_PAD);
    assert!(size_of::<BootFrame>() == layout::BOOT_SIZE);
    assert!(align_of::<BootFrame>() == layout::BOOT_ALIGN);
};

/// Compile-time proof that the common structs and the header agree.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(layout::RESUME_SP_STEP.is_multiple_of(8) && layout::RESUME_SP_STEP <= layout::BOOT_ALIGN);
    assert!(offset_of!(ResumeWindows, swap_loaded) == layout::RESUME_SWAP_LOADED);
    assert!(offset_of!(ResumeWindows, swap_end) == layout::RESUME_SWAP_END);
    assert!(offset_of!(ResumeWindows, set_loaded) == layout::RESUME_SET_LOADED);
    assert!(offset_of!(ResumeWindows, set_end) == layout::RESUME_SET_END);
    assert!(offset_of!(ResumeWindows, start_loaded) == layout::RESUME_START_LOADED);
    assert!(offset_of!(ResumeWindows, start_end) == layout::RESUME_START_END);
    assert!(size_of::<ResumeWindows>() == layout::RESUME_WINDOWS_SIZE);
    assert!(align_of::<ResumeWindows>() == layout::RESUME_WINDOWS_ALIGN);
};

unsafe extern "C" {
    /// Saves the caller's callee-saved registers, stack pointer and
    /// floating-point control state (MXCSR and x87 control word; FPCR on
    /// aarch64) into `*from` and continues in `*to`. Returns when
    /// something later continues in `*from`.
    ///
    /// # Safety
    ///
    /// * `from` must be valid for writes of a [`ContextRegs`].
    /// * `to` must hold a context saved by `swap` whose stack is still live
    ///   and not running, or a fresh context prepared as [`BootFrame`]
    ///   describes, with both register blocks still at their addresses.
    /// * The code that continues must eventually resume `*from` (or never
    ///   need the frames above this call again): for instance, swapping to a
    ///   context whose stack has been freed jumps into freed memory.
    #[link_name = "context_sys_swap"]
    pub fn swap(from: *mut ContextRegs, to: *const ContextRegs);

    /// Continues in `*to` without saving anything. Never returns.
    ///
    /// # Safety
    ///
    /// The same duties as [`swap`]'s `to`; in addition, everything on the
    /// current stack above this call is abandoned without running
    /// destructors.
    #[link_name = "context_sys_set"]
    pub fn set(to: *const ContextRegs) -> !;

    /// Where a fresh context begins. Its address goes in the resume word
    /// below a [`BootFrame`]; it must never be called directly.
    ///
    /// The entry function must not unwind out: an unwind that reaches this
    /// routine aborts the process with [`UNWIND_ABORT_MESSAGE`].
    ///
    /// # Safety
    ///
    /// Not callable: it expects the stack and registers that a switch into a
    /// prepared context leaves, and does not return.
    #[link_name = "context_sys_start"]
    pub fn start();

    /// Stores the calling thread's floating-point control state into
    /// `regs` (`mxcsr` and `fpucw` on x86_64, `fpcr` on aarch64), leaving
    /// other fields alone.
    ///
    /// # Safety
    ///
    /// `regs` must be valid for writes of a [`ContextRegs`].
    #[link_name = "context_sys_save_fp_control"]
    pub fn save_fp_control(regs: *mut ContextRegs);

    /// The caller's stack pointer as it is once this call has returned.
    ///
    /// # Safety
    ///
    /// Always safe to call; declared `unsafe` only because it is foreign.
    #[link_name = "context_sys_get_current_stack_pointer"]
    pub fn get_current_stack_pointer() -> u64;

    /// Stores the addresses of the three resume windows (see
    /// [`ResumeWindows`]) into `*windows`. Uses no stack and touches no
    /// other memory, so it may be called from a signal handler.
    ///
    /// # Safety
    ///
    /// `windows` must be valid for writes of a [`ResumeWindows`].
    #[link_name = "context_sys_resume_windows"]
    pub fn resume_windows(windows: *mut ResumeWindows);

    /// Makes one valgrind client request and returns valgrind's answer, or
    /// `default` when the process is not running under valgrind (then it
    /// does nothing at all).
    ///
    /// `request[0]` is the request code (`layout::VALGRIND_*`, or any code
    /// from valgrind's headers), `request[1..]` its arguments.
    ///
    /// # Safety
    ///
    /// * `request` must be valid for reads of
    ///   `layout::VALGRIND_REQUEST_WORDS` words.
    /// * Under valgrind the request takes effect: its arguments must be what
    ///   the request expects. Registering a stack range the caller does not
    ///   own, or deregistering an id twice, misleads valgrind's checks of
    ///   the whole process (natively it is harmless).
    #[link_name = "context_sys_valgrind_client_request"]
    pub fn valgrind_client_request(request: *const [u64; layout::VALGRIND_REQUEST_WORDS], default: u64) -> u64;
}
