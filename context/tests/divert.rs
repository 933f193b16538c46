//! `divert_pending_resume` on a switch caught inside its resume window, run
//! for real. A signal that happens to arrive inside the window cannot be
//! timed, so the handler builds that moment instead: it makes the
//! interrupted registers those of a switch into a fresh context that has
//! just read the context's resume word (pc at the window's first
//! instruction, rax = the word's address, rcx = its value, rdi = rsi = the
//! context's register block), diverts it, and returns through the kernel's
//! sigreturn. The rest of the real switch then runs with the rewritten rcx
//! and must land at the diverted address on the context's stack, never in
//! its entry function. Its own test binary: it installs a process-wide
//! handler.

mod common;

use common::TestStack;

use context::{Context, ContextHandle, Diverted, divert_pending_resume};
use context_sys::ResumeWindows;
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

static HOST: AtomicPtr<Context> = AtomicPtr::new(std::ptr::null_mut());
static TARGET: AtomicPtr<Context> = AtomicPtr::new(std::ptr::null_mut());
/// The pc the handler puts the thread at: a window's `loaded` address.
static WINDOW: AtomicUsize = AtomicUsize::new(0);
static ENTRY_RAN: AtomicBool = AtomicBool::new(false);
/// What `divert_pending_resume` answered: 1 = `Word`, 2 = `WordAndLoaded`,
/// 3 = `LoadedDiffers`, 0 = not called; and the old address it reported.
static OUTCOME: AtomicUsize = AtomicUsize::new(0);
static OUTCOME_OLD: AtomicUsize = AtomicUsize::new(0);
/// The resume word as the handler left it (once the switch has popped it,
/// it is free stack, which the pad's own call reuses).
static WORD_AFTER: AtomicUsize = AtomicUsize::new(0);
/// rsp, rbx and rcx (aarch64: sp, x19, x10) as the pad found them.
static LANDED: [AtomicUsize; 3] = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    // Where the diverted switch lands: entered by `jmp *%rcx` with rsp one
    // word above the target's resume word. Passes rsp, rbx and rcx on
    // arrival to `landed` (which never returns) with the stack realigned
    // for the call. No return address: unwinders stop here.
    ".p2align 4",
    ".globl divert_test_pad",
    ".hidden divert_test_pad",
    ".type divert_test_pad, @function",
    "divert_test_pad:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "mov %rsp, %rdi",
    "mov %rbx, %rsi",
    "mov %rcx, %rdx",
    "and $-16, %rsp",
    "call {landed}",
    "ud2",
    ".cfi_endproc",
    ".size divert_test_pad, .-divert_test_pad",
    landed = sym landed,
    options(att_syntax),
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    // Where the diverted switch lands: entered by `ret x10` with sp just
    // above the target's 16-byte resume slot. Passes sp, x19 and x10 on
    // arrival to `landed` (which never returns), sp kept 16-aligned. No
    // return address: unwinders stop here. `ret` needs no BTI landing pad.
    ".p2align 4",
    ".globl divert_test_pad",
    ".hidden divert_test_pad",
    ".type divert_test_pad, %function",
    "divert_test_pad:",
    ".cfi_startproc",
    ".cfi_undefined x30",
    "mov x0, sp",
    "mov x1, x19",
    "mov x2, x10",
    "and x9, x0, #-16",
    "mov sp, x9",
    "bl {landed}",
    "brk #1",
    ".cfi_endproc",
    ".size divert_test_pad, .-divert_test_pad",
    landed = sym landed,
);

unsafe extern "C" {
    /// See the `global_asm!` above; never called, only jumped to.
    fn divert_test_pad();
}

fn pad() -> usize {
    divert_test_pad as unsafe extern "C" fn() as usize
}

extern "C" fn landed(rsp: usize, rbx: usize, rcx: usize) -> ! {
    for (slot, value) in LANDED.iter().zip([rsp, rbx, rcx]) {
        slot.store(value, Ordering::SeqCst);
    }
    let host = HOST.load(Ordering::SeqCst);
    // SAFETY: the host is pinned and suspended in its swap into the driver;
    // the target's stack, which this runs on, is abandoned.
    unsafe { Context::set(&*host) }
}

/// The target's entry: reached only if the diversion failed.
extern "C" fn target_entry() -> u64 {
    ENTRY_RAN.store(true, Ordering::SeqCst);
    0
}

/// The driver's entry: the handler never returns here.
extern "C" fn raise_sigusr1() -> u64 {
    nix::sys::signal::raise(Signal::SIGUSR1).expect("raise");
    0xbad
}

