//! `cargo xtask layout`: the layout of every struct shared with the assembly
//! (`struct context_sys_regs` = `ContextRegs`, `struct context_sys_boot_frame`
//! = `BootFrame`) as four parties see it, and a check that they agree:
//!
//! * the header's `#define CONTEXT_SYS_*` constants (the one source of truth);
//! * C: `context-tests-c/c/layout.c`, compiled with `cc` and run
//!   (`offsetof`, `sizeof`, `_Alignof`);
//! * Rust: the `layout` example of `context-tests-c` (`offset_of!`,
//!   `size_of`, `align_of`);
//! * the assembly: the built `libcontext_sys.a` disassembled with `objdump`.
//!   Every load and store through a register block or the boot frame is
//!   attributed to a field by the register it moves (a store of `%r13` is
//!   the `r13` field, a `movq` into `%xmm3` from the boot frame is
//!   `xmm[3]`, ...), and its displacement must equal the header's offset
//!   for that field. The CFI's `DW_CFA_expression` rules, which also name
//!   register-block offsets, are checked the same way.
//!
//! A disagreement names the struct, the field, who says what, and for the
//! assembly the routine and the instruction.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{defines, util};

pub const HEADER: &str = "context-sys/include/context_sys.h";
const C_LAYOUT: &str = "context-tests-c/c/layout.c";

pub const REGS: &str = "context_sys_regs";
pub const BOOT: &str = "context_sys_boot_frame";

/// A field shared with the assembly and the header constant of its offset
/// (`None` for padding the header only describes in a comment).
struct Field {
    strukt: &'static str,
    name: &'static str,
    define: Option<&'static str>,
}

const fn f(strukt: &'static str, name: &'static str, define: &'static str) -> Field {
    Field { strukt, name, define: Some(define) }
}

const FIELDS: &[Field] = &[
    f(REGS, "rsp", "CONTEXT_SYS_OFF_RSP"),
    f(REGS, "rbx", "CONTEXT_SYS_OFF_RBX"),
    f(REGS, "rbp", "CONTEXT_SYS_OFF_RBP"),
    f(REGS, "r12", "CONTEXT_SYS_OFF_R12"),
    f(REGS, "r13", "CONTEXT_SYS_OFF_R13"),
    f(REGS, "r14", "CONTEXT_SYS_OFF_R14"),
    f(REGS, "r15", "CONTEXT_SYS_OFF_R15"),
    f(REGS, "mxcsr", "CONTEXT_SYS_OFF_MXCSR"),
    f(REGS, "fpucw", "CONTEXT_SYS_OFF_FPUCW"),
    Field { strukt: REGS, name: "pad", define: None },
    f(REGS, "ret_rax", "CONTEXT_SYS_OFF_RET_RAX"),
    f(REGS, "ret_rdx", "CONTEXT_SYS_OFF_RET_RDX"),
    f(REGS, "ret_xmm0", "CONTEXT_SYS_OFF_RET_XMM0"),
    f(BOOT, "xmm[0]", "CONTEXT_SYS_BOOT_XMM0"),
    f(BOOT, "xmm[1]", "CONTEXT_SYS_BOOT_XMM1"),
    f(BOOT, "xmm[2]", "CONTEXT_SYS_BOOT_XMM2"),
    f(BOOT, "xmm[3]", "CONTEXT_SYS_BOOT_XMM3"),
    f(BOOT, "xmm[4]", "CONTEXT_SYS_BOOT_XMM4"),
    f(BOOT, "xmm[5]", "CONTEXT_SYS_BOOT_XMM5"),
    f(BOOT, "xmm[6]", "CONTEXT_SYS_BOOT_XMM6"),
    f(BOOT, "xmm[7]", "CONTEXT_SYS_BOOT_XMM7"),
    f(BOOT, "gp[0]", "CONTEXT_SYS_BOOT_RDI"),
    f(BOOT, "gp[1]", "CONTEXT_SYS_BOOT_RSI"),
    f(BOOT, "gp[2]", "CONTEXT_SYS_BOOT_RDX"),
    f(BOOT, "gp[3]", "CONTEXT_SYS_BOOT_RCX"),
    f(BOOT, "gp[4]", "CONTEXT_SYS_BOOT_R8"),
    f(BOOT, "gp[5]", "CONTEXT_SYS_BOOT_R9"),
    f(BOOT, "entry", "CONTEXT_SYS_BOOT_ENTRY"),
    f(BOOT, "pad", "CONTEXT_SYS_BOOT_PAD"),
];

