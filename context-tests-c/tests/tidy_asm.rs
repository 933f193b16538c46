//! Tidy checks on the assembly that shares the register block's layout.
//!
//! 1. **Offsets by name only.** In every `.S` file that includes
//!    `context_sys.h` (`context-sys/src/*.S`, `context-tests-c/bench-c/`),
//!    each memory operand that addresses a register block must have one of
//!    the header's `CONTEXT_SYS_OFF_*` names as its whole displacement, and
//!    each one that reads a fresh context's boot frame one of its
//!    `CONTEXT_SYS_BOOT_*` names: no number (`8(%rdi)`, or `(%rdi)` for
//!    offset 0), no arithmetic (`CONTEXT_SYS_OFF_RBX+8`), no name of the
//!    file's own. The names must also fit what the instruction moves (a
//!    store of `%r13` is `CONTEXT_SYS_OFF_R13`, `stmxcsr` is
//!    `CONTEXT_SYS_OFF_MXCSR`, a `movq` into `%xmm3` from the boot frame is
//!    `CONTEXT_SYS_BOOT_XMM3`, a CFI rule for DWARF register 3 is
//!    `CONTEXT_SYS_OFF_RBX`), and the file may include no other header and
//!    `#define` no `CONTEXT_SYS_*` of its own. Together these make the
//!    assembler's displacements the header's numbers, for the right fields,
//!    by construction; `cargo xtask layout` therefore no longer
//!    disassembles the built objects to compare offsets.
//!
//!    Which operands address a block: every memory operand except those
//!    based on `%rsp` (the stack; the red zone), `%rax` (which holds a
//!    suspended context's saved rsp, so `(%rax)` is its resume word on its
//!    stack) and `%rip` (labels). In `context_sys_start`, until it steps
//!    over the boot frame (`lea CONTEXT_SYS_BOOT_SIZE(%rsp), %rsp`), `%rsp`
//!    addresses the boot frame.
//!
//!    The aarch64 file (`*_aarch64.S`) is checked by the same rules against
//!    the header's aarch64 section, in its own syntax: a memory operand
//!    `[base, #NAME]` through a block's base (x0, x1, x19, x20) names the
//!    field of the register it moves (the first of a pair: `stp x21, x22`
//!    is `CONTEXT_SYS_OFF_X21`, `ldr x9` is `CONTEXT_SYS_OFF_SP`, x10/x11
//!    are `CONTEXT_SYS_OFF_FPCR`), `[x9]` is the resume word and `[sp]` the
//!    stack, except in `context_sys_start` before `add sp, sp,
//!    #CONTEXT_SYS_BOOT_SIZE`, where sp addresses the boot frame (`ldp x2,
//!    x3` is `CONTEXT_SYS_BOOT_X2`, `ldr x16` `CONTEXT_SYS_BOOT_ENTRY`); a
//!    CFI rule for DWARF register 19..28, 29 or 72..79 names X19..X28, FP
//!    or D8..D15.
//! 2. **The bench's assembly still assembles.** Every `.S` under
//!    `context-tests-c/bench-c/` (built by hand only, see
//!    docs/PERFORMANCE.md) is assembled with `cc -c`.

#[path = "../../context-sys/build/defines.rs"]
mod defines;

use std::collections::BTreeSet;
use std::path::Path;

use test_support::repo::{files_with_extension, root, strip_comments};

const HEADER: &str = "context-sys/include/context_sys.h";
const OFF: &str = "CONTEXT_SYS_OFF_";
const BOOT: &str = "CONTEXT_SYS_BOOT_";
/// The names of `struct context_sys_resume_windows`, the one other block
/// the assembly writes (only `context_sys_resume_windows` does, through
/// %rdi, storing label addresses from %rax).
const RESUME: &str = "CONTEXT_SYS_RESUME_";
const RESUME_ROUTINE: &str = "context_sys_resume_windows";
/// The routine that receives the boot frame in `%rsp`.
const START: &str = "context_sys_start";

