//! Hand-written C children run through the `context` crate and called
//! directly from Rust: the results must be the same bits.

mod common;

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;

use context::{Val, val_to_stack};
use context_tests_c::ffi::{self, Yielder};
use context_tests_c::{DEFAULT_FP_CONTROL, FpControl, fp_control_bits as fp_control, record};

use common::{Fresh, Shared, regs_of, run_in_context};

const SNAN_F32: u32 = 0x7f80_0001;
const NAN_F64_PAYLOAD: u64 = 0xfff4_0000_dead_beef;

#[test]
fn the_register_block_the_c_code_is_given_is_the_contexts() {
    // The tests hand C `&Context as *mut ContextRegs`: the block must be the
    // start of a `Context`, and what C reads there must be what Rust saved.
    let f = Fresh::new(32 * 1024, ffi::ctc_none as *const () as usize, &[]);
    // SAFETY: `regs_of` points into the live, heap-pinned context `f.child`;
    // nothing writes it during this read.
    let seen_by_c = unsafe { *regs_of(&f.child) };
    assert_eq!(seen_by_c, f.child.regs());
    assert_ne!(seen_by_c.stack_pointer(), 0, "init must have set the resume word");
    #[cfg(target_arch = "x86_64")]
    let (own, parent) = (seen_by_c.rbx, seen_by_c.r12);
    #[cfg(target_arch = "aarch64")]
    let (own, parent) = (seen_by_c.x19, seen_by_c.x20);
    assert_eq!(own, regs_of(&f.child) as u64, "rbx [x19] holds the child's own block");
    assert_eq!(parent, regs_of(&f.parent) as u64, "r12 [x20] holds the parent's block");
}

#[test]
fn every_scalar_type_interleaved_24_times_arrives_as_in_a_direct_call() {
    let p = 0xdead_beef_f00d_usize as *mut c_void;
    let w = c"w".as_ptr();
    let args = [
        Val::I8(i8::MIN),
        Val::U8(u8::MAX),
        Val::F32(f32::from_bits(SNAN_F32)),
        Val::I16(i16::MIN),
        Val::F64(-0.0),
        Val::U16(u16::MAX),
        Val::I32(i32::MIN),
        Val::F32(f32::from_bits(1)),
        Val::U32(u32::MAX),
        Val::I64(i64::MIN),
        Val::F64(f64::from_bits(NAN_F64_PAYLOAD)),
        Val::U64(u64::MAX),
        Val::Bool(true),
        Val::CPtr(p),
        Val::F32(f32::INFINITY),
        Val::I8(-1),
        Val::F64(f64::MAX),
        Val::U16(0x8000),
        Val::F32(-0.0),
        Val::I32(i32::MAX),
        Val::F64(f64::MIN_POSITIVE),
        Val::Bool(false),
        Val::CPtr(w.cast()),
        Val::F64(1.0),
    ];
    // SAFETY: ctc_mix24 only records its arguments; pointers are not read.
    let direct = unsafe {
        ffi::ctc_mix24(
            i8::MIN,
            u8::MAX,
            f32::from_bits(SNAN_F32),
            i16::MIN,
            -0.0,
            u16::MAX,
            i32::MIN,
            f32::from_bits(1),
            u32::MAX,
            i64::MIN,
            f64::from_bits(NAN_F64_PAYLOAD),
            u64::MAX,
            true,
            p,
            f32::INFINITY,
            -1,
            f64::MAX,
            0x8000,
            -0.0,
            i32::MAX,
            f64::MIN_POSITIVE,
            false,
            w,
            1.0,
        )
    };
    let direct_record = record();
    let expected: Vec<u64> = args.iter().map(val_to_stack).collect();
    assert_eq!(direct_record.args(), &expected[..], "the direct call itself disagrees with val_to_stack");

    let ret = run_in_context(ffi::ctc_mix24 as *const () as usize, &args);
    let via = record();
    assert_eq!(via.fn_id, 1001);
    assert_eq!(via.args(), direct_record.args());
    assert_eq!(ret.as_i64(), direct);
}

