//! Tidy checks on the crate's shape, read from its sources: the top-level
//! modules import each other without a circle (so each can be read, and
//! ported, from the bottom up), and the thread-local current-run pointer is
//! turned into a reference in one place only, `run::with_current`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc comments name other modules
/// freely; only code counts as an import).
fn code(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n")
}

/// The top-level module a file belongs to (`run/exit.rs` → `run`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Module → the other top-level modules its code names as `crate::m`.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).filter(|m| m != "lib").collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let from = module_of(file);
        if from == "lib" {
            continue;
        }
        let text = code(&std::fs::read_to_string(file).unwrap());
        for (at, _) in text.match_indices("crate::") {
            let name: String =
                text[at + "crate::".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if name != from && modules.contains(&name) {
                graph.get_mut(&from).unwrap().insert(name);
            }
        }
        // `use crate::{a, b}` forms.
        for (at, _) in text.match_indices("crate::{") {
            let inner = &text[at + "crate::{".len()..];
            let inner = &inner[..inner.find('}').unwrap_or(0)];
            for part in inner.split(',') {
                let name = part.trim().split("::").next().unwrap().to_string();
                if name != from && modules.contains(&name) {
                    graph.get_mut(&from).unwrap().insert(name);
                }
            }
        }
    }
    graph
}

/// A circle in `graph`, as the list of modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_circle_among_the_modules() {
    let graph = import_graph();
    assert!(graph.len() >= 10, "expected the crate's modules, found {graph:?}");
    // The run core is imported by the layers above it.
    assert!(graph["signal"].contains("run") && graph["region"].contains("run"), "{graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import circle: {}\nwhole graph: {graph:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    graph.get_mut("c").unwrap().insert("a".to_string());
    assert_eq!(find_cycle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn the_current_run_pointer_is_dereferenced_only_in_with_current() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut uses = Vec::new();
    for file in &files {
        let text = code(&std::fs::read_to_string(file).unwrap());
        for (n, line) in text.lines().enumerate() {
            // `current()` as a free function call (not `thread::current()`
            // or a method like proptest's `.current()`).
            let free_call = line
                .match_indices("current()")
                .any(|(at, _)| !line[..at].ends_with('.') && !line[..at].ends_with("::") && !line[..at].ends_with('_'));
            if free_call {
                uses.push(format!("{}:{}: {}", file.strip_prefix(src()).unwrap().display(), n + 1, line.trim()));
            }
        }
    }
    // The definition, `with_current`'s dereference and `Activation::begin`'s
    // read of the outer run, all in run/mod.rs.
    assert!(
        uses.iter().all(|u| u.starts_with("run/mod.rs:")),
        "current() used outside the run core:\n{}",
        uses.join("\n")
    );
    assert!(uses.iter().any(|u| u.contains("current().as_ref()")), "with_current's dereference not found: {uses:?}");
    assert_eq!(uses.len(), 3, "{}", uses.join("\n"));
}
