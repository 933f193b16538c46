//! The repository as the tidy tests read it: where it is, its files, and
//! source text without comments.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's folder).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("test-support lives in the workspace").to_path_buf()
}

/// Every file under `dir`, recursively, but build output (`target`) and
/// git's (`.git`), sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            let path = e.path();
            if path.is_dir() { walk(&path, out) } else { out.push(path) }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The files under `dir` (see [`files`]) whose extension is `ext`.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    files(dir).into_iter().filter(|p| p.extension().is_some_and(|x| x == ext)).collect()
}

/// C, assembly or Rust source with its `/* */` comments blanked (their
/// newlines kept, so line numbers stay) and its `//` comments cut. Crude:
/// a `//` or `/*` inside a string literal starts a comment too, which can
/// only hide text, never invent it.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        let before = &rest[..at];
        // A `//` earlier on the same line comments the `/*` out.
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        if before[line_start..].contains("//") {
            let eol = rest[at..].find('\n').map_or(rest.len(), |n| at + n);
            out.push_str(&rest[..eol]);
            rest = &rest[eol..];
            continue;
        }
        out.push_str(before);
        let end = rest[at + 2..].find("*/").map_or(rest.len(), |e| at + 2 + e + 2);
        out.extend(rest[at..end].chars().filter(|&c| c == '\n'));
        out.push(' ');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_go_and_lines_stay() {
        assert_eq!(strip_comments("a // b\nc /* d\ne */ f"), "a \nc \n  f");
        assert_eq!(strip_comments("x // no /* block\ny */ z"), "x \ny */ z");
        assert_eq!(strip_comments("/* unterminated\n"), "\n ");
    }

    #[test]
    fn the_root_holds_the_workspace_manifest() {
        assert!(root().join("Cargo.toml").is_file());
        let here = files_with_extension(&root().join("test-support"), "rs");
        assert!(here.iter().any(|p| p.ends_with("src/repo.rs")), "{here:?}");
    }
}
