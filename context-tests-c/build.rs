//! Builds the C test children and the assembly probes, and generates a few
//! hundred more recording children with varied signatures.
//!
//! C signatures are fixed when C is compiled, so the property tests cannot
//! invent a signature at run time. Instead this script draws many
//! signatures (0 to 24 parameters of every scalar type, in mixed orders,
//! with every return type) from a fixed seed, writes one C child per
//! signature that records the exact bits of each argument it received, plus
//! a C wrapper that calls that child directly from unpacked 64-bit words, and
//! a Rust table describing them. The tests draw a signature from the table
//! and values for it, and compare the child run through a context with the
//! same child called by the C compiler's own call sequence.

// The workspace's one `#define` parser, shared with context-sys's build
// script and xtask.
#[path = "../context-sys/build/defines.rs"]
mod defines;
// Which struct field each layout define of context_sys.h names, shared with
// `cargo xtask layout`.
#[path = "build/layout_fields.rs"]
mod layout_fields;
// splitmix64, the workspace tests' generator (a build script cannot use the
// test-support dev-dependency, so it includes the file).
#[path = "../test-support/src/rng.rs"]
mod rng;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use rng::Rng;

/// Seed of the signature generator. Changing it changes which signatures
/// exist; it is fixed so that a failing case can be replayed.
const GEN_SEED: u64 = 0x00c0_ffee_5eed_0ab1;

/// How many generated children per parameter count (0..=24).
const PER_ARITY: usize = 16;
const MAX_ARGS: usize = 24;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Void,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Bool,
    F32,
    F64,
    Ptr,
}

const SCALARS: [Ty; 12] =
    [Ty::I8, Ty::U8, Ty::I16, Ty::U16, Ty::I32, Ty::U32, Ty::I64, Ty::U64, Ty::Bool, Ty::F32, Ty::F64, Ty::Ptr];

impl Ty {
    fn c_name(self, index: usize) -> &'static str {
        match self {
            Ty::Void => "void",
            Ty::I8 => "int8_t",
            Ty::U8 => "uint8_t",
            Ty::I16 => "int16_t",
            Ty::U16 => "uint16_t",
            Ty::I32 => "int32_t",
            Ty::U32 => "uint32_t",
            Ty::I64 => "int64_t",
            Ty::U64 => "uint64_t",
            Ty::Bool => "bool",
            Ty::F32 => "float",
            Ty::F64 => "double",
            // Both spellings are pointers of the INTEGER class.
            Ty::Ptr if index.is_multiple_of(2) => "void *",
            Ty::Ptr => "const char *",
        }
    }

    fn rust_name(self) -> &'static str {
        match self {
            Ty::Void => "Void",
            Ty::I8 => "I8",
            Ty::U8 => "U8",
            Ty::I16 => "I16",
            Ty::U16 => "U16",
            Ty::I32 => "I32",
            Ty::U32 => "U32",
            Ty::I64 => "I64",
            Ty::U64 => "U64",
            Ty::Bool => "Bool",
            Ty::F32 => "F32",
            Ty::F64 => "F64",
            Ty::Ptr => "Ptr",
        }
    }

    /// The 64-bit word a value `e` of this type is recorded as: signed
    /// integers sign-extended, unsigned ones and `bool` zero-extended, floats
    /// as their bit patterns, pointers as their address.
    fn bits(self, e: &str) -> String {
        match self {
            Ty::Void => "0".to_string(),
            Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64 => format!("(uint64_t)(int64_t)({e})"),
            Ty::U8 | Ty::U16 | Ty::U32 | Ty::U64 | Ty::Bool => format!("(uint64_t)({e})"),
            Ty::F32 => format!("ctc_bits_f32({e})"),
            Ty::F64 => format!("ctc_bits_f64({e})"),
            Ty::Ptr => format!("(uint64_t)(uintptr_t)({e})"),
        }
    }

    /// A value of this type read from the 64-bit word `w`.
    fn read_word(self, w: &str, index: usize) -> String {
        match self {
            Ty::Void => String::new(),
            Ty::F32 => format!("ctc_f32_from({w})"),
            Ty::F64 => format!("ctc_f64_from({w})"),
            Ty::Bool => format!("(bool)(({w}) & 1)"),
            Ty::Ptr => format!("({})(uintptr_t)({w})", self.c_name(index)),
            _ => format!("({})({w})", self.c_name(index)),
        }
    }
}

struct Sig {
    ret: Ty,
    params: Vec<Ty>,
}

