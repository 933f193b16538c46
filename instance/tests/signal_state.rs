//! Process-wide and per-thread signal state: the handlers are installed
//! once with the right flags, from any number of threads; a thread's own
//! alternate signal stack is given back intact after every kind of run.

mod common;

use std::mem::MaybeUninit;
use std::sync::Mutex;

use common::guests::*;
use instance::{FaultKind, Instance};
use nix::sys::signal::Signal;

/// The tests here read and change per-thread signal state of the test
/// threads and the process-wide dispositions; one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn query_action(signal: Signal) -> libc::sigaction {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a query-only sigaction writes `old`.
    assert_eq!(unsafe { libc::sigaction(signal as i32, std::ptr::null(), old.as_mut_ptr()) }, 0);
    // SAFETY: written by the successful call.
    unsafe { old.assume_init() }
}

fn query_alt_stack() -> libc::stack_t {
    let mut ss = MaybeUninit::<libc::stack_t>::uninit();
    // SAFETY: a query-only sigaltstack writes `ss`.
    assert_eq!(unsafe { libc::sigaltstack(std::ptr::null(), ss.as_mut_ptr()) }, 0);
    // SAFETY: written by the successful call.
    unsafe { ss.assume_init() }
}

fn set_alt_stack(ss: &libc::stack_t) {
    // SAFETY: the caller's stack_t names memory that outlives its use.
    assert_eq!(unsafe { libc::sigaltstack(ss, std::ptr::null_mut()) }, 0);
}

fn same(a: &libc::stack_t, b: &libc::stack_t) -> bool {
    (a.ss_sp, a.ss_size, a.ss_flags) == (b.ss_sp, b.ss_size, b.ss_flags)
}

/// Runs a guest that returns, one of each fault kind, and one that panics.
fn every_outcome(inst: &mut Instance) {
    assert_eq!(inst.run_closure(|| 1).unwrap(), 1);
    let faults: [(FaultKind, fn()); 4] = [
        (FaultKind::MemoryFault, || {
            read_from(UNMAPPED);
        }),
        (FaultKind::IllegalInstruction, || {
            illegal_instruction();
        }),
        (FaultKind::Breakpoint, || {
            breakpoint();
        }),
        (FaultKind::StackOverflow, || {
            rust_recursion(0);
        }),
    ];
    for (kind, guest) in faults {
        assert_eq!(inst.run_closure(guest).unwrap_err().fault().map(|f| f.kind), Some(kind));
        inst.reset().unwrap();
    }
    assert!(inst.run_closure(|| -> u8 { panic!("p") }).unwrap_err().into_panic().is_some());
    inst.reset().unwrap();
}

#[test]
fn handlers_are_installed_once_with_siginfo_and_onstack() {
    common::deadline();
    let _s = serial();
    let threads: Vec<_> = (0..8).map(|_| std::thread::spawn(instance::install_handlers)).collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let first: Vec<usize> = instance::FAULT_SIGNALS.iter().map(|&s| query_action(s).sa_sigaction).collect();
    for (&signal, &handler) in instance::FAULT_SIGNALS.iter().zip(&first) {
        let action = query_action(signal);
        assert_eq!(action.sa_flags & libc::SA_SIGINFO, libc::SA_SIGINFO, "{signal}");
        assert_eq!(action.sa_flags & libc::SA_ONSTACK, libc::SA_ONSTACK, "{signal}");
        assert_ne!(handler, libc::SIG_DFL);
        assert_ne!(handler, libc::SIG_IGN);
        assert_eq!(handler, first[0], "one handler for every fault signal");
    }
    // Again: nothing changes.
    instance::install_handlers().unwrap();
    let again: Vec<usize> = instance::FAULT_SIGNALS.iter().map(|&s| query_action(s).sa_sigaction).collect();
    assert_eq!(again, first);
}

#[test]
fn alt_stack_is_large_enough_for_the_kernel() {
    common::deadline();
    // SAFETY: getauxval only reads the auxiliary vector.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    let size = instance::alt_stack_size();
    assert!(size >= min.max(libc::MINSIGSTKSZ) + 16 * 1024, "{size} for a minimum of {min}");
    assert_eq!(size % instance::page_size(), 0);
}

