//! Which field of which shared struct each layout `#define` of
//! `context_sys.h` names.
//!
//! The header's `CONTEXT_SYS_OFF_*` and `CONTEXT_SYS_BOOT_*` defines are the
//! one list of the fields the assembly shares with C and Rust. This file
//! reads that list by the header's naming convention, so that the programs
//! that print or compare the layout iterate it instead of each naming every
//! field:
//!
//! * `context-tests-c/build.rs` generates from it the field list that the
//!   `layout` example prints with `offset_of!`;
//! * `cargo xtask layout` generates from it the field list that
//!   `c/layout.c` prints with `offsetof`, and names its table's rows.
//!
//! Both include this file by path, so it uses std only and names nothing
//! through `crate::`.
#![allow(dead_code)]

/// A struct shared with the assembly, and the defines that describe it.
pub struct SharedStruct {
    /// Its name in C (`struct context_sys_regs`).
    pub c_name: &'static str,
    /// The Rust type in `context_sys` with the same layout.
    pub rust_name: &'static str,
    /// The prefix of the defines of its fields' offsets.
    pub field_prefix: &'static str,
    /// The define of its size.
    pub size: &'static str,
    /// The define of its alignment.
    pub align: &'static str,
}

/// Every struct shared with the assembly.
pub const STRUCTS: [SharedStruct; 2] = [
    SharedStruct {
        c_name: "context_sys_regs",
        rust_name: "ContextRegs",
        field_prefix: "CONTEXT_SYS_OFF_",
        size: "CONTEXT_SYS_REGS_SIZE",
        align: "CONTEXT_SYS_REGS_ALIGN",
    },
    SharedStruct {
        c_name: "context_sys_boot_frame",
        rust_name: "BootFrame",
        field_prefix: "CONTEXT_SYS_BOOT_",
        size: "CONTEXT_SYS_BOOT_SIZE",
        align: "CONTEXT_SYS_BOOT_ALIGN",
    },
];

/// On x86_64 the boot frame's `gp` array holds the integer argument
/// registers in the System V order; `CONTEXT_SYS_BOOT_<REG>` is
/// `gp[<position>]`. (Its floating ones are `CONTEXT_SYS_BOOT_XMM<n>`,
/// `xmm[n]`; on aarch64 the integer ones are `CONTEXT_SYS_BOOT_X<n>`,
/// `gp[n]`, and the floating ones `CONTEXT_SYS_BOOT_D<n>`, `fp[n]`.)
const ARG_REGISTERS: [&str; 6] = ["RDI", "RSI", "RDX", "RCX", "R8", "R9"];

/// `<letters><n>` with `n` a number: (the array, n) if the letters are
/// `prefix`.
fn numbered(suffix: &str, prefix: &str, array: &str) -> Option<(String, Option<usize>)> {
    let n = suffix.strip_prefix(prefix)?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| (array.to_string(), n.parse().ok()))
}

/// One field as a define of the header names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The C name of its struct.
    pub strukt: &'static str,
    /// The Rust type of its struct.
    pub rust_struct: &'static str,
    /// The member (for an array element, the array).
    pub member: String,
    /// The element, for an array member (`xmm[3]`).
    pub index: Option<usize>,
    /// The define of its offset, e.g. `CONTEXT_SYS_OFF_RBX`.
    pub define: String,
}

impl Field {
    /// How C designates it, and how `cargo xtask layout` names it:
    /// `rbx`, `xmm[3]`.
    pub fn designator(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.member),
            None => self.member.clone(),
        }
    }
}

/// The field that the define `name` gives the offset of, or `None` if it is
/// not a field offset (a size, an alignment, any other constant).
pub fn field(name: &str) -> Option<Field> {
    let s = STRUCTS.iter().find(|s| name.starts_with(s.field_prefix) && name != s.size && name != s.align)?;
    let suffix = &name[s.field_prefix.len()..];
    let boot = s.c_name == "context_sys_boot_frame";
    let (member, index) = if !boot {
        (suffix.to_ascii_lowercase(), None)
    } else if let Some(element) =
        numbered(suffix, "XMM", "xmm").or_else(|| numbered(suffix, "X", "gp")).or_else(|| numbered(suffix, "D", "fp"))
    {
        element
    } else if ARG_REGISTERS.contains(&suffix) {
        ("gp".to_string(), ARG_REGISTERS.iter().position(|r| *r == suffix))
    } else {
        (suffix.to_ascii_lowercase(), None)
    };
    Some(Field { strukt: s.c_name, rust_struct: s.rust_name, member, index, define: name.to_string() })
}

/// The fields that the defines `names` (a header's, in its order) give the
/// offsets of, struct by struct in the order of [`STRUCTS`], each struct's
/// in the header's order.
pub fn fields<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Field> {
    let mut all: Vec<Field> = names.into_iter().filter_map(field).collect();
    all.sort_by_key(|f| STRUCTS.iter().position(|s| s.c_name == f.strukt));
    all
}
