//! Run native code on a guard-page stack of its own and get back to the
//! host safely when it returns, panics, faults or overflows its stack
//! (x86_64 and aarch64 Linux).
//!
//! This is the instance layer of a sandboxing runtime, built on the
//! `context` crate:
//!
//! * [`Stack`] and [`StackPool`]: `mmap`'d, lazily committed stacks with a
//!   `PROT_NONE` guard region, and a pool that reuses them.
//! * [`Instance`]: runs a raw entry point with [`Val`](context::Val)
//!   arguments ([`Instance::run`]) or a Rust closure
//!   ([`Instance::run_closure`]) on its stack.
//! * Fault recovery: SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP raised by
//!   the CPU while a guest runs its own code come back as
//!   [`Error::Fault`] with a [`FaultReport`]; a fault in the guard region is
//!   a [`FaultKind::StackOverflow`]. Every other signal goes to the handler
//!   installed before ours, so the host behaves as if this crate were not
//!   there (see [`install_handlers`]).
//! * [`host_region`]: host code called by a guest, whose faults are the
//!   host's and which a termination waits for; [`on_host_stack`] runs it on
//!   the host's own stack when it needs more room than the guest's.
//! * Yield and resume: a guest started with [`Instance::start`] or
//!   [`Instance::start_closure`] hands values to the host with
//!   [`yield_value`] (typed, Rust), [`yield_u64`] or the C `instance_yield`
//!   (`include/instance.h`), and is continued with [`Instance::resume`],
//!   on the same or another thread.
//! * Termination: a [`KillSwitch`] ([`Instance::kill_switch`]) stops a run
//!   from any thread with a real-time signal; [`Instance::set_timeout`]
//!   bounds runs with one watchdog thread for the whole process. Raw entry
//!   points are terminable outside host regions; closures only inside
//!   [`terminable`].
//!
//! # Example
//!
//! ```
//! use instance::{FaultKind, Instance};
//!
//! let mut inst = Instance::new(256 * 1024)?;
//!
//! // A guest that returns.
//! assert_eq!(inst.run_closure(|| (1..=10).sum::<u32>())?, 55);
//!
//! // A guest that writes to an unmapped address.
//! let err = inst
//!     .run_closure(|| unsafe { (8 as *mut u64).write_volatile(1) })
//!     .unwrap_err();
//! let fault = err.fault().expect("a fault report");
//! assert_eq!((fault.kind, fault.addr), (FaultKind::MemoryFault, 8));
//!
//! // A guest that panics: the payload comes back.
//! inst.reset()?;
//! let panic = inst.run_closure(|| -> u32 { panic!("no") }).unwrap_err().into_panic().unwrap();
//! assert_eq!(panic.message(), Some("no"));
//!
//! inst.reset()?;
//! assert_eq!(inst.run_closure(|| 7)?, 7);
//! # Ok::<(), instance::Error>(())
//! ```
//!
//! Yield and a timeout:
//!
//! ```
//! use instance::{Error, Instance, Outcome};
//! use std::time::Duration;
//!
//! let mut inst = Instance::new(64 * 1024)?;
//! let out = inst.start_closure(|| {
//!     let a: u32 = instance::yield_value::<&str, u32>("first").unwrap();
//!     let b: u32 = instance::yield_value::<&str, u32>("second").unwrap();
//!     a + b
//! })?;
//! assert_eq!(out.yielded().unwrap().downcast::<&str>().unwrap(), "first");
//! assert!(matches!(inst.resume::<u32, u32>(1)?, Outcome::Yielded(_)));
//! assert_eq!(inst.resume::<u32, u32>(2)?.returned(), Some(3));
//!
//! inst.set_timeout(Some(Duration::from_millis(5)));
//! let err = inst.run_closure(|| instance::terminable(|| loop { std::hint::spin_loop() }));
//! assert!(matches!(err, Err(Error::Terminated)));
//! # Ok::<(), instance::Error>(())
//! ```
//!
//! # What it deliberately does not do
//!
//! It does not isolate memory (a guest can read and write anything the
//! process can; the sandbox's compiler is expected to confine it), it does
//! not unwind a faulted guest's frames (they are abandoned, see
//! [`Instance::run_closure`]; a killed guest's frames are abandoned the same
//! way), it does not interrupt a closure outside [`terminable`] regions,
//! and it supports only Linux, on x86_64 and aarch64.
//!
//! # Stack sizing and guards
//!
//! A stack is one mapping: a `PROT_NONE` guard region with the usable part
//! above it. [`Stack::new`] and [`Instance::new`] give it a guard of
//! [`DEFAULT_GUARD_SIZE`], 64 KiB (16 pages of 4 KiB, rounded up to one
//! page where pages are 64 KiB). The guard is address space only: it is
//! never committed, so it costs no memory, and the usable part is committed
//! page by page as the guest touches it.
//!
//! A guest that runs off the bottom of its stack is caught when its first
//! access below the usable part lands in the guard: that SIGSEGV, at any
//! page of the guard, is a [`FaultKind::StackOverflow`]. Code whose frames
//! are smaller than the guard always lands there, however deep it recurses.
//! A single frame larger than the guard can step over it: a function with a
//! large local array (or `alloca`, or a variable-length array) compiled
//! without stack probes moves the stack pointer down by the whole frame in
//! one instruction and may write first at its lowest address, below the
//! guard, into whatever is mapped there. Stacks made one after the other
//! are usually adjacent, so that is typically another instance's stack,
//! written silently; if nothing is mapped there, the fault is not the
//! guest's (its stack pointer is outside its stack) and the process dies
//! of SIGSEGV as it would without this crate.
//!
//! So:
//!
//! * Frames smaller than the guard are caught without help: with the
//!   default, C code whose locals stay under about 60 KiB per function.
//! * Larger frames need stack probes, which touch every page of a large
//!   frame in order, so the first touch below the stack is in the guard's
//!   top page: `-fstack-clash-protection` for C and C++ (gcc and clang; not
//!   gcc's default on every distribution, Debian's included), and the
//!   equivalent option of whatever compiler produces guest code. Rust
//!   probes frames larger than a page by default on x86_64 and aarch64.
//! * Or give the guest a guard larger than its largest frame:
//!   [`Instance::with_guard`], [`Stack::with_guard`], or the guard argument
//!   of [`StackPool::new`]. Guests known to probe can use a one-page guard.
//!
//! The usable size bounds the guest's deepest call chain (plus a few hundred
//! bytes the fault path uses near the top). Since untouched pages cost
//! nothing but address space, size it for the worst case rather than the
//! usual one: 64 KiB is plenty for small C entries, a Rust closure that
//! formats or panics wants a few hundred KiB, like a thread's stack would.
//!
//! # What one guest leaves on the stack for the next
//!
//! A guest's locals stay in its stack's memory after it returns, faults or
//! is terminated. So that one tenant's data does not reach the next guest
//! to use that memory, stacks are scrubbed ([`Stack::quick_scrub`]: the
//! top pages that guests use are zeroed by hand, everything below them is
//! given back to the kernel, which zeroes it when touched again) by
//! default at each point where a stack may change hands:
//!
//! | when | default | opt out |
//! |---|---|---|
//! | [`StackPool::put`] | scrubbed | [`StackPool::scrub_on_put`]`(false)` |
//! | [`Instance::reset`] and [`Instance::into_stack`] | scrubbed | [`Instance::set_scrub_stack`]`(false)` |
//!
//! A run that follows a returned run on the same instance needs no reset
//! and is not preceded by a scrub: run each tenant on its own instance or
//! pooled stack, or reset between tenants. A stack already scrubbed (say by
//! `into_stack`, then handed to a scrubbing pool) is not scrubbed twice.
//!
//! The cost is one `madvise(MADV_DONTNEED)` of the part below the hot top
//! pages, whether a guest wrote there or not (a guest can write below its
//! stack pointer, so nothing short of asking the kernel tells which pages
//! it touched), plus zeroing the hot pages; every 64th scrub of a stack
//! also asks `mincore` which pages are resident, to learn how many top
//! pages are hot. The system call dominates (0.36 µs on the Intel VM of
//! `docs/PERFORMANCE.md`, against 1 µs for the `mincore` + `madvise` of
//! the earlier scrub). Guests that trust each other, or one
//! tenant's guests, can turn it off.
//!
//! # Signals, in one place
//!
//! The first run (or [`install_handlers`]) installs one process-wide
//! handler for the five fault signals with `SA_SIGINFO | SA_ONSTACK`. Each
//! run installs this thread's own alternate signal stack (sized from
//! `getauxval(AT_MINSIGSTKSZ)`, with a guard page) and puts the thread's
//! previous one back afterwards. A recovered fault returns from the handler
//! through the kernel's sigreturn, so the signal mask, the alternate stack
//! and the FPU state are restored by the kernel; the host's floating-point
//! control (MXCSR and the x87 control word; FPCR on aarch64) is the same
//! after every run as before it, and its signal
//! mask is after a fault (a guest that changes the mask and returns leaves
//! it changed, as any function called by the host would).
//!
//! That costs three system calls per run (two `sigaltstack`, one
//! `rt_sigprocmask`), more than the rest of a run. A thread that runs many
//! short guests can choose [`ThreadSignalMode::Keep`] with
//! [`set_thread_signal_mode`]: our alternate stack then stays installed on
//! it between runs and the mask is not read, so a run makes no system call;
//! after a fault the thread keeps the mask the guest had (see the table at
//! [`ThreadSignalMode`]).
//!
//! The kill signal ([`kill_signal`], by default `SIGRTMIN() + 3`, chosen
//! with [`set_kill_signal`] before the handlers are installed) gets its
//! handler at the same time, with `SA_RESTART`. It acts only on a signal
//! sent by this process with `tgkill` to a thread running a terminable run
//! whose termination was requested; every other delivery is counted
//! ([`kill_signal_counts`]) and ignored.
//!
//! On x86_64 both handlers enter through a few instructions of assembly
//! that clear EFLAGS.AC before any Rust code runs (Linux keeps a guest's
//! alignment check set in the handler, where it would turn the handler's
//! first misaligned access into SIGBUS), and the host clears AC and DF
//! after every switch back from a guest; what aarch64 does instead is in
//! the next section.
//!
//! # What differs between x86_64 and aarch64
//!
//! The API and the outcomes are the same on both; what the CPU does is not.
//!
//! | | x86_64 | aarch64 |
//! |---|---|---|
//! | [`FaultKind::Arithmetic`] | `div`/`idiv` by zero or overflow; an unmasked SSE or x87 exception | never raised by the CPU: integer division by zero gives 0 and Linux enables no floating-point trap, so only a SIGFPE sent to the thread (`rt_tgsigqueueinfo` with a positive `si_code`) while the guest runs comes back as one |
//! | [`FaultKind::Breakpoint`] | `int3`: [`FaultReport::pc`] is the byte after it | `brk`: `pc` is the `brk` itself |
//! | [`FaultKind::IllegalInstruction`] | `ud2`, ... | `udf`, ...; the `si_code` differs between kernels (qemu-user gives `ILL_ILLOPN`, Linux `ILL_ILLOPC`) |
//! | state a guest may leave that the host gets back as it was | EFLAGS.AC, DF (cleared), TF (cleared on a fault); MXCSR and x87 control word | PSTATE.DIT, SSBS and TCO (the host's values, for those the kernel reports in `AT_HWCAP`/`AT_HWCAP2`; BTYPE cleared when a fault or kill is redirected); SME streaming mode off, and ZA off and TPIDR2_EL0 (the lazy-save pointer) null unless they are still the host's own pending lazy save; FPCR |
//! | after a fault or kill, before the host runs | the x87 stack emptied (`fninit`), the host's MXCSR and control word | the host's FPCR; no x87 |
//! | the handlers' entry | clears EFLAGS.AC first | `bti c` (the entry is reached by an indirect branch) |
//! | page size | 4 KiB | 4, 16 or 64 KiB, read from the system ([`page_size`]) |
//!
//! A SIGFPE that is not a guest's, and meets no handler installed before
//! ours, is raised again with the default action rather than returned
//! from: on aarch64 no instruction would raise it again. The flags and
//! modes above are the host's business: after a yield, or inside a
//! [`host_region`], the guest continues with the host's, not with the ones
//! it set (a guest that wants DIT or streaming mode sets it again after
//! each). A guest's ZA contents are discarded, not saved, by a yield or a
//! host region: as the SME ABI requires around any call that does not
//! share ZA, a guest commits its lazy save (or has nothing live in ZA)
//! before it yields or calls host code. Where the CPU lacks one of DIT, SSBS, TCO or SME the library
//! never touches its register. The aarch64 build is tested under
//! qemu-user, which reports MTE and SME but not DIT or SSBS: the DIT and
//! SSBS paths are the same code as TCO's and are not run by the tests
//! there.
//!
//! A signal we forward to the handler installed before ours may change the
//! disposition (Rust std's SIGSEGV handler installs `SIG_DFL` for a fault
//! that is not its guard page): we then remember what it installed as the
//! host's handler from now on and put ours back, so guests keep being
//! recovered.
//!
//! # Signals you must leave unblocked
//!
//! None, in the thread, in the default [`ThreadSignalMode::Restore`]: a
//! run unblocks what it needs (the five fault signals, since the kernel
//! kills the process when a CPU fault meets a blocked one, and the kill
//! signal of a run that can be terminated) and gives the thread its mask
//! back. In [`ThreadSignalMode::Keep`], which reads no mask per run, they
//! are unblocked when the mode is set: a thread that blocks them again must
//! set Keep again before its next run. In the guest: a guest that blocks a fault signal dies of its next
//! fault, and one that blocks the kill signal cannot be stopped while it
//! runs; leave both unblocked in guest code.
//!
//! # Threads
//!
//! Instances run on many threads at once; faults and kills on one thread
//! never touch another's instance. An [`Instance`] is `Send`; a suspended
//! closure guest is continued (resumed, reset, unwound) only on the thread
//! it yielded on ([`Error::WrongThread`] elsewhere), because its frames may
//! hold that thread's data; a raw guest may be resumed anywhere, under
//! [`Instance::start`]'s contract. [`KillSwitch`] is `Send + Sync + Clone`.
//! No unwind leaves a guest except through this crate's own paths: a
//! closure's panic comes back as [`Error::Panic`], and an unwind that would
//! leave a raw entry point aborts the process with a message.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod cpu;
mod error;
mod fault;
mod instance;
mod kill;
mod region;
mod run;
mod signal;
mod stack;
mod state;
mod switch;
mod watchdog;
mod yielding;

