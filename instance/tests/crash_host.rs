//! Faults that are not a guest's behave as if this crate were not there.
//!
//! Every case runs in a child process (this test binary re-run with the
//! case in the environment), because it installs process-wide handlers or
//! must kill the process; the parent checks how the child ended.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::guests::*;
use common::{ChildOutcome, run_child};
use instance::{FaultKind, Instance};
use nix::sys::mman::{ProtFlags, mprotect};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, raise, sigaction};

const SURVIVED: &str = "child case survived";

fn child_outcome(case: &str) -> ChildOutcome {
    run_child("child", case)
}

fn assert_died_of(case: &str, signal: Signal) -> ChildOutcome {
    let out = child_outcome(case);
    assert_eq!(out.signal(), Some(signal as i32), "case {case}: {out:?}");
    assert!(!out.stdout.contains(SURVIVED), "case {case}: {out:?}");
    out
}

fn assert_survived(case: &str) {
    let out = child_outcome(case);
    assert_eq!(out.code(), Some(0), "case {case}: {out:?}");
    assert!(out.stdout.contains(SURVIVED), "case {case}: {out:?}");
}

/// Runs guests that fault in every way, so our handlers are installed and
/// have worked before the host misbehaves.
fn run_faulting_guests() {
    let mut inst = Instance::new(64 * 1024).unwrap();
    let guests: [(FaultKind, fn()); 6] = [
        (FaultKind::MemoryFault, || {
            read_from(UNMAPPED);
        }),
        (FaultKind::IllegalInstruction, || {
            illegal_instruction();
        }),
        (FaultKind::Arithmetic, || {
            arithmetic_fault();
        }),
        (FaultKind::Breakpoint, || {
            breakpoint();
        }),
        (FaultKind::StackOverflow, || {
            rust_recursion(0);
        }),
        (FaultKind::MemoryFault, || {
            null_deref();
        }),
    ];
    for (kind, guest) in guests {
        let r = inst.run_closure(guest);
        assert_eq!(r.unwrap_err().fault().map(|f| f.kind), Some(kind));
        inst.reset().unwrap();
    }
    assert_eq!(inst.run_closure(|| 1).unwrap(), 1);
}

/// A thread that keeps running faulting and returning guests until told
/// to stop; returns how many faults it saw recovered.
fn guest_thread(stop: &'static AtomicBool) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut inst = Instance::new(64 * 1024).unwrap();
        let mut faults = 0;
        while !stop.load(Ordering::SeqCst) || faults < 100 {
            let r = inst.run_closure(|| read_from(UNMAPPED)).map(drop);
            assert_eq!(r.unwrap_err().fault().map(|f| f.kind), Some(FaultKind::MemoryFault));
            inst.reset().unwrap();
            assert_eq!(inst.run_closure(|| 5).unwrap(), 5);
            faults += 1;
        }
        faults
    })
}

// ---- handlers a host installs before ours -------------------------------

static HOST_FAULTS: AtomicUsize = AtomicUsize::new(0);

/// SA_SIGINFO handler that makes the faulting page read/write and returns,
/// so the faulting instruction succeeds when it is retried.
extern "C" fn mprotect_and_continue(_sig: i32, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo for a SIGSEGV.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = addr & !(instance::page_size() - 1);
    // SAFETY: the page belongs to a NoAccessPage the test made.
    let _ = unsafe {
        mprotect(
            std::ptr::NonNull::new(page as *mut libc::c_void).unwrap(),
            instance::page_size(),
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        )
    };
    HOST_FAULTS.fetch_add(1, Ordering::SeqCst);
}

/// What `record_mask` saw blocked while it ran: bit 0 SIGUSR1, bit 1
/// SIGSEGV.
static SEEN_BLOCKED: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Like `mprotect_and_continue`, and records which signals were blocked
/// while it ran.
extern "C" fn record_mask(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let mask = nix::sys::signal::SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
    let seen = usize::from(mask.contains(Signal::SIGUSR1)) | (usize::from(mask.contains(Signal::SIGSEGV)) << 1);
    SEEN_BLOCKED.store(seen, Ordering::SeqCst);
    mprotect_and_continue(sig, info, uc);
}

