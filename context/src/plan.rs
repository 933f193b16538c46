//! The argument plan: where each argument of an entry function goes, and how
//! much stack the start-up frame takes, computed before anything is written.

use crate::error::Error;
use crate::val::{Val, val_to_stack};
use context_sys::layout;

/// Integer argument registers: in the System V AMD64 ABI rdi, rsi, rdx,
/// rcx, r8, r9 (6); in AAPCS64 x0–x7 (8).
#[cfg(target_arch = "x86_64")]
pub const GP_ARG_REGS: usize = 6;
/// Integer argument registers: in the System V AMD64 ABI rdi, rsi, rdx,
/// rcx, r8, r9 (6); in AAPCS64 x0–x7 (8).
#[cfg(target_arch = "aarch64")]
pub const GP_ARG_REGS: usize = 8;
/// Floating argument registers: xmm0–xmm7 in the System V AMD64 ABI,
/// v0–v7 in AAPCS64 (8 on both).
pub const FP_ARG_REGS: usize = 8;
const _: () = assert!(GP_ARG_REGS <= FP_ARG_REGS, "FrameShape::of's shortcut");

const WORD: usize = core::mem::size_of::<u64>();

/// Where the arguments of one call go, and the size of the frame that
/// [`Context::init`](crate::Context::init) writes below the top of the stack.
///
/// Pure: it depends on the arguments only (the stack top is required to be
/// 16-byte aligned, so the padding does not depend on where the stack is).
///
/// ```text
///   top of stack (16-aligned)
///   | padding (0 or 8 bytes)       |
///   | spilled argument k           |
///   | ...                          |
///   | spilled argument 1           |  <- rsp (sp) at the call: 16-aligned
///   | boot frame                   |  128 bytes (aarch64: 144)
///   | resume slot                  |  <- the new context's saved rsp (sp)
/// ```
///
/// The resume slot is the resume word (8 bytes) on x86_64 and a 16-byte
/// slot whose first word is the resume address on aarch64. Both ABIs give
/// a spilled argument one 8-byte slot, in declaration order; they differ in
/// how many integer registers there are ([`GP_ARG_REGS`]).
///
/// ```
/// use context::{ArgPlan, GP_ARG_REGS, Val};
/// let args: Vec<Val> = (0..10u64).map(Val::U64).chain([Val::F64(1.0)]).collect();
/// let plan = ArgPlan::new(&args);
/// assert_eq!((plan.gp_used, plan.fp_used, plan.spilled), (GP_ARG_REGS, 1, 10 - GP_ARG_REGS));
/// assert_eq!(plan.padding, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArgPlan {
    /// Values for rdi, rsi, rdx, rcx, r8, r9 (aarch64: x0–x7); unused ones
    /// are zero.
    pub gp: [u64; GP_ARG_REGS],
    /// How many integer registers carry arguments.
    pub gp_used: usize,
    /// Bits for xmm0–xmm7 (aarch64: d0–d7, the low 64 bits of v0–v7);
    /// unused ones are zero.
    pub fp: [u64; FP_ARG_REGS],
    /// How many floating registers carry arguments.
    pub fp_used: usize,
    /// How many arguments are passed on the stack.
    pub spilled: usize,
    /// Bytes of padding between the last spilled argument and the stack top.
    pub padding: usize,
    /// Bytes from the new context's saved rsp (sp) up to the top of the
    /// stack.
    pub frame_bytes: usize,
}

impl ArgPlan {
    /// Plans a call with `args` in order.
    pub fn new(args: &[Val]) -> ArgPlan {
        let (mut gp, mut fp, mut spilled) = ([0; GP_ARG_REGS], [0; FP_ARG_REGS], 0);
        let mut classes = Classifier::default();
        for a in args {
            let word = val_to_stack(a);
            match classes.place(a) {
                Slot::Gp(i) => gp[i] = word,
                Slot::Fp(i) => fp[i] = word,
                Slot::Stack => spilled += 1,
            }
        }
        let shape = FrameShape::for_spilled(spilled);
        ArgPlan {
            gp,
            gp_used: classes.gp,
            fp,
            fp_used: classes.fp,
            spilled,
            padding: shape.padding,
            frame_bytes: shape.frame_bytes,
        }
    }

    /// The arguments that go on the stack, in order (lowest address first).
    pub fn spilled_values(args: &[Val]) -> impl Iterator<Item = u64> + '_ {
        let mut classes = Classifier::default();
        args.iter().filter(move |a| matches!(classes.place(a), Slot::Stack)).map(val_to_stack)
    }

    /// Checks that a stack of `stack_words` words whose top is at `top` can
    /// hold this plan's frame.
    pub fn check(&self, stack_words: usize, top: usize) -> Result<(), Error> {
        self.shape().check(stack_words, top)
    }

    /// Index (in words, from the start of a stack of `stack_words` words) of
    /// the first spilled argument, which is also just past the boot frame.
    pub fn call_index(&self, stack_words: usize) -> usize {
        self.shape().call_index(stack_words)
    }

    /// Index of the resume word, the new context's saved rsp (sp): the
    /// first word of its resume slot.
    pub fn resume_index(&self, stack_words: usize) -> usize {
        self.shape().resume_index(stack_words)
    }

    fn shape(&self) -> FrameShape {
        FrameShape { spilled: self.spilled, padding: self.padding, frame_bytes: self.frame_bytes }
    }
}

