//! Every fault kind, raised by a real instruction in a guest, comes back as
//! a report with the right kind, signal and code; the instance then resets
//! and runs again; the host's signal mask and floating-point control (MXCSR
//! and x87 control word on x86_64, FPCR on aarch64) are exactly as before.

// Clippy 1.88 (the MSRV) calls `|| illegal_instruction()` a redundant closure, but an
// `extern "C" fn` item is not `FnOnce` on current Rust, so its suggestion
// (`run_closure(illegal_instruction)`) does not compile there.
#![allow(clippy::redundant_closure)]

mod common;

use common::guests::*;
use context::Val;
use instance::{Error, FaultKind, FaultReport, Instance, Operation, State};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

const STACK: usize = 256 * 1024;

/// Runs the raw entry `f(args)` and expects a fault; then checks the
/// instance resets and runs `add` correctly.
fn raw_fault(inst: &mut Instance, f: usize, args: &[Val]) -> FaultReport {
    // SAFETY: every guest used here is an extern "C" fn whose parameters
    // match `args` and which does not unwind.
    let err = unsafe { inst.run(f, args) }.unwrap_err();
    let report = *err.fault().unwrap_or_else(|| panic!("expected a fault, got {err:?}"));
    assert_eq!(inst.state(), State::Faulted);
    assert_eq!(inst.last_fault(), Some(&report));
    // SAFETY: as above.
    let misuse = unsafe { inst.run(add as *const () as usize, &[Val::U64(1), Val::U64(2)]) }.unwrap_err();
    assert!(matches!(misuse, Error::InvalidState { op: Operation::Run, state: State::Faulted }), "{misuse:?}");
    assert_eq!(misuse.to_string(), "cannot run an instance that is faulted");
    inst.reset().unwrap();
    // SAFETY: as above.
    let ok = unsafe { inst.run(add as *const () as usize, &[Val::U64(40), Val::U64(2)]) }.unwrap();
    assert_eq!(ok.as_u64(), 42);
    report
}

/// Runs a closure that must fault, resets and reruns the instance. The
/// closure's abandoned frames quarantine the stack: the reset replaces it by
/// a fresh one (and the faulted stack's address range is not reused).
fn closure_fault<T>(inst: &mut Instance, f: impl FnOnce() -> T) -> FaultReport {
    let faulted_top = inst.stack().top();
    let quarantined = instance::quarantined_stacks();
    let err = inst.run_closure(f).map(|_| ()).unwrap_err();
    let report = *err.fault().unwrap_or_else(|| panic!("expected a fault, got {err:?}"));
    inst.reset().unwrap();
    assert_ne!(inst.stack().top(), faulted_top, "the faulted stack was reused");
    assert!(instance::quarantined_stacks() > quarantined);
    assert_eq!(inst.run_closure(|| 7).unwrap(), 7);
    report
}

fn in_stack(inst: &Instance, sp: usize) -> bool {
    inst.stack().contains(sp)
}

#[test]
fn write_to_prot_none_page_is_a_memory_fault() {
    common::deadline();
    let page = NoAccessPage::new();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, write_to as *const () as usize, &[Val::USize(page.0)]);
    assert_eq!((r.kind, r.signal, r.code, r.addr), (FaultKind::MemoryFault, Signal::SIGSEGV, SEGV_ACCERR, page.0));
    assert!(in_stack(&inst, r.sp));
    // The pc is the store itself: `store_one`'s first instruction.
    let r2 = raw_fault(&mut inst, store_one(), &[Val::USize(page.0)]);
    assert_eq!((r2.kind, r2.addr, r2.pc), (FaultKind::MemoryFault, page.0, store_one()));
    assert!(in_stack(&inst, r2.sp));
    let p = page.0;
    let r = closure_fault(&mut inst, move || write_to(p));
    assert_eq!((r.kind, r.code, r.addr), (FaultKind::MemoryFault, SEGV_ACCERR, page.0));
}

