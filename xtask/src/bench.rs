//! `cargo xtask bench`: a short run of every benchmark, printed as one table
//! of ratios; `cargo xtask bench --count`: instructions (and system calls)
//! per operation, which are stable where timings are not.
//!
//! The benchmarks live in `context-tests-c/benches/compare.rs` (criterion,
//! one group per operation, function ids `ours` and the peers' names); the
//! counts come from `context-tests-c/examples/opcount.rs`, which runs the
//! same operations. See `docs/PERFORMANCE.md`.
//!
//! Besides the table, a timing run leaves criterion's HTML report in
//! `<target>/criterion/report/index.html` (when criterion has a plotting
//! backend: gnuplot installed, or its `plotters` feature) and a bar chart of
//! the ratios in `<target>/criterion/ratios.svg`.

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

/// Where docs/PERFORMANCE.md breaks down what a missed target costs, per
/// operation (the heading of that section).
const BREAKDOWNS: &[(&str, &str)] = &[
    ("switch_round_trip", "Breakdown: switch round trip"),
    ("init_run_return", "Breakdown: init + run + return"),
    ("fault_to_host", "Breakdown: fault back to the host"),
    ("fresh_guard_stack", "Breakdown: fresh guard-page stack"),
    ("pooled_instance_run", "Breakdown: pooled instance run"),
];

/// Suffix of the groups run with the two sides' FP status flags differing.
const FP_DIFFER: &str = "_fp_differ";

/// A row whose two FP conditions differ by more than this is flagged.
const FP_CLIFF: f64 = 1.5;

/// Highest allowed resident memory per suspended context with a 64 KiB stack.
const MEMORY_TARGET_BYTES: usize = 8 * 1024;

/// Criterion settings of the short run. Plots stay on: without them
/// criterion writes no HTML report.
const SHORT_RUN: &[&str] = &["--warm-up-time", "0.5", "--measurement-time", "2"];

/// Iteration counts of the two runs whose difference is one operation's cost.
const COUNT_LOW: u64 = 100;
const COUNT_HIGH: u64 = 1100;

const USAGE: &str = "\
usage: cargo xtask bench [--count | --from-last]

  (none)       a short criterion run of every benchmark; prints the ratios
               ours/peer against their targets, writes <target>/criterion/ratios.svg
               and names criterion's HTML report
  --count      instructions (and system calls) per operation under valgrind
  --from-last  the table and chart of every result already in <target>/criterion,
               without running anything (no memory row)
";

pub fn run(args: &[String]) -> Result<(), String> {
    match args {
        [] => timings(),
        [flag] if flag == "--count" => counts(),
        [flag] if flag == "--from-last" => from_last(),
        [flag] if flag == "--help" || flag == "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unexpected arguments {args:?}\n{USAGE}")),
    }
}

fn target_dir() -> PathBuf {
    util::target_dir()
}

// ---- timings -----------------------------------------------------------------

/// One criterion result: median time per iteration, in nanoseconds.
type Results = BTreeMap<String, BTreeMap<String, f64>>;

fn timings() -> Result<(), String> {
    let started = SystemTime::now();
    util::run(cargo().args(["bench", "-p", "context-tests-c", "--bench", "compare", "--"]).args(SHORT_RUN))?;
    let criterion = target_dir().join("criterion");
    let results = read_criterion(&criterion, started)?;
    if results.is_empty() {
        return Err("criterion wrote no estimates".to_string());
    }
    let memory = suspended_memory()?;
    print_timings(&results, Some(memory));
    write_chart(&criterion, &results)?;
    let report = criterion.join("report").join("index.html");
    let fresh = std::fs::metadata(&report).and_then(|m| m.modified()).is_ok_and(|t| t >= started);
    if fresh {
        println!("criterion's HTML report: {}", report.display());
    } else {
        println!(
            "no HTML report: criterion has no plotting backend here (install gnuplot, or build criterion \
             with its `plotters` feature)"
        );
    }
    Ok(())
}

/// The table and chart of every result criterion has kept, however old.
fn from_last() -> Result<(), String> {
    let criterion = target_dir().join("criterion");
    let results = read_criterion(&criterion, SystemTime::UNIX_EPOCH)?;
    if results.is_empty() {
        return Err(format!("no estimates in {}; run `cargo xtask bench` first", criterion.display()));
    }
    print_timings(&results, None);
    write_chart(&criterion, &results)
}