/// Plain (one-argument) handler that ends the process with exit code 42.
extern "C" fn exit_42(_sig: i32) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) };
}

/// Plain handler that counts and returns.
extern "C" fn count(_sig: i32) {
    HOST_FAULTS.fetch_add(1, Ordering::SeqCst);
}

/// A breakpoint's handler that counts and continues after it: x86_64's
/// `int3` is a trap (pc is already past it), so a plain handler returns.
#[cfg(target_arch = "x86_64")]
fn counting_breakpoint_handler() -> (SigHandler, SaFlags) {
    (SigHandler::Handler(count), SaFlags::empty())
}

/// aarch64's `brk` leaves pc at the instruction: a handler that returns
/// without stepping over it would take the same breakpoint for ever.
#[cfg(target_arch = "aarch64")]
extern "C" fn count_and_skip(_sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel's ucontext of an SA_SIGINFO handler.
    let uc = unsafe { &mut *uc.cast::<libc::ucontext_t>() };
    uc.uc_mcontext.pc += 4;
    HOST_FAULTS.fetch_add(1, Ordering::SeqCst);
}

#[cfg(target_arch = "aarch64")]
fn counting_breakpoint_handler() -> (SigHandler, SaFlags) {
    (SigHandler::SigAction(count_and_skip), SaFlags::SA_SIGINFO)
}

fn install_before_ours(signal: Signal, handler: SigHandler, flags: SaFlags) {
    assert!(!instance::in_guest());
    // SAFETY: the handlers above are async-signal-safe.
    unsafe { sigaction(signal, &SigAction::new(handler, flags, SigSet::empty())) }.unwrap();
    instance::install_handlers().unwrap();
}

