//! Telling valgrind about the stacks contexts run on.
//!
//! Memcheck follows the stack pointer to know which bytes of a stack are
//! live. A context switch moves `rsp` to another stack, and unless valgrind
//! knows where stacks are it has to guess: a move larger than
//! `--max-stackframe` (2 MB by default) is taken as a switch, a smaller one
//! as a huge frame being pushed or popped, which marks the memory in between
//! as fresh stack or as dead and produces false reports (and "client
//! switching stacks?" warnings). Registering every stack with
//! [`StackRegistration`] tells valgrind the truth.
//!
//! Natively nothing is registered and nothing is asked of the CPU beyond
//! one relaxed atomic load: [`running_on_valgrind`] asks valgrind once per
//! process and caches the answer.
//!
//! This module needs `unsafe` to call the client-request routine in
//! `context-sys` (the request is a magic instruction sequence that only
//! assembly can emit exactly); each call says why it holds.
//!
//! # Example
//!
//! ```
//! use context::valgrind::{StackRegistration, running_on_valgrind};
//!
//! #[repr(align(16))]
//! struct Stack([u64; 1024]);
//! let stack = Box::new(Stack([0; 1024]));
//! let registration = StackRegistration::for_stack(&stack.0)?;
//! // Registered only when valgrind is watching.
//! assert_eq!(registration.id().is_some(), running_on_valgrind());
//! // ... run contexts on `stack`, then drop the registration before the
//! // stack's memory is freed or reused.
//! drop(registration);
//! # Ok::<(), context::valgrind::InvalidStackRange>(())
//! ```
#![allow(unsafe_code)]

use core::ops::Range;
use core::sync::atomic::{AtomicU8, Ordering};

use context_sys::layout::{
    VALGRIND_MAKE_MEM_UNDEFINED, VALGRIND_REQUEST_WORDS, VALGRIND_RUNNING_ON_VALGRIND, VALGRIND_STACK_DEREGISTER,
    VALGRIND_STACK_REGISTER,
};

/// `running_on_valgrind` has not asked yet.
const UNKNOWN: u8 = 0;
/// Asked: the process runs on a real CPU.
const NATIVE: u8 = 1;
/// Asked: the process runs under valgrind.
const VALGRIND: u8 = 2;

/// The cached answer of [`running_on_valgrind`]. Whether a process runs
/// under valgrind cannot change while it runs, so racing first calls all
/// store the same value and `Relaxed` is enough.
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// One client request: `code` with up to five arguments; `default` is the
/// answer on a real CPU.
fn client_request(code: usize, args: [u64; 5], default: u64) -> u64 {
    let mut block = [0u64; VALGRIND_REQUEST_WORDS];
    block[0] = code as u64;
    block[1..].copy_from_slice(&args);
    // SAFETY: `block` is a live array of exactly VALGRIND_REQUEST_WORDS
    // words. The requests made through this function are the ones this
    // module documents, with arguments its callers validated: asking
    // whether valgrind runs, registering/deregistering a stack range that a
    // `StackRegistration` owns the id of, and marking a stack slice that the
    // caller borrows mutably as addressable.
    unsafe { context_sys::valgrind_client_request(&block, default) }
}

/// Whether this process runs under valgrind.
///
/// The first call makes valgrind's `RUNNING_ON_VALGRIND` client request
/// (a few no-op instructions on a real CPU); later calls read the cached
/// answer.
#[inline]
pub fn running_on_valgrind() -> bool {
    match STATE.load(Ordering::Relaxed) {
        NATIVE => false,
        VALGRIND => true,
        _ => ask_valgrind(),
    }
}

#[cold]
fn ask_valgrind() -> bool {
    let depth = client_request(VALGRIND_RUNNING_ON_VALGRIND, [0; 5], 0);
    let under = depth != 0;
    STATE.store(if under { VALGRIND } else { NATIVE }, Ordering::Relaxed);
    under
}

