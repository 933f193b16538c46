//! A guest that leaves CPU flags set (EFLAGS.AC, the alignment check;
//! EFLAGS.DF, the direction flag) cannot take the process down: not in our
//! fault or kill handler, and not in the host after it returns or yields.
//!
//! Linux keeps AC set when it enters a signal handler, and with AC set any
//! misaligned access of the handler (or of libc's `memcpy`, which makes them
//! on purpose) raises SIGBUS. Each case runs in a child process, since a
//! failure kills it with SIGBUS; the parent checks how it ended.
//!
//! (A guest that sets AC and then yields through `yield_u64` faults in the
//! yield's own Rust code, which is reported as the guest's bus error; the
//! host side of a yield goes through the same flag clearing as a return.)
#![cfg(target_arch = "x86_64")]

mod common;

use std::time::Duration;

use common::guests::TruncatedMapping;
use common::run_child;
use context::Val;
use instance::{Error, FaultKind, Instance, ThreadSignalMode, set_thread_signal_mode};

const SURVIVED: &str = "guest-flags child survived";

/// Sets EFLAGS.AC (bit 18) in the guest, with nothing misaligned after it.
macro_rules! set_ac {
    () => {
        "pushfq; orl $0x40000, (%rsp); popfq"
    };
}

extern "C" fn ac_then_null_write() -> u64 {
    // SAFETY: a deliberate fault; the instance recovers it.
    unsafe { core::arch::asm!(set_ac!(), "movq $1, 0", options(att_syntax)) };
    0
}

extern "C" fn ac_then_ud2() -> u64 {
    // SAFETY: a deliberate illegal instruction.
    unsafe { core::arch::asm!(set_ac!(), "ud2", options(att_syntax)) };
    0
}

extern "C" fn ac_then_divide_by_zero() -> u64 {
    // SAFETY: a deliberate #DE: rdx:rax / 0.
    unsafe {
        core::arch::asm!(set_ac!(), "xor %ecx, %ecx", "xor %edx, %edx", "mov $1, %eax", "div %rcx",
            out("rax") _, out("rcx") _, out("rdx") _, options(att_syntax))
    };
    0
}

extern "C" fn ac_then_int3() -> u64 {
    // SAFETY: a deliberate breakpoint trap.
    unsafe { core::arch::asm!(set_ac!(), "int3", options(att_syntax)) };
    0
}

extern "C" fn ac_then_overflow() -> u64 {
    // SAFETY: pushes until the guard region faults; the frames are
    // abandoned by the instance.
    unsafe { core::arch::asm!(set_ac!(), "2:", "push %rax", "jmp 2b", options(att_syntax, noreturn)) }
}

extern "C" fn ac_then_read(addr: usize) -> u64 {
    let v: u64;
    // SAFETY: reads past the end of a truncated file mapping: SIGBUS.
    unsafe { core::arch::asm!(set_ac!(), "movq ({a}), {v}", a = in(reg) addr, v = out(reg) v, options(att_syntax)) };
    v
}

extern "C" fn ac_then_spin() -> u64 {
    // SAFETY: spins until the kill signal ends the run.
    unsafe { core::arch::asm!(set_ac!(), "2:", "pause", "jmp 2b", options(att_syntax, noreturn)) }
}

extern "C" fn ac_and_df_then_return() -> u64 {
    // SAFETY: sets AC and DF and returns with them set (DF breaks the ABI on
    // purpose: a hostile guest).
    unsafe { core::arch::asm!(set_ac!(), "std", options(att_syntax)) };
    7
}

fn eflags() -> u64 {
    let f: u64;
    // SAFETY: reads the flags through the stack.
    unsafe { core::arch::asm!("pushfq", "pop {}", out(reg) f) };
    f
}

