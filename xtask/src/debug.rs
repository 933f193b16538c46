//! Debugger checks: `cargo xtask gdb` (a child's backtrace in gdb) and
//! `cargo xtask valgrind` (the tests under memcheck); and the same
//! backtrace checks for aarch64, with `gdb-multiarch` attached to
//! `qemu-aarch64`'s gdb stub, which `cargo xtask aarch64` runs.
//!
//! Both need a system tool. Where it is missing they say so and pass, so a
//! laptop without gdb can still run `cargo xtask ci`; with `CI` set in the
//! environment (as CI services do) a missing tool is an error instead, so
//! the check cannot silently vanish there. `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::aarch64;
use crate::util::{self, KillOnDrop, cargo, root};

/// The example that `gdb` drives (context/examples/gdb_backtrace.rs).
const GDB_EXAMPLE: &str = "gdb_backtrace";

/// Integration tests of `instance` that run under valgrind, by name: the
/// ones that fault nothing (the fault tests do not run there, on purpose:
/// memcheck reports a deliberate fault as an error). Named one by one so
/// that a new test joins only when someone decides it belongs; a unit test
/// below checks that each names a file of `instance/tests/`.
const INSTANCE_VALGRIND_TESTS: &[&str] = &["run_basic", "run_yield", "stack_basic", "stack_leaks", "stack_pool_unmap"];

/// Proptest cases per property under valgrind (the native runs keep their
/// own counts); memcheck is 20-50 times slower than the CPU.
const PROPTEST_CASES_UNDER_VALGRIND: &str = "32";

/// Whether `tool --version` runs; if not, either a skip (Ok(false), with a
/// message) or, under CI, an error.
fn tool_available(tool: &str, why: &str) -> Result<bool, String> {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Ok(true);
    }
    if std::env::var_os("CI").is_some() {
        return Err(format!(
            "`{tool}` is not installed and CI is set; {why} cannot be skipped here (.ci/run installs it)"
        ));
    }
    println!("SKIPPED: `{tool}` not found, so {why} was not checked; install {tool} (.ci/run does) to run it");
    Ok(false)
}

// ---- gdb ------------------------------------------------------------------

/// One frame line of gdb's `bt`, reduced to its function name.
fn gdb_frame_function(line: &str) -> Option<String> {
    let rest = line.strip_prefix('#')?;
    let (index, rest) = rest.split_once(' ')?;
    index.parse::<usize>().ok()?;
    let mut rest = rest.trim_start();
    // "#1  0x000055555556e6ae in child_entry (x=20) at ..." has an address;
    // the innermost frame and inlined frames do not.
    if rest.starts_with("0x") {
        rest = rest.split_once(" in ")?.1;
    }
    let name = rest.split_once(" (").map_or(rest, |(name, _)| name);
    Some(name.trim().to_string())
}

/// How long one gdb session may take before gdb is killed (and, under
/// qemu, qemu with it), so a hang cannot stall CI. A session takes about
/// 0.5 s under qemu and a few seconds natively.
const GDB_LIMIT: Duration = Duration::from_secs(60);

/// The frames gdb must show from the breakpoint in a child whose parent is
/// the host: through the start routine into the host's `main`.
const LINKED_FRAMES: &[&str] =
    &["child_breakpoint_here", "child_entry", "context_sys_start", "host_enters_child", "main"];

/// The frames of the child entered from a context that was never saved
/// into: the backtrace must end at the start routine.
const UNLINKED_FRAMES: &[&str] = &["child_breakpoint_here", "unlinked_child_entry", "context_sys_start"];