#[test]
fn read_of_unmapped_address_is_a_memory_fault() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, read_from as *const () as usize, &[Val::USize(UNMAPPED)]);
    assert_eq!((r.kind, r.signal, r.code, r.addr), (FaultKind::MemoryFault, Signal::SIGSEGV, SEGV_MAPERR, UNMAPPED));
    let r = closure_fault(&mut inst, || read_from(UNMAPPED));
    assert_eq!((r.kind, r.code, r.addr), (FaultKind::MemoryFault, SEGV_MAPERR, UNMAPPED));
}

#[test]
fn an_undefined_instruction_is_illegal() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, illegal_instruction as *const () as usize, &[]);
    assert_eq!((r.kind, r.signal), (FaultKind::IllegalInstruction, Signal::SIGILL));
    // x86_64's ud2 is ILL_ILLOPN; for aarch64's udf the kernel says
    // ILL_ILLOPC and qemu ILL_ILLOPN: its code is not asserted there.
    #[cfg(target_arch = "x86_64")]
    assert_eq!(r.code, ILL_ILLOPN);
    // For SIGILL the kernel reports the instruction's address in si_addr.
    assert_eq!(r.addr, r.pc);
    // SAFETY: reading the instruction's bytes at the reported pc, inside
    // `illegal_instruction`'s code.
    let at_pc = unsafe { std::slice::from_raw_parts(r.pc as *const u8, ILLEGAL_INSTRUCTION_BYTES.len()) };
    assert_eq!(at_pc, ILLEGAL_INSTRUCTION_BYTES);
    let r = closure_fault(&mut inst, || illegal_instruction());
    assert_eq!(r.kind, FaultKind::IllegalInstruction);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn integer_division_by_zero_is_arithmetic() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, divide as *const () as usize, &[Val::U64(10), Val::U64(0)]);
    assert_eq!((r.kind, r.signal, r.code), (FaultKind::Arithmetic, Signal::SIGFPE, FPE_INTDIV));
    assert_eq!(r.addr, r.pc);
    // SAFETY: as above; `divide` does not fault for a non-zero divisor.
    assert_eq!(unsafe { inst.run(divide as *const () as usize, &[Val::U64(10), Val::U64(5)]) }.unwrap().as_u64(), 2);
    inst.reset().unwrap();
    let r = closure_fault(&mut inst, || arithmetic_fault());
    assert_eq!(r.kind, FaultKind::Arithmetic);
}

/// aarch64 raises no SIGFPE for an integer division by zero (and qemu has
/// no FP traps): the path is exercised with the signal queued to the
/// guest's own thread, with the CPU's si_code.
#[test]
#[cfg(target_arch = "aarch64")]
fn a_queued_sigfpe_is_arithmetic_and_division_by_zero_does_not_trap() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, arithmetic_fault as *const () as usize, &[]);
    assert_eq!((r.kind, r.signal, r.code), (FaultKind::Arithmetic, Signal::SIGFPE, FPE_INTDIV));
    assert!(in_stack(&inst, r.sp));
    let r = closure_fault(&mut inst, || arithmetic_fault());
    assert_eq!(r.kind, FaultKind::Arithmetic);
    // `udiv` by zero gives 0, no signal.
    let q = inst.run_closure(|| std::hint::black_box(10u64).checked_div(std::hint::black_box(0))).unwrap();
    assert_eq!(q, None);
    let raw: u64 = inst
        .run_closure(|| {
            let (n, d) = (std::hint::black_box(10u64), std::hint::black_box(0u64));
            let q: u64;
            // SAFETY: udiv has no side effect; by zero it gives 0.
            unsafe { core::arch::asm!("udiv {q}, {n}, {d}", q = out(reg) q, n = in(reg) n, d = in(reg) d) };
            q
        })
        .unwrap();
    assert_eq!(raw, 0);
}

