//! `cargo xtask abi`: checks on the assembly as built, the C-only harness,
//! and the ABI probes.
//!
//! On each object of the built `libcontext_sys.a`:
//! * every routine the Rust crate links (`link_name = "..."` in
//!   `context-sys/src/lib.rs`) and every exported symbol is a global `FUNC`
//!   with a non-zero size, declared in the C header;
//! * each has exactly one FDE in `.eh_frame`, covering exactly
//!   `[start, start + size)`, so unwinders and debuggers find its CFI;
//! * `context_sys_start`'s FDE, and no other, has a CIE with a personality
//!   routine ("zPR"), and the personality pointer is relocated to the local
//!   `FUNC` `context_sys_start_personality`, which has an exact FDE of its
//!   own without a personality: the routine that aborts an unwind trying
//!   to leave an entry function;
//! * the object has a `.note.GNU-stack` section without the executable flag;
//! * it references no undefined symbol but [`EXPECTED_UNDEFINED`];
//! * no relocation against code needs patching text at load time: the
//!   archive links into a shared object with `-z text`, which has no
//!   `TEXTREL` and a non-executable `GNU_STACK`.
//!
//! Those archive checks are the same for every architecture, parametrised
//! by an [`Arch`] (tool names, the absolute relocation types): `cargo
//! xtask aarch64` runs them on the aarch64 archive with [`AARCH64`].
//!
//! Then it builds `context-tests-c/c/harness.c` with the assembly and no
//! Rust, at `-O0` and `-O2`, and runs it; and runs the `abi_probes` test
//! (callee-saved registers, MXCSR and x87 control word, entry alignment and
//! stack arguments for spill counts 0 to 16).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::layout::{self, HEADER, defined_functions, output, scratch_dir};
use crate::util;

const ASM: &str = "context-sys/src/context_sys_x86_64.S";

/// What the archive checks need to know of one architecture.
#[derive(Debug)]
pub struct Arch {
    /// For messages and scratch file names.
    pub name: &'static str,
    /// The C compiler driver that links for it.
    pub cc: &'static str,
    pub ar: &'static str,
    /// `readelf` reads any ELF; it is named here for symmetry.
    pub readelf: &'static str,
    /// For `--dwarf=frames`: the host's `objdump` does not apply aarch64
    /// relocations to `.eh_frame` in an object (it prints each FDE's pc as
    /// the raw place of its relocation), so each architecture has its own.
    pub objdump: &'static str,
    /// Relocation types that patch an absolute address into the section
    /// they apply to: in code, those need a writable text segment at load
    /// time.
    pub absolute_relocs: &'static [&'static str],
}

pub const X86_64: Arch = Arch {
    name: "x86_64",
    cc: "cc",
    ar: "ar",
    readelf: "readelf",
    objdump: "objdump",
    absolute_relocs: &["R_X86_64_64", "R_X86_64_32", "R_X86_64_32S"],
};

pub const AARCH64: Arch = Arch {
    name: "aarch64",
    cc: crate::aarch64::CC,
    ar: "aarch64-linux-gnu-ar",
    readelf: "readelf",
    objdump: "aarch64-linux-gnu-objdump",
    absolute_relocs: &[
        "R_AARCH64_ABS64",
        "R_AARCH64_ABS32",
        "R_AARCH64_ABS16",
        "R_AARCH64_MOVW_UABS_G0",
        "R_AARCH64_MOVW_UABS_G0_NC",
        "R_AARCH64_MOVW_UABS_G1",
        "R_AARCH64_MOVW_UABS_G1_NC",
        "R_AARCH64_MOVW_UABS_G2",
        "R_AARCH64_MOVW_UABS_G2_NC",
        "R_AARCH64_MOVW_UABS_G3",
    ],
};

/// The undefined symbols the assembly may reference: the personality
/// routine of `context_sys_start` calls `abort` after writing its message.
pub const EXPECTED_UNDEFINED: &[&str] = &["abort"];
const SYS_LIB: &str = "context-sys/src/lib.rs";
const HARNESS: &str = "context-tests-c/c/harness.c";