/// The parameter list of variant `v` with `n` parameters. The first
/// variants are fixed shapes that matter for register assignment (all one
/// class, one class after the other, alternating); the rest are random.
fn params(n: usize, v: usize, rng: &mut Rng) -> Vec<Ty> {
    let ints = [Ty::I8, Ty::U16, Ty::I32, Ty::U64, Ty::Bool, Ty::Ptr, Ty::I16, Ty::U8, Ty::I64, Ty::U32];
    (0..n)
        .map(|i| match v {
            0 => Ty::I64,
            1 => Ty::F64,
            2 => Ty::F32,
            3 => SCALARS[(i + n) % SCALARS.len()],
            4 if i < n / 2 => [Ty::F32, Ty::F64][i % 2],
            4 => ints[i % ints.len()],
            5 if i < n / 2 => ints[i % ints.len()],
            5 => [Ty::F64, Ty::F32][i % 2],
            6 if i % 2 == 0 => [Ty::F64, Ty::F32][(i / 2) % 2],
            6 => ints[(i / 2) % ints.len()],
            7 => [Ty::I8, Ty::U8, Ty::Bool, Ty::I16, Ty::U16][i % 5],
            _ => SCALARS[rng.below(SCALARS.len())],
        })
        .collect()
}

fn signatures() -> Vec<Sig> {
    let mut rng = Rng(GEN_SEED);
    let mut sigs = Vec::new();
    for n in 0..=MAX_ARGS {
        for v in 0..PER_ARITY {
            let params = params(n, v, &mut rng);
            let ret = if rng.below(13) == 0 { Ty::Void } else { SCALARS[rng.below(SCALARS.len())] };
            sigs.push(Sig { ret, params });
        }
    }
    sigs
}

fn c_source(sigs: &[Sig]) -> String {
    let mut c = String::from(
        "/* Generated by context-tests-c/build.rs. Do not edit. */\n\
         #include <stdbool.h>\n#include <stdint.h>\n#include \"ctc.h\"\n\n",
    );
    for (id, sig) in sigs.iter().enumerate() {
        let params: Vec<String> = sig.params.iter().enumerate().map(|(i, t)| format!("{} a{i}", t.c_name(i))).collect();
        let params = if params.is_empty() { "void".to_string() } else { params.join(", ") };
        let ret = sig.ret.c_name(0);
        writeln!(c, "{ret} ctc_gen_{id}({params});").unwrap();
        writeln!(c, "{ret} ctc_gen_{id}({params}) {{").unwrap();
        writeln!(c, "    struct ctc_record *r = ctc_record_begin({id}, {});", sig.params.len()).unwrap();
        for (i, t) in sig.params.iter().enumerate() {
            writeln!(c, "    r->args[{i}] = {};", t.bits(&format!("a{i}"))).unwrap();
        }
        // Return the last argument of the return type if there is one, so
        // extreme values and NaN payloads travel back out; otherwise a mix.
        match (sig.ret, sig.params.iter().rposition(|&t| t == sig.ret)) {
            (Ty::Void, _) => writeln!(c, "    (void)ctc_record_mix(r);").unwrap(),
            (Ty::Ptr, Some(j)) => writeln!(c, "    return (void *)(uintptr_t)a{j};").unwrap(),
            (_, Some(j)) => writeln!(c, "    return a{j};").unwrap(),
            (t, None) => writeln!(c, "    return {};", t.read_word("ctc_record_mix(r)", 0)).unwrap(),
        }
        c.push_str("}\n");

        let args: Vec<String> =
            sig.params.iter().enumerate().map(|(i, t)| t.read_word(&format!("w[{i}]"), i)).collect();
        writeln!(c, "void ctc_gen_call_{id}(const uint64_t *w, uint64_t *ret);").unwrap();
        writeln!(c, "void ctc_gen_call_{id}(const uint64_t *w, uint64_t *ret) {{").unwrap();
        if sig.params.is_empty() {
            c.push_str("    (void)w;\n");
        }
        if sig.ret == Ty::Void {
            writeln!(c, "    ctc_gen_{id}({});\n    *ret = 0;", args.join(", ")).unwrap();
        } else {
            writeln!(c, "    {ret} v = ctc_gen_{id}({});", args.join(", ")).unwrap();
            writeln!(c, "    *ret = {};", sig.ret.bits("v")).unwrap();
        }
        c.push_str("}\n\n");
    }
    c
}

fn rust_source(sigs: &[Sig]) -> String {
    let mut r = String::from("// Generated by context-tests-c/build.rs. Do not edit.\n\n");
    writeln!(r, "/// The seed the signatures were drawn from.\npub const GEN_SEED: u64 = {GEN_SEED:#x};\n").unwrap();
    r.push_str("unsafe extern \"C\" {\n");
    for id in 0..sigs.len() {
        writeln!(r, "    fn ctc_gen_{id}();").unwrap();
        writeln!(r, "    fn ctc_gen_call_{id}(w: *const u64, ret: *mut u64);").unwrap();
    }
    r.push_str("}\n\n");
    writeln!(r, "/// Every generated child, by id.\npub static GENERATED: [GenChild; {}] = [", sigs.len()).unwrap();
    for (id, sig) in sigs.iter().enumerate() {
        let params: Vec<String> = sig.params.iter().map(|t| format!("CType::{}", t.rust_name())).collect();
        writeln!(
            r,
            "    GenChild {{ id: {id}, ret: CType::{}, params: &[{}], entry: ctc_gen_{id}, call: ctc_gen_call_{id} }},",
            sig.ret.rust_name(),
            params.join(", ")
        )
        .unwrap();
    }
    r.push_str("];\n");
    r
}