/// DWARF register numbers of the System V AMD64 psABI that CFI rules give
/// register-block offsets for, and the field each is saved in.
const DWARF_REGS: [(&str, &str); 7] =
    [("3", "RBX"), ("6", "RBP"), ("7", "RSP"), ("12", "R12"), ("13", "R13"), ("14", "R14"), ("15", "R15")];

/// The integer argument registers, which the boot frame holds by name.
const ARG_REGS: [&str; 6] = ["RDI", "RSI", "RDX", "RCX", "R8", "R9"];

/// Splits AT&T operands at top-level commas.
fn operands(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(text[start..].trim());
    }
    out
}

/// A memory operand `disp(%base[,%index,scale])`: (disp, base, indexed).
fn memory(op: &str) -> Option<(&str, &str, bool)> {
    let open = op.find('(')?;
    let inner = op[open + 1..].strip_suffix(')')?;
    let mut parts = inner.split(',');
    let base = parts.next()?.trim().strip_prefix('%')?;
    Some((op[..open].trim(), base, parts.next().is_some()))
}

/// A register operand's 64-bit name in upper case (`%eax` -> `RAX`,
/// `%r8w` -> `R8`) and its width, or `XMMn` and 128.
fn register(op: &str) -> Option<(String, u32)> {
    let r = op.strip_prefix('%')?;
    const LEGACY: [(&str, &str, &str, &str); 8] = [
        ("rax", "eax", "ax", "RAX"),
        ("rbx", "ebx", "bx", "RBX"),
        ("rcx", "ecx", "cx", "RCX"),
        ("rdx", "edx", "dx", "RDX"),
        ("rsi", "esi", "si", "RSI"),
        ("rdi", "edi", "di", "RDI"),
        ("rbp", "ebp", "bp", "RBP"),
        ("rsp", "esp", "sp", "RSP"),
    ];
    for (q, d, w, name) in LEGACY {
        for (spelling, width) in [(q, 64), (d, 32), (w, 16)] {
            if r == spelling {
                return Some((name.to_string(), width));
            }
        }
    }
    if let Some(n) = r.strip_prefix("xmm") {
        return n.parse::<u8>().ok().map(|_| (r.to_ascii_uppercase(), 128));
    }
    let n = r.strip_prefix('r')?;
    let digits: String = n.chars().take_while(|c| c.is_ascii_digit()).collect();
    let width = match &n[digits.len()..] {
        "" => 64,
        "d" => 32,
        "w" => 16,
        _ => return None,
    };
    (!digits.is_empty()).then(|| (format!("R{digits}"), width))
}

/// Where a checked line is.
struct At<'a> {
    file: &'a str,
    line: usize,
    routine: &'a str,
    text: &'a str,
}

impl At<'_> {
    fn says(&self, what: &str) -> String {
        format!("{}:{} ({}): `{}`: {what}", self.file, self.line, self.routine, self.text)
    }
}

/// Checks one assembly file's text against the header's defines `names`;
/// returns the problems.
fn check_asm(file: &str, text: &str, names: &BTreeSet<String>) -> Vec<String> {
    let mut bad = Vec::new();
    let code = strip_comments(text);
    let mut routine = String::from("(top)");
    let mut boot_frame_live = false;
    for (i, raw) in code.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        let at = At { file, line: i + 1, routine: &routine, text: t };
        if let Some(directive) = t.strip_prefix('#') {
            let directive = directive.trim_start();
            if let Some(inc) = directive.strip_prefix("include") {
                if inc.trim() != "\"context_sys.h\"" {
                    bad.push(at.says("includes a header other than context_sys.h, which this check does not read"));
                }
            } else if ["define", "undef"].iter().any(|d| directive.starts_with(d))
                && directive.split_whitespace().nth(1).is_some_and(|n| n.starts_with("CONTEXT_SYS_"))
            {
                bad.push(at.says("gives a CONTEXT_SYS_ name a value of this file's own; the header's is the only one"));
            }
            continue;
        }
        if let Some(name) = t.strip_prefix(".macro ") {
            routine = format!("macro {}", name.split([' ', ',']).next().unwrap());
            continue;
        }
        if let Some(label) = t.strip_suffix(':')
            && !label.starts_with('.')
            && !label.contains(char::is_whitespace)
            && !label.chars().all(|c| c.is_ascii_digit())
        {
            routine = label.to_string();
            boot_frame_live = label == START;
            continue;
        }
        let (word, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let ops = operands(rest.trim());
        match word {
            "cfi_saved_at" => bad.extend(check_cfi_saved_at(&at, &ops, names)),
            ".cfi_escape" => bad.extend(check_cfi_escape(&at, &ops, names)),
            _ if word.starts_with('.') => {}
            _ => bad.extend(check_instruction(&at, word, &ops, names, &mut boot_frame_live)),
        }
    }
    bad
}

