//! The public C headers, `context-sys/include/context_sys.h` and
//! `instance/include/instance.h`, compile together as C11 and as C++17 under
//! `-pedantic -Wall -Wextra -Werror` (and in the other standards they claim),
//! keep their layout assertions in both languages, give every function C
//! linkage in C++, and refuse standards older than the ones they need.
//! Negative controls make sure the compiler really runs: a false assertion
//! next to the header must fail the build.

mod c_tools;
// The workspace's `#define` parser, for which lines of context_sys.h belong
// to which architecture's section.
#[path = "../../context-sys/build/defines.rs"]
mod defines;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use c_tools::{context_sys_include, cxx, instance_include, run, run_ok, scratch, show, test_file};

/// Which of the two languages, with its compiler and warning flags.
#[derive(Clone, Copy)]
enum Lang {
    C,
    Cxx,
}

impl Lang {
    fn compiler(self) -> Command {
        match self {
            Lang::C => c_tools::cc(),
            Lang::Cxx => cxx(),
        }
    }

    fn source(self, stem: &str) -> PathBuf {
        let ext = match self {
            Lang::C => "c",
            Lang::Cxx => "cpp",
        };
        test_file(&format!("headers/{stem}.{ext}"))
    }

    /// How the header's layout assertions are spelled once preprocessed.
    fn static_assert(self) -> &'static str {
        match self {
            Lang::C => "_Static_assert(",
            Lang::Cxx => "static_assert(",
        }
    }
}

/// `compiler -std=<std> -pedantic -Wall -Wextra -Werror -I... <extra> <src>`.
fn strict(lang: Lang, std: &str, src: &Path) -> Command {
    let mut cmd = lang.compiler();
    cmd.arg(format!("-std={std}"))
        .args(["-pedantic", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(context_sys_include())
        .arg("-I")
        .arg(instance_include())
        .arg(src);
    cmd
}

/// Compiles `use_headers.{c,cpp}` to an object and returns its path.
fn compile_use_headers(lang: Lang, std: &str) -> PathBuf {
    let obj = scratch(&format!("headers_{std}")).join("use_headers.o");
    run_ok(strict(lang, std, &lang.source("use_headers")).arg("-c").arg("-o").arg(&obj));
    let len = std::fs::metadata(&obj).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0, "the compiler reported success but wrote no object at {}", obj.display());
    obj
}

/// The symbols `obj` leaves undefined, one name each.
fn undefined_symbols(obj: &Path) -> Vec<String> {
    let out = run_ok(Command::new("nm").arg("-u").arg(obj));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_owned)
        .collect()
}

/// Every function `use_headers.{c,cpp}` takes the address of, by C name.
const USED: [&str; 7] = [
    "context_sys_swap",
    "context_sys_set",
    "context_sys_start",
    "context_sys_save_fp_control",
    "context_sys_get_current_stack_pointer",
    "instance_yield",
    "instance_host_region_enter",
];

fn assert_c_linkage(obj: &Path) {
    let undefined = undefined_symbols(obj);
    for name in USED {
        assert!(
            undefined.iter().any(|u| u == name),
            "{} does not refer to `{name}` by its C name; its undefined symbols are {undefined:?}",
            obj.display()
        );
    }
}

#[test]
fn headers_compile_together_as_pedantic_c11() {
    let obj = compile_use_headers(Lang::C, "c11");
    assert_c_linkage(&obj);
}

#[test]
fn headers_compile_together_as_pedantic_cxx17_with_c_linkage() {
    let obj = compile_use_headers(Lang::Cxx, "c++17");
    assert_c_linkage(&obj);
}

#[test]
fn headers_compile_in_every_later_c_standard() {
    for std in ["c17", "gnu11"] {
        compile_use_headers(Lang::C, std);
    }
}

#[test]
fn headers_compile_in_every_later_cxx_standard() {
    for std in ["c++11", "c++14", "c++20", "gnu++17"] {
        compile_use_headers(Lang::Cxx, std);
    }
}

/// How many layout assertions the header writes for `arch` (a Rust
/// `target_arch` name): one per line that starts with its assertion macro,
/// in the common part and that architecture's section.
fn header_assertions(arch: &str) -> usize {
    let text = std::fs::read_to_string(context_sys_include().join("context_sys.h")).expect("read context_sys.h");
    defines::lines_for_arch(&text, arch).filter(|(_, l)| l.starts_with("CONTEXT_SYS_STATIC_ASSERT_(")).count()
}

