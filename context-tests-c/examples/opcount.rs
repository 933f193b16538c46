//! Runs one benchmark operation `n` times, for counting its instructions
//! under `valgrind --tool=callgrind` (what `cargo xtask bench --count` does).
//!
//! ```text
//! opcount --list                 every case, as `group who`
//! opcount <group> <who> <n>      set the case up, then run it n times
//! ```
//!
//! The set-up is the same at every `n`, so the difference between the
//! instruction counts of two runs divided by the difference of their `n` is
//! the cost of one operation, with start-up and set-up cancelled out. The
//! operations are the ones the criterion bench times (`benches/ops`).

#![allow(unsafe_code)]

#[path = "../benches/ops/mod.rs"]
mod ops;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--list" => {
            for case in ops::CASES {
                println!("{} {}", case.group, case.who);
            }
            ExitCode::SUCCESS
        }
        [group, who, n] => {
            let Ok(n) = n.parse::<u64>() else {
                eprintln!("opcount: `{n}` is not a count");
                return ExitCode::FAILURE;
            };
            let Some(case) = ops::CASES.iter().find(|c| c.group == group && c.who == who) else {
                eprintln!("opcount: no case `{group} {who}` (see --list)");
                return ExitCode::FAILURE;
            };
            let mut op = (case.make)();
            op.run_n(n);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: opcount --list | opcount <group> <who> <n>");
            ExitCode::FAILURE
        }
    }
}
