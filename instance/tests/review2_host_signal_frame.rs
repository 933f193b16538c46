//! Review 2: the fault trampoline runs on the instance's stack in the top
//! 1 KiB; a host signal handler installed without SA_ONSTACK (a profiler's
//! SIGPROF, a ctrl-c handler) that interrupts it gets its signal frame
//! (ucontext + xsave area, several KiB) pushed below the trampoline, i.e.
//! over the topmost abandoned frames of the faulted guest.
mod common;

use instance::Instance;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

const PAT: u64 = 0x5a5a_5a5a_5a5a_5a5a;
const WORDS: usize = 1024;
static ARR: AtomicUsize = AtomicUsize::new(0);
static TID: AtomicI32 = AtomicI32::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: libc::c_int) {}

#[test]
fn host_signal_during_trampoline_writes_into_abandoned_frames() {
    common::deadline();
    // A plain host handler, no SA_ONSTACK.
    // SAFETY: installs a handler that only bumps an atomic (async-signal-
    // safe) from a zeroed, then filled, sigaction.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, core::ptr::null_mut()), 0);
    }
    TID.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
    let spammer = std::thread::spawn(|| {
        let pid = std::process::id() as libc::c_int;
        while !STOP.load(Ordering::Relaxed) {
            // SAFETY: sends SIGUSR1 (handled above) to a thread of this process.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, TID.load(Ordering::Relaxed), libc::SIGUSR1) };
            for _ in 0..200 {
                std::hint::spin_loop();
            }
        }
    });
    let mut inst = Instance::new(64 * 1024).unwrap();
    // Test only: reuse instead of leaking a stack per fault; the write
    // happens before reset either way.
    // SAFETY: the guests lend nothing on their frames to anything that
    // outlives them (the test reads the frames itself, before the reset).
    unsafe { inst.set_reuse_abandoned_stack(true) };
    let top = inst.stack().top();
    let (mut hits, iters) = (0usize, common::scale(50_000));
    // 50,000 faults take about 13 s natively; an emulator (qemu-user
    // delivers signals several times slower) stops at the time budget
    // instead, after no fewer than MIN_FAULTS (a soak run scales both).
    const MIN_FAULTS: usize = 5_000;
    let budget = std::time::Instant::now() + std::time::Duration::from_secs(common::scale(20) as u64);
    let mut ran = 0usize;
    for i in 0..iters {
        if i >= MIN_FAULTS && std::time::Instant::now() > budget {
            break;
        }
        ran += 1;
        let err = inst
            .run_closure(|| {
                let mut arr = [PAT; WORDS];
                black_box(&mut arr);
                ARR.store(arr.as_ptr() as usize, Ordering::SeqCst);
                // Stands in for any guest fault.
                // SAFETY: a deliberate fault at an unmapped address, recovered
                // by the instance.
                let v = unsafe { core::ptr::read_volatile(16 as *const u64) };
                black_box(&arr)[0] + v
            })
            .unwrap_err();
        assert!(err.fault().is_some());
        let lo = ARR.load(Ordering::SeqCst);
        // SAFETY: the faulted stack is still mapped and not run on before the
        // reset; the words are plain u64s.
        let changed = (0..WORDS).filter(|&k| unsafe { ((lo + 8 * k) as *const u64).read_volatile() } != PAT).count();
        if changed != 0 {
            hits += 1;
            if hits <= 3 {
                println!(
                    "iter {i}: {changed} words of the abandoned frame [{:#x}, top-{}) changed",
                    lo,
                    top - lo - 8 * WORDS
                );
            }
        }
        inst.reset().unwrap();
    }
    STOP.store(true, Ordering::Relaxed);
    spammer.join().unwrap();
    println!("{ran} faults, {hits} with writes into the abandoned guest frames");
    assert_eq!(hits, 0);
}