/// The symbols the Rust crate links against: every `link_name = "..."`.
pub fn linked_names(lib_rs: &str) -> Vec<String> {
    lib_rs
        .lines()
        .filter_map(|l| l.split("link_name = \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// Every global symbol defined in an object, with its type, from
/// `readelf -sW`: name -> type.
fn global_symbols(readelf_syms: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in readelf_syms.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 8 && w[4] == "GLOBAL" && w[6] != "UND" && w[0].ends_with(':') {
            out.insert(w[7].to_string(), w[3].to_string());
        }
    }
    out
}

/// FDE address ranges `[start, end)` from `objdump --dwarf=frames`.
pub fn fde_ranges(frames: &str) -> Vec<(u64, u64)> {
    frames
        .lines()
        .filter(|l| l.contains(" FDE "))
        .filter_map(|l| l.split("pc=").nth(1))
        .filter_map(|r| {
            let (a, b) = r.trim().split_once("..")?;
            Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b.trim(), 16).ok()?))
        })
        .collect()
}

/// The routine whose FDE must name a personality, and that personality.
const START: &str = "context_sys_start";
const PERSONALITY: &str = "context_sys_start_personality";

/// One FDE of `objdump --dwarf=frames`: its CIE's offset and `[start, end)`.
#[derive(Debug, PartialEq)]
pub struct Fde {
    pub cie: u64,
    pub start: u64,
    pub end: u64,
}

/// Every FDE of `objdump --dwarf=frames`, with the CIE it uses.
pub fn fdes(frames: &str) -> Vec<Fde> {
    frames
        .lines()
        .filter(|l| l.contains(" FDE "))
        .filter_map(|l| {
            let cie = l.split("cie=").nth(1)?.split_whitespace().next()?;
            let (a, b) = l.split("pc=").nth(1)?.trim().split_once("..")?;
            Some(Fde {
                cie: u64::from_str_radix(cie, 16).ok()?,
                start: u64::from_str_radix(a, 16).ok()?,
                end: u64::from_str_radix(b.trim(), 16).ok()?,
            })
        })
        .collect()
}

/// Every CIE of `objdump --dwarf=frames`: offset -> (offset one past its
/// end, augmentation string).
pub fn cies(frames: &str) -> BTreeMap<u64, (u64, String)> {
    let mut out = BTreeMap::new();
    let mut current = None;
    for line in frames.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        // `offset length id CIE`: the length excludes its own 4 bytes.
        if let [off, len, _, "CIE"] = w.as_slice()
            && let (Ok(off), Ok(len)) = (u64::from_str_radix(off, 16), u64::from_str_radix(len, 16))
        {
            out.insert(off, (off + 4 + len, String::new()));
            current = Some(off);
        } else if let Some(aug) = line.trim().strip_prefix("Augmentation:")
            && let Some(entry) = current.and_then(|c| out.get_mut(&c))
        {
            entry.1 = aug.trim().trim_matches('"').to_string();
        } else if line.contains(" FDE ") {
            current = None;
        }
    }
    out
}

/// `.rela.eh_frame` entries of `readelf -rW`: (offset, symbol, addend).
pub fn eh_frame_relocs(relocs: &str) -> Vec<(u64, String, i64)> {
    let mut out = Vec::new();
    let mut in_eh_frame = false;
    for line in relocs.lines() {
        if let Some(rest) = line.strip_prefix("Relocation section '") {
            in_eh_frame = rest.starts_with(".rela.eh_frame'");
            continue;
        }
        // `Offset Info Type Sym.Value Sym.Name + Addend` (or `- Addend`).
        let w: Vec<&str> = line.split_whitespace().collect();
        if in_eh_frame
            && let [off, _, _, _, sym, sign, addend] = w.as_slice()
            && let (Ok(off), Ok(addend)) = (u64::from_str_radix(off, 16), i64::from_str_radix(addend, 16))
        {
            out.push((off, sym.to_string(), if *sign == "-" { -addend } else { addend }));
        }
    }
    out
}

/// A defined symbol of `readelf -sW`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sym<'a> {
    ty: &'a str,
    /// The section index: values are offsets in that section.
    ndx: &'a str,
    value: u64,
    size: u64,
}

