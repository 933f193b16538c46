//! Tenants do not read each other's data: a stack that goes back to a pool,
//! or an instance that is reset or gives its stack back, is scrubbed; the
//! opt-outs keep the data (so these tests can tell); a scrub commits no
//! page the guest did not touch. `fault_kinds` checks the reset after a
//! fault.
//!
//! Not a `stack_*` test: it reads guest stacks directly after runs, which
//! memcheck (run over the `stack_*`/`run_*` tests) reports as reads of dead
//! stack.

mod common;

use std::error::Error as _;
use std::hint::black_box;

use context::Val;
use instance::{Instance, Stack, StackError, StackPool, page_size};

const STACK: usize = 64 * 1024;

/// The secret a tenant leaves on its stack.
const SECRET: u64 = 0x5ec2_e75e_c2e7_5ec2;

/// Words of the secret the guest writes.
const SECRET_WORDS: usize = 1024;

/// Fills a 1,024-word local with `secret` and returns one of its words.
extern "C" fn write_secret(secret: u64) -> u64 {
    let mut words = [0u64; SECRET_WORDS];
    words.fill(secret);
    black_box(&mut words);
    words[SECRET_WORDS - 1]
}

fn run_secret(inst: &mut Instance) {
    // SAFETY: write_secret is an extern "C" fn(u64) -> u64 that returns.
    let r = unsafe { inst.run(write_secret as extern "C" fn(u64) -> u64 as usize, &[Val::U64(SECRET)]) };
    assert_eq!(r.unwrap().as_u64(), SECRET);
}

/// Words of the secret in `stack`'s usable part.
fn secrets_in(stack: &Stack) -> usize {
    // SAFETY: the usable part is mapped readable, page-aligned and
    // `size()` bytes long; no guest runs on it (its instance, if any, is
    // borrowed here), so nothing writes to it while the slice lives.
    let words = unsafe { std::slice::from_raw_parts(stack.base() as *const u64, stack.size() / 8) };
    words.iter().filter(|&&w| w == SECRET).count()
}

/// Memory committed to the mapping that holds `addr`: the `Rss` of its
/// `/proc/self/smaps` entry, which counts pages of its own (a page backed by
/// the kernel's shared zero page is resident for `mincore` but not counted
/// here).
fn committed_bytes(addr: usize) -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-')
            && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        {
            inside = lo <= addr && addr < hi;
        } else if inside && let Some(kib) = line.strip_prefix("Rss:") {
            return kib.trim().trim_end_matches("kB").trim().parse::<usize>().unwrap() * 1024;
        }
    }
    panic!("no smaps entry holds {addr:#x}");
}

#[test]
fn a_pooled_stack_comes_back_without_the_last_tenants_data() {
    common::deadline();
    for instance_scrubs in [false, true] {
        let pool = StackPool::new(STACK, instance::DEFAULT_GUARD_SIZE, 2).unwrap();
        assert!(pool.scrubs_on_put());
        let mut inst = Instance::with_stack(pool.take().unwrap());
        // Off: only the pool's scrub is tested; on: the instance's, then a
        // pool's that finds nothing left.
        inst.set_scrub_stack(instance_scrubs);
        let top = inst.stack().top();
        run_secret(&mut inst);
        assert!(secrets_in(inst.stack()) >= SECRET_WORDS);
        pool.put(inst.into_stack().unwrap()).unwrap();
        let mut again = pool.take().unwrap();
        assert_eq!(again.top(), top, "not the same mapping");
        assert_eq!(secrets_in(&again), 0);
        assert!(again.as_words_mut().iter().all(|&w| w == 0));
    }
}