/// Runs a gdb session (`gdb` is the whole command, its `-ex` steps stop at
/// `child_breakpoint_here` and then `bt`) within [`GDB_LIMIT`], and
/// returns gdb's whole output and the functions `bt` listed.
fn gdb_session(gdb: &mut Command) -> Result<(String, Vec<String>), String> {
    let (status, text) = util::output_within(gdb.env("DEBUGINFOD_URLS", ""), GDB_LIMIT)?;
    if status.is_none() {
        return Err(format!("gdb did not finish within {} s and was killed:\n{text}", GDB_LIMIT.as_secs()));
    }
    if !text.contains("Breakpoint 1, ") {
        return Err(format!("gdb never stopped at child_breakpoint_here:\n{text}"));
    }
    let frames = text.lines().filter_map(gdb_frame_function).collect();
    Ok((text, frames))
}

/// Runs the example under gdb, stopped at `child_breakpoint_here`, and
/// returns gdb's whole output and the functions `bt` listed.
fn gdb_backtrace(exe: &Path, arg: &str) -> Result<(String, Vec<String>), String> {
    gdb_session(
        Command::new("gdb")
            .args(["-nx", "-batch"])
            .args(["-ex", "set pagination off", "-ex", "break child_breakpoint_here"])
            .args(["-ex", &format!("run {arg}"), "-ex", "bt", "-ex", "kill"])
            .arg(exe),
    )
}

/// The malloc tunable under which the example runs in qemu: its 128 KiB
/// child stack then comes from the heap, below the main stack as an mmap'd
/// block is natively. qemu-user maps blocks above the guest's main stack,
/// and gdb ends a backtrace whose caller's frame lies below the callee's
/// ("previous frame inner to this frame (corrupt stack?)") at the step
/// from the child's stack to the host's.
const QEMU_MALLOC_TUNABLE: &str = "glibc.malloc.mmap_threshold=4194304";

/// Runs the aarch64 example under `qemu-aarch64 -g PORT` and attaches
/// `gdb-multiarch`; returns what [`gdb_session`] does. qemu is killed when
/// this returns, whatever happened.
fn qemu_gdb_backtrace(exe: &Path, arg: &str) -> Result<(String, Vec<String>), String> {
    let port = util::free_port()?;
    let log_path = crate::layout::scratch_dir()?.join(format!("qemu_gdb_{port}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| format!("could not create {}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| format!("{e}"))?;
    let mut qemu = Command::new(aarch64::QEMU);
    qemu.args(["-L", aarch64::SYSROOT, "-g", &port.to_string()]).arg(exe);
    if !arg.is_empty() {
        qemu.arg(arg);
    }
    let qemu = KillOnDrop(
        qemu.env("GLIBC_TUNABLES", QEMU_MALLOC_TUNABLE)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", aarch64::QEMU))?,
    );
    // gdb retries the connection (`tcp auto-retry`) until qemu listens.
    let result = gdb_session(
        Command::new("gdb-multiarch")
            .args(["-nx", "-batch"])
            .args(["-ex", "set pagination off", "-ex", &format!("set sysroot {}", aarch64::SYSROOT)])
            .args(["-ex", &format!("target remote 127.0.0.1:{port}"), "-ex", "break child_breakpoint_here"])
            .args(["-ex", "continue", "-ex", "bt", "-ex", "kill"])
            .arg(exe),
    );
    drop(qemu);
    let said = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    result.map_err(|e| format!("{e}\nqemu said:\n{said}"))
}

/// The linked and the unlinked child's backtraces, each got by `backtrace`
/// (given the example's argument) and checked against [`LINKED_FRAMES`]
/// and [`UNLINKED_FRAMES`]; returns the frames of each.
fn check_backtraces(
    backtrace: impl Fn(&str) -> Result<(String, Vec<String>), String>,
) -> Result<(Vec<String>, Vec<String>), String> {
    let (text, linked) = backtrace("")?;
    check_gdb_frames(&text, &linked, LINKED_FRAMES, false).map_err(|e| format!("linked child: {e}"))?;
    let (text, unlinked) = backtrace("unlinked")?;
    check_gdb_frames(&text, &unlinked, UNLINKED_FRAMES, true).map_err(|e| format!("unlinked child: {e}"))?;
    Ok((linked, unlinked))
}

/// Checks that `frames` holds `expected` in this order, starting at frame 0,
/// and that gdb did not complain or list unknown frames. With `last`, the
/// final expected function must also be the last frame.
fn check_gdb_frames(text: &str, frames: &[String], expected: &[&str], last: bool) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{why}\nexpected frames in order: {expected:?}\ngdb said:\n{text}"));
    if text.contains("Backtrace stopped") || text.contains("corrupt stack") {
        return fail("gdb stopped the backtrace with an error");
    }
    if frames.iter().any(|f| f == "??") {
        return fail("gdb listed an unknown (garbage) frame");
    }
    let matches = |frame: &String, name: &str| frame == name || frame.ends_with(&format!("::{name}"));
    if frames.first().is_none_or(|f| !matches(f, expected[0])) {
        return fail("frame 0 is not the breakpoint");
    }
    let mut at = 0;
    for name in expected {
        match frames[at..].iter().position(|f| matches(f, name)) {
            Some(offset) => at += offset + 1,
            None => return fail(&format!("`{name}` is missing or out of order")),
        }
    }
    if last && at != frames.len() {
        return fail("frames follow the last expected one");
    }
    Ok(())
}