/// A misaligned 8-byte read and a `memcpy` between misaligned buffers in
/// the host: both raise SIGBUS if AC leaked into the host.
fn host_misaligned_accesses() {
    let buf = [0u8; 64];
    let p = buf.as_ptr().wrapping_add(3) as *const u64;
    // SAFETY: in bounds, read_unaligned allows any alignment.
    let v = unsafe { std::ptr::read_unaligned(std::hint::black_box(p)) };
    assert_eq!(v, 0);
    let src = vec![7u8; 4099];
    let mut dst = vec![0u8; 4099];
    dst[1..].copy_from_slice(&src[..4098]);
    assert_eq!(dst[4098], 7);
    assert_eq!(eflags() & ((1 << 18) | (1 << 10)), 0, "AC or DF leaked into the host");
}

fn expect_fault(inst: &mut Instance, entry: usize, args: &[Val], kind: FaultKind) {
    // SAFETY: every entry above is an extern "C" fn of the given arguments
    // that does not unwind.
    let err = unsafe { inst.run(entry, args) }.unwrap_err();
    assert_eq!(err.fault().map(|f| f.kind), Some(kind), "{err:?}");
    host_misaligned_accesses();
    inst.reset().unwrap();
}

fn case(name: &str) {
    let mut inst = Instance::new(64 * 1024).unwrap();
    match name {
        "segv" => expect_fault(&mut inst, ac_then_null_write as *const () as usize, &[], FaultKind::MemoryFault),
        "ill" => expect_fault(&mut inst, ac_then_ud2 as *const () as usize, &[], FaultKind::IllegalInstruction),
        "fpe" => expect_fault(&mut inst, ac_then_divide_by_zero as *const () as usize, &[], FaultKind::Arithmetic),
        "trap" => expect_fault(&mut inst, ac_then_int3 as *const () as usize, &[], FaultKind::Breakpoint),
        "overflow" => expect_fault(&mut inst, ac_then_overflow as *const () as usize, &[], FaultKind::StackOverflow),
        "bus" => {
            let map = TruncatedMapping::new();
            expect_fault(&mut inst, ac_then_read as *const () as usize, &[Val::USize(map.addr)], FaultKind::BusError);
        }
        "killed" => {
            inst.set_timeout(Some(Duration::from_millis(20)));
            // SAFETY: as in expect_fault.
            let r = unsafe { inst.run(ac_then_spin as *const () as usize, &[]) };
            assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
            host_misaligned_accesses();
        }
        "returned" => {
            // SAFETY: as in expect_fault.
            let r = unsafe { inst.run(ac_and_df_then_return as *const () as usize, &[]) }.unwrap();
            assert_eq!(r.as_u64(), 7);
            host_misaligned_accesses();
        }
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn child() {
    common::deadline();
    let Some(which) = common::child_case() else { return };
    let (mode, name) = which.split_once(':').unwrap();
    if mode == "keep" {
        set_thread_signal_mode(ThreadSignalMode::Keep).unwrap();
    }
    // Twice: the second time the handlers are already installed and our
    // alternate stack already used.
    case(name);
    case(name);
    println!("{SURVIVED}");
}

fn assert_case_survives(name: &str) {
    for mode in ["restore", "keep"] {
        let out = run_child("child", &format!("{mode}:{name}"));
        assert_eq!(out.code(), Some(0), "case {mode}:{name}: {out:?}");
        assert!(out.stdout.contains(SURVIVED), "case {mode}:{name}: {out:?}");
    }
}

#[test]
fn alignment_check_then_memory_fault_is_recovered() {
    assert_case_survives("segv");
}

#[test]
fn alignment_check_then_illegal_instruction_is_recovered() {
    assert_case_survives("ill");
}

#[test]
fn alignment_check_then_division_by_zero_is_recovered() {
    assert_case_survives("fpe");
}

#[test]
fn alignment_check_then_breakpoint_is_recovered() {
    assert_case_survives("trap");
}

#[test]
fn alignment_check_then_stack_overflow_is_recovered() {
    assert_case_survives("overflow");
}

#[test]
fn alignment_check_then_bus_error_is_recovered() {
    assert_case_survives("bus");
}

#[test]
fn alignment_check_then_kill_is_recovered() {
    assert_case_survives("killed");
}

#[test]
fn alignment_check_and_direction_flag_do_not_follow_a_return_into_the_host() {
    assert_case_survives("returned");
}
