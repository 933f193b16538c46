//! `cargo xtask bench`: a short run of every benchmark, printed as one table
//! of ratios; `cargo xtask bench --count`: instructions (and system calls)
//! per operation, which are stable where timings are not.
//!
//! The benchmarks live in `context-tests-c/benches/compare.rs` (criterion,
//! one group per operation, function ids `ours` and the peers' names); the
//! counts come from `context-tests-c/examples/opcount.rs`, which runs the
//! same operations. See `docs/PERFORMANCE.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::util::{self, cargo};

/// The performance targets: (operation, our variant, peer, highest allowed
/// ratio ours/peer), in both floating-point conditions.
const TARGETS: &[(&str, &str, &str, f64)] = &[
    ("switch_round_trip", "ours", "corosensei", 2.0),
    ("switch_round_trip", "ours", "boost_context", 0.5),
    ("init_run_return", "ours_given_mask", "boost_context", 1.0),
    ("init_run_return", "ours_given_mask", "corosensei", 2.5),
    ("fault_to_host", "ours_keep", "c_sigsetjmp", 1.1),
    ("fault_to_host", "ours", "c_sigsetjmp", 1.3),
    ("fresh_guard_stack", "ours", "raw_syscalls", 1.15),
    ("pooled_instance_run", "ours", "bare_context", 2.5),
];

/// Suffix of the groups run with the two sides' FP status flags differing.
const FP_DIFFER: &str = "_fp_differ";

/// A row whose two FP conditions differ by more than this is flagged.
const FP_CLIFF: f64 = 1.5;

/// Highest allowed resident memory per suspended context with a 64 KiB stack.
const MEMORY_TARGET_BYTES: usize = 8 * 1024;

/// Criterion settings of the short run.
const SHORT_RUN: &[&str] = &["--warm-up-time", "0.5", "--measurement-time", "2", "--noplot"];

/// Iteration counts of the two runs whose difference is one operation's cost.
const COUNT_LOW: u64 = 100;
const COUNT_HIGH: u64 = 1100;

pub fn run(args: &[String]) -> Result<(), String> {
    match args {
        [] => timings(),
        [flag] if flag == "--count" => counts(),
        _ => Err("usage: cargo xtask bench [--count]".to_string()),
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| util::root().join("target"))
}

// ---- timings -----------------------------------------------------------------

/// One criterion result: median time per iteration, in nanoseconds.
type Results = BTreeMap<String, BTreeMap<String, f64>>;

fn timings() -> Result<(), String> {
    let started = SystemTime::now();
    util::run(cargo().args(["bench", "-p", "context-tests-c", "--bench", "compare", "--"]).args(SHORT_RUN))?;
    let results = read_criterion(&target_dir().join("criterion"), started)?;
    if results.is_empty() {
        return Err("criterion wrote no estimates".to_string());
    }
    let memory = suspended_memory()?;
    print_timings(&results, memory);
    Ok(())
}