extern "C" fn fake_a_switch_caught_in_the_window(_signal: libc::c_int, _info: *mut libc::siginfo_t, uc: *mut c_void) {
    // SAFETY: the kernel passes its ucontext to an SA_SIGINFO handler.
    let uc = unsafe { &mut *uc.cast::<libc::ucontext_t>() };
    // SAFETY: the test stored a pinned, suspended (fresh) target.
    let target = unsafe { &*TARGET.load(Ordering::SeqCst) };
    let word = target.regs().stack_pointer() as usize;
    // The register block is `Context`'s first field (see its `# Layout`).
    let block = target as *const Context as u64;
    // SAFETY: the resume word of a fresh context lies on its live stack.
    let next = unsafe { *(word as *const usize) } as u64;
    let window = WINDOW.load(Ordering::SeqCst) as u64;
    // The state of a switch into `target` that has read its resume word:
    // pc in the window, ADDR = &word, NEXT = the word, the base register
    // (either of the two the routines use) = the target's block.
    #[cfg(target_arch = "x86_64")]
    {
        let g = &mut uc.uc_mcontext.gregs;
        g[libc::REG_RIP as usize] = window as i64;
        g[libc::REG_RAX as usize] = word as i64;
        g[libc::REG_RCX as usize] = next as i64;
        g[libc::REG_RDI as usize] = block as i64;
        g[libc::REG_RSI as usize] = block as i64;
    }
    #[cfg(target_arch = "aarch64")]
    {
        let m = &mut uc.uc_mcontext;
        m.pc = window;
        m.regs[9] = word as u64;
        m.regs[10] = next;
        m.regs[0] = block;
        m.regs[1] = block;
    }
    // SAFETY: `target` is suspended and not running; its resume word is on
    // its live stack; `uc` is this handler's own ucontext, which the kernel
    // restores on return; the pad is written for a resumption's state.
    let outcome = unsafe { divert_pending_resume(target, pad(), uc) };
    // SAFETY: as above.
    WORD_AFTER.store(unsafe { *(word as *const usize) }, Ordering::SeqCst);
    let (kind, old) = match outcome {
        Diverted::Word { old } => (1, old),
        Diverted::WordAndLoaded { old } => (2, old),
        Diverted::LoadedDiffers { old, .. } => (3, old),
        _ => (4, 0),
    };
    OUTCOME.store(kind, Ordering::SeqCst);
    OUTCOME_OLD.store(old, Ordering::SeqCst);
}

#[test]
fn a_switch_diverted_inside_each_resume_window_lands_at_the_new_address() {
    let action =
        SigAction::new(SigHandler::SigAction(fake_a_switch_caught_in_the_window), SaFlags::SA_SIGINFO, SigSet::empty());
    // SAFETY: the handler only touches the statics and the ucontext above;
    // the previous action is put back at the end.
    let previous = unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("install the handler");

    let mut w = ResumeWindows::default();
    // SAFETY: `w` is valid for writes of a `ResumeWindows`.
    unsafe { context_sys::resume_windows(&mut w) };
    for (name, loaded) in [("swap", w.swap_loaded), ("set", w.set_loaded), ("start", w.start_loaded)] {
        let mut host = ContextHandle::new();
        let mut driver_stack = TestStack::new(16 * 1024);
        let mut target_stack = TestStack::new(16 * 1024);
        let driver = ContextHandle::create_and_init(
            driver_stack.slice(),
            &mut host,
            raise_sigusr1 as extern "C" fn() -> u64,
            &[],
        )
        .expect("prepare the driver");
        let target = ContextHandle::create_and_init(
            target_stack.slice(),
            &mut host,
            target_entry as extern "C" fn() -> u64,
            &[],
        )
        .expect("prepare the target");
        let word = target.regs().stack_pointer() as usize;
        HOST.store(&mut *host as *mut Context, Ordering::SeqCst);
        TARGET.store(&*target as *const Context as *mut Context, Ordering::SeqCst);
        WINDOW.store(loaded as usize, Ordering::SeqCst);
        ENTRY_RAN.store(false, Ordering::SeqCst);
        OUTCOME.store(0, Ordering::SeqCst);
        WORD_AFTER.store(0, Ordering::SeqCst);

        // SAFETY: the driver and the target run on stacks that outlive this
        // iteration; both contexts come back to `host` (the pad's `landed`
        // sets it; the target's entry, should it run, returns to it).
        unsafe { Context::swap(&mut host, &driver) };

        assert!(!ENTRY_RAN.load(Ordering::SeqCst), "{name}: the switch went on into the target's entry");
        assert_eq!(OUTCOME.load(Ordering::SeqCst), 2, "{name}: not reported as WordAndLoaded");
        assert_eq!(OUTCOME_OLD.load(Ordering::SeqCst), context_sys::start as *const () as usize, "{name}: old address");
        let landed: Vec<usize> = LANDED.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        #[cfg(target_arch = "x86_64")]
        let own_block = target.regs().rbx as usize;
        #[cfg(target_arch = "aarch64")]
        let own_block = target.regs().x19 as usize;
        let resumed_sp = word + context_sys::layout::RESUME_SP_STEP;
        assert_eq!(landed, [resumed_sp, own_block, pad()], "{name}: stack pointer, own block, NEXT at the pad");
        assert_eq!(WORD_AFTER.load(Ordering::SeqCst), pad(), "{name}: the resume word");
    }

    // SAFETY: restores what was installed before this test.
    unsafe { sigaction(Signal::SIGUSR1, &previous) }.expect("restore the handler");
}
