//! The argument plan: where each argument of an entry function goes, and how
//! much stack the start-up frame takes, computed before anything is written.

use crate::error::Error;
use crate::val::{Val, val_to_stack};
use context_sys::layout;

/// Integer argument registers in the System V AMD64 ABI: rdi, rsi, rdx, rcx, r8, r9.
pub const GP_ARG_REGS: usize = 6;
/// Floating argument registers in the System V AMD64 ABI: xmm0–xmm7.
pub const FP_ARG_REGS: usize = 8;

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
///   | spilled argument 1           |  <- rsp at the call: 16-aligned
///   | boot frame (128 bytes)       |
///   | resume word                  |  <- the new context's saved rsp
/// ```
///
/// ```
/// use context::{ArgPlan, Val};
/// let args: Vec<Val> = (0..8u64).map(Val::U64).chain([Val::F64(1.0)]).collect();
/// let plan = ArgPlan::new(&args);
/// assert_eq!((plan.gp_used, plan.fp_used, plan.spilled), (6, 1, 2));
/// assert_eq!(plan.padding, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgPlan {
    /// Values for rdi, rsi, rdx, rcx, r8, r9; unused ones are zero.
    pub gp: [u64; GP_ARG_REGS],
    /// How many integer registers carry arguments.
    pub gp_used: usize,
    /// Bits for xmm0–xmm7 (low 64 bits); unused ones are zero.
    pub fp: [u64; FP_ARG_REGS],
    /// How many floating registers carry arguments.
    pub fp_used: usize,
    /// How many arguments are passed on the stack.
    pub spilled: usize,
    /// Bytes of padding between the last spilled argument and the stack top.
    pub padding: usize,
    /// Bytes from the new context's saved rsp up to the top of the stack.
    pub frame_bytes: usize,
}

impl ArgPlan {
    /// Plans a call with `args` in order.
    pub fn new(args: &[Val]) -> ArgPlan {
        let mut plan = ArgPlan {
            gp: [0; GP_ARG_REGS],
            gp_used: 0,
            fp: [0; FP_ARG_REGS],
            fp_used: 0,
            spilled: 0,
            padding: 0,
            frame_bytes: 0,
        };
        for a in args {
            let word = val_to_stack(a);
            if a.is_float() && plan.fp_used < FP_ARG_REGS {
                plan.fp[plan.fp_used] = word;
                plan.fp_used += 1;
            } else if !a.is_float() && plan.gp_used < GP_ARG_REGS {
                plan.gp[plan.gp_used] = word;
                plan.gp_used += 1;
            } else {
                plan.spilled += 1;
            }
        }
        // The spilled arguments end at the top; their start must be 16-aligned.
        plan.padding = (plan.spilled * WORD) % 16;
        // A slice of `Val`s (16 bytes each) cannot have so many elements that
        // this overflows, but saturate rather than assume it.
        plan.frame_bytes = (plan.spilled.saturating_mul(WORD))
            .saturating_add(plan.padding)
            .saturating_add(layout::BOOT_SIZE)
            .saturating_add(WORD);
        plan
    }

    /// The arguments that go on the stack, in order (lowest address first).
    pub fn spilled_values(args: &[Val]) -> impl Iterator<Item = u64> + '_ {
        let (mut gp, mut fp) = (0usize, 0usize);
        args.iter().filter_map(move |a| {
            if a.is_float() && fp < FP_ARG_REGS {
                fp += 1;
                None
            } else if !a.is_float() && gp < GP_ARG_REGS {
                gp += 1;
                None
            } else {
                Some(val_to_stack(a))
            }
        })
    }

    /// Checks that a stack of `stack_words` words whose top is at `top` can
    /// hold this plan's frame.
    pub fn check(&self, stack_words: usize, top: usize) -> Result<(), Error> {
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

    /// Index (in words, from the start of a stack of `stack_words` words) of
    /// the first spilled argument, which is also just past the boot frame.
    pub fn call_index(&self, stack_words: usize) -> usize {
        stack_words - (self.padding / WORD) - self.spilled
    }

    /// Index of the resume word, the new context's saved rsp.
    pub fn resume_index(&self, stack_words: usize) -> usize {
        stack_words - self.frame_bytes / WORD
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
            prop_assert_eq!(plan.frame_bytes, call_bytes_below_top + layout::BOOT_SIZE + 8);
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
        let args: Vec<Val> = (0..7u32).map(Val::U32).collect();
        let plan = ArgPlan::new(&args);
        assert_eq!((plan.spilled, plan.padding), (1, 8));
    }
}