/// Each struct and the header constants of its size and alignment.
const STRUCTS: &[(&str, &str, &str)] = &[
    (REGS, "CONTEXT_SYS_REGS_SIZE", "CONTEXT_SYS_REGS_ALIGN"),
    (BOOT, "CONTEXT_SYS_BOOT_SIZE", "CONTEXT_SYS_BOOT_ALIGN"),
];

/// The pseudo-field under which the assembly's use of the boot frame's size
/// (the `lea` that steps over it) is filed.
const BOOT_SIZE_FIELD: &str = "<size>";

/// A layout as one party reports it.
#[derive(Debug, Default)]
pub struct Layout {
    /// struct -> (size, align)
    structs: BTreeMap<String, (u64, u64)>,
    /// (struct, field) -> (offset, size)
    fields: BTreeMap<(String, String), (u64, u64)>,
}

/// Parses the `struct <name> <size> <align>` / `field <struct> <field>
/// <offset> <size>` lines that `layout.c` and the Rust example print.
pub fn parse_layout(text: &str) -> Result<Layout, String> {
    let mut l = Layout::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number `{s}` in `{line}`"));
        match w.as_slice() {
            ["struct", name, size, align] => {
                l.structs.insert(name.to_string(), (num(size)?, num(align)?));
            }
            ["field", s, name, off, size] => {
                l.fields.insert((s.to_string(), name.to_string()), (num(off)?, num(size)?));
            }
            _ => return Err(format!("unexpected line `{line}`")),
        }
    }
    Ok(l)
}

/// Every numeric `#define NAME VALUE` of the header that is not negative
/// (as the shared parser, `context-sys/build/defines.rs`, reads them).
pub fn header_defines(text: &str) -> BTreeMap<String, u64> {
    defines::numeric(text).into_iter().filter_map(|d| Some((d.name, u64::try_from(d.value).ok()?))).collect()
}

/// One place where the assembly uses an offset into a shared struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The routine, or `CFI of <routine>` for an unwind rule.
    pub function: String,
    /// The instruction (or CFI rule) as objdump prints it.
    pub insn: String,
    pub strukt: &'static str,
    pub field: String,
    pub offset: i64,
}

/// What the disassembly shows: attributed accesses, and memory operands this
/// check cannot attribute (reported, not failed: they may be scratch).
#[derive(Debug, Default)]
pub struct AsmView {
    pub accesses: Vec<Access>,
    pub unattributed: Vec<String>,
}

/// A memory operand `disp(%base[,%index,scale])`.
#[derive(Debug, PartialEq, Eq)]
struct Mem {
    disp: i64,
    base: String,
    indexed: bool,
}

fn parse_mem(op: &str) -> Option<Mem> {
    let open = op.find('(')?;
    let inner = op[open + 1..].strip_suffix(')')?;
    let disp_text = &op[..open];
    let disp = if disp_text.is_empty() {
        0
    } else {
        let (neg, hex) = match disp_text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, disp_text),
        };
        let v = i64::from_str_radix(hex.strip_prefix("0x")?, 16).ok()?;
        if neg { -v } else { v }
    };
    let mut parts = inner.split(',');
    let base = parts.next()?.strip_prefix('%')?.to_string();
    Some(Mem { disp, base, indexed: parts.next().is_some() })
}

/// Splits AT&T operands at top-level commas.
fn split_operands(ops: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in ops.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

const CALLEE_SAVED: [&str; 7] = ["rsp", "rbx", "rbp", "r12", "r13", "r14", "r15"];
const ARG_GPRS: [&str; 6] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];

fn reg_width(r: &str) -> Option<u32> {
    const R64: [&str; 16] =
        ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    const R32: [&str; 8] = ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp"];
    const R16: [&str; 8] = ["ax", "bx", "cx", "dx", "si", "di", "bp", "sp"];
    if R64.contains(&r) {
        Some(64)
    } else if R32.contains(&r) || (r.starts_with('r') && r.ends_with('d')) {
        Some(32)
    } else if R16.contains(&r) || (r.starts_with('r') && r.ends_with('w')) {
        Some(16)
    } else {
        None
    }
}

