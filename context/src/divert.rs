//! Diverting a suspended context: changing where it will continue, even when
//! a signal handler has interrupted its own thread halfway through a switch
//! into that context.
//!
//! This module needs `unsafe` because it writes a word on another context's
//! stack through the address saved in that context, and it rewrites a
//! register of the interrupted thread, which the kernel loads on sigreturn.

#![allow(unsafe_code)]

use context_sys::ResumeWindows;
use nix::libc;

use crate::arch::uc;
use crate::context::Context;

/// What [`divert_pending_resume`] did. In every case the resume word was
/// rewritten; the variants say what the interrupted thread was doing and
/// whether its registers were changed too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diverted {
    /// Only the resume word was rewritten, which suffices: the interrupted
    /// code was not inside the resume window of a switch into the target.
    /// Either it is not switching into the target at all, or its switch has
    /// not read the word yet and will read the new address.
    Word {
        /// The resume address the word held before.
        old: usize,
    },
    /// The interrupted code was inside the resume window of a switch into
    /// the target, with `old` already loaded into rcx (aarch64: x10): the
    /// interrupted rcx (x10) was rewritten too, so that switch continues at the new address when
    /// the handler returns.
    WordAndLoaded {
        /// The resume address the word held, and rcx (x10) held, before.
        old: usize,
    },
    /// The interrupted code was inside the resume window of a switch into
    /// the target, but rcx (aarch64: x10) held `loaded`, not the word's previous value
    /// `old`: the word changed after the switch read it, which the contract
    /// of [`divert_pending_resume`] rules out. The registers were left
    /// alone; that switch continues at `loaded`.
    LoadedDiffers {
        /// The resume address the word held before.
        old: usize,
        /// What the interrupted switch had loaded, and will jump to.
        loaded: usize,
    },
}

/// Makes `target`, a suspended context, continue at `to` instead of its
/// resume address the next time something switches into it, including a
/// switch that the signal handler calling this has interrupted after the
/// switch read the old address.
///
/// A suspended context continues at its resume word, the word at its saved
/// stack pointer (`target.regs().stack_pointer()`: rsp; aarch64: sp). This
/// writes `to` there. Then, if `interrupted` (the ucontext the kernel
/// passed to the handler) shows the thread inside the resume window of a
/// switch into `target` (its pc in one of the windows
/// [`context_sys::ResumeWindows`] describes, and ADDR, rax (aarch64: x9),
/// equal to `target`'s saved stack pointer), the old address is already in
/// NEXT, rcx (aarch64: x10), and the switch would jump there: if NEXT holds
/// exactly the word's old value, it is set to `to` as well. The register
/// test is by pc range, not by register values alone, so an unrelated piece
/// of code that happens to hold the same two values in those registers is
/// never touched.
///
/// When the switch continues at `to`, it does so as a resumption of
/// `target` would: the stack pointer is the resume word's address + 8
/// (aarch64: + 16, past the whole resume slot; 16-byte aligned for a
/// context prepared by [`Context::init`] or suspended in [`Context::swap`]),
/// the callee-saved registers are `target`'s, ADDR is the resume word's
/// address and NEXT is `to`. There is no return address: `to` must be code
/// written for that state, typically a few instructions of assembly that
/// realign the stack and call a function that never returns (on aarch64
/// it is reached by `ret`, so it needs no BTI landing pad).
///
/// The bounds of the resume word are not checked here: a caller that knows
/// the target's stack should check that `target.regs().stack_pointer()` lies in it
/// before calling (the `instance` crate checks that it lies in the
/// instance's stack mapping).
///
/// The register roles this relies on are the contract "the resume window"
/// of `context-sys` (its C header `context_sys.h` and
/// [`context_sys::ResumeWindows`]). Async-signal-safe: no allocation, no
/// lock, no panic.
///
/// # Safety
///
/// * `target` must hold a suspended context: one saved by a
///   [`Context::swap`] from it, or prepared by [`Context::init`], whose
///   resume word (the 8-byte-aligned word at its saved stack pointer) is
///   writable memory of its own stack, still allocated. A `Context::new()`
///   that was never saved into has a saved stack pointer of 0, and this would write to address 0; a
///   context whose stack was freed gets a write into freed memory.
/// * `target` must not be running, on this or any other thread, and
///   nothing else may write its resume word or its saved stack pointer meanwhile (a
///   second thread switching into it, or out of it, races with the write).
/// * `interrupted` must be the kernel's ucontext of a handler running on
///   the thread that may be switching into `target`, so that the registers
///   rewritten here are the ones the kernel restores when that handler
///   returns. A copy, or the ucontext of another thread's handler, makes
///   the NEXT rewrite meaningless. The handler must return through the
///   kernel's sigreturn (not `longjmp` or [`Context::set_from_signal`]) for
///   the rewritten NEXT to take effect.
/// * `to` must be an address that code expecting the state described above
///   can run at. Once this returns, the next switch into `target` (the
///   interrupted one, or a later one) jumps there.
///
/// Misuse example: diverting a context that another thread is running
/// rewrites a live stack slot (the one the context's frame used last), and
/// its owner later returns through garbage.
pub unsafe fn divert_pending_resume(target: &Context, to: usize, interrupted: &mut libc::ucontext_t) -> Diverted {
    let word = target.regs().stack_pointer() as usize;
    // SAFETY: the caller promises that `word` is the aligned, writable
    // resume word of a suspended `target` that no one else writes meanwhile.
    let old = unsafe { core::ptr::replace(word as *mut usize, to) };
    let mut windows = ResumeWindows::default();
    // SAFETY: `windows` is valid for writes of a `ResumeWindows`; the
    // routine touches nothing else and uses no stack.
    unsafe { context_sys::resume_windows(&mut windows) };
    if !in_window(&windows, uc::pc(interrupted)) || uc::addr(interrupted) != word {
        return Diverted::Word { old };
    }
    let loaded = uc::next(interrupted);
    if loaded != old {
        return Diverted::LoadedDiffers { old, loaded };
    }
    uc::set_next(interrupted, to);
    Diverted::WordAndLoaded { old }
}

