//! Stacks: layout, protection, lazy commit, pool reuse and trimming.

mod common;

use instance::{Stack, StackError, StackPool, page_size};

#[test]
fn guard_is_prot_none_and_usable_part_is_read_write() {
    common::deadline();
    let page = page_size();
    let mut stack = Stack::with_guard(3 * page + 1, 2 * page).unwrap();
    assert_eq!(stack.size(), 4 * page);
    assert_eq!(stack.guard_size(), 2 * page);
    assert_eq!(stack.base(), stack.mapping_start() + 2 * page);
    assert_eq!(stack.top(), stack.base() + 4 * page);
    assert_eq!(common::perms_at(stack.mapping_start()).as_deref(), Some("---p"));
    assert_eq!(common::perms_at(stack.base() - 1).as_deref(), Some("---p"));
    assert_eq!(common::perms_at(stack.base()).as_deref(), Some("rw-p"));
    assert_eq!(common::perms_at(stack.top() - 1).as_deref(), Some("rw-p"));
    assert!(stack.in_guard(stack.mapping_start()) && stack.in_guard(stack.base() - 1));
    assert!(!stack.in_guard(stack.base()) && stack.contains(stack.base()) && !stack.contains(stack.top()));
    let words = stack.as_words_mut();
    assert_eq!(words.len(), 4 * page / 8);
    words[0] = 1;
    *words.last_mut().unwrap() = 2;
    assert_eq!((words[0], words[words.len() - 1]), (1, 2));
}

#[test]
fn memory_is_committed_lazily_and_given_back() {
    common::deadline();
    let mut stack = Stack::new(1 << 20).unwrap();
    let (start, len) = (stack.base(), stack.size());
    assert_eq!(common::resident_pages(start, len), 0);
    let step = page_size() / 8;
    for w in stack.as_words_mut().iter_mut().step_by(step).take(16) {
        *w = 7;
    }
    assert_eq!(common::resident_pages(start, len), 16);
    stack.decommit().unwrap();
    assert_eq!(common::resident_pages(start, len), 0);
    // Decommitted pages read as zero.
    assert!(stack.as_words_mut().iter().step_by(step).all(|&w| w == 0));
}

#[test]
fn huge_stacks_cost_address_space_only() {
    common::deadline();
    // 4 GiB (valgrind's address space is too small for much more).
    let stack = Stack::new(1 << 32).unwrap();
    assert_eq!(stack.size(), 1 << 32);
    assert_eq!(common::resident_pages(stack.base(), 1 << 30), 0);
    assert_eq!(common::resident_pages(stack.top() - (1 << 30), 1 << 30), 0);
}

#[test]
fn bad_sizes_are_typed_errors() {
    common::deadline();
    assert_eq!(Stack::new(0).unwrap_err(), StackError::ZeroSize);
    assert_eq!(Stack::with_guard(1, 0).unwrap_err(), StackError::ZeroGuard);
    assert_eq!(
        Stack::with_guard(usize::MAX - 10, 1).unwrap_err(),
        StackError::TooLarge { size: usize::MAX - 10, guard: 1 }
    );
    assert_eq!(Stack::with_guard(1, usize::MAX).unwrap_err(), StackError::TooLarge { size: 1, guard: usize::MAX });
    let half = usize::MAX / 2 + 1;
    assert_eq!(Stack::with_guard(half, half).unwrap_err(), StackError::TooLarge { size: half, guard: half });
    // Fits usize but not the address space: mmap says no, with its errno.
    match Stack::new(1 << 62).unwrap_err() {
        StackError::Map { len, errno } => {
            assert_eq!(len, (1 << 62) + instance::DEFAULT_GUARD_SIZE.next_multiple_of(page_size()));
            // ENOMEM from Linux; valgrind's own mmap says EINVAL.
            assert!(matches!(errno, nix::errno::Errno::ENOMEM | nix::errno::Errno::EINVAL), "{errno}");
        }
        other => panic!("expected a mapping error, got {other:?}"),
    }
    let msg = StackError::TooLarge { size: 1, guard: 2 }.to_string();
    assert_eq!(msg, "a stack of 1 bytes with a 2-byte guard does not fit the address space");
}

#[test]
fn pool_gives_the_same_mapping_back() {
    common::deadline();
    let pool = StackPool::new(64 * 1024, 1, 2).unwrap();
    assert_eq!((pool.stack_size(), pool.guard_size()), (64 * 1024, page_size()));
    let a = pool.take().unwrap();
    let b = pool.take().unwrap();
    let (ta, tb) = (a.top(), b.top());
    assert_ne!(ta, tb);
    pool.put(a).unwrap();
    pool.put(b).unwrap();
    assert_eq!(pool.idle_count(), 2);
    // Most recently returned first.
    assert_eq!(pool.take().unwrap().top(), tb);
    assert_eq!(pool.take().unwrap().top(), ta);
    assert_eq!(pool.idle_count(), 0);
}

#[test]
fn pool_trim_gives_memory_back_and_keeps_mappings() {
    common::deadline();
    let pool = StackPool::new(256 * 1024, instance::page_size(), 4).unwrap();
    let mut stack = pool.take().unwrap();
    let base = stack.base();
    stack.as_words_mut().fill(1);
    assert_eq!(common::resident_pages(base, 256 * 1024), 256 * 1024 / page_size());
    pool.put(stack).unwrap();
    pool.trim().unwrap();
    assert_eq!(common::resident_pages(base, 256 * 1024), 0);
    let mut again = pool.take().unwrap();
    assert_eq!(again.base(), base);
    assert!(again.as_words_mut().iter().all(|&w| w == 0));
}

#[test]
fn stacks_and_pools_are_send_and_sync() {
    common::deadline();
    fn check<T: Send + Sync>() {}
    check::<Stack>();
    check::<StackPool>();
    fn send<T: Send>() {}
    send::<instance::Instance>();
}