/// `cfi_saved_at dwarf_reg, breg, offset`: the offset is the header's name
/// of that register's field.
fn check_cfi_saved_at(at: &At, ops: &[&str], names: &BTreeSet<String>) -> Vec<String> {
    let [reg, _, offset] = ops else { return vec![at.says("expected three arguments")] };
    if reg.starts_with('\\') || offset.starts_with('\\') {
        return Vec::new(); // a macro's own parameters, checked where it is used
    }
    let Some((_, field)) = DWARF_REGS.iter().find(|(n, _)| n == reg) else {
        return vec![at.says(&format!("DWARF register {reg} is saved in no field of the register block"))];
    };
    let want = format!("{OFF}{field}");
    if *offset != want || !names.contains(&want) {
        return vec![at.says(&format!("DWARF register {reg} is {}: its offset must be {want}", field.to_lowercase()))];
    }
    Vec::new()
}

/// `.cfi_escape`: the offset after a `DW_OP_bregN` is a register-block
/// offset, by name.
fn check_cfi_escape(at: &At, ops: &[&str], names: &BTreeSet<String>) -> Vec<String> {
    let mut bad = Vec::new();
    for pair in ops.windows(2) {
        if (pair[0].starts_with("DW_OP_breg") || pair[0].starts_with("\\dw_op_breg"))
            && !pair[1].contains('\\')
            && !(pair[1].starts_with(OFF) && names.contains(pair[1]))
        {
            bad.push(at.says(&format!("the offset after {} must be a {OFF}* name, not `{}`", pair[0], pair[1])));
        }
    }
    bad
}

/// One instruction's memory operands.
fn check_instruction(
    at: &At,
    mnemonic: &str,
    ops: &[&str],
    names: &BTreeSet<String>,
    boot_frame_live: &mut bool,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (pos, op) in ops.iter().enumerate() {
        let Some((disp, base, indexed)) = memory(op) else { continue };
        let other = ops.iter().enumerate().find(|(j, o)| *j != pos && o.starts_with('%')).map(|(_, o)| *o);
        let store = pos + 1 == ops.len() && ops.len() > 1;
        let named = |prefix: &str| disp.starts_with(prefix) && names.contains(disp);
        match base {
            "rip" => {}
            "rsp" if *boot_frame_live => {
                if !named(BOOT) {
                    bad.push(at.says(&format!("reads the boot frame: the displacement must be a {BOOT}* name")));
                } else if store {
                    bad.push(at.says("writes the boot frame, which only its preparer writes"));
                } else if let Some(problem) = boot_pairing(mnemonic, &disp[BOOT.len()..], other) {
                    bad.push(at.says(&problem));
                }
                if mnemonic == "lea" && other == Some("%rsp") {
                    *boot_frame_live = false;
                }
            }
            "rsp" | "rax" => {
                if disp.starts_with("CONTEXT_SYS_") {
                    bad.push(at.says(&format!("%{base} addresses a stack here, not a register block")));
                }
            }
            "rdi" if at.routine == RESUME_ROUTINE => {
                if indexed || !named(RESUME) || !store || other != Some("%rax") {
                    bad.push(at.says(&format!(
                        "{RESUME_ROUTINE} only stores %rax through %rdi at one {RESUME}* name of the header"
                    )));
                }
            }
            _ => {
                if indexed || !named(OFF) {
                    bad.push(at.says(&format!(
                        "addresses a register block through %{base}: the displacement must be one {OFF}* name of the header"
                    )));
                } else if let Some(problem) = block_pairing(mnemonic, &disp[OFF.len()..], other, store) {
                    bad.push(at.says(&problem));
                }
            }
        }
    }
    bad
}