/// Which register-block field an instruction touches, from what it moves.
fn regs_field(mnemonic: &str, other: Option<&str>, store: bool) -> Option<String> {
    if mnemonic.contains("mxcsr") {
        return Some("mxcsr".into());
    }
    if mnemonic.ends_with("stcw") || mnemonic == "fldcw" || mnemonic.starts_with("movzw") {
        return Some("fpucw".into());
    }
    let reg = other?.strip_prefix('%')?;
    if reg == "xmm0" && mnemonic.starts_with("mov") {
        return Some("ret_xmm0".into());
    }
    match (reg_width(reg)?, reg, store) {
        (64, "rax", false) => Some("rsp".into()), // the saved rsp, loaded to find the resume word
        (64, "rax", true) => Some("ret_rax".into()),
        (64, "rdx", true) => Some("ret_rdx".into()),
        (64, r, true) if CALLEE_SAVED.contains(&r) => Some(r.into()),
        (64, r, false) if CALLEE_SAVED[1..].contains(&r) => Some(r.into()),
        (32, _, _) => Some("mxcsr".into()),
        (16, _, _) => Some("fpucw".into()),
        _ => None,
    }
}

/// Which boot-frame field a load in `context_sys_start` reads, from its
/// destination register.
fn boot_field(mnemonic: &str, dest: &str) -> Option<String> {
    let reg = dest.strip_prefix('%')?;
    if mnemonic == "lea" && reg == "rsp" {
        return Some(BOOT_SIZE_FIELD.into());
    }
    if let Some(n) = reg.strip_prefix("xmm") {
        return Some(format!("xmm[{n}]"));
    }
    if let Some(i) = ARG_GPRS.iter().position(|r| *r == reg) {
        return Some(format!("gp[{i}]"));
    }
    // Any other 64-bit register loaded from the frame is the entry's address.
    (reg_width(reg) == Some(64)).then(|| "entry".into())
}

/// The registers through which each routine addresses a register block, and
/// whether `rsp` addresses the boot frame (in `context_sys_start`, until it
/// steps over it).
fn bases(function: &str) -> (&'static [&'static str], bool) {
    match function {
        "context_sys_swap" => (&["rdi", "rsi"], false),
        "context_sys_set" => (&["rdi"], false),
        "context_sys_start" => (&["rbx", "rdi"], true),
        "context_sys_save_fp_control" => (&["rdi"], false),
        _ => (&[], false),
    }
}

/// Attributes every memory access in `objdump -d --no-show-raw-insn -w`
/// output to a struct field.
pub fn asm_accesses(disasm: &str) -> AsmView {
    let mut view = AsmView::default();
    let mut function = String::new();
    let mut boot_live = false;
    for line in disasm.lines() {
        if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")).map(|(_, n)| n) {
            function = name.to_string();
            boot_live = bases(&function).1;
            continue;
        }
        let Some((_, insn)) = line.split_once(":\t") else { continue };
        let insn = insn.trim();
        let (mnemonic, ops) = insn.split_once(char::is_whitespace).unwrap_or((insn, ""));
        let ops = split_operands(ops.trim());
        let Some((mem_pos, mem)) = ops.iter().enumerate().find_map(|(i, o)| parse_mem(o).map(|m| (i, m))) else {
            continue;
        };
        let other = ops.iter().enumerate().find(|(i, _)| *i != mem_pos).map(|(_, o)| o.as_str());
        // AT&T: the destination is the last operand.
        let store = mem_pos + 1 == ops.len() && ops.len() > 1;
        let (regs_bases, _) = bases(&function);
        let attributed = if mem.indexed || mnemonic.starts_with("nop") {
            None
        } else if regs_bases.contains(&mem.base.as_str()) {
            regs_field(mnemonic, other, store).map(|field| (REGS, field))
        } else if boot_live && mem.base == "rsp" && !store {
            let field = other.and_then(|d| boot_field(mnemonic, d));
            if field.as_deref() == Some(BOOT_SIZE_FIELD) {
                boot_live = false;
            }
            field.map(|field| (BOOT, field))
        } else {
            None
        };
        match attributed {
            Some((strukt, field)) => view.accesses.push(Access {
                function: function.clone(),
                insn: insn.split_whitespace().collect::<Vec<_>>().join(" "),
                strukt,
                field,
                offset: mem.disp,
            }),
            None if mnemonic != "lea" && !mem.indexed && mem.base != "rax" => {
                view.unattributed.push(format!("{function}: `{insn}`"))
            }
            None => {}
        }
    }
    view
}

