//! Helpers shared by the integration tests: turning words into `Val`s and
//! back, value strategies with extremes and NaN payloads, running an entry
//! function in a fresh context, and the proptest configuration.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::hash_map::RandomState;
use std::ffi::c_void;
use std::hash::BuildHasher;
use std::io::Write as _;

use context::{Context, ContextHandle, UntypedRetVal, Val};
use context_sys::ContextRegs;
use context_tests_c::{CType, Stack};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The register block of a context, as the C side sees it (`Context` is
/// `repr(C)` with its register block first).
pub fn regs_of(ctx: &Context) -> *mut ContextRegs {
    (ctx as *const Context).cast_mut().cast()
}

/// The argument of type `ty` whose canonical 64-bit word is `w`.
pub fn val_for(ty: CType, w: u64) -> Val {
    val_for_at(ty, w, 0)
}

/// As [`val_for`], but for argument number `index`, which picks among the
/// `Val` variants that stand for the same C type (`USize`/`U64`,
/// `ISize`/`I64`, `GuestPtr`/`U32`) so that every variant meets the oracle.
pub fn val_for_at(ty: CType, w: u64, index: usize) -> Val {
    match (ty, index % 3) {
        (CType::U64, 1) => return Val::USize(w as usize),
        (CType::I64, 1) => return Val::ISize(w as i64 as isize),
        (CType::U32, 1) => return Val::GuestPtr(w as u32),
        _ => {}
    }
    match ty {
        CType::Void => panic!("void is not an argument type"),
        CType::I8 => Val::I8(w as i8),
        CType::U8 => Val::U8(w as u8),
        CType::I16 => Val::I16(w as i16),
        CType::U16 => Val::U16(w as u16),
        CType::I32 => Val::I32(w as i32),
        CType::U32 => Val::U32(w as u32),
        CType::I64 => Val::I64(w as i64),
        CType::U64 => Val::U64(w),
        CType::Bool => Val::Bool(w & 1 != 0),
        CType::F32 => Val::F32(f32::from_bits(w as u32)),
        CType::F64 => Val::F64(f64::from_bits(w)),
        CType::Ptr => Val::CPtr(w as usize as *const c_void),
    }
}

/// The result of type `ty` read from a context's return registers, as the
/// canonical word a generated child's direct-call wrapper reports.
pub fn retval_word(ty: CType, r: UntypedRetVal) -> u64 {
    match ty {
        CType::Void => 0,
        CType::I8 => r.as_i8() as i64 as u64,
        CType::U8 => u64::from(r.as_u8()),
        CType::I16 => r.as_i16() as i64 as u64,
        CType::U16 => u64::from(r.as_u16()),
        CType::I32 => r.as_i32() as i64 as u64,
        CType::U32 => u64::from(r.as_u32()),
        CType::I64 => r.as_i64() as u64,
        CType::U64 | CType::Ptr => r.as_u64(),
        CType::Bool => u64::from(r.as_bool()),
        CType::F32 => u64::from(r.as_f32().to_bits()),
        CType::F64 => r.as_f64().to_bits(),
    }
}

/// Float bit patterns that matter: zeros, infinities, the largest and
/// smallest normals, denormals, quiet and signalling NaNs with payloads.
pub const F32_SPECIAL: [u32; 14] = [
    0x0000_0000,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7f7f_ffff,
    0x0080_0000,
    0x0000_0001,
    0x807f_ffff,
    0x7fc0_0000,
    0xffc0_0001,
    0x7f80_0001,
    0x7fbf_ffff,
    0xff80_1234,
    0x3f80_0000,
];

/// As [`F32_SPECIAL`], for doubles.
pub const F64_SPECIAL: [u64; 14] = [
    0x0000_0000_0000_0000,
    0x8000_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7fef_ffff_ffff_ffff,
    0x0010_0000_0000_0000,
    0x0000_0000_0000_0001,
    0x800f_ffff_ffff_ffff,
    0x7ff8_0000_0000_0000,
    0xfff8_0000_dead_beef,
    0x7ff0_0000_0000_0001,
    0x7ff7_ffff_ffff_ffff,
    0xfff4_0000_0000_1234,
    0x3ff0_0000_0000_0000,
];

/// Canonical words of values of type `ty`: extremes, zero, minus one and
/// special float patterns often, anything else otherwise.
pub fn arb_word(ty: CType) -> BoxedStrategy<u64> {
    fn ints<T: Arbitrary + Copy + core::fmt::Debug + 'static>(
        extremes: [T; 4],
        widen: fn(T) -> u64,
    ) -> BoxedStrategy<u64> {
        prop_oneof![1 => proptest::sample::select(extremes.to_vec()), 2 => any::<T>()].prop_map(widen).boxed()
    }
    match ty {
        CType::Void => Just(0).boxed(),
        CType::I8 => ints([i8::MIN, i8::MAX, 0, -1], |x| x as i64 as u64),
        CType::U8 => ints([u8::MIN, u8::MAX, 1, 0x80], u64::from),
        CType::I16 => ints([i16::MIN, i16::MAX, 0, -1], |x| x as i64 as u64),
        CType::U16 => ints([u16::MIN, u16::MAX, 1, 0x8000], u64::from),
        CType::I32 => ints([i32::MIN, i32::MAX, 0, -1], |x| x as i64 as u64),
        CType::U32 => ints([u32::MIN, u32::MAX, 1, 0x8000_0000], u64::from),
        CType::I64 => ints([i64::MIN, i64::MAX, 0, -1], |x| x as u64),
        CType::U64 | CType::Ptr => ints([u64::MIN, u64::MAX, 1, 1 << 63], |x| x),
        CType::Bool => any::<bool>().prop_map(u64::from).boxed(),
        CType::F32 => prop_oneof![1 => proptest::sample::select(F32_SPECIAL.to_vec()), 1 => any::<u32>()]
            .prop_map(u64::from)
            .boxed(),
        CType::F64 => prop_oneof![1 => proptest::sample::select(F64_SPECIAL.to_vec()), 1 => any::<u64>()].boxed(),
    }
}

