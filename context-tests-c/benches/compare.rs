//! Ours beside the peers, one criterion group per operation.
//!
//! Groups (criterion ids `<group>/<who>`):
//!
//! * `switch_round_trip`: resume a suspended child that switches straight
//!   back — ours, corosensei, Boost fcontext (`context` 3.0).
//! * `init_run_return`: prepare a child on a reused stack, run it, it returns
//!   one word — ours, ours with `Context::init_with_sigmask` and a mask
//!   read once (`ours_given_mask`), corosensei, Boost fcontext.
//! * `init_24_args`: `Context::init` with 24 mixed arguments (and with none,
//!   for the fixed part). No peer marshals SysV arguments.
//! * `sigmask_read`: the `rt_sigprocmask` call `init` makes to record the
//!   signal mask, alone.
//! * `fault_to_host`: a fault in the guest back in the host, then a reset,
//!   beside a plain C `sigsetjmp`/`siglongjmp` baseline; the reset scrubs
//!   the stack by default (`ours`, `ours_keep`), not in `*_noscrub`.
//! * `fresh_guard_stack`: map a guard-page stack, run on it, unmap it —
//!   ours (an `instance::Instance`), corosensei, Boost, and the raw system
//!   calls.
//! * `pooled_instance_run`: an instance run of a trivial entry on a stack
//!   from a `StackPool`, beside a bare `Context::init` + run; with the
//!   default scrub of the stack (`ours`, `ours_keep`) and without
//!   (`ours_noscrub`, `ours_keep_noscrub`); and, for the breakdown, a run on
//!   one kept instance (no per-run allocation, no reset, so no scrub).
//! * `stack_scrub`: `Stack::scrub` of a 256 KiB stack whose top page
//!   (`ours_1_page`) or top 16 pages (`ours_16_pages`) were touched. No
//!   peer scrubs.
//!
//! * `green_tasks_1000`: one round of 1,000 green tasks resumed in turn,
//!   each doing a little float work between yields — ours (`context` alone),
//!   corosensei.
//!
//! Every switch-based group (switch, init + run, fault, pooled run) runs
//! twice: with the two sides' floating-point status flags equal, and, as
//! `<group>_fp_differ`, with them differing (see `Fp`).
//!
//! `cargo xtask bench` runs these briefly and prints the ratios;
//! `cargo bench -p context-tests-c --bench compare` runs them at criterion's
//! defaults. The operations themselves live in `ops/`, shared with the
//! instruction-count driver `examples/opcount.rs`.

#![allow(unsafe_code)]

mod ops;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

use ops::Op;
use ops::{c_baseline, context_ops as cx, instance_ops as inst, stack_ops as st};
#[cfg(target_arch = "aarch64")]
use test_support::fp::{fpsr, set_fpsr};
#[cfg(target_arch = "x86_64")]
use test_support::fp::{mxcsr, set_mxcsr};

/// Times `op.run()`; the set-up in `op` was done before and is not timed.
fn bench<O: Op>(g: &mut BenchmarkGroup<'_, WallTime>, who: &str, mut op: O) {
    g.bench_function(who, |b| b.iter(|| op.run()));
}

/// The two conditions of the floating-point status flags (MXCSR's sticky
/// exception bits; aarch64: FPSR's cumulative ones) under which every
/// switch-based group runs.
///
/// On Intel cores an `ldmxcsr` that changes MXCSR costs ~55 ns, status bits
/// included; a switch that loaded the other side's whole MXCSR would pay it
/// whenever the two sides' float work differed, which the equal condition
/// alone never shows. Groups of the differing condition get the suffix
/// `_fp_differ`; `cargo xtask bench` sets the two side by side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fp {
    /// Host and child both carry the inexact flag.
    Equal,
    /// The child is prepared with no flags; the host then raises inexact.
    Differ,
}

impl Fp {
    const BOTH: [Fp; 2] = [Fp::Equal, Fp::Differ];

    fn group(self, name: &str) -> String {
        match self {
            Fp::Equal => name.to_string(),
            Fp::Differ => format!("{name}_fp_differ"),
        }
    }

    /// Makes the op (whose constructor prepares its child with the
    /// thread's MXCSR) under this condition.
    fn prepare<O>(self, make: impl FnOnce() -> O) -> O {
        clear_status_flags();
        if self == Fp::Equal {
            raise_inexact();
        }
        let op = make();
        if self == Fp::Differ {
            raise_inexact();
        }
        op
    }
}

/// MXCSR's six sticky exception flags.
#[cfg(target_arch = "x86_64")]
const MXCSR_STATUS: u32 = 0x3f;

/// Clears the thread's floating-point status flags.
#[cfg(target_arch = "x86_64")]
fn clear_status_flags() {
    set_mxcsr(mxcsr() & !MXCSR_STATUS);
}

/// FPSR's cumulative exception flags: IOC, DZC, OFC, UFC, IXC (bits 0-4)
/// and IDC (bit 7).
#[cfg(target_arch = "aarch64")]
const FPSR_STATUS: u64 = 0x9f;

