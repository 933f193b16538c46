//! Return values of an entry function, before their type is known.

use core::fmt;

use crate::bits::{FpRegValue, V128, fp_bits};

/// The names [`Display`](fmt::Display) gives the two registers.
#[cfg(target_arch = "x86_64")]
const NAMES: (&str, &str) = ("rax", "xmm0");
#[cfg(target_arch = "aarch64")]
const NAMES: (&str, &str) = ("x0", "q0");

/// The return registers of a finished entry function: `rax` and the whole of
/// `xmm0` (aarch64: `x0` and `q0`). Which one holds the result depends on
/// the function's return type, which only the caller knows; the `as_*`
/// methods read it as that type.
///
/// ```
/// use context::{val_to_reg, RegVal, UntypedRetVal, Val};
/// let RegVal::FpReg(xmm0) = val_to_reg(&Val::F32(1.5)) else { unreachable!() };
/// let r = UntypedRetVal::new(0xffff_fffe, xmm0);
/// assert_eq!(r.as_i32(), -2);
/// assert_eq!(r.as_u8(), 0xfe);
/// assert_eq!(r.as_f32(), 1.5);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct UntypedRetVal {
    gp: u64,
    fp: FpRegValue,
}

macro_rules! gp_accessors {
    ($($name:ident -> $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("The result read as a C `", stringify!($ty), "` from rax (aarch64: x0), low bits, truncated.")]
            pub fn $name(&self) -> $ty {
                self.gp as $ty
            }
        )*
    };
}

macro_rules! from_retval {
    ($($ty:ty => $method:ident),* $(,)?) => {
        $(
            impl From<UntypedRetVal> for $ty {
                fn from(r: UntypedRetVal) -> $ty {
                    r.$method()
                }
            }
        )*
    };
}

impl UntypedRetVal {
    /// A return value from the contents of rax and xmm0 (aarch64: x0 and
    /// q0).
    pub fn new(gp: u64, fp: FpRegValue) -> UntypedRetVal {
        UntypedRetVal { gp, fp }
    }

    /// The raw contents of rax (aarch64: x0).
    pub fn gp(&self) -> u64 {
        self.gp
    }

    /// The raw contents of xmm0 (aarch64: q0), in the architecture's type.
    pub fn fp(&self) -> FpRegValue {
        self.fp
    }

    /// The raw contents of xmm0 (aarch64: q0), in the portable type.
    ///
    /// ```
    /// use context::{UntypedRetVal, V128};
    /// let r = UntypedRetVal::new(0, V128::from_bits(2.5f64.to_bits(), 0).into());
    /// assert_eq!(r.v128(), V128::from_bits(2.5f64.to_bits(), 0));
    /// assert_eq!(r.as_f64(), 2.5);
    /// ```
    // On aarch64 FpRegValue is V128 and the conversion is the identity.
    #[allow(clippy::useless_conversion)]
    pub fn v128(&self) -> V128 {
        V128::from(self.fp)
    }

    /// The low and high 64 bits of xmm0 (aarch64: q0).
    pub fn fp_bits(&self) -> (u64, u64) {
        fp_bits(self.fp)
    }

    gp_accessors! {
        as_u8 -> u8, as_u16 -> u16, as_u32 -> u32, as_u64 -> u64, as_usize -> usize,
        as_i8 -> i8, as_i16 -> i16, as_i32 -> i32, as_i64 -> i64, as_isize -> isize,
    }

    /// The result read as a C `_Bool`: only the low byte (`al`; aarch64:
    /// the low byte of `w0`) is defined by the ABI.
    pub fn as_bool(&self) -> bool {
        self.gp as u8 != 0
    }

    /// The result read as a C `float` from the low 32 bits of xmm0 (aarch64: s0).
    pub fn as_f32(&self) -> f32 {
        f32::from_bits(self.fp_bits().0 as u32)
    }

    /// The result read as a C `double` from the low 64 bits of xmm0 (aarch64: d0).
    pub fn as_f64(&self) -> f64 {
        f64::from_bits(self.fp_bits().0)
    }
}

from_retval! {
    u8 => as_u8, u16 => as_u16, u32 => as_u32, u64 => as_u64, usize => as_usize,
    i8 => as_i8, i16 => as_i16, i32 => as_i32, i64 => as_i64, isize => as_isize,
    bool => as_bool, f32 => as_f32, f64 => as_f64,
}

impl fmt::Display for UntypedRetVal {
    /// Shows both registers, since which one is meaningful is not known:
    /// `rax = 0x2a, xmm0 = 0x00000000000000000000000000000000` (aarch64:
    /// `x0 = 0x2a, q0 = 0x…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = self.fp_bits();
        write!(f, "{} = {:#x}, {} = 0x{hi:016x}{lo:016x}", NAMES.0, self.gp, NAMES.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::fp_from_bits;

    fn fp(lo: u64, hi: u64) -> FpRegValue {
        fp_from_bits(lo, hi)
    }

    #[test]
    fn integer_accessors_truncate_rax() {
        let r = UntypedRetVal::new(0x1234_5678_9abc_def0, fp(0, 0));
        assert_eq!(r.as_u8(), 0xf0);
        assert_eq!(r.as_i8(), 0xf0u8 as i8);
        assert_eq!(r.as_u16(), 0xdef0);
        assert_eq!(r.as_u32(), 0x9abc_def0);
        assert_eq!(r.as_i64(), 0x1234_5678_9abc_def0);
        assert_eq!(u64::from(r), 0x1234_5678_9abc_def0);
    }

    #[test]
    fn bool_reads_only_al() {
        assert!(!UntypedRetVal::new(0xff00, fp(0, 0)).as_bool());
        assert!(UntypedRetVal::new(0x01, fp(0, 0)).as_bool());
    }

    #[test]
    fn float_accessors_read_low_lanes_bit_exactly() {
        let r = UntypedRetVal::new(0, fp(0xdead_beef_7fc0_0001, 7));
        assert_eq!(r.as_f32().to_bits(), 0x7fc0_0001);
        assert_eq!(r.as_f64().to_bits(), 0xdead_beef_7fc0_0001);
        assert_eq!(r.fp_bits(), (0xdead_beef_7fc0_0001, 7));
    }

    #[test]
    fn display_shows_both_registers() {
        let r = UntypedRetVal::new(42, fp(1, 2));
        let want = format!("{} = 0x2a, {} = 0x00000000000000020000000000000001", NAMES.0, NAMES.1);
        assert_eq!(r.to_string(), want);
        #[cfg(target_arch = "x86_64")]
        assert!(want.starts_with("rax = 0x2a, xmm0 = "));
        #[cfg(target_arch = "aarch64")]
        assert!(want.starts_with("x0 = 0x2a, q0 = "));
    }
}
