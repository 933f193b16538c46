//! Review 2: a kill signal that reaches the thread while it handles the
//! guest's fault (sp on the alternate stack) makes `divert_guest` write the
//! kill pad's address through the guest context's stale saved rsp: into the
//! frames the fault just abandoned (quarantined memory for closure guests).
mod common;

use instance::{Instance, terminable, yield_value};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

const PAT: u64 = 0xa5a5_a5a5_a5a5_a5a5;
const WORDS: usize = 2048;
static IN: AtomicBool = AtomicBool::new(false);
static ARR: AtomicUsize = AtomicUsize::new(0);
static SPIN: AtomicUsize = AtomicUsize::new(0);

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = black_box([n; 64]);
    recurse(pad[3] + 1) + pad[7]
}

#[inline(never)]
fn deep() -> u64 {
    let mut arr = [PAT; WORDS];
    black_box(&mut arr);
    ARR.store(arr.as_ptr() as usize, Ordering::SeqCst);
    let spin = SPIN.load(Ordering::Relaxed);
    let r = terminable(|| {
        IN.store(true, Ordering::SeqCst);
        for _ in 0..spin {
            std::hint::spin_loop();
        }
        recurse(0)
    });
    black_box(&arr)[0] + r
}

#[test]
fn kill_during_fault_handling_writes_into_abandoned_frames() {
    common::deadline();
    let (tx, rx) = mpsc::channel::<instance::KillSwitch>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        for ks in rx {
            while !IN.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            ks.terminate();
            done_tx.send(()).unwrap();
        }
    });
    let mut rng = common::Rng(7);
    let mut inst = Instance::new(256 * 1024).unwrap();
    // Test only: avoid leaking one stack per iteration; the write below is
    // the same with the default quarantine (it happens before reset).
    // SAFETY: the guests lend nothing on their frames to anything that
    // outlives them (the test reads the frames itself, before the reset).
    unsafe { inst.set_reuse_abandoned_stack(true) };
    let (mut hits, mut faults, mut terms) = (0usize, 0usize, 0usize);
    let iters = common::scale(5_000);
    for i in 0..iters {
        SPIN.store((rng.next() % 3000) as usize, Ordering::Relaxed);
        IN.store(false, Ordering::SeqCst);
        ARR.store(0, Ordering::SeqCst);
        inst.start_closure(|| {
            yield_value::<(), ()>(()).unwrap();
            deep()
        })
        .unwrap();
        tx.send(inst.kill_switch()).unwrap();
        let err = inst.resume::<u64, ()>(()).unwrap_err();
        done_rx.recv().unwrap();
        if err.fault().is_some() {
            faults += 1
        } else {
            terms += 1
        }
        let lo = ARR.load(Ordering::SeqCst);
        if lo == 0 {
            // Killed before `deep` ran (the kill diverted the resume, which
            // writes the suspended guest's own resume word, by design):
            // this run abandoned no frame with the array in it.
            inst.reset().unwrap();
            continue;
        }
        let changed: Vec<(usize, u64)> = (0..WORDS)
            // SAFETY: the abandoned frames are still mapped (reset not yet
            // called) and hold plain u64s.
            .map(|k| (k, unsafe { ((lo + 8 * k) as *const u64).read_volatile() }))
            .filter(|&(_, v)| v != PAT)
            .collect();
        if !changed.is_empty() {
            hits += 1;
            if hits <= 3 {
                println!("iter {i}: {err}; abandoned frame words changed: {changed:x?}");
            }
        }
        inst.reset().unwrap();
    }
    drop(tx);
    killer.join().unwrap();
    println!("{iters} runs: {faults} faulted, {terms} terminated, {hits} with a write into abandoned frames");
    println!("{:?}", instance::kill_signal_counts());
    assert_eq!(hits, 0, "the kill path wrote into abandoned guest frames");
}