/// Whether `pc` lies in one of the three resume windows, where NEXT holds
/// the resume address that the switch has read.
fn in_window(w: &ResumeWindows, pc: u64) -> bool {
    [(w.swap_loaded, w.swap_end), (w.set_loaded, w.set_end), (w.start_loaded, w.start_end)]
        .iter()
        .any(|&(loaded, end)| loaded <= pc && pc < end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: usize = 0x1111_2222_3333_4444;
    const TO: usize = 0x5555_6666_7777_8888;

    fn windows() -> ResumeWindows {
        let mut w = ResumeWindows::default();
        // SAFETY: `w` is valid for writes of a `ResumeWindows`.
        unsafe { context_sys::resume_windows(&mut w) };
        w
    }

    fn loaded_and_end(w: &ResumeWindows) -> [(u64, u64); 3] {
        [(w.swap_loaded, w.swap_end), (w.set_loaded, w.set_end), (w.start_loaded, w.start_end)]
    }

    /// A ucontext whose pc, ADDR and NEXT are the given made-up values and
    /// whose other general registers hold recognisable junk.
    fn interrupted(pc: u64, addr: usize, next: usize) -> libc::ucontext_t {
        uc::made_up(pc, addr, next)
    }

    /// A fake suspended context: its saved stack pointer points at `stack[1]`, which
    /// holds the made-up resume address `OLD`.
    struct Fake {
        stack: Box<[usize; 4]>,
        target: Context,
    }

    impl Fake {
        fn new() -> Fake {
            let mut stack = Box::new([0, OLD, 0, 0]);
            let word = &mut stack[1] as *mut usize as u64;
            Fake { stack, target: Context::with_saved_sp(word) }
        }

        fn word(&self) -> usize {
            self.target.regs().stack_pointer() as usize
        }

        fn divert(&self, uc: &mut libc::ucontext_t) -> Diverted {
            // SAFETY: the resume word is `self.stack[1]`, a live, aligned,
            // writable word that nothing else touches; `target` is not
            // running; the ucontext is a made-up one, whose rewrite is only
            // inspected.
            unsafe { divert_pending_resume(&self.target, TO, uc) }
        }

        /// The stack after the call: only the resume word may change.
        fn assert_word_is(&self, value: usize) {
            assert_eq!(*self.stack, [0, value, 0, 0]);
        }
    }

    /// Every general register of `after` equals `before`'s, except NEXT
    /// if `next` gives its new value.
    fn assert_gregs(before: &libc::ucontext_t, after: &libc::ucontext_t, next: Option<usize>) {
        let expected = match next {
            Some(value) => uc::all_regs_with_next(before, value),
            None => uc::all_regs(before),
        };
        assert_eq!(uc::all_regs(after), expected);
    }

    /// Bytes of one instruction (x86_64: the shortest, for pcs inside a
    /// window).
    #[cfg(target_arch = "x86_64")]
    const STEP: u64 = 1;
    #[cfg(target_arch = "aarch64")]
    const STEP: u64 = 4;

    #[test]
    fn a_switch_caught_inside_a_window_has_its_loaded_copy_redirected() {
        let w = windows();
        for (loaded, end) in loaded_and_end(&w) {
            for pc in [loaded, loaded + 4, end - 2 * STEP, end - STEP] {
                let fake = Fake::new();
                let before = interrupted(pc, fake.word(), OLD);
                let mut uc = before;
                assert_eq!(fake.divert(&mut uc), Diverted::WordAndLoaded { old: OLD }, "pc {pc:#x}");
                fake.assert_word_is(TO);
                assert_gregs(&before, &uc, Some(TO));
            }
        }
    }

    #[test]
    fn unrelated_registers_get_only_the_word_rewritten() {
        let w = windows();
        for pc in [0x1234, w.swap_loaded - 3, w.set_end, w.start_end + 1] {
            let fake = Fake::new();
            let before = interrupted(pc, 0x7000, 0x8000);
            let mut uc = before;
            assert_eq!(fake.divert(&mut uc), Diverted::Word { old: OLD }, "pc {pc:#x}");
            fake.assert_word_is(TO);
            assert_gregs(&before, &uc, None);
        }
    }

    #[test]
    fn addr_matching_but_next_not_leaves_the_registers_alone() {
        let w = windows();
        // Inside a window: the switch loaded something else; reported.
        let fake = Fake::new();
        let before = interrupted(w.swap_loaded, fake.word(), 0x8000);
        let mut uc = before;
        assert_eq!(fake.divert(&mut uc), Diverted::LoadedDiffers { old: OLD, loaded: 0x8000 });
        fake.assert_word_is(TO);
        assert_gregs(&before, &uc, None);
        // Outside: not a switch at all.
        let fake = Fake::new();
        let before = interrupted(0x1234, fake.word(), 0x8000);
        let mut uc = before;
        assert_eq!(fake.divert(&mut uc), Diverted::Word { old: OLD });
        fake.assert_word_is(TO);
        assert_gregs(&before, &uc, None);
    }

    #[test]
    fn matching_registers_outside_every_window_are_not_a_switch() {
        let w = windows();
        // ADDR = &word and NEXT = its value, as a heuristic by registers
        // would take for a switch, but the pc is elsewhere, or at the two
        // instructions before the window (the word not read yet).
        for pc in [0x1234, w.swap_loaded - 3, w.swap_loaded - 1, w.swap_end, w.set_loaded - 3, w.start_end] {
            let fake = Fake::new();
            let before = interrupted(pc, fake.word(), OLD);
            let mut uc = before;
            assert_eq!(fake.divert(&mut uc), Diverted::Word { old: OLD }, "pc {pc:#x}");
            fake.assert_word_is(TO);
            assert_gregs(&before, &uc, None);
        }
    }

    #[test]
    fn a_switch_into_another_context_is_left_alone() {
        let w = windows();
        let fake = Fake::new();
        let other = [OLD];
        let before = interrupted(w.set_loaded, other.as_ptr() as usize, OLD);
        let mut uc = before;
        assert_eq!(fake.divert(&mut uc), Diverted::Word { old: OLD });
        fake.assert_word_is(TO);
        assert_gregs(&before, &uc, None);
    }

    /// The instruction just before `loaded` (reads the resume word into
    /// NEXT), the one at it (moves the stack pointer past the resume
    /// slot), and the jump to NEXT just before `end`: x86_64 `mov
    /// (%rax),%rcx`, `lea 0x8(%rax),%rsp`, `jmp *%rcx`.
    #[cfg(target_arch = "x86_64")]
    const CONTRACT: (&[u8], &[u8], &[u8]) = (&[0x48, 0x8b, 0x08], &[0x48, 0x8d, 0x60, 0x08], &[0xff, 0xe1]);
    /// aarch64: `ldr x10, [x9]` (0xf940012a), `add sp, x9, #16`
    /// (0x9100413f), `ret x10` (0xd65f0140), little-endian.
    #[cfg(target_arch = "aarch64")]
    const CONTRACT: (&[u8], &[u8], &[u8]) =
        (&0xf940_012a_u32.to_le_bytes(), &0x9100_413f_u32.to_le_bytes(), &0xd65f_0140_u32.to_le_bytes());

    #[test]
    fn each_window_is_bounded_by_the_instructions_the_contract_names() {
        let (read_word, move_sp, jump) = CONTRACT;
        let read = |addr: u64, n: usize| -> Vec<u8> {
            // SAFETY: the addresses lie inside the context-sys routines,
            // which are mapped readable (and executable) for the life of
            // the process.
            unsafe { core::slice::from_raw_parts(addr as *const u8, n) }.to_vec()
        };
        let w = windows();
        let routines = [
            context_sys::swap as *const () as usize,
            context_sys::set as *const () as usize,
            context_sys::start as *const () as usize,
        ];
        for ((loaded, end), routine) in loaded_and_end(&w).into_iter().zip(routines) {
            assert!(routine as u64 <= loaded && loaded < end && end - loaded < 64, "{loaded:#x}..{end:#x}");
            assert_eq!(read(loaded - read_word.len() as u64, read_word.len()), read_word, "before {loaded:#x}");
            assert_eq!(read(loaded, move_sp.len()), move_sp, "at {loaded:#x}");
            assert_eq!(read(end - jump.len() as u64, jump.len()), jump, "before {end:#x}");
        }
    }
}