#[test]
fn a_breakpoint_is_a_breakpoint() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, breakpoint as *const () as usize, &[]);
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!((r.kind, r.signal, r.code), (FaultKind::Breakpoint, Signal::SIGTRAP, SI_KERNEL));
        // int3 is a trap: pc is the instruction after the 0xcc byte.
        // SAFETY: reading one code byte just before the reported pc.
        assert_eq!(unsafe { *((r.pc - 1) as *const u8) }, 0xcc);
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert_eq!((r.kind, r.signal, r.code), (FaultKind::Breakpoint, Signal::SIGTRAP, TRAP_BRKPT));
        // brk leaves pc at the instruction itself (0xd4200000 = brk #0).
        // SAFETY: reading the 4-byte instruction at the reported pc.
        assert_eq!(unsafe { (r.pc as *const u32).read_unaligned() }, 0xd420_0000);
    }
    let r = closure_fault(&mut inst, || breakpoint());
    assert_eq!(r.kind, FaultKind::Breakpoint);
}

#[test]
fn c_recursion_overflows_into_the_guard() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, c_recursion as *const () as usize, &[Val::U64(0)]);
    assert_eq!((r.kind, r.signal), (FaultKind::StackOverflow, Signal::SIGSEGV));
    assert!(inst.stack().in_guard(r.addr), "addr {:#x} not in guard of {:?}", r.addr, inst.stack());
    assert!(in_stack(&inst, r.sp));
}

#[test]
fn rust_recursion_overflows_into_the_guard() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let guard = inst.stack().mapping_start()..inst.stack().base();
    let r = closure_fault(&mut inst, || rust_recursion(0));
    assert_eq!((r.kind, r.signal), (FaultKind::StackOverflow, Signal::SIGSEGV));
    assert!(guard.contains(&r.addr));
    // A larger guard than the default works the same way.
    let mut inst = Instance::with_guard(STACK, 4 * instance::DEFAULT_GUARD_SIZE).unwrap();
    let guard = inst.stack().mapping_start()..inst.stack().base();
    let r = closure_fault(&mut inst, || rust_recursion(0));
    assert_eq!(r.kind, FaultKind::StackOverflow);
    assert!(guard.contains(&r.addr));
    // The fresh stack has the same guard.
    assert_eq!(inst.stack().guard_size(), 4 * instance::DEFAULT_GUARD_SIZE);
}

#[test]
fn a_write_to_any_page_of_the_default_guard_is_a_stack_overflow() {
    common::deadline();
    let page = instance::page_size();
    let mut inst = Instance::new(STACK).unwrap();
    let (start, base) = (inst.stack().mapping_start(), inst.stack().base());
    assert_eq!(base - start, instance::DEFAULT_GUARD_SIZE.next_multiple_of(page));
    // Each page's lowest and highest word: the stack pointer stays in the
    // usable part, only the address tells.
    for addr in (start..base).step_by(page).flat_map(|p| [p, p + page - 8]) {
        let r = raw_fault(&mut inst, write_to as *const () as usize, &[Val::USize(addr)]);
        assert_eq!((r.kind, r.signal, r.code, r.addr), (FaultKind::StackOverflow, Signal::SIGSEGV, SEGV_ACCERR, addr));
        assert!(!inst.stack().in_guard(r.sp) && in_stack(&inst, r.sp));
    }
}

/// A guest's secret, for the scrub after a fault.
const SECRET: u64 = 0x5ec2_e75e_c2e7_5ec2;

/// Fills a 1,024-word local with `secret`, then writes to `addr` (a
/// `PROT_NONE` page): a tenant that crashes with data on its stack.
extern "C" fn write_secret_then_fault(secret: u64, addr: usize) -> u64 {
    let mut words = [0u64; 1024];
    words.fill(secret);
    std::hint::black_box(&mut words);
    write_to(addr);
    words[0]
}

/// Words of `SECRET` in the usable part of `inst`'s stack.
fn secrets_on(inst: &Instance) -> usize {
    let stack = inst.stack();
    // SAFETY: the usable part is mapped readable, page-aligned and `size()`
    // bytes long; the instance is borrowed here, so no guest writes to it.
    let words = unsafe { std::slice::from_raw_parts(stack.base() as *const u64, stack.size() / 8) };
    words.iter().filter(|&&w| w == SECRET).count()
}

