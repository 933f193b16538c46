//! Typed arguments for entry functions and how they map onto the argument
//! registers and stack slots of System V (x86_64) and AAPCS64 (aarch64).

use crate::bits::{FpRegValue, fp_from_bits};
use core::ffi::c_void;

/// One argument for an entry function, with the C type it stands for.
///
/// The type decides both the register class (integer or floating) and how a
/// narrow value is widened: unsigned types and [`Val::GuestPtr`] are
/// zero-extended to 64 bits, signed types sign-extended, `bool` becomes 0 or
/// 1, and `f32`/`f64` keep their exact bit patterns (NaN payloads included).
///
/// ```
/// use context::{val_to_stack, Val};
/// assert_eq!(val_to_stack(&Val::I8(-1)), u64::MAX);
/// assert_eq!(val_to_stack(&Val::U8(0xff)), 0xff);
/// assert_eq!(val_to_stack(&Val::from(1.5f32)), u64::from(1.5f32.to_bits()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Val {
    /// A host pointer (C `void *`).
    CPtr(*const c_void),
    /// A 32-bit offset into guest memory; zero-extended.
    GuestPtr(u32),
    /// C `uint8_t`.
    U8(u8),
    /// C `uint16_t`.
    U16(u16),
    /// C `uint32_t`.
    U32(u32),
    /// C `uint64_t`.
    U64(u64),
    /// C `int8_t`.
    I8(i8),
    /// C `int16_t`.
    I16(i16),
    /// C `int32_t`.
    I32(i32),
    /// C `int64_t`.
    I64(i64),
    /// C `size_t`.
    USize(usize),
    /// C `ssize_t` / `intptr_t`.
    ISize(isize),
    /// C `_Bool`.
    Bool(bool),
    /// C `float`, passed in the low 32 bits of an xmm register (aarch64:
    /// a v register, as sN).
    F32(f32),
    /// C `double`, passed in the low 64 bits of an xmm register (aarch64:
    /// a v register, as dN).
    F64(f64),
}

macro_rules! impl_from_scalar {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$ty> for Val {
                fn from(x: $ty) -> Val {
                    Val::$variant(x)
                }
            }
        )*
    };
}

impl_from_scalar! {
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    usize => USize, isize => ISize, bool => Bool, f32 => F32, f64 => F64,
}

impl<T> From<*const T> for Val {
    fn from(p: *const T) -> Val {
        Val::CPtr(p.cast())
    }
}

impl<T> From<*mut T> for Val {
    fn from(p: *mut T) -> Val {
        Val::CPtr(p.cast_const().cast())
    }
}

/// The register an argument travels in, with its full contents.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RegVal {
    /// An integer-class value for rdi, rsi, rdx, rcx, r8 or r9 (aarch64:
    /// x0–x7).
    GpReg(u64),
    /// A floating value for xmm0–xmm7 (aarch64: v0–v7): the bits in the low
    /// lanes, zeros above.
    FpReg(FpRegValue),
}

impl Val {
    /// Whether this value travels in a floating-point register (xmm;
    /// aarch64: v), true for `F32`/`F64`.
    #[inline]
    pub fn is_float(&self) -> bool {
        matches!(self, Val::F32(_) | Val::F64(_))
    }
}

/// The 64-bit word this value occupies, in a general-purpose register or a
/// stack slot: integers zero- or sign-extended as their type says, floats as
/// their bit pattern in the low bits.
#[inline]
pub fn val_to_stack(v: &Val) -> u64 {
    match *v {
        Val::CPtr(p) => p as usize as u64,
        Val::GuestPtr(x) => u64::from(x),
        Val::U8(x) => u64::from(x),
        Val::U16(x) => u64::from(x),
        Val::U32(x) => u64::from(x),
        Val::U64(x) => x,
        Val::I8(x) => i64::from(x) as u64,
        Val::I16(x) => i64::from(x) as u64,
        Val::I32(x) => i64::from(x) as u64,
        Val::I64(x) => x as u64,
        Val::USize(x) => x as u64,
        Val::ISize(x) => x as i64 as u64,
        Val::Bool(x) => u64::from(x),
        Val::F32(x) => u64::from(x.to_bits()),
        Val::F64(x) => x.to_bits(),
    }
}

/// The register class and contents of this value when passed in a register.
///
/// ```
/// use context::{val_to_reg, RegVal, Val};
/// assert!(matches!(val_to_reg(&Val::I16(-2)), RegVal::GpReg(0xffff_ffff_ffff_fffe)));
/// assert!(matches!(val_to_reg(&Val::F64(2.0)), RegVal::FpReg(_)));
/// ```
pub fn val_to_reg(v: &Val) -> RegVal {
    let word = val_to_stack(v);
    if v.is_float() { RegVal::FpReg(fp_from_bits(word, 0)) } else { RegVal::GpReg(word) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::fp_bits;

    fn fp_words(r: RegVal) -> (u64, u64) {
        match r {
            RegVal::FpReg(x) => fp_bits(x),
            RegVal::GpReg(_) => panic!("expected an fp register"),
        }
    }

    #[test]
    fn narrow_signed_values_are_sign_extended() {
        assert_eq!(val_to_stack(&Val::I8(-128)), 0xffff_ffff_ffff_ff80);
        assert_eq!(val_to_stack(&Val::I16(-1)), u64::MAX);
        assert_eq!(val_to_stack(&Val::I32(-2)), 0xffff_ffff_ffff_fffe);
        assert_eq!(val_to_stack(&Val::ISize(-3)), 0xffff_ffff_ffff_fffd);
    }

    #[test]
    fn narrow_unsigned_values_are_zero_extended() {
        assert_eq!(val_to_stack(&Val::U8(0x80)), 0x80);
        assert_eq!(val_to_stack(&Val::U16(0xffff)), 0xffff);
        assert_eq!(val_to_stack(&Val::U32(0xffff_ffff)), 0xffff_ffff);
        assert_eq!(val_to_stack(&Val::GuestPtr(0x8000_0000)), 0x8000_0000);
        assert_eq!(val_to_stack(&Val::Bool(true)), 1);
        assert_eq!(val_to_stack(&Val::Bool(false)), 0);
    }

    #[test]
    fn float_bits_sit_in_the_low_lanes_with_zeros_above() {
        let nan = f32::from_bits(0x7fc0_1234);
        assert_eq!(fp_words(val_to_reg(&Val::F32(nan))), (0x7fc0_1234, 0));
        let d = f64::from_bits(0xfff8_0000_dead_beef);
        assert_eq!(fp_words(val_to_reg(&Val::F64(d))), (0xfff8_0000_dead_beef, 0));
        assert_eq!(val_to_stack(&Val::F32(-0.0)), 0x8000_0000);
    }

    #[test]
    fn from_impls_pick_the_matching_variant() {
        let x = 5u32;
        assert_eq!(Val::from(&x as *const u32), Val::CPtr((&x as *const u32).cast()));
        assert_eq!(Val::from(-1i64), Val::I64(-1));
        assert_eq!(Val::from(true), Val::Bool(true));
        assert!(Val::from(1.0f64).is_float());
        assert!(!Val::from(1usize).is_float());
    }
}