#[test]
fn sixteen_floats_then_eight_integers_spill_in_order() {
    let floats: Vec<f64> = (0..16).map(|i| (i as f64 - 7.5) * 1.25e-3).collect();
    let mut args: Vec<Val> =
        floats.iter().enumerate().map(|(i, &f)| if i % 2 == 0 { Val::F32(f as f32) } else { Val::F64(f) }).collect();
    args.extend([
        Val::I8(-100),
        Val::U8(200),
        Val::I16(-30000),
        Val::U16(60000),
        Val::I32(-2_000_000_000),
        Val::U32(4_000_000_000),
        Val::I64(-(1 << 60)),
        Val::U64(1 << 63),
    ]);
    let f = |i: usize| floats[i];
    // SAFETY: a pure function of its arguments.
    let direct = unsafe {
        ffi::ctc_fp16_int8(
            f(0) as f32,
            f(1),
            f(2) as f32,
            f(3),
            f(4) as f32,
            f(5),
            f(6) as f32,
            f(7),
            f(8) as f32,
            f(9),
            f(10) as f32,
            f(11),
            f(12) as f32,
            f(13),
            f(14) as f32,
            f(15),
            -100,
            200,
            -30000,
            60000,
            -2_000_000_000,
            4_000_000_000,
            -(1 << 60),
            1 << 63,
        )
    };
    let ret = run_in_context(ffi::ctc_fp16_int8 as *const () as usize, &args);
    assert_eq!(ret.as_f64().to_bits(), direct.to_bits());
}

#[test]
fn twenty_four_pointers_fill_the_integer_registers_and_spill_the_rest() {
    let ptrs: Vec<*mut c_void> =
        (0..24u64).map(|i| (i.wrapping_mul(0x0101_0101_0101_0101) ^ (i << 60)) as usize as *mut c_void).collect();
    let args: Vec<Val> = ptrs.iter().map(|&p| Val::from(p)).collect();
    let q = |i: usize| ptrs[i];
    // SAFETY: the pointers are only hashed, never read.
    let direct = unsafe {
        ffi::ctc_ptr24(
            q(0),
            q(1),
            q(2),
            q(3),
            q(4),
            q(5),
            q(6),
            q(7),
            q(8),
            q(9),
            q(10),
            q(11),
            q(12),
            q(13),
            q(14),
            q(15),
            q(16),
            q(17),
            q(18),
            q(19),
            q(20),
            q(21),
            q(22),
            q(23),
        )
    };
    assert_eq!(run_in_context(ffi::ctc_ptr24 as *const () as usize, &args).as_u64(), direct);
}

#[test]
fn a_child_without_parameters_runs() {
    // SAFETY: a constant function.
    let direct = unsafe { ffi::ctc_none() };
    assert_eq!(run_in_context(ffi::ctc_none as *const () as usize, &[]).as_u64(), direct);
}

#[test]
fn float_and_double_results_come_back_bit_exact_in_the_first_fp_register() {
    for (a, b, c) in [(1.5f32, 0.25f64, 3i32), (f32::from_bits(SNAN_F32), -0.0, 0), (f32::MAX, f64::MAX, i32::MIN)] {
        // SAFETY: pure functions of their arguments.
        let (d32, d64) = unsafe { (ffi::ctc_ret_f32(a, b, c), ffi::ctc_ret_f64(b, a, c.into())) };
        let r32 = run_in_context(ffi::ctc_ret_f32 as *const () as usize, &[a.into(), b.into(), c.into()]);
        let r64 = run_in_context(ffi::ctc_ret_f64 as *const () as usize, &[b.into(), a.into(), i64::from(c).into()]);
        assert_eq!(r32.as_f32().to_bits(), d32.to_bits(), "float result of ({a}, {b}, {c})");
        assert_eq!(r64.as_f64().to_bits(), d64.to_bits(), "double result of ({b}, {a}, {c})");
    }
}

#[test]
fn narrow_integer_bool_and_pointer_results_read_as_their_type() {
    for (x, y) in [(5000u64, -3i8), (10, -3), (5000, 7)] {
        // SAFETY: pure function.
        let d = unsafe { ffi::ctc_ret_bool(x, y) };
        assert_eq!(run_in_context(ffi::ctc_ret_bool as *const () as usize, &[x.into(), y.into()]).as_bool(), d);
    }
    for x in [0i32, 43, -43, i32::MAX] {
        // SAFETY: pure functions.
        let (d8, d16) = unsafe { (ffi::ctc_ret_i8(x), ffi::ctc_ret_u16(x as u32)) };
        assert_eq!(run_in_context(ffi::ctc_ret_i8 as *const () as usize, &[x.into()]).as_i8(), d8);
        assert_eq!(run_in_context(ffi::ctc_ret_u16 as *const () as usize, &[(x as u32).into()]).as_u16(), d16);
    }
    let base = 0x7000_0000_0000usize as *mut c_void;
    // SAFETY: pointer arithmetic only; nothing is dereferenced.
    let d = unsafe { ffi::ctc_ret_ptr(base, 0x123) };
    assert_eq!(
        run_in_context(ffi::ctc_ret_ptr as *const () as usize, &[base.into(), 0x123usize.into()]).as_usize(),
        d as usize
    );
}

