//! Declarations of the C children and assembly probes, and `#[repr(C)]`
//! mirrors of the structs they share with Rust.
//!
//! This module needs `unsafe` because it is the boundary with the C and
//! assembly code: it declares foreign functions (all `unsafe` to call, and
//! called from the tests), reads the C side's thread-local record, and views
//! an over-aligned buffer as words. The few safe wrappers here say why each
//! call holds.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_void};

use context_sys::ContextRegs;

use crate::FpControl;
use crate::consts;

/// An `unsigned __int128` as the C ABI returns it: the low half in the first
/// integer return register (rax; aarch64: x0), the high half in the second
/// (rdx; x1).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U128Halves {
    /// Bits 0..64, returned in rax.
    pub lo: u64,
    /// Bits 64..128, returned in rdx.
    pub hi: u64,
}

impl U128Halves {
    /// The value the halves make.
    pub fn get(self) -> u128 {
        u128::from(self.lo) | (u128::from(self.hi) << 64)
    }
}

/// What a recording child saw (`struct ctc_record`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtcRecord {
    /// The id of the child that ran (its index in [`GENERATED`](crate::GENERATED),
    /// or 1001 for `ctc_mix24`).
    pub fn_id: u64,
    /// How many arguments it recorded.
    pub nargs: u64,
    /// How many recording calls this thread has made so far.
    pub calls: u64,
    /// The recorded words, `nargs` of them.
    pub words: [u64; 24],
}

impl CtcRecord {
    /// The recorded words of the arguments.
    pub fn args(&self) -> &[u64] {
        &self.words[..(self.nargs as usize).min(self.words.len())]
    }
}

/// A copy of the calling thread's record of the last recording child that
/// ran on it (through a context or directly).
pub fn record() -> CtcRecord {
    // SAFETY: ctc_record_this_thread returns the address of this thread's
    // `_Thread_local` record, valid for the thread's life; nothing else
    // writes it while this thread is here.
    unsafe { *ctc_record_this_thread() }
}

/// What the probe child saw at entry and what it is told (`struct ctc_probe`,
/// x86_64 section of `c/ctc.h`).
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CtcProbe {
    /// rsp at the child's first instruction (it points at the return address).
    pub entry_rsp: u64,
    /// rdi, rsi, rdx, rcx, r8, r9 at entry.
    pub gp: [u64; 6],
    /// rax at entry.
    pub rax: u64,
    /// xmm0..xmm7 at entry, low 64 bits first.
    pub xmm: [[u64; 2]; 8],
    /// MXCSR at entry.
    pub entry_mxcsr: u32,
    /// x87 control word at entry.
    pub entry_fpucw: u16,
    /// Padding.
    pub pad0: u16,
    /// The child's own register block.
    pub this: *mut ContextRegs,
    /// The block it switches back to once.
    pub parent: *mut ContextRegs,
    /// Seeds its register patterns and its return values.
    pub seed: u64,
    /// MXCSR the child runs with while suspended.
    pub child_mxcsr: u32,
    /// x87 control word the child runs with while suspended.
    pub child_fpucw: u16,
    /// Padding.
    pub pad1: u16,
    /// How many stack arguments to copy into `spilled`.
    pub nspill: u64,
    /// `LOST_*` bits the child found when it was resumed.
    pub child_mask: u64,
    /// The stack arguments as the child saw them.
    pub spilled: [u64; 24],
}

/// What the probe child saw at entry and what it is told (`struct ctc_probe`,
/// aarch64 section of `c/ctc.h`).
#[cfg(target_arch = "aarch64")]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CtcProbe {
    /// sp at the child's first instruction (it points at the first stack
    /// argument).
    pub entry_sp: u64,
    /// x0..x7 at entry.
    pub gp: [u64; 8],
    /// Padding (keeps `v` at a multiple of 16 for `stp q`).
    pub pad0: u64,
    /// q0..q7 at entry, low 64 bits first.
    pub v: [[u64; 2]; 8],
    /// FPCR at entry.
    pub entry_fpcr: u64,
    /// The child's own register block.
    pub this: *mut ContextRegs,
    /// The block it switches back to once.
    pub parent: *mut ContextRegs,
    /// Seeds its register patterns and its return values.
    pub seed: u64,
    /// FPCR the child runs with while suspended.
    pub child_fpcr: u64,
    /// How many stack arguments to copy into `spilled`.
    pub nspill: u64,
    /// `LOST_*` bits the child found when it was resumed.
    pub child_mask: u64,
    /// The stack arguments as the child saw them.
    pub spilled: [u64; 24],
}

