//! Creating and dropping 100,000 stacks (and cycling them through a pool)
//! leaves the process's mappings and resident memory where they were.
//!
//! One test in its own binary, so nothing else maps or unmaps meanwhile.

mod common;

use instance::{Stack, StackPool};

/// How many stacks the measured round makes (and takes from the pool).
const STACKS: usize = 100_000;

/// `n` stacks made and dropped, then `n` takes from `pool` (32 held at a
/// time) put back; every stack's top page is touched, so a leaked stack
/// would also leak a resident page.
fn churn(pool: &StackPool, n: usize) {
    let page = instance::page_size();
    for i in 0..n {
        let mut stack = Stack::with_guard(64 * 1024 + (i % 7) * page, page * (1 + i % 3)).unwrap();
        *stack.as_words_mut().last_mut().unwrap() = i as u64;
    }
    let mut held: Vec<Stack> = Vec::with_capacity(64);
    for i in 0..n {
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
}

/// `n` of the map, protect, touch, unmap steps of [`churn`]'s first loop,
/// made directly with libc: how much the resident set grows when nothing
/// leaks. Natively that is nothing; under qemu-user it is about 500 bytes
/// per mapping, the emulator's own bookkeeping (a plain C loop of
/// mmap/munmap shows the same under qemu-aarch64 7.2).
fn raw_churn(n: usize) {
    let page = instance::page_size();
    for i in 0..n {
        let len = 64 * 1024 + (i % 7) * page + page * (1 + i % 3);
        // SAFETY: a fresh anonymous mapping at an address the kernel picks;
        // nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let guard = page * (1 + i % 3);
        // SAFETY: [p + guard, p + len) lies inside the mapping made above;
        // after mprotect its last word is writable and only this loop uses
        // it; munmap unmaps exactly that mapping.
        unsafe {
            assert_eq!(
                libc::mprotect(p.cast::<u8>().add(guard).cast(), len - guard, libc::PROT_READ | libc::PROT_WRITE),
                0
            );
            p.cast::<u8>().add(len - 8).cast::<u64>().write(i as u64);
            assert_eq!(libc::munmap(p, len), 0);
        }
    }
}

#[test]
fn hundred_thousand_stacks_leave_no_mappings_and_no_memory() {
    common::deadline();
    let pool = StackPool::new(64 * 1024, instance::page_size(), 16).unwrap();
    // A first round as a warm-up: what grows once and then stays (the
    // allocator's arenas, which under valgrind are new mappings; under
    // qemu-user, the translator's own memory, which the resident-set figure
    // includes) is not a leak. A stack that leaks leaks in every round.
    // (A thousand stacks are enough for that, and keep the test's time
    // under valgrind near one round's.)
    churn(&pool, 1_000);
    let maps0 = common::maps_lines();
    // The platform's growth for a tenth of the round's mappings, times ten.
    raw_churn(STACKS / 10);
    let rss0 = common::rss_bytes();
    raw_churn(STACKS / 10);
    let platform = 10 * common::rss_bytes().saturating_sub(rss0);
    // STACKS leaked touched pages would be STACKS pages or more; allow 2
    // MiB of noise plus twice what the same mappings cost the platform
    // when nothing leaks (nothing natively), and make sure that allowance
    // is still well short of a leak.
    let allowed = (2 << 20) + 2 * platform;
    let leak = STACKS * instance::page_size();
    assert!(allowed < leak / 2, "the platform's growth of {platform} bytes per round would hide a leak");
    let rss0 = common::rss_bytes();
    churn(&pool, STACKS);
    assert_eq!(common::maps_lines(), maps0, "mappings leaked in the measured round");
    let rss = common::rss_bytes();
    assert!(
        rss <= rss0 + allowed,
        "RSS grew from {rss0} to {rss} in the measured round (the platform's own growth for as many raw mappings: {platform} bytes)"
    );
}