#[test]
fn two_integer_eightbyte_structs_come_back_in_the_two_integer_return_registers() {
    // SAFETY: pure functions.
    let pair = unsafe { ffi::ctc_ret_pair(7, u64::MAX - 1, 2.9) };
    let f = Fresh::new(
        32 * 1024,
        ffi::ctc_ret_pair as *const () as usize,
        &[7u64.into(), (u64::MAX - 1).into(), 2.9f64.into()],
    );
    let mut f = f;
    f.resume();
    assert_eq!((f.child.get_retval_gp(0), f.child.get_retval_gp(1)), (pair.lo, pair.hi));

    // SAFETY: pure function.
    let quad = unsafe { ffi::ctc_ret_i32x4(-5, 300, -2) };
    let mut f = Fresh::new(
        32 * 1024,
        ffi::ctc_ret_i32x4 as *const () as usize,
        &[(-5i32).into(), 300i16.into(), (-2i8).into()],
    );
    f.resume();
    let (rax, rdx) = (f.child.get_retval_gp(0), f.child.get_retval_gp(1));
    assert_eq!(
        (rax as u32 as i32, (rax >> 32) as i32, rdx as u32 as i32, (rdx >> 32) as i32),
        (quad.a, quad.b, quad.c, quad.d)
    );

    // SAFETY: pure function.
    let wide = unsafe { ffi::ctc_ret_u128(0x0123_4567_89ab_cdef, u64::MAX) }.get();
    // The C child computes (hi << 64 | lo) * 3 + 1; a wrong half would not match.
    assert_eq!(wide, ((0x0123_4567_89ab_cdef_u128 << 64) | u128::from(u64::MAX)).wrapping_mul(3) + 1);
    let mut f = Fresh::new(
        32 * 1024,
        ffi::ctc_ret_u128 as *const () as usize,
        &[0x0123_4567_89ab_cdefu64.into(), u64::MAX.into()],
    );
    f.resume();
    assert_eq!(u128::from(f.child.get_retval_gp(0)) | (u128::from(f.child.get_retval_gp(1)) << 64), wide);
}

/// x86_64: a struct of an INTEGER and an SSE eightbyte comes back in rax
/// and xmm0, whatever their order.
#[cfg(target_arch = "x86_64")]
#[test]
fn mixed_class_structs_come_back_in_rax_and_xmm0() {
    // SAFETY: pure functions.
    let (id, di) = unsafe { (ffi::ctc_ret_int_dbl(-9, 10.0), ffi::ctc_ret_dbl_int(-2.5, 1 << 40)) };
    let r = run_in_context(ffi::ctc_ret_int_dbl as *const () as usize, &[(-9i64).into(), 10.0f64.into()]);
    assert_eq!((r.as_i64(), r.as_f64()), (id.i, id.d));
    let r = run_in_context(ffi::ctc_ret_dbl_int as *const () as usize, &[(-2.5f64).into(), (1i64 << 40).into()]);
    assert_eq!((r.as_i64(), r.as_f64()), (di.i, di.d));
}

/// aarch64: a 16-byte struct that is not a homogeneous floating-point
/// aggregate comes back whole in x0:x1, in memory order, a double as its
/// bits; nothing of it is in v0.
#[cfg(target_arch = "aarch64")]
#[test]
fn mixed_class_structs_come_back_whole_in_x0_and_x1() {
    // SAFETY: pure functions.
    let (id, di) = unsafe { (ffi::ctc_ret_int_dbl(-9, 10.0), ffi::ctc_ret_dbl_int(-2.5, 1 << 40)) };
    let mut f = Fresh::new(32 * 1024, ffi::ctc_ret_int_dbl as *const () as usize, &[(-9i64).into(), 10.0f64.into()]);
    f.resume();
    let (x0, x1) = (f.child.get_retval_gp(0), f.child.get_retval_gp(1));
    assert_eq!((x0 as i64, f64::from_bits(x1)), (id.i, id.d));
    let mut f =
        Fresh::new(32 * 1024, ffi::ctc_ret_dbl_int as *const () as usize, &[(-2.5f64).into(), (1i64 << 40).into()]);
    f.resume();
    let (x0, x1) = (f.child.get_retval_gp(0), f.child.get_retval_gp(1));
    assert_eq!((f64::from_bits(x0), x1 as i64), (di.d, di.i));
}

