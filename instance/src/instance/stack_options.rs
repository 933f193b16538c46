//! The choices an [`Instance`] makes about its stack's memory: how large a
//! guard region it gets, and whether what a guest leaves on it is zeroed
//! before the next guest can read it.

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

impl Instance {
    /// Whether [`Instance::reset`] and [`Instance::into_stack`] scrub the
    /// stack ([`Stack::quick_scrub`]): zero what the guest left on it, so that the
    /// next guest (perhaps another tenant's) cannot read it. On by default.
    ///
    /// A run after a run that returned needs no reset, and so is not
    /// separated from it by a scrub: a sandbox that runs one tenant after
    /// another on one instance resets between them (or takes each tenant's
    /// stack from a [`StackPool`](crate::StackPool), which scrubs on
    /// [`put`](crate::StackPool::put)).
    ///
    /// The scrub costs one `madvise` of the part below the pages that guests
    /// use, and zeroing those by hand; a `mincore` more every 64th time,
    /// which learns how deep they go (see [`Stack::quick_scrub`]); nothing
    /// when no run has used the stack since the last scrub. Turn it off where every guest
    /// on the instance is the same tenant, or when the stack goes back to a
    /// pool that scrubs it anyway (which then finds nothing left to do, so
    /// leaving it on costs no second scrub).
    ///
    /// ```
    /// let mut inst = instance::Instance::new(64 * 1024)?;
    /// assert!(inst.scrubs_stack());
    /// inst.set_scrub_stack(false);
    /// assert!(!inst.scrubs_stack());
    /// # Ok::<(), instance::Error>(())
    /// ```
    pub fn set_scrub_stack(&mut self, scrub: bool) {
        self.scrub_stack = scrub;
    }

    /// Whether [`Instance::reset`] and [`Instance::into_stack`] scrub the
    /// stack.
    pub fn scrubs_stack(&self) -> bool {
        self.scrub_stack
    }

    /// The scrub of `reset` and `into_stack`, when asked for. It cannot fail:
    /// should it fail, the stack's memory is given back instead.
    pub(super) fn scrub_stack_if_asked(&mut self) {
        if self.scrub_stack {
            self.stack.scrub_or_decommit();
        }
    }
}
