//! `cargo xtask ci`: every check, in order, each named and timed.

use crate::debug;
use crate::util::{self, Steps, cargo};

pub fn run() -> Result<(), String> {
    let mut s = Steps::new();
    s.step("fmt", || util::run(cargo().args(["fmt", "--all", "--", "--check"])))?;
    s.step("clippy", || util::run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])))?;
    // Before the tests: a layout or ABI mistake makes tests crash in ways
    // that do not say why; these steps name the field or routine.
    s.step("layout", crate::layout::run)?;
    s.step("abi", crate::abi::run)?;
    s.step("test (debug)", || util::run(cargo().args(["test", "--workspace"])))?;
    s.step("test (release)", || util::run(cargo().args(["test", "--workspace", "--release"])))?;
    s.step("benches (each once, criterion's test mode)", || {
        util::run(cargo().args(["test", "-p", "context-tests-c", "--benches"]))
    })?;
    s.step("gdb backtrace", debug::gdb)?;
    s.step("valgrind", debug::valgrind)?;
    s.step("doc", || util::run(cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings")))?;
    s.summary();
    Ok(())
}