#[test]
fn variadic_children_find_register_and_stack_arguments() {
    let ints: Vec<i64> = (1..=10).map(|i| i * -1_000_003).collect();
    // SAFETY: count matches the number of int64_t arguments that follow.
    let direct = unsafe {
        ffi::ctc_va_sum(10, ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6], ints[7], ints[8], ints[9])
    };
    let mut args = vec![Val::I32(10)];
    args.extend(ints.iter().map(|&i| Val::I64(i)));
    assert_eq!(run_in_context(ffi::ctc_va_sum as *const () as usize, &args).as_i64(), direct);

    let ds: Vec<f64> = (0..12).map(|i| 1.0 / (i as f64 + 1.5)).collect();
    // SAFETY: count matches the number of double arguments that follow.
    let direct = unsafe {
        ffi::ctc_va_dsum(12, ds[0], ds[1], ds[2], ds[3], ds[4], ds[5], ds[6], ds[7], ds[8], ds[9], ds[10], ds[11])
    };
    let mut args = vec![Val::I32(12)];
    args.extend(ds.iter().map(|&d| Val::F64(d)));
    assert_eq!(run_in_context(ffi::ctc_va_dsum as *const () as usize, &args).as_f64().to_bits(), direct.to_bits());
}

/// The 18 arguments of ctc_yield_mix after (yielder, times).
fn yield_mix_args(k: u8) -> Vec<Val> {
    let s = 0x1234_5678usize as *const c_void;
    vec![
        Val::I8(-(k as i8)),
        Val::F64(0.5 + f64::from(k)),
        Val::U16(60000 + u16::from(k)),
        Val::F32(-1.25),
        Val::I32(-7 * i32::from(k)),
        Val::F64(3.0e10),
        Val::U64(u64::MAX - u64::from(k)),
        Val::F32(2.5),
        Val::I64(i64::MIN + i64::from(k)),
        Val::F64(-0.125),
        Val::Bool(k % 2 == 1),
        Val::F32(1.0e-3),
        Val::U8(k),
        Val::F64(7.0),
        Val::I16(-300),
        Val::F32(f32::from(k)),
        Val::U32(0xfeed_beef),
        Val::F64(1.0e-300),
        Val::CPtr(s),
        Val::F32(-8.5),
    ]
}

/// ctc_yield_mix called directly (never yielding) with `yield_mix_args(k)`.
fn yield_mix_direct(k: u8, times: u64) -> f64 {
    let a = yield_mix_args(k);
    let mut no_yield = Yielder { this: ptr::null_mut(), parent: ptr::null_mut(), yielded: 0, yields: 0 };
    macro_rules! arg {
        ($i:expr, $v:ident) => {
            match a[$i] {
                Val::$v(x) => x,
                other => panic!("argument {} is {other:?}", $i),
            }
        };
    }
    // SAFETY: a null `this` means the child never switches; the pointer
    // argument is only hashed.
    unsafe {
        ffi::ctc_yield_mix(
            &mut no_yield,
            times,
            arg!(0, I8),
            arg!(1, F64),
            arg!(2, U16),
            arg!(3, F32),
            arg!(4, I32),
            arg!(5, F64),
            arg!(6, U64),
            arg!(7, F32),
            arg!(8, I64),
            arg!(9, F64),
            arg!(10, Bool),
            arg!(11, F32),
            arg!(12, U8),
            arg!(13, F64),
            arg!(14, I16),
            arg!(15, F32),
            arg!(16, U32),
            arg!(17, F64),
            arg!(18, CPtr).cast_mut(),
            arg!(19, F32),
        )
    }
}

/// A yielding child in a fresh context, wired to yield to its parent.
fn yielding_child(entry: usize, head: &[Val], tail: Vec<Val>) -> (Fresh, Shared<Yielder>) {
    let y = Shared::new(Yielder { this: ptr::null_mut(), parent: ptr::null_mut(), yielded: 0, yields: 0 });
    let mut args = vec![Val::CPtr(y.ptr().cast_const().cast())];
    args.extend_from_slice(head);
    args.extend(tail);
    let f = Fresh::new(64 * 1024, entry, &args);
    let (this, parent) = (regs_of(&f.child), regs_of(&f.parent));
    y.update(|y| {
        y.this = this;
        y.parent = parent;
    });
    (f, y)
}

