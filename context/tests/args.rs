//! Arguments and return values: every `Val` variant, 0 to 40 mixed
//! arguments in the exact registers and stack slots the System V ABI
//! (aarch64: AAPCS64) names, stack alignment at entry, and every class of
//! return value.

mod common;

use common::TestStack;
use context::{Context, ContextHandle, UntypedRetVal, Val};
use std::arch::global_asm;
use std::sync::Mutex;

// ---------------------------------------------------------------------------
// An assembly probe that records the machine state at a child's entry.
// ---------------------------------------------------------------------------

/// Words recorded above the return address at entry (the spilled arguments
/// and whatever follows them).
const STACK_WORDS: usize = 41;
/// Integer argument registers of the ABI, written down here independently
/// of the crate: rdi, rsi, rdx, rcx, r8, r9 (aarch64: x0–x7).
#[cfg(target_arch = "x86_64")]
const ABI_GP: usize = 6;
#[cfg(target_arch = "aarch64")]
const ABI_GP: usize = 8;
/// Floating argument registers: xmm0–xmm7 (aarch64: v0–v7).
const ABI_FP: usize = 8;
/// What is added to the stack pointer at entry to get an address the ABI
/// wants 16-aligned: x86_64's call pushed a return address (rsp + 8 is
/// aligned, the first spilled argument at rsp + 8); aarch64's `blr` pushes
/// nothing (sp is aligned, the first spilled argument at sp).
#[cfg(target_arch = "x86_64")]
const ENTRY_SP_BIAS: u64 = 8;
#[cfg(target_arch = "aarch64")]
const ENTRY_SP_BIAS: u64 = 0;

/// Layout of `ENTRY_RECORD`: the integer argument registers | the floating
/// ones (low 64 bits) | the stack pointer | STACK_WORDS words starting at
/// the first spilled argument's slot.
const REC_GP: usize = 0;
const REC_XMM: usize = ABI_GP;
const REC_RSP: usize = ABI_GP + ABI_FP;
const REC_STACK: usize = REC_RSP + 1;

static mut ENTRY_RECORD: [u64; REC_STACK + STACK_WORDS] = [0; REC_STACK + STACK_WORDS];
/// The probe writes one global record; tests that use it hold this lock.
static RECORDER: Mutex<()> = Mutex::new(());

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".p2align 4",
    ".globl ctx_test_record_entry",
    ".type ctx_test_record_entry, @function",
    "ctx_test_record_entry:",
    ".cfi_startproc",
    "lea {rec}(%rip), %rax",
    "mov %rdi, 0(%rax)",
    "mov %rsi, 8(%rax)",
    "mov %rdx, 16(%rax)",
    "mov %rcx, 24(%rax)",
    "mov %r8, 32(%rax)",
    "mov %r9, 40(%rax)",
    "movq %xmm0, 48(%rax)",
    "movq %xmm1, 56(%rax)",
    "movq %xmm2, 64(%rax)",
    "movq %xmm3, 72(%rax)",
    "movq %xmm4, 80(%rax)",
    "movq %xmm5, 88(%rax)",
    "movq %xmm6, 96(%rax)",
    "movq %xmm7, 104(%rax)",
    "mov %rsp, 112(%rax)",
    "xor %ecx, %ecx",
    "2:",
    "mov 8(%rsp,%rcx,8), %rdx",
    "mov %rdx, 120(%rax,%rcx,8)",
    "inc %rcx",
    "cmp ${words}, %rcx",
    "jb 2b",
    // Return rdi ^ 0x1111 in rax, rsi in rdx and xmm1 in xmm0, so the
    // return path is checked too.
    "mov %rdi, %rax",
    "xor $0x1111, %rax",
    "mov %rsi, %rdx",
    "movaps %xmm1, %xmm0",
    "ret",
    ".cfi_endproc",
    ".size ctx_test_record_entry, .-ctx_test_record_entry",
    rec = sym ENTRY_RECORD,
    words = const STACK_WORDS,
    options(att_syntax),
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".p2align 4",
    ".globl ctx_test_record_entry",
    ".type ctx_test_record_entry, %function",
    "ctx_test_record_entry:",
    ".cfi_startproc",
    "hint #34", // bti c: reached by blr
    "adrp x9, {rec}",
    "add x9, x9, :lo12:{rec}",
    // x0-x7 at 0..56, d0-d7 at 64..120, sp at 128, stack words from 136.
    "stp x0, x1, [x9, #0]",
    "stp x2, x3, [x9, #16]",
    "stp x4, x5, [x9, #32]",
    "stp x6, x7, [x9, #48]",
    "stp d0, d1, [x9, #64]",
    "stp d2, d3, [x9, #80]",
    "stp d4, d5, [x9, #96]",
    "stp d6, d7, [x9, #112]",
    "mov x10, sp",
    "str x10, [x9, #128]",
    "add x13, x9, #136",
    "mov x11, #0",
    "2:",
    "ldr x12, [x10, x11, lsl #3]",
    "str x12, [x13, x11, lsl #3]",
    "add x11, x11, #1",
    "cmp x11, #{words}",
    "b.lo 2b",
    // Return x0 ^ 0x1111 in x0, x1 in x1 and v1 in v0, so the return path
    // is checked too.
    "mov x11, #0x1111",
    "eor x0, x0, x11",
    "mov v0.16b, v1.16b",
    "ret",
    ".cfi_endproc",
    ".size ctx_test_record_entry, .-ctx_test_record_entry",
    rec = sym ENTRY_RECORD,
    words = const STACK_WORDS,
);
#[cfg(target_arch = "aarch64")]
const _: () = assert!(REC_STACK * 8 == 136, "the aarch64 probe's offsets");

