//! Outcomes that must end the process (a deliberate abort, a fault that is
//! the host's) run in a child process: the test binary re-run with one test
//! selected and the case named in an environment variable. The parent checks
//! how the child ended.
//!
//! The child side asks [`child_case`] whether it is a child and for which
//! case; the parent side runs one with [`run_child`] (or [`run_child_with`]
//! to change its environment) and looks at the [`ChildOutcome`].

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a child may run before the parent kills it and fails.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The case this process was started for, if it is a child: the value of
/// the environment variable `var`. A child also stops writing core files,
/// since it may be meant to die of a signal.
pub fn child_case(var: &str) -> Option<String> {
    let case = std::env::var(var).ok()?;
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    Some(case)
}

/// How a child ended, and what it printed.
#[derive(Debug)]
pub struct ChildOutcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ChildOutcome {
    /// The signal that ended it, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Its exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Re-runs this test binary with only `test` selected and `var=case` in the
/// environment (and `RUST_BACKTRACE=0`), waits at most [`CHILD_TIMEOUT`]
/// (then kills it and panics), and returns how it ended.
pub fn run_child(test: &str, var: &str, case: &str) -> ChildOutcome {
    run_child_with(test, var, case, |_| {})
}

/// [`run_child`], with `configure` given the command before it starts (to
/// set more of the child's environment, say `RUST_BACKTRACE=1`).
pub fn run_child_with(test: &str, var: &str, case: &str, configure: impl FnOnce(&mut Command)) -> ChildOutcome {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = self_command(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, case)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    configure(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read_all(Box::new(child.stdout.take().unwrap()));
    let err = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child case {case} did not finish within {} s", CHILD_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    ChildOutcome { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// The environment variable cargo reads the runner of this build's target
/// from (`CARGO_TARGET_<TRIPLE>_RUNNER`), for a binary built for another
/// architecture than the machine's.
#[cfg(target_arch = "aarch64")]
const RUNNER_VAR: &str = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER";
#[cfg(target_arch = "x86_64")]
const RUNNER_VAR: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER";

/// A command that runs `exe`, this test binary (or any program built for
/// the same target), the way cargo ran it: when
/// the build's target has a runner configured (`qemu-aarch64 -L …` for
/// the aarch64 tests on an x86_64 machine, where the kernel cannot execute
/// the binary itself), through that runner, whose words are split on
/// whitespace as cargo splits them.
pub fn self_command(exe: impl AsRef<std::ffi::OsStr>) -> Command {
    let runner = std::env::var(RUNNER_VAR).unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// Runs child `case` of `test` (see [`run_child`]) and asserts it exited 0
/// having printed `marker`; returns how it ended.
pub fn expect_child_ok(test: &str, var: &str, case: &str, marker: &str) -> ChildOutcome {
    let out = run_child(test, var, case);
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