#[test]
fn reset_after_a_fault_scrubs_the_guests_data_unless_turned_off() {
    common::deadline();
    let page = NoAccessPage::new();
    let entry = write_secret_then_fault as extern "C" fn(u64, usize) -> u64 as usize;
    for scrub in [true, false] {
        let mut inst = Instance::new(STACK).unwrap();
        inst.set_scrub_stack(scrub);
        // SAFETY: an extern "C" fn(u64, usize) that faults on the page.
        let err = unsafe { inst.run(entry, &[Val::U64(SECRET), Val::USize(page.0)]) }.unwrap_err();
        assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::MemoryFault));
        // The way back from the fault reuses the top few hundred bytes of
        // the stack, over the top of the guest's frame: most words remain.
        assert!(secrets_on(&inst) > 512, "{} words of the secret", secrets_on(&inst));
        inst.reset().unwrap();
        assert_eq!(secrets_on(&inst) == 0, scrub, "scrub {scrub}");
    }
}

#[test]
fn truncated_file_mapping_is_a_bus_error() {
    common::deadline();
    let map = TruncatedMapping::new();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, read_from as *const () as usize, &[Val::USize(map.addr)]);
    assert_eq!((r.kind, r.signal, r.code, r.addr), (FaultKind::BusError, Signal::SIGBUS, BUS_ADRERR, map.addr));
    // The first page (inside the file) reads fine.
    // SAFETY: as in raw_fault.
    assert_eq!(unsafe { inst.run(read_from as *const () as usize, &[Val::USize(map.start)]) }.unwrap().as_u64(), 0);
    inst.reset().unwrap();
    let a = map.addr;
    let r = closure_fault(&mut inst, move || read_from(a));
    assert_eq!(r.kind, FaultKind::BusError);
}

#[test]
fn error_display_names_the_fault() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let err = inst.run_closure(|| illegal_instruction()).unwrap_err();
    let text = err.to_string();
    let code = err.fault().unwrap().code;
    let want = format!("the guest faulted: illegal instruction (SIGILL code {code}) at address 0x");
    assert!(text.starts_with(&want), "{text}");
}

// ---- exact restoration of the host thread's state ------------------------

/// The kernel's blocked-signal mask of this thread, every bit of it
/// ("SigBlk" in /proc/thread-self/status).
fn raw_mask() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status.lines().find(|l| l.starts_with("SigBlk:")).unwrap().to_string()
}

/// The floating-point control state this test sets and checks, per arch.
#[cfg(target_arch = "x86_64")]
mod fp {
    use test_support::fp::{fpucw, mxcsr, set_fpucw, set_mxcsr};

    /// What a guest sets: flush-to-zero, round down, single precision.
    pub fn guest_control() {
        set_mxcsr(0x1f80 | 0x8000 | 0x2000);
        set_fpucw(0x007f);
    }

    /// What the host thread runs with: round toward zero, double precision.
    pub fn host_control() {
        set_mxcsr(0x1f80 | 0x6000);
        set_fpucw(0x027f);
    }

    /// The control state (MXCSR's control bits, the x87 control word).
    pub fn control() -> (u32, u16) {
        (mxcsr() & 0xffc0, fpucw())
    }

    /// The x87 tag word: 0xffff when the register stack is empty, as the
    /// ABI wants it at every call.
    pub fn x87_tags() -> u16 {
        let mut env = [0u16; 14];
        // SAFETY: fnstenv stores the 28-byte x87 environment into `env`;
        // it also masks all x87 exceptions, so the saved control word (the
        // first word) is loaded back.
        unsafe { core::arch::asm!("fnstenv [{0}]", "fldcw [{0}]", in(reg) env.as_mut_ptr(), options(nostack)) };
        env[4]
    }

    /// Extra state checks after a run: the x87 register stack is empty.
    pub fn check(name: &str) {
        assert_eq!(x87_tags(), 0xffff, "{name}: x87 register stack not empty");
    }
}

