//! Reading the `#define`s of a C header: the one parser of the workspace.
//!
//! The headers (`include/context_sys.h`, `context-tests-c/c/ctc.h`,
//! `instance/include/instance.h`) are where numbers shared with assembly and
//! C are written down once. Several programs read them back, and all of
//! them include this file by path instead of each keeping a parser:
//!
//! * `context-sys/build.rs` (`#[path = "build/defines.rs"] mod defines;`),
//!   which turns `CONTEXT_SYS_*` into the Rust constants of
//!   `context_sys::layout` (so this file is part of the package: see
//!   `include` in `context-sys/Cargo.toml`);
//! * `context-tests-c/build.rs`, for `CTC_*` of `c/ctc.h`;
//! * `xtask` (`cargo xtask layout`), which also holds this parser's unit
//!   tests (`xtask/src/defines_tests.rs`);
//! * the tidy tests of `context-tests-c/tests/`.
//!
//! So it uses std only and names nothing through `crate::`: it must compile
//! as a module of each of them. Not every includer uses every item.
//!
//! What it understands is deliberately small, the subset the headers use:
//! one `#define NAME VALUE` per line (spaces allowed after `#`), `VALUE` an
//! integer literal (decimal, `0x` hex or `0` octal, with optional `u`/`l`
//! suffixes, an optional `-`, optionally in parentheses) or, for
//! [`string`], one string literal. A trailing `/* ... */` or `// ...`
//! comment is ignored. Anything else (function-like macros, expressions,
//! continued lines) is not a number and is left out, never misread: a
//! define that a consumer needs and that is missing is then that
//! consumer's error, by name.
#![allow(dead_code)]

/// One `#define` of a header whose value is an integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Define {
    /// The macro's name, e.g. `CONTEXT_SYS_OFF_RBX`.
    pub name: String,
    /// Its value. Wide enough for every `int64_t` and `uint64_t`.
    pub value: i128,
    /// The 1-based line of the header it is on, for messages.
    pub line: usize,
}

/// Every numeric `#define` of `header` that applies on the architecture
/// this program was compiled for (see [`numeric_for_arch`]), in the order
/// they appear. A build script must use [`numeric_for_arch`] with the
/// target's architecture instead: it is compiled for the host.
pub fn numeric(header: &str) -> Vec<Define> {
    numeric_for_arch(header, std::env::consts::ARCH)
}

/// Every numeric `#define` of `header` that applies on the architecture
/// `arch` (a Rust `target_arch` name: `x86_64`, `aarch64`), in the order
/// they appear.
///
/// The headers keep one section per architecture:
/// `#if defined(__x86_64__)` ... `#elif defined(__aarch64__)` ... `#else`
/// ... `#endif` (`#ifdef __x86_64__` too). Lines in a section of another
/// architecture are skipped. Any other conditional (`#ifndef
/// __ASSEMBLER__`, include guards) is not evaluated: both of its branches
/// are read, as before architectures were known.
pub fn numeric_for_arch(header: &str, arch: &str) -> Vec<Define> {
    lines_for_arch(header, arch)
        .filter_map(|(i, line)| {
            let (name, rest) = define_line(line)?;
            let value = integer(strip_comment(rest))?;
            Some(Define { name: name.to_string(), value, line: i + 1 })
        })
        .collect()
}

/// The C macro that names Rust's `target_arch` `arch` in an `#if`.
fn arch_macro(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" => Some("__x86_64__"),
        "aarch64" => Some("__aarch64__"),
        _ => None,
    }
}

/// The architecture macro an `#if`/`#elif` line tests, if it is one of the
/// two forms the headers use: `defined(__x86_64__)` or `defined __x86_64__`
/// (and `#ifdef __x86_64__`).
fn tested_arch(condition: &str) -> Option<&str> {
    let c = condition.trim();
    let c = c.strip_prefix("defined").map(str::trim).unwrap_or(c);
    let c = c.strip_prefix('(').and_then(|c| c.strip_suffix(')')).unwrap_or(c).trim();
    ["__x86_64__", "__aarch64__"].into_iter().find(|m| *m == c)
}