impl CtcProbe {
    /// A probe for a child whose register block is `this` and whose parent is
    /// `parent`; the child runs with the default control state.
    pub fn new(this: *mut ContextRegs, parent: *mut ContextRegs) -> CtcProbe {
        let mut p = CtcProbe {
            #[cfg(target_arch = "x86_64")]
            entry_rsp: 0,
            #[cfg(target_arch = "x86_64")]
            gp: [0; 6],
            #[cfg(target_arch = "x86_64")]
            rax: 0,
            #[cfg(target_arch = "x86_64")]
            xmm: [[0; 2]; 8],
            #[cfg(target_arch = "x86_64")]
            entry_mxcsr: 0,
            #[cfg(target_arch = "x86_64")]
            entry_fpucw: 0,
            #[cfg(target_arch = "x86_64")]
            pad0: 0,
            #[cfg(target_arch = "x86_64")]
            child_mxcsr: 0,
            #[cfg(target_arch = "x86_64")]
            child_fpucw: 0,
            #[cfg(target_arch = "x86_64")]
            pad1: 0,
            #[cfg(target_arch = "aarch64")]
            entry_sp: 0,
            #[cfg(target_arch = "aarch64")]
            gp: [0; 8],
            #[cfg(target_arch = "aarch64")]
            pad0: 0,
            #[cfg(target_arch = "aarch64")]
            v: [[0; 2]; 8],
            #[cfg(target_arch = "aarch64")]
            entry_fpcr: 0,
            #[cfg(target_arch = "aarch64")]
            child_fpcr: 0,
            this,
            parent,
            seed: 0,
            nspill: 0,
            child_mask: u64::MAX,
            spilled: [0; 24],
        };
        p.set_child_control(FpControl::DEFAULT);
        p
    }

    /// The stack pointer at the child's first instruction.
    pub fn entry_sp(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        return self.entry_rsp;
        #[cfg(target_arch = "aarch64")]
        return self.entry_sp;
    }

    /// The eight floating argument registers at entry, whole (xmm0..xmm7;
    /// aarch64: q0..q7), low 64 bits first.
    pub fn fp_regs(&self) -> &[[u64; 2]; 8] {
        #[cfg(target_arch = "x86_64")]
        return &self.xmm;
        #[cfg(target_arch = "aarch64")]
        return &self.v;
    }

    /// The floating-point control state at entry.
    pub fn entry_control(&self) -> FpControl {
        #[cfg(target_arch = "x86_64")]
        return FpControl { mxcsr: self.entry_mxcsr, fpucw: self.entry_fpucw };
        #[cfg(target_arch = "aarch64")]
        return FpControl { fpcr: self.entry_fpcr };
    }

    /// Sets the control state the child runs with while suspended.
    pub fn set_child_control(&mut self, ctl: FpControl) {
        #[cfg(target_arch = "x86_64")]
        {
            self.child_mxcsr = ctl.mxcsr;
            self.child_fpucw = ctl.fpucw;
        }
        #[cfg(target_arch = "aarch64")]
        {
            self.child_fpcr = ctl.fpcr;
        }
    }
}

/// Compile-time proof that the mirror matches the offsets the probe's
/// assembly uses (which C checks against `struct ctc_probe`).
#[cfg(target_arch = "x86_64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(CtcProbe, entry_rsp) as u64 == consts::PROBE_ENTRY_RSP);
    assert!(offset_of!(CtcProbe, gp) as u64 == consts::PROBE_RDI);
    assert!(offset_of!(CtcProbe, gp) as u64 + 40 == consts::PROBE_R9);
    assert!(offset_of!(CtcProbe, rax) as u64 == consts::PROBE_RAX);
    assert!(offset_of!(CtcProbe, xmm) as u64 == consts::PROBE_XMM0);
    assert!(offset_of!(CtcProbe, xmm) as u64 + 7 * 16 == consts::PROBE_XMM7);
    assert!(offset_of!(CtcProbe, entry_mxcsr) as u64 == consts::PROBE_ENTRY_MXCSR);
    assert!(offset_of!(CtcProbe, entry_fpucw) as u64 == consts::PROBE_ENTRY_FPUCW);
    assert!(offset_of!(CtcProbe, this) as u64 == consts::PROBE_SELF);
    assert!(offset_of!(CtcProbe, parent) as u64 == consts::PROBE_PARENT);
    assert!(offset_of!(CtcProbe, seed) as u64 == consts::PROBE_SEED);
    assert!(offset_of!(CtcProbe, child_mxcsr) as u64 == consts::PROBE_CHILD_MXCSR);
    assert!(offset_of!(CtcProbe, child_fpucw) as u64 == consts::PROBE_CHILD_FPUCW);
    assert!(offset_of!(CtcProbe, nspill) as u64 == consts::PROBE_NSPILL);
    assert!(offset_of!(CtcProbe, child_mask) as u64 == consts::PROBE_CHILD_MASK);
    assert!(offset_of!(CtcProbe, spilled) as u64 == consts::PROBE_SPILLED);
    assert!(size_of::<CtcProbe>() as u64 == consts::PROBE_SIZE);
};