/// The child side: runs the case named in the environment, if any.
#[test]
fn child() {
    common::deadline();
    let Some(case) = common::child_case() else { return };
    match case.as_str() {
        "null_no_instances" => {
            null_deref();
        }
        "null_after_instances" => {
            run_faulting_guests();
            null_deref();
        }
        "host_ud2" => {
            run_faulting_guests();
            illegal_instruction();
        }
        "host_div0" => {
            run_faulting_guests();
            arithmetic_fault();
        }
        "host_int3" => {
            run_faulting_guests();
            breakpoint();
        }
        "host_bus" => {
            run_faulting_guests();
            let map = TruncatedMapping::new();
            read_from(map.addr);
        }
        "host_overflow" => {
            run_faulting_guests();
            let t = std::thread::Builder::new().name("overflowing-host".into()).stack_size(256 * 1024);
            // The overflowing thread has run guests itself: its own
            // alternate stack (Rust's) must be back in place for Rust's
            // handler to report the overflow.
            t.spawn(|| {
                run_faulting_guests();
                rust_recursion(0)
            })
            .unwrap()
            .join()
            .unwrap();
        }
        "region_fault" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            // Clippy 1.88 calls this closure redundant, but an `extern "C" fn`
            // item is not `FnOnce` (its suggestion does not compile on 1.95).
            #[allow(clippy::redundant_closure)]
            let _ = inst.run_closure(|| instance::host_region(|| null_deref()));
        }
        "region_overflow" => {
            let mut inst = Instance::new(64 * 1024).unwrap();
            let _ = inst.run_closure(|| instance::host_region(|| rust_recursion(0)));
        }
        "host_stack_overflow" => {
            // The same host code on the host's own stack: Rust's report.
            let t = std::thread::Builder::new().name("host-stack".into()).stack_size(256 * 1024);
            t.spawn(|| {
                let mut inst = Instance::new(64 * 1024).unwrap();
                let _ = inst.run_closure(|| instance::on_host_stack(|| rust_recursion(0)));
            })
            .unwrap()
            .join()
            .unwrap();
        }
        "prev_siginfo_mprotect" => {
            install_before_ours(Signal::SIGSEGV, SigHandler::SigAction(mprotect_and_continue), SaFlags::empty());
            run_faulting_guests();
            assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), 0, "a guest fault reached the host's handler");
            static STOP: AtomicBool = AtomicBool::new(false);
            let guests = guest_thread(&STOP);
            for i in 0..200 {
                let page = NoAccessPage::new();
                write_to(page.0);
                // SAFETY: the handler made the page readable.
                assert_eq!(unsafe { (page.0 as *const u64).read_volatile() }, 1);
                assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), i + 1);
            }
            STOP.store(true, Ordering::SeqCst);
            assert!(guests.join().unwrap() >= 100);
            run_faulting_guests();
            assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), 200);
        }
        "prev_handler_mask" | "prev_handler_nodefer" => {
            let nodefer = case == "prev_handler_nodefer";
            let flags = if nodefer { SaFlags::SA_NODEFER } else { SaFlags::empty() };
            let act = SigAction::new(SigHandler::SigAction(record_mask), flags, SigSet::from(Signal::SIGUSR1));
            // SAFETY: record_mask only reads the mask, mprotects and stores.
            unsafe { sigaction(Signal::SIGSEGV, &act) }.unwrap();
            instance::install_handlers().unwrap();
            run_faulting_guests();
            let before = SigSet::thread_get_mask().unwrap();
            let page = NoAccessPage::new();
            write_to(page.0);
            // The earlier handler ran with its own mask (plus the signal
            // itself unless SA_NODEFER), as the kernel would have set it...
            let want = if nodefer { 0b01 } else { 0b11 };
            assert_eq!(SEEN_BLOCKED.load(Ordering::SeqCst), want);
            // ...and the host's mask is back afterwards.
            assert_eq!(SigSet::thread_get_mask().unwrap(), before);
            assert!(!before.contains(Signal::SIGUSR1));
        }
        "prev_plain_exit" => {
            install_before_ours(Signal::SIGSEGV, SigHandler::Handler(exit_42), SaFlags::empty());
            run_faulting_guests();
            static STOP: AtomicBool = AtomicBool::new(false);
            let _guests = guest_thread(&STOP);
            std::thread::sleep(Duration::from_millis(20));
            null_deref();
        }
        "prev_plain_trap_counts" => {
            let (handler, flags) = counting_breakpoint_handler();
            install_before_ours(Signal::SIGTRAP, handler, flags);
            static STOP: AtomicBool = AtomicBool::new(false);
            let guests = guest_thread(&STOP);
            run_faulting_guests();
            for i in 0..50 {
                breakpoint();
                assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), i + 1);
            }
            STOP.store(true, Ordering::SeqCst);
            guests.join().unwrap();
            run_faulting_guests();
            assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), 50);
        }
        "prev_ignored_trap" => {
            install_before_ours(Signal::SIGTRAP, SigHandler::SigIgn, SaFlags::empty());
            run_faulting_guests();
            // A sent SIGTRAP is ignored, as it would be without us...
            raise(Signal::SIGTRAP).unwrap();
            // ...but the kernel never lets a CPU trap be ignored.
            breakpoint();
        }
        "prev_resethand" => {
            install_before_ours(Signal::SIGSEGV, SigHandler::SigAction(mprotect_and_continue), SaFlags::SA_RESETHAND);
            run_faulting_guests();
            let first = NoAccessPage::new();
            write_to(first.0);
            assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), 1);
            // Guests still get theirs.
            run_faulting_guests();
            let second = NoAccessPage::new();
            write_to(second.0); // the one-shot handler is gone: SIG_DFL
        }
        "raise_in_guest_goes_to_host_handler" => {
            install_before_ours(Signal::SIGSEGV, SigHandler::Handler(count), SaFlags::empty());
            let mut inst = Instance::new(64 * 1024).unwrap();
            let r = inst.run_closure(|| {
                raise(Signal::SIGSEGV).unwrap();
                "guest went on"
            });
            assert_eq!(r.unwrap(), "guest went on");
            assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), 1);
        }
        "raise_in_guest_with_default_action" => {
            install_before_ours(Signal::SIGSEGV, SigHandler::SigDfl, SaFlags::empty());
            let mut inst = Instance::new(64 * 1024).unwrap();
            let _ = inst.run_closure(|| raise(Signal::SIGSEGV));
        }
        "forwarded_to_std_then_guests_fault" => {
            // Rust std's SIGSEGV/SIGBUS handler is the one below ours (no
            // install_before_ours): it answers a signal that is not its
            // guard page by installing SIG_DFL and returning.
            let mut inst = Instance::new(64 * 1024).unwrap();
            for signal in [Signal::SIGSEGV, Signal::SIGBUS] {
                let r = inst.run_closure(move || {
                    raise(signal).unwrap();
                    "guest went on"
                });
                assert_eq!(r.unwrap(), "guest went on");
                // Guests still fault safely afterwards, in every way.
                run_faulting_guests();
            }
            println!("guests recovered after forwarding to std");
            // What std left (SIG_DFL) is what the host gets.
            null_deref();
        }
        other => panic!("unknown child case {other}"),
    }
    println!("{SURVIVED}");
}