/// Every defined `FUNC` and `SECTION` symbol of `readelf -sW`, local or
/// global, by name.
fn symbols(readelf_syms: &str) -> BTreeMap<&str, Sym<'_>> {
    let mut out = BTreeMap::new();
    for line in readelf_syms.lines() {
        // Num: Value Size Type Bind Vis Ndx Name
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 8 && (w[3] == "FUNC" || w[3] == "SECTION") && w[6] != "UND" && w[0].ends_with(':') {
            let value = u64::from_str_radix(w[1], 16).unwrap_or(u64::MAX);
            out.insert(w[7], Sym { ty: w[3], ndx: w[6], value, size: w[2].parse().unwrap_or(0) });
        }
    }
    out
}

/// Checks that `START`'s FDE, and only it, names `PERSONALITY`, and that
/// `PERSONALITY` has CFI of its own.
fn personality_problems(name: &str, frames: &str, relocs: &str, syms: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let syms = symbols(syms);
    let (Some(start), Some(pers)) = (syms.get(START), syms.get(PERSONALITY).filter(|p| p.ty == "FUNC")) else {
        return vec![format!("{name}: {START} or its personality routine {PERSONALITY} is not a defined FUNC here")];
    };
    let cies = cies(frames);
    let fdes = fdes(frames);
    let has_personality = |cie: u64| cies.get(&cie).is_some_and(|(_, aug)| aug.contains('P'));
    for fde in &fdes {
        let is_start = fde.start == start.value;
        match (is_start, has_personality(fde.cie)) {
            (true, false) => problems.push(format!(
                "{name}: {START}'s CIE has no personality routine (missing .cfi_personality?), so an unwind would leave the entry function"
            )),
            (false, true) => problems.push(format!(
                "{name}: the FDE of {:#x}..{:#x} names a personality routine; only {START}'s may",
                fde.start, fde.end
            )),
            _ => {}
        }
    }
    // In an object, a pointer in .eh_frame is a relocation against a
    // symbol (usually the section's) plus an addend: the target is that
    // section at the symbol's value + addend.
    let relocs = eh_frame_relocs(relocs);
    for (&cie, (end, _)) in cies.iter().filter(|(off, _)| has_personality(**off)) {
        let targets: Vec<(&str, i64)> = relocs
            .iter()
            .filter(|(off, _, _)| (cie..*end).contains(off))
            .map(|(_, sym, addend)| syms.get(sym.as_str()).map_or(("?", 0), |s| (s.ndx, s.value as i64 + addend)))
            .collect();
        if targets != [(pers.ndx, pers.value as i64)] {
            problems.push(format!(
                "{name}: the personality pointer of the CIE at {cie:#x} points at {targets:?} (section, offset), not at {PERSONALITY} ({}, {})",
                pers.ndx, pers.value
            ));
        }
    }
    let covering: Vec<&Fde> = fdes.iter().filter(|f| f.start <= pers.value && pers.value < f.end).collect();
    match covering.as_slice() {
        [f] if (f.start, f.end) == (pers.value, pers.value + pers.size) && !has_personality(f.cie) => {}
        _ => problems.push(format!(
            "{name}: {PERSONALITY} ({:#x}, {} bytes) needs exactly one FDE covering exactly it, without a personality; found {covering:?}",
            pers.value, pers.size
        )),
    }
    problems
}

/// Every global symbol an object references without defining it, from
/// `readelf -sW` (`UND` rows; weak ones too, which a link may leave
/// unresolved).
pub fn undefined_globals(readelf_syms: &str) -> Vec<String> {
    readelf_syms
        .lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            (w.len() >= 8 && w[0].ends_with(':') && matches!(w[4], "GLOBAL" | "WEAK") && w[6] == "UND")
                .then(|| w[7].split('@').next().unwrap_or(w[7]).to_string())
        })
        .collect()
}

/// The problem with the `.note.GNU-stack` section of `readelf -SW`, if any.
pub fn gnu_stack_problem(sections: &str) -> Option<String> {
    let Some(line) = sections.lines().find(|l| l.contains(".note.GNU-stack")) else {
        return Some("no .note.GNU-stack section, so the linker would make the stack executable".to_string());
    };
    // `[Nr] Name Type Address Off Size ES Flg Lk Inf Al`: the flags column
    // (absent when no flag is set) is the only one that can hold an `X`.
    let after_name = line.split(".note.GNU-stack").nth(1).unwrap_or("");
    let flags = after_name.split_whitespace().nth(5).unwrap_or("");
    flags.contains('X').then(|| format!(".note.GNU-stack is marked executable (flags `{flags}`)"))
}