/// As above, for the aarch64 mirror.
#[cfg(target_arch = "aarch64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(CtcProbe, entry_sp) as u64 == consts::PROBE_ENTRY_SP);
    assert!(offset_of!(CtcProbe, gp) as u64 == consts::PROBE_X0);
    assert!(offset_of!(CtcProbe, gp) as u64 + 7 * 8 == consts::PROBE_X7);
    assert!(offset_of!(CtcProbe, pad0) as u64 == consts::PROBE_PAD0);
    assert!(offset_of!(CtcProbe, v) as u64 == consts::PROBE_V0);
    assert!(offset_of!(CtcProbe, v) as u64 + 7 * 16 == consts::PROBE_V7);
    assert!(offset_of!(CtcProbe, entry_fpcr) as u64 == consts::PROBE_ENTRY_FPCR);
    assert!(offset_of!(CtcProbe, this) as u64 == consts::PROBE_SELF);
    assert!(offset_of!(CtcProbe, parent) as u64 == consts::PROBE_PARENT);
    assert!(offset_of!(CtcProbe, seed) as u64 == consts::PROBE_SEED);
    assert!(offset_of!(CtcProbe, child_fpcr) as u64 == consts::PROBE_CHILD_FPCR);
    assert!(offset_of!(CtcProbe, nspill) as u64 == consts::PROBE_NSPILL);
    assert!(offset_of!(CtcProbe, child_mask) as u64 == consts::PROBE_CHILD_MASK);
    assert!(offset_of!(CtcProbe, spilled) as u64 == consts::PROBE_SPILLED);
    assert!(size_of::<CtcProbe>() as u64 == consts::PROBE_SIZE);
};

/// How a yielding child reaches its parent (`struct ctc_yielder`). With a
/// null `this` the child never yields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Yielder {
    /// The child's own register block.
    pub this: *mut ContextRegs,
    /// Where it yields to.
    pub parent: *mut ContextRegs,
    /// The last value it yielded.
    pub yielded: u64,
    /// How many times it has yielded.
    pub yields: u64,
}

/// Most workers a [`Sched`] runs.
pub const SCHED_MAX: usize = 8;
/// Entries in [`Sched::log`].
pub const SCHED_LOG: usize = 256;

/// A swap schedule among C workers (`struct ctc_sched`): `ctx[0]` is the
/// host, `ctx[1..=n]` the workers, `order` the workers to run in turn.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Sched {
    /// Register blocks: the host's, then each worker's.
    pub ctx: [*mut ContextRegs; SCHED_MAX + 1],
    /// The workers to run, in turn (each in 1..=n).
    pub order: *const u8,
    /// Entries in `order`.
    pub len: u64,
    /// Next entry of `order` to run.
    pub pos: u64,
    /// How many times each context has been switched to.
    pub resumes: [u64; SCHED_MAX + 1],
    /// `LOST_*` bits each found (bit 16: a worker's own run count disagreed).
    pub lost: [u64; SCHED_MAX + 1],
    /// Entries in `log`.
    pub log_len: u64,
    /// `(worker << 32) | how many times it has run`, once per run.
    pub log: [u64; SCHED_LOG],
}

/// Two INTEGER eightbytes, returned in rax:rdx.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairU64 {
    /// Returned in rax.
    pub lo: u64,
    /// Returned in rdx.
    pub hi: u64,
}

/// Four `int32_t` in two INTEGER eightbytes, returned in rax:rdx.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I32x4 {
    /// Low half of rax.
    pub a: i32,
    /// High half of rax.
    pub b: i32,
    /// Low half of rdx.
    pub c: i32,
    /// High half of rdx.
    pub d: i32,
}

/// An INTEGER then an SSE eightbyte: returned in rax and xmm0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntDbl {
    /// Returned in rax.
    pub i: i64,
    /// Returned in xmm0.
    pub d: f64,
}

/// An SSE then an INTEGER eightbyte: returned in xmm0 and rax.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DblInt {
    /// Returned in xmm0.
    pub d: f64,
    /// Returned in rax.
    pub i: i64,
}

