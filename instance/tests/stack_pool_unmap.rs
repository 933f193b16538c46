//! A pool over its idle limit unmaps the stack it is handed. Its own test
//! binary with a single test: checking that an address is unmapped is only
//! meaningful while no other test thread can map something there.

mod common;

use instance::{Stack, StackError, StackPool, page_size};

#[test]
fn pool_keeps_at_most_max_idle_and_rejects_foreign_stacks() {
    common::deadline();
    let pool = StackPool::new(8192, 4096, 1).unwrap();
    let a = pool.take().unwrap();
    let b = pool.take().unwrap();
    let b_start = b.mapping_start();
    pool.put(a).unwrap();
    pool.put(b).unwrap(); // over max_idle: unmapped
    assert_eq!(pool.idle_count(), 1);
    assert_eq!(common::perms_at(b_start + page_size()), None);
    let foreign = Stack::new(4096).unwrap();
    assert_eq!(
        pool.put(foreign).unwrap_err(),
        StackError::WrongPool { size: 4096, guard: instance::DEFAULT_GUARD_SIZE, pool_size: 8192, pool_guard: 4096 }
    );
    pool.shrink_to(0);
    assert_eq!(pool.idle_count(), 0);
}
