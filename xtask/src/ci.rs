//! `cargo xtask ci`: every check, in order, each named and timed.
//! `--only` and `--skip` pick steps by id; the summary of the steps run
//! prints whether they all pass or one fails.

use crate::util::{self, Steps, cargo};

/// One check of the sequence.
pub struct Step {
    /// Short, stable name for `--only` and `--skip`.
    pub id: &'static str,
    /// What it runs, for `--help` and the progress lines.
    pub what: &'static str,
    pub run: fn() -> Result<(), String>,
}

/// Every check, in the order `ci` runs them.
pub const STEPS: &[Step] = &[
    Step {
        id: "fmt",
        what: "cargo fmt --all -- --check",
        run: || util::run(cargo().args(["fmt", "--all", "--", "--check"])),
    },
    Step {
        id: "clippy",
        what: "cargo clippy --workspace --all-targets -- -D warnings",
        run: || util::run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
    },
    // Before the tests: a layout or ABI mistake makes tests crash in ways
    // that do not say why; these steps name the field or routine.
    Step { id: "layout", what: "cargo xtask layout", run: crate::layout::run },
    Step { id: "abi", what: "cargo xtask abi", run: crate::abi::run },
    Step { id: "test-debug", what: "cargo test --workspace", run: || util::run(cargo().args(["test", "--workspace"])) },
    Step {
        id: "test-release",
        what: "cargo test --workspace --release",
        run: || util::run(cargo().args(["test", "--workspace", "--release"])),
    },
    Step {
        id: "benches",
        what: "each benchmark once (criterion's test mode)",
        run: || util::run(cargo().args(["test", "-p", "context-tests-c", "--benches"])),
    },
    // After the stable tests, so a plain bug fails there first, with the
    // faster and more familiar toolchain.
    Step { id: "msrv", what: "clippy and the debug tests on the declared rust-version", run: crate::msrv::run },
    Step {
        id: "release-check",
        what: "cargo publish --workspace --dry-run; a downstream crate built on the packaged crates",
        run: crate::release::run,
    },
    Step { id: "gdb", what: "gdb's backtrace from inside a child context", run: crate::debug::gdb },
    Step { id: "valgrind", what: "the context tests under memcheck", run: crate::debug::valgrind },
    Step {
        id: "doc",
        what: "cargo doc --workspace --no-deps, warnings denied",
        run: || util::run(cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings")),
    },
    // Last: the x86_64 steps above are the faster and more familiar place
    // for a plain bug to fail first.
    Step {
        id: "aarch64",
        what: "cross-build for aarch64, the tests under qemu-aarch64, the aarch64 object's checks",
        run: crate::aarch64::run,
    },
];

pub fn usage() -> String {
    let mut s = String::from(
        "\
usage: cargo xtask ci [--only STEP[,STEP...]] [--skip STEP[,STEP...]]

Runs every check CI runs, in this order, and prints each step's time.
  --only STEPS  run only these steps (still in this order)
  --skip STEPS  run every selected step but these
  -h, --help    this text
With CI set in the environment, a step whose tool is missing (gdb, valgrind,
the MSRV toolchain) fails instead of printing SKIPPED.

steps:
",
    );
    for step in STEPS {
        s.push_str(&format!("  {:<14} {}\n", step.id, step.what));
    }
    s
}

/// Which steps a command line asks for.
#[derive(Debug, Default, PartialEq)]
struct Selection {
    only: Option<Vec<String>>,
    skip: Vec<String>,
}

/// Parses `ci`'s arguments; `Ok(None)` means help was asked for.
fn parse(args: &[String]) -> Result<Option<Selection>, String> {
    let mut sel = Selection::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--only" | "--skip" => {
                let value = match inline {
                    Some(v) => v,
                    None => args.next().cloned().ok_or_else(|| format!("{flag} needs a list of steps"))?,
                };
                let names = value.split(',').map(|n| n.trim().to_string());
                if flag == "--only" {
                    sel.only.get_or_insert_with(Vec::new).extend(names);
                } else {
                    sel.skip.extend(names);
                }
            }
            other => return Err(format!("unknown argument `{other}` to `ci`")),
        }
    }
    Ok(Some(sel))
}