/// Writes the ratio chart to `<dir>/ratios.svg` and says where it is.
fn write_chart(dir: &Path, results: &Results) -> Result<(), String> {
    let file = dir.join("ratios.svg");
    std::fs::write(&file, ratio_svg(&ratio_rows(results))).map_err(|e| format!("write {}: {e}", file.display()))?;
    println!("ratio chart: {}", file.display());
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

/// One line of the ratio table: our variant against one peer in one group.
#[derive(Clone, Debug, PartialEq)]
struct RatioRow {
    group: String,
    ours: String,
    ours_ns: f64,
    peer: String,
    peer_ns: f64,
    /// The highest allowed ratio, where [`TARGETS`] names one.
    limit: Option<f64>,
}

impl RatioRow {
    fn ratio(&self) -> f64 {
        self.ours_ns / self.peer_ns
    }

    fn over_limit(&self) -> bool {
        self.limit.is_some_and(|l| self.ratio() > l)
    }

    fn label(&self) -> String {
        format!("{}: {} / {}", self.group, self.ours, self.peer)
    }
}

/// Every (ours, peer) pair of every group, in the table's order.
fn ratio_rows(results: &Results) -> Vec<RatioRow> {
    let mut rows = Vec::new();
    for (group, whos) in results {
        let base = group.strip_suffix(FP_DIFFER).unwrap_or(group);
        for (who, &o) in whos.iter().filter(|(who, _)| is_ours(who)) {
            for (peer, &t) in whos.iter().filter(|(who, _)| !is_ours(who)) {
                let limit =
                    TARGETS.iter().find(|(g, o, p, _)| *g == base && o == who && p == peer).map(|&(_, _, _, l)| l);
                rows.push(RatioRow {
                    group: group.clone(),
                    ours: who.clone(),
                    ours_ns: o,
                    peer: peer.clone(),
                    peer_ns: t,
                    limit,
                });
            }
        }
    }
    rows
}

/// The operations with a missed target, each with the section of
/// docs/PERFORMANCE.md that breaks its cost down.
fn missed_breakdowns(rows: &[RatioRow]) -> Vec<(&'static str, &'static str)> {
    BREAKDOWNS
        .iter()
        .copied()
        .filter(|(op, _)| {
            rows.iter().any(|r| r.over_limit() && r.group.strip_suffix(FP_DIFFER).unwrap_or(&r.group) == *op)
        })
        .collect()
}

fn print_breakdowns(rows: &[RatioRow]) {
    let missed = missed_breakdowns(rows);
    if missed.is_empty() {
        return;
    }
    println!("\nmissed targets, and where docs/PERFORMANCE.md breaks each one down:");
    for (op, heading) in missed {
        println!("  {op:<22} \"{heading}\"");
    }
}

fn print_timings(results: &Results, memory: Option<usize>) {
    let (cpu, kernel) = machine();
    println!("\nCPU: {cpu}; kernel {kernel}");
    println!("median time per operation (short run: {}); ratio = ours / peer", SHORT_RUN.join(" "));
    println!("groups ending in {FP_DIFFER}: the two sides' FP status flags differ (see benches/compare.rs, Fp)\n");
    println!(
        "{:<30} {:<24} {:>10}  {:<14} {:>10} {:>8}  target",
        "operation", "ours", "time", "peer", "peer time", "ratio"
    );
    println!("{}", "-".repeat(122));
    let rows = ratio_rows(results);
    for (group, whos) in results {
        let has_peer = whos.keys().any(|w| !is_ours(w));
        for (who, &o) in whos.iter().filter(|(who, _)| is_ours(who)) {
            if !has_peer {
                println!("{group:<30} {who:<24} {:>10}", human_ns(o));
            }
            for r in rows.iter().filter(|r| &r.group == group && &r.ours == who) {
                println!(
                    "{group:<30} {who:<24} {:>10}  {:<14} {:>10} {:>7.2}×  {}",
                    human_ns(o),
                    r.peer,
                    human_ns(r.peer_ns),
                    r.ratio(),
                    verdict(r.ratio(), r.limit)
                );
            }
        }
    }
    print_breakdowns(&rows);
    print_fp_conditions(results);
    let Some(memory) = memory else { return };
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

// ---- the ratio chart -----------------------------------------------------------

/// Text escaped for XML character data and attribute values.
fn xml_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            c => s.push(c),
        }
    }
    s
}