// The probes of c/probes_x86_64.S whose signatures are x86_64's.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    fn ctc_set_fp_control(mxcsr: u32, fpucw: u16);
    fn ctc_get_fp_control() -> u64;
    fn ctc_swap_checked(from: *mut ContextRegs, to: *const ContextRegs, seed: u64, mxcsr: u32, fpucw: u16) -> u64;
}

// The probes of c/probes_aarch64.S whose signatures are aarch64's.
#[cfg(target_arch = "aarch64")]
unsafe extern "C" {
    fn ctc_set_fp_control(fpcr: u64);
    fn ctc_get_fp_control() -> u64;
    fn ctc_swap_checked(from: *mut ContextRegs, to: *const ContextRegs, seed: u64, fpcr: u64) -> u64;
}

/// `ctc_swap_checked` (c/probes_*.S): loads recognisable values into every
/// callee-saved register and the control state `ctl`, switches from `from`
/// to `to`, and when something resumes `from` returns the `LOST_*` bits of
/// what changed (0 if nothing did), with the caller's registers and control
/// state restored.
///
/// # Safety
///
/// `from` must be a register block that stays put and that something will
/// switch back to (or this never returns); `to` must be a valid switch
/// target (saved by a swap, or prepared by `Context::init`) whose stack is
/// alive; and whoever resumes `from` must do so on this thread with this
/// frame still live. For example, passing a `to` whose child has already
/// returned resumes a dead stack.
pub unsafe fn swap_checked(from: *mut ContextRegs, to: *const ContextRegs, seed: u64, ctl: FpControl) -> u64 {
    // SAFETY: the caller's duties above are exactly the probe's.
    #[cfg(target_arch = "x86_64")]
    return unsafe { ctc_swap_checked(from, to, seed, ctl.mxcsr, ctl.fpucw) };
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    return unsafe { ctc_swap_checked(from, to, seed, ctl.fpcr) };
}

#[allow(missing_docs)] // each function is documented in c/children.c or c/probes_*.S
unsafe extern "C" {
    fn ctc_record_this_thread() -> *mut CtcRecord;

    pub fn ctc_mix24(
        a: i8,
        b: u8,
        c: f32,
        d: i16,
        e: f64,
        f: u16,
        g: i32,
        h: f32,
        i: u32,
        j: i64,
        k: f64,
        l: u64,
        m: bool,
        n: *mut c_void,
        o: f32,
        p: i8,
        q: f64,
        r: u16,
        s: f32,
        t: i32,
        u: f64,
        v: bool,
        w: *const c_char,
        x: f64,
    ) -> i64;
    #[allow(clippy::too_many_arguments)]
    pub fn ctc_fp16_int8(
        a0: f32,
        a1: f64,
        a2: f32,
        a3: f64,
        a4: f32,
        a5: f64,
        a6: f32,
        a7: f64,
        a8: f32,
        a9: f64,
        a10: f32,
        a11: f64,
        a12: f32,
        a13: f64,
        a14: f32,
        a15: f64,
        b0: i8,
        b1: u8,
        b2: i16,
        b3: u16,
        b4: i32,
        b5: u32,
        b6: i64,
        b7: u64,
    ) -> f64;
    pub fn ctc_ptr24(
        p0: *mut c_void,
        p1: *mut c_void,
        p2: *mut c_void,
        p3: *mut c_void,
        p4: *mut c_void,
        p5: *mut c_void,
        p6: *mut c_void,
        p7: *mut c_void,
        p8: *mut c_void,
        p9: *mut c_void,
        p10: *mut c_void,
        p11: *mut c_void,
        p12: *mut c_void,
        p13: *mut c_void,
        p14: *mut c_void,
        p15: *mut c_void,
        p16: *mut c_void,
        p17: *mut c_void,
        p18: *mut c_void,
        p19: *mut c_void,
        p20: *mut c_void,
        p21: *mut c_void,
        p22: *mut c_void,
        p23: *mut c_void,
    ) -> u64;
    pub fn ctc_none() -> u64;
    pub fn ctc_ret_f32(a: f32, b: f64, c: i32) -> f32;
    pub fn ctc_ret_f64(a: f64, b: f32, c: i64) -> f64;
    pub fn ctc_ret_bool(x: u64, y: i8) -> bool;
    pub fn ctc_ret_i8(x: i32) -> i8;
    pub fn ctc_ret_u16(x: u32) -> u16;
    pub fn ctc_ret_ptr(base: *mut c_void, offset: usize) -> *mut c_void;
    pub fn ctc_ret_pair(a: u64, b: u64, scale: f64) -> PairU64;
    pub fn ctc_ret_i32x4(x: i32, y: i16, z: i8) -> I32x4;
    pub fn ctc_ret_int_dbl(i: i64, d: f64) -> IntDbl;
    pub fn ctc_ret_dbl_int(d: f64, i: i64) -> DblInt;
    /// Returns an `unsigned __int128`. Declared with [`U128Halves`] rather than
    /// `u128`: the two have the same return convention (two INTEGER eightbytes,
    /// rax then rdx), and Rust before 1.89 rejects `u128` in an `extern` block
    /// (`improper_ctypes`), which the MSRV build denies.
    pub fn ctc_ret_u128(hi: u64, lo: u64) -> U128Halves;
    pub fn ctc_va_sum(count: c_int, ...) -> i64;
    pub fn ctc_va_dsum(count: c_int, ...) -> f64;
    pub fn ctc_yield_mix(
        y: *mut Yielder,
        times: u64,
        a: i8,
        b: f64,
        c: u16,
        d: f32,
        e: i32,
        f: f64,
        g: u64,
        h: f32,
        i: i64,
        j: f64,
        k: bool,
        l: f32,
        m: u8,
        n: f64,
        o: i16,
        p: f32,
        q: u32,
        r: f64,
        s: *mut c_void,
        t: f32,
    ) -> f64;
    pub fn ctc_yield_rounding(y: *mut Yielder, mode: i32, times: u64) -> i32;
    pub fn ctc_yield_forever(y: *mut Yielder);
    pub fn ctc_sched_worker(s: *mut Sched, me: u64);
    pub fn ctc_sched_run(s: *mut Sched, seed: u64) -> u64;
    pub fn ctc_probe_child();
    pub fn ctc_leave_by_set(to: *mut ContextRegs, ran: *mut u64) -> !;
    pub fn ctc_corrupt_and_set(to: *mut ContextRegs, reg_xor: u64, ctl_xor: u32) -> !;
    /// `FE_TONEAREST`, `FE_DOWNWARD`, `FE_UPWARD`, `FE_TOWARDZERO` as this C
    /// library spells them.
    pub static ctc_fe_modes: [c_int; 4];
}