unsafe extern "C" {
    fn ctx_test_record_entry();
}

fn read_record() -> [u64; REC_STACK + STACK_WORDS] {
    // SAFETY: the probe wrote the record on this thread before the child
    // returned to us, and the RECORDER lock keeps other tests out.
    unsafe { (&raw const ENTRY_RECORD).read_volatile() }
}

/// The 64-bit word the ABI puts in a register or stack slot for `v`,
/// computed independently of the crate's own conversion.
fn abi_word(v: &Val) -> (bool, u64) {
    match *v {
        Val::CPtr(p) => (false, p as u64),
        Val::GuestPtr(x) | Val::U32(x) => (false, x as u64),
        Val::U8(x) => (false, x as u64),
        Val::U16(x) => (false, x as u64),
        Val::U64(x) => (false, x),
        Val::I8(x) => (false, x as i64 as u64),
        Val::I16(x) => (false, x as i64 as u64),
        Val::I32(x) => (false, x as i64 as u64),
        Val::I64(x) => (false, x as u64),
        Val::USize(x) => (false, x as u64),
        Val::ISize(x) => (false, x as i64 as u64),
        Val::Bool(x) => (false, x as u64),
        Val::F32(x) => (true, x.to_bits() as u64),
        Val::F64(x) => (true, x.to_bits()),
        // `Val` is #[non_exhaustive]: a variant added later must get its
        // own independent ABI word here before this oracle can judge it.
        other => panic!("no independent ABI word for {other:?}"),
    }
}

/// A deterministic mix of every variant, with extremes and NaN payloads.
fn mixed_args(n: usize, seed: u64) -> Vec<Val> {
    let mut x = seed;
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = x >> 11;
            match (r as usize + i) % 15 {
                0 => Val::CPtr(r as usize as *const std::ffi::c_void),
                1 => Val::GuestPtr(r as u32 | 0x8000_0000),
                2 => Val::U8(r as u8),
                3 => Val::U16(u16::MAX - (r % 3) as u16),
                4 => Val::U32(r as u32),
                5 => Val::U64(u64::MAX - r % 7),
                6 => Val::I8(r as i8 | i8::MIN),
                7 => Val::I16(i16::MIN + (r % 5) as i16),
                8 => Val::I32(-(r as i32 & 0x7fff_ffff)),
                9 => Val::I64(i64::MIN + (r % 11) as i64),
                10 => Val::USize(r as usize),
                11 => Val::ISize(-(r as isize & 0xffff)),
                12 => Val::Bool(r & 1 == 1),
                13 => Val::F32(f32::from_bits(0x7fc0_0000 | r as u32 & 0x3f_ffff)),
                _ => Val::F64(f64::from_bits(0xfff0_0000_0000_0001 | r & 0xf_ffff_ffff)),
            }
        })
        .collect()
}

