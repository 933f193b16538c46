//! Property test: a generated C child run through a context receives
//! exactly the bits it receives when C calls it directly, and returns the
//! same bits.
//!
//! proptest draws one of the generated signatures (0 to 24 parameters of
//! every scalar type in varied orders, every return type) and values for it,
//! extremes and NaN payloads included.

mod common;

use std::fmt;

use context::{FP_ARG_REGS, GP_ARG_REGS, Val, val_to_stack};
use context_tests_c::{GENERATED, GenChild, record};
use proptest::prelude::*;

use common::{Fresh, arb_word, c_name, config, retval_word, val_for_at};

/// One drawn call; its `Debug` reads like the C call it stands for, so that
/// a failing case names the signature and every argument's bits.
#[derive(Clone)]
struct Call {
    id: usize,
    words: Vec<u64>,
}

impl Call {
    fn child(&self) -> &'static GenChild {
        &GENERATED[self.id]
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let child = self.child();
        write!(f, "{} ctc_gen_{}(", c_name(child.ret), self.id)?;
        for (i, (t, w)) in child.params.iter().zip(&self.words).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}({}){w:#x}", c_name(*t))?;
        }
        write!(f, ")")
    }
}

fn arb_call() -> impl Strategy<Value = Call> {
    (0..GENERATED.len()).prop_flat_map(|id| {
        let words: Vec<_> = GENERATED[id].params.iter().map(|&t| arb_word(t)).collect();
        words.prop_map(move |words| Call { id, words })
    })
}

#[test]
fn the_generated_table_covers_every_arity_and_type() {
    use context_tests_c::CType::*;
    for n in 0..=24 {
        assert!(GENERATED.iter().any(|c| c.params.len() == n), "no child with {n} parameters");
    }
    for t in [I8, U8, I16, U16, I32, U32, I64, U64, Bool, F32, F64, Ptr] {
        assert!(GENERATED.iter().any(|c| c.params.contains(&t)), "no child takes {t:?}");
        assert!(GENERATED.iter().any(|c| c.ret == t), "no child returns {t:?}");
    }
    // More floating arguments than floating argument registers and more
    // integer ones than integer argument registers, in the same call.
    assert!(GENERATED.iter().any(|c| {
        c.params.iter().filter(|t| t.is_float()).count() > FP_ARG_REGS
            && c.params.iter().filter(|t| !t.is_float()).count() > GP_ARG_REGS
    }));
}

proptest! {
    #![proptest_config(config("generated_child_receives_the_bits_of_a_direct_call", 10_000))]

    #[test]
    fn generated_child_receives_the_bits_of_a_direct_call(call in arb_call()) {
        let child = call.child();
        let args: Vec<Val> =
            child.params.iter().zip(&call.words).enumerate().map(|(i, (&t, &w))| val_for_at(t, w, i)).collect();
        let expected: Vec<u64> = args.iter().map(val_to_stack).collect();

        let direct_ret = child.call_direct(&call.words);
        let direct = record();
        prop_assert_eq!(direct.fn_id, child.id as u64);
        prop_assert_eq!(direct.args(), &expected[..], "the direct call recorded other words than the values given");

        let ret = Fresh::new(32 * 1024, child.entry_addr(), &args).run();
        let via = record();
        prop_assert_eq!(via.calls, direct.calls + 1, "the child did not run exactly once in the context");
        prop_assert_eq!(via.fn_id, child.id as u64);
        prop_assert_eq!(via.args(), direct.args(), "arguments differ from a direct call");
        prop_assert_eq!(retval_word(child.ret, ret), direct_ret, "result differs from a direct call ({})", ret);
    }
}
