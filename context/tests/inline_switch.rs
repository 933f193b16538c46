//! The inlined switch (`Context::swap` on x86_64, `context_sys::swap_inline`)
//! against what a caller may do around it: keep many values live across it
//! while the other side trashes every register it may, mix it with the
//! assembly's out-of-line switch in both directions, change the x87 control
//! word on one side only, and take signals (with a backtrace from inside
//! the handler) at arbitrary instructions of the switch.
#![cfg(target_arch = "x86_64")]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use context::{Context, ContextHandle, Val};
use test_support::fp::{fpucw, set_fpucw};

#[repr(C, align(16))]
struct Stack([u64; 8192]);

fn stack() -> Box<Stack> {
    Box::new(Stack([0; 8192]))
}

/// How the child switches back to its parent.
#[derive(Clone, Copy)]
#[repr(u64)]
enum Back {
    Inline = 0,
    OutOfLine = 1,
}

/// What the child of [`bouncing_child`] reads: its own context, its
/// parent's, how to switch back, and a counter it bumps per switch.
#[repr(C)]
struct Shared {
    me: *mut Context,
    parent: *const Context,
    back: Back,
    bounces: u64,
}

/// Overwrites every general-purpose register an `asm!` block may name
/// (all but rsp, rbx, rbp) and xmm0–xmm15 with `junk`, and tells the
/// compiler so.
#[inline(always)]
fn trash_registers(junk: u64) {
    // SAFETY: only registers declared clobbered are written; no memory is
    // touched, the stack is not used, the flags are changed (not declared
    // preserved).
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

/// Forever: trash every register, then switch back the way `shared.back`
/// says.
extern "C" fn bouncing_child(shared: *mut Shared) -> ! {
    loop {
        // SAFETY: the test keeps `shared` and both contexts alive and
        // pinned while anything switches into this child.
        unsafe {
            (*shared).bounces += 1;
            trash_registers(0xdead_beef_0000_0000 | (*shared).bounces);
            match (*shared).back {
                Back::Inline => Context::swap(&mut *(*shared).me, &*(*shared).parent),
                Back::OutOfLine => Context::swap_out_of_line(&mut *(*shared).me, &*(*shared).parent),
            }
        }
    }
}

fn expected_ints(seed: u64) -> [u64; 16] {
    core::array::from_fn(|i| seed.rotate_left(i as u32 * 4) ^ i as u64)
}

fn expected_floats(seed: u64) -> [f64; 8] {
    core::array::from_fn(|i| (seed >> 40) as f64 + i as f64 / 3.0)
}

/// Runs `rounds` round trips into a bouncing child, with 16 integers and 8
/// doubles live across every switch, each switch chosen by `host_inline`
/// and `child_back`; checks the values after each one.
fn live_values_survive(rounds: u64, host_inline: impl Fn(u64) -> bool, child_back: impl Fn(u64) -> Back) {
    let mut stack = stack();
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    let mut shared = Shared { me: &mut *child, parent: &*parent, back: Back::Inline, bounces: 0 };
    let arg = [Val::CPtr(&mut shared as *mut Shared as *const _)];
    Context::init(&mut stack.0, &mut parent, &mut child, bouncing_child as *const () as usize, &arg).unwrap();

    let seed = 0x9e37_79b9_7f4a_7c15u64;
    // Each value comes out of `black_box`, so the compiler can neither fold
    // it nor recompute it after a switch: it must keep it, in a register
    // or in the frame, across every switch.
    let ints = expected_ints(seed).map(black_box);
    let floats = expected_floats(seed).map(black_box);
    for round in 0..rounds {
        shared.back = child_back(round);
        if host_inline(round) {
            // SAFETY: heap-pinned contexts; the child only switches back.
            unsafe { Context::swap(&mut parent, &child) };
        } else {
            // SAFETY: as above.
            unsafe { Context::swap_out_of_line(&mut parent, &child) };
        }
        // The kept values against ones computed afresh from an opaque seed.
        let seed = black_box(seed);
        assert_eq!(black_box(ints), expected_ints(seed), "integers after round {round}");
        let now = black_box(floats).map(f64::to_bits);
        assert_eq!(now, expected_floats(seed).map(f64::to_bits), "doubles after round {round}");
        assert_eq!(shared.bounces, round + 1);
    }
}

#[test]
fn live_values_survive_a_child_that_trashes_every_register() {
    live_values_survive(1000, |_| true, |_| Back::Inline);
}

#[test]
fn inline_and_out_of_line_switches_resume_each_other() {
    // Every combination, in an order that makes each kind of switch resume
    // a context suspended by the other kind.
    live_values_survive(1000, |r| r % 2 == 0, |r| if r % 4 < 2 { Back::OutOfLine } else { Back::Inline });
}

/// Sets the x87 control word to `want`, records the one it found, and
/// switches back; forever.
extern "C" fn x87_child(shared: *mut Shared, seen: *mut u16) -> ! {
    loop {
        // SAFETY: the test keeps `shared`, `seen` and both contexts alive.
        unsafe {
            seen.write(fpucw());
            set_fpucw(0x027f); // precision control: 53-bit instead of 64-bit
            Context::swap(&mut *(*shared).me, &*(*shared).parent);
        }
    }
}

#[test]
fn the_x87_control_word_is_per_context_in_both_directions() {
    if context::valgrind::running_on_valgrind() {
        return; // valgrind's CPU does not model the precision control
    }
    let before = fpucw();
    set_fpucw(0x037f);
    let mut stack = stack();
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    let mut shared = Shared { me: &mut *child, parent: &*parent, back: Back::Inline, bounces: 0 };
    let mut seen = 0u16;
    let args = [Val::CPtr(&mut shared as *mut Shared as *const _), Val::CPtr(&mut seen as *mut u16 as *const _)];
    Context::init(&mut stack.0, &mut parent, &mut child, x87_child as *const () as usize, &args).unwrap();
    // SAFETY: heap-pinned contexts; the child only switches back.
    unsafe { Context::swap(&mut parent, &child) };
    let host_after_first = fpucw();
    assert_eq!(seen, 0x037f, "the child starts with the control word of init");
    // The host changes its own word; the child's (0x027f) must come back
    // when it is resumed, and the host's when the child switches back.
    set_fpucw(0x0c7f);
    // SAFETY: as above.
    unsafe { Context::swap(&mut parent, &child) };
    let host_after_second = fpucw();
    set_fpucw(before);
    assert_eq!(host_after_first, 0x037f, "the child's word leaked into the host");
    assert_eq!(seen, 0x027f, "the child's own word was not loaded when it was resumed");
    assert_eq!(host_after_second, 0x0c7f, "the host's word was not loaded when the child switched back");
}

/// Backtraces taken by the handler; those that did not reach the thread's
/// outermost frame; the address that frame has (from a walk before the
/// test).
static BACKTRACES: AtomicU64 = AtomicU64::new(0);
static INCOMPLETE: AtomicU64 = AtomicU64::new(0);
static OUTERMOST: AtomicU64 = AtomicU64::new(0);
const DEPTH: usize = 256;

/// What `_Unwind_Find_FDE` fills in besides its answer.
#[repr(C)]
struct DwarfEhBases {
    tbase: *mut core::ffi::c_void,
    dbase: *mut core::ffi::c_void,
    func: *mut core::ffi::c_void,
}

unsafe extern "C" {
    /// glibc's `backtrace(3)`: walks the caller's stack with the unwinder.
    fn backtrace(buffer: *mut *mut core::ffi::c_void, size: core::ffi::c_int) -> core::ffi::c_int;
    /// libgcc's lookup of the unwind rules (FDE) covering `pc`; null when
    /// no rules cover it.
    fn _Unwind_Find_FDE(pc: *mut core::ffi::c_void, bases: *mut DwarfEhBases) -> *const core::ffi::c_void;
}

/// Walks that started at code with no unwind rules at all (a PLT stub a
/// debug build calls memset through, say): no walk can go on from there,
/// whatever the switch does, so they are not judged.
static UNCOVERED: AtomicU64 = AtomicU64::new(0);

/// The return address of the outermost frame of a walk from here.
fn outermost_frame() -> u64 {
    let mut frames = [core::ptr::null_mut(); DEPTH];
    // SAFETY: `frames` holds DEPTH entries.
    let n = unsafe { backtrace(frames.as_mut_ptr(), DEPTH as i32) };
    assert!(n > 1 && (n as usize) < DEPTH, "a walk from the test found {n} frames");
    frames[n as usize - 1] as u64
}

/// Where the first incomplete walks were interrupted (pc), for the report.
static INCOMPLETE_AT: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

extern "C" fn walk_the_stack(_: nix::libc::c_int, _: *mut nix::libc::siginfo_t, uc: *mut core::ffi::c_void) {
    let mut frames = [core::ptr::null_mut(); DEPTH];
    // SAFETY: `frames` holds DEPTH entries. backtrace(3) was called before
    // the handler was installed, so libgcc is loaded and the walk
    // allocates nothing; it only reads unwind tables and stack memory.
    let n = unsafe { backtrace(frames.as_mut_ptr(), DEPTH as i32) };
    // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler.
    let pc = unsafe { (*uc.cast::<nix::libc::ucontext_t>()).uc_mcontext.gregs[nix::libc::REG_RIP as usize] };
    let mut bases =
        DwarfEhBases { tbase: core::ptr::null_mut(), dbase: core::ptr::null_mut(), func: core::ptr::null_mut() };
    // SAFETY: a lookup in the loaded objects' unwind tables (libgcc was
    // loaded by the first backtrace); `bases` is writable.
    if unsafe { _Unwind_Find_FDE(pc as *mut core::ffi::c_void, &mut bases) }.is_null() {
        UNCOVERED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // A walk through correct unwind rules, wherever the signal landed (in
    // the host, in the child, or in the middle of a switch between them),
    // goes through the handler's frame, the interrupted code, the
    // context link and the host's frames down to the thread's start.
    if n < 2 || n as usize == DEPTH || frames[n as usize - 1] as u64 != OUTERMOST.load(Ordering::Relaxed) {
        let k = INCOMPLETE.fetch_add(1, Ordering::Relaxed) as usize;
        if k < INCOMPLETE_AT.len() {
            INCOMPLETE_AT[k].store(pc as u64, Ordering::Relaxed);
        }
    }
    BACKTRACES.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn stack_walks_from_signals_anywhere_in_the_switches_reach_the_thread_start() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    // Loads libgcc's unwinder before the handler needs it, and finds the
    // thread's outermost frame.
    OUTERMOST.store(outermost_frame(), Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::SigAction(walk_the_stack),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    // SAFETY: the handler only walks the stack and bumps atomics. SIGURG
    // is used by nothing else in this test binary (its default is to
    // ignore it, so a stray one after the test is harmless).
    let old = unsafe { sigaction(Signal::SIGURG, &action) }.unwrap();

    let target = nix::sys::pthread::pthread_self();
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // The test thread lives until `done` is set and this joined.
                nix::sys::pthread::pthread_kill(target, Signal::SIGURG).unwrap();
                std::thread::yield_now();
            }
        })
    };
    // Switch until enough signals have landed (or 20 s have passed); under
    // valgrind, which delivers them far more slowly, fewer.
    let want = if context::valgrind::running_on_valgrind() { 300 } else { test_support::scale(20_000) as u64 };
    let deadline = Instant::now() + Duration::from_secs(20);
    while BACKTRACES.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        live_values_survive(10_000, |r| r % 8 != 7, |r| if r % 16 == 5 { Back::OutOfLine } else { Back::Inline });
    }
    done.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    // SAFETY: puts back the disposition found above.
    unsafe { sigaction(Signal::SIGURG, &old) }.unwrap();
    let (walks, incomplete) = (BACKTRACES.load(Ordering::Relaxed), INCOMPLETE.load(Ordering::Relaxed));
    // Under valgrind on a loaded machine few signals land in the time
    // allowed (26 in 20 s seen, 4 once with two other builds running); the
    // walks that did land are still judged, and at least one must.
    let floor = if context::valgrind::running_on_valgrind() { 1 } else { 100 };
    assert!(walks >= floor, "only {walks} signals landed");
    // Relative to a function of this test, so they can be looked up in
    // the binary's symbols (`nm`).
    let base = outermost_frame as fn() -> u64 as usize as i64;
    let at: Vec<String> = INCOMPLETE_AT
        .iter()
        .take(incomplete as usize)
        .map(|a| format!("outermost_frame{:+#x}", a.load(Ordering::Relaxed) as i64 - base))
        .collect();
    assert_eq!(
        incomplete, 0,
        "{incomplete} of {walks} stack walks from inside the switches stopped early; interrupted at {at:?}"
    );
}