/// Runs the probe with `args` and checks every register, every spilled
/// slot, the alignment at entry, and that nothing outside the stack moved.
fn check_placement(args: &[Val]) {
    const GUARD: usize = 64;
    let mut backing = TestStack::new(4096);
    let whole = backing.slice();
    let len = whole.len();
    whole.fill(0xdead_beef_dead_beef);
    let (stack, above) = whole.split_at_mut(len - GUARD);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    Context::init(stack, &mut parent, &mut child, ctx_test_record_entry as *const () as usize, args).expect("init");
    // SAFETY: both contexts are heap-pinned, the stack outlives the run, and
    // the probe returns normally.
    unsafe { Context::swap(&mut parent, &child) };
    let rec = read_record();
    assert!(above.iter().all(|&w| w == 0xdead_beef_dead_beef), "init or the child wrote above the stack's top");

    let (mut gp, mut fp, mut spilled) = (Vec::new(), Vec::new(), Vec::new());
    for a in args {
        let (is_float, w) = abi_word(a);
        if is_float && fp.len() < ABI_FP {
            fp.push(w);
        } else if !is_float && gp.len() < ABI_GP {
            gp.push(w);
        } else {
            spilled.push(w);
        }
    }
    assert_eq!(&rec[REC_GP..REC_GP + gp.len()], &gp[..], "integer registers for {} args", args.len());
    assert_eq!(&rec[REC_XMM..REC_XMM + fp.len()], &fp[..], "xmm registers for {} args", args.len());
    assert_eq!(&rec[REC_STACK..REC_STACK + spilled.len()], &spilled[..], "stack slots for {} args", args.len());
    assert_eq!((rec[REC_RSP] + ENTRY_SP_BIAS) % 16, 0, "stack misaligned at entry with {} spilled", spilled.len());

    // The return path stored rax, rdx and xmm0 (aarch64: x0, x1, q0).
    let ret = child.get_untyped_retval();
    assert_eq!(ret.as_u64(), rec[REC_GP] ^ 0x1111);
    assert_eq!(child.get_retval_gp(1), rec[REC_GP + 1]);
    assert_eq!(ret.fp_bits().0, rec[REC_XMM + 1]);
}

#[test]
fn zero_to_forty_mixed_arguments_land_in_abi_registers_and_slots() {
    let _g = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    for n in 0..=40 {
        for seed in [1, 2, 3] {
            check_placement(&mixed_args(n, seed * 1000 + n as u64));
        }
    }
}

#[test]
fn entry_stack_is_aligned_for_every_spill_count_from_zero_to_nine() {
    let _g = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    for spills in 0..=9usize {
        // Integer-only and float-only lists, so the spill count is exact.
        let ints: Vec<Val> = (0..(ABI_GP + spills) as u64).map(Val::U64).collect();
        let floats: Vec<Val> = (0..ABI_FP + spills).map(|i| Val::F64(i as f64)).collect();
        for args in [ints, floats] {
            check_placement(&args);
            let rec = read_record();
            assert_eq!((rec[REC_RSP] + ENTRY_SP_BIAS) % 16, 0, "{spills} spilled");
        }
    }
}

#[test]
fn floats_and_ints_beyond_their_registers_interleave_on_the_stack_in_order() {
    let _g = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    let mut args = Vec::new();
    for i in 0..10u64 {
        args.push(Val::U64(100 + i));
        args.push(Val::F64(i as f64 + 0.5));
    }
    check_placement(&args);
    let rec = read_record();
    // x86_64: ints 106..109 and floats 8.5, 9.5 spill, in argument order:
    // 6.5 and 7.5 still fit in xmm6 and xmm7 between 106 and 108.
    #[cfg(target_arch = "x86_64")]
    let expect = [106, 107, 108, 8.5f64.to_bits(), 109, 9.5f64.to_bits()];
    // aarch64: x0-x7 take 100..107, so ints 108, 109 and floats 8.5, 9.5.
    #[cfg(target_arch = "aarch64")]
    let expect = [108, 8.5f64.to_bits(), 109, 9.5f64.to_bits()];
    assert_eq!(&rec[REC_STACK..REC_STACK + expect.len()], &expect[..]);
}

// ---------------------------------------------------------------------------
// Children compiled by rustc: the compiler is the oracle for what it receives.
// ---------------------------------------------------------------------------

trait AbiBits: Copy {
    fn bits(self) -> u64;
    fn from_val(v: &Val) -> Self;
}

