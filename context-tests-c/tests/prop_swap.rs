//! Property test: random swap schedules among up to 8 contexts.
//!
//! Each worker is a C function on its own stack that, every time it runs,
//! logs how many times it has run (a counter on its own stack), checks that
//! against the schedule, and switches straight to the next worker through
//! `ctc_swap_checked`, which loads recognisable values into every
//! callee-saved register (rbx, rbp, r12–r15; aarch64: x19–x28, fp, d8–d15)
//! and a per-worker control state (MXCSR and x87 control word; FPCR), and
//! checks them all when the worker is resumed. The host starts the schedule and is switched back
//! to at its end.

mod common;

use std::ptr;

use context::{ContextHandle, Val};
use context_tests_c::ffi::{self, SCHED_LOG, SCHED_MAX, Sched};
use context_tests_c::{DEFAULT_FP_CONTROL, Stack, fp_control_bits};
use proptest::prelude::*;

use common::{Shared, config, regs_of};

fn arb_schedule() -> impl Strategy<Value = (usize, Vec<u8>, u64)> {
    (1..=SCHED_MAX).prop_flat_map(|n| (Just(n), proptest::collection::vec(1..=n as u8, 0..200), any::<u64>()))
}

/// What the log must say: for each entry of `order`, that worker and how
/// many times it has run so far.
fn expected_log(order: &[u8]) -> Vec<u64> {
    let mut runs = [0u64; SCHED_MAX + 1];
    order
        .iter()
        .map(|&w| {
            runs[w as usize] += 1;
            (u64::from(w) << 32) | runs[w as usize]
        })
        .collect()
}

proptest! {
    #![proptest_config(config("random_swap_schedules_resume_every_context_where_it_left_off", 5_000))]

    #[test]
    fn random_swap_schedules_resume_every_context_where_it_left_off((n, order, seed) in arb_schedule()) {
        assert!(order.len() <= SCHED_LOG);
        let sched = Shared::new(Sched {
            ctx: [ptr::null_mut(); SCHED_MAX + 1],
            order: order.as_ptr(),
            len: order.len() as u64,
            pos: 0,
            resumes: [0; SCHED_MAX + 1],
            lost: [0; SCHED_MAX + 1],
            log_len: 0,
            log: [0; SCHED_LOG],
        });
        let mut host = ContextHandle::new();
        let mut stacks: Vec<Stack> = (0..n).map(|_| Stack::new(16 * 1024)).collect();
        let mut workers = Vec::new();
        for (i, stack) in stacks.iter_mut().enumerate() {
            let args = [Val::CPtr(sched.ptr().cast_const().cast()), Val::U64(i as u64 + 1)];
            let entry = ffi::ctc_sched_worker as *const () as usize;
            workers.push(ContextHandle::create_and_init(stack.as_mut_slice(), &mut host, entry, &args).expect("valid worker"));
        }
        let host_regs = regs_of(&host);
        sched.update(|s| {
            s.ctx[0] = host_regs;
            for (i, w) in workers.iter().enumerate() {
                s.ctx[i + 1] = regs_of(w);
            }
        });

        // SAFETY: every context in `sched` is heap-pinned and its stack lives
        // until the end of this case; the workers never return, and the last
        // one switches back to the host.
        let host_lost = unsafe { ffi::ctc_sched_run(sched.ptr(), seed) };

        let s = sched.get();
        prop_assert_eq!(host_lost, 0, "the host lost state: {:#x}", host_lost);
        for w in 1..=n {
            prop_assert_eq!(s.lost[w], 0, "worker {} lost state: {:#x}", w, s.lost[w]);
        }
        prop_assert_eq!(&s.log[..s.log_len as usize], &expected_log(&order)[..], "a worker did not resume where it left off");
        prop_assert_eq!(s.pos, if order.is_empty() { 1 } else { order.len() as u64 + 1 });
        prop_assert_eq!(fp_control_bits(), DEFAULT_FP_CONTROL);
    }
}
