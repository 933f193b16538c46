//! Review (way back on the alternate stack, 09acdc0): a kill from another
//! thread that arrives while a faulted guest is on its way back to the
//! host. Since the way back's sigreturn installs the host's mask, the kill
//! signal is no longer blocked from the fault until the host's
//! `kill.stop()`: it can land on the alternate stack (counted, fine) or in
//! the host's code after the switch and before `stop` — where the kill
//! handler takes it for a kill "between marking the run running and
//! switching into the guest" and diverts the guest's resume word, a write
//! into the abandoned guest's frames (the saved rsp of its last yield).
//! The module docs promise "nothing is written on the instance's stack,
//! whose abandoned frames stay as the guest left them".

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Rng, scale};
use context::UntypedRetVal;
use instance::{Error, FaultKind, Instance, KillSwitch, Outcome, ThreadSignalMode, yield_u64};

const STACK: usize = 256 * 1024;
const WORDS: usize = 2048;
const PATTERN: u64 = 0xabab_abab_cdcd_cdcd;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
static ARRAY: AtomicUsize = AtomicUsize::new(0);
static FILLED: AtomicBool = AtomicBool::new(false);

/// Yields (its saved rsp then lies in `yield_u64`'s frames), and once
/// resumed fills a 16 KiB local over that spot with `PATTERN` and faults
/// with it live.
extern "C" fn yield_then_fill_and_fault() -> u64 {
    let _ = black_box(yield_u64(1));
    fill_and_fault();
    0
}

#[inline(never)]
fn fill_and_fault() {
    let mut a = [0u64; WORDS];
    for w in a.iter_mut() {
        // SAFETY: a local.
        unsafe { std::ptr::write_volatile(w, PATTERN) };
    }
    ARRAY.store(a.as_ptr() as usize, Ordering::SeqCst);
    FILLED.store(true, Ordering::SeqCst);
    // SAFETY: faults on purpose (address 16 is never mapped).
    let v = unsafe { (black_box(16usize) as *const u64).read_volatile() };
    black_box(&mut a);
    black_box(v);
}

struct Killer {
    jobs: mpsc::Sender<(KillSwitch, Duration)>,
    done: mpsc::Receiver<()>,
}

impl Killer {
    fn new() -> Killer {
        let (jobs, rx) = mpsc::channel::<(KillSwitch, Duration)>();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let (switch, delay) = match rx.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::TryRecvError::Empty) => {
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(mpsc::TryRecvError::Disconnected) => return,
                };
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                let _ = switch.terminate();
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
        Killer { jobs, done }
    }
}

fn race(mode: ThreadSignalMode) {
    common::deadline();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    instance::set_thread_signal_mode(mode).unwrap();
    let killer = Killer::new();
    let mut rng = Rng(0x5eed_0003);
    let mut inst = Instance::new(STACK).unwrap();
    // Until a write is seen or the time budget is spent: the delays sweep
    // 0..12 µs in 500 ns bands, 1,000 runs each (the band where a kill
    // lands between the host's landing and its `kill.stop()` depends on
    // the build and the machine: about 3 µs in release here).
    let budget = Duration::from_secs(std::env::var("R3_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(2));
    let started = Instant::now();
    let mut runs = 0usize;
    let (mut faulted, mut terminated, mut reached_fault, mut written, mut late_kill) =
        (0usize, 0usize, 0usize, Vec::new(), 0usize);
    for i in 0.. {
        if !written.is_empty() || (started.elapsed() > budget && i >= scale(2_000)) {
            break;
        }
        runs += 1;
        inst.reset().unwrap();
        // SAFETY: an extern "C" fn() -> u64 that does not unwind; nothing
        // uses its frames once abandoned.
        match unsafe { inst.start(yield_then_fill_and_fault as extern "C" fn() -> u64 as usize, &[]) }.unwrap() {
            Outcome::Yielded(_) => {}
            Outcome::Returned(_) => panic!("run {i}: returned"),
            _ => panic!("run {i}: unexpected outcome"),
        }
        FILLED.store(false, Ordering::SeqCst);
        ARRAY.store(0, Ordering::SeqCst);
        // Around the few microseconds that the fill, the fault and the way
        // back take.
        let lo = (i as u64 / 1_000 % 24) * 500;
        let delay = Duration::from_nanos(lo + rng.next() % 500);
        killer.jobs.send((inst.kill_switch(), delay)).unwrap();
        let r = inst.resume::<UntypedRetVal, u64>(0);
        killer.done.recv().unwrap();
        match r {
            Err(Error::Fault(f)) => {
                assert_eq!(f.kind, FaultKind::MemoryFault, "run {i}");
                faulted += 1;
            }
            Err(Error::Terminated) => {
                terminated += 1;
                late_kill += usize::from(FILLED.load(Ordering::SeqCst));
            }
            other => panic!("run {i}: {:?}", other.map(|_| ())),
        }
        if FILLED.load(Ordering::SeqCst) {
            reached_fault += 1;
            let a = ARRAY.load(Ordering::SeqCst);
            // SAFETY: the array lies in the instance's stack mapping, which
            // the instance still owns and nothing runs on (not reset yet).
            let words = unsafe { std::slice::from_raw_parts(a as *const u64, WORDS) };
            if let Some((k, &w)) = words.iter().enumerate().find(|&(_, &w)| w != PATTERN) {
                written.push((i, k, w));
            }
        }
    }
    eprintln!(
        "{mode:?}: {runs} runs, {faulted} faulted, {terminated} terminated, {reached_fault} reached the fault, \
         {late_kill} terminated after the fill, {} with the abandoned frames written after the fault: {:x?}",
        written.len(),
        &written[..written.len().min(5)]
    );
    instance::set_thread_signal_mode(ThreadSignalMode::Restore).unwrap();
    assert!(written.is_empty(), "the abandoned guest frames were written after the fault in {} runs", written.len());
}

#[test]
fn kill_racing_the_way_back_after_a_resumed_guest_faults_writes_nothing_on_its_frames_restore() {
    race(ThreadSignalMode::Restore);
}

#[test]
fn kill_racing_the_way_back_after_a_resumed_guest_faults_writes_nothing_on_its_frames_keep() {
    race(ThreadSignalMode::Keep);
}
