//! Review of the inlined switch (`Context::swap` on x86_64): callers the
//! compiler lays out unusually (over-aligned locals that make it realign
//! the stack, many live values in a loop, closures, generic functions,
//! `#[inline(never)]` wrappers, AVX-512 values when the CPU has them),
//! control bits that differ in the lowest control bit (DAZ) only, the x87
//! control word with the two kinds of switch mixed, a context suspended on
//! one thread and resumed from another (its stack walks are not checked
//! there: the start routine's link names the parent given at init, whose
//! block is stale once another thread resumes the child, a documented
//! limit), and stack walks from a child whose host frame realigned its
//! stack.
#![cfg(target_arch = "x86_64")]

use std::hint::black_box;

use context::{Context, ContextHandle, Val};
use test_support::fp::{fpucw, mxcsr, set_fpucw, set_mxcsr};

#[repr(C, align(16))]
struct Stack([u64; 16384]);

fn stack() -> Box<Stack> {
    Box::new(Stack([0; 16384]))
}

/// How the child switches back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
enum Back {
    Inline = 0,
    OutOfLine = 1,
}

/// What a child reads: its own context, where to switch back to and how,
/// a counter it bumps per switch, and what it should do before switching.
#[repr(C)]
struct Shared {
    me: *mut Context,
    parent: *const Context,
    back: Back,
    bounces: u64,
    /// MXCSR the child loads before each switch back (0: leave it).
    child_mxcsr: u32,
    /// x87 control word the child loads before each switch back (0: leave).
    child_fpucw: u16,
    /// What the child found in MXCSR / the x87 control word when resumed.
    seen_mxcsr: u32,
    seen_fpucw: u16,
    /// Frames the child's stack walk found, and whether it reached the
    /// outermost frame of the thread that resumed it.
    walk: bool,
    walk_frames: i32,
    walk_last: u64,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            me: core::ptr::null_mut(),
            parent: core::ptr::null(),
            back: Back::Inline,
            bounces: 0,
            child_mxcsr: 0,
            child_fpucw: 0,
            seen_mxcsr: 0,
            seen_fpucw: 0,
            walk: false,
            walk_frames: 0,
            walk_last: 0,
        }
    }
}

unsafe extern "C" {
    /// glibc's `backtrace(3)`.
    fn backtrace(buffer: *mut *mut core::ffi::c_void, size: core::ffi::c_int) -> core::ffi::c_int;
}

const DEPTH: usize = 256;

/// The return address of the outermost frame of a walk from here, and the
/// number of frames.
#[inline(never)]
fn walk() -> (i32, u64) {
    let mut frames = [core::ptr::null_mut(); DEPTH];
    // SAFETY: `frames` holds DEPTH entries.
    let n = unsafe { backtrace(frames.as_mut_ptr(), DEPTH as i32) };
    let last = if n > 0 { frames[n as usize - 1] as u64 } else { 0 };
    (n, last)
}

/// Overwrites every general-purpose register an `asm!` block may name and
/// xmm0–xmm15 with `junk`.
#[inline(always)]
fn trash_registers(junk: u64) {
    // SAFETY: only registers declared clobbered are written; no memory is
    // touched, the stack is not used.
    unsafe {
        core::arch::asm!(
            "mov rax, {j}", "mov rcx, {j}", "mov rdx, {j}", "mov rsi, {j}", "mov rdi, {j}",
            "mov r8, {j}", "mov r9, {j}", "mov r10, {j}", "mov r11, {j}",
            "mov r12, {j}", "mov r13, {j}", "mov r14, {j}", "mov r15, {j}",
            "movq xmm0, {j}", "pshufd xmm0, xmm0, 0",
            "movdqa xmm1, xmm0", "movdqa xmm2, xmm0", "movdqa xmm3, xmm0", "movdqa xmm4, xmm0",
            "movdqa xmm5, xmm0", "movdqa xmm6, xmm0", "movdqa xmm7, xmm0", "movdqa xmm8, xmm0",
            "movdqa xmm9, xmm0", "movdqa xmm10, xmm0", "movdqa xmm11, xmm0", "movdqa xmm12, xmm0",
            "movdqa xmm13, xmm0", "movdqa xmm14, xmm0", "movdqa xmm15, xmm0",
            j = in(reg) junk,
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _, out("xmm4") _,
            out("xmm5") _, out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _,
            out("xmm10") _, out("xmm11") _, out("xmm12") _, out("xmm13") _, out("xmm14") _,
            out("xmm15") _,
            options(nomem, nostack),
        );
    }
}

