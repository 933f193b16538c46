//! Errors returned for bad input to the context API.

/// What was wrong with a call into this crate.
///
/// Every bad input is reported with one of these; nothing in the crate panics
/// on user input or writes outside the stack slice it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The top of the stack (the address one past its last word) is not
    /// 16-byte aligned, so the entry function could not be called with the
    /// alignment the ABI promises.
    #[error("the top of the stack is not 16-byte aligned")]
    UnalignedStack,
    /// The stack slice has no words at all.
    #[error("the stack is empty")]
    EmptyStack,
    /// The stack cannot hold the start-up frame and the spilled arguments.
    #[error("stack too small: the start-up frame and spilled arguments need {needed} bytes, the stack has {available}")]
    StackTooSmall {
        /// Bytes the frame, its alignment padding and the spilled arguments take.
        needed: usize,
        /// Bytes in the stack slice.
        available: usize,
    },
    /// The entry point's address is zero.
    #[error("the entry point is a null function pointer")]
    NullEntryPoint,
    /// A return-register index other than 0 (rax; aarch64: x0) or 1 (rdx;
    /// aarch64: x1).
    #[cfg_attr(target_arch = "x86_64", error("return register index {index} is out of range: 0 is rax, 1 is rdx"))]
    #[cfg_attr(target_arch = "aarch64", error("return register index {index} is out of range: 0 is x0, 1 is x1"))]
    RetvalIndex {
        /// The index that was asked for.
        index: usize,
    },
    /// Reading or setting the thread's signal mask failed.
    #[error("could not read or set the thread's signal mask")]
    SignalMask(#[source] nix::errno::Errno),
}
