//! Stackful execution contexts for x86_64 Linux (System V ABI) and aarch64
//! Linux (AAPCS64): start a function on a stack of your own with its
//! arguments exactly where the ABI puts them, switch back and forth, and
//! collect its return values.
//!
//! This is the safe layer over the assembly in `context-sys`. It is the
//! context core of a sandboxing runtime, and keeps the API of the context
//! module of Lucet (the WebAssembly sandbox runtime whose design these
//! crates follow): [`Context`], [`ContextHandle`], [`Val`],
//! [`RegVal`], [`UntypedRetVal`], [`val_to_reg`], [`val_to_stack`] and
//! [`Error`] all live at the crate root.
//!
//! # Example
//!
//! A child that takes nine arguments (two of them spill onto its stack),
//! yields back to its parent once, and returns a `double`:
//!
//! ```
//! use context::{Context, ContextHandle, Val};
//! use std::cell::Cell;
//!
//! thread_local! {
//!     static CONTEXTS: Cell<(*mut Context, *const Context)> =
//!         const { Cell::new((std::ptr::null_mut(), std::ptr::null())) };
//! }
//!
//! extern "C" fn child(a: i8, b: u16, c: i32, d: u64, e: f32, f: bool, g: i64, h: f64, i: u8) -> f64 {
//!     // Switch back to the parent in the middle of the call.
//!     let (me, parent) = CONTEXTS.get();
//!     // SAFETY: both contexts are heap-pinned and alive for the whole run.
//!     unsafe { Context::swap(&mut *me, &*parent) };
//!     a as f64 + b as f64 + c as f64 + d as f64 + e as f64 + f as u8 as f64 + g as f64 + h + i as f64
//! }
//!
//! #[repr(align(16))]
//! struct Stack([u64; 4096]);
//! let mut stack = Box::new(Stack([0; 4096]));
//! let mut parent = ContextHandle::new();
//! let args = [
//!     Val::I8(-1), Val::U16(2), Val::I32(-3), Val::U64(4), Val::F32(0.5),
//!     Val::Bool(true), Val::I64(-6), Val::F64(0.25), Val::U8(9),
//! ];
//! let mut kid = ContextHandle::create_and_init(&mut stack.0, &mut parent, child as extern "C" fn(_, _, _, _, _, _, _, _, _) -> _, &args)?;
//! CONTEXTS.set((&mut *kid as *mut Context, &*parent as *const Context));
//!
//! // SAFETY: the stack and both contexts outlive the child's run.
//! unsafe { Context::swap(&mut parent, &kid) }; // runs until the child swaps back
//! unsafe { Context::swap(&mut parent, &kid) }; // runs until the child returns
//! assert_eq!(kid.get_untyped_retval().as_f64(), -1.0 + 2.0 - 3.0 + 4.0 + 0.5 + 1.0 - 6.0 + 0.25 + 9.0);
//! # Ok::<(), context::Error>(())
//! ```
//!
//! # What it deliberately does not do
//!
//! It does not allocate or guard stacks (the caller provides a `&mut [u64]`
//! whose top is 16-byte aligned), install signal handlers, or catch panics.
//! Those belong to the `instance` crate, which builds guarded stacks, fault
//! recovery, yield and termination on top of this one.
//!
//! # An entry function must not unwind
//!
//! Nothing above an entry function can take an unwind: the frames that
//! switched into the child are on another stack, suspended in a
//! [`Context::swap`]. An unwind that leaves the entry (a panic in an
//! `extern "C-unwind"` entry, a C++ exception, `pthread_exit` or
//! `pthread_cancel` in a child) reaches the start-up routine of
//! `context-sys`, whose personality routine writes [`UNWIND_ABORT_MESSAGE`]
//! to standard error and aborts the process (SIGABRT); for a panic, the panic
//! hook has printed the panic's message first. A panic in a plain
//! `extern "C"` entry aborts earlier, in Rust's own "panic in a function
//! that cannot unwind" shim. Catch panics inside the entry
//! (`std::panic::catch_unwind`) to survive them.
//!
//! # Debugging
//!
//! A backtrace taken inside a child (`std::backtrace`, a panic message
//! with `RUST_BACKTRACE=1`, gdb's `bt`) continues into the host frames that
//! last switched into it. The [`valgrind`] module registers stacks with
//! valgrind, at no cost when not running under it.
//!
//! # What differs between x86_64 and aarch64
//!
//! The API is the same on both; what the registers are is not.
//!
//! | | x86_64 (System V) | aarch64 (AAPCS64) |
//! |---|---|---|
//! | integer arguments ([`GP_ARG_REGS`]) | rdi, rsi, rdx, rcx, r8, r9 (6) | x0–x7 (8) |
//! | floating arguments ([`FP_ARG_REGS`]) | xmm0–xmm7 | v0–v7 (d0–d7) |
//! | stack arguments | 8-byte slots in order | 8-byte slots in order |
//! | return registers ([`Context::get_retval_gp`] 0, 1; [`Context::get_retval_fp`]) | rax, rdx; xmm0 | x0, x1; q0 |
//! | [`FpRegValue`] | `__m128` | [`V128`] |
//! | saved by a switch | rbx, rbp, r12–r15, rsp, MXCSR control bits, x87 CW | x19–x28, fp, lr, sp, d8–d15, FPCR |
//! | resume slot at the saved stack pointer | one 8-byte word | 16 bytes, the resume address first |
//! | [`Context::swap`] | inlined `asm!` (with `panic = "unwind"`) | the assembly routine |
//!
//! Portable code reads the floating return register as a [`V128`]
//! ([`Context::get_retval_v128`], [`UntypedRetVal::v128`]); the
//! `__m128`-typed accessors of earlier releases keep their types on x86_64.
//! The floating-point status flags (MXCSR's low six bits, FPSR) are left
//! as they are by a switch on both. On aarch64 every global routine of
//! `context-sys` begins with `bti c` and its object is marked
//! BTI-compatible.
//!
//! # Safety model
//!
//! Preparing a context ([`Context::init`], [`Context::init_with_sigmask`]) is
//! safe: every input is checked and nothing is written outside the given
//! stack. Switching ([`Context::swap`], [`Context::set`],
//! [`Context::set_from_signal`]) is `unsafe`, because only the caller knows
//! that the target's stack is still alive and not running elsewhere.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod arch;
mod bits;
mod context;
mod divert;
mod entry;
mod error;
mod plan;
mod retval;
mod val;
pub mod valgrind;

