//! aarch64: the PSTATE bits a guest can change from EL0 that change what
//! the host's code does (DIT, SSBS, TCO; BTYPE in an interrupted state),
//! SME's streaming mode, ZA and TPIDR2_EL0, the floating-point control register FPCR,
//! and the interrupted registers of a ucontext (`pc`, `sp`, `regs`,
//! `pstate`).
//!
//! Which of DIT, SSBS, TCO and SME this CPU has is read once from the
//! kernel's hardware capabilities (`getauxval`); a register the CPU does
//! not have is never read or written (`mrs` of it would be undefined).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use context::Context;

/// PSTATE.DIT (data-independent timing), bit 24 of the `mrs`/`msr` value
/// and of the saved PSTATE alike.
const PSTATE_DIT: u64 = 1 << 24;
/// PSTATE.TCO (MTE tag check override): set, tag checks are off.
const PSTATE_TCO: u64 = 1 << 25;
/// PSTATE.SSBS (speculative store bypass safe): set, the mitigation is off.
const PSTATE_SSBS: u64 = 1 << 12;
/// PSTATE.BTYPE: the branch type of an interrupted indirect branch, checked
/// at the next instruction on BTI-guarded pages.
const PSTATE_BTYPE: u64 = 0b11 << 10;

/// `AT_HWCAP` bits (the kernel's uapi `asm/hwcap.h`).
const HWCAP_DIT: u64 = 1 << 24;
const HWCAP_SSBS: u64 = 1 << 28;
/// `AT_HWCAP2` bits.
const HWCAP2_MTE: u64 = 1 << 18;
const HWCAP2_SME: u64 = 1 << 23;

/// Set in [`FEATURES`] once it has been read.
const FEATURES_READ: u64 = 1 << 63;
/// Set in [`FEATURES`] if the CPU has SME (`SVCR` exists).
const FEATURE_SME: u64 = 1 << 62;

/// The PSTATE bits among DIT, TCO, SSBS this CPU has, plus
/// [`FEATURE_SME`], plus [`FEATURES_READ`]; 0 until first read.
static FEATURES: AtomicU64 = AtomicU64::new(0);

/// The bits of [`FEATURES`], reading the capabilities the first time. Safe
/// in a signal handler: `getauxval` reads the process's auxiliary vector.
#[inline(always)]
fn features() -> u64 {
    let f = FEATURES.load(Ordering::Relaxed);
    if f != 0 {
        return f;
    }
    read_features()
}

#[cold]
fn read_features() -> u64 {
    // SAFETY: getauxval only reads the auxiliary vector.
    let (hwcap, hwcap2) = unsafe { (libc::getauxval(libc::AT_HWCAP), libc::getauxval(libc::AT_HWCAP2)) };
    let mut f = FEATURES_READ;
    if hwcap & HWCAP_DIT != 0 {
        f |= PSTATE_DIT;
    }
    if hwcap & HWCAP_SSBS != 0 {
        f |= PSTATE_SSBS;
    }
    if hwcap2 & HWCAP2_MTE != 0 {
        f |= PSTATE_TCO;
    }
    if hwcap2 & HWCAP2_SME != 0 {
        f |= FEATURE_SME;
    }
    FEATURES.store(f, Ordering::Relaxed);
    f
}

/// SVCR.SM: streaming SVE mode.
const SVCR_SM: u64 = 1 << 0;
/// SVCR.ZA: the ZA array is on.
const SVCR_ZA: u64 = 1 << 1;

/// The PSTATE bits among DIT, SSBS and TCO that the host runs with (only
/// those the CPU has), and with SME its TPIDR2_EL0 (the SME ABI's lazy-save
/// pointer: non-null while ZA holds the host's data, which a callee that
/// wants ZA must save through the block it points at), read before a run
/// enters its guest and put back after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostFlags {
    pstate: u64,
    tpidr2: u64,
}

