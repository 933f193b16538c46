//! Tidy checks on the docs: the files and functions they name exist.
//!
//! README.md, every crate's README.md and docs/*.md name files in inline
//! code (`` `src/stack.rs` ``, `` `c/layout.c` ``) and functions
//! (`` `redirect_to_host` ``, `` `Context::init` ``, `` `terminate()` ``).
//! After a rename or a move those go stale without any build noticing, so:
//!
//! * every inline code span that is a path must name a file or directory of
//!   the repository, relative to the root, to the doc's folder, or to one of
//!   the crates' folders (a bare file name, `instance.h`, anywhere);
//! * every inline code span that names a function (`name(...)`, `fn name`,
//!   a `Path::name`, or a snake_case name such as `handle_fault`) must name
//!   an identifier that occurs in the code of the repository's sources
//!   (`.rs`, `.c`, `.h`, `.S`, `.cpp`; comments do not count, so a name
//!   that survives only in a comment is stale too), or a test or file of
//!   that name, or one of the few system names in [`EXTERNAL`].
//!
//! Fenced code blocks are not read: they are commands and output, which
//! `tidy_docs.rs` checks where they quote line numbers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use test_support::repo::{files, root, strip_comments};

/// Names the docs use that belong to the kernel or libc, not to this
/// repository's code: system calls as strace shows them, and a libc
/// function the docs discuss but the code never calls.
const EXTERNAL: &[&str] = &["rt_sigprocmask", "rt_sigreturn", "pthread_cancel"];

/// File name endings that make an inline code span a path.
const PATH_EXTENSIONS: &[&str] = &[".rs", ".c", ".h", ".S", ".cpp", ".md", ".toml", ".yml"];

const SOURCE_EXTENSIONS: &[&str] = &["rs", "c", "h", "S", "cpp"];

/// The crates' folders (the workspace members), as paths from the root.
fn crate_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(root())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

