//! What the rest of the crate needs to know of the architecture's register
//! block and start-up frame ([`context_sys::ContextRegs`],
//! [`context_sys::BootFrame`]), in one place per architecture: the field
//! names differ (rsp, rbx, r12, ret_rax on x86_64; sp, x19, x20, ret_x0 on
//! aarch64), the protocol does not.

use context_sys::{BootFrame, ContextRegs};

use crate::plan::{FP_ARG_REGS, GP_ARG_REGS};

/// Words in the slot a suspended context's saved stack pointer points at,
/// whose first word is its resume address: the stack pointer moves past the
/// whole slot when it resumes (`CONTEXT_SYS_RESUME_SP_STEP`).
pub(crate) const RESUME_SLOT_WORDS: usize = context_sys::layout::RESUME_SP_STEP / core::mem::size_of::<u64>();
const _: () = assert!(RESUME_SLOT_WORDS * core::mem::size_of::<u64>() == context_sys::layout::RESUME_SP_STEP);
#[cfg(target_arch = "x86_64")]
const _: () = assert!(RESUME_SLOT_WORDS == 1);
#[cfg(target_arch = "aarch64")]
const _: () = assert!(RESUME_SLOT_WORDS == 2);

/// A boot frame with every slot zero.
#[inline(always)]
pub(crate) const fn zeroed_boot() -> BootFrame {
    #[cfg(target_arch = "x86_64")]
    {
        BootFrame { xmm: [0; FP_ARG_REGS], gp: [0; GP_ARG_REGS], entry: 0, pad: 0 }
    }
    #[cfg(target_arch = "aarch64")]
    {
        BootFrame { gp: [0; GP_ARG_REGS], fp: [0; FP_ARG_REGS], entry: 0, pad: 0 }
    }
}

/// The slots of the boot frame for the integer and the floating argument
/// registers.
#[inline(always)]
pub(crate) fn boot_arg_slots(boot: &mut BootFrame) -> (&mut [u64; GP_ARG_REGS], &mut [u64; FP_ARG_REGS]) {
    #[cfg(target_arch = "x86_64")]
    {
        (&mut boot.gp, &mut boot.xmm)
    }
    #[cfg(target_arch = "aarch64")]
    {
        (&mut boot.gp, &mut boot.fp)
    }
}

