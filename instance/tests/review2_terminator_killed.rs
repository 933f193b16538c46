//! Review 2: `KillSwitch::terminate` called from terminable guest code (of
//! instance B) on another instance A. If B's own kill lands between A's
//! CAS (which marks A's run SENT) and the `tgkill`, B's frames are
//! abandoned there: no signal for A is ever sent and `queued` is never set,
//! so A's host, once its guest returns, waits in `settle_signal` forever.
mod common;

use instance::{Instance, KillSwitch, terminable};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

static A_RUNNING: AtomicBool = AtomicBool::new(false);
static STOP_A: AtomicBool = AtomicBool::new(false);
static B_SPIN: AtomicUsize = AtomicUsize::new(0);

fn case() {
    let (a_ks_tx, a_ks_rx) = mpsc::channel::<KillSwitch>();
    let (a_done_tx, a_done_rx) = mpsc::channel::<String>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    // Thread 1: instance A, a terminable guest that spins until told to stop.
    std::thread::spawn(move || {
        let mut a = Instance::new(64 * 1024).unwrap();
        for () in go_rx {
            a.reset().unwrap();
            a_ks_tx.send(a.kill_switch()).unwrap();
            let r = a.run_closure(|| {
                terminable(|| {
                    A_RUNNING.store(true, Ordering::SeqCst);
                    while !STOP_A.load(Ordering::SeqCst) {
                        std::hint::spin_loop();
                    }
                })
            });
            a_done_tx.send(format!("{:?}", r.map_err(|e| e.to_string()))).unwrap();
        }
    });
    let mut rng = common::Rng(11);
    let mut b = Instance::new(64 * 1024).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut iters = 0u64;
    let mut a_killed = 0u64;
    while Instant::now() < deadline {
        iters += 1;
        A_RUNNING.store(false, Ordering::SeqCst);
        STOP_A.store(false, Ordering::SeqCst);
        go_tx.send(()).unwrap();
        let a_ks = Arc::new(a_ks_rx.recv().unwrap());
        while !A_RUNNING.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        b.reset().unwrap();
        let b_ks = b.kill_switch();
        let delay = rng.next() % 4000;
        B_SPIN.store((rng.next() % 400) as usize, Ordering::Relaxed);
        // Thread 3: kills B after a random delay.
        let killer = std::thread::spawn(move || {
            let t = Instant::now();
            while (t.elapsed().as_nanos() as u64) < delay {
                std::hint::spin_loop();
            }
            b_ks.terminate();
        });
        let a2 = a_ks.clone();
        let _ = b.run_closure(move || {
            terminable(|| {
                for _ in 0..B_SPIN.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                let _ = a2.terminate();
                loop {
                    std::hint::spin_loop();
                }
            })
        });
        killer.join().unwrap();
        STOP_A.store(true, Ordering::SeqCst);
        match a_done_rx.recv_timeout(Duration::from_secs(3)) {
            Ok(r) => {
                if r.contains("terminated") {
                    a_killed += 1
                }
            }
            Err(_) => {
                println!("HUNG after {iters} iterations: A's guest returned, its host never came back");
                for t in std::fs::read_dir("/proc/self/task").unwrap() {
                    let p = t.unwrap().path();
                    let sc = std::fs::read_to_string(p.join("syscall")).unwrap_or_default();
                    println!(
                        "task {:?}: syscall {}",
                        p.file_name().unwrap(),
                        sc.split_whitespace().next().unwrap_or("?")
                    );
                }
                std::process::exit(3);
            }
        }
    }
    println!("no hang in {iters} iterations ({a_killed} of A's runs terminated)");
}

#[test]
fn terminator_killed_mid_terminate_hangs_target_host() {
    if common::child_case().is_some() {
        case();
        return;
    }
    let out = common::run_child("terminator_killed_mid_terminate_hangs_target_host", "x");
    println!("status {:?}\nstdout:\n{}\nstderr:\n{}", out.status, out.stdout, out.stderr);
    assert!(!out.stdout.contains("HUNG"));
}
