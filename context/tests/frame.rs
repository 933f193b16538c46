//! `Context::init` writes exactly the start-up frame that the pure
//! `ArgPlan` describes, word for word: the resume slot, the boot frame
//! (the registers that carry arguments and the entry; natively the slots of
//! unused registers and the boot frame's pad keep what the stack held, under
//! valgrind they are zero), the spilled arguments in order and the zeroed
//! padding word; nothing else in the stack changes. `init` classifies the arguments itself in one pass,
//! so this holds it to the plan (which is property-tested on its own).

mod common;

use common::TestStack;
use context::valgrind::running_on_valgrind;
use context::{ArgPlan, Context, ContextHandle, Val};
use context_sys::BootFrame;
use proptest::prelude::*;

const SENTINEL: u64 = 0x5a5a_1234_5a5a_1234;
const WORDS: usize = 512;
const BOOT_WORDS: usize = std::mem::size_of::<BootFrame>() / 8;
/// Words of the slot at the saved stack pointer (8 bytes on x86_64, 16 on
/// aarch64).
const RESUME_SLOT_WORDS: usize = context_sys::layout::RESUME_SP_STEP / 8;

extern "C" fn never_run() {}

fn arb_val() -> impl Strategy<Value = Val> {
    prop_oneof![
        any::<u64>().prop_map(Val::U64),
        any::<i8>().prop_map(Val::I8),
        any::<i16>().prop_map(Val::I16),
        any::<i32>().prop_map(Val::I32),
        any::<u8>().prop_map(Val::U8),
        any::<bool>().prop_map(Val::Bool),
        any::<u32>().prop_map(Val::GuestPtr),
        any::<u32>().prop_map(|b| Val::F32(f32::from_bits(b))),
        any::<u64>().prop_map(|b| Val::F64(f64::from_bits(b))),
    ]
}

/// The frame `plan` describes for a call of `entry`, as the words from the
/// resume word up to the top of the stack, on a stack that held `old` in
/// every word before: what init leaves in the boot frame's slots that the
/// entry does not read.
fn expected_frame(plan: &ArgPlan, args: &[Val], entry: usize, old: u64) -> Vec<u64> {
    let mut words = vec![context_sys::start as unsafe extern "C" fn() as usize as u64];
    // aarch64's resume slot is 16 bytes: the resume word, then a zero.
    words.extend(std::iter::repeat_n(0, RESUME_SLOT_WORDS - 1));
    let fp = |words: &mut Vec<u64>| {
        words.extend_from_slice(&plan.fp[..plan.fp_used]);
        words.extend(std::iter::repeat_n(old, plan.fp.len() - plan.fp_used));
    };
    let gp = |words: &mut Vec<u64>| {
        words.extend_from_slice(&plan.gp[..plan.gp_used]);
        words.extend(std::iter::repeat_n(old, plan.gp.len() - plan.gp_used));
    };
    // The boot frame: x86_64 has xmm0-7 first, aarch64 x0-7 first.
    if cfg!(target_arch = "x86_64") {
        fp(&mut words);
        gp(&mut words);
    } else {
        gp(&mut words);
        fp(&mut words);
    }
    words.push(entry as u64);
    words.push(old); // the boot frame's pad
    words.extend(ArgPlan::spilled_values(args));
    words.extend(std::iter::repeat_n(0, plan.padding / 8));
    assert_eq!(words.len(), RESUME_SLOT_WORDS + BOOT_WORDS + plan.spilled + plan.padding / 8);
    words
}

/// Words of the backing store below the stack handed to init.
const BELOW: usize = 16;

fn check(args: &[Val]) -> Result<(), TestCaseError> {
    let plan = ArgPlan::new(args);
    let mut backing = TestStack::new(WORDS);
    let b = backing.slice();
    b.fill(SENTINEL);
    let (below, s) = b.split_at_mut(BELOW);
    let len = s.len();
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    let entry = never_run as *const () as usize;
    Context::init(s, &mut parent, &mut child, entry, args).expect("init");
    let frame_words = plan.frame_bytes / 8;
    let resume = len - frame_words;
    // Under valgrind init zeroes the boot frame (memcheck was told the whole
    // stack is undefined, and the start routine loads every slot).
    let old = if running_on_valgrind() { 0 } else { SENTINEL };
    prop_assert_eq!(&s[resume..], &expected_frame(&plan, args, entry, old)[..], "frame for {} args", args.len());
    prop_assert!(below.iter().all(|&w| w == SENTINEL), "init wrote below its stack");
    // Init tells memcheck that its whole stack is undefined (it may have
    // been run on before), so the rest of it cannot be read under valgrind.
    if !running_on_valgrind() {
        prop_assert!(s[..resume].iter().all(|&w| w == SENTINEL), "init wrote below its frame");
    }
    prop_assert_eq!(
        child.regs().stack_pointer(),
        &s[resume] as *const u64 as u64,
        "the child's saved stack pointer is the resume word"
    );
    Ok(())
}

proptest! {
    #[test]
    fn init_writes_the_frame_the_plan_describes(args in proptest::collection::vec(arb_val(), 0..48)) {
        check(&args)?;
    }
}

#[test]
fn boundary_counts_of_each_class_write_the_planned_frame() {
    // Around the register counts (6 or 8 integers, 8 floats), both mixed.
    for ints in 0..=10usize {
        for floats in 0..=10usize {
            let mut args: Vec<Val> = (0..ints as u64).map(|i| Val::U64(i + 1)).collect();
            args.extend((0..floats).map(|i| Val::F64(i as f64 + 0.5)));
            check(&args).expect("ints first");
            args.reverse();
            check(&args).expect("floats first");
        }
    }
}