#[cfg(target_arch = "aarch64")]
mod fp {
    use test_support::fp::{FPCR_FZ, FPCR_ROUND_DOWN, fpcr, set_fpcr};

    /// What a guest sets: flush-to-zero, round down.
    pub fn guest_control() {
        set_fpcr(FPCR_FZ | FPCR_ROUND_DOWN);
    }

    /// What the host thread runs with: round toward zero, default NaN.
    pub fn host_control() {
        set_fpcr(0b11 << 22 | 1 << 25);
    }

    /// The control state (FPCR).
    pub fn control() -> u64 {
        fpcr()
    }

    /// Nothing more to check on aarch64 (no x87 stack).
    pub fn check(_: &str) {}
}

/// What a guest does to its own thread state before it ends.
fn scribble() {
    fp::guest_control();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::from(Signal::SIGUSR2)), None).unwrap();
}

/// Runs `outcome` on a thread with a non-default mask and floating-point
/// control, and checks both are bit-identical afterwards.
fn host_state_survives(name: &'static str, outcome: impl FnOnce(&mut Instance) + Send + 'static) {
    std::thread::spawn(move || {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGUSR1);
        mask.add(Signal::SIGWINCH);
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None).unwrap();
        fp::host_control();
        let (m0, c0) = (raw_mask(), fp::control());
        let mut inst = Instance::new(STACK).unwrap();
        outcome(&mut inst);
        assert_eq!(raw_mask(), m0, "{name}: signal mask changed");
        assert_eq!(fp::control(), c0, "{name}: floating-point control changed");
        fp::check(name);
    })
    .join()
    .unwrap();
}

#[test]
fn host_mask_and_fp_control_survive_every_outcome() {
    common::deadline();
    host_state_survives("return", |inst| {
        let v = inst
            .run_closure(|| {
                fp::guest_control();
                5
            })
            .unwrap();
        assert_eq!(v, 5);
    });
    host_state_survives("raw return", |inst| {
        // SAFETY: add is extern "C" (u64, u64) -> u64.
        assert_eq!(unsafe { inst.run(add as *const () as usize, &[Val::U64(1), Val::U64(1)]) }.unwrap().as_u64(), 2);
    });
    host_state_survives("panic", |inst| {
        let err = inst
            .run_closure(|| -> u32 {
                fp::guest_control();
                std::panic::panic_any(17u32)
            })
            .unwrap_err();
        assert_eq!(err.into_panic().unwrap().payload().downcast_ref::<u32>(), Some(&17));
    });
    let kinds: &[(&str, FaultKind, fn())] = &[
        ("unmapped read", FaultKind::MemoryFault, || {
            read_from(UNMAPPED);
        }),
        ("illegal instruction", FaultKind::IllegalInstruction, || {
            illegal_instruction();
        }),
        ("arithmetic", FaultKind::Arithmetic, || {
            arithmetic_fault();
        }),
        ("breakpoint", FaultKind::Breakpoint, || {
            breakpoint();
        }),
        ("overflow", FaultKind::StackOverflow, || {
            rust_recursion(0);
        }),
        #[cfg(target_arch = "x86_64")]
        ("x87 stack left full", FaultKind::IllegalInstruction, || {
            // SAFETY: pushes three values on the x87 stack, then faults.
            unsafe { core::arch::asm!("fld1", "fld1", "fldz", "ud2", options(nomem, nostack)) };
        }),
    ];
    for &(name, kind, guest) in kinds {
        host_state_survives(name, move |inst| {
            let err = inst
                .run_closure(move || {
                    scribble();
                    guest()
                })
                .unwrap_err();
            assert_eq!(err.fault().map(|f| f.kind), Some(kind), "{name}");
            inst.reset().unwrap();
            assert_eq!(inst.run_closure(|| 9).unwrap(), 9);
        });
    }
    let map = TruncatedMapping::new();
    let a = map.addr;
    host_state_survives("bus error", move |inst| {
        let err = inst
            .run_closure(move || {
                scribble();
                read_from(a)
            })
            .unwrap_err();
        assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::BusError));
    });
    let page = NoAccessPage::new();
    let p = page.0;
    host_state_survives("prot none", move |inst| {
        // SAFETY: write_to is extern "C" (usize) -> u64.
        let err = unsafe { inst.run(write_to as *const () as usize, &[Val::USize(p)]) }.unwrap_err();
        assert_eq!(err.fault().map(|f| f.kind), Some(FaultKind::MemoryFault));
    });
}

