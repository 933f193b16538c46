//! The calling thread's floating-point control registers, read and written
//! with one instruction each: MXCSR and the x87 control word on x86_64,
//! FPCR (and the status register FPSR) on aarch64.

/// The current MXCSR.
#[cfg(target_arch = "x86_64")]
pub fn mxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: stmxcsr stores 4 bytes into `v`.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
    v
}

/// Loads `v` into MXCSR. It must have no reserved bit set (bits 16 and
/// up), or the load faults.
#[cfg(target_arch = "x86_64")]
pub fn set_mxcsr(v: u32) {
    // SAFETY: loads MXCSR from `v`; the callers pass values with no
    // reserved bit set (a reserved bit raises #GP, a crash, not UB).
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack)) };
}

/// The current x87 control word.
#[cfg(target_arch = "x86_64")]
pub fn fpucw() -> u16 {
    let mut v = 0u16;
    // SAFETY: fnstcw stores 2 bytes into `v`.
    unsafe { core::arch::asm!("fnstcw [{}]", in(reg) &mut v, options(nostack)) };
    v
}

/// Loads `v` into the x87 control word.
#[cfg(target_arch = "x86_64")]
pub fn set_fpucw(v: u16) {
    // SAFETY: loads an x87 control word from `v`; every value is valid.
    unsafe { core::arch::asm!("fldcw [{}]", in(reg) &v, options(nostack)) };
}

/// FPCR bits a test may set and read back on every aarch64 CPU (and
/// qemu): rounding mode (RMode, bits 22–23), flush-to-zero (FZ, 24),
/// default NaN (DN, 25), alternative half-precision (AHP, 26). The trap
/// enables (bits 8–12, 15) read back 0 where traps are not implemented.
#[cfg(target_arch = "aarch64")]
pub const FPCR_TESTABLE: u64 = 0b1111 << 22 | 1 << 26;

/// FPCR.RMode = round towards minus infinity (RM): bits 22–23 = 0b10.
#[cfg(target_arch = "aarch64")]
pub const FPCR_ROUND_DOWN: u64 = 0b10 << 22;

/// FPCR.FZ: flush denormal results to zero.
#[cfg(target_arch = "aarch64")]
pub const FPCR_FZ: u64 = 1 << 24;

/// The current FPCR.
#[cfg(target_arch = "aarch64")]
pub fn fpcr() -> u64 {
    let v: u64;
    // SAFETY: reads the FP control register into a general register.
    unsafe { core::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes `v` to FPCR (bits a CPU does not implement read back 0).
#[cfg(target_arch = "aarch64")]
pub fn set_fpcr(v: u64) {
    // SAFETY: writes the FP control register; every value is accepted at
    // EL0 (reserved bits are ignored), and it changes only how later FP
    // instructions round, flush and trap.
    unsafe { core::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

/// The current FPSR (the cumulative status flags).
#[cfg(target_arch = "aarch64")]
pub fn fpsr() -> u64 {
    let v: u64;
    // SAFETY: reads the FP status register into a general register.
    unsafe { core::arch::asm!("mrs {}, fpsr", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes `v` to FPSR.
#[cfg(target_arch = "aarch64")]
pub fn set_fpsr(v: u64) {
    // SAFETY: writes the FP status register: only sticky flags change.
    unsafe { core::arch::asm!("msr fpsr, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}