/// The C spelling of a type, for messages.
pub fn c_name(ty: CType) -> &'static str {
    match ty {
        CType::Void => "void",
        CType::I8 => "int8_t",
        CType::U8 => "uint8_t",
        CType::I16 => "int16_t",
        CType::U16 => "uint16_t",
        CType::I32 => "int32_t",
        CType::U32 => "uint32_t",
        CType::I64 => "int64_t",
        CType::U64 => "uint64_t",
        CType::Bool => "bool",
        CType::F32 => "float",
        CType::F64 => "double",
        CType::Ptr => "void *",
    }
}

/// A fresh context on its own stack, with a parent, not yet started.
pub struct Fresh {
    pub stack: Stack,
    pub parent: ContextHandle,
    pub child: ContextHandle,
}

impl Fresh {
    /// Prepares `entry(args...)` on a new stack of `stack_bytes` bytes.
    pub fn new(stack_bytes: usize, entry: usize, args: &[Val]) -> Fresh {
        let mut stack = Stack::new(stack_bytes);
        let mut parent = ContextHandle::new();
        let child = ContextHandle::create_and_init(stack.as_mut_slice(), &mut parent, entry, args)
            .expect("a valid entry, arguments and stack");
        Fresh { stack, parent, child }
    }

    /// Switches to the child until it switches back or returns.
    pub fn resume(&mut self) {
        // SAFETY: the child was prepared on `self.stack`, which lives as long
        // as `self`; both contexts are heap-pinned handles; the tests only
        // resume a child that has not returned yet.
        unsafe { Context::swap(&mut self.parent, &self.child) }
    }

    /// Runs the child to completion (it must not switch back early) and
    /// returns its result registers.
    pub fn run(mut self) -> UntypedRetVal {
        self.resume();
        self.child.get_untyped_retval()
    }
}

/// Runs `entry(args...)` in a fresh context to completion.
pub fn run_in_context(entry: usize, args: &[Val]) -> UntypedRetVal {
    Fresh::new(64 * 1024, entry, args).run()
}

/// The proptest configuration of test `name`: `PROPTEST_CASES` cases
/// (default `default_cases`) from seed `PROPTEST_RNG_SEED` (default: a new
/// random one). The seed is printed up front, bypassing the test harness's
/// output capture, so that even a run that dies of a signal can be replayed;
/// proptest itself prints the minimal failing input on an ordinary failure.
/// (Its regression files are off: they cannot find this crate's source from
/// an integration test, and the printed seed replays the whole run.)
pub fn config(name: &str, default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| RandomState::new().hash_one(name));
    let _ = writeln!(
        std::io::stderr(),
        "{name}: {cases} cases, seed {seed} (replay: PROPTEST_RNG_SEED={seed} PROPTEST_CASES={cases})"
    );
    Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() }
}

/// A value on the heap that C code writes through a raw pointer while Rust
/// is switched away, read back with copies only (never a reference that
/// could be held across a switch).
pub struct Shared<T: Copy>(Box<std::cell::UnsafeCell<T>>);

impl<T: Copy> Shared<T> {
    pub fn new(v: T) -> Shared<T> {
        Shared(Box::new(std::cell::UnsafeCell::new(v)))
    }

    /// The pointer to hand to C; stable for the value's life.
    pub fn ptr(&self) -> *mut T {
        self.0.get()
    }

    pub fn get(&self) -> T {
        // SAFETY: the tests are single-threaded per value and C code only
        // writes it while this thread runs that code (switched away from
        // here), so no write overlaps this read.
        unsafe { *self.0.get() }
    }

    pub fn update(&self, f: impl FnOnce(&mut T)) {
        // SAFETY: as in `get`; the `&mut` lives only for this call.
        f(unsafe { &mut *self.0.get() })
    }
}
