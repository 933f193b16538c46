//! The choices an [`Instance`] makes about its stack's memory: how large a
//! guard region it gets.

use crate::error::Error;
use crate::instance::Instance;
use crate::stack::Stack;

impl Instance {
    /// An instance on a new stack of `stack_size` usable bytes with a
    /// `guard`-byte `PROT_NONE` region below it (both rounded up to pages),
    /// for guests whose frames may be larger than the default guard, or to
    /// save address space where they are known to be small.
    ///
    /// ```
    /// use instance::{DEFAULT_GUARD_SIZE, Instance};
    /// let inst = Instance::with_guard(64 * 1024, 1024 * 1024)?;
    /// assert_eq!(inst.stack().guard_size(), 1024 * 1024);
    /// assert_eq!(Instance::new(64 * 1024)?.stack().guard_size(), DEFAULT_GUARD_SIZE);
    /// # Ok::<(), instance::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Stack`] for a zero or overflowing size or guard, or a failed
    /// mapping (see [`Stack::with_guard`]).
    pub fn with_guard(stack_size: usize, guard: usize) -> Result<Instance, Error> {
        Ok(Instance::with_stack(Stack::with_guard(stack_size, guard)?))
    }
}