/// The docs this test reads, as paths from the root.
fn docs() -> Vec<String> {
    let mut docs = vec!["README.md".to_string()];
    docs.extend(crate_dirs().into_iter().map(|d| format!("{d}/README.md")).filter(|p| root().join(p).is_file()));
    let mut more: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| format!("docs/{}", e.file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// The identifiers in `code`.
fn identifiers(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_'))
}

/// What the sources provide: identifiers of their code (but the tidy
/// tests'), and the stems of every file name (test and example names).
struct Known {
    words: BTreeSet<String>,
}

impl Known {
    fn of_repository() -> Known {
        let mut words: BTreeSet<String> = EXTERNAL.iter().map(|s| s.to_string()).collect();
        for path in files(&root()) {
            let name = path.file_name().unwrap().to_string_lossy();
            words.insert(name.split('.').next().unwrap().to_string());
            // The tidy tests' own texts hold made-up stale names.
            let tidy = name.starts_with("tidy_");
            if !tidy && path.extension().is_some_and(|x| SOURCE_EXTENSIONS.iter().any(|s| x == *s)) {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                words.extend(identifiers(&strip_comments(&text)).map(str::to_string));
            }
        }
        Known { words }
    }
}

/// Every inline code span of a Markdown text outside fenced blocks, with
/// its 1-based line.
fn inline_code(doc: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in doc.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let parts: Vec<&str> = line.split('`').collect();
        // Odd parts are inside backticks; an unclosed last one is not code.
        for k in (1..parts.len().saturating_sub(1)).step_by(2) {
            if !parts[k].is_empty() {
                out.push((i + 1, parts[k]));
            }
        }
    }
    out
}

/// The path an inline code span names, if it is one: it ends in a known
/// extension or in `/`, or it has a `/` and its first component is a
/// folder of the repository (`bench-c/swap_sequences`, `.ci/run`). A
/// `:LINE` suffix is dropped. Commands, globs, placeholders and absolute
/// paths are not paths of the repository.
fn as_path(span: &str, is_dir: impl Fn(&str) -> bool) -> Option<&str> {
    let mut path = span;
    while let Some((head, tail)) = path.rsplit_once(':') {
        if tail.is_empty() || !tail.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        path = head;
    }
    if path.is_empty()
        || path.starts_with(['/', '-', '.']) && !path.starts_with(".ci/") && !path.starts_with(".github/")
        || path.chars().any(|c| c.is_whitespace() || "*<>…$(){}=|&,;'\"".contains(c))
    {
        return None;
    }
    let has_extension = PATH_EXTENSIONS.iter().any(|x| path.ends_with(x) && path.len() > x.len());
    let first_is_dir = path.split_once('/').is_some_and(|(first, _)| is_dir(first));
    (has_extension || path.ends_with('/') || first_is_dir).then_some(path)
}

/// The function (or item) name an inline code span names, if it names one:
/// `fn name`, `name(...)`, `name::<T>(...)`, `Path::name`, or a snake_case
/// `name` with an underscore. Prefixes (`stack_`) and anything followed by
/// other text (`init_run_return/ours`, a command) are not names.
fn as_name(span: &str) -> Option<&str> {
    let ident_end = |s: &str| s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    if let Some(at) = span.find("fn ").filter(|&at| at == 0 || span[..at].ends_with(' ')) {
        let rest = &span[at + 3..];
        let name = &rest[..ident_end(rest)];
        return (!name.is_empty()).then_some(name);
    }
    // A leading path, `a::b::`.
    let mut rest = span;
    let mut has_path = false;
    loop {
        let end = ident_end(rest);
        if end == 0 || rest[..end].starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let (name, after) = rest.split_at(end);
        if let Some(next) = after.strip_prefix("::")
            && next.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        {
            has_path = true;
            rest = next;
            continue;
        }
        if name.ends_with('_') {
            return None;
        }
        let snake = name.contains('_')
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let called = after.starts_with('(') || after.starts_with("::<");
        return (called || after.is_empty() && (has_path || snake)).then_some(name);
    }
}

/// The problems of one doc's text: paths that do not exist, names that
/// occur nowhere in the code.
fn check_doc(
    doc: &str,
    text: &str,
    exists: impl Fn(&str) -> bool,
    is_dir: impl Fn(&str) -> bool,
    known: &Known,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (line, span) in inline_code(text) {
        if let Some(path) = as_path(span, &is_dir) {
            if !exists(path) {
                bad.push(format!("{doc}:{line}: `{span}` names a path that does not exist"));
            }
        } else if let Some(name) = as_name(span)
            && !known.words.contains(name)
        {
            bad.push(format!("{doc}:{line}: `{span}` names `{name}`, which occurs in no source's code"));
        }
    }
    bad
}

/// Whether `path`, named in `doc`, exists: from the root, the doc's folder,
/// or a crate's folder; a bare file name anywhere in the repository.
fn path_exists(doc: &str, path: &str, files: &[PathBuf], crates: &[String]) -> bool {
    let root = root();
    if !path.contains('/') {
        return files.iter().any(|f| f.file_name().is_some_and(|n| n == path));
    }
    let doc_dir = Path::new(doc).parent().unwrap_or(Path::new("")).to_path_buf();
    std::iter::once(PathBuf::new())
        .chain(std::iter::once(doc_dir))
        .chain(crates.iter().map(PathBuf::from))
        .any(|base| root.join(base).join(path).exists())
}

#[test]
fn the_docs_name_files_and_functions_that_exist() {
    let known = Known::of_repository();
    let files = files(&root());
    let crates = crate_dirs();
    let mut bad = Vec::new();
    let mut checked = 0;
    for doc in docs() {
        let text = std::fs::read_to_string(root().join(&doc)).unwrap();
        let doc_dir = Path::new(&doc).parent().unwrap().to_path_buf();
        let is_dir = |first: &str| {
            [PathBuf::new(), doc_dir.clone()]
                .into_iter()
                .chain(crates.iter().map(PathBuf::from))
                .any(|b| root().join(b).join(first).is_dir())
        };
        checked += inline_code(&text).len();
        bad.extend(check_doc(&doc, &text, |p| path_exists(&doc, p, &files, &crates), is_dir, &known));
    }
    assert!(checked > 500, "read only {checked} inline code spans: is the doc list right?");
    assert!(
        bad.is_empty(),
        "the docs name what does not exist (rename it in the doc, or in the code):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_notices_a_stale_name_and_path() {
    let known = Known { words: ["redirect_to_host", "enter", "Instance", "stack"].map(String::from).into() };
    let doc = "\
`handle_fault` then `redirect_to_host`; see `Instance::enter` and `switch_to_guest()`.
`src/stack.rs`, `src/gone.rs` and `cargo run -p x` and `stack_*`, `run_`, `init_run_return/ours`.
```text
switch_to_guest in a fenced block is output, not a name
```
";
    let exists = |p: &str| p == "src/stack.rs";
    let is_dir = |d: &str| d == "src";
    let bad = check_doc("x.md", doc, exists, is_dir, &known);
    assert_eq!(
        bad,
        [
            "x.md:1: `handle_fault` names `handle_fault`, which occurs in no source's code",
            "x.md:1: `switch_to_guest()` names `switch_to_guest`, which occurs in no source's code",
            "x.md:2: `src/gone.rs` names a path that does not exist",
        ]
    );
}

#[test]
fn spans_are_told_apart() {
    let no_dirs = |_: &str| false;
    assert_eq!(as_path("context/tests/backtrace.rs:61", no_dirs), Some("context/tests/backtrace.rs"));
    assert_eq!(as_path("benches/ops/", no_dirs), Some("benches/ops/"));
    assert_eq!(as_path("bench-c/swap_sequences", |d| d == "bench-c"), Some("bench-c/swap_sequences"));
    assert_eq!(as_path("ours/this", no_dirs), None);
    assert_eq!(as_path("target/criterion/<group>/new/estimates.json", no_dirs), None);
    assert_eq!(as_path("/proc/self/statm", no_dirs), None);
    assert_eq!(as_path(".S", no_dirs), None);
    assert_eq!(as_name("unsafe fn run(entry, &[Val]) -> Result<UntypedRetVal, Error>"), Some("run"));
    assert_eq!(as_name("yield_value::<Y, R>(y) -> Result<R, YieldError>"), Some("yield_value"));
    assert_eq!(as_name("context::Context::set"), Some("set"));
    assert_eq!(as_name("terminable(|| ...)"), Some("terminable"));
    assert_eq!(as_name("handle_fault"), Some("handle_fault"));
    assert_eq!(as_name("Instance"), None, "a type alone is not checked");
    assert_eq!(as_name("cargo xtask ci"), None);
    assert_eq!(as_name("stack_"), None);
    assert_eq!(as_name("init_run_return/ours"), None);
    assert_eq!(as_name("CONTEXT_SYS_VALGRIND_*"), None);
}
