//! The raw routines on their own, without the safe layer: a fresh context
//! prepared by hand exactly as `include/context_sys.h` describes (boot
//! frame, resume slot of `layout::RESUME_SP_STEP` bytes, the two block
//! addresses, the FP control state), started with more arguments than the
//! argument registers hold, switched away from and back into, and finished.
//! The same test runs on x86_64 and, under qemu-user, on aarch64 (`cargo
//! xtask aarch64`), so it checks the ABI facts that differ between them:
//! which arguments travel in registers, which on the stack, and where the
//! return registers land.

use std::cell::UnsafeCell;

use context_sys::{BootFrame, ContextRegs, ResumeWindows, layout};

/// Integer-class argument registers of the target's C ABI.
#[cfg(target_arch = "x86_64")]
const GP_REGS: usize = 6;
#[cfg(target_arch = "aarch64")]
const GP_REGS: usize = 8;
/// Floating argument registers (xmm0-7, v0-7).
const FP_REGS: usize = 8;

const WORDS: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u64; WORDS]);

struct Blocks {
    parent: UnsafeCell<ContextRegs>,
    child: UnsafeCell<ContextRegs>,
}

// The entry reaches the blocks through this pointer to switch back.
static mut BLOCKS: *const Blocks = std::ptr::null();

/// What the entry saw.
#[derive(Default, Debug, PartialEq)]
struct Seen {
    ints: [u64; 10],
    floats: [f64; 10],
    sp_mod_16: u64,
    resumed: bool,
}
static mut SEEN: Seen = Seen { ints: [0; 10], floats: [0.0; 10], sp_mod_16: 99, resumed: false };

/// Ten integers and ten doubles: with either ABI some of each go on the
/// stack (x86_64: ints 7..10 and floats 9..10; aarch64: ints 9..10 and
/// floats 9..10), interleaved in declaration order.
#[allow(clippy::too_many_arguments)]
extern "C" fn entry(
    a0: u64,
    f0: f64,
    a1: u64,
    f1: f64,
    a2: u64,
    f2: f64,
    a3: u64,
    f3: f64,
    a4: u64,
    f4: f64,
    a5: u64,
    f5: f64,
    a6: u64,
    f6: f64,
    a7: u64,
    f7: f64,
    a8: u64,
    f8: f64,
    a9: u64,
    f9: f64,
) -> u64 {
    // SAFETY: single-threaded test; nothing else touches SEEN or BLOCKS
    // while the child runs.
    unsafe {
        let seen = &mut *std::ptr::addr_of_mut!(SEEN);
        seen.ints = [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9];
        seen.floats = [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9];
        seen.sp_mod_16 = context_sys::get_current_stack_pointer() % 16;
        let blocks = &*BLOCKS;
        context_sys::swap(blocks.child.get(), blocks.parent.get());
        (*std::ptr::addr_of_mut!(SEEN)).resumed = true;
    }
    a0.wrapping_mul(1000) + a9
}

/// Where each argument of `entry` goes: (integer?, its index among its class).
fn classes() -> Vec<(bool, usize)> {
    (0..20).map(|i| (i % 2 == 0, i / 2)).collect()
}

fn int_arg(i: usize) -> u64 {
    0x1111_0000_0000_0000 | (i as u64 + 1)
}

fn float_arg(i: usize) -> f64 {
    i as f64 + 0.25
}

/// Prepares `child` to run `entry` on `stack`, returning to `parent`,
/// following the eight steps of the header.
fn prepare(stack: &mut Stack, blocks: &Blocks) {
    let top = WORDS;
    // Step 2: the spilled arguments, in declaration order.
    let (mut gp, mut fp) = ([0u64; GP_REGS], [0u64; FP_REGS]);
    let (mut ngp, mut nfp) = (0, 0);
    let mut spilled = Vec::new();
    for (is_int, k) in classes() {
        let bits = if is_int { int_arg(k) } else { float_arg(k).to_bits() };
        if is_int && ngp < GP_REGS {
            gp[ngp] = bits;
            ngp += 1;
        } else if !is_int && nfp < FP_REGS {
            fp[nfp] = bits;
            nfp += 1;
        } else {
            spilled.push(bits);
        }
    }
    let n = spilled.len();
    let call = top - n - n % 2;
    stack.0[call..call + n].copy_from_slice(&spilled);
    if n % 2 == 1 {
        stack.0[call + n] = 0;
    }
    // Step 3: the boot frame right below.
    let frame_words = layout::BOOT_SIZE / 8;
    let frame_at = call - frame_words;
    let mut frame = BootFrame { entry: entry as *const () as u64, ..BootFrame::default() };
    frame.gp[..GP_REGS].copy_from_slice(&gp);
    #[cfg(target_arch = "x86_64")]
    frame.xmm.copy_from_slice(&fp);
    #[cfg(target_arch = "aarch64")]
    frame.fp.copy_from_slice(&fp);
    // SAFETY: frame_at..call lies inside the stack, and its address is
    // 16-aligned (top is, and every step is a multiple of 16 bytes).
    unsafe { stack.0.as_mut_ptr().add(frame_at).cast::<BootFrame>().write(frame) };
    // Step 4: the resume slot below the frame.
    let word_at = frame_at - layout::RESUME_SP_STEP / 8;
    stack.0[word_at..frame_at].fill(0);
    stack.0[word_at] = context_sys::start as *const () as u64;
    // Step 5: the child's block.
    let word = std::ptr::addr_of!(stack.0[word_at]) as u64;
    let own = blocks.child.get() as u64;
    let parent = blocks.parent.get() as u64;
    #[cfg(target_arch = "x86_64")]
    let regs = ContextRegs { rsp: word, rbx: own, r12: parent, ..ContextRegs::default() };
    #[cfg(target_arch = "aarch64")]
    let regs = ContextRegs { sp: word, x19: own, x20: parent, ..ContextRegs::default() };
    // SAFETY: nothing else refers to the child's block yet; step 6 then
    // writes only its FP control fields.
    unsafe {
        blocks.child.get().write(regs);
        context_sys::save_fp_control(blocks.child.get());
    }
    // qemu does not check sp alignment, so the test does: a resumed
    // context's sp (the word's address + the step) is 16-aligned.
    assert_eq!((regs.stack_pointer() + layout::RESUME_SP_STEP as u64) % 16, 0, "the resumed sp must be 16-aligned");
}

