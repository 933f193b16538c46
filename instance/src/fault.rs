//! Fault reports: plain data copied out of the signal frame by the handler.

use core::fmt;

use nix::sys::signal::Signal;

/// What kind of fault stopped a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// The guest touched its stack's guard region (or its stack pointer
    /// was inside it): it ran out of stack.
    StackOverflow,
    /// SIGSEGV anywhere else: an unmapped address, or one without the
    /// needed permission.
    MemoryFault,
    /// SIGILL: an undefined or privileged instruction (`ud2`, `udf`, ...).
    IllegalInstruction,
    /// SIGFPE: integer division by zero or overflow, or an unmasked
    /// floating-point exception (x86_64; aarch64 raises none of these, see
    /// the crate docs' "What differs between x86_64 and aarch64").
    Arithmetic,
    /// SIGBUS: e.g. an access past the end of a file mapping.
    BusError,
    /// SIGTRAP: a breakpoint (`int3`, `brk`) or a trap flag.
    Breakpoint,
}

impl FaultKind {
    /// A short lower-case name (`"stack overflow"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::StackOverflow => "stack overflow",
            FaultKind::MemoryFault => "memory fault",
            FaultKind::IllegalInstruction => "illegal instruction",
            FaultKind::Arithmetic => "arithmetic",
            FaultKind::BusError => "bus error",
            FaultKind::Breakpoint => "breakpoint",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where and how a guest faulted, copied out of the kernel's `siginfo_t`
/// and the interrupted register state while still in the handler.
///
/// Plain data: it holds no pointer into the (long gone) signal frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FaultReport {
    /// The kind of fault.
    pub kind: FaultKind,
    /// The signal the CPU raised.
    pub signal: Signal,
    /// `si_code` of the signal (e.g. `SEGV_MAPERR` = 1, `SEGV_ACCERR` = 2,
    /// `ILL_ILLOPN` = 2, `FPE_INTDIV` = 1, `BUS_ADRERR` = 2,
    /// `SI_KERNEL` = 0x80 for `int3`). Always positive: only faults raised by
    /// the CPU are reported.
    pub code: i32,
    /// `si_addr`: the faulting data address for SIGSEGV/SIGBUS, the faulting
    /// instruction for SIGILL/SIGFPE; 0 where the kernel gives none.
    pub addr: usize,
    /// The instruction pointer when the signal was raised (for `int3`, the
    /// instruction after it; for aarch64's `brk`, the `brk` itself).
    pub pc: usize,
    /// The stack pointer when the signal was raised.
    pub sp: usize,
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} code {}) at address {:#x}, pc {:#x}, sp {:#x}",
            self.kind,
            self.signal.as_str(),
            self.code,
            self.addr,
            self.pc,
            self.sp
        )
    }
}