/// Whether the field `field` (`RBX`) is the one the instruction moves;
/// `Some(why not)` if it is not, or cannot be told.
fn block_pairing(mnemonic: &str, field: &str, other: Option<&str>, store: bool) -> Option<String> {
    let want = if mnemonic.contains("mxcsr") {
        "MXCSR".to_string()
    } else if mnemonic.ends_with("stcw") || mnemonic == "fldcw" || mnemonic.starts_with("movzw") {
        "FPUCW".to_string()
    } else {
        // No register operand (an immediate compare): any field will do.
        let other = other?;
        let Some((reg, width)) = register(other) else {
            return Some(format!("cannot tell which field `{other}` goes with; teach this check"));
        };
        match (width, store) {
            (128, _) => format!("RET_{reg}"),
            (32, _) => "MXCSR".to_string(),
            (16, _) => "FPUCW".to_string(),
            // The saved rsp is loaded into rax to find the resume word.
            (_, false) if reg == "RAX" => "RSP".to_string(),
            (_, true) if reg == "RAX" || reg == "RDX" => format!("RET_{reg}"),
            _ => reg,
        }
    };
    (field != want)
        .then(|| format!("moves {}, so its field is {OFF}{want}, not {OFF}{field}", other.unwrap_or(mnemonic)))
}

/// Whether the boot-frame field `field` (`XMM3`, `RDI`, `ENTRY`, `SIZE`)
/// is the one the instruction reads.
fn boot_pairing(mnemonic: &str, field: &str, other: Option<&str>) -> Option<String> {
    let Some((reg, width)) = other.and_then(register) else {
        return Some("reads the boot frame into no register this check knows; teach it".to_string());
    };
    let want = match (mnemonic, reg.as_str(), width) {
        ("lea", "RSP", _) => "SIZE".to_string(),
        (_, _, 128) => reg.clone(),
        (_, r, 64) if ARG_REGS.contains(&r) => reg.clone(),
        (_, _, 64) => "ENTRY".to_string(),
        _ => return Some(format!("reads the boot frame into {}, which no field fits", other.unwrap())),
    };
    (field != want).then(|| format!("{mnemonic} into {}: its field is {BOOT}{want}, not {BOOT}{field}", other.unwrap()))
}

/// The field of the aarch64 register block that CFI rules for DWARF
/// register `reg` name: x19..x28, fp (29), d8..d15 (72..79).
fn a64_dwarf_field(reg: &str) -> Option<String> {
    match reg.parse::<u32>().ok()? {
        n @ 19..=28 => Some(format!("X{n}")),
        29 => Some("FP".to_string()),
        n @ 72..=79 => Some(format!("D{}", n - 64)),
        _ => None,
    }
}

/// Splits aarch64 operands at commas outside `[...]`.
fn a64_operands(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(text[start..].trim());
    }
    out
}

/// The block field a data register goes with, in the aarch64 block or
/// boot frame (`boot`): `x21` -> `X21`, `d9` -> `D9`, `x9` -> `SP`.
fn a64_field(reg: &str, boot: bool) -> Option<String> {
    let (kind, n) = reg.split_at(1);
    let n: u32 = n.parse().ok()?;
    Some(match (boot, kind, n) {
        (true, "x", 0..=7) => format!("X{n}"),
        (true, "d", 0..=7) => format!("D{n}"),
        (true, "x", 16) => "ENTRY".to_string(),
        (false, "x", 19..=28) => format!("X{n}"),
        (false, "x", 29) => "FP".to_string(),
        (false, "d", 8..=15) => format!("D{n}"),
        (false, "x", 9) => "SP".to_string(),
        (false, "x", 10 | 11) => "FPCR".to_string(),
        (false, "x", 0) => "RET_X0".to_string(),
        (false, "q", 0) => "RET_V0".to_string(),
        _ => return None,
    })
}