/// Clears the thread's floating-point status flags.
#[cfg(target_arch = "aarch64")]
fn clear_status_flags() {
    set_fpsr(fpsr() & !FPSR_STATUS);
}

/// One inexact division: sets the inexact flag (MXCSR.PE; aarch64: FPSR.IXC).
fn raise_inexact() {
    let q = std::hint::black_box(1.0f64) / std::hint::black_box(3.0f64);
    std::hint::black_box(q);
}

fn switch_round_trip(c: &mut Criterion) {
    for fp in Fp::BOTH {
        let mut g = c.benchmark_group(fp.group("switch_round_trip"));
        bench(&mut g, "ours", fp.prepare(cx::OursSwitch::new));
        bench(&mut g, "corosensei", fp.prepare(cx::CorosenseiSwitch::new));
        bench(&mut g, "boost_context", fp.prepare(cx::BoostSwitch::new));
        g.finish();
    }
}

fn init_run_return(c: &mut Criterion) {
    for fp in Fp::BOTH {
        let mut g = c.benchmark_group(fp.group("init_run_return"));
        bench(&mut g, "ours", fp.prepare(cx::OursInitRun::new));
        bench(&mut g, "ours_given_mask", fp.prepare(cx::OursInitRunGivenMask::new));
        bench(&mut g, "corosensei", fp.prepare(cx::CorosenseiInitRun::new));
        bench(&mut g, "boost_context", fp.prepare(cx::BoostInitRun::new));
        g.finish();
    }
}

fn init_24_args(c: &mut Criterion) {
    let mut g = c.benchmark_group("init_24_args");
    bench(&mut g, "ours", cx::OursInit24::new());
    bench(&mut g, "ours_0_args", cx::OursInit0::new());
    g.finish();
    let mut g = c.benchmark_group("sigmask_read");
    bench(&mut g, "ours", cx::SigmaskRead::new());
    g.finish();
}

fn fault_to_host(c: &mut Criterion) {
    for fp in Fp::BOTH {
        let mut g = c.benchmark_group(fp.group("fault_to_host"));
        // Ours first: the C baseline puts back whatever handler it replaced.
        bench(&mut g, "ours", fp.prepare(inst::OursFault::<false, true>::new));
        bench(&mut g, "ours_noscrub", fp.prepare(inst::OursFault::<false, false>::new));
        bench(&mut g, "ours_keep", fp.prepare(inst::OursFault::<true, true>::new));
        bench(&mut g, "ours_keep_noscrub", fp.prepare(inst::OursFault::<true, false>::new));
        bench(&mut g, "c_sigsetjmp", fp.prepare(c_baseline::CFault::new));
        g.finish();
    }
}

fn fresh_guard_stack(c: &mut Criterion) {
    let mut g = c.benchmark_group("fresh_guard_stack");
    bench(&mut g, "ours", inst::OursFreshStack::<false>::new());
    bench(&mut g, "ours_keep", inst::OursFreshStack::<true>::new());
    bench(&mut g, "corosensei", st::CorosenseiFreshStack::new());
    bench(&mut g, "boost_context", st::BoostFreshStack::new());
    bench(&mut g, "raw_syscalls", st::RawFreshStack::new());
    g.finish();
}

fn pooled_instance_run(c: &mut Criterion) {
    for fp in Fp::BOTH {
        let mut g = c.benchmark_group(fp.group("pooled_instance_run"));
        bench(&mut g, "ours", fp.prepare(inst::OursPooledRun::<false, true>::new));
        bench(&mut g, "ours_noscrub", fp.prepare(inst::OursPooledRun::<false, false>::new));
        bench(&mut g, "ours_keep", fp.prepare(inst::OursPooledRun::<true, true>::new));
        bench(&mut g, "ours_keep_noscrub", fp.prepare(inst::OursPooledRun::<true, false>::new));
        bench(&mut g, "bare_context", fp.prepare(cx::OursInitRun::new));
        bench(&mut g, "ours_kept_instance", fp.prepare(inst::OursReusedInstance::<false>::new));
        bench(&mut g, "ours_kept_instance_keep", fp.prepare(inst::OursReusedInstance::<true>::new));
        g.finish();
    }
}

fn green_tasks(c: &mut Criterion) {
    // One operation: one round of 1,000 tasks, each doing a little float
    // work between yields (so the FP status flags are whatever real
    // programs leave).
    let mut g = c.benchmark_group("green_tasks_1000");
    bench(&mut g, "ours", cx::OursGreenTasks::new());
    bench(&mut g, "corosensei", cx::CorosenseiGreenTasks::new());
    g.finish();
}

fn stack_scrub(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack_scrub");
    bench(&mut g, "ours_1_page", inst::OursScrub::<1>::new());
    bench(&mut g, "ours_16_pages", inst::OursScrub::<16>::new());
    g.finish();
}

criterion_group!(
    benches,
    switch_round_trip,
    init_run_return,
    init_24_args,
    fault_to_host,
    fresh_guard_stack,
    pooled_instance_run,
    green_tasks,
    stack_scrub
);
criterion_main!(benches);
