//! Running commands, timing named steps, and reading the workspace manifest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf()
}

/// The workspace's target directory: `CARGO_TARGET_DIR` if set, else
/// `target/` at the root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
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

/// Whether `CI` is set: then a check that cannot run is an error, not a skip.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The root `Cargo.toml`'s text.
pub fn root_manifest() -> Result<String, String> {
    let path = root().join("Cargo.toml");
    std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))
}

/// The string value of `key` in the `[workspace.package]` table of a
/// manifest (`rust-version = "1.88"` gives `1.88`). Only the plain
/// `key = "value"` form is understood, which is how the root manifest
/// writes them.
pub fn workspace_package_field(manifest: &str, key: &str) -> Option<String> {
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_table = line == "[workspace.package]";
            continue;
        }
        if !in_table {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        if k.trim() != key {
            continue;
        }
        let v = v.trim();
        let v = v.split_once('#').map_or(v, |(v, _)| v.trim());
        return v.strip_prefix('"')?.strip_suffix('"').map(str::to_string);
    }
    None
}

/// How a step ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ended {
    Ok,
    Failed,
}

/// A sequence of named steps, each announced and timed.
pub struct Steps {
    started: Instant,
    done: Vec<(String, f64, Ended)>,
}

impl Steps {
    pub fn new() -> Steps {
        Steps { started: Instant::now(), done: Vec::new() }
    }

    /// Runs one step, announced with what it does; a failure names the
    /// step and is kept for the summary.
    pub fn step(&mut self, name: &str, what: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        println!("==> {name}: {what}");
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        match r {
            Ok(()) => {
                println!("<== {name}: ok in {secs:.1} s");
                self.done.push((name.to_string(), secs, Ended::Ok));
                Ok(())
            }
            Err(e) => {
                println!("<== {name}: FAILED after {secs:.1} s");
                self.done.push((name.to_string(), secs, Ended::Failed));
                Err(format!("step `{name}` failed after {secs:.1} s: {e}"))
            }
        }
    }

    /// Prints each step run so far with its time and how it ended, and the
    /// total.
    pub fn summary(&self) {
        println!("\nsteps:");
        for (name, secs, ended) in &self.done {
            let ended = match ended {
                Ended::Ok => "ok",
                Ended::Failed => "FAILED",
            };
            println!("  {secs:>7.1} s  {ended:<6}  {name}");
        }
        println!("  {:>7.1} s          total", self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_package_field_reads_only_its_table() {
        let manifest = "\
[workspace]
members = [\"a\"]
rust-version = \"9.9\"

[workspace.package]
version = \"0.1.0\"
rust-version = \"1.88\"  # the MSRV

[workspace.dependencies]
rust-version = \"0.0\"
";
        assert_eq!(workspace_package_field(manifest, "rust-version").as_deref(), Some("1.88"));
        assert_eq!(workspace_package_field(manifest, "version").as_deref(), Some("0.1.0"));
        assert_eq!(workspace_package_field(manifest, "edition"), None);
    }

    #[test]
    fn the_root_manifest_declares_an_msrv_and_a_version() {
        let manifest = root_manifest().unwrap();
        assert!(workspace_package_field(&manifest, "rust-version").is_some());
        assert!(workspace_package_field(&manifest, "version").is_some());
    }
}