#[test]
fn threads_own_alt_stack_comes_back_after_every_outcome() {
    common::deadline();
    let _s = serial();
    std::thread::spawn(|| {
        // The thread's own alternate stack, in memory of its own.
        let mut mine = vec![0u8; 64 * 1024];
        let own = libc::stack_t { ss_sp: mine.as_mut_ptr().cast(), ss_flags: 0, ss_size: mine.len() };
        set_alt_stack(&own);
        let before = query_alt_stack();
        let mut inst = Instance::new(128 * 1024).unwrap();
        every_outcome(&mut inst);
        assert!(same(&query_alt_stack(), &before));
        // During a run, ours is in place instead.
        let during = inst.run_closure(query_alt_stack).unwrap();
        assert_ne!(during.ss_sp, own.ss_sp);
        assert_eq!(during.ss_size, instance::alt_stack_size());
        assert!(same(&query_alt_stack(), &before));
        drop(mine);
    })
    .join()
    .unwrap();
}

#[test]
fn thread_without_alt_stack_has_none_after_runs() {
    common::deadline();
    let _s = serial();
    std::thread::spawn(|| {
        let disable = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        set_alt_stack(&disable);
        assert_eq!(query_alt_stack().ss_flags & libc::SS_DISABLE, libc::SS_DISABLE);
        let mut inst = Instance::new(128 * 1024).unwrap();
        every_outcome(&mut inst);
        assert_eq!(query_alt_stack().ss_flags & libc::SS_DISABLE, libc::SS_DISABLE);
    })
    .join()
    .unwrap();
}

#[test]
fn run_from_a_handler_on_the_alt_stack_is_an_error_not_a_crash() {
    common::deadline();
    // A handler running on the thread's alternate stack starts a run: the
    // alternate stack cannot be switched while in use, so the run says so.
    let _s = serial();
    static RESULT: Mutex<Option<String>> = Mutex::new(None);
    extern "C" fn on_usr1(_sig: i32) {
        let mut inst = Instance::new(64 * 1024).unwrap();
        let r = inst.run_closure(|| 5);
        *RESULT.lock().unwrap() = Some(format!("{r:?}"));
    }
    std::thread::spawn(|| {
        let mut mine = vec![0u8; 256 * 1024];
        set_alt_stack(&libc::stack_t { ss_sp: mine.as_mut_ptr().cast(), ss_flags: 0, ss_size: mine.len() });
        let act = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_usr1),
            nix::sys::signal::SaFlags::SA_ONSTACK,
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only runs in this thread, on purpose, for this
        // test (which holds the serial lock); it is restored below.
        let old = unsafe { nix::sys::signal::sigaction(Signal::SIGUSR1, &act) }.unwrap();
        nix::sys::signal::raise(Signal::SIGUSR1).unwrap();
        // SAFETY: restoring the previous disposition.
        unsafe { nix::sys::signal::sigaction(Signal::SIGUSR1, &old) }.unwrap();
        let disable = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        set_alt_stack(&disable);
        drop(mine);
    })
    .join()
    .unwrap();
    let got = RESULT.lock().unwrap().take().unwrap();
    assert!(got.starts_with("Err(AltStack(EPERM"), "{got}");
}

/// A run guest that blocks SIGUSR2 and then overflows its stack.
fn block_usr2_then_overflow(inst: &mut Instance) {
    let err = inst
        .run_closure(|| {
            let usr2 = nix::sys::signal::SigSet::from(Signal::SIGUSR2);
            nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&usr2), None).unwrap();
            rust_recursion(0);
        })
        .unwrap_err();
    assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::StackOverflow));
    inst.reset().unwrap();
}

fn usr2_blocked() -> bool {
    nix::sys::signal::SigSet::thread_get_mask().unwrap().contains(Signal::SIGUSR2)
}

