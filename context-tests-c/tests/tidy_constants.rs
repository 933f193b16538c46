//! Tidy check: the status codes of `instance/include/instance.h` (`#define
//! INSTANCE_*`) and the Rust constants of `instance` (`pub const
//! INSTANCE_*` in `instance/src`) are one set with one value each.
//!
//! Unlike `context_sys.h`, whose numbers the build script turns into Rust
//! constants, `instance.h` and `instance/src/yielding.rs` both write the
//! numbers down (the C guest and the Rust side must agree on them, and C
//! cannot include Rust). Both files are parsed: the header with the
//! workspace's `#define` parser, the Rust side by reading `const` items.

#[path = "../../context-sys/build/defines.rs"]
mod defines;

use std::collections::BTreeMap;

use test_support::repo::{files_with_extension, root};

const HEADER: &str = "instance/include/instance.h";
const RUST_SRC: &str = "instance/src";
const PREFIX: &str = "INSTANCE_";

/// The value of a Rust integer literal: `0`, `-3`, `0x1f`, `1_000`,
/// `-1i32`. `None` for anything else (an expression, another constant).
fn rust_integer(text: &str) -> Option<i128> {
    let text = text.trim().replace('_', "");
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start().to_string()),
        None => (false, text),
    };
    let (radix, digits) = match text.get(..2) {
        Some("0x") => (16, &text[2..]),
        Some("0o") => (8, &text[2..]),
        Some("0b") => (2, &text[2..]),
        _ => (10, &text[..]),
    };
    let suffix_at = digits.find(['i', 'u']).unwrap_or(digits.len());
    let (digits, suffix) = digits.split_at(suffix_at);
    if !["", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize"].contains(&suffix) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Every `const NAME: TYPE = VALUE;` of `src` whose name starts with
/// `prefix`, with where it is: name -> (value or the text that is not one,
/// line).
fn rust_consts(src: &str, prefix: &str) -> Vec<(String, Result<i128, String>, usize)> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        let t = t.strip_prefix("pub(crate) ").or_else(|| t.strip_prefix("pub ")).unwrap_or(t);
        let Some(item) = t.strip_prefix("const ") else { continue };
        let Some((name, rest)) = item.split_once(':') else { continue };
        if !name.starts_with(prefix) {
            continue;
        }
        let value = rest.split_once('=').map(|(_, v)| v.trim().trim_end_matches(';').trim()).unwrap_or("");
        out.push((name.trim().to_string(), rust_integer(value).ok_or_else(|| value.to_string()), i + 1));
    }
    out
}

/// Compares the two sets; returns what disagrees.
fn compare(header: &[defines::Define], rust: &[(String, Result<i128, String>, usize, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    let c: BTreeMap<&str, &defines::Define> =
        header.iter().filter(|d| d.name.starts_with(PREFIX)).map(|d| (d.name.as_str(), d)).collect();
    let mut r: BTreeMap<&str, (&Result<i128, String>, String)> = BTreeMap::new();
    for (name, value, line, file) in rust {
        if let Some((_, at)) = r.insert(name.as_str(), (value, format!("{file}:{line}"))) {
            bad.push(format!("{file}:{line}: {name} is defined twice in Rust (also at {at})"));
        }
    }
    for (name, d) in &c {
        match r.get(name) {
            None => bad.push(format!("{HEADER}:{}: {name} = {} has no Rust constant in {RUST_SRC}", d.line, d.value)),
            Some((Err(text), at)) => bad.push(format!("{at}: {name} = `{text}` is not an integer literal")),
            Some((Ok(v), at)) if *v != d.value => {
                bad.push(format!("{name}: {HEADER}:{} says {}, {at} says {v}", d.line, d.value))
            }
            Some(_) => {}
        }
    }
    for (name, (_, at)) in &r {
        if !c.contains_key(name) {
            bad.push(format!("{at}: {name} has no #define in {HEADER}"));
        }
    }
    bad
}

fn rust_side() -> Vec<(String, Result<i128, String>, usize, String)> {
    let mut out = Vec::new();
    for file in files_with_extension(&root().join(RUST_SRC), "rs") {
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        let src = std::fs::read_to_string(&file).unwrap();
        out.extend(rust_consts(&src, PREFIX).into_iter().map(|(n, v, l)| (n, v, l, rel.clone())));
    }
    out
}

#[test]
fn instance_h_status_codes_match_the_rust_constants() {
    let header = defines::numeric(&std::fs::read_to_string(root().join(HEADER)).unwrap());
    let rust = rust_side();
    assert!(rust.len() >= 4, "found only {rust:?} in {RUST_SRC}");
    let bad = compare(&header, &rust);
    assert!(bad.is_empty(), "{HEADER} and the Rust constants disagree:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_notices_each_kind_of_disagreement() {
    let header = defines::numeric(
        "#ifndef INSTANCE_H\n#define INSTANCE_H\n#define INSTANCE_OK 0\n#define INSTANCE_E_A (-1)\n#define INSTANCE_E_C (-3)\n",
    );
    let rust_src = "pub const INSTANCE_OK: i32 = 0;\npub const INSTANCE_E_A: i32 = -2;\n\
                    pub const INSTANCE_E_B: i32 = -2;\nconst OTHER: i32 = 5;\npub(crate) const INSTANCE_X: i32 = A + 1;\n";
    let rust: Vec<_> = rust_consts(rust_src, PREFIX).into_iter().map(|(n, v, l)| (n, v, l, "y.rs".into())).collect();
    assert_eq!(
        compare(&header, &rust),
        [
            "INSTANCE_E_A: instance/include/instance.h:4 says -1, y.rs:2 says -2",
            "instance/include/instance.h:5: INSTANCE_E_C = -3 has no Rust constant in instance/src",
            "y.rs:3: INSTANCE_E_B has no #define in instance/include/instance.h",
            "y.rs:5: INSTANCE_X has no #define in instance/include/instance.h",
        ]
    );
    assert_eq!(rust_integer("-1i32"), Some(-1));
    assert_eq!(rust_integer("0x1_f"), Some(31));
    assert_eq!(rust_integer("A + 1"), None);
}