/// With AVX-512: also every zmm register (all 32, full width) and k1–k7.
/// Compiled only when the build enables AVX-512F (`RUSTFLAGS="-C
/// target-cpu=native"` on such a CPU): `#[target_feature(enable =
/// "avx512f")]` and the AVX-512 intrinsics are newer than the MSRV.
#[cfg(target_feature = "avx512f")]
fn trash_avx512(junk: u64) {
    // SAFETY: only declared-clobbered registers are written; the build
    // targets a CPU with AVX-512F.
    unsafe {
        core::arch::asm!(
            "vpbroadcastq zmm0, {j}",
            "vmovdqa64 zmm1, zmm0", "vmovdqa64 zmm2, zmm0", "vmovdqa64 zmm3, zmm0",
            "vmovdqa64 zmm4, zmm0", "vmovdqa64 zmm5, zmm0", "vmovdqa64 zmm6, zmm0",
            "vmovdqa64 zmm7, zmm0", "vmovdqa64 zmm8, zmm0", "vmovdqa64 zmm9, zmm0",
            "vmovdqa64 zmm10, zmm0", "vmovdqa64 zmm11, zmm0", "vmovdqa64 zmm12, zmm0",
            "vmovdqa64 zmm13, zmm0", "vmovdqa64 zmm14, zmm0", "vmovdqa64 zmm15, zmm0",
            "vmovdqa64 zmm16, zmm0", "vmovdqa64 zmm17, zmm0", "vmovdqa64 zmm18, zmm0",
            "vmovdqa64 zmm19, zmm0", "vmovdqa64 zmm20, zmm0", "vmovdqa64 zmm21, zmm0",
            "vmovdqa64 zmm22, zmm0", "vmovdqa64 zmm23, zmm0", "vmovdqa64 zmm24, zmm0",
            "vmovdqa64 zmm25, zmm0", "vmovdqa64 zmm26, zmm0", "vmovdqa64 zmm27, zmm0",
            "vmovdqa64 zmm28, zmm0", "vmovdqa64 zmm29, zmm0", "vmovdqa64 zmm30, zmm0",
            "vmovdqa64 zmm31, zmm0",
            "kmovq k1, {j}", "kmovw k2, {j:e}", "kmovw k3, {j:e}", "kmovw k4, {j:e}",
            "kmovw k5, {j:e}", "kmovw k6, {j:e}", "kmovw k7, {j:e}",
            j = in(reg) junk,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
            out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _,
            out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _, out("zmm14") _,
            out("zmm15") _, out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _, out("zmm24") _,
            out("zmm25") _, out("zmm26") _, out("zmm27") _, out("zmm28") _, out("zmm29") _,
            out("zmm30") _, out("zmm31") _,
            out("k1") _, out("k2") _, out("k3") _, out("k4") _, out("k5") _, out("k6") _, out("k7") _,
            options(nomem, nostack),
        );
    }
}

/// Forever: record what it was resumed with, trash every register (and
/// the AVX-512 state when there is one), set its own float control if
/// asked, maybe walk its stack, and switch back the way `shared.back` says.
extern "C" fn child(shared: *mut Shared) -> ! {
    loop {
        // SAFETY: the tests keep `shared` and both contexts alive and
        // pinned while anything switches into this child.
        unsafe {
            let s = &mut *shared;
            s.bounces += 1;
            s.seen_mxcsr = mxcsr();
            s.seen_fpucw = fpucw();
            if s.walk {
                (s.walk_frames, s.walk_last) = walk();
            }
            if s.child_mxcsr != 0 {
                set_mxcsr(s.child_mxcsr);
            }
            if s.child_fpucw != 0 {
                set_fpucw(s.child_fpucw);
            }
            #[cfg(target_feature = "avx512f")]
            trash_avx512(0xa5a5_0000_0000_0000 | s.bounces);
            trash_registers(0xdead_beef_0000_0000 | s.bounces);
            let (me, parent) = (s.me, s.parent);
            match s.back {
                Back::Inline => Context::swap(&mut *me, &*parent),
                Back::OutOfLine => Context::swap_out_of_line(&mut *me, &*parent),
            }
        }
    }
}

/// A child running [`child`] and its parent, both heap-pinned.
struct Pair {
    _stack: Box<Stack>,
    parent: ContextHandle,
    child: ContextHandle,
    shared: Box<Shared>,
}

