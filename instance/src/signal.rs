//! The process-wide fault handler, chaining to the handlers installed before
//! it, and the per-thread alternate signal stack.
//!
//! # Whose fault it is
//!
//! A signal is the guest's only if all of these hold; otherwise it goes to
//! the handler that was installed before ours, as if we were not there:
//!
//! 1. the CPU raised it (`si_code > 0`; `kill`, `raise`, `sigqueue` give
//!    `si_code <= 0`);
//! 2. this thread is running an instance (the thread-local current run
//!    record is set);
//! 3. the interrupted stack pointer lies in that instance's stack mapping,
//!    guard region included;
//! 4. the guest is not inside a host region.
//!
//! # How the handler gets back to the host
//!
//! It copies the fault report into the run record, then rewrites the
//! interrupted register state: rip = the run core's `fault_return`, rsp = an aligned spot
//! near the top of the instance's stack, rdi = the run record; it also puts
//! the host's signal mask into `uc_sigmask` (in [`ThreadSignalMode::Restore`])
//! and clears the direction, trap and alignment-check flags. Then it *returns*: the kernel's sigreturn
//! restores the mask, the alternate-stack state and the FPU state, and the
//! thread continues in `fault_return`, which switches to the host context
//! with [`context::Context::set`].
//!
//! # Async-signal safety
//!
//! The handler allocates nothing, takes no lock, does not format, and
//! touches only a `const`-initialised thread-local `Cell`, atomics, the run
//! record (plain data owned by the running instance) and statics written
//! once before the handler was installed. It preserves `errno`.
//!
//! This module needs `unsafe` for `sigaction`, `sigaltstack`, reading
//! `siginfo_t`/`ucontext_t` from the kernel, calling the previous handlers
//! through their raw addresses, and the jump back to the host.
#![allow(unsafe_code)]

use core::cell::RefCell;
use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, raise, sigaction};

use crate::error::Error;
use crate::fault::{FaultKind, FaultReport};
use crate::run::{RunRecord, in_guest, redirect_to_host, with_current};
use crate::stack::{Stack, page_size};

/// The signals the CPU raises for faults, which [`install_handlers`] takes
/// over (in the order of the saved previous handlers).
pub const FAULT_SIGNALS: [Signal; 5] =
    [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGILL, Signal::SIGFPE, Signal::SIGTRAP];

/// Stack the handler and whatever it chains to may use on our alternate
/// stack, on top of the kernel's minimum for the signal frame. Our handler
/// needs well under a page; chained handlers (Rust's stack-overflow report,
/// a host's own handler) may format and write, so give them room. The pages
/// are committed only if used.
const HANDLER_STACK_NEEDS: usize = 64 * 1024;

/// Words of a `sigaction` as [`Previous`] stores it.
const ACTION_WORDS: usize = core::mem::size_of::<libc::sigaction>().div_ceil(8);

/// What the handler that was in place before ours asks for, for one signal:
/// the disposition we forward to. Written when ours is installed, and again
/// whenever a chained handler changes the disposition (Rust std's SIGSEGV
/// handler, for one, answers a fault that is not a guard-page hit by
/// installing `SIG_DFL`, over ours; we put ours back and remember `SIG_DFL`
/// as what the host now wants).
///
/// A sequence lock over atomic words, so that a signal handler on any
/// thread can read it without a lock and without a data race: `seq` is 0
/// until the first write (the previous handler then counts as `SIG_DFL`),
/// odd while a write is in progress, and even otherwise. Writers run with
/// every signal blocked, so a reader never waits for a writer it
/// interrupted on its own thread; a reader that meets a write in progress on
/// another thread retries.
struct Previous {
    seq: AtomicU32,
    words: [AtomicU64; ACTION_WORDS],
}

impl Previous {
    const fn new() -> Previous {
        Previous { seq: AtomicU32::new(0), words: [const { AtomicU64::new(0) }; ACTION_WORDS] }
    }