macro_rules! abi_bits {
    ($($ty:ty => $variant:ident, $bits:expr);* $(;)?) => {
        $(
            impl AbiBits for $ty {
                fn bits(self) -> u64 {
                    let f: fn($ty) -> u64 = $bits;
                    f(self)
                }
                fn from_val(v: &Val) -> $ty {
                    match *v {
                        Val::$variant(x) => x,
                        ref other => panic!("expected {}, got {other:?}", stringify!($variant)),
                    }
                }
            }
        )*
    };
}

abi_bits! {
    u8 => U8, |x| x as u64;
    u16 => U16, |x| x as u64;
    u32 => U32, |x| x as u64;
    u64 => U64, |x| x;
    i8 => I8, |x| x as i64 as u64;
    i16 => I16, |x| x as i64 as u64;
    i32 => I32, |x| x as i64 as u64;
    i64 => I64, |x| x as u64;
    usize => USize, |x| x as u64;
    isize => ISize, |x| x as i64 as u64;
    bool => Bool, |x| x as u64;
    f32 => F32, |x| x.to_bits() as u64;
    f64 => F64, |x| x.to_bits();
}

/// Defines `extern "C" fn $name(args) -> u64` hashing its arguments' bits in
/// order, and `$direct(&[Val]) -> u64` calling it directly with the same
/// values.
macro_rules! checksum_fn {
    ($name:ident, $direct:ident; $($arg:ident : $ty:ty),* $(,)?) => {
        #[allow(clippy::too_many_arguments)]
        extern "C" fn $name($($arg: $ty),*) -> u64 {
            #[allow(unused_mut)]
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            $( h = (h ^ AbiBits::bits($arg)).wrapping_mul(0x0100_0000_01b3); )*
            h
        }
        #[allow(unused_variables, unused_mut)]
        fn $direct(vals: &[Val]) -> u64 {
            let mut it = vals.iter();
            $name($( <$ty as AbiBits>::from_val(it.next().expect("enough values")) ),*)
        }
    };
}

checksum_fn!(mixed0, mixed0_direct; );
checksum_fn!(mixed1, mixed1_direct; a0: i8);
checksum_fn!(mixed5, mixed5_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32);
checksum_fn!(mixed6, mixed6_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64);
checksum_fn!(mixed7, mixed7_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool);
checksum_fn!(mixed8, mixed8_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16);
checksum_fn!(mixed9, mixed9_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64);
checksum_fn!(mixed13, mixed13_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32);
checksum_fn!(mixed14, mixed14_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize);
checksum_fn!(mixed15, mixed15_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize, a14: f64);
checksum_fn!(mixed16, mixed16_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize, a14: f64, a15: isize);
checksum_fn!(mixed17, mixed17_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize, a14: f64, a15: isize, a16: i8);
checksum_fn!(mixed23, mixed23_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize, a14: f64, a15: isize, a16: i8, a17: u16, a18: f32, a19: i32, a20: i8, a21: f64, a22: u16);
checksum_fn!(mixed24, mixed24_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize, a14: f64, a15: isize, a16: i8, a17: u16, a18: f32, a19: i32, a20: i8, a21: f64, a22: u16, a23: i32);
checksum_fn!(mixed31, mixed31_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize, a14: f64, a15: isize, a16: i8, a17: u16, a18: f32, a19: i32, a20: i8, a21: f64, a22: u16, a23: i32, a24: f32, a25: u64, a26: bool, a27: i16, a28: f64, a29: u8, a30: i64);
checksum_fn!(mixed40, mixed40_direct; a0: i8, a1: f64, a2: u16, a3: i32, a4: f32, a5: u64, a6: bool, a7: i16, a8: f64, a9: u8, a10: i64, a11: f32, a12: u32, a13: usize, a14: f64, a15: isize, a16: i8, a17: u16, a18: f32, a19: i32, a20: i8, a21: f64, a22: u16, a23: i32, a24: f32, a25: u64, a26: bool, a27: i16, a28: f64, a29: u8, a30: i64, a31: f32, a32: u32, a33: usize, a34: f64, a35: isize, a36: i8, a37: u16, a38: f32, a39: i32);
/// (function, direct caller, parameter count) for each mixed signature.
type Mixed = (usize, fn(&[Val]) -> u64, usize);
fn mixed() -> Vec<Mixed> {
    vec![
        (mixed0 as *const () as usize, mixed0_direct, 0),
        (mixed1 as *const () as usize, mixed1_direct, 1),
        (mixed5 as *const () as usize, mixed5_direct, 5),
        (mixed6 as *const () as usize, mixed6_direct, 6),
        (mixed7 as *const () as usize, mixed7_direct, 7),
        (mixed8 as *const () as usize, mixed8_direct, 8),
        (mixed9 as *const () as usize, mixed9_direct, 9),
        (mixed13 as *const () as usize, mixed13_direct, 13),
        (mixed14 as *const () as usize, mixed14_direct, 14),
        (mixed15 as *const () as usize, mixed15_direct, 15),
        (mixed16 as *const () as usize, mixed16_direct, 16),
        (mixed17 as *const () as usize, mixed17_direct, 17),
        (mixed23 as *const () as usize, mixed23_direct, 23),
        (mixed24 as *const () as usize, mixed24_direct, 24),
        (mixed31 as *const () as usize, mixed31_direct, 31),
        (mixed40 as *const () as usize, mixed40_direct, 40),
    ]
}
/// The type of each parameter position in the mixed signatures.
const MIXED_TYPES: &[&str] = &[
    "i8", "f64", "u16", "i32", "f32", "u64", "bool", "i16", "f64", "u8", "i64", "f32", "u32", "usize", "f64", "isize",
    "i8", "u16", "f32", "i32",
];