/// The calling thread's floating-point control state.
pub(crate) fn fp_control() -> FpControl {
    // SAFETY: the routine only reads the control registers (x86_64: storing
    // them in its red zone).
    let raw = unsafe { ctc_get_fp_control() };
    #[cfg(target_arch = "x86_64")]
    return FpControl { mxcsr: raw as u32, fpucw: (raw >> 32) as u16 };
    #[cfg(target_arch = "aarch64")]
    return FpControl { fpcr: raw };
}

/// Sets the calling thread's floating-point control state.
pub(crate) fn set_fp_control(ctl: FpControl) {
    // SAFETY: loading the control registers has no memory effect. On x86_64
    // a value with reserved MXCSR bits set would fault (#GP), which is a
    // test bug that kills the test loudly rather than corrupting anything;
    // on aarch64 FPCR bits the CPU lacks are ignored.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        ctc_set_fp_control(ctl.mxcsr, ctl.fpucw)
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        ctc_set_fp_control(ctl.fpcr)
    }
}

/// The C library's four rounding-mode values: to nearest, downward, upward,
/// toward zero.
pub fn fe_modes() -> [c_int; 4] {
    // SAFETY: a `const` array defined in children.c, never written.
    unsafe { ctc_fe_modes }
}

/// Calls a generated child's direct-call wrapper.
pub(crate) fn call_generated(call: unsafe extern "C" fn(*const u64, *mut u64), words: &[u64], ret: &mut u64) {
    // SAFETY: the caller checked that `words` has one word per parameter of
    // the child `call` wraps, which is all it reads; `ret` is one word.
    unsafe { call(words.as_ptr(), ret) }
}

/// Two words with 16-byte alignment: the unit a [`Stack`](crate::Stack) is
/// made of.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(16))]
pub struct Aligned16(pub [u64; 2]);

/// The words of a slice of [`Aligned16`].
pub(crate) fn aligned_words(mem: &mut [Aligned16]) -> &mut [u64] {
    let len = mem.len() * 2;
    // SAFETY: `Aligned16` is `repr(C)` around `[u64; 2]` with no padding
    // (size 16 = 2 words), so `mem` is `len` initialised, contiguous,
    // exclusively borrowed `u64`s.
    unsafe { core::slice::from_raw_parts_mut(mem.as_mut_ptr().cast::<u64>(), len) }
}
