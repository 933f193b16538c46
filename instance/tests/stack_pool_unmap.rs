//! A pool over its idle limit unmaps the stack it is handed. Its own test
//! binary with a single test: checking that an address is unmapped is only
//! meaningful while no other test thread can map something there.

mod common;

use instance::{Stack, StackError, StackPool, page_size};

#[test]
fn pool_keeps_at_most_max_idle_and_rejects_foreign_stacks() {
    common::deadline();
    let page = page_size();
    let pool = StackPool::new(2 * page, page, 1).unwrap();
    let a = pool.take().unwrap();
    let b = pool.take().unwrap();
    let b_start = b.mapping_start();
    pool.put(a).unwrap();
    pool.put(b).unwrap(); // over max_idle: unmapped
    assert_eq!(pool.idle_count(), 1);
    assert_eq!(common::perms_at(b_start + page_size()), None);
    let foreign = Stack::new(page).unwrap();
    assert_eq!(
        pool.put(foreign).unwrap_err(),
        StackError::WrongPool {
            size: page,
            guard: instance::DEFAULT_GUARD_SIZE.next_multiple_of(page),
            pool_size: 2 * page,
            pool_guard: page
        }
    );
    pool.shrink_to(0);
    assert_eq!(pool.idle_count(), 0);
}
