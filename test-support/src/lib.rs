//! Helpers that several test files and benchmarks of the workspace need,
//! kept once instead of copied into each.
//!
//! * [`rng`]: splitmix64, for deterministic random schedules and delays
//!   (also included by path into `context-tests-c/build.rs`).
//! * [`child`]: re-running the test binary as a child process for one case,
//!   and how it ended (for outcomes that kill the process).
//! * [`probe`]: the assembly probe that loads a pattern into every
//!   callee-saved register and the FP control registers, calls a function
//!   and records what it finds when the call returns.
//! * [`fp`]: reading and writing MXCSR and the x87 control word (aarch64:
//!   FPCR and FPSR).
//! * [`repo`]: the repository's root, its files, source without comments
//!   (for the tidy tests).
//! * [`scale`]: stress loop counts, scaled for soak runs.
//!
//! Workspace-only (`publish = false`): a dev-dependency by path of the
//! crates whose tests use it. x86_64 and aarch64 Linux, like the crates it
//! tests.

pub mod child;
pub mod fp;
pub mod probe;
pub mod repo;
pub mod rng;

/// Scales stress loop counts for local soak runs
/// (`INSTANCE_STRESS_SCALE=10`); 1 when unset.
pub fn scale(n: usize) -> usize {
    let k: usize = std::env::var("INSTANCE_STRESS_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    n * k.max(1)
}
