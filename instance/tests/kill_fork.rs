//! A kill switch still reaches its run in the child of a `fork`.
//!
//! Each run records the id of the thread it is on, from a per-thread cache.
//! The child of a fork has a new thread id but a copy of the parent's
//! thread-locals; if the cache were not cleared there, the kill signal would
//! be sent to the parent's thread id, which does not exist in the child:
//! the host would wait forever for a signal that never comes (the child's
//! alarm turns that into a failure).
//!
//! Own test binary: it forks, which is best done with few threads about.

use std::ffi::c_void;

use context::Val;
use instance::{Error, Instance, KillSwitch, Termination};

/// Terminates its own run, then returns 7 if the kill did not land.
extern "C" fn kill_self(switch: *const KillSwitch) -> u64 {
    // SAFETY: the test passes a KillSwitch that outlives the run.
    let t = unsafe { &*switch }.terminate();
    // The signal is taken on the way out of the tgkill system call, inside
    // `terminate`; getting here means it was not delivered.
    if t == Termination::Signalled { 7 } else { 8 }
}

/// Runs `kill_self` once; Ok(true) if the run was terminated.
fn run_once(inst: &mut Instance) -> bool {
    let switch = inst.kill_switch();
    let args = [Val::CPtr((&switch as *const KillSwitch).cast::<c_void>())];
    // SAFETY: kill_self is extern "C" fn(*const KillSwitch) -> u64 and does
    // not unwind; `switch` outlives the run.
    let r = unsafe { inst.run(kill_self as extern "C" fn(*const KillSwitch) -> u64 as usize, &args) };
    match r {
        Err(Error::Terminated) => true,
        Ok(v) => {
            eprintln!("run returned {}", v.as_u64());
            false
        }
        Err(e) => {
            eprintln!("run failed: {e}");
            false
        }
    }
}

#[test]
fn a_kill_lands_in_the_child_of_a_fork() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    // Fills this thread's id cache (and checks the self-kill works at all).
    assert!(run_once(&mut inst), "self-kill in the parent");
    inst.reset().unwrap();
    // SAFETY: the child only runs an instance on this thread, then leaves
    // with _exit; no lock another thread of the test harness could hold is
    // needed by it (the instance's state was set up above).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: alarm only arms a timer: a child that hangs dies of SIGALRM.
        unsafe { libc::alarm(5) };
        let code = if run_once(&mut inst) { 0 } else { 1 };
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child we just forked.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child did not exit normally: status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the kill did not reach the run in the forked child");
    // And the parent's cache is still right.
    inst.reset().unwrap();
    assert!(run_once(&mut inst), "self-kill in the parent after the fork");
}