#[test]
fn keep_mode_leaves_our_alt_stack_installed_until_restore_is_set() {
    let _s = serial();
    std::thread::spawn(|| {
        let mut buf = vec![0u8; 64 * 1024];
        let own = libc::stack_t { ss_sp: buf.as_mut_ptr().cast(), ss_flags: 0, ss_size: buf.len() };
        set_alt_stack(&own);
        assert_eq!(instance::thread_signal_mode(), instance::ThreadSignalMode::Restore);
        instance::set_thread_signal_mode(instance::ThreadSignalMode::Keep).unwrap();
        assert_eq!(instance::thread_signal_mode(), instance::ThreadSignalMode::Keep);
        // Setting the mode alone changes nothing yet.
        assert!(same(&query_alt_stack(), &own));

        let mut inst = Instance::new(64 * 1024).unwrap();
        every_outcome(&mut inst);
        let ours = query_alt_stack();
        assert!(!same(&ours, &own), "our alternate stack stays installed between runs");
        assert_eq!(ours.ss_size, instance::alt_stack_size());
        for _ in 0..20 {
            every_outcome(&mut inst);
            block_usr2_then_overflow(&mut inst);
            assert!(same(&query_alt_stack(), &ours), "the same one, not re-made per run");
        }
        // In Keep the mask is not restored after a fault: the guest's stays.
        assert!(usr2_blocked());

        instance::set_thread_signal_mode(instance::ThreadSignalMode::Restore).unwrap();
        assert!(same(&query_alt_stack(), &own), "Restore puts the thread's own back at once");
        // And from now on every run gives it back and restores the mask.
        let none = nix::sys::signal::SigSet::empty();
        nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&none), None).unwrap();
        every_outcome(&mut inst);
        block_usr2_then_overflow(&mut inst);
        assert!(same(&query_alt_stack(), &own));
        assert!(!usr2_blocked(), "Restore undoes the faulted guest's mask change");
        drop(buf);
    })
    .join()
    .unwrap();
}

#[test]
fn the_mode_cannot_change_inside_a_run() {
    let _s = serial();
    std::thread::spawn(|| {
        let mut inst = Instance::new(64 * 1024).unwrap();
        let r = inst.run_closure(|| instance::set_thread_signal_mode(instance::ThreadSignalMode::Keep)).unwrap();
        assert!(matches!(r, Err(instance::Error::SignalModeInRun)), "{r:?}");
        assert_eq!(instance::thread_signal_mode(), instance::ThreadSignalMode::Restore);
    })
    .join()
    .unwrap();
}

/// Where our alternate stack was mapped in the thread.
static OURS_AT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What the alternate stack was when this thread's recorder was dropped.
static AT_EXIT: Mutex<Option<(usize, usize, i32)>> = Mutex::new(None);

struct Recorder;

impl Drop for Recorder {
    fn drop(&mut self) {
        let ss = query_alt_stack();
        *AT_EXIT.lock().unwrap() = Some((ss.ss_sp as usize, ss.ss_size, ss.ss_flags));
    }
}

thread_local! {
    static RECORDER: std::cell::RefCell<Option<Recorder>> = const { std::cell::RefCell::new(None) };
}

/// The body of a raw pthread (no Rust std thread set-up or teardown, which
/// would install and disable an alternate stack of its own).
extern "C" fn keep_then_exit(own: *mut libc::c_void) -> *mut libc::c_void {
    // Registered before the crate's own thread-local: thread-local
    // destructors run in reverse order of registration, so this one runs
    // after the crate has put the thread's own alternate stack back.
    RECORDER.with(|r| *r.borrow_mut() = Some(Recorder));
    // SAFETY: the caller passes a live stack_t.
    set_alt_stack(unsafe { &*(own as *const libc::stack_t) });
    instance::set_thread_signal_mode(instance::ThreadSignalMode::Keep).unwrap();
    let mut inst = Instance::new(64 * 1024).unwrap();
    block_usr2_then_overflow(&mut inst);
    let ours = query_alt_stack();
    assert_eq!(ours.ss_size, instance::alt_stack_size());
    OURS_AT.store(ours.ss_sp as usize, std::sync::atomic::Ordering::SeqCst);
    std::ptr::null_mut()
}

