//! Raw x86_64 System V context switching: the assembly, the register block
//! it reads and writes, and the layout of a fresh context's first frame.
//!
//! This crate is the bottom layer of the workspace. It holds machine code and
//! declarations only: no allocation, no signals, no validation. The safe
//! layer is the `context` crate; use that unless you are writing another
//! safe layer or calling from C (see `include/context_sys.h`, whose path
//! dependents receive as `DEP_CONTEXT_SYS_INCLUDE`).
//!
//! # What the assembly does
//!
//! * [`swap`] saves rbx, rbp, r12–r15, rsp, MXCSR and the x87 control word
//!   into one [`ContextRegs`] and continues in another. MXCSR and the x87
//!   control word are loaded only when the target's control bits differ
//!   from the current ones (a load that changes MXCSR costs ~55 ns on some
//!   Intel CPUs; the status bits are caller-saved and left as they are).
//! * [`set`] continues in a [`ContextRegs`] without saving anything.
//! * [`start`] is where a fresh context begins: it loads the argument
//!   registers from a [`BootFrame`], calls the entry function with the stack
//!   16-byte aligned, stores rax, rdx and xmm0 into the context's own block
//!   (`rbx`) and continues in the parent's (`r12`). Its unwind information
//!   links a backtrace taken inside the child to the parent's saved frames,
//!   and ends it cleanly when the parent was never saved into.
//! * No unwind leaves an entry function through [`start`]: a Rust panic, a
//!   C++ exception or a forced unwind (`pthread_exit`, `pthread_cancel`)
//!   that nothing inside the entry catches reaches the personality routine
//!   of [`start`], which writes [`UNWIND_ABORT_MESSAGE`] to standard error
//!   and calls `abort()`. Without it the unwinder would follow the
//!   backtrace link into the frames that switched into the child, while the
//!   child still counts as running.
//! * [`resume_windows`] tells where each switch into a context has read the
//!   target's resume address into rcx but not yet jumped to it: the
//!   instructions a signal handler must know of to divert such a switch
//!   (see [`ResumeWindows`]).
//! * [`valgrind_client_request`] makes a valgrind client request (stack
//!   registration, "am I running under valgrind?"); a no-op natively.
//!
//! # Layout
//!
//! Every offset is defined once, in `include/context_sys.h`; the build
//! script turns those `#define`s into the constants of [`layout`], and this
//! crate checks them against `offset_of!` at compile time.
//!
//! ```
//! use context_sys::{layout, ContextRegs};
//! assert_eq!(core::mem::offset_of!(ContextRegs, rsp), layout::OFF_RSP);
//! assert_eq!(core::mem::size_of::<ContextRegs>(), layout::REGS_SIZE);
//! ```
//!
//! # What it deliberately does not do
//!
//! It does not build initial frames (the caller writes a [`BootFrame`]), save
//! caller-saved or vector registers on a switch (the ABI does not ask a
//! callee to keep them), or support any target but x86_64 Linux.

#![no_std]
#![warn(missing_docs)]

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

/// Where the three switches into a context hold the target's resume address
/// in rcx, filled in by [`resume_windows`] (`struct
/// context_sys_resume_windows` in the C header). Each window is `[loaded,
/// end)` in code addresses of the running process.
///
/// # The resume window
///
/// A suspended context continues at its resume word, the word at
/// [`ContextRegs::rsp`]. Every switch into a context ([`swap`] into `to`,
/// [`set`] into `to`, and [`start`]'s return into the parent) ends with
///
/// ```text
///     mov  OFF_RSP(base), %rax   ; rax = &resume word (base: rsi in swap, rdi otherwise)
///     mov  (%rax), %rcx          ; rcx = the resume word
/// loaded:
///     lea  8(%rax), %rsp         ; rsp = &resume word + 8, the target's stack
///     mov  ..(base), %rbx, %rbp, %r13, %r14, %r15, %r12   ; rax, rcx kept
///     jmp  *%rcx
/// end:
/// ```
///
/// A signal handler whose thread was interrupted with its pc in `[loaded,
/// end)` and rax equal to a context's saved rsp has caught a switch into
/// that context after it read the resume word: the switch continues at
/// rcx, so diverting it means rewriting both the word and rcx. With the pc
/// anywhere else (the first two instructions included) the word has not
/// been read yet, and rewriting it is enough. The C header states the full
/// contract; `context::divert_pending_resume` implements it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeWindows {
    /// First instruction of [`swap`] at which rcx holds the resume address.
    pub swap_loaded: u64,
    /// Just past [`swap`]'s `jmp *%rcx`.
    pub swap_end: u64,
    /// First instruction of [`set`] at which rcx holds the resume address.
    pub set_loaded: u64,
    /// Just past [`set`]'s `jmp *%rcx`.
    pub set_end: u64,
    /// First instruction of [`start`]'s return to its parent at which rcx
    /// holds the parent's resume address.
    pub start_loaded: u64,
    /// Just past that return's `jmp *%rcx`.
    pub start_end: u64,
}

/// Compile-time proof that the Rust structs and the header agree.
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
    /// Saves the caller's callee-saved registers, stack pointer, MXCSR and
    /// x87 control word into `*from` and continues in `*to`. Returns when
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

    /// Stores the calling thread's MXCSR and x87 control word into
    /// `regs.mxcsr` and `regs.fpucw`, leaving other fields alone.
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