/// Where one argument goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The integer argument register with this index (0 is rdi; aarch64:
    /// x0).
    Gp(usize),
    /// The floating argument register with this index (xmm; aarch64: v).
    Fp(usize),
    /// The next stack slot.
    Stack,
}

/// The rule for arguments of System V and AAPCS64 alike (for the scalar
/// types [`Val`] has), applied one argument at a time in order:
/// integer-class values take the next free integer register, floating
/// values the next free floating register, and once a class's registers
/// are used up its values go on the stack, one 8-byte slot each. The one place the rule is
/// written; [`ArgPlan`] and [`Context::init`](crate::Context::init) both
/// classify through it.
#[derive(Debug, Default)]
pub(crate) struct Classifier {
    /// Integer registers taken so far.
    gp: usize,
    /// Floating registers taken so far.
    fp: usize,
}

impl Classifier {
    /// Where `a`, the next argument, goes. Register indices are always in
    /// range (`Gp(i)`: `i < GP_ARG_REGS`, `Fp(i)`: `i < FP_ARG_REGS`).
    #[inline(always)]
    pub(crate) fn place(&mut self, a: &Val) -> Slot {
        if a.is_float() {
            if self.fp < FP_ARG_REGS {
                self.fp += 1;
                return Slot::Fp(self.fp - 1);
            }
        } else if self.gp < GP_ARG_REGS {
            self.gp += 1;
            return Slot::Gp(self.gp - 1);
        }
        Slot::Stack
    }
}

/// The size of a call's start-up frame, which depends only on how many
/// arguments spill onto the stack: all that is needed to validate a stack
/// and find the frame's slots in it before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameShape {
    /// How many arguments are passed on the stack.
    pub(crate) spilled: usize,
    /// Bytes of padding between the last spilled argument and the stack top.
    pub(crate) padding: usize,
    /// Bytes from the new context's saved rsp up to the top of the stack.
    pub(crate) frame_bytes: usize,
}

impl FrameShape {
    /// The frame of a call with `args`, from a count of their classes alone
    /// (no value is converted): it gives the same shape as
    /// [`ArgPlan::new`] (property-tested).
    #[inline(always)]
    pub(crate) fn of(args: &[Val]) -> FrameShape {
        // No more arguments than integer registers: none can spill, whatever
        // their classes (there are more floating registers than integer
        // ones), so there is nothing to count.
        if args.len() <= GP_ARG_REGS {
            return FrameShape::for_spilled(0);
        }
        let floats = args.iter().filter(|a| a.is_float()).count();
        let ints = args.len() - floats;
        FrameShape::for_spilled(ints.saturating_sub(GP_ARG_REGS) + floats.saturating_sub(FP_ARG_REGS))
    }

    /// The frame of a call that spills `spilled` arguments.
    #[inline(always)]
    pub(crate) fn for_spilled(spilled: usize) -> FrameShape {
        // The spilled arguments end at the top; their start must be 16-aligned.
        let padding = (spilled * WORD) % 16;
        // A slice of `Val`s (16 bytes each) cannot have so many elements that
        // this overflows, but saturate rather than assume it.
        let frame_bytes = spilled
            .saturating_mul(WORD)
            .saturating_add(padding)
            .saturating_add(layout::BOOT_SIZE)
            .saturating_add(layout::RESUME_SP_STEP);
        FrameShape { spilled, padding, frame_bytes }
    }

    /// Checks that a stack of `stack_words` words whose top is at `top` can
    /// hold this frame.
    #[inline(always)]
    pub(crate) fn check(&self, stack_words: usize, top: usize) -> Result<(), Error> {
        if stack_words == 0 {
            return Err(Error::EmptyStack);
        }
        if !top.is_multiple_of(16) {
            return Err(Error::UnalignedStack);
        }
        let available = stack_words.saturating_mul(WORD);
        if self.frame_bytes > available {
            return Err(Error::StackTooSmall { needed: self.frame_bytes, available });
        }
        Ok(())
    }

    /// Words from the saved rsp (sp) up to the top (the resume slot, the
    /// boot frame, the spilled arguments and the padding).
    #[inline(always)]
    pub(crate) fn words(&self) -> usize {
        self.frame_bytes / WORD
    }