/// The spacing of grid lines for an axis from 0 to `max`: 0.5 up to 5, then
/// 1, 2 or 5 times a power of ten, for at most about ten lines.
fn grid_step(max: f64) -> f64 {
    if !max.is_finite() || max <= 5.0 {
        return 0.5;
    }
    let raw = max / 10.0;
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|&s| s >= raw).unwrap_or(10.0 * power)
}

/// A horizontal bar chart of `rows`' ratios as a standalone SVG document:
/// one bar per row, a vertical line at 1.0 (as fast as the peer), each
/// row's limit as a tick on its bar, and the bars over their limit in red
/// (met: green; no target: grey).
fn ratio_svg(rows: &[RatioRow]) -> String {
    const ROW_H: f64 = 22.0;
    const BAR_H: f64 = 14.0;
    const PLOT_W: f64 = 480.0;
    const VALUE_W: f64 = 70.0;
    const TOP: f64 = 52.0;
    const BOTTOM: f64 = 30.0;
    // Room for the longest label at about 7 px a character of 12 px text.
    let longest = rows.iter().map(|r| r.label().chars().count()).max().unwrap_or(0);
    let label_w = (longest as f64 * 7.0 + 16.0).max(160.0).round();
    let finite = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
    let widest = rows.iter().flat_map(|r| [finite(r.ratio()), r.limit.unwrap_or(0.0)]).fold(1.0, f64::max);
    // Grid lines on round numbers, at most about ten of them.
    let step = grid_step(widest * 1.1);
    let x_max = (widest * 1.1 / step).ceil() * step;
    let x = |v: f64| label_w + PLOT_W * (v.min(x_max) / x_max);
    let width = label_w + PLOT_W + VALUE_W;
    let height = TOP + ROW_H * rows.len().max(1) as f64 + BOTTOM;

    let mut s = String::new();
    s.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n"));
    s.push_str(
        "<text x=\"10\" y=\"18\" font-size=\"14\">time ours / time peer (lower is better)</text>\n\
         <text x=\"10\" y=\"36\" font-size=\"11\">dashed: 1.0, as fast as the peer; tick: the row's target; \
         red: over it, green: met, grey: no target</text>\n",
    );
    let plot_bottom = TOP + ROW_H * rows.len() as f64;
    // Grid and axis labels every step up to x_max.
    let decimals = if step < 1.0 { 1 } else { 0 };
    for i in 0..=(x_max / step).round() as u32 {
        let tick = f64::from(i) * step;
        let tx = x(tick);
        s.push_str(&format!(
            "<line x1=\"{tx:.1}\" y1=\"{TOP}\" x2=\"{tx:.1}\" y2=\"{plot_bottom}\" stroke=\"#e0e0e0\"/>\n\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick:.decimals$}</text>\n",
            plot_bottom + 16.0
        ));
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let bar_y = y + (ROW_H - BAR_H) / 2.0;
        let text_y = y + ROW_H / 2.0 + 4.0;
        let ratio = finite(r.ratio());
        let colour = match r.limit {
            Some(_) if r.over_limit() => "#d62728",
            Some(_) => "#2ca02c",
            None => "#9e9e9e",
        };
        let label = xml_escape(&r.label());
        s.push_str(&format!("<text x=\"{:.1}\" y=\"{text_y:.1}\" text-anchor=\"end\">{label}</text>\n", label_w - 8.0));
        s.push_str(&format!(
            "<rect x=\"{label_w}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{BAR_H}\" fill=\"{colour}\">\
             <title>{label}: {ratio:.3}</title></rect>\n",
            x(ratio) - label_w
        ));
        if let Some(l) = r.limit {
            let lx = x(l);
            s.push_str(&format!(
                "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{lx:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"2\"/>\n",
                bar_y - 3.0,
                bar_y + BAR_H + 3.0
            ));
        }
        let flag = if r.over_limit() { " !" } else { "" };
        s.push_str(&format!("<text x=\"{:.1}\" y=\"{text_y:.1}\">{ratio:.2}×{flag}</text>\n", label_w + PLOT_W + 6.0));
    }
    let one = x(1.0);
    s.push_str(&format!(
        "<line x1=\"{one:.1}\" y1=\"{:.1}\" x2=\"{one:.1}\" y2=\"{plot_bottom}\" stroke=\"#1f77b4\" \
         stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\n",
        TOP - 6.0
    ));
    s.push_str("</svg>\n");
    s
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

    /// Checks that `doc` is well-formed XML as far as this chart uses it:
    /// one root element, every tag closed in order, attributes quoted, and
    /// `&` only in the five predefined entities. Returns the text content.
    fn check_well_formed(doc: &str) -> Result<String, String> {
        let body = doc.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>").ok_or("no XML declaration")?;
        let mut open: Vec<String> = Vec::new();
        let mut roots = 0;
        let mut text = String::new();
        let mut rest = body;
        while !rest.is_empty() {
            let lt = rest.find('<').unwrap_or(rest.len());
            let chars = &rest[..lt];
            if chars.contains('>') {
                return Err(format!("stray `>` in {chars:?}"));
            }
            let mut amp = chars;
            while let Some(i) = amp.find('&') {
                amp = &amp[i..];
                let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| amp.starts_with(e));
                if !ok {
                    return Err(format!("bad entity at {amp:?}"));
                }
                amp = &amp[1..];
            }
            if open.is_empty() && !chars.trim().is_empty() {
                return Err(format!("text outside the root: {chars:?}"));
            }
            text.push_str(chars);
            rest = &rest[lt..];
            if rest.is_empty() {
                break;
            }
            let gt = rest.find('>').ok_or("unclosed tag")?;
            let tag = &rest[1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let top = open.pop().ok_or_else(|| format!("`</{name}>` closes nothing"))?;
                if top != name.trim() {
                    return Err(format!("`</{name}>` closes `<{top}>`"));
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
                return Err(format!("bad tag name in <{tag}>"));
            }
            // attr="value" pairs, values without `<` or a bare `"`.
            let mut a = attrs.trim();
            while !a.is_empty() {
                let (key, after) = a.split_once("=\"").ok_or_else(|| format!("unquoted attribute in <{tag}>"))?;
                if key.trim().is_empty() || key.contains(char::is_whitespace) {
                    return Err(format!("bad attribute name {key:?} in <{tag}>"));
                }
                let end = after.find('"').ok_or_else(|| format!("unterminated attribute in <{tag}>"))?;
                if after[..end].contains('<') {
                    return Err(format!("`<` in an attribute of <{tag}>"));
                }
                a = after[end + 1..].trim_start();
            }
            if open.is_empty() {
                roots += 1;
            }
            if !self_closing {
                open.push(name.to_string());
            }
        }
        if let Some(top) = open.pop() {
            return Err(format!("`<{top}>` is never closed"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(text)
    }

    fn row(group: &str, ours: &str, peer: &str, ours_ns: f64, peer_ns: f64, limit: Option<f64>) -> RatioRow {
        RatioRow { group: group.into(), ours: ours.into(), ours_ns, peer: peer.into(), peer_ns, limit }
    }

    #[test]
    fn the_well_formedness_check_rejects_broken_documents() {
        let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
        assert!(check_well_formed(&format!("{decl}<svg><g></svg>")).is_err());
        assert!(check_well_formed(&format!("{decl}<svg>a & b</svg>")).is_err());
        assert!(check_well_formed(&format!("{decl}<svg x=1/>")).is_err());
        assert!(check_well_formed(&format!("{decl}<svg/><svg/>")).is_err());
        assert_eq!(check_well_formed(&format!("{decl}<svg a=\"1\"><t>x &amp; y</t></svg>")).unwrap(), "x &amp; y");
    }

    #[test]
    fn ratio_svg_is_well_formed_and_names_every_row() {
        let rows = [
            row("switch_round_trip", "ours", "corosensei", 5.0, 2.0, Some(2.0)),
            row("switch_round_trip", "ours", "boost_context", 3.0, 9.0, Some(0.5)),
            row("fault_to_host", "ours_keep", "c_sigsetjmp", 1200.0, 1000.0, Some(1.1)),
            row("odd <name> & \"quotes\"", "ours", "peer's", 1.0, 4.0, None),
            row("zero_peer", "ours", "free", 1.0, 0.0, None),
        ];
        let svg = ratio_svg(&rows);
        let text = check_well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        for r in &rows {
            assert!(text.contains(&xml_escape(&r.label())), "no label {:?} in\n{svg}", r.label());
        }
        // Over their limit: the first and third rows (red); met: the second
        // (green); no target: grey.
        assert_eq!(svg.matches("fill=\"#d62728\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("fill=\"#2ca02c\"").count(), 1, "{svg}");
        assert_eq!(svg.matches("fill=\"#9e9e9e\"").count(), 2, "{svg}");
        assert!(svg.contains("stroke-dasharray"), "no line at 1.0");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        check_well_formed(&ratio_svg(&[])).unwrap();
    }

    #[test]
    fn grid_steps_are_round_and_few() {
        assert_eq!(grid_step(1.1), 0.5);
        assert_eq!(grid_step(5.0), 0.5);
        assert_eq!(grid_step(8.0), 1.0);
        assert_eq!(grid_step(33.0), 5.0);
        assert_eq!(grid_step(120.0), 20.0);
        let svg = ratio_svg(&[row("slow", "ours", "peer", 400.0, 1.0, Some(2.0))]);
        check_well_formed(&svg).unwrap();
        assert!(svg.matches("stroke=\"#e0e0e0\"").count() <= 12, "{svg}");
    }

    #[test]
    fn ratio_rows_pair_each_of_ours_with_each_peer_and_find_their_targets() {
        let mut results = Results::new();
        let g = results.entry("switch_round_trip_fp_differ".to_string()).or_default();
        g.insert("ours".into(), 4.0);
        g.insert("corosensei".into(), 2.0);
        g.insert("boost_context".into(), 8.0);
        results.entry("alone".to_string()).or_default().insert("ours".into(), 1.0);
        let rows = ratio_rows(&results);
        assert_eq!(rows.len(), 2);
        let coro = rows.iter().find(|r| r.peer == "corosensei").unwrap();
        assert_eq!((coro.ratio(), coro.limit, coro.over_limit()), (2.0, Some(2.0), false));
        let boost = rows.iter().find(|r| r.peer == "boost_context").unwrap();
        assert_eq!((boost.ratio(), boost.limit, boost.over_limit()), (0.5, Some(0.5), false));
    }

    #[test]
    fn every_missed_target_names_a_breakdown_that_the_docs_have() {
        let docs = std::fs::read_to_string(util::root().join("docs/PERFORMANCE.md")).unwrap();
        for (op, _, _, _) in TARGETS {
            let (_, heading) =
                BREAKDOWNS.iter().find(|(o, _)| o == op).unwrap_or_else(|| panic!("no breakdown for {op}"));
            assert!(
                docs.lines().any(|l| l.trim_start_matches('#').trim() == *heading),
                "docs/PERFORMANCE.md has no section \"{heading}\""
            );
        }
        let row = |group: &str, ratio: f64, limit: Option<f64>| RatioRow {
            group: group.to_string(),
            ours: "ours".to_string(),
            ours_ns: ratio,
            peer: "p".to_string(),
            peer_ns: 1.0,
            limit,
        };
        let rows = [
            row("switch_round_trip_fp_differ", 3.0, Some(2.0)),
            row("fault_to_host", 1.0, Some(1.1)),
            row("init_run_return", 9.0, None),
        ];
        assert_eq!(missed_breakdowns(&rows), vec![("switch_round_trip", "Breakdown: switch round trip")]);
    }

    #[test]
    fn verdict_says_by_how_much_a_target_is_missed() {
        assert_eq!(verdict(0.9, Some(1.0)), "≤ 1.00× met");
        assert_eq!(verdict(1.5, Some(1.0)), "≤ 1.00× MISSED by 50.0%");
        assert_eq!(verdict(1.5, None), "");
    }
}