    /// The stored disposition, or `None` before the first write.
    fn load(&self) -> Option<libc::sigaction> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 != 0 {
                core::hint::spin_loop();
                continue;
            }
            let mut words = [0u64; ACTION_WORDS];
            for (w, a) in words.iter_mut().zip(&self.words) {
                *w = a.load(Ordering::Relaxed);
            }
            core::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                // SAFETY: `words` holds the bytes of a `libc::sigaction`
                // written by `store` (plain data, every bit pattern of which
                // the kernel gave us or we built); it is at least as long.
                return Some(unsafe { core::ptr::read_unaligned(words.as_ptr().cast::<libc::sigaction>()) });
            }
        }
    }

    /// Stores `action`. Call with every signal blocked (see the type's
    /// docs); a write already in progress on another thread wins, and this
    /// one is dropped.
    fn store(&self, action: &libc::sigaction) {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 != 0 || self.seq.compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        let mut words = [0u64; ACTION_WORDS];
        // SAFETY: copies the sigaction's bytes into a buffer at least as
        // large; both are plain data.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (action as *const libc::sigaction).cast::<u8>(),
                words.as_mut_ptr().cast::<u8>(),
                core::mem::size_of::<libc::sigaction>(),
            )
        };
        core::sync::atomic::fence(Ordering::Release);
        for (a, w) in self.words.iter().zip(words) {
            a.store(w, Ordering::Relaxed);
        }
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// [`Previous::store`] with every signal blocked around it.
    fn store_masked(&self, action: &libc::sigaction) {
        let mut old = SigSet::empty();
        let blocked = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old)).is_ok();
        self.store(action);
        if blocked {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        }
    }
}

/// A `SIG_DFL` disposition with no flags.
fn default_disposition() -> libc::sigaction {
    // SAFETY: a zeroed sigaction is SIG_DFL (0) with no flags and an empty
    // mask.
    unsafe { core::mem::zeroed() }
}

static PREVIOUS: [Previous; 5] = [Previous::new(), Previous::new(), Previous::new(), Previous::new(), Previous::new()];

/// Why installing failed: a fault signal's or the kill signal's sigaction.
#[derive(Clone, Copy)]
enum InstallError {
    Fault(Signal, Errno),
    Kill(c_int, Errno),
}

static INSTALLED: OnceLock<Result<(), InstallError>> = OnceLock::new();

fn slot(signum: c_int) -> Option<&'static Previous> {
    let index = match signum {
        libc::SIGSEGV => 0,
        libc::SIGBUS => 1,
        libc::SIGILL => 2,
        libc::SIGFPE => 3,
        libc::SIGTRAP => 4,
        _ => return None,
    };
    PREVIOUS.get(index)
}

/// Installs the fault handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE and
/// SIGTRAP, once per process (`SA_SIGINFO | SA_ONSTACK`), remembering the
/// handlers in place before so that faults that are not a guest's go to
/// them; and the handler of the kill signal ([`kill_signal`](crate::kill_signal),
/// `SA_SIGINFO | SA_ONSTACK | SA_RESTART`), which ignores every delivery
/// that is not a termination of a run on its thread. Idempotent and thread-safe; [`Instance`](crate::Instance) calls it
/// before every run, so calling it yourself is needed only to fix the
/// moment it happens (for example before the host installs handlers of its
/// own *after* ours, which then come first).
///
/// # Errors
///
/// [`Error::SignalHandler`] naming the signal whose `sigaction` failed, or
/// [`Error::KillHandler`] (the same error on every later call).
pub fn install_handlers() -> Result<(), Error> {
    let result = INSTALLED.get_or_init(|| {
        for signal in FAULT_SIGNALS {
            install_one(signal).map_err(|errno| InstallError::Fault(signal, errno))?;
        }
        crate::kill::install_kill_handler().map_err(|(signum, errno)| InstallError::Kill(signum, errno))
    });
    result.map_err(|e| match e {
        InstallError::Fault(signal, errno) => Error::SignalHandler { signal, errno },
        InstallError::Kill(signum, errno) => Error::KillHandler { signum, errno },
    })
}

