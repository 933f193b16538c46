//! Workspace automation. `cargo xtask ci` runs every check CI runs; if it
//! passes locally, CI passes.
//!
//! Std only: the checks it runs are ordinary commands (`cargo`, `cc`,
//! `readelf`, ...), each named with its time as it goes.

mod aarch64;
mod abi;
mod bench;
mod ci;
mod debug;
// The workspace's one `#define` parser, kept with the build script that
// needs it most; its tests are here.
#[path = "../../context-sys/build/defines.rs"]
mod defines;
#[cfg(test)]
mod defines_tests;
mod layout;
// Which shared-struct field each layout define of the header names (shared
// with context-tests-c's build script, which lists them for the Rust side).
#[path = "../../context-tests-c/build/layout_fields.rs"]
mod layout_fields;
mod msrv;
mod release;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [--help]

commands:
  ci        every check CI runs: fmt, clippy, tests (debug and release), docs, ...;
            `ci --only STEP,...` / `ci --skip STEP,...` (`ci --help` lists the steps)
  bench     a short run of every benchmark, one table of ratios ours/peer, and
            target/criterion/ratios.svg; `bench --count`: instructions per
            operation under valgrind; `bench --from-last`: the table and chart of
            the results already in target/criterion, without running anything
  msrv      clippy and the debug tests on the `rust-version` of Cargo.toml
  release-check
            `cargo publish --workspace --dry-run`, then a downstream crate built
            and run on the packaged crates (see RELEASING.md)
  gdb       a breakpoint inside a child context: gdb's `bt` reaches the host
  valgrind  the context tests (and the instance tests xtask/src/debug.rs lists) under memcheck
  layout    size, alignment and every field offset of the structs shared with the
            assembly, as the header, C and Rust see them; and that the assembly
            names every offset by the header's name (tests/tidy_asm.rs)
  abi       the built assembly's symbols, FDEs, GNU-stack note and relocations;
            the C-only harness; the callee-saved/MXCSR/x87/alignment probes
  aarch64   cross-build for aarch64-unknown-linux-gnu and run the tests under
            qemu-aarch64 and the sandbox demo; check the aarch64 object and archive
            (bti c, FDEs, BTI note, the abi checks, a force-bti link); gdb-multiarch
            backtraces through qemu's gdb stub; a C smoke test
";

/// Runs a command that takes no arguments but `--help`, which prints
/// `usage`.
fn with_usage(usage: &str, args: &[String], run: fn() -> Result<(), String>) -> Result<(), String> {
    match args {
        [] => run(),
        [h] if h == "--help" || h == "-h" => {
            print!("{usage}");
            Ok(())
        }
        _ => Err(format!("unexpected arguments {args:?}\n{usage}")),
    }
}

/// [`with_usage`] for a command described by its line in [`USAGE`].
fn plain(name: &str, args: &[String], run: fn() -> Result<(), String>) -> Result<(), String> {
    let mut usage = format!("usage: cargo xtask {name}\n\n");
    let mut lines = USAGE.lines().skip_while(|l| !l.starts_with(&format!("  {name} "))).peekable();
    if let Some(first) = lines.next() {
        usage.push_str(first.trim_start_matches(&format!("  {name} ")).trim());
        usage.push('\n');
        while let Some(l) = lines.next_if(|l| l.starts_with("           ")) {
            usage.push_str(l.trim());
            usage.push('\n');
        }
    }
    with_usage(&usage, args, run)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(rest),
        Some("bench") => bench::run(rest),
        Some("gdb") => plain("gdb", rest, debug::gdb),
        Some("valgrind") => plain("valgrind", rest, debug::valgrind),
        Some("layout") => plain("layout", rest, layout::run),
        Some("abi") => plain("abi", rest, abi::run),
        Some("aarch64") => plain("aarch64", rest, aarch64::run),
        Some("msrv") => with_usage(msrv::USAGE, rest, msrv::run),
        Some("release-check") => with_usage(release::USAGE, rest, release::run),
        Some("help") | Some("--help") | Some("-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
