//! Memory cost of suspended contexts: makes 10,000 contexts, each on its
//! own 64 KiB guard-page stack from `instance::Stack`, switches into each
//! once so that it is suspended in the middle of its entry function, and
//! reports the resident memory (RSS) they added, per context.
//!
//! ```text
//! cargo run --release -p context-tests-c --example suspended_memory [count]
//! ```
//!
//! Prints one `key=value` line that `cargo xtask bench` reads. RSS comes
//! from `/proc/self/statm`; page tables (`VmPTE` in `/proc/self/status`) are
//! kernel memory outside RSS and are reported beside it.

#![allow(unsafe_code)]

use context::{Context, ContextHandle, Val};
use instance::Stack;

const STACK_BYTES: usize = 64 * 1024;

/// Suspends itself straight away; returns when resumed.
extern "C" fn park(me: *mut Context, parent: *const Context) {
    // SAFETY: both contexts are heap-pinned and outlive the child; the
    // parent is suspended in the `swap` that started us.
    unsafe { Context::swap(&mut *me, &*parent) };
}

fn status_kib(key: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("statm has resident pages");
    pages * instance::page_size()
}

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut parent = ContextHandle::new();
    let mut suspended: Vec<(Stack, ContextHandle)> = Vec::with_capacity(count);
    let (rss_before, pte_before) = (rss_bytes(), status_kib("VmPTE:").unwrap_or(0));

    for _ in 0..count {
        let mut stack = Stack::new(STACK_BYTES).expect("map a 64 KiB stack");
        let mut child = ContextHandle::new();
        let me: *mut Context = &mut *child;
        let back: *const Context = &*parent;
        let args = [Val::CPtr(me.cast_const().cast()), Val::CPtr(back.cast())];
        Context::init(stack.as_words_mut(), &mut parent, &mut child, park as *const () as usize, &args)
            .expect("a 64 KiB stack holds the start-up frame");
        // SAFETY: the child was just prepared on its own live stack and
        // swaps straight back to `parent`.
        unsafe { Context::swap(&mut parent, &child) };
        suspended.push((stack, child));
    }

    let (rss_after, pte_after) = (rss_bytes(), status_kib("VmPTE:").unwrap_or(0));
    let per = rss_after.saturating_sub(rss_before) / count.max(1);
    let pte_per = (pte_after.saturating_sub(pte_before) * 1024) / count.max(1);
    println!(
        "suspended_memory: contexts={count} stack_bytes={STACK_BYTES} rss_bytes_per_context={per} \
         page_table_bytes_per_context={pte_per}"
    );

    // Let every child finish, so nothing is abandoned mid-function.
    for (_stack, child) in &suspended {
        // SAFETY: each child is suspended in `park` on its own live stack
        // and returns to `parent` when resumed.
        unsafe { Context::swap(&mut parent, child) };
    }
}