fn install_one(signal: Signal) -> Result<(), Errno> {
    let Some(prev) = slot(signal as c_int) else { return Ok(()) };
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a query-only sigaction (null new action) writes the current
    // action into `old`; nix has no query-only form.
    Errno::result(unsafe { libc::sigaction(signal as c_int, core::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: the query succeeded, so it wrote `old`.
    prev.store_masked(&unsafe { old.assume_init() });
    // SAFETY: `handle_fault` (behind its AC-clearing entry, which keeps
    // the kernel's arguments) is async-signal-safe (see the module docs)
    // and valid for the whole life of the process.
    unsafe { install_ours(signal as c_int) }
}

/// Our fault handler's disposition for `signum`.
fn our_action() -> libc::sigaction {
    // SAFETY: a zeroed sigaction is a valid value to fill in; nix's
    // SigHandler cannot name an assembly entry point.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction =
        instance_fault_entry as unsafe extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    action
}

/// Installs our fault handler for `signum`.
///
/// # Safety
///
/// `signum` must be one of [`FAULT_SIGNALS`].
unsafe fn install_ours(signum: c_int) -> Result<(), Errno> {
    let action = our_action();
    // SAFETY: installs our async-signal-safe handler, valid for the life of
    // the process (the caller names a fault signal).
    Errno::result(unsafe { libc::sigaction(signum, &action, core::ptr::null_mut()) }).map(drop)
}

/// Defines an assembly entry point `$entry` for a signal handler: it clears
/// EFLAGS.AC, then jumps to `$handler` with the kernel's arguments and
/// return address untouched.
///
/// Linux enters a handler with the interrupted code's alignment-check flag
/// (AC, bit 18) still set (it clears only TF, DF and RF), and with CR0.AM
/// on, every misaligned access of the handler would then raise SIGBUS: a
/// guest that set AC and faulted, or was killed, would take the process
/// down from inside our handler or anything it calls (libc's `memcpy`
/// makes misaligned accesses on purpose). So AC goes before any Rust code
/// runs. `pushfq` and the `and` touch the 8-byte word at rsp, which the
/// kernel aligned (rsp + 8 is 16-aligned at a handler's entry), so they
/// cannot trip the check themselves. The interrupted context's own flags
/// are in the ucontext and come back at sigreturn (`redirect_to_host`
/// clears AC there too when a guest is abandoned).
///
/// The tail jump leaves no frame of its own: `$handler` returns straight to
/// the kernel's restorer, and unwinders see it as the signal frame's callee.
macro_rules! ac_clearing_entry {
    ($entry:literal, $handler:path) => {
        core::arch::global_asm!(
            ".p2align 4",
            concat!(".globl ", $entry),
            concat!(".hidden ", $entry),
            concat!(".type ", $entry, ", @function"),
            concat!($entry, ":"),
            ".cfi_startproc",
            // CFA = rsp + 8 (the restorer's address at rsp), as at any call.
            "pushfq",
            ".cfi_adjust_cfa_offset 8",
            // ~(1 << 18): every flag but AC.
            "andl $0xfffbffff, (%rsp)",
            "popfq",
            ".cfi_adjust_cfa_offset -8",
            "jmp {handler}",
            ".cfi_endproc",
            concat!(".size ", $entry, ", .-", $entry),
            handler = sym $handler,
            options(att_syntax),
        );
    };
}
pub(crate) use ac_clearing_entry;

ac_clearing_entry!("instance_fault_entry", handle_fault);

unsafe extern "C" {
    /// [`handle_fault`] behind the AC-clearing entry (see
    /// `ac_clearing_entry!`); the address given to `sigaction`.
    fn instance_fault_entry(signum: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void);
}

/// The handler for every fault signal (entered through
/// `instance_fault_entry`, with EFLAGS.AC clear).
extern "C" fn handle_fault(signum: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    let errno = Errno::last_raw();
    // SAFETY: the kernel passes a valid siginfo and ucontext for an
    // SA_SIGINFO handler.
    let recovered = unsafe { recover(signum, info, uctx.cast()) };
    if !recovered {
        // SAFETY: as above; `chain` forwards them unchanged.
        unsafe { chain(signum, info, uctx) };
    }
    Errno::set_raw(errno);
}

/// If the fault is the running guest's, records it and redirects the
/// interrupted context to the run core's `fault_return`; returns whether it did.
///
/// # Safety
///
/// `info` and `uc` must be the pointers the kernel passed to the handler.
unsafe fn recover(signum: c_int, info: *mut libc::siginfo_t, uc: *mut libc::ucontext_t) -> bool {
    // SAFETY: the caller passes the kernel's siginfo.
    let info = unsafe { &*info };
    if info.si_code <= 0 {
        return false;
    }
    // SAFETY: the caller passes the kernel's ucontext.
    let uc = unsafe { &mut *uc };
    with_current(|record| record.is_some_and(|record| recover_in(record, signum, info, uc)))
}

/// [`recover`] for the current run's `record`.
fn recover_in(record: &RunRecord, signum: c_int, info: &libc::siginfo_t, uc: &mut libc::ucontext_t) -> bool {
    let sp = uc.uc_mcontext.gregs[libc::REG_RSP as usize] as usize;
    let pc = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    if !record.in_mapping(sp) {
        return false;
    }
    if record.in_host_region() {
        // The host's fault, forwarded as if we were not there; but a host
        // region that ran out of the guest's stack would otherwise die
        // without a word (Rust's own report knows only thread stacks).
        if signum == libc::SIGSEGV {
            // SAFETY: si_addr is valid to read for SIGSEGV.
            let addr = unsafe { info.si_addr() } as usize;
            if record.in_guard(addr) || record.in_guard(sp) {
                report_region_overflow(addr);
            }
        }
        return false;
    }
    let (signal, kind) = match signum {
        libc::SIGSEGV => (Signal::SIGSEGV, FaultKind::MemoryFault),
        libc::SIGBUS => (Signal::SIGBUS, FaultKind::BusError),
        libc::SIGILL => (Signal::SIGILL, FaultKind::IllegalInstruction),
        libc::SIGFPE => (Signal::SIGFPE, FaultKind::Arithmetic),
        libc::SIGTRAP => (Signal::SIGTRAP, FaultKind::Breakpoint),
        _ => return false,
    };
    // SAFETY: si_addr is valid to read for the five fault signals.
    let addr = unsafe { info.si_addr() } as usize;
    let kind = if signal == Signal::SIGSEGV && (record.in_guard(addr) || record.in_guard(sp)) {
        FaultKind::StackOverflow
    } else {
        kind
    };
    record.set_fault(FaultReport { kind, signal, code: info.si_code, addr, pc, sp });
    // SAFETY: `uc` is the kernel's, and the guest it interrupted is
    // abandoned now that its fault is recorded.
    unsafe { redirect_to_host(uc, record) };
    true
}

/// Writes, once per process, to stderr that host code in a host region
/// overflowed the guest's stack (the fault then goes to the host's handler
/// and, as for any host fault, normally kills the process). Async-signal-
/// safe: one `write` of a message built in a stack buffer.
fn report_region_overflow(addr: usize) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    const HEAD: &[u8] = b"instance: host code in a host region overflowed the guest's stack (fault at 0x";
    const TAIL: &[u8] = b"); run deep host code with instance::on_host_stack\n";
    let mut buf = [0u8; HEAD.len() + 16 + TAIL.len()];
    buf[..HEAD.len()].copy_from_slice(HEAD);
    let mut n = HEAD.len();
    let digits = (usize::BITS - addr.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        buf[n] = b"0123456789abcdef"[(addr >> (i * 4)) & 0xf];
        n += 1;
    }
    buf[n..n + TAIL.len()].copy_from_slice(TAIL);
    n += TAIL.len();
    // SAFETY: writes `n` initialised bytes of a live buffer to fd 2; a
    // failure leaves nothing to do.
    let _ = unsafe { libc::write(2, buf.as_ptr().cast(), n) };
}

/// Hands a signal that is not a guest's to the handler installed before
/// ours, honouring its flags.
///
/// # Safety
///
/// The arguments must be those the kernel passed to our handler.
unsafe fn chain(signum: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    let Some(prev) = slot(signum) else { return };
    // SAFETY: the caller passes the kernel's siginfo.
    let code = unsafe { (*info).si_code };
    let Some(action) = prev.load() else { return default_action(signum, code) };
    match action.sa_sigaction {
        libc::SIG_DFL => default_action(signum, code),
        // The kernel does not let a CPU fault be ignored: it resets the
        // action to SIG_DFL and kills. A sent signal is ignored.
        libc::SIG_IGN if code > 0 => default_action(signum, code),
        libc::SIG_IGN => {}
        handler => {
            if action.sa_flags & libc::SA_RESETHAND != 0 {
                // The kernel would have reset the disposition on delivery.
                prev.store_masked(&default_disposition());
            }
            // Block what the kernel would have blocked for that handler.
            // SAFETY: sa_mask is an initialised sigset_t.
            let mut mask = unsafe { SigSet::from_sigset_t_unchecked(action.sa_mask) };
            let signal = Signal::try_from(signum).ok();
            if let Some(signal) = signal {
                mask.add(signal);
            }
            let mut old = SigSet::empty();
            let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old));
            if let (Some(signal), true) = (signal, action.sa_flags & libc::SA_NODEFER != 0) {
                let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&SigSet::from(signal)), None);
            }
            if action.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO the action holds a three-argument
                // handler, which we call as the kernel would have.
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                    unsafe { core::mem::transmute(handler) };
                f(signum, info, uctx);
            } else {
                // SAFETY: without SA_SIGINFO the action holds a one-argument
                // handler.
                let f: extern "C" fn(c_int) = unsafe { core::mem::transmute(handler) };
                f(signum);
            }
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            // SAFETY: `signum` is a fault signal (it has a slot).
            unsafe { keep_ours_installed(signum, prev) };
        }
    }
}

