//! Every fault kind, raised by a real instruction in a guest, comes back as
//! a report with the right kind, signal and code; the instance then resets
//! and runs again; the host's signal mask, MXCSR and x87 control word are
//! exactly as before.

// Clippy 1.88 (the MSRV) calls `|| ud2()` a redundant closure, but an
// `extern "C" fn` item is not `FnOnce` on current Rust, so its suggestion
// (`run_closure(ud2)`) does not compile there.
#![allow(clippy::redundant_closure)]

mod common;

use common::guests::*;
use context::Val;
use instance::{Error, FaultKind, FaultReport, Instance, Operation, State};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use test_support::fp::{fpucw, mxcsr, set_fpucw, set_mxcsr};

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
fn ud2_is_an_illegal_instruction() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, ud2 as *const () as usize, &[]);
    assert_eq!((r.kind, r.signal, r.code), (FaultKind::IllegalInstruction, Signal::SIGILL, ILL_ILLOPN));
    // For SIGILL the kernel reports the instruction's address in si_addr.
    assert_eq!(r.addr, r.pc);
    // SAFETY: reading two code bytes at the reported pc, inside `ud2`.
    assert_eq!(unsafe { *(r.pc as *const [u8; 2]) }, [0x0f, 0x0b]);
    let r = closure_fault(&mut inst, || ud2());
    assert_eq!(r.kind, FaultKind::IllegalInstruction);
}

#[test]
fn integer_division_by_zero_is_arithmetic() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, divide as *const () as usize, &[Val::U64(10), Val::U64(0)]);
    assert_eq!((r.kind, r.signal, r.code), (FaultKind::Arithmetic, Signal::SIGFPE, FPE_INTDIV));
    assert_eq!(r.addr, r.pc);
    // SAFETY: as above; `divide` does not fault for a non-zero divisor.
    assert_eq!(unsafe { inst.run(divide as *const () as usize, &[Val::U64(10), Val::U64(5)]) }.unwrap().as_u64(), 2);
    inst.reset().unwrap();
    let r = closure_fault(&mut inst, || divide(1, std::hint::black_box(0)));
    assert_eq!(r.kind, FaultKind::Arithmetic);
}

#[test]
fn int3_is_a_breakpoint() {
    common::deadline();
    let mut inst = Instance::new(STACK).unwrap();
    let r = raw_fault(&mut inst, int3 as *const () as usize, &[]);
    assert_eq!((r.kind, r.signal, r.code), (FaultKind::Breakpoint, Signal::SIGTRAP, SI_KERNEL));
    // int3 is a trap: pc is the instruction after the 0xcc byte.
    // SAFETY: reading one code byte just before the reported pc.
    assert_eq!(unsafe { *((r.pc - 1) as *const u8) }, 0xcc);
    let r = closure_fault(&mut inst, || int3());
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
    let err = inst.run_closure(|| ud2()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("the guest faulted: illegal instruction (SIGILL code 2) at address 0x"), "{text}");
}

// ---- exact restoration of the host thread's state ------------------------

/// The kernel's blocked-signal mask of this thread, every bit of it
/// ("SigBlk" in /proc/thread-self/status).
fn raw_mask() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status.lines().find(|l| l.starts_with("SigBlk:")).unwrap().to_string()
}

/// The x87 tag word: 0xffff when the register stack is empty, as the ABI
/// wants it at every call.
fn x87_tags() -> u16 {
    let mut env = [0u16; 14];
    // SAFETY: fnstenv stores the 28-byte x87 environment into `env`; it
    // also masks all x87 exceptions, so the saved control word (the first
    // word) is loaded back.
    unsafe { core::arch::asm!("fnstenv [{0}]", "fldcw [{0}]", in(reg) env.as_mut_ptr(), options(nostack)) };
    env[4]
}

/// What a guest does to its own thread state before it ends.
fn scribble() {
    set_mxcsr(0x1f80 | 0x8000 | 0x2000); // flush-to-zero, round down
    set_fpucw(0x007f); // single precision
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::from(Signal::SIGUSR2)), None).unwrap();
}

/// Runs `outcome` on a thread with a non-default mask, MXCSR and x87
/// control word and checks all three are bit-identical afterwards.
fn host_state_survives(name: &'static str, outcome: impl FnOnce(&mut Instance) + Send + 'static) {
    std::thread::spawn(move || {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGUSR1);
        mask.add(Signal::SIGWINCH);
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None).unwrap();
        set_mxcsr(0x1f80 | 0x6000); // round toward zero
        set_fpucw(0x027f); // double precision
        let (m0, x0, c0) = (raw_mask(), mxcsr(), fpucw());
        let mut inst = Instance::new(STACK).unwrap();
        outcome(&mut inst);
        assert_eq!(raw_mask(), m0, "{name}: signal mask changed");
        assert_eq!(mxcsr() & 0xffc0, x0 & 0xffc0, "{name}: MXCSR control bits changed");
        assert_eq!(fpucw(), c0, "{name}: x87 control word changed");
        assert_eq!(x87_tags(), 0xffff, "{name}: x87 register stack not empty");
    })
    .join()
    .unwrap();
}

#[test]
fn host_mask_mxcsr_and_x87_survive_every_outcome() {
    common::deadline();
    host_state_survives("return", |inst| {
        let v = inst
            .run_closure(|| {
                set_mxcsr(0x1f80 | 0x8000);
                set_fpucw(0x007f);
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
                set_mxcsr(0x1f80 | 0x8000);
                set_fpucw(0x007f);
                std::panic::panic_any(17u32)
            })
            .unwrap_err();
        assert_eq!(err.into_panic().unwrap().payload().downcast_ref::<u32>(), Some(&17));
    });
    let kinds: [(&str, FaultKind, fn()); 6] = [
        ("unmapped read", FaultKind::MemoryFault, || {
            read_from(UNMAPPED);
        }),
        ("ud2", FaultKind::IllegalInstruction, || {
            ud2();
        }),
        ("div0", FaultKind::Arithmetic, || {
            divide(1, std::hint::black_box(0));
        }),
        ("int3", FaultKind::Breakpoint, || {
            int3();
        }),
        ("overflow", FaultKind::StackOverflow, || {
            rust_recursion(0);
        }),
        ("x87 stack left full", FaultKind::IllegalInstruction, || {
            // SAFETY: pushes three values on the x87 stack, then faults.
            unsafe { core::arch::asm!("fld1", "fld1", "fldz", "ud2", options(nomem, nostack)) };
        }),
    ];
    for (name, kind, guest) in kinds {
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
            let r = inner.run_closure(|| ud2()).map(|_| ());
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
            divide(1, std::hint::black_box(0))
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
                        1 => (FaultKind::IllegalInstruction, inst.run_closure(|| ud2()).map(|_| ())),
                        2 => (FaultKind::MemoryFault, inst.run_closure(|| read_from(UNMAPPED)).map(|_| ())),
                        _ => {
                            (FaultKind::Arithmetic, inst.run_closure(|| divide(1, std::hint::black_box(0))).map(|_| ()))
                        }
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