impl Pair {
    fn new() -> Pair {
        let mut stack = stack();
        let mut parent = ContextHandle::new();
        let mut shared = Box::new(Shared::new());
        let arg = [Val::CPtr(&mut *shared as *mut Shared as *const _)];
        let mut child =
            ContextHandle::create_and_init(&mut stack.0, &mut parent, child as *const () as usize, &arg).unwrap();
        shared.me = &mut *child;
        shared.parent = &*parent;
        Pair { _stack: stack, parent, child, shared }
    }

    /// One round trip into the child by the inlined switch.
    #[inline(always)]
    fn bounce(&mut self) {
        // SAFETY: heap-pinned contexts; the child only switches back to
        // `shared.parent`, which is `self.parent`.
        unsafe { Context::swap(&mut self.parent, &self.child) };
    }
}

fn pattern(seed: u64, i: usize) -> u64 {
    seed.rotate_left(i as u32 * 3 + 1) ^ (i as u64).wrapping_mul(0x0100_0000_01b3)
}

/// A local whose alignment makes the compiler realign the stack of every
/// frame that holds one (and address locals through rbp or rsp after an
/// `and rsp, -4096`).
#[repr(C, align(4096))]
struct Page([u64; 64]);

#[repr(C, align(64))]
struct Line([u64; 8]);

/// Over-aligned locals live across inlined switches, with the values
/// written before each switch and checked after it.
#[inline(never)]
fn realigned_host(pair: &mut Pair, rounds: u64) {
    let mut page = Page([0; 64]);
    let mut line = Line([0; 8]);
    let page_at = &page as *const Page as usize;
    let line_at = &line as *const Line as usize;
    assert_eq!(page_at % 4096, 0);
    assert_eq!(line_at % 64, 0);
    for round in 0..rounds {
        for (i, w) in page.0.iter_mut().enumerate() {
            *w = pattern(round, i);
        }
        for (i, w) in line.0.iter_mut().enumerate() {
            *w = pattern(!round, i);
        }
        black_box(&mut page);
        black_box(&mut line);
        pair.bounce();
        assert_eq!(black_box(&page) as *const Page as usize, page_at, "the page moved");
        assert_eq!(black_box(&line) as *const Line as usize, line_at, "the line moved");
        for (i, w) in page.0.iter().enumerate() {
            assert_eq!(*w, pattern(round, i), "page word {i} after round {round}");
        }
        for (i, w) in line.0.iter().enumerate() {
            assert_eq!(*w, pattern(!round, i), "line word {i} after round {round}");
        }
    }
}

#[test]
fn over_aligned_locals_survive_inlined_switches() {
    let mut pair = Pair::new();
    realigned_host(&mut pair, 500);
    assert_eq!(pair.shared.bounces, 500);
}

/// Thirty values live across each switch of a loop, each one produced by
/// `black_box` so that it must be kept (in callee-saved registers or the
/// frame), never recomputed.
#[inline(never)]
fn thirty_live_values(pair: &mut Pair, rounds: u64) {
    let seed = black_box(0x0123_4567_89ab_cdefu64);
    let v: [u64; 30] = core::array::from_fn(|i| black_box(pattern(seed, i)));
    let f: [f64; 10] = core::array::from_fn(|i| black_box(seed as f64 / (i as f64 + 1.5)));
    let mut acc = 0u64;
    for round in 0..rounds {
        pair.bounce();
        // Use every value after each switch, in a way the compiler cannot
        // fold into one expression computed before the switch.
        for (i, x) in v.iter().enumerate() {
            acc = acc.rotate_left(5) ^ x.wrapping_add(round + i as u64);
        }
        for x in &f {
            acc ^= x.to_bits();
        }
    }
    let mut want = 0u64;
    for round in 0..rounds {
        for i in 0..30 {
            want = want.rotate_left(5) ^ pattern(seed, i).wrapping_add(round + i as u64);
        }
        for i in 0..10 {
            want ^= (seed as f64 / (i as f64 + 1.5)).to_bits();
        }
    }
    assert_eq!(acc, want);
}

#[test]
fn thirty_values_live_across_switches_in_a_loop_survive() {
    let mut pair = Pair::new();
    thirty_live_values(&mut pair, 300);
}

/// The switch inside a generic function, a closure and an
/// `#[inline(never)]` wrapper: each is its own frame layout.
#[inline(never)]
fn generic_host<T: Copy + PartialEq + core::fmt::Debug>(pair: &mut Pair, values: [T; 12]) {
    let kept = black_box(values);
    for _ in 0..50 {
        pair.bounce();
        assert_eq!(black_box(kept), values);
    }
}