/// Tells memcheck that all of `stack` is addressable (its contents
/// undefined), if running under valgrind; natively it does nothing.
///
/// Memcheck marks the part of a stack below the lowest stack pointer it has
/// seen leave as inaccessible. [`Context::init`](crate::Context::init)
/// writes a fresh frame into a stack that may have been run on before, so it
/// calls this first.
pub fn make_stack_writable(stack: &mut [u64]) {
    if running_on_valgrind() {
        let range = stack.as_ptr_range();
        client_request(
            VALGRIND_MAKE_MEM_UNDEFINED,
            [range.start as u64, (range.end as usize - range.start as usize) as u64, 0, 0, 0],
            0,
        );
    }
}

/// A stack range that is empty or reversed, so it cannot be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stack range {start:#x}..{end:#x} is empty or reversed")]
#[non_exhaustive]
pub struct InvalidStackRange {
    /// The range's first byte.
    pub start: usize,
    /// One past the range's last byte.
    pub end: usize,
}

/// A stack registered with valgrind for as long as this value lives
/// (`VALGRIND_STACK_REGISTER`, and `VALGRIND_STACK_DEREGISTER` on drop).
///
/// Natively it registers nothing and its drop does nothing.
///
/// Create it before the first switch onto the stack and drop it before the
/// stack's memory is freed or reused for something else. It holds only the
/// range's addresses, not a borrow, so the stack stays free to be handed to
/// [`Context::init`](crate::Context::init) as `&mut`.
#[derive(Debug)]
#[must_use = "the stack is deregistered when the registration is dropped"]
pub struct StackRegistration {
    /// Valgrind's stack id, when registered.
    id: Option<u64>,
    range: Range<usize>,
}

impl StackRegistration {
    /// Registers the stack occupying the addresses `range` (`start` is its
    /// lowest byte, `end` one past its highest; the stack grows down from
    /// `end`), if running under valgrind.
    ///
    /// # Errors
    ///
    /// [`InvalidStackRange`] if `range` is empty or reversed.
    pub fn new(range: Range<usize>) -> Result<StackRegistration, InvalidStackRange> {
        if range.start >= range.end {
            return Err(InvalidStackRange { start: range.start, end: range.end });
        }
        let id = running_on_valgrind().then(|| {
            // Valgrind wants the lowest and the highest addressable byte.
            client_request(VALGRIND_STACK_REGISTER, [range.start as u64, (range.end - 1) as u64, 0, 0, 0], 0)
        });
        Ok(StackRegistration { id, range })
    }

    /// Registers the memory of `stack` (as given to
    /// [`Context::init`](crate::Context::init)), if running under valgrind.
    ///
    /// # Errors
    ///
    /// [`InvalidStackRange`] if `stack` is empty.
    pub fn for_stack(stack: &[u64]) -> Result<StackRegistration, InvalidStackRange> {
        let range = stack.as_ptr_range();
        StackRegistration::new(range.start as usize..range.end as usize)
    }

    /// Valgrind's id for the stack, or `None` when not running under
    /// valgrind (nothing was registered).
    pub fn id(&self) -> Option<u64> {
        self.id
    }

    /// The registered address range.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
}

impl Drop for StackRegistration {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            client_request(VALGRIND_STACK_DEREGISTER, [id, 0, 0, 0, 0], 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, ContextHandle, Val};
    use core::ffi::c_void;

    extern "C" fn inner_entry(x: u64) -> u64 {
        x * 3
    }

    /// Switches from its own stack straight into `inner`, whose stack lies
    /// just below, and adds what `inner` returned.
    extern "C" fn outer_entry(me: *mut Context, inner: *const Context, x: u64) -> u64 {
        // SAFETY: both contexts are heap-pinned by the test, `inner` is a
        // fresh child whose parent is `me`, so it returns here.
        unsafe { Context::swap(&mut *me, &*inner) };
        // SAFETY: as above; `inner` has finished and is only read.
        x + unsafe { (*inner).get_retval_gp(0) }
    }