pub use crate::bits::{FpRegValue, V128};
pub use crate::context::{Context, ContextHandle, get_current_stack_pointer};
pub use crate::divert::{Diverted, divert_pending_resume};

pub use crate::entry::{EntryPoint, ExternFn};
pub use crate::error::Error;
pub use crate::plan::{ArgPlan, FP_ARG_REGS, GP_ARG_REGS};
pub use crate::retval::UntypedRetVal;
pub use crate::val::{RegVal, Val, val_to_reg, val_to_stack};
/// The `nix` this crate's API is written in: [`SigSet`](nix::sys::signal::SigSet)
/// in [`Context::init_with_sigmask`] and [`Context::sigset`], and
/// [`Errno`](nix::errno::Errno) in [`Error::SignalMask`]. Name those types
/// as `context::nix::…` and they are the ones this crate takes, whatever
/// `nix` your own crate depends on. nix's major version (0.31 today) is part
/// of this crate's API: moving to another is a breaking release.
pub use nix;

/// What the process writes to standard error just before it aborts because
/// an unwind tried to leave an entry function (see [`Context::init`]):
/// the panic hook's message comes first, then this line.
///
/// ```
/// assert!(context::UNWIND_ABORT_MESSAGE.contains("context_sys_start"));
/// ```
pub const UNWIND_ABORT_MESSAGE: &str = context_sys::UNWIND_ABORT_MESSAGE;
