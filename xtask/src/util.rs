//! Running commands and timing named steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf()
}

/// `cargo` as Cargo invoked us with, run from the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, failing with its command line and exit status if it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed with {status}")) }
}

/// A sequence of named steps, each announced and timed.
pub struct Steps {
    started: Instant,
    done: Vec<(String, f64)>,
}

impl Steps {
    pub fn new() -> Steps {
        Steps { started: Instant::now(), done: Vec::new() }
    }

    /// Runs one step; a failure names the step.
    pub fn step(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        println!("==> {name}");
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        match r {
            Ok(()) => {
                println!("<== {name}: ok in {secs:.1} s");
                self.done.push((name.to_string(), secs));
                Ok(())
            }
            Err(e) => Err(format!("step `{name}` failed after {secs:.1} s: {e}")),
        }
    }

    /// Prints each step's time and the total.
    pub fn summary(&self) {
        println!("\nsteps:");
        for (name, secs) in &self.done {
            println!("  {secs:>7.1} s  {name}");
        }
        println!("  {:>7.1} s  total", self.started.elapsed().as_secs_f64());
    }
}