fn value_of_type(ty: &str, i: u64) -> Val {
    let r = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    match ty {
        "i8" => Val::I8(-((i % 100) as i8) - 1),
        "u8" => Val::U8(0xff - (i % 200) as u8),
        "i16" => Val::I16(-300 - (i % 1000) as i16),
        "u16" => Val::U16(0xfff0 + (i % 16) as u16),
        "i32" => Val::I32(-(r as i32 & 0x7fff_ffff)),
        "u32" => Val::U32(r as u32),
        "i64" => Val::I64(-(r as i64 & 0x7fff_ffff_ffff)),
        "u64" => Val::U64(r),
        "usize" => Val::USize(r as usize),
        "isize" => Val::ISize(-(r as isize & 0xffff)),
        "bool" => Val::Bool(i % 2 == 1),
        "f32" => Val::F32(f32::from_bits(0x7fa0_0000 | r as u32 & 0xffff)),
        "f64" => Val::F64(-(i as f64) - 0.25),
        other => unreachable!("no type {other}"),
    }
}

fn run_child(fptr: usize, args: &[Val]) -> UntypedRetVal {
    let mut stack = TestStack::new(8192);
    let mut parent = ContextHandle::new();
    let child = ContextHandle::create_and_init(stack.slice(), &mut parent, fptr, args).expect("init");
    // SAFETY: contexts are heap-pinned and the stack outlives the run.
    unsafe { Context::swap(&mut parent, &child) };
    child.get_untyped_retval()
}

#[test]
fn rust_children_with_zero_to_forty_mixed_parameters_see_what_a_direct_call_sees() {
    for (fptr, direct, n) in mixed() {
        for seed in 0..4u64 {
            let args: Vec<Val> =
                (0..n).map(|i| value_of_type(MIXED_TYPES[i % MIXED_TYPES.len()], seed * 64 + i as u64)).collect();
            assert_eq!(run_child(fptr, &args).as_u64(), direct(&args), "{n} parameters, seed {seed}");
        }
    }
}

checksum_fn!(every_variant, every_variant_direct;
    a: u8, b: u16, c: u32, d: u64, e: i8, f: i16, g: i32, h: i64,
    i: usize, j: isize, k: bool, l: f32, m: f64, n: u32, o: u64, p: bool);

extern "C" fn ptr_identity(p: *const u8, q: *const u8) -> u64 {
    (p as u64) ^ (q as u64).rotate_left(7)
}

#[test]
fn every_val_variant_reaches_a_rust_child_with_its_type() {
    let args = [
        Val::U8(0xfe),
        Val::U16(0xfffe),
        Val::U32(0xffff_fffe),
        Val::U64(u64::MAX),
        Val::I8(-128),
        Val::I16(-2),
        Val::I32(i32::MIN),
        Val::I64(-1),
        Val::USize(usize::MAX),
        Val::ISize(isize::MIN),
        Val::Bool(true),
        Val::F32(-0.0),
        Val::F64(f64::from_bits(0x7ff8_dead_beef_0001)),
        Val::U32(0x8000_0000),
        Val::U64(0),
        Val::Bool(false),
    ];
    assert_eq!(run_child(every_variant as *const () as usize, &args).as_u64(), every_variant_direct(&args));

    let x = [1u8, 2];
    let (p, q) = (&x[0] as *const u8, &x[1] as *const u8);
    let r = run_child(ptr_identity as *const () as usize, &[Val::from(p), Val::CPtr(q.cast())]);
    assert_eq!(r.as_u64(), ptr_identity(p, q));
    let r = run_child(ptr_identity as *const () as usize, &[Val::GuestPtr(0xffff_fff0), Val::GuestPtr(7)]);
    assert_eq!(r.as_u64(), 0xffff_fff0 ^ 7u64.rotate_left(7));
}

