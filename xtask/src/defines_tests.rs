//! Unit tests of the shared `#define` parser, `context-sys/build/defines.rs`
//! (included by path as `crate::defines`; it has no tests of its own, so
//! that they do not run again in every program that includes it).

use crate::defines::{Define, get, numeric, string, with_prefix};
use crate::util;

fn values(header: &str) -> Vec<(String, i128)> {
    numeric(header).into_iter().map(|d| (d.name, d.value)).collect()
}

fn one(value: &str) -> Option<i128> {
    let v = values(&format!("#define X {value}\n"));
    assert!(v.len() <= 1, "{v:?}");
    v.first().map(|(_, v)| *v)
}

#[test]
fn integer_literals_in_every_spelling_the_headers_use() {
    assert_eq!(one("0"), Some(0));
    assert_eq!(one("96"), Some(96));
    assert_eq!(one("0xffc0"), Some(0xffc0));
    assert_eq!(one("0X4D430001"), Some(0x4d43_0001));
    assert_eq!(one("(-1)"), Some(-1));
    assert_eq!(one("-3"), Some(-3));
    assert_eq!(one("((8))"), Some(8));
    assert_eq!(one("64u"), Some(64));
    assert_eq!(one("0xffffffffffffffffULL"), Some(u64::MAX.into()));
    assert_eq!(one("010"), Some(8), "a leading 0 is octal in C");
}

#[test]
fn what_is_not_one_integer_is_left_out_not_misread() {
    for value in ["8 + 1", "(8) * 2", "1 << 3", "0x", "08", "abc", "1.5", "\"text\"", "8uuuu", "-", "()", "1 2"] {
        assert_eq!(one(value), None, "`{value}`");
    }
    // Too wide for any C integer type the headers may use.
    assert_eq!(one("0x10000000000000000"), None);
    assert_eq!(one("18446744073709551616"), None);
}

#[test]
fn only_object_like_defines_with_a_value_count() {
    let header = "\
#ifndef GUARD_H
#define GUARD_H
#define SQUARE(x) ((x) * (x))
#define ALIGNAS_(n) alignas(n)
#define TABBED\t7
  #  define SPACED 5
#define CONTINUED 1 \\
    + 2
#definex 3
#define 9LIVES 9
// #define COMMENTED_OUT 4
#endif
";
    assert_eq!(values(header), [("TABBED".to_string(), 7), ("SPACED".to_string(), 5)]);
}

#[test]
fn trailing_comments_are_ignored_and_lines_are_kept() {
    let header =
        "/* layout */\n#define A 0     /* rsp at entry */\n\n#define B 0x10 // sixteen\n#define C 8/*no space*/\n";
    assert_eq!(
        numeric(header),
        [
            Define { name: "A".into(), value: 0, line: 2 },
            Define { name: "B".into(), value: 16, line: 4 },
            Define { name: "C".into(), value: 8, line: 5 },
        ]
    );
}

#[test]
fn prefixes_select_and_shorten_in_header_order() {
    let d = numeric("#define P_OFF_B 8\n#define Q_OFF_A 0\n#define P_OFF_A 0\n#define P_SIZE 16\n");
    assert_eq!(with_prefix(&d, "P_OFF_").collect::<Vec<_>>(), [("B", 8), ("A", 0)]);
    assert_eq!(get(&d, "P_SIZE"), Some(16));
    assert_eq!(get(&d, "P_OFF"), None);
}

#[test]
fn string_literals_with_their_escapes() {
    let header =
        "#define MSG \"a \\\"b\\\" \\\\ c\\n\"\n#define MSGX \"other\"\n#define BAD \"\\t\"\n#define OPEN \"x\n";
    assert_eq!(string(header, "MSG").as_deref(), Some("a \"b\" \\ c\n"));
    assert_eq!(string(header, "MSGX").as_deref(), Some("other"));
    assert_eq!(string(header, "BAD"), None, "an escape the parser does not know");
    assert_eq!(string(header, "OPEN"), None, "an unterminated literal");
    assert_eq!(string(header, "MISSING"), None);
    assert_eq!(numeric(header), [], "a string is not a number");
}

#[test]
fn the_real_headers_parse() {
    let root = util::root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let sys = numeric(&read("context-sys/include/context_sys.h"));
    assert_eq!(get(&sys, "CONTEXT_SYS_OFF_RSP"), Some(0));
    assert_eq!(get(&sys, "CONTEXT_SYS_MXCSR_CONTROL_MASK"), Some(0xffc0));
    assert!(with_prefix(&sys, "CONTEXT_SYS_OFF_").count() >= 12);
    let message = string(&read("context-sys/include/context_sys.h"), "CONTEXT_SYS_UNWIND_ABORT_MESSAGE").unwrap();
    assert!(message.starts_with("context-sys: ") && message.ends_with('\n'), "{message:?}");
    let ctc = numeric(&read("context-tests-c/c/ctc.h"));
    assert_eq!(get(&ctc, "CTC_PROBE_RDI"), Some(8));
    let inst = numeric(&read("instance/include/instance.h"));
    assert_eq!(get(&inst, "INSTANCE_E_NOT_IN_GUEST"), Some(-1));
}