    /// Valgrind puts its preload library in `LD_PRELOAD` of the programs it
    /// runs: an independent witness of whether we run under it.
    fn preloaded_by_valgrind() -> bool {
        std::env::var("LD_PRELOAD").is_ok_and(|v| v.contains("vgpreload"))
    }

    #[test]
    fn running_on_valgrind_matches_the_environment() {
        assert_eq!(running_on_valgrind(), preloaded_by_valgrind());
        // The cached answer agrees with the first one.
        assert_eq!(running_on_valgrind(), preloaded_by_valgrind());
    }

    #[test]
    fn client_request_returns_the_default_natively() {
        if running_on_valgrind() {
            return;
        }
        // An unknown request code: on a real CPU the sequence is a no-op.
        assert_eq!(client_request(0x7e57_0000, [1, 2, 3, 4, 5], 0xdead_beef), 0xdead_beef);
    }

    #[test]
    fn empty_or_reversed_ranges_are_rejected() {
        assert_eq!(
            StackRegistration::new(0x2000..0x2000).unwrap_err(),
            InvalidStackRange { start: 0x2000, end: 0x2000 }
        );
        assert_eq!(
            StackRegistration::new(core::ops::Range { start: 0x3000, end: 0x2000 }).unwrap_err(),
            InvalidStackRange { start: 0x3000, end: 0x2000 }
        );
        assert!(matches!(StackRegistration::for_stack(&[]), Err(InvalidStackRange { start, end }) if start == end));
        assert_eq!(
            InvalidStackRange { start: 0x3000, end: 0x2000 }.to_string(),
            "stack range 0x3000..0x2000 is empty or reversed"
        );
    }

    #[test]
    fn registration_is_made_only_under_valgrind() {
        let stack = vec![0u64; 512];
        let registration = StackRegistration::for_stack(&stack).unwrap();
        assert_eq!(registration.id().is_some(), preloaded_by_valgrind());
        let range = stack.as_ptr_range();
        assert_eq!(registration.range(), range.start as usize..range.end as usize);
        // Two live registrations get distinct ids from valgrind.
        let other = vec![0u64; 512];
        let second = StackRegistration::for_stack(&other).unwrap();
        if let (Some(a), Some(b)) = (registration.id(), second.id()) {
            assert_ne!(a, b);
        }
    }

    /// Two stacks side by side in one allocation, 32 KiB apart: without
    /// registration, valgrind takes the switch from one to the other for a
    /// 32 KiB stack frame, marks the inner child's start-up frame as
    /// uninitialised and reports the loads and the jump to its entry
    /// ("Use of uninitialised value of size 8"). Under
    /// `cargo xtask valgrind` this test fails if registration does not work.
    #[test]
    fn switching_between_adjacent_registered_stacks_is_clean() {
        let mut memory = vec![0u64; 8192];
        let (low, high) = memory.split_at_mut(4096);
        let _low = StackRegistration::for_stack(low).unwrap();
        let _high = StackRegistration::for_stack(high).unwrap();
        let mut host = ContextHandle::new();
        let mut outer = ContextHandle::new();
        let mut inner = ContextHandle::new();
        let outer_ptr: *mut Context = &mut *outer;
        let inner_ptr: *const Context = &*inner;
        let args = [Val::CPtr(outer_ptr as *const c_void), Val::CPtr(inner_ptr as *const c_void), Val::U64(1)];
        Context::init(high, &mut host, &mut outer, outer_entry as extern "C" fn(_, _, _) -> _ as usize, &args).unwrap();
        Context::init(low, &mut outer, &mut inner, inner_entry as extern "C" fn(_) -> _ as usize, &[Val::U64(14)])
            .unwrap();
        // SAFETY: every context is heap-pinned and both stacks outlive the
        // run, which ends when `outer` returns into `host`.
        unsafe { Context::swap(&mut host, &outer) };
        assert_eq!(outer.get_retval_gp(0), 1 + 14 * 3);
    }
}