extern "C" fn neg_i8(x: i8) -> i64 {
    x as i64
}
extern "C" fn neg_i16(x: i16) -> i64 {
    x as i64
}
extern "C" fn not_bool(x: bool) -> bool {
    !x
}

#[test]
fn negative_narrow_integers_and_bools_arrive_extended() {
    for v in [-1i8, -128, 127, 0] {
        assert_eq!(run_child(neg_i8 as *const () as usize, &[Val::I8(v)]).as_i64(), v as i64);
    }
    for v in [-1i16, i16::MIN, i16::MAX] {
        assert_eq!(run_child(neg_i16 as *const () as usize, &[Val::I16(v)]).as_i64(), v as i64);
    }
    assert!(!run_child(not_bool as *const () as usize, &[Val::Bool(true)]).as_bool());
    assert!(run_child(not_bool as *const () as usize, &[Val::Bool(false)]).as_bool());
}

#[repr(C)]
struct Pair {
    lo: u64,
    hi: u64,
}

extern "C" fn ret_pair(a: u64, b: u64) -> Pair {
    Pair { lo: a.wrapping_mul(3), hi: !b }
}
extern "C" fn ret_f32(a: f32) -> f32 {
    a * 2.0
}
extern "C" fn ret_f64(a: f64, b: f64) -> f64 {
    a - b
}
extern "C" fn ret_i32(a: i32) -> i32 {
    a - 1
}
extern "C" fn ret_u8(a: u8) -> u8 {
    a.wrapping_add(1)
}
extern "C" fn ret_ptr(p: *const u8) -> *const u8 {
    p.wrapping_add(3)
}
extern "C" fn ret_nothing(_: u64) {}

#[test]
fn return_values_of_every_class_are_collected() {
    let mut stack = TestStack::new(8192);
    let mut parent = ContextHandle::new();
    let child = ContextHandle::create_and_init(
        stack.slice(),
        &mut parent,
        ret_pair as *const () as usize,
        &[Val::U64(5), Val::U64(0)],
    )
    .expect("init");
    // SAFETY: contexts are heap-pinned and the stack outlives the run.
    unsafe { Context::swap(&mut parent, &child) };
    assert_eq!((child.get_retval_gp(0), child.get_retval_gp(1)), (15, u64::MAX), "rax:rdx pair");
    assert_eq!(child.retval_gp(1), Ok(u64::MAX));

    assert_eq!(run_child(ret_f32 as *const () as usize, &[Val::F32(1.25)]).as_f32(), 2.5);
    assert_eq!(run_child(ret_f64 as *const () as usize, &[Val::F64(1.0), Val::F64(0.125)]).as_f64(), 0.875);
    assert_eq!(run_child(ret_i32 as *const () as usize, &[Val::I32(i32::MIN + 1)]).as_i32(), i32::MIN);
    assert_eq!(run_child(ret_u8 as *const () as usize, &[Val::U8(255)]).as_u8(), 0);
    let base = [0u8; 8];
    let r = run_child(ret_ptr as *const () as usize, &[Val::from(base.as_ptr())]);
    assert_eq!(r.as_usize(), base.as_ptr() as usize + 3);
    run_child(ret_nothing as *const () as usize, &[Val::U64(1)]);
}

#[test]
fn clear_retvals_zeroes_all_three_registers() {
    let mut stack = TestStack::new(8192);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::create_and_init(
        stack.slice(),
        &mut parent,
        ret_pair as *const () as usize,
        &[Val::U64(1), Val::U64(1)],
    )
    .expect("init");
    // SAFETY: contexts are heap-pinned and the stack outlives the run.
    unsafe { Context::swap(&mut parent, &child) };
    assert_ne!(child.get_retval_gp(1), 0);
    child.clear_retvals();
    assert_eq!((child.get_retval_gp(0), child.get_retval_gp(1), child.get_untyped_retval().fp_bits()), (0, 0, (0, 0)));
}