#[test]
fn without_scrub_on_put_the_next_taker_reads_the_secret() {
    common::deadline();
    let pool = StackPool::new(STACK, instance::DEFAULT_GUARD_SIZE, 2).unwrap().scrub_on_put(false);
    assert!(!pool.scrubs_on_put());
    let mut inst = Instance::with_stack(pool.take().unwrap());
    inst.set_scrub_stack(false);
    let top = inst.stack().top();
    run_secret(&mut inst);
    pool.put(inst.into_stack().unwrap()).unwrap();
    let again = pool.take().unwrap();
    assert_eq!(again.top(), top);
    assert!(secrets_in(&again) >= SECRET_WORDS, "the opt-out lost the data: the test could not fail");
}

#[test]
fn reset_scrubs_unless_turned_off() {
    common::deadline();
    for scrub in [true, false] {
        let mut inst = Instance::new(STACK).unwrap();
        assert!(inst.scrubs_stack());
        inst.set_scrub_stack(scrub);
        // After a return.
        run_secret(&mut inst);
        assert!(secrets_in(inst.stack()) >= SECRET_WORDS);
        inst.reset().unwrap();
        assert_eq!(secrets_in(inst.stack()) == 0, scrub, "scrub {scrub}");
        // A run after a returned run needs no reset, and is not scrubbed.
        run_secret(&mut inst);
        run_secret(&mut inst);
        assert!(secrets_in(inst.stack()) >= SECRET_WORDS);
    }
}

#[test]
fn into_stack_scrubs_unless_turned_off() {
    common::deadline();
    for scrub in [true, false] {
        let mut inst = Instance::new(STACK).unwrap();
        inst.set_scrub_stack(scrub);
        run_secret(&mut inst);
        let stack = inst.into_stack().unwrap();
        assert_eq!(secrets_in(&stack) == 0, scrub, "scrub {scrub}");
    }
}

#[test]
fn scrub_zeroes_touched_pages_and_commits_no_others() {
    common::deadline();
    let page = page_size();
    let words_per_page = page / 8;
    // 4 MiB: two full `mincore` chunks of 512 pages, so the chunk boundary
    // is crossed.
    let size = 4 * 1024 * 1024;
    let pages = size / page;
    let mut stack = Stack::new(size).unwrap();
    let base = stack.base();
    // No transparent huge pages: khugepaged collapsing the range meanwhile
    // would change the resident count behind the test's back.
    // SAFETY: an advice on the stack's own usable range.
    unsafe { libc::madvise(base as *mut libc::c_void, size, libc::MADV_NOHUGEPAGE) };
    assert_eq!(common::resident_pages(base, size), 0);
    // Written pages: the top two, both sides of the chunk boundary, the
    // bottom one; each filled up to a different height.
    let written = [pages - 1, pages - 2, 511, 512, 0];
    let words = stack.as_words_mut();
    for (k, &p) in written.iter().enumerate() {
        let height = words_per_page >> k;
        words[p * words_per_page..p * words_per_page + height].fill(SECRET);
    }
    // A page only read: backed by the kernel's zero page, resident, all
    // zero, and not committed by the scrub.
    let read_only = 700;
    assert_eq!(black_box(words[read_only * words_per_page]), 0);
    let resident = common::resident_pages(base, size);
    assert!(resident >= written.len(), "{resident} resident pages");
    let committed = committed_bytes(base);

    let zeroed = stack.scrub().unwrap();
    let expected: usize = if context::valgrind::running_on_valgrind() {
        // Under valgrind the scrub writes whole resident pages unread.
        resident * page
    } else {
        (0..written.len()).map(|k| (words_per_page >> k) * 8).sum()
    };
    assert_eq!(zeroed, expected);
    assert_eq!(common::resident_pages(base, size), resident, "the scrub changed which pages are resident");
    assert_eq!(committed_bytes(base), committed, "the scrub committed memory");
    let words = stack.as_words_mut();
    for p in written {
        assert!(words[p * words_per_page..(p + 1) * words_per_page].iter().all(|&w| w == 0), "page {p}");
    }
    // Handed out, but nothing written since: a scan, nothing to write.
    assert_eq!(stack.scrub().unwrap(), 0);
    assert_eq!(common::resident_pages(base, size), resident);
    // Not handed out since: no work at all.
    assert_eq!(stack.scrub().unwrap(), 0);
    // (Reading every page maps the zero page under the untouched ones.)
    assert_eq!(secrets_in(&stack), 0);
}