/// The aarch64 section's assertions survive preprocessing too, checked
/// with the aarch64 cross compiler where one is installed (on an aarch64
/// machine the test above covers them). Also compiles the header strictly
/// as C11 for aarch64, so its aarch64 layout assertions are evaluated.
#[test]
#[cfg(target_arch = "x86_64")]
fn aarch64_section_compiles_with_the_cross_compiler() {
    let cross = "aarch64-linux-gnu-gcc";
    if Command::new(cross).arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "{cross} is missing, and CI installs it (.ci/run)");
        eprintln!("SKIPPED: {cross} not installed");
        return;
    }
    let expected = header_assertions("aarch64");
    assert!(expected >= 50, "the header writes only {expected} aarch64 layout assertions");
    assert_ne!(expected, header_assertions("x86_64"), "the sections were not told apart");
    let src = scratch("preprocess_aarch64").join("only_header.c");
    std::fs::write(&src, "#include \"context_sys.h\"\n").expect("write the source");
    let strict_cross = |extra: &[&str]| {
        let mut cmd = Command::new(cross);
        cmd.args(["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-I"]).arg(context_sys_include());
        cmd.args(extra).arg(&src);
        cmd
    };
    let out = run_ok(&mut strict_cross(&["-E", "-P"]));
    let found = String::from_utf8_lossy(&out.stdout).matches("_Static_assert(").count();
    assert_eq!(found, expected, "aarch64: {expected} layout assertions in the header, {found} after preprocessing");
    let obj = src.with_extension("o");
    run_ok(strict_cross(&["-c"]).arg("-o").arg(&obj));
    assert!(obj.is_file(), "{} was not written", obj.display());
}

/// The header's layout assertions for this architecture all reach the
/// compiler in `lang` (none is lost to a conditional).
fn assertions_survive_preprocessing(lang: Lang, std: &str) {
    let expected = header_assertions(std::env::consts::ARCH);
    assert!(expected >= 30, "the header writes only {expected} layout assertions");
    {
        let src = scratch(&format!("preprocess_{std}")).join(match lang {
            Lang::C => "only_header.c",
            Lang::Cxx => "only_header.cpp",
        });
        std::fs::write(&src, "#include \"context_sys.h\"\n").expect("write the source");
        let out = run_ok(strict(lang, std, &src).args(["-E", "-P"]));
        let text = String::from_utf8_lossy(&out.stdout);
        let found = text.matches(lang.static_assert()).count();
        assert_eq!(found, expected, "{std}: {expected} layout assertions in the header, {found} after preprocessing");
    }
}

#[test]
fn layout_assertions_survive_preprocessing_in_c() {
    assertions_survive_preprocessing(Lang::C, "c11");
}

#[test]
fn layout_assertions_survive_preprocessing_in_cxx() {
    assertions_survive_preprocessing(Lang::Cxx, "c++17");
}

fn assert_fails_with(out: &Output, what: &str, needle: &str) {
    assert!(!out.status.success(), "{what} compiled, but must not:\n{}", show(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(needle), "{what} failed without saying `{needle}`:\n{}", show(out));
}

fn a_false_assertion_fails(lang: Lang, std: &str) {
    let src = lang.source("wrong_layout");
    let out = run(strict(lang, std, &src).args(["-c", "-o"]).arg(scratch(&format!("wrong_{std}")).join("o.o")));
    assert_fails_with(&out, &src.display().to_string(), "negative control: wrong_layout");
}

#[test]
fn negative_control_a_false_assertion_beside_the_header_fails_in_c() {
    a_false_assertion_fails(Lang::C, "c11");
}

#[test]
fn negative_control_a_false_assertion_beside_the_header_fails_in_cxx() {
    a_false_assertion_fails(Lang::Cxx, "c++17");
}

#[test]
fn context_sys_h_refuses_c99_by_name() {
    refuses_older_standard(Lang::C, "c99", "context_sys.h needs C11 or later");
}

#[test]
fn context_sys_h_refuses_cxx98_by_name() {
    refuses_older_standard(Lang::Cxx, "c++98", "context_sys.h needs C++11 or later");
}

fn refuses_older_standard(lang: Lang, std: &str, needle: &str) {
    {
        let mut cmd = lang.compiler();
        cmd.arg(format!("-std={std}"))
            .arg("-I")
            .arg(context_sys_include())
            .arg("-fsyntax-only")
            .arg(lang.source("wrong_layout"));
        assert_fails_with(&run(&mut cmd), &format!("context_sys.h as {std}"), needle);
    }
}