/// The register block of a fresh context: its stack pointer at the resume
/// slot `sp`, the start routine's two block addresses (its own, `own`, and
/// its parent's, `parent`) where `context_sys::start` reads them (rbx and
/// r12; aarch64: x19 and x20), everything else zero.
#[inline(always)]
pub(crate) fn fresh_regs(sp: u64, own: u64, parent: u64) -> ContextRegs {
    #[cfg(target_arch = "x86_64")]
    {
        ContextRegs { rsp: sp, rbx: own, r12: parent, ..ContextRegs::default() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        ContextRegs { sp, x19: own, x20: parent, ..ContextRegs::default() }
    }
}

/// A register block with only the saved stack pointer set (unit tests'
/// made-up suspended contexts).
#[cfg(test)]
pub(crate) fn regs_with_sp(sp: u64) -> ContextRegs {
    fresh_regs(sp, 0, 0)
}

/// The stored return registers: the two integer ones (rax, rdx; aarch64:
/// x0, x1) and the vector one's two halves (xmm0; aarch64: q0), low first.
#[inline(always)]
pub(crate) fn retvals(regs: &ContextRegs) -> ([u64; 2], [u64; 2]) {
    #[cfg(target_arch = "x86_64")]
    {
        ([regs.ret_rax, regs.ret_rdx], regs.ret_xmm0)
    }
    #[cfg(target_arch = "aarch64")]
    {
        ([regs.ret_x0, regs.ret_x1], regs.ret_v0)
    }
}

/// Zeroes the stored return registers.
#[inline(always)]
pub(crate) fn clear_retvals(regs: &mut ContextRegs) {
    #[cfg(target_arch = "x86_64")]
    {
        (regs.ret_rax, regs.ret_rdx, regs.ret_xmm0) = (0, 0, [0; 2]);
    }
    #[cfg(target_arch = "aarch64")]
    {
        (regs.ret_x0, regs.ret_x1, regs.ret_v0) = (0, 0, [0; 2]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_regs_put_the_blocks_where_the_start_routine_reads_them() {
        let r = fresh_regs(0x1000, 0x2000, 0x3000);
        assert_eq!(r.stack_pointer(), 0x1000);
        #[cfg(target_arch = "x86_64")]
        assert_eq!((r.rbx, r.r12), (0x2000, 0x3000));
        #[cfg(target_arch = "aarch64")]
        assert_eq!((r.x19, r.x20), (0x2000, 0x3000));
    }

    #[test]
    fn retvals_read_what_clear_zeroes() {
        let mut r = ContextRegs::default();
        #[cfg(target_arch = "x86_64")]
        {
            (r.ret_rax, r.ret_rdx, r.ret_xmm0) = (1, 2, [3, 4]);
        }
        #[cfg(target_arch = "aarch64")]
        {
            (r.ret_x0, r.ret_x1, r.ret_v0) = (1, 2, [3, 4]);
        }
        assert_eq!(retvals(&r), ([1, 2], [3, 4]));
        clear_retvals(&mut r);
        assert_eq!(retvals(&r), ([0, 0], [0, 0]));
    }

    #[test]
    #[allow(unsafe_code)]
    fn boot_arg_slots_are_the_frame_s_own() {
        let mut b = zeroed_boot();
        let (gp, fp) = boot_arg_slots(&mut b);
        gp[GP_ARG_REGS - 1] = 7;
        fp[0] = 9;
        let words: [u64; core::mem::size_of::<BootFrame>() / 8] =
            // SAFETY: BootFrame is plain u64s, exactly this many.
            unsafe { core::mem::transmute(b) };
        let gp_off = core::mem::offset_of!(BootFrame, gp) / 8;
        #[cfg(target_arch = "x86_64")]
        let fp_off = core::mem::offset_of!(BootFrame, xmm) / 8;
        #[cfg(target_arch = "aarch64")]
        let fp_off = core::mem::offset_of!(BootFrame, fp) / 8;
        assert_eq!(words[gp_off + GP_ARG_REGS - 1], 7);
        assert_eq!(words[fp_off], 9);
        assert_eq!(words.iter().filter(|&&w| w != 0).count(), 2);
    }
}

/// The registers of an interrupted thread's ucontext that the resume
/// window's contract names (see [`context_sys::ResumeWindows`]): the pc,
/// ADDR (the resume word's address once loaded) and NEXT (the resume word's
/// value once loaded). x86_64: rip, rax, rcx; aarch64: pc, x9, x10.
pub(crate) mod uc {
    use nix::libc::ucontext_t;

    /// The interrupted pc.
    #[inline]
    pub(crate) fn pc(uc: &ucontext_t) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            uc.uc_mcontext.gregs[nix::libc::REG_RIP as usize] as u64
        }
        #[cfg(target_arch = "aarch64")]
        {
            uc.uc_mcontext.pc
        }
    }

    /// ADDR: rax (aarch64: x9).
    #[inline]
    pub(crate) fn addr(uc: &ucontext_t) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            uc.uc_mcontext.gregs[nix::libc::REG_RAX as usize] as usize
        }
        #[cfg(target_arch = "aarch64")]
        {
            uc.uc_mcontext.regs[9] as usize
        }
    }

    /// NEXT: rcx (aarch64: x10).
    #[inline]
    pub(crate) fn next(uc: &ucontext_t) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            uc.uc_mcontext.gregs[nix::libc::REG_RCX as usize] as usize
        }
        #[cfg(target_arch = "aarch64")]
        {
            uc.uc_mcontext.regs[10] as usize
        }
    }

    /// Sets NEXT: rcx (aarch64: x10).
    #[inline]
    pub(crate) fn set_next(uc: &mut ucontext_t, value: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            uc.uc_mcontext.gregs[nix::libc::REG_RCX as usize] = value as i64;
        }
        #[cfg(target_arch = "aarch64")]
        {
            uc.uc_mcontext.regs[10] = value as u64;
        }
    }

    /// Unit tests: a ucontext with every general register (and the pc, sp)
    /// set to recognisable junk, then pc, ADDR and NEXT to the given values.
    #[cfg(test)]
    pub(crate) fn made_up(pc: u64, addr: usize, next: usize) -> ucontext_t {
        // SAFETY: `ucontext_t` is plain old data (integers, arrays and raw
        // pointers), for which all-zero bytes are a valid value.
        #[allow(unsafe_code)]
        let mut uc: ucontext_t = unsafe { core::mem::zeroed() };
        #[cfg(target_arch = "x86_64")]
        {
            for (i, g) in uc.uc_mcontext.gregs.iter_mut().enumerate() {
                *g = 0x0bad_0000 + i as i64;
            }
            uc.uc_mcontext.gregs[nix::libc::REG_RIP as usize] = pc as i64;
            uc.uc_mcontext.gregs[nix::libc::REG_RAX as usize] = addr as i64;
        }
        #[cfg(target_arch = "aarch64")]
        {
            for (i, g) in uc.uc_mcontext.regs.iter_mut().enumerate() {
                *g = 0x0bad_0000 + i as u64;
            }
            uc.uc_mcontext.sp = 0x0bad_00ff;
            uc.uc_mcontext.pc = pc;
            uc.uc_mcontext.regs[9] = addr as u64;
        }
        set_next(&mut uc, next);
        uc
    }

    /// Unit tests: every general register, the pc and (aarch64) sp, in
    /// order, for comparing two ucontexts.
    #[cfg(test)]
    pub(crate) fn all_regs(uc: &ucontext_t) -> Vec<u64> {
        #[cfg(target_arch = "x86_64")]
        {
            uc.uc_mcontext.gregs.iter().map(|&g| g as u64).collect()
        }
        #[cfg(target_arch = "aarch64")]
        {
            let m = &uc.uc_mcontext;
            m.regs.iter().copied().chain([m.sp, m.pc, m.pstate]).collect()
        }
    }

    /// Unit tests: [`all_regs`] of `uc` with NEXT replaced by `value`.
    #[cfg(test)]
    pub(crate) fn all_regs_with_next(uc: &ucontext_t, value: usize) -> Vec<u64> {
        let mut copy = *uc;
        set_next(&mut copy, value);
        all_regs(&copy)
    }
}
