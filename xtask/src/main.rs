//! Workspace automation. `cargo xtask ci` runs every check CI runs; if it
//! passes locally, CI passes.
//!
//! Std only: the checks it runs are ordinary commands (`cargo`, `cc`,
//! `readelf`, ...), each named with its time as it goes.

mod abi;
mod bench;
mod ci;
mod debug;
mod layout;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci        every check CI runs: fmt, clippy, tests (debug and release), docs, ...
  bench     a short run of every benchmark, one table of ratios ours/peer;
            `bench --count`: instructions per operation under valgrind
  gdb       a breakpoint inside a child context: gdb's `bt` reaches the host
  valgrind  the context tests (and instance's stack_*/run_* tests) under memcheck
  layout    size, alignment and every field offset of the structs shared with the
            assembly, as the header, C, Rust and the assembly itself see them
  abi       the built assembly's symbols, FDEs, GNU-stack note and relocations;
            the C-only harness; the callee-saved/MXCSR/x87/alignment probes
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("gdb") => debug::gdb(),
        Some("valgrind") => debug::valgrind(),
        Some("layout") => layout::run(),
        Some("abi") => abi::run(),
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