/// The `context` crate (`stackful-context`) this one is built on: [`Val`](context::Val),
/// [`UntypedRetVal`](context::UntypedRetVal) and
/// [`EntryPoint`](context::EntryPoint) appear in [`Instance`]'s API, and
/// [`Error::Context`] wraps [`context::Error`]. Depending on
/// `stackful-instance` alone is enough: write `instance::context::Val`.
pub use context;
/// The `nix` this crate's API is written in: [`Signal`](nix::sys::signal::Signal)
/// in [`FaultReport`] and [`FAULT_SIGNALS`] (the kill signal is a `c_int`:
/// nix's `Signal` cannot name a real-time signal), and
/// [`Errno`](nix::errno::Errno) in [`Error`]. Name them as `instance::nix::…`
/// to get the same types whatever `nix` your crate depends on. nix's major
/// version (0.31 today) is part of this crate's API; `libc`, which it also
/// uses, is not (no `libc` type is public).
pub use nix;

pub use crate::error::{Error, Operation, Panic, ThreadOp};
pub use crate::fault::{FaultKind, FaultReport};
pub use crate::instance::{Instance, Outcome, quarantined_stacks};
pub use crate::kill::{Ended, Termination, default_kill_signal, kill_signal, set_kill_signal};
pub use crate::region::{host_region, in_host_region, on_host_stack, terminable};
pub use crate::run::in_guest;
pub use crate::signal::{
    FAULT_SIGNALS, KillSignalCounts, ThreadSignalMode, alt_stack_size, install_handlers, kill_signal_counts,
    set_thread_signal_mode, thread_signal_mode,
};
pub use crate::stack::{
    DEFAULT_GUARD_SIZE, MAX_HOT_PAGES, QUICK_SCRUBS_PER_FULL, Stack, StackError, StackPool, page_size,
};
pub use crate::state::State;
pub use crate::switch::KillSwitch;
pub use crate::watchdog::watchdog_threads;
pub use crate::yielding::{
    INSTANCE_E_IN_HOST_REGION, INSTANCE_E_NOT_IN_GUEST, INSTANCE_E_NOT_RESUMABLE, INSTANCE_OK, YieldError, Yielded,
    instance_host_region_enter, instance_host_region_leave, instance_in_guest, instance_yield, yield_u64, yield_value,
};
