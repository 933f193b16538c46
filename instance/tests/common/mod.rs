//! Helpers shared by the integration tests: process accounting from /proc,
//! and running a test case in a child process (through the workspace's
//! test-support crate).
#![allow(dead_code)]

pub mod guests;

use std::time::Duration;

// The stress scale and the generator live in the workspace's test-support
// crate (shared with context-tests-c); the names stay as the tests use them.
#[allow(unused_imports)] // each test binary uses its own subset
pub use test_support::{rng::Rng, scale};

/// Bounds the whole test binary in time: the first call starts a thread
/// that aborts the process (failing the run) if it is still alive after
/// five minutes, so a hung guest or handler cannot stall CI.
pub fn deadline() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let (started, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Let the thread finish setting itself up (alternate signal
            // stack, malloc arena) before the caller measures mappings.
            std::hint::black_box(Box::new([0u8; 64]));
            started.send(()).unwrap();
            std::thread::sleep(Duration::from_secs(300));
            eprintln!("test binary still running after 300 s: aborting");
            std::process::abort();
        });
        wait.recv().unwrap();
    });
}

/// Lines in /proc/self/maps: one per mapping.
pub fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

/// Resident set size in bytes, from /proc/self/statm.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * instance::page_size()
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The permissions column of the /proc/self/maps line of the mapping that
/// contains `addr` ("rw-p", "---p", ...), or None if nothing maps it.
pub fn perms_at(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let perms = fields.next()?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
        (lo <= addr && addr < hi).then(|| perms.to_string())
    })
}

/// How many pages of `[addr, addr + len)` are resident (mincore(2); nix
/// has no wrapper).
pub fn resident_pages(addr: usize, len: usize) -> usize {
    let page = instance::page_size();
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: `vec` has one byte per page of the range, which is mapped.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore failed");
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

/// The environment variable that selects a child case.
pub const CASE_VAR: &str = "INSTANCE_TEST_CASE";

/// How a child ended (test-support's, shared with the context tests).
pub use test_support::child::ChildOutcome;

/// The case this process was started for, if it is a child (then it writes
/// no core file).
pub fn child_case() -> Option<String> {
    test_support::child::child_case(CASE_VAR)
}

/// Re-runs this test binary with only `test` selected and `case` in the
/// environment, waits at most 60 s (then kills it and panics), and returns
/// how it ended.
pub fn run_child(test: &str, case: &str) -> ChildOutcome {
    test_support::child::run_child(test, CASE_VAR, case)
}

/// Runs child `case` of `test` (see [`run_child`]) and asserts it exited 0
/// having printed `marker`; returns how it ended.
pub fn expect_child_ok(test: &str, case: &str, marker: &str) -> ChildOutcome {
    test_support::child::expect_child_ok(test, CASE_VAR, case, marker)
}
