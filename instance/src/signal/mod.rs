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
//! interrupted register state: rip = the run core's way back to
//! `fault_return`, rsp = an aligned spot near the top of the alternate
//! signal stack it runs on (`fault_return` finds the run as the thread's
//! current one); it also puts the mask the host gets into `uc_sigmask`
//! (the host's as the run found it in [`ThreadSignalMode::Restore`], the
//! guest's in Keep) and clears the direction, trap and alignment-check
//! flags. Then it *returns*: the kernel's sigreturn restores the mask, the
//! alternate-stack state and the FPU state, and the thread continues in
//! `fault_return`, which switches to the host context with
//! [`context::Context::set`]. Nothing is written on the instance's stack,
//! whose abandoned frames stay as the guest left them. (Should the handler
//! not run on an alternate stack, because the guest disabled it, the way
//! back runs on the top of the instance's stack with every signal blocked,
//! and the host installs its mask once it has stopped the run.)
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

use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, raise, sigaction};

use crate::error::Error;
use crate::fault::FaultKind;

mod altstack;
mod fault;
mod kill;
mod mask;

pub(crate) use altstack::AltStackGuard;
pub use altstack::{ThreadSignalMode, alt_stack_size, set_thread_signal_mode, thread_signal_mode};
pub use kill::{KillSignalCounts, kill_signal_counts};
pub(crate) use mask::RunMask;

/// The one table of the fault signals: each signal the CPU raises for a
/// fault, and the kind of fault it reports. Its order is that of the saved
/// previous handlers ([`PREVIOUS`]).
const FAULTS: [(Signal, FaultKind); 5] = [
    (Signal::SIGSEGV, FaultKind::MemoryFault),
    (Signal::SIGBUS, FaultKind::BusError),
    (Signal::SIGILL, FaultKind::IllegalInstruction),
    (Signal::SIGFPE, FaultKind::Arithmetic),
    (Signal::SIGTRAP, FaultKind::Breakpoint),
];

/// The signals the CPU raises for faults, which [`install_handlers`] takes
/// over (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
pub const FAULT_SIGNALS: [Signal; 5] = {
    let mut out = [Signal::SIGSEGV; 5];
    let mut i = 0;
    while i < FAULTS.len() {
        out[i] = FAULTS[i].0;
        i += 1;
    }
    out
};

/// Where `signum` is in [`FAULTS`], if it is a fault signal.
fn fault_index(signum: c_int) -> Option<usize> {
    FAULTS.iter().position(|&(signal, _)| signal as c_int == signum)
}

/// The fault kind a fault signal reports.
fn fault_kind(signum: c_int) -> Option<(Signal, FaultKind)> {
    fault_index(signum).map(|i| FAULTS[i])
}

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

/// The handlers in place before ours, one per entry of [`FAULTS`].
static PREVIOUS: [Previous; FAULTS.len()] = [const { Previous::new() }; FAULTS.len()];

/// Why installing failed: a fault signal's or the kill signal's sigaction.
#[derive(Clone, Copy)]
enum InstallError {
    Fault(Signal, Errno),
    Kill(c_int, Errno),
}

static INSTALLED: OnceLock<Result<(), InstallError>> = OnceLock::new();

fn slot(signum: c_int) -> Option<&'static Previous> {
    PREVIOUS.get(fault_index(signum)?)
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
        kill::install_kill_handler().map_err(|(signum, errno)| InstallError::Kill(signum, errno))
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
        fault::instance_fault_entry as unsafe extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
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
#[cfg(target_arch = "x86_64")]
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
/// aarch64 has no alignment-check flag a guest can set (alignment checking
/// is the kernel's SCTLR setting), so the entry only branches to
/// `$handler`, keeping one shape of handler entry for both arches. The
/// kernel enters a handler with BTYPE set as for a call (`blr`), so the
/// entry begins with `bti c`.
#[cfg(target_arch = "aarch64")]
macro_rules! ac_clearing_entry {
    ($entry:literal, $handler:path) => {
        core::arch::global_asm!(
            ".p2align 4",
            concat!(".globl ", $entry),
            concat!(".hidden ", $entry),
            concat!(".type ", $entry, ", %function"),
            concat!($entry, ":"),
            ".cfi_startproc",
            "hint #34", // bti c
            "b {handler}",
            ".cfi_endproc",
            concat!(".size ", $entry, ", .-", $entry),
            handler = sym $handler,
        );
    };
}
pub(crate) use ac_clearing_entry;

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
/// return, and the kernel then kills with the fault's own siginfo (what a
/// core dump shows); a trap (x86_64's `int3` leaves rip after it), a sent
/// signal, or on aarch64 a SIGFPE (which its CPUs raise for no integer
/// instruction and most for no FP one: a SIGFPE with a fault's si_code was
/// queued by `rt_tgsigqueueinfo`) would not recur, so it is raised again
/// (blocked now, delivered at sigreturn).
fn default_action(signum: c_int, code: c_int) {
    let Ok(signal) = Signal::try_from(signum) else { return };
    // SAFETY: SIG_DFL is always a valid disposition.
    let _ = unsafe { sigaction(signal, &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty())) };
    if code <= 0 || !recurs_on_return(signal) {
        let _ = raise(signal);
    }
}

/// Whether the CPU raises `signal` again when the handler of a CPU-raised
/// one returns.
fn recurs_on_return(signal: Signal) -> bool {
    if cfg!(target_arch = "x86_64") { signal != Signal::SIGTRAP } else { signal != Signal::SIGFPE }
}