/// After a chained handler ran: if it changed the disposition of `signum`
/// (Rust std's handler installs `SIG_DFL` for a fault it does not own; a
/// one-shot handler may install its successor), remember what it installed
/// as the host's handler from now on and put ours back, so that guests
/// keep being recovered. What the host gets is unchanged: the next
/// forwarded signal goes to what it installed, `SIG_DFL` included (a host
/// fault that recurs after the chained handler returned still kills the
/// process with that signal).
///
/// A fault on another thread between the chained handler's change and our
/// re-install meets the host's new disposition directly; that window is a
/// few system calls long.
///
/// # Safety
///
/// `signum` must be one of [`FAULT_SIGNALS`] and `prev` its slot.
unsafe fn keep_ours_installed(signum: c_int, prev: &Previous) {
    let mut now = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a query-only sigaction writes the current action into `now`.
    if unsafe { libc::sigaction(signum, core::ptr::null(), now.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: the query succeeded.
    let now = unsafe { now.assume_init() };
    if now.sa_sigaction == our_action().sa_sigaction {
        return;
    }
    prev.store_masked(&now);
    // SAFETY: the caller names a fault signal.
    let _ = unsafe { install_ours(signum) };
}

/// What the kernel would have done with no handler: put back `SIG_DFL` and
/// let the signal take effect. A faulting instruction faults again when we
/// return; a trap (`int3` leaves rip after it) or a sent signal would not
/// recur, so it is raised again (blocked now, delivered at sigreturn).
fn default_action(signum: c_int, code: c_int) {
    let Ok(signal) = Signal::try_from(signum) else { return };
    // SAFETY: SIG_DFL is always a valid disposition.
    let _ = unsafe { sigaction(signal, &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty())) };
    if code <= 0 || signal == Signal::SIGTRAP {
        let _ = raise(signal);
    }
}

/// The signals a run needs deliverable: the five fault signals (the kernel
/// kills the process when a CPU fault meets a blocked fault signal) and the
/// kill signal (a blocked one never stops a spinning guest).
fn run_signals() -> impl Iterator<Item = c_int> {
    FAULT_SIGNALS.map(|s| s as c_int).into_iter().chain([crate::kill::kill_signal()])
}

/// [`run_signals`] as a set.
fn run_sigset() -> libc::sigset_t {
    let mut set = fault_sigset();
    // SAFETY: adds a valid signal number to an initialised set.
    unsafe { libc::sigaddset(&mut set, crate::kill::kill_signal()) };
    set
}

/// The five fault signals as a set.
fn fault_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a local set with valid signal
    // numbers.
    unsafe {
        let mut set = core::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for signal in FAULT_SIGNALS {
            libc::sigaddset(&mut set, signal as c_int);
        }
        set
    }
}