#[inline(never)]
fn bounce_never_inlined(pair: &mut Pair) {
    pair.bounce();
}

#[test]
fn switches_in_generic_functions_closures_and_wrappers_keep_values() {
    let mut pair = Pair::new();
    generic_host(&mut pair, core::array::from_fn(|i| i as u8 ^ 0x5a));
    generic_host(&mut pair, core::array::from_fn(|i| (i as u128) << 100 | 7));
    generic_host(&mut pair, core::array::from_fn(|i| i as f32 * 0.25));
    let captured: [u64; 8] = core::array::from_fn(|i| black_box(pattern(9, i)));
    let mut run = |n: u64| {
        for _ in 0..n {
            pair.bounce();
            assert_eq!(black_box(captured), core::array::from_fn(|i| pattern(9, i)));
        }
    };
    run(20);
    run(20);
    let before = pair.shared.bounces;
    let locals: [u64; 6] = core::array::from_fn(|i| black_box(pattern(3, i)));
    for _ in 0..20 {
        bounce_never_inlined(&mut pair);
    }
    assert_eq!(black_box(locals), core::array::from_fn(|i| pattern(3, i)));
    assert_eq!(pair.shared.bounces, before + 20);
}

/// 512-bit values live across inlined switches into a child that
/// overwrites all 32 zmm registers and k1–k7 (AVX-512F builds only, see
/// [`trash_avx512`]).
#[cfg(target_feature = "avx512f")]
#[allow(clippy::incompatible_msrv)] // compiled only where the build enables AVX-512F
fn avx512_host(pair: &mut Pair, rounds: u64) {
    use core::arch::x86_64::*;
    let lanes: [[i64; 8]; 4] = core::array::from_fn(|r| core::array::from_fn(|i| pattern(r as u64, i) as i64));
    // SAFETY: unaligned loads from live arrays of 8 i64s; the build
    // targets a CPU with AVX-512F.
    let z: [__m512i; 4] = core::array::from_fn(|r| unsafe { _mm512_loadu_si512(lanes[r].as_ptr().cast()) });
    let z = black_box(z);
    let mask: __mmask8 = black_box(0b1010_0110);
    for _ in 0..rounds {
        pair.bounce();
        for (r, want) in lanes.iter().enumerate() {
            let mut got = [0i64; 8];
            // SAFETY: an unaligned store into a live array of 8 i64s.
            unsafe { _mm512_storeu_si512(got.as_mut_ptr().cast(), z[r]) };
            assert_eq!(&got, want, "zmm value {r}");
        }
        assert_eq!(black_box(mask), 0b1010_0110);
    }
}

#[cfg(target_feature = "avx512f")]
#[test]
fn avx512_values_survive_a_child_that_trashes_the_avx512_state() {
    if context::valgrind::running_on_valgrind() {
        return;
    }
    let mut pair = Pair::new();
    avx512_host(&mut pair, 200);
}

const DEFAULT_MXCSR: u32 = 0x1f80;
const DAZ: u32 = 0x40;
const STATUS: u32 = 0x3f;

/// Valgrind's CPU does not model MXCSR control bits or the x87 precision.
fn fp_observable() -> bool {
    !context::valgrind::running_on_valgrind()
}

#[test]
fn denormals_are_zero_alone_is_a_control_bit_in_both_directions() {
    if !fp_observable() {
        return;
    }
    let before = mxcsr();
    let mut pair = Pair::new();
    // The child sets DAZ (bit 6, the lowest control bit) and nothing else;
    // the host runs with the default and an inexact flag.
    pair.shared.child_mxcsr = DEFAULT_MXCSR | DAZ;
    set_mxcsr(DEFAULT_MXCSR);
    pair.bounce(); // the child starts with the host's MXCSR, sets DAZ
    let host_after_first = mxcsr();
    set_mxcsr(DEFAULT_MXCSR | 0x20);
    pair.shared.child_mxcsr = 0;
    pair.bounce(); // the child must be resumed with its DAZ
    let seen = pair.shared.seen_mxcsr;
    let host_after_second = mxcsr();
    set_mxcsr(before);
    assert_eq!(host_after_first & !STATUS, DEFAULT_MXCSR, "the child's DAZ leaked into the host");
    assert_eq!(seen & !STATUS, DEFAULT_MXCSR | DAZ, "the child was resumed without its DAZ: {seen:#x}");
    assert_eq!(host_after_second & !STATUS, DEFAULT_MXCSR, "the host got the child's DAZ back: {host_after_second:#x}");
}

