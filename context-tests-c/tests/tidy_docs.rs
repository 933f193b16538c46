//! Tidy checks on the docs: the backtraces and gdb sessions quoted in
//! README.md and docs/DEBUGGING.md come from real runs, and the line
//! numbers in them must stay true as the sources move. For every frame that
//! names a file of this repository the named line must exist and lie in the
//! function the frame names (the nearest `fn NAME` above it in Rust, the
//! nearest `NAME:` label above it in assembly); every source line gdb
//! echoes must read the same in the file today; a quoted `panicked at`
//! line must hold a `panic!`.
//!
//! A caller's frame must also name its callee on the quoted line (when the
//! callee is a repository function reached by a plain call). What a static
//! check cannot see: an edit that moves a quoted call down by whole calls
//! of the same function (a new line that calls the same callee where the
//! old one was). Re-running the commands is the only complete check.
//!
//! When this fails after an edit, re-run the commands the docs quote
//! (`cargo run -p stackful-context --example gdb_backtrace -- print`, its
//! `-- panic` variant, and the gdb session in docs/DEBUGGING.md) and paste
//! their output.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A source position a doc quotes: file (relative to the repository),
/// line, and what the doc says is there.
#[derive(Debug)]
struct Quote {
    doc: &'static str,
    doc_line: usize,
    file: String,
    line: usize,
    /// The column a std backtrace names (1-based; 0 or absent: none).
    col: usize,
    claim: Claim,
    /// For a caller's frame: the function of the frame above it (its
    /// callee), which the quoted line must name, when that callee is one of
    /// this repository's functions reached by a plain call.
    calls: Option<String>,
}

impl Quote {
    /// A quote with no column and no callee to name.
    fn new(doc: &'static str, doc_line: usize, file: String, line: usize, claim: Claim) -> Quote {
        Quote { doc, doc_line, file, line, col: 0, claim, calls: None }
    }
}

#[derive(Debug)]
enum Claim {
    /// The line lies inside this function (the last path segment of a
    /// frame's name, closures stripped).
    InFunction(String),
    /// The line reads exactly this (gdb's source echo).
    Text(String),
    /// The line holds a `panic!`.
    Panics,
    /// gdb echoed line `said` under a frame that names this line: the two
    /// must be the same number.
    EchoOf { said: usize },
}

/// The function a frame name like `a::b::Type::name::{{closure}}` points at.
fn last_segment(name: &str) -> String {
    let name = name.split(" (").next().unwrap();
    let mut parts: Vec<&str> = name.split("::").filter(|p| !p.starts_with("{{")).collect();
    // Generic suffixes (`name<T>`) are not part of the `fn` name.
    let last = parts.pop().unwrap_or(name);
    last.split('<').next().unwrap().to_string()
}

/// A path the doc quotes, if it is one of this repository's files
/// (`./context/src/x.rs` and `context/src/x.rs` both count; toolchain and
/// libc paths do not).
fn repo_file(path: &str) -> Option<String> {
    let mut p = path.strip_prefix("./").unwrap_or(path);
    // gdb prints the assembly's path as the build saw it, absolute
    // (`/work/main/context-sys/src/...`): keep what follows the checkout.
    if p.starts_with('/') {
        p = ["/context-sys/", "/context/", "/instance/", "/context-tests-c/"]
            .iter()
            .find_map(|d| p.find(d).map(|at| &p[at + 1..]))?;
    }
    root().join(p).is_file().then(|| p.to_string())
}

/// Splits `path:LINE` or `path:LINE:COL`.
fn file_line(s: &str) -> Option<(String, usize)> {
    file_line_col(s).map(|(f, l, _)| (f, l))
}

fn file_line_col(s: &str) -> Option<(String, usize, usize)> {
    let mut it = s.trim_end_matches(':').split(':');
    let path = it.next()?;
    let line = it.next()?.parse().ok()?;
    let col = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    Some((repo_file(path)?, line, col))
}