/// [`check_asm`] for the aarch64 file (see the module docs).
fn check_asm_aarch64(file: &str, text: &str, names: &BTreeSet<String>) -> Vec<String> {
    let mut bad = Vec::new();
    let code = strip_comments(text);
    let mut routine = String::from("(top)");
    let mut boot_frame_live = false;
    for (i, raw) in code.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        let at = At { file, line: i + 1, routine: &routine, text: t };
        if let Some(directive) = t.strip_prefix('#') {
            let directive = directive.trim_start();
            if let Some(inc) = directive.strip_prefix("include") {
                if inc.trim() != "\"context_sys.h\"" {
                    bad.push(at.says("includes a header other than context_sys.h, which this check does not read"));
                }
            } else if ["define", "undef"].iter().any(|d| directive.starts_with(d))
                && directive.split_whitespace().nth(1).is_some_and(|n| n.starts_with("CONTEXT_SYS_"))
            {
                bad.push(at.says("gives a CONTEXT_SYS_ name a value of this file's own; the header's is the only one"));
            }
            continue;
        }
        if let Some(name) = t.strip_prefix(".macro ") {
            routine = format!("macro {}", name.split([' ', ',']).next().unwrap());
            continue;
        }
        if let Some(label) = t.strip_suffix(':')
            && !label.starts_with('.')
            && !label.starts_with('\\')
            && !label.contains(char::is_whitespace)
            && !label.chars().all(|c| c.is_ascii_digit())
        {
            routine = label.to_string();
            boot_frame_live = label == START;
            continue;
        }
        let (word, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let ops = a64_operands(rest.trim());
        match word {
            "cfi_saved_at" => {
                let [reg, _, offset] = ops[..] else {
                    bad.push(at.says("expected three arguments"));
                    continue;
                };
                if reg.starts_with('\\') || offset.starts_with('\\') {
                    continue;
                }
                let Some(field) = a64_dwarf_field(reg) else {
                    bad.push(at.says(&format!("DWARF register {reg} is saved in no field of the register block")));
                    continue;
                };
                let want = format!("{OFF}{field}");
                if offset != want || !names.contains(&want) {
                    bad.push(at.says(&format!("DWARF register {reg}: its offset must be {want}")));
                }
            }
            ".cfi_escape" => bad.extend(check_cfi_escape(&at, &operands(rest.trim()), names)),
            _ if word.starts_with('.') => {}
            "add" if boot_frame_live && ops.first() == Some(&"sp") && ops.get(1) == Some(&"sp") => {
                if ops.get(2).and_then(|o| o.strip_prefix('#')) != Some(&format!("{BOOT}SIZE")) {
                    bad.push(at.says(&format!("steps over the boot frame by {BOOT}SIZE only")));
                }
                boot_frame_live = false;
            }
            _ => {
                let Some(pos) = ops.iter().position(|o| o.starts_with('[')) else { continue };
                let inner = ops[pos].trim_start_matches('[').trim_end_matches('!');
                let inner = inner.strip_suffix(']').unwrap_or(inner);
                let mut parts = inner.split(',').map(str::trim);
                let base = parts.next().unwrap_or("");
                let disp = parts.next().map(|d| d.trim_start_matches('#')).unwrap_or("");
                let store = word.starts_with("st");
                let first = ops.first().copied().unwrap_or("");
                let named = |prefix: &str| disp.starts_with(prefix) && names.contains(disp);
                match base {
                    "sp" if boot_frame_live => {
                        if !named(BOOT) {
                            bad.push(at.says(&format!("reads the boot frame: the offset must be a {BOOT}* name")));
                        } else if store {
                            bad.push(at.says("writes the boot frame, which only its preparer writes"));
                        } else if a64_field(first, true).map(|f| format!("{BOOT}{f}")).as_deref() != Some(disp) {
                            bad.push(at.says(&format!("loads {first}, which is not the boot frame's {disp}")));
                        }
                    }
                    "sp" | "x9" | "x29" => {
                        if disp.starts_with("CONTEXT_SYS_") {
                            bad.push(at.says(&format!("{base} addresses a stack here, not a register block")));
                        }
                    }
                    "x0" if at.routine == RESUME_ROUTINE => {
                        if !named(RESUME) || !store || first != "x9" {
                            bad.push(at.says(&format!(
                                "{RESUME_ROUTINE} only stores x9 through x0 at one {RESUME}* name of the header"
                            )));
                        }
                    }
                    _ => {
                        if !named(OFF) {
                            bad.push(at.says(&format!(
                                "addresses a register block through {base}: the offset must be one {OFF}* name of the header"
                            )));
                        } else {
                            match a64_field(first, false) {
                                Some(f) if disp == format!("{OFF}{f}") => {}
                                Some(f) => {
                                    bad.push(at.says(&format!("moves {first}, so its field is {OFF}{f}, not {disp}")))
                                }
                                None => bad.push(
                                    at.says(&format!("cannot tell which field `{first}` goes with; teach this check")),
                                ),
                            }
                        }
                    }
                }
            }
        }
    }
    bad
}

