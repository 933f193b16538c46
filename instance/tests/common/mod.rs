//! Helpers shared by the integration tests: process accounting from /proc,
//! and running a test case in a child process.
#![allow(dead_code)]

pub mod guests;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Scales stress loop counts for local soak runs
/// (`INSTANCE_STRESS_SCALE=10`); 1 when unset.
pub fn scale(n: usize) -> usize {
    let k: usize = std::env::var("INSTANCE_STRESS_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    n * k.max(1)
}

/// A small deterministic generator (splitmix64) for random delays and
/// schedules in stress tests.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

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

/// The case this process was started for, if it is a child.
pub fn child_case() -> Option<String> {
    let case = std::env::var(CASE_VAR).ok()?;
    // A child that dies of a signal should not write a core file.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    Some(case)
}

/// How a child ended.
#[derive(Debug)]
pub struct ChildOutcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ChildOutcome {
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Re-runs this test binary with only `test` selected and `case` in the
/// environment, waits at most 60 s (then kills it and panics), and returns
/// how it ended.
pub fn run_child(test: &str, case: &str) -> ChildOutcome {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child case {case} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    ChildOutcome { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() }
}

/// Runs child `case` of `test` (see [`run_child`]) and asserts it exited 0
/// having printed `marker`; returns how it ended.
pub fn expect_child_ok(test: &str, case: &str, marker: &str) -> ChildOutcome {
    let out = run_child(test, case);
    assert!(
        out.code() == Some(0) && out.stdout.contains(marker),
        "case {case}: exit code {:?}, signal {:?}\nstdout: {}\nstderr: {}",
        out.code(),
        out.signal(),
        out.stdout,
        out.stderr
    );
    out
}
