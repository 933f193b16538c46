//! Tidy checks on the docs: the backtraces and gdb sessions quoted in
//! README.md and docs/DEBUGGING.md come from real runs, and the line
//! numbers in them must stay true as the sources move. For every frame that
//! names a file of this repository the named line must exist and lie in the
//! function the frame names (the nearest `fn NAME` above it in Rust, the
//! nearest `NAME:` label above it in assembly); every source line gdb
//! echoes must read the same in the file today; a quoted `panicked at`
//! line must hold a `panic!`.
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
    let mut last_gdb_pos: Option<(String, usize)> = None;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        // std's backtrace: "   3: name" then "             at ./file:L:C".
        if let Some(rest) = t.strip_prefix("at ")
            && let Some((file, line, col)) = file_line_col(rest)
            && i > 0
            && let Some((_, name)) = lines[i - 1].trim().split_once(": ")
        {
            out.push(Quote { doc, doc_line: i + 1, file, line, col, claim: Claim::InFunction(last_segment(name)) });
            continue;
        }
        // gdb: "#3  0x... in name (args) at file:L" or "Breakpoint 1, name (args) at file:L".
        if (t.starts_with('#') || t.starts_with("Breakpoint 1, "))
            && let Some((head, pos)) = t.rsplit_once(" at ")
            && let Some((file, line)) = file_line(pos)
        {
            let name = head.rsplit(" in ").next().unwrap();
            let name = name.strip_prefix("Breakpoint 1, ").unwrap_or(name);
            let name = name.split_whitespace().last().filter(|_| !name.contains('(')).unwrap_or(name);
            out.push(Quote {
                doc,
                doc_line: i + 1,
                file: file.clone(),
                line,
                col: 0,
                claim: Claim::InFunction(last_segment(name)),
            });
            last_gdb_pos = Some((file, line));
            continue;
        }
        // gdb: "Breakpoint 1 at 0x...: file F, line L."
        if let Some(rest) = t.strip_prefix("Breakpoint 1 at ")
            && let Some((_, fl)) = rest.split_once(": file ")
            && let Some((f, l)) = fl.trim_end_matches('.').split_once(", line ")
            && let Some(file) = repo_file(f)
        {
            out.push(Quote {
                doc,
                doc_line: i + 1,
                file,
                line: l.parse().unwrap(),
                col: 0,
                claim: Claim::InFunction(String::new()),
            });
            continue;
        }
        // gdb's echo of the current line: "104\t    code".
        if let Some((n, code)) = l.split_once('\t')
            && let Ok(n) = n.parse::<usize>()
            && let Some((file, line)) = &last_gdb_pos
            && *line == n
        {
            out.push(Quote {
                doc,
                doc_line: i + 1,
                file: file.clone(),
                line: n,
                col: 0,
                claim: Claim::Text(code.to_string()),
            });
            continue;
        }
        // std's panic message: "panicked at file:L:C:".
        if let Some((_, pos)) = t.split_once("panicked at ")
            && let Some((file, line)) = file_line(pos)
        {
            out.push(Quote { doc, doc_line: i + 1, file, line, col: 0, claim: Claim::Panics });
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
                // In assembly a caller's frame is at its `call`.
                let not_a_call = asm && !code.starts_with("call");
                if code.is_empty() || code.starts_with("//") || signature || not_a_call {
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
                if !name.is_empty() && found.as_deref() != Some(name.as_str()) {
                    bad.push(format!("{at} as inside `{name}`, but that line is in {found:?}"));
                }
            }
            Claim::Text(code) => {
                if src[q.line - 1] != code {
                    bad.push(format!("{at} as {code:?}, but it reads {:?}", src[q.line - 1]));
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