/// The header's numeric define names in the section of `arch` (a Rust
/// `target_arch` name) and the common part.
fn header_names(arch: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(HEADER)).unwrap();
    defines::numeric_for_arch(&text, arch).into_iter().map(|d| d.name).collect()
}

/// The assembly files that include context_sys.h, as paths from the root.
fn layout_asm_files() -> Vec<String> {
    let mut files = files_with_extension(&root().join("context-sys/src"), "S");
    files.extend(files_with_extension(&root().join("context-tests-c/bench-c"), "S"));
    files
        .into_iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("#include \"context_sys.h\""))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect()
}

#[test]
fn assembly_addresses_the_register_block_only_by_the_headers_names() {
    let files = layout_asm_files();
    assert!(files.iter().any(|f| f == "context-sys/src/context_sys_x86_64.S"), "{files:?}");
    assert!(files.iter().any(|f| f == "context-sys/src/context_sys_aarch64.S"), "{files:?}");
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        // Each file is checked against its own architecture's section of
        // the header, whatever this test runs on.
        if file.ends_with("_aarch64.S") {
            bad.extend(check_asm_aarch64(file, &text, &header_names("aarch64")));
        } else {
            bad.extend(check_asm(file, &text, &header_names("x86_64")));
        }
        // `#include "..."` looks in the file's own folder first: a stray
        // copy of the header there would win over the real one.
        let dir = Path::new(file).parent().unwrap();
        let shadow = root().join(dir).join("context_sys.h");
        if shadow.exists() && dir != Path::new("context-sys/include") {
            bad.push(format!(
                "{}: a copy of the header next to {file} would be included instead of {HEADER}",
                shadow.display()
            ));
        }
    }
    assert!(bad.is_empty(), "register-block offsets in the assembly not by the header's names:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_notices_numbers_arithmetic_and_wrong_fields() {
    let names: BTreeSet<String> = ["RSP", "RBX", "R13", "MXCSR", "FPUCW", "RET_RAX", "RET_XMM0"]
        .iter()
        .map(|f| format!("{OFF}{f}"))
        .chain(["XMM3", "RDI", "ENTRY", "SIZE"].iter().map(|f| format!("{BOOT}{f}")))
        .collect();
    let asm = "\
#include \"context_sys.h\"
#define CONTEXT_SYS_OFF_R14 40
#include \"other.h\"
f:
    mov %rbx, CONTEXT_SYS_OFF_RBX(%rdi)   /* fine */
    mov %rbx, 8(%rdi)
    mov (%rsi), %r13
    mov %r13, CONTEXT_SYS_OFF_RBX+8(%rdi)
    mov %r13, CONTEXT_SYS_OFF_RBX(%rdi)
    stmxcsr CONTEXT_SYS_OFF_FPUCW(%rdi)
    mov CONTEXT_SYS_OFF_RSP(%rsi), %rax    // fine: the saved rsp
    mov (%rax), %rcx                       /* fine: the resume word */
    lea 8(%rax), %rsp
    stmxcsr -8(%rsp)
    cmpq $0, CONTEXT_SYS_OFF_RSP(%r12)
    movups %xmm0, CONTEXT_SYS_OFF_RET_XMM0(%rbx)
    mov %rax, CONTEXT_SYS_OFF_RET_RAX(%rbx)
    cfi_saved_at 3, DW_OP_breg12, CONTEXT_SYS_OFF_RBX
    cfi_saved_at 13, DW_OP_breg12, CONTEXT_SYS_OFF_RBX
    .cfi_escape 0x0f, 5, DW_OP_breg12, 0, DW_OP_deref
context_sys_start:
    movq CONTEXT_SYS_BOOT_XMM3(%rsp), %xmm3
    movq 0x18(%rsp), %xmm3
    mov CONTEXT_SYS_BOOT_XMM3(%rsp), %rdi
    mov CONTEXT_SYS_BOOT_ENTRY(%rsp), %r11
    lea CONTEXT_SYS_BOOT_SIZE(%rsp), %rsp
    mov %rax, 8(%rsp)
";
    let bad = check_asm("t.S", asm, &names);
    let lines: Vec<usize> =
        bad.iter().map(|b| b.split(':').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(lines, [2, 3, 6, 7, 8, 9, 10, 19, 20, 23, 24], "{bad:#?}");
    assert!(bad[3].contains("through %rsi"), "{}", bad[3]);
    assert!(bad[5].ends_with("moves %r13, so its field is CONTEXT_SYS_OFF_R13, not CONTEXT_SYS_OFF_RBX"), "{}", bad[5]);
    assert!(bad[6].contains("its field is CONTEXT_SYS_OFF_MXCSR"), "{}", bad[6]);
    assert!(bad[7].contains("DWARF register 13 is r13"), "{}", bad[7]);
    assert!(bad[10].contains("its field is CONTEXT_SYS_BOOT_RDI, not CONTEXT_SYS_BOOT_XMM3"), "{}", bad[10]);
}

#[test]
fn the_aarch64_checker_notices_numbers_and_wrong_fields() {
    let names: BTreeSet<String> = ["SP", "X19", "X21", "FP", "D8", "FPCR", "RET_X0"]
        .iter()
        .map(|f| format!("{OFF}{f}"))
        .chain(["X0", "X2", "D0", "ENTRY", "SIZE"].iter().map(|f| format!("{BOOT}{f}")))
        .collect();
    let asm = "\
#include \"context_sys.h\"
f:
    stp x19, x20, [x0, #CONTEXT_SYS_OFF_X19]   // fine
    stp x21, x22, [x0, #24]
    ldr x9, [x1]
    stp x21, x22, [x0, #CONTEXT_SYS_OFF_X19]
    str x10, [x0, #CONTEXT_SYS_OFF_FPCR]       // fine
    ldr x10, [x9]                              // fine: the resume word
    str x30, [sp]                              // fine: the stack
    cfi_saved_at 19, DW_OP_breg1, CONTEXT_SYS_OFF_X19
    cfi_saved_at 73, DW_OP_breg1, CONTEXT_SYS_OFF_D8
context_sys_start:
    ldp x2, x3, [sp, #CONTEXT_SYS_BOOT_X2]
    ldp x2, x3, [sp, #16]
    ldp d0, d1, [sp, #CONTEXT_SYS_BOOT_X0]
    ldr x16, [sp, #CONTEXT_SYS_BOOT_ENTRY]
    add sp, sp, #CONTEXT_SYS_BOOT_SIZE
    ldr x9, [sp, #CONTEXT_SYS_OFF_SP]
";
    let bad = check_asm_aarch64("t.S", asm, &names);
    let lines: Vec<usize> =
        bad.iter().map(|b| b.split(':').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(lines, [4, 5, 6, 11, 14, 15, 18], "{bad:#?}");
    assert!(bad[2].contains("its field is CONTEXT_SYS_OFF_X21, not CONTEXT_SYS_OFF_X19"), "{}", bad[2]);
    assert!(bad[4].contains("offset must be a CONTEXT_SYS_BOOT_* name"), "{}", bad[4]);
}

/// The probes of `c/probes_<arch>.S`: the same global routines in both
/// files (ctc.h declares one contract), each a well-formed routine
/// (`.p2align`, `.globl`, `.type`, `.cfi_startproc` ... `.cfi_endproc`,
/// `.size`), aarch64's beginning with `bti c` (it may be reached by `blr`),
/// and both files ending with a non-executable stack note.
#[test]
fn both_probe_files_define_the_same_well_formed_routines() {
    let mut globals = Vec::new();
    for arch in ["x86_64", "aarch64"] {
        let file = format!("context-tests-c/c/probes_{arch}.S");
        let text = strip_comments(&std::fs::read_to_string(root().join(&file)).unwrap());
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let mut names: Vec<String> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line.strip_prefix(".globl ") else { continue };
            let name = name.trim();
            let at = |what: &str| format!("{file}: {name}: {what}");
            assert!(i > 0 && lines[i - 1].starts_with(".p2align"), "{}", at("no .p2align before .globl"));
            assert!(lines[i + 1].starts_with(&format!(".type {name},")), "{}", at("no .type after .globl"));
            assert_eq!(lines[i + 2], format!("{name}:"), "{}", at("the label does not follow .type"));
            assert_eq!(lines[i + 3], ".cfi_startproc", "{}", at("the routine does not open its CFI"));
            if arch == "aarch64" {
                assert_eq!(lines[i + 4], "bti c", "{}", at("a global aarch64 routine must begin with `bti c`"));
            }
            let size = format!(".size {name}, .-{name}");
            let end = lines[i..].iter().position(|l| *l == size).unwrap_or_else(|| panic!("{}", at("no .size")));
            assert_eq!(lines[i + end - 1], ".cfi_endproc", "{}", at(".cfi_endproc does not end the routine"));
            names.push(name.to_string());
        }
        assert!(
            lines.iter().any(|l| l.starts_with(".section .note.GNU-stack")),
            "{file} has no .note.GNU-stack section"
        );
        names.sort();
        globals.push(names);
    }
    assert!(globals[0].len() >= 4, "{globals:?}");
    assert_eq!(globals[0], globals[1], "probes_x86_64.S and probes_aarch64.S define different routines");
}

/// x86_64 only: the bench's sequences are x86_64 assembly, and on an
/// aarch64 machine `cc` cannot assemble them (under qemu-user `cc` is the
/// x86_64 host's, which x86_64 runs already check).
#[cfg(target_arch = "x86_64")]
#[test]
fn the_bench_assembly_assembles() {
    use std::process::Command;
    let files = files_with_extension(&root().join("context-tests-c/bench-c"), "S");
    assert!(!files.is_empty(), "no .S under context-tests-c/bench-c");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tidy_asm");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    for file in files {
        let obj = out_dir.join(file.file_stem().unwrap()).with_extension("o");
        let out = Command::new(&cc)
            .args(["-c", "-Wa,--fatal-warnings", "-I"])
            .arg(root().join("context-sys/include"))
            .arg(&file)
            .arg("-o")
            .arg(&obj)
            .output()
            .unwrap_or_else(|e| panic!("could not run {cc:?}: {e} (this test needs a C compiler)"));
        assert!(
            out.status.success(),
            "{} does not assemble ({}):\n{}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(obj.is_file());
    }
}
