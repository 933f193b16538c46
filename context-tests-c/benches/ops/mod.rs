//! The operations the benchmarks time, shared by the criterion bench
//! (`benches/context.rs`) and the instruction-count driver
//! (`examples/opcount.rs`), so that both measure exactly the same code.
//!
//! Each operation is a type with a `run` method that does the operation
//! once; set-up (stacks, contexts, loaded libraries) happens in `new` and is
//! never timed. [`CASES`] lists every (group, implementation) pair by name.
//!
//! This module needs `unsafe`: switching contexts, calling the C baseline
//! through `dlsym`'d pointers and raw `mmap` are all unsafe operations. Each
//! block says why it holds.
// Not every item is used by both the bench and the count driver.
#![allow(dead_code)]

pub mod c_baseline;
pub mod context_ops;
pub mod instance_ops;
pub mod stack_ops;

/// One operation, run once per call.
pub trait Op {
    /// Does the operation once.
    fn run(&mut self);

    /// Does it `n` times (a loop the compiler sees through, for callgrind).
    fn run_n(&mut self, n: u64) {
        for _ in 0..n {
            self.run();
        }
    }
}

/// A named benchmark case: criterion group, implementation, constructor.
pub struct Case {
    /// Criterion group: the operation.
    pub group: &'static str,
    /// Criterion function id: whose implementation (`ours` or a peer).
    pub who: &'static str,
    /// Builds the operation's state (not timed).
    pub make: fn() -> Box<dyn Op>,
}

macro_rules! case {
    ($group:expr, $who:expr, $ty:ty) => {
        Case { group: $group, who: $who, make: || Box::new(<$ty>::new()) }
    };
}

/// Every case, in the order of the table.
pub const CASES: &[Case] = &[
    case!("switch_round_trip", "ours", context_ops::OursSwitch),
    case!("switch_round_trip", "corosensei", context_ops::CorosenseiSwitch),
    case!("switch_round_trip", "boost_context", context_ops::BoostSwitch),
    case!("init_run_return", "ours", context_ops::OursInitRun),
    case!("init_run_return", "ours_given_mask", context_ops::OursInitRunGivenMask),
    case!("init_run_return", "corosensei", context_ops::CorosenseiInitRun),
    case!("init_run_return", "boost_context", context_ops::BoostInitRun),
    case!("init_24_args", "ours", context_ops::OursInit24),
    case!("init_24_args", "ours_0_args", context_ops::OursInit0),
    case!("sigmask_read", "ours", context_ops::SigmaskRead),
    case!("fault_to_host", "ours", instance_ops::OursFault<false, true>),
    case!("fault_to_host", "ours_noscrub", instance_ops::OursFault<false, false>),
    case!("fault_to_host", "ours_keep", instance_ops::OursFault<true, true>),
    case!("fault_to_host", "ours_keep_noscrub", instance_ops::OursFault<true, false>),
    case!("fault_to_host", "c_sigsetjmp", c_baseline::CFault),
    case!("fresh_guard_stack", "ours", instance_ops::OursFreshStack<false>),
    case!("fresh_guard_stack", "ours_keep", instance_ops::OursFreshStack<true>),
    case!("fresh_guard_stack", "corosensei", stack_ops::CorosenseiFreshStack),
    case!("fresh_guard_stack", "boost_context", stack_ops::BoostFreshStack),
    case!("fresh_guard_stack", "raw_syscalls", stack_ops::RawFreshStack),
    case!("pooled_instance_run", "ours", instance_ops::OursPooledRun<false, true>),
    case!("pooled_instance_run", "ours_noscrub", instance_ops::OursPooledRun<false, false>),
    case!("pooled_instance_run", "ours_keep", instance_ops::OursPooledRun<true, true>),
    case!("pooled_instance_run", "ours_keep_noscrub", instance_ops::OursPooledRun<true, false>),
    case!("pooled_instance_run", "bare_context", context_ops::OursInitRun),
    case!("pooled_instance_run", "ours_kept_instance", instance_ops::OursReusedInstance<false>),
    case!("pooled_instance_run", "ours_kept_instance_keep", instance_ops::OursReusedInstance<true>),
    case!("green_tasks_1000", "ours", context_ops::OursGreenTasks),
    case!("green_tasks_1000", "corosensei", context_ops::CorosenseiGreenTasks),
    case!("stack_scrub", "ours_1_page", instance_ops::OursScrub<1>),
    case!("stack_scrub", "ours_16_pages", instance_ops::OursScrub<16>),
];