#[test]
fn a_decommitted_stack_scrubs_to_nothing() {
    common::deadline();
    let mut stack = Stack::new(STACK).unwrap();
    stack.as_words_mut().fill(SECRET);
    stack.decommit().unwrap();
    assert_eq!(common::resident_pages(stack.base(), STACK), 0);
    assert_eq!(stack.scrub().unwrap(), 0);
    assert_eq!(secrets_in(&stack), 0);
}

#[test]
fn the_residency_error_keeps_its_errno_as_the_source_only() {
    let err = StackError::Residency(nix::errno::Errno::ENOMEM);
    assert_eq!(err.to_string(), "mincore of the usable part failed");
    let source = err.source().expect("the errno is the source");
    assert_eq!(source.to_string(), nix::errno::Errno::ENOMEM.to_string());
    assert!(!err.to_string().contains(&source.to_string()));
}

/// Writes `secret` into `words` words from `addr` on: a guest that leaves
/// data far below its own stack pointer, where no frame of it ever was.
extern "C" fn write_below_sp(addr: u64, secret: u64, words: u64) -> u64 {
    for i in 0..words as usize {
        // SAFETY: the test passes an address range in the guest's own
        // usable stack, far below the frames in use.
        unsafe { (addr as *mut u64).add(i).write_volatile(secret) };
    }
    secret
}

/// Runs `write_below_sp` on `inst` at each of `offsets` (bytes above the
/// stack's base), `SECRET_WORDS / 4` words each.
fn run_below_sp(inst: &mut Instance, offsets: &[usize]) {
    let base = inst.stack().base();
    for &off in offsets {
        let args = [Val::U64((base + off) as u64), Val::U64(SECRET), Val::U64(SECRET_WORDS as u64 / 4)];
        // SAFETY: write_below_sp is an extern "C" fn(u64, u64, u64) -> u64
        // that returns; it writes only inside the instance's usable stack.
        let r = unsafe { inst.run(write_below_sp as extern "C" fn(u64, u64, u64) -> u64 as usize, &args) };
        assert_eq!(r.unwrap().as_u64(), SECRET);
    }
}

/// Where `run_below_sp` writes in a `STACK`-byte stack: the bottom page,
/// the middle, and just below the top page (where the hand-zeroed part of
/// a quick scrub ends).
fn below_sp_offsets() -> [usize; 3] {
    let page = page_size();
    [8, STACK / 2 + 24, STACK - 2 * page + 16]
}

#[test]
fn data_written_far_below_the_guests_sp_is_gone_after_every_scrub() {
    common::deadline();
    let page = page_size();
    let offsets = below_sp_offsets();
    // More rounds than a stack's quick scrubs between two full ones, so
    // both kinds run, and the quick ones many times.
    let rounds = instance::QUICK_SCRUBS_PER_FULL as usize + 3;
    // `reset` after a return.
    let mut inst = Instance::new(STACK).unwrap();
    for round in 0..rounds {
        run_below_sp(&mut inst, &offsets);
        // Only the written words are read: reading the rest would map the
        // zero page there, and the full scrub would then find every page
        // resident (and keep them all, which is allowed but not tested here).
        let base = inst.stack().base();
        for &off in &offsets {
            // SAFETY: the offsets lie in the usable part, mapped readable;
            // no guest runs.
            let w = unsafe { ((base + off) as *const u64).read_volatile() };
            assert_eq!(w, SECRET, "round {round}: the guest wrote nothing at {off}");
        }
        inst.reset().unwrap();
        // Below the hand-zeroed top the pages were given back, not zeroed
        // in place (by the quick scrubs after the first, full one, which
        // keeps them; until the next full one, which finds every page
        // resident: the `secrets_in` below reads them all).
        if (1..=instance::QUICK_SCRUBS_PER_FULL as usize).contains(&round) {
            let bottom = inst.stack().base();
            assert_eq!(common::resident_pages(bottom, page), 0, "round {round}: the bottom page is still resident");
        }
        assert_eq!(secrets_in(inst.stack()), 0, "reset, round {round}");
    }
    // `into_stack` and the pool's `put`, each alone.
    for instance_scrubs in [true, false] {
        let pool = StackPool::new(STACK, instance::DEFAULT_GUARD_SIZE, 1).unwrap();
        for round in 0..rounds {
            let mut inst = Instance::with_stack(pool.take().unwrap());
            inst.set_scrub_stack(instance_scrubs);
            run_below_sp(&mut inst, &offsets);
            pool.put(inst.into_stack().unwrap()).unwrap();
            let again = pool.take().unwrap();
            assert_eq!(secrets_in(&again), 0, "instance scrubs {instance_scrubs}, round {round}");
            pool.put(again).unwrap();
        }
    }
}