/// DWARF register names objdump prints in CFI rules, as register-block fields.
fn cfi_field(reg: &str) -> Option<String> {
    CALLEE_SAVED[1..].contains(&reg).then(|| reg.to_string())
}

/// Attributes the register-block offsets in `objdump --dwarf=frames` CFI
/// rules: `DW_CFA_expression: rN (reg) (DW_OP_bregM (base): off)` says reg
/// is saved at `off` in a block; `DW_CFA_def_cfa_expression (DW_OP_bregM
/// (base): off; DW_OP_deref; ...)` reads the saved rsp at `off`.
pub fn cfi_accesses(frames: &str, functions: &BTreeMap<u64, String>) -> Vec<Access> {
    let mut out = Vec::new();
    let mut function = String::from("?");
    for line in frames.lines() {
        let line = line.trim();
        if line.contains(" FDE ") {
            let start = line
                .split("pc=")
                .nth(1)
                .and_then(|r| r.split("..").next())
                .and_then(|s| u64::from_str_radix(s, 16).ok());
            function = start.and_then(|s| functions.get(&s).cloned()).unwrap_or_else(|| "?".into());
            continue;
        }
        let breg_offset = |rest: &str| -> Option<i64> {
            let after = rest.split("DW_OP_breg").nth(1)?;
            let colon = after.split_once("): ")?.1;
            let num: String = colon.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
            num.parse().ok()
        };
        if let Some(rest) = line.strip_prefix("DW_CFA_expression: ") {
            let reg = rest.split('(').nth(1).and_then(|r| r.split(')').next()).unwrap_or("");
            if let (Some(field), Some(offset)) = (cfi_field(reg), breg_offset(rest)) {
                out.push(Access {
                    function: format!("CFI of {function}"),
                    insn: line.to_string(),
                    strukt: REGS,
                    field,
                    offset,
                });
            }
        } else if let Some(rest) = line.strip_prefix("DW_CFA_def_cfa_expression ")
            && rest.contains("DW_OP_deref")
            && let Some(offset) = breg_offset(rest)
        {
            out.push(Access {
                function: format!("CFI of {function}"),
                insn: line.to_string(),
                strukt: REGS,
                field: "rsp".into(),
                offset,
            });
        }
    }
    out
}

/// Global `FUNC` symbols defined in an object, from `readelf -sW`:
/// name -> (value, size).
pub fn defined_functions(readelf_syms: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for line in readelf_syms.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        // Num: Value Size Type Bind Vis Ndx Name
        if w.len() >= 8 && w[3] == "FUNC" && w[4] == "GLOBAL" && w[6] != "UND" {
            let value = u64::from_str_radix(w[1], 16).unwrap_or(u64::MAX);
            let size = w[2].parse::<u64>().or_else(|_| u64::from_str_radix(w[2].trim_start_matches("0x"), 16));
            out.insert(w[7].to_string(), (value, size.unwrap_or(0)));
        }
    }
    out
}

/// Runs `cmd` and returns its stdout, failing with its stderr.
pub fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed with {}:\n{}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{cmd:?} printed non-UTF-8: {e}"))
}

