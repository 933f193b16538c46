//! Creating and dropping 100,000 stacks (and cycling them through a pool)
//! leaves the process's mappings and resident memory where they were.
//!
//! One test in its own binary, so nothing else maps or unmaps meanwhile.

mod common;

use instance::{Stack, StackPool};

#[test]
fn hundred_thousand_stacks_leave_no_mappings_and_no_memory() {
    common::deadline();
    // Warm up whatever the first calls allocate (the page size, the
    // allocator's arenas) before taking the baseline.
    drop(Stack::new(64 * 1024).unwrap());
    let pool = StackPool::new(64 * 1024, 4096, 16).unwrap();
    let mut held: Vec<Stack> = Vec::with_capacity(64);
    held.extend((0..32).map(|_| pool.take().unwrap()));
    for s in held.drain(..) {
        pool.put(s).unwrap();
    }
    pool.shrink_to(0);
    let (maps0, rss0) = (common::maps_lines(), common::rss_bytes());

    for i in 0..100_000usize {
        let mut stack = Stack::with_guard(64 * 1024 + (i % 7) * 4096, 4096 * (1 + i % 3)).unwrap();
        // Touch the top page so that a leaked stack would also leak memory.
        *stack.as_words_mut().last_mut().unwrap() = i as u64;
    }
    assert_eq!(common::maps_lines(), maps0, "mappings leaked");

    for i in 0..100_000usize {
        let mut stack = pool.take().unwrap();
        *stack.as_words_mut().last_mut().unwrap() = i as u64;
        held.push(stack);
        if held.len() == 32 {
            for s in held.drain(..) {
                pool.put(s).unwrap();
            }
        }
    }
    for s in held.drain(..) {
        pool.put(s).unwrap();
    }
    pool.shrink_to(0);
    assert_eq!(common::maps_lines(), maps0, "mappings leaked through the pool");
    let rss = common::rss_bytes();
    // 100,000 leaked touched pages would be 400 MiB; allow 2 MiB of noise.
    assert!(rss <= rss0 + (2 << 20), "RSS grew from {rss0} to {rss}");
}