impl HostFlags {
    /// Before the first run: none read yet.
    pub(crate) const UNSET: HostFlags = HostFlags { pstate: 0, tpidr2: 0 };
}

/// Reads the PSTATE bits of [`HostFlags`] that the CPU has.
#[inline(always)]
fn read_pstate_bits(f: u64) -> u64 {
    let mut bits = 0;
    if f & PSTATE_DIT != 0 {
        let v: u64;
        // SAFETY: DIT exists (HWCAP_DIT); reading it has no effect.
        unsafe { core::arch::asm!("mrs {}, s3_3_c4_c2_5", out(reg) v, options(nomem, nostack, preserves_flags)) };
        bits |= v & PSTATE_DIT;
    }
    if f & PSTATE_SSBS != 0 {
        let v: u64;
        // SAFETY: SSBS exists (HWCAP_SSBS); reading it has no effect.
        unsafe { core::arch::asm!("mrs {}, s3_3_c4_c2_6", out(reg) v, options(nomem, nostack, preserves_flags)) };
        bits |= v & PSTATE_SSBS;
    }
    if f & PSTATE_TCO != 0 {
        let v: u64;
        // SAFETY: TCO exists (HWCAP2_MTE); reading it has no effect.
        unsafe { core::arch::asm!("mrs {}, s3_3_c4_c2_7", out(reg) v, options(nomem, nostack, preserves_flags)) };
        bits |= v & PSTATE_TCO;
    }
    bits
}

/// The flags of the host about to enter a guest.
#[inline(always)]
pub(crate) fn host_flags() -> HostFlags {
    let f = features();
    let tpidr2 = if f & FEATURE_SME != 0 { read_tpidr2() } else { 0 };
    HostFlags { pstate: read_pstate_bits(f), tpidr2 }
}