#[test]
fn a_quick_scrub_zeroes_the_hot_pages_even_when_the_kernel_paged_them_out() {
    common::deadline();
    let page = page_size();
    let words_per_page = page / 8;
    let mut stack = Stack::new(STACK).unwrap();
    let n = STACK / 8;
    // Learn a hot top of two pages.
    stack.as_words_mut()[n - 2 * words_per_page..].fill(SECRET);
    stack.quick_scrub().unwrap();
    for round in 0..4 {
        let words = stack.as_words_mut();
        words[n - 2 * words_per_page..].fill(SECRET);
        words[..words_per_page].fill(SECRET);
        // Ask the kernel to page the whole usable part out (to swap, if the
        // machine has any; otherwise the pages stay as they are, and the
        // test is the plain one). 21 is MADV_PAGEOUT (Linux 5.4), which the
        // libc crate does not name.
        // SAFETY: an advice on the stack's own usable range; it never
        // changes what the memory reads as.
        unsafe { libc::madvise(stack.base() as *mut libc::c_void, STACK, 21) };
        stack.quick_scrub().unwrap();
        assert_eq!(secrets_in(&stack), 0, "round {round}");
        assert!(stack.as_words_mut().iter().all(|&w| w == 0), "round {round}");
    }
}

#[test]
fn a_quick_scrub_keeps_the_pages_guests_use_and_gives_back_the_rest() {
    common::deadline();
    if context::valgrind::running_on_valgrind() {
        return; // memcheck's view of the stack changes what is resident.
    }
    let page = page_size();
    let words_per_page = page / 8;
    let mut stack = Stack::new(STACK).unwrap();
    let (base, n) = (stack.base(), STACK / 8);
    // SAFETY: an advice on the stack's own usable range.
    unsafe { libc::madvise(base as *mut libc::c_void, STACK, libc::MADV_NOHUGEPAGE) };
    // Three pages at the top: the full scrub learns them as hot.
    stack.as_words_mut()[n - 3 * words_per_page..].fill(SECRET);
    stack.quick_scrub().unwrap();
    assert_eq!(common::resident_pages(base, STACK), 3);
    let words = stack.as_words_mut();
    words[n - 3 * words_per_page..].fill(SECRET);
    words[words_per_page..2 * words_per_page].fill(SECRET);
    assert_eq!(common::resident_pages(base, STACK), 4);
    assert_eq!(stack.quick_scrub().unwrap(), 3 * page);
    // The hot three stay, zeroed; the page far below is given back.
    assert_eq!(common::resident_pages(stack.top() - 3 * page, 3 * page), 3);
    assert_eq!(common::resident_pages(base, STACK), 3);
    assert_eq!(secrets_in(&stack), 0);
    // Not handed out since: nothing to do.
    assert_eq!(stack.quick_scrub().unwrap(), 0);
}