/// `(index, line)` of the lines of `header` outside other architectures'
/// sections.
pub fn lines_for_arch<'a>(header: &'a str, arch: &'a str) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    // One entry per open conditional: None for one that is not about the
    // architecture, Some((active now, some branch taken)) for one that is.
    let mut open: Vec<Option<(bool, bool)>> = Vec::new();
    let want = arch_macro(arch);
    header.lines().enumerate().filter(move |(_, line)| {
        let directive = line.trim_start().strip_prefix('#').map(str::trim_start);
        if let Some(d) = directive {
            let word_end = d.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(d.len());
            let (word, rest) = d.split_at(word_end);
            let rest = strip_comment(rest);
            match word {
                "if" | "ifdef" => {
                    open.push(tested_arch(rest).map(|m| (Some(m) == want, Some(m) == want)));
                    return false;
                }
                "ifndef" => {
                    open.push(None);
                    return false;
                }
                "elif" => {
                    if let Some(Some((active, taken))) = open.last_mut() {
                        let this = tested_arch(rest).is_some_and(|m| Some(m) == want) && !*taken;
                        *active = this;
                        *taken |= this;
                    }
                    return false;
                }
                "else" => {
                    if let Some(Some((active, taken))) = open.last_mut() {
                        *active = !*taken;
                        *taken = true;
                    }
                    return false;
                }
                "endif" => {
                    open.pop();
                    return false;
                }
                _ => {}
            }
        }
        open.iter().all(|c| c.is_none_or(|(active, _)| active))
    })
}

/// The numeric defines whose names start with `prefix`, as (the name without
/// the prefix, value), in header order: `with_prefix(&d, "CONTEXT_SYS_OFF_")`
/// yields `("RSP", 0)`, `("RBX", 8)`, ...
pub fn with_prefix<'a>(defines: &'a [Define], prefix: &'a str) -> impl Iterator<Item = (&'a str, i128)> + 'a {
    defines.iter().filter_map(move |d| Some((d.name.strip_prefix(prefix)?, d.value)))
}

/// The value of the numeric define `name`, if `defines` has it.
pub fn get(defines: &[Define], name: &str) -> Option<i128> {
    defines.iter().find(|d| d.name == name).map(|d| d.value)
}

/// The value of `#define name "..."` in `header`: one C string literal on
/// the define's line, with the escapes `\n`, `\\` and `\"` (the only ones
/// the headers use; any other escape, or text after the literal, gives
/// `None`).
pub fn string(header: &str, name: &str) -> Option<String> {
    let rest = header.lines().filter_map(define_line).find(|(n, _)| *n == name)?.1;
    let literal = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut value = String::new();
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                c @ ('\\' | '"') => value.push(c),
                _ => return None,
            },
            '"' => return None,
            c => value.push(c),
        }
    }
    Some(value)
}

/// `(name, the rest of the line)` of an object-like `#define`, or `None`
/// for any other line (including `#define F(x) ...` and `#define X` with no
/// value).
fn define_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start().strip_prefix("define")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let (name, value) = rest.split_at(end);
    let starts_like_an_identifier = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    // A function-like macro has its `(` right after the name; an
    // object-like one needs whitespace before its value.
    if !starts_like_an_identifier || !value.starts_with([' ', '\t']) {
        return None;
    }
    Some((name, value))
}

/// `text` without a trailing comment, trimmed.
fn strip_comment(text: &str) -> &str {
    let end = [text.find("/*"), text.find("//")].into_iter().flatten().min().unwrap_or(text.len());
    text[..end].trim()
}

/// The value of a C integer constant as the headers write it: `8`, `0x1f80`,
/// `010` (octal), `64u`, `(-1)`.
fn integer(text: &str) -> Option<i128> {
    let mut text = text.trim();
    while let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    let digits = text.trim_end_matches(['u', 'U', 'l', 'L']);
    if digits.len() < text.len().saturating_sub(3) {
        return None; // more suffix letters than `ull` allows
    }
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // u64 is the widest type a header constant may have.
    let magnitude = i128::from(u64::from_str_radix(digits, radix).ok()?);
    Some(if negative { -magnitude } else { magnitude })
}