/// Reads `<group>/<who>/new/estimates.json` written since `since`.
fn read_criterion(dir: &Path, since: SystemTime) -> Result<Results, String> {
    let mut results = Results::new();
    let groups = std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    for group in groups.flatten() {
        let Ok(whos) = std::fs::read_dir(group.path()) else { continue };
        for who in whos.flatten() {
            let file = who.path().join("new").join("estimates.json");
            let fresh = std::fs::metadata(&file).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
            if !fresh {
                continue;
            }
            let text = std::fs::read_to_string(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
            let ns = median_ns(&text).ok_or_else(|| format!("no median in {}", file.display()))?;
            let group = group.file_name().to_string_lossy().into_owned();
            let who = who.file_name().to_string_lossy().into_owned();
            results.entry(group).or_default().insert(who, ns);
        }
    }
    Ok(results)
}

/// The median's point estimate in criterion's `estimates.json`
/// (`{"mean":{...},"median":{"confidence_interval":{...},"point_estimate":N,...},...}`).
fn median_ns(json: &str) -> Option<f64> {
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Runs the memory example; returns resident bytes per suspended context.
fn suspended_memory() -> Result<usize, String> {
    let out = cargo()
        .args(["run", "--release", "-q", "-p", "context-tests-c", "--example", "suspended_memory"])
        .output()
        .map_err(|e| format!("could not run the memory example: {e}"))?;
    if !out.status.success() {
        return Err(format!("memory example failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    field(&text, "rss_bytes_per_context=").ok_or_else(|| format!("memory example printed no figure: {text}"))
}

/// The number after `key` in `text`.
fn field(text: &str, key: &str) -> Option<usize> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn human_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn verdict(ratio: f64, limit: Option<f64>) -> String {
    match limit {
        Some(l) if ratio <= l => format!("≤ {l:.2}× met"),
        Some(l) => format!("≤ {l:.2}× MISSED by {:.1}%", (ratio / l - 1.0) * 100.0),
        None => String::new(),
    }
}

/// Whether a criterion function id is one of ours (`ours`, or a variant
/// such as `ours_keep`) rather than a peer or baseline.
fn is_ours(who: &str) -> bool {
    who == "ours" || who.starts_with("ours_")
}

/// The CPU's model name and the kernel release, for every table.
fn machine() -> (String, String) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|k| k.trim().to_string()).unwrap_or_default();
    (cpu, kernel)
}

fn print_timings(results: &Results, memory: usize) {
    let (cpu, kernel) = machine();
    println!("\nCPU: {cpu}; kernel {kernel}");
    println!("median time per operation (short run: {}); ratio = ours / peer", SHORT_RUN.join(" "));
    println!("groups ending in {FP_DIFFER}: the two sides' FP status flags differ (see benches/compare.rs, Fp)\n");
    println!(
        "{:<30} {:<24} {:>10}  {:<14} {:>10} {:>8}  target",
        "operation", "ours", "time", "peer", "peer time", "ratio"
    );
    println!("{}", "-".repeat(122));
    for (group, whos) in results {
        let ours: Vec<_> = whos.iter().filter(|(who, _)| is_ours(who)).collect();
        let peers: Vec<_> = whos.iter().filter(|(who, _)| !is_ours(who)).collect();
        for &(who, &o) in &ours {
            if peers.is_empty() {
                println!("{group:<30} {who:<24} {:>10}", human_ns(o));
            }
            for &(peer, &t) in &peers {
                let base = group.strip_suffix(FP_DIFFER).unwrap_or(group);
                let limit =
                    TARGETS.iter().find(|(g, o, p, _)| *g == base && o == who && p == peer).map(|&(_, _, _, l)| l);
                println!(
                    "{group:<30} {who:<24} {:>10}  {peer:<14} {:>10} {:>7.2}×  {}",
                    human_ns(o),
                    human_ns(t),
                    o / t,
                    verdict(o / t, limit)
                );
            }
        }
    }
    print_fp_conditions(results);
    let ok = if memory <= MEMORY_TARGET_BYTES { "met" } else { "MISSED" };
    println!(
        "{:<30} {:<24} {:>10}  {:<14} {:>10} {:>8}  ≤ {} KiB {ok}",
        "suspended_64k_memory",
        "ours (RSS each)",
        format!("{:.2} KiB", memory as f64 / 1024.0),
        "",
        "",
        "",
        MEMORY_TARGET_BYTES / 1024
    );
}

/// Every row in both FP conditions, side by side; rows whose times differ
/// by more than [`FP_CLIFF`] are flagged.
fn print_fp_conditions(results: &Results) {
    println!("\nFP status flags equal vs differing (differ / equal; flagged above {FP_CLIFF}x)\n");
    println!("{:<20} {:<24} {:>10} {:>10} {:>8}", "operation", "who", "equal", "differ", "ratio");
    println!("{}", "-".repeat(78));
    for (group, whos) in results {
        let Some(differ) = results.get(&format!("{group}{FP_DIFFER}")) else { continue };
        for (who, &eq) in whos {
            let Some(&df) = differ.get(who) else { continue };
            let r = df / eq;
            let flag =
                if !(1.0 / FP_CLIFF..=FP_CLIFF).contains(&r) { "  <-- FP condition changes the cost" } else { "" };
            println!("{group:<20} {who:<24} {:>10} {:>10} {r:>7.2}×{flag}", human_ns(eq), human_ns(df));
        }
    }
}

// ---- instruction counts ------------------------------------------------------

fn counts() -> Result<(), String> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err("valgrind is not installed (.ci/run installs it)".to_string());
    }
    util::run(cargo().args(["build", "--release", "-p", "context-tests-c", "--example", "opcount"]))?;
    let exe = target_dir().join("release").join("examples").join("opcount");
    let list = Command::new(&exe).arg("--list").output().map_err(|e| format!("run {}: {e}", exe.display()))?;
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let have_strace = Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());

    let mut rows = Vec::new();
    for line in list.lines() {
        let Some((group, who)) = line.split_once(' ') else { continue };
        eprintln!("counting {group}/{who} ...");
        let (tool, per_op) = instructions_per_op(&exe, group, who)?;
        let syscalls = if have_strace { syscalls_per_op(&exe, group, who).ok() } else { None };
        rows.push((group.to_string(), who.to_string(), tool, per_op, syscalls));
    }

    println!("\nper operation: (count at n={COUNT_HIGH} - count at n={COUNT_LOW}) / {}\n", COUNT_HIGH - COUNT_LOW);
    println!("{:<22} {:<24} {:>14} {:>10} {:>10}  tool", "operation", "who", "instructions", "ours/this", "syscalls");
    println!("{}", "-".repeat(94));
    for (group, who, tool, per_op, syscalls) in &rows {
        let ours = rows.iter().find(|r| &r.0 == group && r.1 == "ours").map(|r| r.3);
        let vs = match ours {
            Some(o) if who != "ours" && *per_op > 0.0 => format!("{:.2}×", o / per_op),
            _ => String::new(),
        };
        let sc = syscalls.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".to_string());
        println!("{group:<22} {who:<24} {per_op:>14.1} {vs:>10} {sc:>10}  {tool}");
    }
    println!("\n`ours/this`: ours divided by that row. Instructions are user space only; the kernel's");
    println!("work (system calls, signal delivery, page faults) is not counted: see the syscalls column.");
    Ok(())
}