/// The signal mask around one run (or resume): in effect from `enter` until
/// dropped, which the host does after the run's kill signal is settled.
///
/// A run needs the fault signals and the kill signal deliverable, whatever
/// mask the thread keeps (worker threads often block every signal): a CPU
/// fault that meets a blocked SIGSEGV kills the process, and a blocked kill
/// signal never stops a spinning guest.
///
/// * [`ThreadSignalMode::Restore`]: the run unblocks them (reading the old
///   mask in the same system call, the one a run makes anyway), and drop
///   blocks again those the thread had blocked (one more call, only then):
///   the thread's mask comes back exactly, after a fault too.
/// * [`ThreadSignalMode::Keep`]: they are unblocked when the thread enters
///   Keep mode (its first run installs our alternate stack) and stay so;
///   later runs make no system call, except a run that can be terminated
///   (a [`KillSwitch`](crate::KillSwitch) exists or a timeout is set), which
///   unblocks them again in case the thread blocked them since.
pub(crate) struct RunMask {
    host_mask: Option<SigSet>,
    reblock: Option<libc::sigset_t>,
}

impl RunMask {
    /// `entering_keep`: this run installed our alternate stack for Keep
    /// mode; `killable`: the run can be terminated.
    pub(crate) fn enter(mode: ThreadSignalMode, entering_keep: bool, killable: bool) -> Result<RunMask, Error> {
        let set = run_sigset();
        match mode {
            ThreadSignalMode::Restore => {
                let mut old = MaybeUninit::<libc::sigset_t>::uninit();
                // SAFETY: `set` is initialised and `old` receives the mask.
                Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, old.as_mut_ptr()) })
                    .map_err(Error::SignalMask)?;
                // SAFETY: pthread_sigmask succeeded, so it wrote `old`.
                let old = unsafe { old.assume_init() };
                // The run's signals that the thread had blocked.
                // SAFETY: sigemptyset/sigaddset fill a local set,
                // sigismember reads an initialised one.
                let reblock = unsafe {
                    let mut both = core::mem::zeroed::<libc::sigset_t>();
                    libc::sigemptyset(&mut both);
                    let mut any = false;
                    for signum in run_signals() {
                        if libc::sigismember(&old, signum) == 1 {
                            libc::sigaddset(&mut both, signum);
                            any = true;
                        }
                    }
                    any.then_some(both)
                };
                // SAFETY: `old` is the thread's mask as the kernel wrote it.
                Ok(RunMask { host_mask: Some(unsafe { SigSet::from_sigset_t_unchecked(old) }), reblock })
            }
            ThreadSignalMode::Keep => {
                if entering_keep || killable {
                    // SAFETY: `set` is initialised; no old mask asked for.
                    Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut()) })
                        .map_err(Error::SignalMask)?;
                }
                Ok(RunMask { host_mask: None, reblock: None })
            }
        }
    }

    /// The mask a fault restores (see `RunRecord::host_mask`): the thread's
    /// as it was before the run in Restore mode, none in Keep mode.
    pub(crate) fn host_mask(&self) -> Option<SigSet> {
        self.host_mask
    }
}