#[test]
fn a_yielding_child_keeps_its_arguments_and_locals_across_every_switch() {
    let times = 9;
    let (mut f, y) = yielding_child(ffi::ctc_yield_mix as *const () as usize, &[Val::U64(times)], yield_mix_args(3));
    let mut seen = Vec::new();
    for k in 1..=times {
        f.resume();
        assert_eq!(y.get().yields, k, "the child did not yield exactly once per resume");
        seen.push(y.get().yielded);
    }
    seen.dedup();
    assert_eq!(seen.len() as u64, times, "each yield carries a new value");
    f.resume();
    assert_eq!(y.get().yields, times, "the last resume must return, not yield");
    assert_eq!(f.child.get_untyped_retval().as_f64().to_bits(), yield_mix_direct(3, times).to_bits());
}

#[test]
fn two_yielding_children_interleaved_each_keep_their_own_state() {
    let times = 6;
    let (mut a, ya) = yielding_child(ffi::ctc_yield_mix as *const () as usize, &[Val::U64(times)], yield_mix_args(1));
    let (mut b, yb) = yielding_child(ffi::ctc_yield_mix as *const () as usize, &[Val::U64(times)], yield_mix_args(2));
    for k in 1..=times {
        a.resume();
        b.resume();
        assert_eq!((ya.get().yields, yb.get().yields), (k, k));
    }
    a.resume();
    b.resume();
    assert_eq!(a.child.get_untyped_retval().as_f64().to_bits(), yield_mix_direct(1, times).to_bits());
    assert_eq!(b.child.get_untyped_retval().as_f64().to_bits(), yield_mix_direct(2, times).to_bits());
}

#[test]
fn each_context_keeps_its_own_rounding_mode_across_switches() {
    assert_eq!(fp_control(), DEFAULT_FP_CONTROL, "the test thread should start with the default control state");
    let [_nearest, downward, upward, toward_zero] = ffi::fe_modes();
    let times = 5;
    for mode in [downward, upward, toward_zero] {
        let (mut f, y) =
            yielding_child(ffi::ctc_yield_rounding as *const () as usize, &[Val::I32(mode), Val::U64(times)], vec![]);
        for k in 1..=times {
            f.resume();
            assert_eq!(y.get().yields, k);
            // The parent still rounds to nearest: 1/3 down, 1/10 up.
            assert_eq!(fp_control(), DEFAULT_FP_CONTROL, "mode {mode:#x} leaked into the parent");
            assert_eq!((black_box(1.0f64) / black_box(3.0)).to_bits(), 0x3fd5_5555_5555_5555);
            assert_eq!((black_box(1.0f64) / black_box(10.0)).to_bits(), 0x3fb9_9999_9999_999a);
        }
        f.resume();
        assert_eq!(f.child.get_untyped_retval().as_i32(), times as i32, "mode {mode:#x} was lost in the child");
        assert_eq!(fp_control(), DEFAULT_FP_CONTROL);
    }
}

#[test]
fn a_child_that_never_returns_can_be_resumed_then_abandoned() {
    let (mut f, y) = yielding_child(ffi::ctc_yield_forever as *const () as usize, &[], vec![]);
    for k in 1..=100 {
        f.resume();
        assert_eq!(y.get().yielded, k);
    }
    // Dropping `f` frees the stack and both contexts; nothing runs again.
    drop(f);
}

#[test]
fn a_child_can_leave_with_context_sys_set() {
    let ran = Shared::new(0u64);
    let mut stack = context_tests_c::Stack::new(32 * 1024);
    let mut host = context::ContextHandle::new();
    let host_regs = regs_of(&host);
    let child = context::ContextHandle::create_and_init(
        stack.as_mut_slice(),
        &mut host,
        ffi::ctc_leave_by_set as *const () as usize,
        &[Val::CPtr(host_regs.cast_const().cast()), Val::CPtr(ran.ptr().cast_const().cast())],
    )
    .expect("valid child");
    // SAFETY: the child continues in `host`, which this call has just saved;
    // the stack outlives the child's run.
    let lost = unsafe { ffi::swap_checked(host_regs, regs_of(&child), 0x5e7, FpControl::variant(3)) };
    assert_eq!(lost, 0, "state lost across a switch back by set: {lost:#x}");
    assert_eq!(ran.get(), 1);
    assert_eq!(fp_control(), DEFAULT_FP_CONTROL);
}