/// Builds the example in one profile, natively or for aarch64, and
/// returns its path.
fn build_example(release: bool, for_aarch64: bool) -> Result<PathBuf, String> {
    let mut cmd = cargo();
    cmd.args(["build", "-p", "stackful-context", "--example", GDB_EXAMPLE, "--message-format=json"]);
    if release {
        cmd.arg("--release");
    }
    if for_aarch64 {
        aarch64::cross(cmd.args(["--target", aarch64::TARGET]));
    }
    artifacts(&mut cmd)?
        .into_iter()
        .find(|a| a.kind.iter().any(|k| k == "example") && a.target == GDB_EXAMPLE)
        .map(|a| a.executable)
        .ok_or_else(|| format!("cargo built no `{GDB_EXAMPLE}` example"))
}

/// The first `n` frames, innermost first, for a summary line.
fn chain(frames: &[String], n: usize) -> String {
    frames[..n.min(frames.len())].join(" <- ")
}

/// `cargo xtask gdb`: in a debug and a release build of the example, a
/// breakpoint inside a child shows the child's frames, `context_sys_start`
/// and the host frames; an unlinked child's backtrace ends at
/// `context_sys_start` without an error.
pub fn gdb() -> Result<(), String> {
    if !tool_available("gdb", "the gdb backtrace through a child context")? {
        return Ok(());
    }
    for release in [false, true] {
        let profile = if release { "release" } else { "debug" };
        let exe = build_example(release, false)?;
        let (linked, unlinked) =
            check_backtraces(|arg| gdb_backtrace(&exe, arg)).map_err(|e| format!("{profile}, {e}"))?;
        println!("gdb ({profile}), linked child: {} <- ...", chain(&linked, LINKED_FRAMES.len()));
        println!("gdb ({profile}), unlinked child: {}", unlinked.join(" <- "));
    }
    Ok(())
}

/// The checks of [`gdb`] on the aarch64 build of the example, run under
/// qemu-aarch64 with gdb-multiarch attached to its gdb stub; one summary
/// line. Without gdb-multiarch: SKIPPED, or an error under CI.
pub fn gdb_aarch64() -> Result<(), String> {
    if !tool_available("gdb-multiarch", "the aarch64 gdb backtrace through a child context (under qemu)")? {
        return Ok(());
    }
    let t = Instant::now();
    let mut seen = Vec::new();
    for release in [false, true] {
        let profile = if release { "release" } else { "debug" };
        let exe = build_example(release, true)?;
        let (linked, unlinked) = check_backtraces(|arg| qemu_gdb_backtrace(&exe, arg))
            .map_err(|e| format!("aarch64 gdb ({profile}), {e}"))?;
        seen.push(format!("{profile}: {} | unlinked: {}", linked.join(" <- "), unlinked.join(" <- ")));
    }
    println!("aarch64 gdb (gdb-multiarch on qemu's stub, {:.1} s): {}", t.elapsed().as_secs_f64(), seen.join("; "));
    Ok(())
}