/// TPIDR2_EL0. The caller has checked that the CPU has SME.
#[inline(always)]
fn read_tpidr2() -> u64 {
    let v: u64;
    // SAFETY: TPIDR2_EL0 exists (HWCAP2_SME); reading it has no effect.
    unsafe { core::arch::asm!("mrs {}, s3_3_c13_c0_5", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// SVCR. The caller has checked that the CPU has SME.
#[inline(always)]
fn read_svcr() -> u64 {
    let v: u64;
    // SAFETY: SVCR exists (HWCAP2_SME); reading it has no effect.
    unsafe { core::arch::asm!("mrs {}, s3_3_c4_c2_2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Host, right after a guest switched back to it (returned, yielded, or
/// left through a handler's way back), or entering a host region: puts back
/// the host's DIT, SSBS and TCO where the guest changed them (a guest that
/// turned the speculative-store-bypass mitigation or MTE's tag checks off
/// must not turn them off for the host), and the host's SME state (see
/// [`leave_guest_sme`]). Reads are cheap; a register is written only when
/// it differs. (After a fault or kill the handler has already put the
/// PSTATE bits back in the interrupted state, see [`resume_at`], and the
/// way back has left streaming mode, see [`leave_guest_modes`].)
#[inline(always)]
pub(crate) fn restore_host_flags(host: HostFlags) {
    let f = features();
    let now = read_pstate_bits(f);
    if now != host.pstate {
        write_pstate_bits(f, now ^ host.pstate, host.pstate);
    }
    if f & FEATURE_SME != 0 {
        leave_guest_sme(host.tpidr2);
    }
}

/// Leaves the SME state a guest left for the host `host_tpidr2` (its
/// TPIDR2_EL0 when it entered the guest):
///
/// * streaming mode off (in it most Advanced SIMD instructions, which the
///   host's code uses freely, are undefined);
/// * TPIDR2_EL0 null unless it is still the host's own: a guest's lazy-save
///   pointer (or a made-up one) must not reach the host, whose next
///   `__arm_tpidr2_save`/`__arm_za_disable` (glibc's `longjmp`, the
///   unwinder) would store ZA through it;
/// * ZA off, unless the host's own lazy save is still pending (TPIDR2 still
///   the host's non-null block, ZA on: the guest did not touch ZA, which
///   holds the host's data; turning it off would lose that data, since the
///   host's caller, finding TPIDR2 still set, does not restore it).
///
/// A guest's own ZA contents and lazy-save state are discarded, not saved:
/// a guest must not yield or call a host region with ZA live (commit its
/// lazy save first, as `__arm_za_disable` does).
#[inline(always)]
fn leave_guest_sme(host_tpidr2: u64) {
    let svcr = read_svcr();
    let tpidr2 = read_tpidr2();
    if svcr & (SVCR_SM | SVCR_ZA) == 0 && tpidr2 == 0 {
        return;
    }
    leave_guest_sme_slow(svcr, tpidr2, host_tpidr2);
}

#[cold]
fn leave_guest_sme_slow(svcr: u64, tpidr2: u64, host_tpidr2: u64) {
    let host_dormant = host_tpidr2 != 0 && tpidr2 == host_tpidr2 && svcr & SVCR_ZA != 0;
    if tpidr2 != 0 && !host_dormant {
        // SAFETY: TPIDR2_EL0 exists (SME); null means no lazy save pending,
        // which is true once ZA is off (below) or holds no one's data.
        unsafe { core::arch::asm!("msr s3_3_c13_c0_5, xzr", options(nomem, nostack, preserves_flags)) };
    }
    let stop = if host_dormant { svcr & SVCR_SM } else { svcr & (SVCR_SM | SVCR_ZA) };
    if stop != 0 {
        smstop(stop);
    }
}

/// `smstop` of the SVCR bits in `bits` (SM, ZA or both; not 0). The caller
/// has checked that the CPU has SME.
#[inline(always)]
fn smstop(bits: u64) {
    // SAFETY: `smstop`, `smstop sm`, `smstop za` (msr svcrsmza/svcrsm/
    // svcrza, #0, written as their encodings for assemblers without SME)
    // leave streaming mode and/or turn ZA off. Leaving streaming mode
    // zeroes every vector register, callee-saved d8-d15 included, so all 32
    // are declared clobbered (the compiler saves the host's d8-d15 around
    // it), and the P registers and FFR, which no host value lives in across
    // a call; the guest's Z, P and ZA contents are discarded.
    unsafe {
        if bits == SVCR_SM | SVCR_ZA {
            core::arch::asm!(
                ".inst 0xd503467f", // smstop
                out("v8") _, out("v9") _, out("v10") _, out("v11") _,
                out("v12") _, out("v13") _, out("v14") _, out("v15") _,
                clobber_abi("C"),
                options(nomem, nostack, preserves_flags),
            )
        } else if bits == SVCR_SM {
            core::arch::asm!(
                ".inst 0xd503427f", // smstop sm
                out("v8") _, out("v9") _, out("v10") _, out("v11") _,
                out("v12") _, out("v13") _, out("v14") _, out("v15") _,
                clobber_abi("C"),
                options(nomem, nostack, preserves_flags),
            )
        } else {
            // ZA only: no vector register changes.
            core::arch::asm!(".inst 0xd503447f", options(nomem, nostack, preserves_flags)) // smstop za
        }
    }
}

/// Writes the bits of `changed` (a subset of the CPU's) to their values in
/// `to`.
#[cold]
fn write_pstate_bits(f: u64, changed: u64, to: u64) {
    if changed & f & PSTATE_DIT != 0 {
        // SAFETY: DIT exists; the value is the host's own, read before.
        unsafe { core::arch::asm!("msr s3_3_c4_c2_5, {}", in(reg) to & PSTATE_DIT, options(nomem, nostack)) };
    }
    if changed & f & PSTATE_SSBS != 0 {
        // SAFETY: SSBS exists; the value is the host's own, read before.
        unsafe { core::arch::asm!("msr s3_3_c4_c2_6, {}", in(reg) to & PSTATE_SSBS, options(nomem, nostack)) };
    }
    if changed & f & PSTATE_TCO != 0 {
        // SAFETY: TCO exists; the value is the host's own, read before.
        unsafe { core::arch::asm!("msr s3_3_c4_c2_7, {}", in(reg) to & PSTATE_TCO, options(nomem, nostack)) };
    }
}

/// The floating-point control state: FPCR (all of it is control; the
/// status flags live in FPSR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FpControl(u64);

/// The control state the thread runs with now.
pub(crate) fn fp_control() -> FpControl {
    let fpcr: u64;
    // SAFETY: reads FPCR, which every aarch64 CPU Linux runs on has.
    unsafe { core::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags)) };
    FpControl(fpcr)
}

/// The control state saved in a suspended context's register block.
pub(crate) fn saved_fp_control(context: &Context) -> FpControl {
    let regs = context.regs();
    FpControl(regs.fpcr)
}

/// Makes `control` the thread's (FPSR's status flags are not touched).
pub(crate) fn load_fp_control(control: FpControl) {
    // SAFETY: writes a value that was FPCR's (the host's or the guest's
    // saved one), so every reserved bit is as the CPU had it.
    unsafe { core::arch::asm!("msr fpcr, {}", in(reg) control.0, options(nomem, nostack, preserves_flags)) };
}

/// On the way back from a handler that abandoned a guest, before host code
/// runs: the kernel's sigreturn restored the guest's streaming mode and ZA
/// from the signal frame; leave streaming mode here (the way back's Rust
/// code may use Advanced SIMD). ZA and TPIDR2_EL0 are left to
/// [`restore_host_flags`], which the host runs right after the switch the
/// way back makes to it, and which knows the host's TPIDR2.
#[inline(always)]
pub(crate) fn leave_guest_modes() {
    if features() & FEATURE_SME != 0 && read_svcr() & SVCR_SM != 0 {
        smstop(SVCR_SM);
    }
}

/// The interrupted stack pointer of a handler's ucontext.
#[inline(always)]
pub(crate) fn uc_sp(uc: &libc::ucontext_t) -> usize {
    uc.uc_mcontext.sp as usize
}

/// The interrupted instruction pointer of a handler's ucontext.
#[inline(always)]
pub(crate) fn uc_pc(uc: &libc::ucontext_t) -> usize {
    uc.uc_mcontext.pc as usize
}

/// Rewrites `uc` so that the handler's sigreturn continues at `pc` with the
/// stack pointer `sp` (16-aligned), no frame record and no return address
/// (x29 and x30 zero, so unwinders stop), BTYPE clear (the guest may have
/// been interrupted right after an indirect branch: the pc rewritten here
/// is no branch target), and the host's DIT, SSBS and TCO.
pub(crate) fn resume_at(uc: &mut libc::ucontext_t, pc: usize, sp: usize, host: HostFlags) {
    let m = &mut uc.uc_mcontext;
    m.pc = pc as u64;
    m.sp = sp as u64;
    m.regs[29] = 0;
    m.regs[30] = 0;
    let mine = features() & (PSTATE_DIT | PSTATE_SSBS | PSTATE_TCO);
    m.pstate = (m.pstate & !(PSTATE_BTYPE | mine)) | host.pstate;
}

/// [`resume_at`] the function `f`, as if called with the stack pointer
/// `top` (16-aligned) and a return address of 0 (x30), so that unwinders
/// stop there.
///
/// # Safety
///
/// The stack below `top` must be free for `f`'s frames (nothing is written
/// here: aarch64 passes the return address in x30).
pub(crate) unsafe fn resume_as_call(uc: &mut libc::ucontext_t, f: usize, top: usize, host: HostFlags) {
    resume_at(uc, f, top, host);
}