impl Drop for RunMask {
    fn drop(&mut self) {
        if let Some(set) = &self.reblock {
            // SAFETY: blocks an initialised set of signals the thread had
            // blocked before the run; cannot fail with valid arguments.
            let _ = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, core::ptr::null_mut()) };
        }
    }
}

/// Bytes of the alternate signal stack each thread gets for runs:
/// `getauxval(AT_MINSIGSTKSZ)` (at least `MINSIGSTKSZ`) plus what the
/// handler and the handlers it chains to need, rounded up to pages.
pub fn alt_stack_size() -> usize {
    // SAFETY: getauxval only reads the auxiliary vector; nix lacks it.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    let bytes = min.max(libc::MINSIGSTKSZ) + HANDLER_STACK_NEEDS;
    bytes.div_ceil(page_size()) * page_size()
}

/// What runs do to a thread's signal state; chosen per thread with
/// [`set_thread_signal_mode`].
///
/// The two modes trade system calls per run against how completely a run
/// leaves the thread as it found it:
///
/// | | [`Restore`](ThreadSignalMode::Restore) (default) | [`Keep`](ThreadSignalMode::Keep) |
/// |---|---|---|
/// | our alternate signal stack | installed by each outermost run, the thread's own put back when it ends | installed by the first run, stays until the mode is set back or the thread exits |
/// | signal mask after a fault | the one the run started with, whatever the guest did | the one the guest faulted with (as after a return) |
/// | fault signals and kill signal | unblocked for the run, blocked again after if the thread had them blocked | unblocked when Keep is set (and by the first run) and left so: block them again only after setting Restore, or set Keep again after |
/// | system calls per run | 3 (`sigaltstack` × 2, `rt_sigprocmask`), 4 if the thread blocks a fault or kill signal | none; 1 (`rt_sigprocmask`) for a run that can be terminated |
///
/// In both modes the handler always runs on our alternate stack during a
/// run, and the MXCSR and x87 control word come back as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ThreadSignalMode {
    /// Every run gives the thread's alternate signal stack back and a
    /// faulted run restores the signal mask it started with.
    #[default]
    Restore,
    /// Our alternate signal stack stays installed on this thread between
    /// runs, and the signal mask is not read at each run.
    ///
    /// The fault signals and the kill signal are unblocked when this mode
    /// is set and stay so: runs do not read the mask. A thread that blocks
    /// them again while in Keep (a worker that blocks every signal between
    /// jobs) must set Keep again before its next run; otherwise a guest's
    /// fault meets a blocked SIGSEGV, and the kernel kills the process.
    ///
    /// Host code of this thread that takes a signal on the alternate stack
    /// between runs takes it on ours (larger than the usual one). Do not
    /// change the thread's alternate stack with `sigaltstack` while in this
    /// mode: set [`Restore`](ThreadSignalMode::Restore) first, which puts the
    /// thread's own back at once. When the thread exits, its own is put back
    /// too (unless someone else replaced ours meanwhile) before ours is
    /// unmapped.
    Keep,
}