/// The steps of `steps` that `sel` picks, in the order of `steps`. A name
/// that is no step's id is an error that lists the valid ones.
fn select<'a>(steps: &'a [Step], sel: &Selection) -> Result<Vec<&'a Step>, String> {
    let valid = || steps.iter().map(|s| s.id).collect::<Vec<_>>().join(", ");
    for name in sel.only.iter().flatten().chain(&sel.skip) {
        if !steps.iter().any(|s| s.id == name) {
            return Err(format!("unknown step `{name}`; valid steps: {}", valid()));
        }
    }
    let picked: Vec<_> = steps
        .iter()
        .filter(|s| sel.only.as_ref().is_none_or(|only| only.iter().any(|n| n == s.id)))
        .filter(|s| !sel.skip.iter().any(|n| n == s.id))
        .collect();
    if picked.is_empty() {
        return Err(format!("no step selected; valid steps: {}", valid()));
    }
    Ok(picked)
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(sel) = parse(args).map_err(|e| format!("{e}\n\n{}", usage()))? else {
        print!("{}", usage());
        return Ok(());
    };
    let picked = select(STEPS, &sel)?;
    let left_out: Vec<_> = STEPS.iter().filter(|s| !picked.iter().any(|p| p.id == s.id)).map(|s| s.id).collect();
    if !left_out.is_empty() {
        println!("not selected: {}", left_out.join(", "));
    }
    let mut s = Steps::new();
    for (i, step) in picked.iter().enumerate() {
        if let Err(e) = s.step(step.id, step.what, step.run) {
            s.summary();
            let rest: Vec<_> = picked[i + 1..].iter().map(|s| s.id).collect();
            if !rest.is_empty() {
                println!("not reached: {}", rest.join(", "));
            }
            return Err(e);
        }
    }
    s.summary();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn ids(sel: &Selection) -> Result<Vec<&'static str>, String> {
        Ok(select(STEPS, sel)?.iter().map(|s| s.id).collect())
    }

    #[test]
    fn step_ids_are_unique_and_plain() {
        for (i, a) in STEPS.iter().enumerate() {
            assert!(a.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{}", a.id);
            assert!(STEPS[i + 1..].iter().all(|b| b.id != a.id), "{} twice", a.id);
        }
    }

    #[test]
    fn no_arguments_select_every_step() {
        let sel = parse(&[]).unwrap().unwrap();
        assert_eq!(ids(&sel).unwrap().len(), STEPS.len());
    }

    #[test]
    fn only_keeps_the_sequence_order() {
        let sel = parse(&args("--only layout,fmt")).unwrap().unwrap();
        assert_eq!(ids(&sel).unwrap(), ["fmt", "layout"]);
        let sel = parse(&args("--only=doc --only abi")).unwrap().unwrap();
        assert_eq!(ids(&sel).unwrap(), ["abi", "doc"]);
    }

    #[test]
    fn skip_removes_steps_even_from_only() {
        let sel = parse(&args("--skip gdb,valgrind")).unwrap().unwrap();
        let picked = ids(&sel).unwrap();
        assert_eq!(picked.len(), STEPS.len() - 2);
        assert!(!picked.contains(&"gdb") && !picked.contains(&"valgrind"));
        let sel = parse(&args("--only fmt,clippy --skip=clippy")).unwrap().unwrap();
        assert_eq!(ids(&sel).unwrap(), ["fmt"]);
    }

    #[test]
    fn unknown_step_names_list_the_valid_ones() {
        let sel = parse(&args("--skip nosuch")).unwrap().unwrap();
        let err = ids(&sel).unwrap_err();
        assert!(err.contains("`nosuch`"), "{err}");
        assert!(STEPS.iter().all(|s| err.contains(s.id)), "{err}");
        let sel = parse(&args("--only fmt,")).unwrap().unwrap();
        assert!(ids(&sel).unwrap_err().contains("unknown step ``"));
    }

    #[test]
    fn selecting_nothing_is_an_error() {
        let sel = parse(&args("--only fmt --skip fmt")).unwrap().unwrap();
        assert!(ids(&sel).unwrap_err().starts_with("no step selected"));
    }

    #[test]
    fn help_and_bad_arguments() {
        assert_eq!(parse(&args("--help")).unwrap(), None);
        assert_eq!(parse(&args("--only fmt -h")).unwrap(), None);
        assert!(parse(&args("--only")).unwrap_err().contains("needs a list"));
        assert!(parse(&args("fmt")).unwrap_err().contains("unknown argument `fmt`"));
        assert!(STEPS.iter().all(|s| usage().contains(s.id)));
    }
}
