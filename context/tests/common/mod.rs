//! Helpers shared by the context crate's integration tests.
#![allow(dead_code)]

use context::valgrind::StackRegistration;
use context::{Context, ContextHandle};
use std::cell::Cell;

/// A heap stack whose top is 16-byte aligned, as `Context::init` requires,
/// registered with valgrind when the tests run under it.
pub struct TestStack {
    words: Vec<u64>,
    len: usize,
    _valgrind: StackRegistration,
}

impl TestStack {
    pub fn new(words: usize) -> TestStack {
        let v = vec![0u64; words + 1];
        let top_if_full = v.as_ptr() as usize + 8 * (words + 1);
        let len = if top_if_full.is_multiple_of(16) { words + 1 } else { words };
        let registration = StackRegistration::for_stack(&v[..len]).expect("a non-empty stack");
        TestStack { words: v, len, _valgrind: registration }
    }

    pub fn slice(&mut self) -> &mut [u64] {
        &mut self.words[..self.len]
    }
}

thread_local! {
    /// (child, parent) for children that switch back to their parent.
    static LINK: Cell<(*mut Context, *const Context)> = const { Cell::new((std::ptr::null_mut(), std::ptr::null())) };
}

/// Records which contexts `yield_to_parent` switches between on this thread.
pub fn link(child: &mut ContextHandle, parent: &ContextHandle) {
    LINK.set((&mut **child as *mut Context, &**parent as *const Context));
}

/// Called from inside a child: switch back to the parent registered with
/// `link`, and return when the parent switches to the child again.
pub fn yield_to_parent() {
    let (child, parent) = LINK.get();
    assert!(!child.is_null(), "link() was not called on this thread");
    // SAFETY: `link` registered two heap-pinned contexts that the test keeps
    // alive for the whole run; the parent is suspended in its swap.
    unsafe { Context::swap(&mut *child, &*parent) };
}
