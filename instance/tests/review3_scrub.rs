//! Review (quick scrub, f1863f8): no data of one guest is visible to the
//! next on a reused stack, whatever depth it was written at and whatever
//! the kernel did with the pages meanwhile — across many rounds, so that
//! full (learning) and quick scrubs alternate, with guests whose depth
//! changes between full scrubs (deeper and shallower than the learned hot
//! part), pages paged out (MADV_PAGEOUT) and pages locked (mlock).

mod common;

use common::Rng;
use context::Val;
use instance::{Instance, StackPool, page_size};

/// The stack's size: 128 pages (512 KiB with 4 KiB pages), room for the
/// deepest guest below (70 frames of 4 KiB) plus three pages and a hot part
/// of 65 pages whatever the page size.
fn stack_size() -> usize {
    128 * page_size()
}
const SECRET: u64 = 0x5ec2_e75e_c2e7_0001;

/// Recurses `depth` pages deep (touching each page of its frames), then
/// writes `SECRET` at each of `n` addresses from the array at `addrs`.
extern "C" fn deep_then_write(depth: u64, addrs: u64, n: u64) -> u64 {
    #[inline(never)]
    fn down(depth: u64, addrs: u64, n: u64) -> u64 {
        let mut pad = [0u8; 4096];
        // SAFETY: a local.
        unsafe { std::ptr::write_volatile(&mut pad[0], depth as u8) };
        if depth > 0 {
            let r = down(depth - 1, addrs, n);
            std::hint::black_box(&pad);
            return r;
        }
        for i in 0..n as usize {
            // SAFETY: the test passes addresses in the instance's usable
            // stack that are not in this guest's live frames.
            unsafe { ((*(addrs as *const u64).add(i)) as *mut u64).write_volatile(SECRET) };
        }
        0
    }
    down(depth, addrs, n)
}

/// Addresses to write at in a stack of `base..top`, with the guest's frames
/// going `depth` pages down: its top, the boundaries of a hot part of 1, 2,
/// `depth` and 64 pages, just below the frames and deep down to the bottom.
fn targets(base: usize, top: usize, depth: usize, rng: &mut Rng) -> Vec<u64> {
    let page = page_size();
    let frames_end = top - (depth + 3) * page; // below every live frame
    let mut v = Vec::new();
    for hot in [1usize, 2, depth, depth + 1, 64, 65] {
        let boundary = top.saturating_sub(hot * page);
        for a in [boundary, boundary.wrapping_sub(8), boundary + page - 8] {
            if a >= base && a + 8 <= frames_end {
                v.push(a as u64);
            }
        }
    }
    for _ in 0..8 {
        let a = base + (rng.next() as usize % (frames_end - base)) / 8 * 8;
        v.push(a as u64);
    }
    v.push(base as u64);
    v.push((frames_end - 8) as u64);
    v
}

fn check(base: usize, addrs: &[u64], what: &str) {
    for &a in addrs {
        // SAFETY: in the usable part of a stack nothing runs on.
        let w = unsafe { (a as *const u64).read_volatile() };
        assert_ne!(w, SECRET, "{what}: the secret at base + {:#x} survived the scrub", a as usize - base);
    }
}

fn page_out(base: usize, len: usize) {
    // SAFETY: an advice on a stack's own usable range (21: MADV_PAGEOUT,
    // which only changes residency, never contents).
    unsafe { libc::madvise(base as *mut libc::c_void, len, 21) };
}

fn run_round(inst: &mut Instance, depth: usize, rng: &mut Rng, extra: u64) -> Vec<u64> {
    let (base, top) = (inst.stack().base(), inst.stack().top());
    let addrs = targets(base, top, depth, rng);
    let args = [Val::U64(depth as u64), Val::U64(addrs.as_ptr() as u64), Val::U64(addrs.len() as u64)];
    // SAFETY: extern "C" fn(u64, u64, u64) -> u64 that returns; it writes
    // only the listed addresses, in its own stack below its frames.
    let r = unsafe { inst.run(deep_then_write as extern "C" fn(u64, u64, u64) -> u64 as usize, &args) };
    assert_eq!(r.unwrap().as_u64(), 0);
    match extra % 4 {
        0 => page_out(base, top - base),
        1 => page_out(top - 4 * page_size(), 4 * page_size()),
        _ => {}
    }
    addrs
}

#[test]
fn secrets_at_every_depth_are_gone_after_each_of_many_resets_with_paged_out_pages() {
    common::deadline();
    let mut rng = Rng(0x5c2b_0001);
    let mut inst = Instance::new(stack_size()).unwrap();
    // Three full scrubs and the quick ones between them; the guest's depth
    // changes at random, so it goes deeper and shallower than learned.
    for round in 0..3 * instance::QUICK_SCRUBS_PER_FULL as usize + 5 {
        let depth = [0usize, 1, 3, 10, 40, 70][rng.next() as usize % 6];
        let extra = rng.next();
        let addrs = run_round(&mut inst, depth, &mut rng, extra);
        inst.reset().unwrap();
        check(inst.stack().base(), &addrs, &format!("reset round {round} depth {depth}"));
    }
}

#[test]
fn secrets_at_every_depth_are_gone_from_a_pooled_stack_across_many_takers() {
    common::deadline();
    let mut rng = Rng(0x5c2b_0002);
    let pool = StackPool::new(stack_size(), instance::DEFAULT_GUARD_SIZE, 2).unwrap();
    for round in 0..2 * instance::QUICK_SCRUBS_PER_FULL as usize + 5 {
        let mut inst = Instance::with_stack(pool.take().unwrap());
        inst.set_scrub_stack(round % 2 == 0);
        let depth = [0usize, 2, 20, 66][rng.next() as usize % 4];
        let extra = rng.next();
        let addrs = run_round(&mut inst, depth, &mut rng, extra);
        let base = inst.stack().base();
        pool.put(inst.into_stack().unwrap()).unwrap();
        let again = pool.take().unwrap();
        assert_eq!(again.base(), base);
        check(base, &addrs, &format!("pool round {round} depth {depth}"));
        pool.put(again).unwrap();
    }
}

#[test]
fn secrets_on_a_stack_the_guest_locked_with_mlock_are_gone_after_reset() {
    common::deadline();
    let mut rng = Rng(0x5c2b_0003);
    let mut inst = Instance::new(64 * 1024).unwrap();
    let page = page_size();
    let (base, top) = (inst.stack().base(), inst.stack().top());
    for round in 0..instance::QUICK_SCRUBS_PER_FULL as usize + 3 {
        let addrs = run_round(&mut inst, 2, &mut rng, 3);
        // A guest (or host) locks part of the stack: MADV_DONTNEED refuses
        // locked ranges (EINVAL), the scrub must still zero them.
        let (lo, len) = if round % 2 == 0 { (base, top - base) } else { (base + page, 2 * page) };
        // SAFETY: locks pages of our own mapping; unlocked below.
        if unsafe { libc::mlock(lo as *const libc::c_void, len) } != 0 {
            eprintln!("mlock failed ({}), skipping", std::io::Error::last_os_error());
            return;
        }
        inst.reset().unwrap();
        check(base, &addrs, &format!("mlock round {round}"));
        // SAFETY: unlocks what was locked above.
        unsafe { libc::munlock(lo as *const libc::c_void, len) };
    }
}
