//! Running commands, timing named steps, and reading the workspace manifest.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

/// Runs `cmd` with no input and returns how it ended and what it printed
/// (its stdout, then its stderr); a run still going after `limit` is
/// killed and ends as `None`, so a hung tool cannot stall CI.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<(Option<ExitStatus>, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    // Read both pipes while waiting (a child that fills one would block);
    // the readers report through a channel, so that a descendant still
    // holding a pipe open after a kill cannot block us either.
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] =
        [child.stdout.take().map(|p| Box::new(p) as _), child.stderr.take().map(|p| Box::new(p) as _)];
    for (i, pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = tx.send((i, bytes));
        });
    }
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => break None,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("could not wait for {cmd:?}: {e}"));
            }
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut printed = [Vec::new(), Vec::new()];
    let grace = Instant::now() + Duration::from_secs(5);
    for _ in 0..2 {
        match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok((i, bytes)) => printed[i] = bytes,
            Err(_) => break,
        }
    }
    let text = printed.iter().map(|b| String::from_utf8_lossy(b)).collect();
    Ok((status, text))
}

/// A child process that is killed (and reaped) when this is dropped, so
/// that no early return leaves it running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A TCP port on the loopback interface that was free a moment ago (the
/// system picked it), for a server to listen on.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("could not pick a port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("could not pick a port: {e}"))
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
    fn output_within_returns_what_was_printed_or_kills_at_the_limit() {
        let (status, text) =
            output_within(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(20))
                .unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(3));
        assert_eq!(text, "out\nerr\n");
        let (status, text) =
            output_within(Command::new("sh").args(["-c", "echo started; exec sleep 30"]), Duration::from_millis(300))
                .unwrap();
        // Killed, not waited for: `sleep 30` would have exited 0.
        assert_eq!(status, None, "a run past its limit is killed");
        assert_eq!(text, "started\n");
    }

    #[test]
    fn a_free_port_can_be_listened_on() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn the_root_manifest_declares_an_msrv_and_a_version() {
        let manifest = root_manifest().unwrap();
        assert!(workspace_package_field(&manifest, "rust-version").is_some());
        assert!(workspace_package_field(&manifest, "version").is_some());
    }
}
