//! Reproducers from an adversarial review, kept as regression tests:
//! abandoned frames of closure guests (quarantined stacks), kills the host
//! must still settle, region depth, yields while unwinding. Each case runs
//! in a child process; the parent checks how it ended.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{ChildOutcome, child_case};
use instance::{Instance, Outcome, ThreadSignalMode};

const OK: &str = "review child ok";

/// Ends the child with exit code 3 and "HUNG" if it is still alive after
/// `secs` seconds.
fn hang_guard(secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        println!("HUNG after {secs} s, kill signal counts {:?}", instance::kill_signal_counts());
        std::process::exit(3);
    });
}

fn ok() {
    println!("{OK}");
}

/// A guest that spawns a scoped thread borrowing a local of the guest's
/// stack and keeps it reading that local; then `suspend()` (yield, fault,
/// ...) happens inside the scope.
fn scoped_reader(suspend: impl FnOnce()) {
    let x = AtomicU64::new(42);
    std::thread::scope(|s| {
        s.spawn(|| {
            loop {
                // Borrow of the guest's stack frame, 100% safe code.
                let v = x.load(Ordering::Relaxed);
                if v != 42 {
                    println!("scoped thread saw {v:#x} in a live borrow (stack reused)");
                    std::process::exit(4);
                }
                std::hint::spin_loop();
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        suspend();
        // Never reached in these cases.
        std::process::exit(5);
    });
}

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    recurse(pad[3] + 1) + pad[7]
}

fn case(name: &str) {
    match name {
        // F1: drop of a suspended closure on another thread abandons its
        // frames and unmaps the stack while a scoped thread still borrows it.
        "scope_yield_drop_elsewhere" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            let out = inst
                .start_closure(|| {
                    scoped_reader(|| {
                        instance::yield_value::<(), ()>(()).unwrap();
                    })
                })
                .unwrap();
            assert!(matches!(out, Outcome::Yielded(_)));
            std::thread::spawn(move || drop(inst)).join().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            ok();
            std::process::exit(0);
        }
        // F1b: into_stack elsewhere, stack reused by a new instance: the
        // scoped thread sees the new run's data (data race on the stack).
        "scope_yield_into_stack_reuse" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.start_closure(|| {
                scoped_reader(|| {
                    let _ = instance::yield_value::<(), ()>(());
                })
            })
            .unwrap();
            let stack = std::thread::spawn(move || inst.into_stack().unwrap()).join().unwrap();
            let mut again = Instance::with_stack(stack);
            for _ in 0..50 {
                again.run_closure(|| std::hint::black_box([0x5au8; 8 * 1024]).len()).unwrap();
            }
            std::thread::sleep(Duration::from_millis(300));
            ok();
            std::process::exit(0);
        }
        // F1c: yield_u64 (safe) in a closure, dropped on the SAME thread:
        // discarded, frames abandoned, stack unmapped.
        "scope_yield_u64_drop_home" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.start_closure(|| {
                scoped_reader(|| {
                    let _ = instance::yield_u64(1);
                })
            })
            .unwrap();
            drop(inst);
            std::thread::sleep(Duration::from_millis(300));
            ok();
            std::process::exit(0);
        }
        // F1d: a closure that swallows the unwind request (catch_unwind is
        // safe): after UNWIND_TRIES it is discarded, stack unmapped.
        "scope_catch_unwind_drop_home" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.start_closure(|| {
                scoped_reader(|| {
                    loop {
                        let _ = std::panic::catch_unwind(|| instance::yield_value::<(), ()>(()));
                    }
                })
            })
            .unwrap();
            drop(inst);
            std::thread::sleep(Duration::from_millis(300));
            ok();
            std::process::exit(0);
        }
        // F1e: a stack overflow (safe recursion) inside the scope: frames
        // abandoned, then the stack is reused by the next run.
        "scope_overflow_then_rerun" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            let err = inst
                .run_closure(|| {
                    scoped_reader(|| {
                        let _ = recurse(0);
                    })
                })
                .unwrap_err();
            assert!(err.fault().is_some());
            inst.reset().unwrap();
            for _ in 0..50 {
                inst.run_closure(|| std::hint::black_box([0x5au8; 8 * 1024]).len()).unwrap();
            }
            std::thread::sleep(Duration::from_millis(300));
            ok();
            std::process::exit(0);
        }
        // F2: thread exit, Instance kept in a thread_local: TLS destructors
        // run in reverse order, so a TLS value borrowed across the yield is
        // destroyed first, then the Instance's destructor unwinds the guest
        // on its own thread, whose destructors use the dead value.
        "tls_destroyed_before_unwind" => {
            static TLS_DROPPED: AtomicBool = AtomicBool::new(false);
            static USED_AFTER_DROP: AtomicBool = AtomicBool::new(false);
            struct Tracked(Box<u64>);
            impl Drop for Tracked {
                fn drop(&mut self) {
                    TLS_DROPPED.store(true, Ordering::SeqCst);
                }
            }
            thread_local! {
                static V: Tracked = Tracked(Box::new(42));
                static INST: RefCell<Option<Instance>> = const { RefCell::new(None) };
            }
            std::thread::spawn(|| {
                // Make the crate's own thread-locals first (destroyed last).
                Instance::new(16 * 1024).unwrap().run_closure(|| ()).unwrap();
                INST.with(|slot| {
                    let mut inst = Instance::new(64 * 1024).unwrap();
                    inst.start_closure(|| {
                        V.with(|v| {
                            struct Guard<'a>(&'a Tracked);
                            impl Drop for Guard<'_> {
                                fn drop(&mut self) {
                                    if TLS_DROPPED.load(Ordering::SeqCst) {
                                        USED_AFTER_DROP.store(true, Ordering::SeqCst);
                                        // Reads a Box freed by Tracked's drop.
                                        println!("guest destructor read {:#x} from a dropped thread-local", *self.0.0);
                                    }
                                }
                            }
                            let _g = Guard(v);
                            instance::yield_value::<(), ()>(()).unwrap();
                        })
                    })
                    .unwrap();
                    *slot.borrow_mut() = Some(inst);
                });
            })
            .join()
            .unwrap();
            if USED_AFTER_DROP.load(Ordering::SeqCst) {
                println!("USE AFTER DROP of a thread_local from safe code");
                std::process::exit(6);
            }
            ok();
            std::process::exit(0);
        }
        // F3: Keep mode, the thread blocks signals again between runs (as
        // worker pools do), then a non-killable run faults. Keep mode's
        // documented rule: setting Keep again after changing the mask
        // unblocks what runs need (Keep makes no system call per run).
        "keep_reblock_then_fault" => {
            instance::set_thread_signal_mode(ThreadSignalMode::Keep).unwrap();
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.run_closure(|| 1).unwrap();
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::all()),
                None,
            )
            .unwrap();
            instance::set_thread_signal_mode(ThreadSignalMode::Keep).unwrap();
            let err = inst.run_closure(|| recurse(0)).unwrap_err(); // safe code
            assert!(err.fault().is_some());
            ok();
            std::process::exit(0);
        }
        // F4: a guest (safe nix calls) that blocks the kill signal and
        // consumes it with sigwait: the host waits forever in settle_signal.
        "guest_sigwait_eats_kill" => {
            hang_guard(10);
            let mut inst = Instance::new(256 * 1024).unwrap();
            let ks = inst.kill_switch();
            static IN: AtomicBool = AtomicBool::new(false);
            let t = std::thread::spawn(move || {
                while !IN.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                std::thread::sleep(Duration::from_millis(20));
                ks.terminate()
            });
            let r = inst.run_closure(|| {
                instance::terminable(|| {
                    // 100% safe: block everything, then wait for anything.
                    let set = nix::sys::signal::SigSet::all();
                    set.thread_block().unwrap();
                    IN.store(true, Ordering::SeqCst);
                    // Safe nix API; it takes the pending kill signal (and then nix
                    // panics converting the RT signal number, caught here).
                    let _ = std::panic::catch_unwind(|| set.wait());
                })
            });
            println!("terminate said {:?}, run gave {:?}", t.join().unwrap(), r.map(drop));
            ok();
            std::process::exit(0);
        }
        // F5: 65536 nested instance_host_region_enter() (a safe fn) used to
        // carry the region depth into the run id: a timeout's switch became
        // "Superseded" and the terminable spin never ended. The depth beyond
        // what the word counts is now kept aside; regions entered and left
        // in pairs (and one unpaired leave) leave the word intact.
        "region_depth_overflow_defeats_timeout" => {
            hang_guard(10);
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.set_timeout(Some(Duration::from_millis(50)));
            let r = inst.run_closure(|| {
                for _ in 0..65536 + 5 {
                    instance::instance_host_region_enter();
                }
                assert!(instance::in_host_region());
                for _ in 0..65536 + 5 {
                    // SAFETY: pairs with an enter above; no kill is pending.
                    unsafe { instance::instance_host_region_leave() };
                }
                assert!(!instance::in_host_region());
                // SAFETY: an unpaired leave, which must be harmless.
                unsafe { instance::instance_host_region_leave() };
                instance::terminable(|| {
                    loop {
                        std::hint::spin_loop();
                    }
                })
            });
            assert!(matches!(r, Err(instance::Error::Terminated)), "{r:?}");
            ok();
            std::process::exit(0);
        }
        // F6: a destructor that yields while the suspended closure is being
        // unwound (drop at home): the second unwind request is a panic in a
        // destructor during cleanup: abort.
        "yield_in_drop_during_unwind" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            inst.start_closure(|| {
                struct G;
                impl Drop for G {
                    fn drop(&mut self) {
                        let r = instance::yield_value::<(), ()>(());
                        println!("yield in drop gave {r:?}");
                    }
                }
                let _g = G;
                instance::yield_value::<(), ()>(()).unwrap();
            })
            .unwrap();
            drop(inst);
            ok();
            std::process::exit(0);
        }
        // F7: the timeout of a terminable closure fires while the closure
        // drops (or resets) a suspended closure instance, whose unwinding
        // is a nested run without the `Nested` region: the signal is
        // consumed for the outer run but refused by the inner record, and
        // the outer run spins on forever.
        "kill_lost_during_nested_unwind" => {
            hang_guard(10);
            let mut outer = Instance::new(256 * 1024).unwrap();
            outer.set_timeout(Some(Duration::from_millis(30)));
            let r = outer.run_closure(|| {
                let mut inner = Instance::new(64 * 1024).unwrap();
                inner
                    .start_closure(|| {
                        struct Slow;
                        impl Drop for Slow {
                            fn drop(&mut self) {
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                        let _s = Slow;
                        instance::yield_value::<(), ()>(()).unwrap();
                    })
                    .unwrap();
                instance::terminable(move || {
                    drop(inner);
                    loop {
                        std::hint::spin_loop();
                    }
                })
            });
            println!("run gave {:?}, counts {:?}", r.map(drop), instance::kill_signal_counts());
            ok();
            std::process::exit(0);
        }
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn child() {
    if let Some(name) = child_case() {
        case(&name);
    }
}

fn expect_ok(name: &str) -> ChildOutcome {
    common::expect_child_ok("child", name, OK)
}

#[test]
fn f1_scope_yield_drop_elsewhere() {
    expect_ok("scope_yield_drop_elsewhere");
}
#[test]
fn f1b_scope_yield_into_stack_reuse() {
    expect_ok("scope_yield_into_stack_reuse");
}
#[test]
fn f1c_scope_yield_u64_drop_home() {
    expect_ok("scope_yield_u64_drop_home");
}
#[test]
fn f1d_scope_catch_unwind_drop_home() {
    expect_ok("scope_catch_unwind_drop_home");
}
#[test]
fn f1e_scope_overflow_then_rerun() {
    expect_ok("scope_overflow_then_rerun");
}
#[test]
#[ignore = "known limitation: a suspended closure kept in a thread_local is unwound at thread exit after thread-locals its frames borrow may be gone (documented at Instance, 'Threads')"]
fn f2_tls_destroyed_before_unwind() {
    expect_ok("tls_destroyed_before_unwind");
}
#[test]
fn f3_keep_reblock_then_fault() {
    expect_ok("keep_reblock_then_fault");
}
#[test]
fn f4_guest_sigwait_eats_kill() {
    expect_ok("guest_sigwait_eats_kill");
}
#[test]
fn f5_region_depth_overflow_defeats_timeout() {
    expect_ok("region_depth_overflow_defeats_timeout");
}
#[test]
fn f7_kill_lost_during_nested_unwind() {
    expect_ok("kill_lost_during_nested_unwind");
}
#[test]
fn f6_yield_in_drop_during_unwind() {
    expect_ok("yield_in_drop_during_unwind");
}

/// Held: a kill while yielded, a resume elsewhere (refused, still
/// suspended), then a resume at home: terminated, destructors run once.
#[test]
fn held_kill_while_yielded_then_resume_elsewhere_then_home() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let mut inst = Instance::new(64 * 1024).unwrap();
    inst.start_closure(move || {
        struct D(Arc<AtomicUsize>);
        impl Drop for D {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let _d = D(d);
        instance::yield_value::<(), ()>(()).unwrap();
    })
    .unwrap();
    assert_eq!(inst.kill_switch().terminate(), instance::Termination::OnResume);
    let mut inst = std::thread::spawn(move || {
        assert!(matches!(inst.resume::<(), ()>(()), Err(instance::Error::WrongThread { .. })));
        assert!(matches!(inst.reset(), Err(instance::Error::WrongThread { .. })));
        inst
    })
    .join()
    .unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert!(matches!(inst.resume::<(), ()>(()), Err(instance::Error::Terminated)));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// Held (with a caveat): the thread a closure yielded on has exited; the
/// instance can never be resumed or reset again (WrongThread), only dropped
/// or turned into its stack (frames abandoned; see F1 for the stack reuse).
#[test]
fn held_home_thread_exited() {
    let mut inst = std::thread::spawn(|| {
        let mut inst = Instance::new(64 * 1024).unwrap();
        inst.start_closure(|| instance::yield_value::<(), ()>(()).unwrap()).unwrap();
        inst
    })
    .join()
    .unwrap();
    assert!(matches!(inst.resume::<(), ()>(()), Err(instance::Error::WrongThread { .. })));
    assert!(matches!(inst.reset(), Err(instance::Error::WrongThread { .. })));
    drop(inst);
}

/// The stack pointer the last guest entry started with.
static ENTRY_SP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Records its stack pointer (its frame is the guest's outermost), then
/// faults.
extern "C" fn record_sp_then_fault() -> u64 {
    // SAFETY: reads the stack pointer.
    let sp = unsafe { context::Context::get_current_stack_pointer() } as usize;
    ENTRY_SP.store(sp, Ordering::SeqCst);
    // SAFETY: a deliberate fault, recovered by the instance.
    unsafe { core::ptr::without_provenance_mut::<u64>(8).write_volatile(1) };
    0
}

#[test]
fn guests_never_run_in_the_area_the_way_back_from_a_fault_uses() {
    // The handler's way back to the host (the trampoline and the switch it
    // makes) runs in the top KiB of the stack. An abandoned closure's frames
    // must stay as they were (its stack is quarantined because something
    // may still read them), so no guest frame may lie there: the outermost
    // frame starts below it.
    let mut inst = Instance::new(64 * 1024).unwrap();
    for _ in 0..3 {
        // SAFETY: an extern "C" fn without arguments that does not unwind.
        let err = unsafe { inst.run(record_sp_then_fault as *const () as usize, &[]) }.unwrap_err();
        let sp = ENTRY_SP.load(Ordering::SeqCst);
        assert!(inst.stack().contains(sp));
        assert!(inst.stack().top() - sp > 1024, "the guest started {} bytes below the top", inst.stack().top() - sp);
        // The fault came back from below that area.
        assert!(err.fault().is_some_and(|f| f.sp < inst.stack().top() - 1024));
        inst.reset().unwrap();
    }
}

#[test]
fn a_kill_during_the_unwind_of_a_reset_leaves_the_inner_instance_usable() {
    // The outer guest resets an inner instance whose suspended closure has a
    // slow destructor; the outer run is killed meanwhile (it waits for the
    // nested unwind, then ends). The inner instance's bookkeeping must be
    // complete before the outer run ends.
    struct Slow;
    impl Drop for Slow {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut inner = Instance::new(64 * 1024).unwrap();
    inner
        .start_closure(|| {
            let _slow = Slow;
            instance::yield_value::<(), ()>(()).unwrap();
        })
        .unwrap();
    let mut outer = Instance::new(64 * 1024).unwrap();
    let switch = outer.kill_switch();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        switch.terminate()
    });
    let r = outer.run_closure(|| instance::terminable(|| inner.reset()));
    assert!(killer.join().unwrap().takes_effect());
    assert!(matches!(r, Err(instance::Error::Terminated)), "{r:?}");
    assert_eq!(inner.state(), instance::State::Ready);
    assert_eq!(inner.run_closure(|| 6).unwrap(), 6);
}