#[test]
fn keep_mode_gives_the_threads_own_alt_stack_back_when_the_thread_exits() {
    let _s = serial();
    let mut buf = vec![0u8; 64 * 1024];
    let own = libc::stack_t { ss_sp: buf.as_mut_ptr().cast(), ss_flags: 0, ss_size: buf.len() };
    let mut thread = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `own` outlives the thread (joined below); the body is an
    // extern "C" fn that does not unwind (a failed assertion aborts).
    let rc = unsafe {
        libc::pthread_create(
            thread.as_mut_ptr(),
            std::ptr::null(),
            keep_then_exit,
            (&own as *const libc::stack_t).cast_mut().cast(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: joins the thread created above.
    assert_eq!(unsafe { libc::pthread_join(thread.assume_init(), std::ptr::null_mut()) }, 0);
    let seen = AT_EXIT.lock().unwrap().take().expect("the recorder ran at thread exit");
    assert_eq!(seen, (own.ss_sp as usize, own.ss_size, own.ss_flags), "the thread's own came back");
    let ours = OURS_AT.load(std::sync::atomic::Ordering::SeqCst);
    assert_ne!(ours, 0);
    assert_eq!(common::perms_at(ours), None, "our alternate stack was unmapped at thread exit");
    drop(buf);
}

/// What `set_thread_signal_mode(Restore)` answered inside the handler.
static FROM_HANDLER: Mutex<Option<Result<(), String>>> = Mutex::new(None);

extern "C" fn restore_from_handler(_sig: i32) {
    // Test only: nothing else of the crate is in use on this thread now.
    let r = instance::set_thread_signal_mode(instance::ThreadSignalMode::Restore).map_err(|e| format!("{e:?}"));
    *FROM_HANDLER.lock().unwrap() = Some(r);
}

#[test]
fn restore_from_a_handler_running_on_our_alt_stack_is_an_error_and_keeps_keep() {
    let _s = serial();
    std::thread::spawn(|| {
        // SAFETY: installs a plain handler for SIGUSR1 on the alternate
        // stack; restored to the default below.
        let old = unsafe {
            nix::sys::signal::sigaction(
                Signal::SIGUSR1,
                &nix::sys::signal::SigAction::new(
                    nix::sys::signal::SigHandler::Handler(restore_from_handler),
                    nix::sys::signal::SaFlags::SA_ONSTACK,
                    nix::sys::signal::SigSet::empty(),
                ),
            )
        }
        .unwrap();
        instance::set_thread_signal_mode(instance::ThreadSignalMode::Keep).unwrap();
        let mut inst = Instance::new(64 * 1024).unwrap();
        assert_eq!(inst.run_closure(|| 1).unwrap(), 1);
        let ours = query_alt_stack();
        nix::sys::signal::raise(Signal::SIGUSR1).unwrap();
        let answer = FROM_HANDLER.lock().unwrap().take().expect("the handler ran");
        assert!(answer.as_ref().is_err_and(|e| e.contains("AltStack")), "{answer:?}");
        assert_eq!(instance::thread_signal_mode(), instance::ThreadSignalMode::Keep);
        assert!(same(&query_alt_stack(), &ours), "ours is still installed");
        // From the thread's own stack it works, and the thread's own comes back.
        instance::set_thread_signal_mode(instance::ThreadSignalMode::Restore).unwrap();
        assert!(!same(&query_alt_stack(), &ours));
        // SAFETY: puts back the handler replaced above.
        unsafe { nix::sys::signal::sigaction(Signal::SIGUSR1, &old) }.unwrap();
    })
    .join()
    .unwrap();
}

/// The signal numbers blocked in this thread's mask (real-time ones
/// included).
fn blocked_signals() -> Vec<i32> {
    let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: a query-only pthread_sigmask writes `mask`.
    assert_eq!(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr()) }, 0);
    // SAFETY: written by the successful call.
    let mask = unsafe { mask.assume_init() };
    // SAFETY: sigismember reads an initialised set.
    (1..=libc::SIGRTMAX()).filter(|&s| unsafe { libc::sigismember(&mask, s) } == 1).collect()
}

/// What a guest does to its mask before it faults: blocks SIGUSR2 and
/// unblocks SIGWINCH (which the host blocks).
fn remask() {
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::from(Signal::SIGUSR2)), None).unwrap();
    pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&SigSet::from(Signal::SIGWINCH)), None).unwrap();
}