/// Turns each numeric `#define CTC_*` of ctc.h that applies on the target
/// architecture `arch` into a Rust constant, so the probes' offsets and
/// patterns are written down once, in the header.
fn consts_source(header: &str, arch: &str) -> String {
    let mut r = String::from("// Generated by context-tests-c/build.rs from c/ctc.h. Do not edit.\n");
    for define in defines::numeric_for_arch(header, arch) {
        let Some(short) = define.name.strip_prefix("CTC_") else { continue };
        let number = u64::try_from(define.value)
            .unwrap_or_else(|_| panic!("c/ctc.h:{}: {} is negative", define.line, define.name));
        writeln!(r, "/// `{}` from `c/ctc.h`.\npub const {short}: u64 = {number:#x};", define.name).unwrap();
    }
    r
}

/// The body of the `layout` example: one line per field that a
/// `CONTEXT_SYS_OFF_*` or `CONTEXT_SYS_BOOT_*` define of context_sys.h names,
/// so the example prints the header's own list of fields as Rust lays them
/// out (a define naming a field Rust lacks fails to compile there). Only
/// the defines of the target architecture `arch`'s section count.
fn layout_source(header: &str, arch: &str) -> String {
    let mut r = String::from(
        "// Generated by context-tests-c/build.rs from context_sys.h. Do not edit.\n\n\
         /// Prints every shared struct and every field the header names.\n\
         fn print_layout() {\n",
    );
    let defines = defines::numeric_for_arch(header, arch);
    let fields = layout_fields::fields(defines.iter().map(|d| d.name.as_str()));
    for s in &layout_fields::STRUCTS {
        writeln!(r, "    layout_struct!(\"{}\", {});", s.c_name, s.rust_name).unwrap();
        for f in fields.iter().filter(|f| f.strukt == s.c_name) {
            match f.index {
                None => writeln!(r, "    layout_field!(\"{}\", {}, {});", f.strukt, f.rust_struct, f.member),
                Some(i) => {
                    writeln!(r, "    layout_element!(\"{}\", {}, {}, {i});", f.strukt, f.rust_struct, f.member)
                }
            }
            .unwrap();
        }
    }
    r.push_str("}\n");
    r
}

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // context-sys exports its header directory (it declares `links`).
    let sys_include =
        PathBuf::from(env::var_os("DEP_CONTEXT_SYS_INCLUDE").expect("context-sys exports its include dir"));
    let c_dir = manifest.join("c");
    // The script runs on the host: the target's architecture is cargo's
    // word, and picks the probes' assembly and the headers' sections.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let probes = match arch.as_str() {
        "x86_64" | "aarch64" => format!("probes_{arch}.S"),
        other => panic!("context-tests-c has probes for x86_64 and aarch64, not {other}"),
    };
    for f in ["ctc.h", "children.c", "probes_x86_64.S", "probes_aarch64.S", "instance_guests.c"] {
        println!("cargo::rerun-if-changed={}", c_dir.join(f).display());
    }
    // The C guests of `instance` include its header (instance is a
    // dev-dependency: only the test binaries link the functions it declares).
    let instance_include = manifest.join("../instance/include");
    println!("cargo::rerun-if-changed={}", instance_include.join("instance.h").display());
    println!("cargo::rerun-if-changed={}", sys_include.join("context_sys.h").display());

    let ctc_h = fs::read_to_string(c_dir.join("ctc.h")).expect("read ctc.h");
    fs::write(out.join("ctc_consts.rs"), consts_source(&ctc_h, &arch)).expect("write ctc_consts.rs");
    let sys_header = fs::read_to_string(sys_include.join("context_sys.h")).expect("read context_sys.h");
    fs::write(out.join("layout_fields.rs"), layout_source(&sys_header, &arch)).expect("write layout_fields.rs");

    let sigs = signatures();
    let gen_c = out.join("generated_children.c");
    fs::write(&gen_c, c_source(&sigs)).expect("write generated_children.c");
    fs::write(out.join("generated_children.rs"), rust_source(&sigs)).expect("write generated_children.rs");

    cc::Build::new()
        .file(c_dir.join("children.c"))
        .file(&gen_c)
        .file(c_dir.join(&probes))
        .file(c_dir.join("instance_guests.c"))
        .include(&c_dir)
        .include(&instance_include)
        .include(&sys_include)
        .std("c11")
        .flag("-Wa,--noexecstack")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("context_tests_c");
}