/// One thread's alternate-stack state.
struct ThreadAlt {
    /// Our alternate signal stack, made on first use.
    stack: Option<Stack>,
    mode: ThreadSignalMode,
    /// In [`ThreadSignalMode::Keep`], once ours is installed: the thread's
    /// own setting, to put back later.
    kept_over: Option<libc::stack_t>,
}

impl ThreadAlt {
    /// Puts the thread's own setting back if ours is still the installed
    /// one (someone else's later change is left alone: Rust's std thread
    /// teardown, for one, disables the alternate stack itself, and a thread
    /// it started ends with none either way).
    fn give_back(&mut self) -> Result<(), Errno> {
        let (Some(own), Some(stack)) = (self.kept_over, self.stack.as_ref()) else { return Ok(()) };
        let mut now = MaybeUninit::<libc::stack_t>::uninit();
        // SAFETY: a query: sigaltstack writes the current setting to `now`.
        Errno::result(unsafe { libc::sigaltstack(core::ptr::null(), now.as_mut_ptr()) })?;
        // SAFETY: sigaltstack succeeded, so it wrote `now`.
        let now = unsafe { now.assume_init() };
        if now.ss_flags & libc::SS_DISABLE == 0 && now.ss_sp as usize == stack.base() {
            // Fails (EPERM) only while this thread runs on ours, i.e. when
            // called from a signal handler; ours then stays, and so does the
            // record of the thread's own.
            put_back(own)?;
        }
        self.kept_over = None;
        Ok(())
    }
}

impl Drop for ThreadAlt {
    fn drop(&mut self) {
        // Before `stack` is unmapped: never leave it installed. (A thread
        // exits on its own stack, so putting the thread's own back works.)
        let _ = self.give_back();
    }
}

thread_local! {
    /// This thread's alternate signal stack for runs and its mode. The
    /// stack is unmapped when the thread exits, after the thread's own
    /// setting was put back.
    static ALT: RefCell<ThreadAlt> =
        const { RefCell::new(ThreadAlt { stack: None, mode: ThreadSignalMode::Restore, kept_over: None }) };
}

/// Sets what runs on the calling thread do to its signal state (see
/// [`ThreadSignalMode`]). Setting [`Restore`](ThreadSignalMode::Restore)
/// after [`Keep`](ThreadSignalMode::Keep) puts the thread's own alternate
/// stack back now.
///
/// # Errors
///
/// [`Error::SignalModeInRun`] if the thread is running an instance (from a
/// guest or a host region), [`Error::AltStack`] if the thread's own
/// alternate stack cannot be put back (called from a signal handler running
/// on ours; the mode stays `Keep`), [`Error::ThreadExiting`] during thread
/// exit.
///
/// # Example
///
/// ```
/// use instance::{Instance, ThreadSignalMode};
///
/// instance::set_thread_signal_mode(ThreadSignalMode::Keep)?;
/// let mut inst = Instance::new(64 * 1024)?;
/// for i in 0..1000u32 {
///     assert_eq!(inst.run_closure(move || i)?, i); // no system call per run
/// }
/// // Puts the thread's own alternate stack back now (thread exit does too).
/// instance::set_thread_signal_mode(ThreadSignalMode::Restore)?;
/// # Ok::<(), instance::Error>(())
/// ```
pub fn set_thread_signal_mode(mode: ThreadSignalMode) -> Result<(), Error> {
    if in_guest() {
        return Err(Error::SignalModeInRun);
    }
    ALT.try_with(|cell| {
        let mut alt = cell.borrow_mut();
        if mode == ThreadSignalMode::Restore {
            alt.give_back().map_err(Error::AltStack)?;
        } else {
            // Keep reads no mask per run: what runs need unblocked is
            // unblocked now (and again whenever Keep is set). The kill
            // signal only if it is fixed (setting the mode must not fix it;
            // the first run, which fixes it, unblocks it then).
            let mut set = fault_sigset();
            if let Some(kill) = crate::kill::fixed_kill_signal() {
                // SAFETY: adds a valid signal number to an initialised set.
                unsafe { libc::sigaddset(&mut set, kill) };
            }
            // SAFETY: `set` is initialised; no old mask is asked for.
            Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut()) })
                .map_err(Error::SignalMask)?;
        }
        alt.mode = mode;
        Ok(())
    })
    .map_err(|_| Error::ThreadExiting)?
}

