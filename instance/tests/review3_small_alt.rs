//! Review (way back on the alternate stack, 09acdc0): a guest that installs
//! its own, small alternate signal stack (4 KiB and up, which passes
//! `WAY_BACK_MIN_ALT`) and faults. The way back then runs at the top of
//! that stack with signals unblocked; a signal taken there (the run's kill,
//! held pending by the guest so that it arrives exactly then) needs a
//! nested signal frame below the way back. Checked: the process survives
//! and the runs end (4 KiB, 4.5 KiB, 8 KiB; AT_MINSIGSTKSZ 3632 on the
//! AVX-512 machine this was written on). The stack is placed mid-buffer:
//! on a 4 KiB stack the handlers' own frames run below its base (the
//! kernel checks only its frame), which with the stack at the start of a
//! static overwrote the statics below it (seen: a corrupted Mutex, a hang).
//! Each case runs in a child process.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::run_child;
use context::Val;
use instance::{Error, Instance, KillSwitch};

const SURVIVED: &str = "small-alt child survived";

static SWITCH: Mutex<Option<KillSwitch>> = Mutex::new(None);
static KILL_NOW: AtomicBool = AtomicBool::new(false);

#[repr(C, align(64))]
struct AltBuf([u8; 64 * 1024]);
static mut ALT_BUF: AltBuf = AltBuf([0; 64 * 1024]);

fn pending_kill() -> bool {
    // SAFETY: writes the pending set, then a membership query.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigpending(&mut set);
        libc::sigismember(&set, instance::kill_signal()) == 1
    }
}

/// Installs an alternate stack of `size` bytes of its own, blocks the kill
/// signal and has the run killed from another thread (pending), then
/// faults; `kill` 0 skips the kill.
extern "C" fn own_alt_then_fault(size: u64, kill: u64) -> u64 {
    // SAFETY: the buffer is static (outlives the run; the run puts the
    // thread's alternate stack back when it ends); the set is initialised.
    unsafe {
        let ss = libc::stack_t {
            // Mid-buffer: what runs below the stack's base (a handler's
            // frames beyond the kernel's frame are not checked) lands in
            // the buffer's own lower half, not in other statics.
            ss_sp: std::ptr::addr_of_mut!(ALT_BUF).cast::<u8>().add(32 * 1024).cast(),
            ss_flags: 0,
            ss_size: size as usize,
        };
        assert_eq!(libc::sigaltstack(&ss, std::ptr::null_mut()), 0);
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, instance::kill_signal());
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    if kill != 0 {
        KILL_NOW.store(true, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_secs(5);
        while !pending_kill() && Instant::now() < until {}
    }
    // SAFETY: faults on purpose (address 16 is never mapped).
    unsafe { (black_box(16usize) as *const u64).read_volatile() }
}

#[test]
fn child() {
    let Some(case) = common::child_case() else { return };
    let (size, kill): (u64, u64) = {
        let mut it = case.split('-');
        (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap())
    };
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let helper = std::thread::spawn(move || {
        while !done2.load(Ordering::SeqCst) {
            if KILL_NOW.swap(false, Ordering::SeqCst) {
                let _ = SWITCH.lock().unwrap().as_ref().unwrap().terminate();
            }
            std::hint::spin_loop();
        }
    });
    let mut inst = Instance::new(64 * 1024).unwrap();
    for _ in 0..10 {
        *SWITCH.lock().unwrap() = Some(inst.kill_switch());
        // SAFETY: extern "C" fn(u64, u64) -> u64 that does not unwind.
        let r = unsafe {
            inst.run(own_alt_then_fault as extern "C" fn(u64, u64) -> u64 as usize, &[Val::U64(size), Val::U64(kill)])
        };
        assert!(matches!(r, Err(Error::Fault(_)) | Err(Error::Terminated)), "{:?}", r.map(|_| ()));
        inst.reset().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    helper.join().unwrap();
    println!("{SURVIVED}");
}

fn survives(size: u64, kill: u64) {
    let case = format!("{size}-{kill}");
    let out = run_child("child", &case);
    assert!(
        out.code() == Some(0) && out.stdout.contains(SURVIVED),
        "guest's own {size}-byte alternate stack, kill {kill}: the process died: {out:?}"
    );
}

#[test]
fn a_guest_with_its_own_small_alt_stack_that_faults_survives_without_a_kill() {
    for size in [4096, 4608, 8192] {
        survives(size, 0);
    }
}

#[test]
fn a_guest_with_its_own_4_5k_alt_stack_that_faults_with_a_kill_pending_survives() {
    survives(4608, 1);
}

#[test]
fn a_guest_with_its_own_8k_alt_stack_that_faults_with_a_kill_pending_survives() {
    survives(8192, 1);
}

#[test]
fn a_guest_with_its_own_4k_alt_stack_that_faults_with_a_kill_pending_survives() {
    // The kill's frame fits below the way back's start (top - 256) with
    // AT_MINSIGSTKSZ 3632; the kill handler's frames then run below the
    // stack's base, into the buffer's padding.
    survives(4096, 1);
}