#[test]
fn a_fresh_context_gets_every_argument_where_the_abi_puts_it_and_returns() {
    let mut stack = Box::new(Stack([0; WORDS]));
    let blocks = Box::new(Blocks {
        parent: UnsafeCell::new(ContextRegs::default()),
        child: UnsafeCell::new(ContextRegs::default()),
    });
    prepare(&mut stack, &blocks);
    // SAFETY: the blocks and the stack outlive both runs of the child; the
    // child only switches back to `parent`, then returns into it.
    unsafe {
        BLOCKS = &*blocks;
        context_sys::swap(blocks.parent.get(), blocks.child.get());
        let seen = &*std::ptr::addr_of!(SEEN);
        let want_ints: Vec<u64> = (0..10).map(int_arg).collect();
        let want_floats: Vec<f64> = (0..10).map(float_arg).collect();
        assert_eq!(seen.ints.to_vec(), want_ints, "integer arguments");
        assert_eq!(seen.floats.to_vec(), want_floats, "floating arguments");
        assert_eq!(seen.sp_mod_16, 0, "the entry's sp after a call returns must stay 16-aligned");
        assert!(!seen.resumed);
        context_sys::swap(blocks.parent.get(), blocks.child.get());
        assert!((*std::ptr::addr_of!(SEEN)).resumed);
        let child = &*blocks.child.get();
        #[cfg(target_arch = "x86_64")]
        let ret = child.ret_rax;
        #[cfg(target_arch = "aarch64")]
        let ret = child.ret_x0;
        assert_eq!(ret, int_arg(0).wrapping_mul(1000) + int_arg(9));
        BLOCKS = std::ptr::null();
    }
}

#[test]
fn the_resume_windows_lie_inside_the_switches_in_order() {
    let mut w = ResumeWindows::default();
    // SAFETY: `w` is valid for writes of a ResumeWindows.
    unsafe { context_sys::resume_windows(&mut w) };
    let swap = context_sys::swap as *const () as u64;
    let set = context_sys::set as *const () as u64;
    for (name, lo, hi, routine) in [("swap", w.swap_loaded, w.swap_end, swap), ("set", w.set_loaded, w.set_end, set)] {
        assert!(routine < lo && lo < hi, "{name}: window {lo:#x}..{hi:#x} not after the routine's start {routine:#x}");
        assert!(hi - lo < 256, "{name}: a window of {} bytes is more than the loads and the jump", hi - lo);
    }
    assert!(w.start_loaded < w.start_end);
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the addresses are inside this process's text; each window's
    // last instruction is the `ret x10` that ends it (0xd65f0140).
    unsafe {
        for end in [w.swap_end, w.set_end, w.start_end] {
            assert_eq!(((end - 4) as *const u32).read(), 0xd65f_0140, "the window must end with `ret x10`");
        }
        for start in [swap, set, context_sys::start as *const () as u64] {
            assert_eq!((start as *const u32).read(), 0xd503_245f, "a global routine must begin with `bti c`");
        }
    }
}

#[test]
fn the_fp_control_state_is_saved_as_the_thread_has_it() {
    let mut regs = ContextRegs::default();
    // SAFETY: `regs` is valid for writes of a ContextRegs.
    unsafe { context_sys::save_fp_control(&mut regs) };
    #[cfg(target_arch = "x86_64")]
    {
        // Linux starts a thread with every exception masked, round to nearest.
        assert_eq!(regs.mxcsr & layout::MXCSR_CONTROL_MASK as u32, 0x1f80);
        assert_eq!(regs.fpucw, 0x037f);
        assert_eq!(regs.rsp, 0, "nothing but the FP control fields is written");
    }
    #[cfg(target_arch = "aarch64")]
    {
        let now: u64;
        // SAFETY: reading FPCR has no effect.
        unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) now, options(nomem, nostack)) };
        assert_eq!(regs.fpcr, now);
        assert_eq!(regs.sp, 0, "nothing but the FP control field is written");
    }
}