/// Relocations of `readelf -rW` of one of `types` in a section of code
/// (`.rela.text*`, `.rel.text*`): (section, type, the whole row).
pub fn text_relocations(relocs: &str, types: &[&str]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = "";
    for line in relocs.lines() {
        if let Some(rest) = line.strip_prefix("Relocation section '") {
            section = rest.split('\'').next().unwrap_or("");
        } else if (section.starts_with(".rela.text") || section.starts_with(".rel.text"))
            && let Some(ty) = line.split_whitespace().nth(2).filter(|t| types.contains(t))
        {
            out.push((section.to_string(), ty.to_string(), line.trim().to_string()));
        }
    }
    out
}

/// Checks one object file; returns the problems found.
pub fn check_object(arch: &Arch, obj: &Path, linked: &[String], header: &str) -> Result<Vec<String>, String> {
    let name = obj.file_name().map_or_else(|| obj.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut problems = Vec::new();
    let syms = output(Command::new(arch.readelf).arg("-sW").arg(obj))?;
    let funcs = defined_functions(&syms);
    let globals = global_symbols(&syms);

    for (sym, ty) in &globals {
        if ty != "FUNC" {
            problems
                .push(format!("{name}: exported symbol {sym} is {ty}, not FUNC (missing `.type {sym}, @function`?)"));
        }
        if !header.contains(&format!("{sym}(")) {
            problems.push(format!("{name}: exported symbol {sym} is not declared in {HEADER}"));
        }
    }
    for (sym, &(_, size)) in &funcs {
        if size == 0 {
            problems.push(format!("{name}: {sym} has size 0 (missing `.size`?)"));
        }
    }
    for sym in linked {
        if !funcs.contains_key(sym) {
            problems.push(format!("{name}: {sym}, which context-sys links, is not a defined global FUNC here"));
        }
    }

    for sym in undefined_globals(&syms) {
        if !EXPECTED_UNDEFINED.contains(&sym.as_str()) {
            problems
                .push(format!("{name}: references the undefined symbol {sym} (expected only {EXPECTED_UNDEFINED:?})"));
        }
    }

    let frames = output(Command::new(arch.objdump).arg("--dwarf=frames").arg(obj))?;
    let fdes = fde_ranges(&frames);
    for (sym, &(start, size)) in &funcs {
        let covering: Vec<&(u64, u64)> = fdes.iter().filter(|(a, b)| *a <= start && start < *b).collect();
        match covering.as_slice() {
            [] => problems.push(format!("{name}: {sym} has no FDE in .eh_frame (missing .cfi_startproc?)")),
            [(a, b)] if (*a, *b) != (start, start + size) => problems
                .push(format!("{name}: {sym} spans {start:#x}..{:#x} but its FDE covers {a:#x}..{b:#x}", start + size)),
            [_] => {}
            _ => problems.push(format!("{name}: {sym} is covered by {} FDEs", covering.len())),
        }
    }

    let relocs = output(Command::new(arch.readelf).arg("-rW").arg(obj))?;
    if funcs.contains_key(START) {
        problems.extend(personality_problems(&name, &frames, &relocs, &syms));
    }

    let sections = output(Command::new(arch.readelf).arg("-SW").arg(obj))?;
    problems.extend(gnu_stack_problem(&sections).map(|p| format!("{name}: {p}")));
    for (section, ty, row) in text_relocations(&relocs, arch.absolute_relocs) {
        problems.push(format!("{name}: text relocation {ty} in {section}: `{row}`"));
    }
    Ok(problems)
}

/// Extracts the members of `archive` into a fresh directory.
fn unpack(arch: &Arch, archive: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = scratch_dir()?.join(format!("context_sys_objects_{}", arch.name));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    util::run(Command::new(arch.ar).arg("x").arg(archive).current_dir(&dir))?;
    let mut objs: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("could not list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objs.sort();
    if objs.is_empty() {
        return Err(format!("{} holds no object files", archive.display()));
    }
    Ok(objs)
}

/// Links the whole archive into the shared object `so` with `arch.cc
/// -shared` and `flags`; returns what the linker printed (its warnings), or
/// the error.
pub fn link_shared(arch: &Arch, archive: &Path, flags: &[&str], so: &Path) -> Result<String, String> {
    let out = Command::new(arch.cc)
        .arg("-shared")
        .args(flags)
        .arg("-Wl,--whole-archive")
        .arg(archive)
        .args(["-Wl,--no-whole-archive", "-o"])
        .arg(so)
        .output()
        .map_err(|e| format!("could not run {}: {e}", arch.cc))?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(said) } else { Err(format!("{} -shared {flags:?} failed: {said}", arch.cc)) }
}

/// The problems of a linked shared object, from its `readelf -dW` (dynamic
/// section) and `readelf -lW` (program headers).
pub fn shared_object_problems(dynamic: &str, headers: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if dynamic.contains("TEXTREL") {
        problems.push("the shared object has TEXTREL: some code needs patching at load time".to_string());
    }
    match headers.lines().find(|l| l.trim_start().starts_with("GNU_STACK")) {
        None => problems.push("the shared object has no GNU_STACK program header".to_string()),
        Some(l) if l.contains("RWE") => {
            problems.push(format!("the shared object's stack is executable: `{}`", l.trim()))
        }
        Some(_) => {}
    }
    problems
}

/// Links the archive into a shared object the way a C program or another
/// language's runtime would, refusing text relocations, and checks the
/// result's dynamic section and program headers.
fn check_shared_object(arch: &Arch, archive: &Path) -> Result<Vec<String>, String> {
    let so = scratch_dir()?.join(format!("libcontext_sys_check_{}.so", arch.name));
    if let Err(e) = link_shared(arch, archive, &["-Wl,-z,text", "-Wl,-z,noexecstack"], &so) {
        return Ok(vec![format!(
            "linking the archive into a shared object with -z text failed (text relocations?): {e}"
        )]);
    }
    let dynamic = output(Command::new(arch.readelf).arg("-dW").arg(&so))?;
    let headers = output(Command::new(arch.readelf).arg("-lW").arg(&so))?;
    Ok(shared_object_problems(&dynamic, &headers))
}

/// Builds and runs the C-only harness at each optimisation level.
fn run_c_harness() -> Result<(), String> {
    let root = util::root();
    for opt in ["-O0", "-O2"] {
        let exe = scratch_dir()?.join(format!("c_harness{opt}"));
        output(
            Command::new("cc")
                .args(["-std=c11", opt, "-Wall", "-Wextra", "-Werror", "-Wa,--noexecstack", "-I"])
                .arg(root.join("context-sys/include"))
                .arg(root.join(HARNESS))
                .arg(root.join(ASM))
                .args(["-lm", "-o"])
                .arg(&exe),
        )?;
        let out = Command::new(&exe).output().map_err(|e| format!("could not run {}: {e}", exe.display()))?;
        print!("  {opt}: {}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            return Err(format!(
                "the C harness ({opt}) failed with {}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// Every archive check of the module docs on `archive` as built for
/// `arch`; returns a one-line summary when all pass.
pub fn check_archive(arch: &Arch, archive: &Path) -> Result<String, String> {
    let root = util::root();
    let lib_rs = fs::read_to_string(root.join(SYS_LIB)).map_err(|e| format!("could not read {SYS_LIB}: {e}"))?;
    let linked = linked_names(&lib_rs);
    if linked.is_empty() {
        return Err(format!("found no `link_name = \"...\"` in {SYS_LIB}"));
    }
    let header = fs::read_to_string(root.join(HEADER)).map_err(|e| format!("could not read {HEADER}: {e}"))?;

    let mut problems = Vec::new();
    let objs = unpack(arch, archive)?;
    // `linked` must be found somewhere; check per object only what it defines.
    let mut defined = Vec::new();
    for obj in &objs {
        let syms = output(Command::new(arch.readelf).arg("-sW").arg(obj))?;
        let here: Vec<String> = defined_functions(&syms).into_keys().collect();
        let mine: Vec<String> = linked.iter().filter(|n| here.contains(n)).cloned().collect();
        problems.extend(check_object(arch, obj, &mine, &header)?);
        defined.extend(here);
    }
    for name in &linked {
        if !defined.contains(name) {
            problems.push(format!("{name}, which context-sys links, is defined in no object of the archive"));
        }
    }
    problems.extend(check_shared_object(arch, archive)?);
    if !problems.is_empty() {
        return Err(format!(
            "{} problem(s) with the built {} assembly:\n  {}",
            problems.len(),
            arch.name,
            problems.join("\n  ")
        ));
    }
    Ok(format!(
        "{} routines ({}) are sized FUNCs with exact FDEs; only {START}'s names a personality ({PERSONALITY}, exact FDE); GNU-stack non-executable; undefined only {}; no text relocations (links with -z text)",
        linked.len(),
        linked.join(", "),
        EXPECTED_UNDEFINED.join(", ")
    ))
}

pub fn run() -> Result<(), String> {
    let (archive, build_error) = layout::context_sys_archive()?;
    if let Some(e) = build_error {
        return Err(e);
    }
    println!("abi: {}", archive.display());
    println!("  ok: {}", check_archive(&X86_64, &archive)?);

    println!("abi: C-only harness ({HARNESS})");
    run_c_harness()?;

    println!("abi: probes (callee-saved, MXCSR/x87, entry alignment; spill counts 0 to 16)");
    util::run(util::cargo().args(["test", "--workspace", "--test", "abi_probes", "--", "--test-threads=1"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_are_read_from_the_declarations() {
        let src =
            "    #[link_name = \"context_sys_swap\"]\n    pub fn swap();\n    #[link_name = \"context_sys_set\"]\n";
        assert_eq!(linked_names(src), ["context_sys_swap", "context_sys_set"]);
    }

    #[test]
    fn fde_ranges_are_parsed() {
        let frames = "00000018 0000000000000048 0000001c FDE cie=00000000 pc=0000000000000000..0000000000000068\n\
                      00000064 0000000000000044 00000068 FDE cie=00000000 pc=0000000000000070..000000000000009b\n";
        assert_eq!(fde_ranges(frames), [(0, 0x68), (0x70, 0x9b)]);
    }

    #[test]
    fn cies_fdes_and_eh_frame_relocations_are_parsed() {
        let frames = "00000000 0000000000000014 00000000 CIE\n  Augmentation:          \"zR\"\n\
                      00000018 0000000000000048 0000001c FDE cie=00000000 pc=0000000000000000..0000000000000059\n\
                      000000ac 0000000000000018 00000000 CIE\n  Augmentation:          \"zPR\"\n\
                      000000c8 0000000000000084 00000020 FDE cie=000000ac pc=0000000000000090..0000000000000138\n";
        let cies = cies(frames);
        assert_eq!(cies.get(&0), Some(&(0x18, "zR".to_string())));
        assert_eq!(cies.get(&0xac), Some(&(0xc8, "zPR".to_string())));
        assert_eq!(fdes(frames), [Fde { cie: 0, start: 0, end: 0x59 }, Fde { cie: 0xac, start: 0x90, end: 0x138 }]);
        let relocs = "Relocation section '.rela.text' at offset 0x960 contains 1 entry:\n\
                      0000000000000147  0000000300000002 R_X86_64_PC32          0000000000000000 .rodata - 4\n\
                      Relocation section '.rela.eh_frame' at offset 0xbb8 contains 2 entries:\n\
                      \x20   Offset             Info             Type               Symbol's Value  Symbol's Name + Addend\n\
                      00000000000000be  0000000100000002 R_X86_64_PC32          0000000000000000 .text + 140\n\
                      00000000000000d0  0000000100000002 R_X86_64_PC32          0000000000000000 .text - 10\n";
        assert_eq!(eh_frame_relocs(relocs), [(0xbe, ".text".to_string(), 0x140), (0xd0, ".text".to_string(), -0x10)]);
    }

    #[test]
    fn undefined_globals_are_listed_without_versions() {
        let syms = "\
   Num:    Value          Size Type    Bind   Vis      Ndx Name
     0: 0000000000000000     0 NOTYPE  LOCAL  DEFAULT  UND 
    17: 0000000000000000   144 FUNC    GLOBAL DEFAULT    1 context_sys_swap
    20: 0000000000000000     0 NOTYPE  GLOBAL DEFAULT  UND abort
    21: 0000000000000000     0 FUNC    WEAK   DEFAULT  UND __cxa_finalize@GLIBC_2.17
";
        assert_eq!(undefined_globals(syms), ["abort", "__cxa_finalize"]);
        assert!(undefined_globals("    1: 0000000000000000   144 FUNC    GLOBAL DEFAULT    1 f\n").is_empty());
    }

    #[test]
    fn the_stack_note_must_exist_and_not_be_executable() {
        let ok = "  [ 7] .note.GNU-stack   PROGBITS        0000000000000000 000378 000000 00      0   0  1\n";
        assert_eq!(gnu_stack_problem(ok), None);
        let exec = "  [ 7] .note.GNU-stack   PROGBITS        0000000000000000 000378 000000 00   X  0   0  1\n";
        assert!(gnu_stack_problem(exec).is_some_and(|p| p.contains("executable")));
        assert!(gnu_stack_problem("  [ 1] .text PROGBITS 0000000000000000 000040 000258 00  AX  0   0  8\n").is_some());
    }

    #[test]
    fn absolute_relocations_count_only_in_code() {
        let relocs = "\
Relocation section '.rela.text' at offset 0xd10 contains 3 entries:
    Offset             Info             Type               Symbol's Value  Symbol's Name + Addend
000000000000018c  0000000600000113 R_AARCH64_ADR_PREL_PG_HI21 0000000000000000 .rodata + 0
00000000000001c8  000000140000011b R_AARCH64_CALL26       0000000000000000 abort + 0
Relocation section '.rela.debug_info' at offset 0xd70 contains 22 entries:
0000000000000010  0000000100000101 R_AARCH64_ABS64        0000000000000000 .text + 0
";
        assert!(text_relocations(relocs, AARCH64.absolute_relocs).is_empty());
        let bad = format!(
            "{relocs}Relocation section '.rela.text.hot' at offset 0x10 contains 1 entry:\n\
                           0000000000000008  0000000100000101 R_AARCH64_ABS64        0000000000000000 .rodata + 0\n"
        );
        let found = text_relocations(&bad, AARCH64.absolute_relocs);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0.as_str(), found[0].1.as_str()), (".rela.text.hot", "R_AARCH64_ABS64"));
        // x86_64's types are not aarch64's.
        assert!(text_relocations(&bad, X86_64.absolute_relocs).is_empty());
    }

    #[test]
    fn a_shared_object_needs_no_textrel_and_a_non_executable_stack() {
        let dynamic = " 0x0000000070000001 (AARCH64_BTI_PLT)    \n 0x0000000000000000 (NULL)               0x0\n";
        let headers = "  GNU_STACK      0x000000 0x0000000000000000 0x0000000000000000 0x000000 0x000000 RW  0x10\n";
        assert!(shared_object_problems(dynamic, headers).is_empty());
        let textrel = " 0x0000000000000016 (TEXTREL)            0x0\n";
        assert_eq!(shared_object_problems(textrel, headers).len(), 1);
        let exec = "  GNU_STACK      0x000000 0x0000000000000000 0x0000000000000000 0x000000 0x000000 RWE 0x10\n";
        assert_eq!(shared_object_problems(dynamic, exec).len(), 1);
        assert_eq!(shared_object_problems(dynamic, "  LOAD 0x0 0x0 0x0 0x8 0x8 R E 0x10000\n").len(), 1);
    }

    #[test]
    fn the_context_sys_declarations_cover_the_header() {
        let root = util::root();
        let lib_rs = fs::read_to_string(root.join(SYS_LIB)).unwrap();
        let header = fs::read_to_string(root.join(HEADER)).unwrap();
        let names = linked_names(&lib_rs);
        assert!(names.len() >= 5, "{names:?}");
        for n in names {
            assert!(header.contains(&format!("{n}(")), "{n} is linked by Rust but not declared in the header");
        }
    }
}