#[test]
fn x87_control_word_is_per_context_with_inline_and_out_of_line_switches_mixed() {
    if !fp_observable() {
        return;
    }
    let before = fpucw();
    let mut pair = Pair::new();
    for (round, back) in [Back::Inline, Back::OutOfLine, Back::OutOfLine, Back::Inline].into_iter().enumerate() {
        let host_word = 0x037f ^ ((round as u16 & 1) << 10); // rounding down on odd rounds
        let child_word = 0x027f | ((round as u16) << 10 & 0x0c00);
        set_fpucw(host_word);
        pair.shared.back = back;
        pair.shared.child_fpucw = child_word;
        if round % 2 == 0 {
            pair.bounce();
        } else {
            // SAFETY: heap-pinned contexts; the child only switches back.
            unsafe { Context::swap_out_of_line(&mut pair.parent, &pair.child) };
        }
        let host_after = fpucw();
        let seen = pair.shared.seen_fpucw;
        set_fpucw(before);
        assert_eq!(host_after, host_word, "round {round}: the host's word was not reloaded");
        if round > 0 {
            let prev_child = 0x027f | (((round - 1) as u16) << 10 & 0x0c00);
            assert_eq!(seen, prev_child, "round {round}: the child was resumed without its own word");
        }
    }
}

/// A `Shared` pointer that may cross threads (the test hands the pair
/// over whole and joins before touching it again).
struct SendPair(Pair);
// SAFETY: the pair's contexts are suspended whenever it moves, and only
// one thread at a time switches into them.
unsafe impl Send for SendPair {}

#[test]
fn a_child_suspended_on_one_thread_resumes_on_another() {
    let before = mxcsr();
    let mut pair = Pair::new();
    // The child runs with round-toward-zero; the threads with the default.
    pair.shared.child_mxcsr = DEFAULT_MXCSR | 0x6000;
    set_mxcsr(DEFAULT_MXCSR);
    pair.bounce();
    assert_eq!(mxcsr() & !STATUS, DEFAULT_MXCSR);
    set_mxcsr(before);
    let mut moved = SendPair(pair);
    for hop in 0..4u64 {
        moved = std::thread::spawn(move || {
            let mut p = moved;
            let pair = &mut p.0;
            // This thread's own parent context: the child switches back here.
            let mut here = ContextHandle::new();
            pair.shared.parent = &*here;
            let kept: [u64; 12] = core::array::from_fn(|i| black_box(pattern(hop, i)));
            let start = pair.shared.bounces;
            for _ in 0..25 {
                // SAFETY: heap-pinned contexts, suspended, switched into by
                // this thread only; the child switches back to `here`.
                unsafe { Context::swap(&mut here, &pair.child) };
                assert_eq!(mxcsr() & !STATUS, DEFAULT_MXCSR, "hop {hop}: the child's MXCSR leaked");
            }
            assert_eq!(black_box(kept), core::array::from_fn(|i| pattern(hop, i)), "hop {hop}");
            assert_eq!(pair.shared.bounces, start + 25);
            if fp_observable() {
                let seen = pair.shared.seen_mxcsr;
                assert_eq!(seen & !STATUS, DEFAULT_MXCSR | 0x6000, "hop {hop}: child resumed with {seen:#x}");
            }
            pair.shared.parent = core::ptr::null();
            p
        })
        .join()
        .unwrap();
    }
}

/// The child's stack walk, resumed from a host frame that realigned its
/// stack to 4096 bytes (CFA through rbp) and holds values across.
#[inline(never)]
fn realigned_walk_host(pair: &mut Pair) -> (i32, u64) {
    let mut page = Page([7; 64]);
    black_box(&mut page);
    pair.shared.walk = true;
    pair.bounce();
    pair.shared.walk = false;
    assert!(black_box(&page).0.iter().all(|&w| w == 7));
    (pair.shared.walk_frames, pair.shared.walk_last)
}

#[test]
fn a_childs_stack_walk_crosses_a_realigned_host_frame_to_the_thread_start() {
    let (_, outermost) = walk();
    let mut pair = Pair::new();
    pair.bounce();
    let (n, last) = realigned_walk_host(&mut pair);
    assert!(n > 3, "the child's walk found {n} frames");
    assert_eq!(last, outermost, "the child's walk stopped at {last:#x}, not the thread's start ({n} frames)");
}