/// A string field of one JSON line from cargo (`"key":"value"`), unescaped
/// enough for paths.
fn json_str(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// Builds `context-sys` (debug, as the tests do) and returns the archive its
/// build script made. The archive exists even when the crate's Rust part
/// fails to compile (as it does when the header and `offset_of!` disagree),
/// so the assembly can still be checked; the build's own error is returned
/// alongside.
pub fn context_sys_archive() -> Result<(PathBuf, Option<String>), String> {
    let out = util::cargo()
        .args(["build", "-p", "stackful-context-sys", "--message-format=json-render-diagnostics"])
        .output()
        .map_err(|e| format!("could not run cargo build: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let out_dir = stdout
        .lines()
        .filter(|l| l.contains("\"reason\":\"build-script-executed\"") && l.contains("/context-sys#"))
        .find_map(|l| json_str(l, "out_dir"))
        .ok_or_else(|| {
            format!("cargo build did not run context-sys's build script:\n{}", String::from_utf8_lossy(&out.stderr))
        })?;
    let archive = Path::new(&out_dir).join("libcontext_sys.a");
    if !archive.is_file() {
        return Err(format!("{} does not exist", archive.display()));
    }
    let build_error =
        (!out.status.success()).then(|| format!("cargo build failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    Ok((archive, build_error))
}

/// Where xtask keeps what it compiles.
pub fn scratch_dir() -> Result<PathBuf, String> {
    let dir = util::root().join("target").join("xtask");
    fs::create_dir_all(&dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn c_layout() -> Result<Layout, String> {
    let root = util::root();
    let exe = scratch_dir()?.join("layout_c");
    output(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root.join("context-sys/include"))
            .arg(root.join(C_LAYOUT))
            .arg("-o")
            .arg(&exe),
    )?;
    parse_layout(&output(&mut Command::new(&exe))?)
}

fn rust_layout() -> Result<Layout, String> {
    let out = util::cargo()
        .args(["build", "--workspace", "--example", "layout", "--message-format=json-render-diagnostics"])
        .output()
        .map_err(|e| format!("could not run cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!("the Rust side does not build:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter(|l| l.contains("\"name\":\"layout\""))
        .find_map(|l| json_str(l, "executable"))
        .ok_or("cargo built no `layout` example")?;
    parse_layout(&output(&mut Command::new(exe))?)
}

/// Disassembly and CFI of the routines in `archive`, attributed to fields.
pub fn asm_view(archive: &Path) -> Result<AsmView, String> {
    let disasm = output(Command::new("objdump").args(["-d", "--no-show-raw-insn", "-w"]).arg(archive))?;
    let mut view = asm_accesses(&disasm);
    let syms = output(Command::new("readelf").args(["-sW"]).arg(archive))?;
    let by_addr: BTreeMap<u64, String> = defined_functions(&syms).into_iter().map(|(n, (v, _))| (v, n)).collect();
    let frames = output(Command::new("objdump").arg("--dwarf=frames").arg(archive))?;
    view.accesses.extend(cfi_accesses(&frames, &by_addr));
    Ok(view)
}

/// Compares the four views; returns the table and the disagreements.
pub fn compare(
    header: &BTreeMap<String, u64>,
    c: Result<&Layout, &str>,
    rust: Result<&Layout, &str>,
    asm: Result<&AsmView, &str>,
) -> (String, Vec<String>) {
    let mut table = String::new();
    let mut problems = Vec::new();
    let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for (name, l) in [("C", &c), ("Rust", &rust)] {
        if let Err(e) = l {
            problems.push(format!("{name} layout unavailable: {e}"));
        }
    }
    if let Err(e) = &asm {
        problems.push(format!("assembly unavailable: {e}"));
    }
    let c = c.ok();
    let rust = rust.ok();
    let asm = asm.ok();

    for &(strukt, size_def, align_def) in STRUCTS {
        let _ =
            writeln!(table, "\nstruct {strukt}\n  {:<10} {:>7} {:>7} {:>7} {:>12}", "", "header", "C", "Rust", "asm");
        for (what, def, pick) in [("size", size_def, 0usize), ("align", align_def, 1)] {
            let h = header.get(def).copied();
            let get =
                |l: Option<&Layout>| l.and_then(|l| l.structs.get(strukt)).map(|s| if pick == 0 { s.0 } else { s.1 });
            let (cv, rv) = (get(c), get(rust));
            let asm_v = (strukt == BOOT && what == "size")
                .then(|| {
                    asm.map(|a| {
                        a.accesses
                            .iter()
                            .filter(|x| x.field == BOOT_SIZE_FIELD)
                            .map(|x| x.offset as u64)
                            .collect::<Vec<_>>()
                    })
                })
                .flatten();
            let _ = writeln!(
                table,
                "  {what:<10} {:>7} {:>7} {:>7} {:>12}",
                show(h),
                show(cv),
                show(rv),
                asm_v.as_ref().map_or("-".to_string(), |v| v
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(","))
            );
            if h.is_none() {
                problems.push(format!("{strukt} {what}: the header has no {def}"));
            }
            for (who, v) in [("C", cv), ("Rust", rv)] {
                if let (Some(h), Some(v)) = (h, v)
                    && h != v
                {
                    problems.push(format!("{strukt} {what}: {who} says {v}, the header's {def} is {h}"));
                }
            }
            for &o in asm_v.iter().flatten() {
                if Some(o) != h {
                    let insn = asm
                        .map(|a| {
                            a.accesses
                                .iter()
                                .find(|x| x.field == BOOT_SIZE_FIELD)
                                .map(|x| format!("{}: `{}`", x.function, x.insn))
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                    problems.push(format!(
                        "{strukt} {what}: the assembly steps over {o} bytes ({insn}), the header's {def} is {}",
                        show(h)
                    ));
                }
            }
        }
        for field in FIELDS.iter().filter(|fl| fl.strukt == strukt) {
            let key = (strukt.to_string(), field.name.to_string());
            let h = field.define.and_then(|d| header.get(d).copied());
            let cv = c.and_then(|l| l.fields.get(&key).copied());
            let rv = rust.and_then(|l| l.fields.get(&key).copied());
            let seen: Vec<&Access> = asm
                .map(|a| a.accesses.iter().filter(|x| x.strukt == strukt && x.field == field.name).collect())
                .unwrap_or_default();
            let mut offsets: Vec<i64> = seen.iter().map(|x| x.offset).collect();
            offsets.sort();
            offsets.dedup();
            let asm_text = if seen.is_empty() {
                "-".to_string()
            } else {
                format!("{} ({}x)", offsets.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(","), seen.len())
            };
            let _ = writeln!(
                table,
                "  {:<10} {:>7} {:>7} {:>7} {:>12}",
                field.name,
                show(h),
                show(cv.map(|v| v.0)),
                show(rv.map(|v| v.0)),
                asm_text
            );
            let name = format!("{strukt}.{}", field.name);
            if let Some(def) = field.define
                && h.is_none()
            {
                problems.push(format!("{name}: the header has no {def}"));
            }
            for (who, l, v) in [("C offsetof", c, cv), ("Rust offset_of!", rust, rv)] {
                match (l, v) {
                    (Some(_), None) => problems.push(format!("{name}: missing from the {who} side's output")),
                    (_, Some((off, _))) => match (field.define, h) {
                        (Some(def), Some(h)) if off != h => {
                            problems.push(format!("{name}: {who} says {off}, the header's {def} is {h}"))
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
            if let (Some(cv), Some(rv)) = (cv, rv)
                && cv != rv
            {
                problems.push(format!(
                    "{name}: C has offset {} size {}, Rust has offset {} size {}",
                    cv.0, cv.1, rv.0, rv.1
                ));
            }
            if let (Some(def), Some(h)) = (field.define, h) {
                for x in &seen {
                    if x.offset != h as i64 {
                        problems.push(format!(
                            "{name}: {} uses offset {} (`{}`), the header's {def} is {h}",
                            x.function, x.offset, x.insn
                        ));
                    }
                }
                // Padding is never touched; every other field must be, or the
                // attribution rules have fallen behind the assembly.
                if asm.is_some() && seen.is_empty() && field.name != "pad" {
                    problems.push(format!("{name}: no access to it found in the assembly (is the check out of date?)"));
                }
            }
        }
    }
    if let Some(a) = asm
        && !a.unattributed.is_empty()
    {
        let _ = writeln!(table, "\nmemory operands not attributed to a field (not checked):");
        for u in &a.unattributed {
            let _ = writeln!(table, "  {u}");
        }
    }
    (table, problems)
}

pub fn run() -> Result<(), String> {
    let root = util::root();
    let header_text = fs::read_to_string(root.join(HEADER)).map_err(|e| format!("could not read {HEADER}: {e}"))?;
    let header = header_defines(&header_text);
    let c = c_layout();
    let rust = rust_layout();
    let asm = context_sys_archive().and_then(|(archive, _)| asm_view(&archive));
    let (table, problems) = compare(
        &header,
        c.as_ref().map_err(String::as_str),
        rust.as_ref().map_err(String::as_str),
        asm.as_ref().map_err(String::as_str),
    );
    print!("{table}");
    if problems.is_empty() {
        println!("\nlayout: header, C, Rust and assembly agree on every field");
        Ok(())
    } else {
        Err(format!("{} layout disagreement(s):\n  {}", problems.len(), problems.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWAP: &str = "0000000000000000 <context_sys_swap>:
   0:\tmov    %rsp,(%rdi)
   3:\tmov    %rbx,0x8(%rdi)
   1b:\tstmxcsr 0x38(%rdi)
   22:\tmov    0x38(%rsi),%eax
   2f:\tmovzwl 0x3c(%rsi),%eax
   33:\tcmp    0x3c(%rdi),%ax
   39:\tmov    (%rsi),%rax
   3c:\tmov    (%rax),%rcx
   3f:\tlea    0x8(%rax),%rsp
   47:\tmov    0x10(%rsi),%rbp
   68:\tnopl   0x0(%rax,%rax,1)

00000000000000a0 <context_sys_start>:
  a0:\tmovq   (%rsp),%xmm0
  a5:\tmovq   0x38(%rsp),%xmm7
  b1:\tmov    0x50(%rsp),%rdx
  c1:\tmov    0x70(%rsp),%r11
  c9:\tlea    0x80(%rsp),%rsp
  d3:\tmov    %rax,0x40(%rbx)
  d7:\tmov    %rdx,0x48(%rbx)
  db:\tmovups %xmm0,0x50(%rbx)
";

    fn fields(view: &AsmView) -> Vec<(String, String, i64)> {
        view.accesses.iter().map(|a| (a.strukt.to_string(), a.field.clone(), a.offset)).collect()
    }

    #[test]
    fn each_access_is_attributed_to_the_field_of_the_register_it_moves() {
        let view = asm_accesses(SWAP);
        let got = fields(&view);
        let want: Vec<(String, String, i64)> = [
            (REGS, "rsp", 0),
            (REGS, "rbx", 8),
            (REGS, "mxcsr", 56),
            (REGS, "mxcsr", 56),
            (REGS, "fpucw", 60),
            (REGS, "fpucw", 60),
            (REGS, "rsp", 0),
            (REGS, "rbp", 16),
            (BOOT, "xmm[0]", 0),
            (BOOT, "xmm[7]", 56),
            (BOOT, "gp[2]", 80),
            (BOOT, "entry", 112),
            (BOOT, BOOT_SIZE_FIELD, 128),
            (REGS, "ret_rax", 64),
            (REGS, "ret_rdx", 72),
            (REGS, "ret_xmm0", 80),
        ]
        .iter()
        .map(|(s, f, o)| (s.to_string(), f.to_string(), *o))
        .collect();
        assert_eq!(got, want);
        assert!(view.unattributed.is_empty(), "{:?}", view.unattributed);
    }

    #[test]
    fn cfi_rules_are_attributed_by_register() {
        let frames = "00000018 0000000000000048 0000001c FDE cie=00000000 pc=0000000000000000..0000000000000068
  DW_CFA_expression: r3 (rbx) (DW_OP_breg4 (rsi): 8)
  DW_CFA_expression: r13 (r13) (DW_OP_breg4 (rsi): 40)
  DW_CFA_def_cfa_expression (DW_OP_breg12 (r12): 0; DW_OP_deref; DW_OP_plus_uconst: 8)
";
        let funcs = BTreeMap::from([(0u64, "context_sys_swap".to_string())]);
        let got: Vec<(String, i64, String)> =
            cfi_accesses(frames, &funcs).into_iter().map(|a| (a.field, a.offset, a.function)).collect();
        assert_eq!(
            got,
            [
                ("rbx".to_string(), 8, "CFI of context_sys_swap".to_string()),
                ("r13".to_string(), 40, "CFI of context_sys_swap".to_string()),
                ("rsp".to_string(), 0, "CFI of context_sys_swap".to_string()),
            ]
        );
    }

    fn header() -> BTreeMap<String, u64> {
        header_defines(&fs::read_to_string(util::root().join(HEADER)).expect("header"))
    }

    #[test]
    fn a_hand_edited_offset_in_the_assembly_is_named() {
        let edited = SWAP.replace("mov    %rbx,0x8(%rdi)", "mov    %rbx,0x10(%rdi)");
        let view = asm_accesses(&edited);
        let (_, problems) = compare(&header(), Err("skipped"), Err("skipped"), Ok(&view));
        assert!(
            problems.iter().any(|p| p.starts_with("context_sys_regs.rbx: context_sys_swap uses offset 16")),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_moved_header_offset_is_named_against_c_and_rust() {
        let mut h = header();
        h.insert("CONTEXT_SYS_OFF_R14".into(), 48);
        let c = parse_layout("field context_sys_regs r14 40 8\n").unwrap();
        let (_, problems) = compare(&h, Ok(&c), Ok(&c), Err("skipped"));
        assert!(
            problems
                .iter()
                .any(|p| p == "context_sys_regs.r14: C offsetof says 40, the header's CONTEXT_SYS_OFF_R14 is 48"),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("context_sys_regs.r14: Rust offset_of! says 40")),
            "{problems:#?}"
        );
    }
}