fn quotes(doc: &'static str) -> Vec<Quote> {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    // The gdb frame (file, line) on the line just before, for its echo.
    let mut last_gdb_pos: Option<(String, usize)> = None;
    // The frame above the one being read (its callee): name, and whether it
    // is a repository function reached by a call the caller's line names.
    let mut callee: Option<(String, bool)> = None;
    // The last gdb frame number, to tell a `bt` listing from `frame N`.
    let mut last_gdb_frame: Option<usize> = None;
    // The function of the last `break NAME` in a quoted gdb command.
    let mut break_fn = String::new();
    let names_call = |c: &Option<(String, bool)>| c.as_ref().filter(|(_, plain)| *plain).map(|(n, _)| n.clone());
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        let was_gdb_frame = last_gdb_pos.take();
        if t.starts_with("$ gdb") {
            if let Some(at) = t.find("break ") {
                break_fn = t[at + 6..].split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap().to_string();
            }
            callee = None;
            last_gdb_frame = None;
            continue;
        }
        if t == "..." || t.is_empty() {
            callee = None;
            continue;
        }
        // std's backtrace: "   3: name" then "             at ./file:L:C"
        // (the "at" line is missing for frames without debug info).
        if let Some((n, name)) = t.split_once(": ")
            && n.parse::<usize>().is_ok()
        {
            let next_at = lines.get(i + 1).map(|n| n.trim()).and_then(|n| n.strip_prefix("at "));
            let pos = next_at.and_then(file_line_col);
            let func = last_segment(name);
            if let Some((file, line, col)) = pos {
                let asm = file.ends_with(".S");
                let calls = if asm { None } else { names_call(&callee) };
                out.push(Quote { col, calls, ..Quote::new(doc, i + 2, file, line, Claim::InFunction(func.clone())) });
                callee = Some((func.clone(), !asm && func != "context_sys_start"));
            } else {
                // A frame outside the repository (std, libc): its caller's
                // line names something else (a macro, a wrapper).
                callee = Some((func, false));
            }
            continue;
        }
        // gdb: "#3  0x... in name (args) at file:L" or "Breakpoint 1, name (args) at file:L".
        if (t.starts_with('#') || t.starts_with("Breakpoint 1, "))
            && let Some((head, pos)) = t.rsplit_once(" at ")
            && let Some((file, line)) = file_line(pos)
        {
            let number = t.strip_prefix('#').and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok());
            // A `bt` listing goes #0, #1, ...; `frame N` repeats a number.
            if number.is_none() || number != last_gdb_frame.map(|f| f + 1) {
                callee = None;
            }
            last_gdb_frame = number;
            let name = head.rsplit(" in ").next().unwrap();
            let name = name.strip_prefix("Breakpoint 1, ").unwrap_or(name);
            let name = name.split(" (").next().unwrap();
            let func = last_segment(name);
            let asm = file.ends_with(".S");
            let calls = if asm { None } else { names_call(&callee) };
            out.push(Quote { calls, ..Quote::new(doc, i + 1, file.clone(), line, Claim::InFunction(func.clone())) });
            callee = Some((func.clone(), !asm && func != "context_sys_start"));
            last_gdb_pos = Some((file, line));
            continue;
        }
        // gdb: "Breakpoint 1 at 0x...: file F, line L."
        if let Some(rest) = t.strip_prefix("Breakpoint 1 at ")
            && let Some((_, fl)) = rest.split_once(": file ")
            && let Some((f, l)) = fl.trim_end_matches('.').split_once(", line ")
            && let Some(file) = repo_file(f)
        {
            assert!(!break_fn.is_empty(), "{doc}:{}: a breakpoint quoted without its `break` command", i + 1);
            out.push(Quote::new(doc, i + 1, file, l.parse().unwrap(), Claim::InFunction(break_fn.clone())));
            continue;
        }
        // gdb's echo of the current line, right under the frame: "104\t    code".
        if let Some((n, code)) = l.split_once('\t')
            && let Ok(n) = n.parse::<usize>()
            && let Some((file, line)) = was_gdb_frame
        {
            out.push(Quote::new(doc, i + 1, file.clone(), line, Claim::EchoOf { said: n }));
            out.push(Quote::new(doc, i + 1, file, line, Claim::Text(code.to_string())));
            continue;
        }
        // std's panic message: "panicked at file:L:C:".
        if let Some((_, pos)) = t.split_once("panicked at ")
            && let Some((file, line)) = file_line(pos)
        {
            out.push(Quote::new(doc, i + 1, file, line, Claim::Panics));
        }
    }
    out
}