#[test]
fn host_null_deref_dies_of_sigsegv_without_instances() {
    common::deadline();
    assert_died_of("null_no_instances", Signal::SIGSEGV);
}

#[test]
fn host_null_deref_dies_of_sigsegv_after_instances_ran() {
    common::deadline();
    assert_died_of("null_after_instances", Signal::SIGSEGV);
}

#[test]
fn host_faults_of_every_signal_die_of_that_signal() {
    common::deadline();
    assert_died_of("host_ud2", Signal::SIGILL);
    assert_died_of("host_div0", Signal::SIGFPE);
    assert_died_of("host_int3", Signal::SIGTRAP);
    assert_died_of("host_bus", Signal::SIGBUS);
}

#[test]
fn host_stack_overflow_still_gets_rusts_message() {
    common::deadline();
    let out = assert_died_of("host_overflow", Signal::SIGABRT);
    assert!(out.stderr.contains("thread 'overflowing-host'"), "{}", out.stderr);
    assert!(out.stderr.contains("has overflowed its stack"), "{}", out.stderr);
}

#[test]
fn fault_inside_a_host_region_is_the_hosts() {
    common::deadline();
    assert_died_of("region_fault", Signal::SIGSEGV);
    let out = assert_died_of("region_overflow", Signal::SIGSEGV);
    assert!(
        out.stderr.contains("instance: host code in a host region overflowed the guest's stack (fault at 0x")
            && out.stderr.contains("run deep host code with instance::on_host_stack"),
        "{out:?}"
    );
    assert_eq!(out.stderr.matches("overflowed the guest's stack").count(), 1, "{out:?}");
}

#[test]
fn overflow_on_the_host_stack_gets_rusts_message() {
    common::deadline();
    let out = assert_died_of("host_stack_overflow", Signal::SIGABRT);
    assert!(out.stderr.contains("thread 'host-stack'") && out.stderr.contains("has overflowed its stack"), "{out:?}");
}

#[test]
fn earlier_siginfo_handler_gets_host_faults_while_guests_fault_on_another_thread() {
    common::deadline();
    assert_survived("prev_siginfo_mprotect");
}

#[test]
fn earlier_handler_runs_with_its_own_mask() {
    common::deadline();
    assert_survived("prev_handler_mask");
    assert_survived("prev_handler_nodefer");
}

#[test]
fn earlier_plain_handler_gets_host_faults() {
    common::deadline();
    let out = child_outcome("prev_plain_exit");
    assert_eq!(out.code(), Some(42), "{out:?}");
    assert_survived("prev_plain_trap_counts");
}

#[test]
fn earlier_ignore_still_lets_cpu_traps_kill() {
    common::deadline();
    assert_died_of("prev_ignored_trap", Signal::SIGTRAP);
}

#[test]
fn earlier_one_shot_handler_fires_once() {
    common::deadline();
    assert_died_of("prev_resethand", Signal::SIGSEGV);
}

#[test]
fn raised_signal_in_a_guest_is_not_a_guest_fault() {
    common::deadline();
    assert_survived("raise_in_guest_goes_to_host_handler");
    assert_died_of("raise_in_guest_with_default_action", Signal::SIGSEGV);
}

#[test]
fn forwarding_to_rusts_handler_keeps_ours_installed() {
    common::deadline();
    let out = assert_died_of("forwarded_to_std_then_guests_fault", Signal::SIGSEGV);
    assert!(out.stdout.contains("guests recovered after forwarding to std"), "{out:?}");
}
