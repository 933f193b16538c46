//! CPU state a guest may leave behind that host code must not inherit, and
//! the interrupted registers of a signal's ucontext, one module per
//! architecture behind the same names:
//!
//! | | x86_64 | aarch64 |
//! |---|---|---|
//! | flags put back for the host ([`HostFlags`]) | EFLAGS.AC and DF cleared (TF too in a rewritten ucontext) | PSTATE.DIT, SSBS and TCO set to the host's (those the CPU has), BTYPE cleared in a rewritten ucontext, streaming SVE mode left, ZA off and TPIDR2_EL0 null unless the host's own lazy save is pending |
//! | floating-point control ([`FpControl`]) | MXCSR's control bits and the x87 control word | FPCR |
//! | on the way back from a handler ([`leave_guest_modes`]) | `fninit` (empty x87 register stack) | SME's streaming mode left, if the CPU has SME (ZA and TPIDR2 by the host's restore right after) |
//!
//! A leaf: it knows nothing of runs or signals beyond the kernel's ucontext
//! layout. The arch modules need `unsafe` for the `asm!` that reads and
//! writes those registers.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::*;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("instance supports x86_64 and aarch64 Linux only");
