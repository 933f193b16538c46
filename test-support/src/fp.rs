//! The calling thread's MXCSR and x87 control word, read and written with
//! one instruction each.

/// The current MXCSR.
pub fn mxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: stmxcsr stores 4 bytes into `v`.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
    v
}

/// Loads `v` into MXCSR. It must have no reserved bit set (bits 16 and
/// up), or the load faults.
pub fn set_mxcsr(v: u32) {
    // SAFETY: loads MXCSR from `v`; the callers pass values with no
    // reserved bit set (a reserved bit raises #GP, a crash, not UB).
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack)) };
}

/// The current x87 control word.
pub fn fpucw() -> u16 {
    let mut v = 0u16;
    // SAFETY: fnstcw stores 2 bytes into `v`.
    unsafe { core::arch::asm!("fnstcw [{}]", in(reg) &mut v, options(nostack)) };
    v
}

/// Loads `v` into the x87 control word.
pub fn set_fpucw(v: u16) {
    // SAFETY: loads an x87 control word from `v`; every value is valid.
    unsafe { core::arch::asm!("fldcw [{}]", in(reg) &v, options(nostack)) };
}