// ---- nesting ------------------------------------------------------------

#[test]
fn nested_fault_belongs_to_the_inner_instance() {
    common::deadline();
    let mut outer = Instance::new(STACK).unwrap();
    let inner_stack = instance::Stack::new(STACK).unwrap();
    let (inner_result, inner_state, after) = outer
        .run_closure(move || {
            let mut inner = Instance::with_stack(inner_stack);
            let r = inner.run_closure(|| illegal_instruction()).map(|_| ());
            let state = inner.state();
            inner.reset().unwrap();
            let again = inner.run_closure(|| 11).unwrap();
            (r, state, again)
        })
        .unwrap();
    assert_eq!(inner_result.unwrap_err().fault().map(|f| f.kind), Some(FaultKind::IllegalInstruction));
    assert_eq!(inner_state, State::Faulted);
    assert_eq!(after, 11);
    assert_eq!(outer.state(), State::Returned);
}

#[test]
fn outer_fault_after_inner_run_belongs_to_the_outer_instance() {
    common::deadline();
    let mut outer = Instance::new(STACK).unwrap();
    let err = outer
        .run_closure(|| {
            let mut inner = Instance::new(STACK).unwrap();
            assert_eq!(inner.run_closure(|| 3).unwrap(), 3);
            let inner_overflow = inner.run_closure(|| rust_recursion(0)).unwrap_err();
            assert_eq!(inner_overflow.fault().unwrap().kind, FaultKind::StackOverflow);
            // Now the outer guest itself faults.
            arithmetic_fault()
        })
        .unwrap_err();
    let report = err.fault().unwrap();
    assert_eq!(report.kind, FaultKind::Arithmetic);
    assert!(outer.stack().contains(report.sp));
}

#[test]
fn three_levels_of_nesting_each_overflow_their_own_stack() {
    common::deadline();
    let mut a = Instance::new(STACK).unwrap();
    let got = a
        .run_closure(|| {
            let mut b = Instance::new(STACK).unwrap();
            let from_b = b
                .run_closure(|| {
                    let mut c = Instance::new(STACK).unwrap();
                    let from_c = c.run_closure(|| rust_recursion(0)).unwrap_err();
                    assert!(c.stack().in_guard(from_c.fault().unwrap().addr));
                    rust_recursion(0)
                })
                .unwrap_err();
            assert!(b.stack().in_guard(from_b.fault().unwrap().addr));
            "a returned"
        })
        .unwrap();
    assert_eq!(got, "a returned");
}

// ---- threads ------------------------------------------------------------

#[test]
fn faults_on_many_threads_stay_on_their_own_thread() {
    common::deadline();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut inst = Instance::new(STACK).unwrap();
                for i in 0..300u64 {
                    let want = match (i + t) % 4 {
                        0 => {
                            assert_eq!(inst.run_closure(move || i * t).unwrap(), i * t);
                            continue;
                        }
                        1 => (FaultKind::IllegalInstruction, inst.run_closure(|| illegal_instruction()).map(|_| ())),
                        2 => (FaultKind::MemoryFault, inst.run_closure(|| read_from(UNMAPPED)).map(|_| ())),
                        _ => (FaultKind::Arithmetic, inst.run_closure(|| arithmetic_fault()).map(|_| ())),
                    };
                    let report = *want.1.unwrap_err().fault().unwrap();
                    assert_eq!(report.kind, want.0);
                    assert!(inst.stack().contains(report.sp));
                    inst.reset().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
