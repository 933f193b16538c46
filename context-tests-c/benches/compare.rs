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

/// Times `op.run()`; the set-up in `op` was done before and is not timed.
fn bench<O: Op>(g: &mut BenchmarkGroup<'_, WallTime>, who: &str, mut op: O) {
    g.bench_function(who, |b| b.iter(|| op.run()));
}

fn switch_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch_round_trip");
    bench(&mut g, "ours", cx::OursSwitch::new());
    bench(&mut g, "corosensei", cx::CorosenseiSwitch::new());
    bench(&mut g, "boost_context", cx::BoostSwitch::new());
    g.finish();
}

fn init_run_return(c: &mut Criterion) {
    let mut g = c.benchmark_group("init_run_return");
    bench(&mut g, "ours", cx::OursInitRun::new());
    bench(&mut g, "ours_given_mask", cx::OursInitRunGivenMask::new());
    bench(&mut g, "corosensei", cx::CorosenseiInitRun::new());
    bench(&mut g, "boost_context", cx::BoostInitRun::new());
    g.finish();
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
    let mut g = c.benchmark_group("fault_to_host");
    // Ours first: the C baseline puts back whatever handler it replaced.
    bench(&mut g, "ours", inst::OursFault::<false, true>::new());
    bench(&mut g, "ours_noscrub", inst::OursFault::<false, false>::new());
    bench(&mut g, "ours_keep", inst::OursFault::<true, true>::new());
    bench(&mut g, "ours_keep_noscrub", inst::OursFault::<true, false>::new());
    bench(&mut g, "c_sigsetjmp", c_baseline::CFault::new());
    g.finish();
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
    let mut g = c.benchmark_group("pooled_instance_run");
    bench(&mut g, "ours", inst::OursPooledRun::<false, true>::new());
    bench(&mut g, "ours_noscrub", inst::OursPooledRun::<false, false>::new());
    bench(&mut g, "ours_keep", inst::OursPooledRun::<true, true>::new());
    bench(&mut g, "ours_keep_noscrub", inst::OursPooledRun::<true, false>::new());
    bench(&mut g, "bare_context", cx::OursInitRun::new());
    bench(&mut g, "ours_kept_instance", inst::OursReusedInstance::<false>::new());
    bench(&mut g, "ours_kept_instance_keep", inst::OursReusedInstance::<true>::new());
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
    stack_scrub
);
criterion_main!(benches);