    /// See [`ArgPlan::call_index`].
    #[inline(always)]
    pub(crate) fn call_index(&self, stack_words: usize) -> usize {
        stack_words - (self.padding / WORD) - self.spilled
    }

    /// See [`ArgPlan::resume_index`].
    #[inline(always)]
    pub(crate) fn resume_index(&self, stack_words: usize) -> usize {
        stack_words - self.words()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_val() -> impl Strategy<Value = Val> {
        prop_oneof![
            any::<u64>().prop_map(Val::U64),
            any::<i8>().prop_map(Val::I8),
            any::<bool>().prop_map(Val::Bool),
            any::<u32>().prop_map(|b| Val::F32(f32::from_bits(b))),
            any::<u64>().prop_map(|b| Val::F64(f64::from_bits(b))),
        ]
    }

    proptest! {
        #[test]
        fn plan_places_every_argument_exactly_once_in_abi_order(args in proptest::collection::vec(arb_val(), 0..48)) {
            let plan = ArgPlan::new(&args);
            let floats: Vec<u64> = args.iter().filter(|a| a.is_float()).map(val_to_stack).collect();
            let ints: Vec<u64> = args.iter().filter(|a| !a.is_float()).map(val_to_stack).collect();
            prop_assert_eq!(plan.fp_used, floats.len().min(FP_ARG_REGS));
            prop_assert_eq!(plan.gp_used, ints.len().min(GP_ARG_REGS));
            prop_assert_eq!(&plan.fp[..plan.fp_used], &floats[..plan.fp_used]);
            prop_assert_eq!(&plan.gp[..plan.gp_used], &ints[..plan.gp_used]);
            prop_assert_eq!(plan.spilled, args.len() - plan.fp_used - plan.gp_used);
            // The spilled words are the remaining arguments in their original order.
            let expected: Vec<u64> = {
                let (mut g, mut f) = (0, 0);
                let mut v = Vec::new();
                for a in &args {
                    if a.is_float() { f += 1; if f > FP_ARG_REGS { v.push(val_to_stack(a)); } }
                    else { g += 1; if g > GP_ARG_REGS { v.push(val_to_stack(a)); } }
                }
                v
            };
            prop_assert_eq!(ArgPlan::spilled_values(&args).collect::<Vec<_>>(), expected);
            // The call site is 16-aligned when the top is, and the frame fits its parts.
            let call_bytes_below_top = plan.spilled * 8 + plan.padding;
            prop_assert_eq!(call_bytes_below_top % 16, 0);
            prop_assert_eq!(plan.frame_bytes, call_bytes_below_top + layout::BOOT_SIZE + layout::RESUME_SP_STEP);
            // The boot frame and the resume slot keep the call site's alignment.
            prop_assert_eq!((layout::BOOT_SIZE + layout::RESUME_SP_STEP) % 8, 0);
        }

        #[test]
        fn frame_shape_from_class_counts_is_the_plans_shape(args in proptest::collection::vec(arb_val(), 0..48)) {
            let plan = ArgPlan::new(&args);
            prop_assert_eq!(FrameShape::of(&args), plan.shape());
        }

        #[test]
        fn check_accepts_exactly_the_stacks_that_fit(args in proptest::collection::vec(arb_val(), 0..40), words in 0usize..80) {
            let plan = ArgPlan::new(&args);
            let r = plan.check(words, 0x10000);
            if words == 0 {
                prop_assert_eq!(r, Err(Error::EmptyStack));
            } else if words * 8 < plan.frame_bytes {
                prop_assert_eq!(r, Err(Error::StackTooSmall { needed: plan.frame_bytes, available: words * 8 }));
            } else {
                prop_assert_eq!(r, Ok(()));
                prop_assert!(plan.resume_index(words) < plan.call_index(words));
            }
        }
    }

    #[test]
    fn misaligned_top_is_rejected() {
        let plan = ArgPlan::new(&[]);
        assert_eq!(plan.check(64, 0x10008), Err(Error::UnalignedStack));
    }

    #[test]
    fn odd_spill_counts_get_padding() {
        let args: Vec<Val> = (0..GP_ARG_REGS as u32 + 1).map(Val::U32).collect();
        let plan = ArgPlan::new(&args);
        assert_eq!((plan.spilled, plan.padding), (1, 8));
    }

    #[test]
    fn the_abi_s_register_counts() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!((GP_ARG_REGS, FP_ARG_REGS, layout::RESUME_SP_STEP), (6, 8, 8));
        #[cfg(target_arch = "aarch64")]
        assert_eq!((GP_ARG_REGS, FP_ARG_REGS, layout::RESUME_SP_STEP), (8, 8, 16));
        // Seven integers: all in registers on aarch64, one spilled on x86_64.
        let plan = ArgPlan::new(&[Val::U64(0); 7]);
        assert_eq!(plan.spilled, 7usize.saturating_sub(GP_ARG_REGS));
    }
}