/// The calling thread's [`ThreadSignalMode`].
pub fn thread_signal_mode() -> ThreadSignalMode {
    ALT.try_with(|cell| cell.borrow().mode).unwrap_or_default()
}

/// Puts a setting that `sigaltstack` reported back in place.
fn put_back(mut own: libc::stack_t) -> Result<(), Errno> {
    // SS_ONSTACK is an output-only flag; SS_DISABLE and SS_AUTODISARM are
    // given back as they were.
    own.ss_flags &= !libc::SS_ONSTACK;
    // SAFETY: `own` is what sigaltstack reported for this thread; the
    // memory it names is the thread's, not ours. It fails only while the
    // thread runs on the alternate stack being replaced.
    Errno::result(unsafe { libc::sigaltstack(&own, core::ptr::null_mut()) }).map(drop)
}

/// Our alternate signal stack, installed for the duration of a run (or,
/// in [`ThreadSignalMode::Keep`], for the thread); puts the thread's own one
/// (or none) back on drop when the run installed it for itself.
pub(crate) struct AltStackGuard {
    restore: Option<libc::stack_t>,
}

impl AltStackGuard {
    /// Makes sure this thread's alternate signal stack is installed (making
    /// it first if needed); returns it with the thread's mode.
    ///
    /// The flag says whether this call installed it for
    /// [`ThreadSignalMode::Keep`] (the thread enters Keep mode now).
    pub(crate) fn enter() -> Result<(AltStackGuard, ThreadSignalMode, bool), Error> {
        ALT.try_with(|cell| {
            let mut alt = cell.borrow_mut();
            let mode = alt.mode;
            if mode == ThreadSignalMode::Keep && alt.kept_over.is_some() {
                return Ok((AltStackGuard { restore: None }, mode, false));
            }
            let stack = match alt.stack.take() {
                Some(stack) => stack,
                None => Stack::with_guard(alt_stack_size(), page_size())?,
            };
            let stack = alt.stack.insert(stack);
            let ours = libc::stack_t { ss_sp: stack.base() as *mut c_void, ss_flags: 0, ss_size: stack.size() };
            let mut saved = MaybeUninit::<libc::stack_t>::uninit();
            // SAFETY: `ours` describes a mapped read/write region that
            // lives until the thread exits (and is uninstalled before it is
            // unmapped); `saved` receives the old setting. nix has no
            // sigaltstack.
            Errno::result(unsafe { libc::sigaltstack(&ours, saved.as_mut_ptr()) }).map_err(Error::AltStack)?;
            // SAFETY: sigaltstack succeeded, so it wrote `saved`.
            let saved = unsafe { saved.assume_init() };
            Ok(match mode {
                ThreadSignalMode::Keep => {
                    alt.kept_over = Some(saved);
                    (AltStackGuard { restore: None }, mode, true)
                }
                ThreadSignalMode::Restore => (AltStackGuard { restore: Some(saved) }, mode, false),
            })
        })
        .map_err(|_| Error::ThreadExiting)?
    }
}

impl Drop for AltStackGuard {
    fn drop(&mut self) {
        if let Some(own) = self.restore {
            // Cannot fail: the run has ended, so the thread is back on its
            // own stack (a run cannot start on ours: `enter` fails then).
            let _ = put_back(own);
        }
    }
}