/// The name of the function (Rust `fn`) or label (assembly) that the line
/// `line` (1-based) of `src` lies in: the nearest one above it.
fn enclosing(file: &str, src: &[&str], line: usize) -> Option<String> {
    let asm = file.ends_with(".S");
    src[..line].iter().rev().find_map(|l| {
        let t = l.trim_start();
        if asm {
            let label = t.strip_suffix(':')?;
            (!label.starts_with('.') && !label.contains(char::is_whitespace)).then(|| label.to_string())
        } else {
            let at = t.find("fn ")?;
            let before = &t[..at];
            // `fn` as a keyword: at the start or after qualifiers.
            if !before.split_whitespace().all(|w| {
                ["pub", "pub(crate)", "unsafe", "extern", "\"C\"", "\"C-unwind\"", "const", "async"].contains(&w)
            }) {
                return None;
            }
            let name = t[at + 3..].split(|c: char| !(c.is_alphanumeric() || c == '_')).next()?;
            Some(name.to_string())
        }
    })
}

fn check(doc: &'static str) -> Vec<String> {
    let qs = quotes(doc);
    assert!(qs.len() >= 5, "{doc}: expected quoted source positions, found {qs:?}");
    let mut bad = Vec::new();
    for q in qs {
        let text = std::fs::read_to_string(root().join(&q.file)).unwrap();
        let src: Vec<&str> = text.lines().collect();
        let at = format!("{}:{}: quotes {}:{}", q.doc, q.doc_line, q.file, q.line);
        if q.line == 0 || q.line > src.len() {
            bad.push(format!("{at}, but the file has {} lines", src.len()));
            continue;
        }
        match &q.claim {
            Claim::InFunction(name) => {
                // A frame's line is code in the body: not the signature,
                // not blank, not a comment; its column starts an expression.
                let code = src[q.line - 1].trim();
                let asm = q.file.ends_with(".S");
                let signature = !asm && code.contains("fn ") && code.ends_with('{');
                // Every Rust frame's line is a call (or the breakpoint's
                // expression): a line of closing braces is not.
                let no_call = !asm && !code.contains('(') && !code.contains('!');
                // In assembly a caller's frame is at its `call`.
                let not_a_call = asm && !code.starts_with("call");
                if code.is_empty() || code.starts_with("//") || signature || not_a_call || no_call {
                    bad.push(format!("{at}, but that line is not code in a body: {code:?}"));
                    continue;
                }
                if q.col > 0 {
                    let c = src[q.line - 1].chars().nth(q.col - 1);
                    if !c.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        bad.push(format!("{at}:{}, but no expression starts there: {:?}", q.col, src[q.line - 1]));
                        continue;
                    }
                }
                let found = enclosing(&q.file, &src, q.line);
                if found.as_deref() != Some(name.as_str()) {
                    bad.push(format!("{at} as inside `{name}`, but that line is in {found:?}"));
                    continue;
                }
                if let Some(callee) = &q.calls
                    && !src[q.line - 1].contains(callee.as_str())
                {
                    bad.push(format!("{at} as the call into `{callee}`, but it reads {:?}", src[q.line - 1]));
                }
            }
            Claim::Text(code) => {
                if src[q.line - 1] != code {
                    bad.push(format!("{at} as {code:?}, but it reads {:?}", src[q.line - 1]));
                }
            }
            Claim::EchoOf { said } => {
                if *said != q.line {
                    bad.push(format!("{at}, but gdb's echo under it says line {said}"));
                }
            }
            Claim::Panics => {
                if !src[q.line - 1].contains("panic!") {
                    bad.push(format!("{at} as a panic, but it reads {:?}", src[q.line - 1]));
                }
            }
        }
    }
    bad
}

#[test]
fn line_numbers_quoted_in_the_docs_match_the_sources() {
    let mut bad = check("README.md");
    bad.extend(check("docs/DEBUGGING.md"));
    assert!(bad.is_empty(), "stale line numbers in the docs (re-run the quoted commands):\n{}", bad.join("\n"));
}

#[test]
fn the_checker_notices_a_wrong_line() {
    // The same parser and rules on a made-up quote that points one
    // function off: the frame says `host_enters_child`, the line is in
    // `main` (the last line of the file).
    let file = "context/examples/gdb_backtrace.rs";
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let src: Vec<&str> = text.lines().collect();
    assert_eq!(enclosing(file, &src, src.len()).as_deref(), Some("main"));
    let asm = "context-sys/src/context_sys_x86_64.S";
    let text = std::fs::read_to_string(root().join(asm)).unwrap();
    let src: Vec<&str> = text.lines().collect();
    let start = src.iter().position(|l| l.trim() == "context_sys_start:").unwrap() + 1;
    assert_eq!(enclosing(asm, &src, start + 3).as_deref(), Some("context_sys_start"));
    assert_eq!(last_segment("context::context::Context::swap"), "swap");
    assert_eq!(last_segment("gdb_backtrace::main::{{closure}}"), "main");
}