// ---- valgrind -------------------------------------------------------------

/// memcheck, failing on any error; definite leaks count as errors.
fn valgrind_command(exe: &Path) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=memcheck",
        "--error-exitcode=1",
        "--track-origins=no",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
        "--quiet",
    ])
    .arg(exe)
    .current_dir(root())
    .env("PROPTEST_CASES", PROPTEST_CASES_UNDER_VALGRIND);
    cmd
}

fn run_under_valgrind(label: &str, exe: &Path, args: &[&str]) -> Result<(), String> {
    println!("valgrind: {label}");
    let t = Instant::now();
    let status = valgrind_command(exe)
        .args(args)
        .status()
        .map_err(|e| format!("could not start valgrind on {}: {e}", exe.display()))?;
    println!(
        "valgrind: {label}: {} in {:.1} s",
        if status.success() { "clean" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    if status.success() { Ok(()) } else { Err(format!("memcheck failed on {label} ({status})")) }
}

/// `cargo xtask valgrind`: every test binary of `context` (unit and
/// integration tests), the `instance` integration tests of
/// [`INSTANCE_VALGRIND_TESTS`], and the gdb example (linked and unlinked),
/// each under memcheck with one test thread. Release builds, for speed.
pub fn valgrind() -> Result<(), String> {
    if !tool_available("valgrind", "memcheck over the context tests")? {
        return Ok(());
    }
    let mut binaries = Vec::new();
    let context =
        artifacts(cargo().args(["test", "--release", "--no-run", "--message-format=json", "-p", "stackful-context"]))?;
    for a in &context {
        if a.profile_test {
            binaries.push((format!("context {} ({})", a.target, a.kind.join(",")), a.executable.clone()));
        }
    }
    let example = context
        .iter()
        .find(|a| a.target == GDB_EXAMPLE && a.kind.iter().any(|k| k == "example"))
        .map(|a| a.executable.clone())
        .ok_or_else(|| format!("cargo test built no `{GDB_EXAMPLE}` example"))?;

    let mut cmd = cargo();
    cmd.args(["test", "--release", "--no-run", "--message-format=json", "-p", "stackful-instance"]);
    for name in INSTANCE_VALGRIND_TESTS {
        cmd.args(["--test", name]);
    }
    for a in artifacts(&mut cmd)? {
        if a.profile_test && INSTANCE_VALGRIND_TESTS.contains(&a.target.as_str()) {
            binaries.push((format!("instance {} (test)", a.target), a.executable));
        }
    }
    if binaries.is_empty() {
        return Err("no test binaries were built".to_string());
    }

    let mut failed = Vec::new();
    for (label, exe) in &binaries {
        if let Err(e) = run_under_valgrind(label, exe, &["--test-threads=1"]) {
            failed.push(e);
        }
    }
    for arg in ["linked", "unlinked"] {
        if let Err(e) = run_under_valgrind(&format!("example {GDB_EXAMPLE} {arg}"), &example, &[arg]) {
            failed.push(e);
        }
    }
    if failed.is_empty() {
        println!("valgrind: {} programs, zero errors", binaries.len() + 2);
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

// ---- cargo's JSON messages ----------------------------------------------

/// An executable cargo built, from a `compiler-artifact` message.
struct Artifact {
    target: String,
    kind: Vec<String>,
    /// Built with the test harness (`profile.test`).
    profile_test: bool,
    executable: PathBuf,
}

/// Runs a cargo command with `--message-format=json` and returns the
/// executables it built. Cargo's progress still goes to the terminal.
fn artifacts(cmd: &mut Command) -> Result<Vec<Artifact>, String> {
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed with {}", out.status));
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = json::parse(line) else { continue };
        if msg.get("reason").and_then(json::Value::as_str) != Some("compiler-artifact") {
            continue;
        }
        let Some(executable) = msg.get("executable").and_then(json::Value::as_str) else { continue };
        let target = msg.get("target");
        found.push(Artifact {
            target: target.and_then(|t| t.get("name")).and_then(json::Value::as_str).unwrap_or_default().to_string(),
            kind: target
                .and_then(|t| t.get("kind"))
                .and_then(json::Value::as_array)
                .map(|ks| ks.iter().filter_map(json::Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            profile_test: msg.get("profile").and_then(|p| p.get("test")).and_then(json::Value::as_bool) == Some(true),
            executable: PathBuf::from(executable),
        });
    }
    Ok(found)
}

/// Just enough JSON to read cargo's messages (std only, like the rest of
/// xtask).
mod json {
    #[derive(Debug, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::String(s) => Some(s),
                _ => None,
            }
        }
        pub fn as_bool(&self) -> Option<bool> {
            match self {
                Value::Bool(b) => Some(*b),
                _ => None,
            }
        }
        pub fn as_array(&self) -> Option<&[Value]> {
            match self {
                Value::Array(items) => Some(items),
                _ => None,
            }
        }
    }

    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser { s: text.as_bytes(), at: 0 };
        let v = p.value()?;
        p.ws();
        if p.at == p.s.len() { Ok(v) } else { Err(format!("trailing text at byte {}", p.at)) }
    }

    struct Parser<'a> {
        s: &'a [u8],
        at: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.s.get(self.at).is_some_and(|c| c.is_ascii_whitespace()) {
                self.at += 1;
            }
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.s.get(self.at) == Some(&c) {
                self.at += 1;
                Ok(())
            } else {
                Err(format!("expected `{}` at byte {}", c as char, self.at))
            }
        }
        fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
            if self.s[self.at..].starts_with(word.as_bytes()) {
                self.at += word.len();
                Ok(v)
            } else {
                Err(format!("bad literal at byte {}", self.at))
            }
        }
        fn value(&mut self) -> Result<Value, String> {
            self.ws();
            match self.s.get(self.at) {
                Some(b'{') => {
                    self.at += 1;
                    let mut fields = Vec::new();
                    self.ws();
                    if self.s.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        return Ok(Value::Object(fields));
                    }
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.eat(b':')?;
                        fields.push((key, self.value()?));
                        self.ws();
                        match self.s.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b'}') => {
                                self.at += 1;
                                return Ok(Value::Object(fields));
                            }
                            _ => return Err(format!("expected `,` or `}}` at byte {}", self.at)),
                        }
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s.get(self.at) == Some(&b']') {
                        self.at += 1;
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.s.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b']') => {
                                self.at += 1;
                                return Ok(Value::Array(items));
                            }
                            _ => return Err(format!("expected `,` or `]` at byte {}", self.at)),
                        }
                    }
                }
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b't') => self.literal("true", Value::Bool(true)),
                Some(b'f') => self.literal("false", Value::Bool(false)),
                Some(b'n') => self.literal("null", Value::Null),
                Some(_) => {
                    let start = self.at;
                    while self.s.get(self.at).is_some_and(|c| b"+-.eE0123456789".contains(c)) {
                        self.at += 1;
                    }
                    let text = std::str::from_utf8(&self.s[start..self.at]).map_err(|e| e.to_string())?;
                    text.parse().map(Value::Number).map_err(|_| format!("bad number at byte {start}"))
                }
                None => Err("unexpected end of JSON".to_string()),
            }
        }
        fn string(&mut self) -> Result<String, String> {
            if self.s.get(self.at) != Some(&b'"') {
                return Err(format!("expected a string at byte {}", self.at));
            }
            self.at += 1;
            let mut out = Vec::new();
            loop {
                let c = *self.s.get(self.at).ok_or("unterminated string")?;
                self.at += 1;
                match c {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let e = *self.s.get(self.at).ok_or("unterminated escape")?;
                        self.at += 1;
                        let ch = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hex = self.s.get(self.at..self.at + 4).ok_or("short \\u escape")?;
                                self.at += 4;
                                let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                                let unit = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                // Surrogate pairs do not occur in paths and
                                // target names we read; keep them visible.
                                char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
                            }
                            other => return Err(format!("bad escape `\\{}`", other as char)),
                        };
                        let mut buf = [0; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => out.push(c),
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_a_cargo_artifact_message() {
            let line = r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"backtrace","test":true},"profile":{"opt_level":"3","debuginfo":1,"test":true},"executable":"/t/a \"b\"\\c","fresh":false,"n":-1.5e2,"x":null,"e":{},"a":[]}"#;
            let v = parse(line).unwrap();
            assert_eq!(v.get("reason").and_then(Value::as_str), Some("compiler-artifact"));
            assert_eq!(v.get("executable").and_then(Value::as_str), Some("/t/a \"b\"\\c"));
            assert_eq!(v.get("profile").and_then(|p| p.get("test")).and_then(Value::as_bool), Some(true));
            assert_eq!(v.get("n"), Some(&Value::Number(-150.0)));
            assert_eq!(v.get("x"), Some(&Value::Null));
            let kinds = v.get("target").and_then(|t| t.get("kind")).and_then(Value::as_array).unwrap();
            assert_eq!(kinds, &[Value::String("test".into())]);
        }

        #[test]
        fn rejects_broken_json() {
            for bad in ["{", r#"{"a" 1}"#, r#"{"a":tru}"#, r#""abc"#, "[1,]x", "{} {}"] {
                assert!(parse(bad).is_err(), "{bad} parsed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The point is to check the constant's contents (an edit may empty it).
    #[allow(clippy::const_is_empty)]
    fn the_valgrind_list_names_instance_tests_that_exist() {
        assert!(!INSTANCE_VALGRIND_TESTS.is_empty(), "no instance test runs under valgrind");
        let dir = root().join("instance").join("tests");
        for (i, name) in INSTANCE_VALGRIND_TESTS.iter().enumerate() {
            let file = dir.join(format!("{name}.rs"));
            assert!(file.is_file(), "INSTANCE_VALGRIND_TESTS names `{name}`, but {} does not exist", file.display());
            assert!(!INSTANCE_VALGRIND_TESTS[i + 1..].contains(name), "`{name}` is listed twice");
        }
    }

    #[test]
    fn gdb_frame_lines_reduce_to_function_names() {
        assert_eq!(
            gdb_frame_function("#0  child_breakpoint_here (x=20) at context/examples/gdb_backtrace.rs:44").as_deref(),
            Some("child_breakpoint_here")
        );
        assert_eq!(
            gdb_frame_function("#2  0x0000555555574629 in context_sys_start () at context_sys_x86_64.S:276").as_deref(),
            Some("context_sys_start")
        );
        assert_eq!(
            gdb_frame_function("#4  gdb_backtrace::host_enters_child () at x.rs:74").as_deref(),
            Some("gdb_backtrace::host_enters_child")
        );
        assert_eq!(gdb_frame_function("#3  0x0000000000000000 in ?? ()").as_deref(), Some("??"));
        assert_eq!(gdb_frame_function("Breakpoint 1, child_breakpoint_here (x=20)"), None);
    }

    /// gdb-multiarch's `bt` on qemu-aarch64's stub, from the debug build.
    const AARCH64_LINKED: &str = "\
Breakpoint 1, gdb_backtrace::child_breakpoint_here (x=20) at context/examples/gdb_backtrace.rs:53
53\t    black_box(x) * 2
#0  gdb_backtrace::child_breakpoint_here (x=20) at context/examples/gdb_backtrace.rs:53
#1  0x0000005500009614 in gdb_backtrace::child_entry (x=20) at context/examples/gdb_backtrace.rs:58
#2  0x0000005500011bf8 in context_sys_start () at /w/context-sys/src/context_sys_aarch64.S:392
#3  0x00000055000099ac in context::context::Context::swap (from=0x55000718c0, to=0x5500071a40) at context/src/context.rs:400
#4  gdb_backtrace::host_enters_child (entry=0x5500009600 <gdb_backtrace::child_entry>) at context/examples/gdb_backtrace.rs:104
#5  0x000000550000a210 in gdb_backtrace::main () at context/examples/gdb_backtrace.rs:136
[Inferior 1 (process 1) killed]
";

    #[test]
    fn aarch64_backtraces_from_qemu_pass_and_their_failures_do_not() {
        let frames: Vec<String> = AARCH64_LINKED.lines().filter_map(gdb_frame_function).collect();
        assert_eq!(frames.len(), 6);
        assert!(check_gdb_frames(AARCH64_LINKED, &frames, LINKED_FRAMES, false).is_ok());
        // The child's stack mmap'd above qemu's main stack: gdb gives up
        // at the step back to the host.
        let stopped = "\
Breakpoint 1, gdb_backtrace::child_breakpoint_here (x=20) at context/examples/gdb_backtrace.rs:53
#0  gdb_backtrace::child_breakpoint_here (x=20) at context/examples/gdb_backtrace.rs:53
#1  0x0000005500009614 in gdb_backtrace::child_entry (x=20) at context/examples/gdb_backtrace.rs:58
#2  0x0000005500011bf8 in context_sys_start () at /w/context-sys/src/context_sys_aarch64.S:392
Backtrace stopped: previous frame inner to this frame (corrupt stack?)
";
        let frames: Vec<String> = stopped.lines().filter_map(gdb_frame_function).collect();
        assert!(check_gdb_frames(stopped, &frames, LINKED_FRAMES, false).is_err());
        // An unlinked child's backtrace must end at the start routine, not
        // run on into whatever its never-saved parent block holds.
        let unlinked = "\
Breakpoint 1, gdb_backtrace::child_breakpoint_here (x=20) at context/examples/gdb_backtrace.rs:53
#0  gdb_backtrace::child_breakpoint_here (x=20) at context/examples/gdb_backtrace.rs:53
#1  0x0000005500009a94 in gdb_backtrace::unlinked_child_entry (x=20) at context/examples/gdb_backtrace.rs:87
#2  0x0000005500011c54 in context_sys_start () at /w/context-sys/src/context_sys_aarch64.S:407
";
        let frames: Vec<String> = unlinked.lines().filter_map(gdb_frame_function).collect();
        assert!(check_gdb_frames(unlinked, &frames, UNLINKED_FRAMES, true).is_ok());
        let run_on = format!("{unlinked}#3  0x0000000000000000 in main ()\n");
        let frames: Vec<String> = run_on.lines().filter_map(gdb_frame_function).collect();
        assert!(check_gdb_frames(&run_on, &frames, UNLINKED_FRAMES, true).is_err());
    }

    #[test]
    fn gdb_checks_demand_order_and_a_clean_end() {
        let frames: Vec<String> = ["f", "m::g", "h"].iter().map(|s| s.to_string()).collect();
        assert!(check_gdb_frames("", &frames, &["f", "g", "h"], true).is_ok());
        assert!(check_gdb_frames("", &frames, &["f", "h"], false).is_ok());
        assert!(check_gdb_frames("", &frames, &["f", "g"], true).is_err(), "h follows the last expected frame");
        assert!(check_gdb_frames("", &frames, &["f", "h", "g"], false).is_err(), "out of order");
        assert!(check_gdb_frames("", &frames, &["g", "h"], false).is_err(), "frame 0 must be the first expected");
        assert!(check_gdb_frames("Backtrace stopped: previous frame inner", &frames, &["f"], false).is_err());
        let garbage: Vec<String> = ["f", "??"].iter().map(|s| s.to_string()).collect();
        assert!(check_gdb_frames("", &garbage, &["f"], false).is_err());
    }
}