/// Instructions of one operation: callgrind, or cachegrind where callgrind
/// cannot follow the program (its signal tracking asserts when a handler
/// returns into a different context, as instance's fault recovery does).
fn instructions_per_op(exe: &Path, group: &str, who: &str) -> Result<(&'static str, f64), String> {
    for tool in ["callgrind", "cachegrind"] {
        let low = valgrind_count(tool, exe, group, who, COUNT_LOW);
        let high = valgrind_count(tool, exe, group, who, COUNT_HIGH);
        if let (Some(low), Some(high)) = (low, high) {
            return Ok((tool, (high as f64 - low as f64) / (COUNT_HIGH - COUNT_LOW) as f64));
        }
    }
    Err(format!("neither callgrind nor cachegrind could count {group}/{who}"))
}

fn valgrind_count(tool: &str, exe: &Path, group: &str, who: &str, n: u64) -> Option<u64> {
    let mut cmd = Command::new("valgrind");
    cmd.arg(format!("--tool={tool}"));
    match tool {
        "callgrind" => cmd.arg("--callgrind-out-file=/dev/null"),
        _ => cmd.args(["--cache-sim=no", "--cachegrind-out-file=/dev/null"]),
    };
    let out = cmd.arg(exe).args([group, who, &n.to_string()]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    // callgrind: "==pid== Collected : 12345"; cachegrind: "==pid== I   refs:      12,345".
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.contains("Collected :") || l.contains("I   refs:"))?;
    let digits: String = line.rsplit(':').next()?.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// System calls of one operation, from `strace -c -f` at the two counts.
fn syscalls_per_op(exe: &Path, group: &str, who: &str) -> Result<f64, String> {
    let count = |n: u64| -> Result<u64, String> {
        let out = Command::new("strace")
            .args(["-c", "-f", "-o", "/dev/stderr"])
            .arg(exe)
            .args([group, who, &n.to_string()])
            .output()
            .map_err(|e| format!("strace: {e}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        // The summary's last line: "100.00 <secs> <usecs/call> <calls> <errors> total".
        let total = err.lines().rev().find(|l| l.trim_end().ends_with("total")).ok_or("no strace summary")?;
        let nums: Vec<&str> = total.split_whitespace().collect();
        nums.get(3).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad strace total: {total}"))
    };
    let (low, high) = (count(COUNT_LOW)?, count(COUNT_HIGH)?);
    Ok((high as f64 - low as f64) / (COUNT_HIGH - COUNT_LOW) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_read_from_criterion_estimates() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":2.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.75,"standard_error":0.1}}"#;
        assert_eq!(median_ns(json), Some(1.75));
        assert_eq!(median_ns("{}"), None);
    }

    #[test]
    fn field_reads_the_number_after_its_key() {
        let line = "suspended_memory: contexts=10000 rss_bytes_per_context=4511 page_table_bytes_per_context=137";
        assert_eq!(field(line, "rss_bytes_per_context="), Some(4511));
        assert_eq!(field(line, "contexts="), Some(10000));
        assert_eq!(field(line, "missing="), None);
    }

    #[test]
    fn verdict_says_by_how_much_a_target_is_missed() {
        assert_eq!(verdict(0.9, Some(1.0)), "≤ 1.00× met");
        assert_eq!(verdict(1.5, Some(1.0)), "≤ 1.00× MISSED by 50.0%");
        assert_eq!(verdict(1.5, None), "");
    }
}