/// A raw guest: `remask`, then a read of an unmapped address.
extern "C" fn remask_then_fault(p: u64) -> u64 {
    remask();
    // SAFETY: faults on purpose (the test passes an unmapped address); the
    // instance's handler ends the run.
    unsafe { (p as *const u64).read_volatile() }
}

/// A raw guest that disables the alternate signal stack, then `remask`s
/// and faults: the handler runs on the guest's stack, and the way back
/// cannot use an alternate stack.
extern "C" fn no_alt_remask_then_fault(p: u64) -> u64 {
    // SAFETY: SS_DISABLE names no memory; the kernel restores the setting
    // the run installed when the fault handler returns.
    let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
    // SAFETY: see above.
    unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
    remask_then_fault(p)
}

#[test]
fn a_fault_leaves_the_mask_each_mode_promises_for_raw_and_closure_guests() {
    let _s = serial();
    std::thread::spawn(|| {
        use instance::ThreadSignalMode::{Keep, Restore};
        use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
        let mut buf = vec![0u8; 64 * 1024];
        let own = libc::stack_t { ss_sp: buf.as_mut_ptr().cast(), ss_flags: 0, ss_size: buf.len() };
        set_alt_stack(&own);
        for mode in [Restore, Keep] {
            instance::set_thread_signal_mode(mode).unwrap();
            // Raw guests take the quick way back (sigreturn installs the
            // mask), closures the one that keeps signals blocked until the
            // host has stopped the run.
            for (closure, no_alt) in [(false, false), (true, false), (false, true)] {
                // A guest without an alternate stack in Keep would leave the
                // thread without ours (Keep does not reinstall it per run).
                if no_alt && mode == Keep {
                    continue;
                }
                for round in 0..3 {
                    // The host's mask: SIGWINCH blocked, nothing else.
                    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::from(Signal::SIGWINCH)), None).unwrap();
                    let host = blocked_signals();
                    let mut inst = Instance::new(64 * 1024).unwrap();
                    let err = if closure {
                        inst.run_closure(|| {
                            remask();
                            read_from(UNMAPPED);
                        })
                        .unwrap_err()
                    } else {
                        let guest: extern "C" fn(u64) -> u64 =
                            if no_alt { no_alt_remask_then_fault } else { remask_then_fault };
                        // SAFETY: an extern "C" fn of one u64 whose only way
                        // out is the fault the instance recovers.
                        unsafe { inst.run(guest as usize, &[context::Val::U64(UNMAPPED as u64)]) }.unwrap_err()
                    };
                    let what = format!("{mode:?}, closure {closure}, no alt stack {no_alt}, round {round}");
                    assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::MemoryFault), "{what}");
                    let after = blocked_signals();
                    match mode {
                        Restore => {
                            assert_eq!(after, host, "{what}: the host's mask exactly");
                            assert!(same(&query_alt_stack(), &own), "{what}: the thread's own alt stack");
                        }
                        _ => {
                            assert!(after.contains(&(Signal::SIGUSR2 as i32)), "{what}: the guest's mask: {after:?}");
                            assert!(!after.contains(&(Signal::SIGWINCH as i32)), "{what}: the guest's mask: {after:?}");
                        }
                    }
                    inst.reset().unwrap();
                }
            }
        }
        instance::set_thread_signal_mode(Restore).unwrap();
        assert!(same(&query_alt_stack(), &own));
        drop(buf);
    })
    .join()
    .unwrap();
}
