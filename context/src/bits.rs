//! The floating-point register value, portable and per architecture:
//! [`V128`] (the 128 bits of a vector register, on both architectures) and
//! [`FpRegValue`] (`__m128` on x86_64, [`V128`] on aarch64), with the
//! conversions between them and their two 64-bit halves.
//!
//! This module needs `unsafe` on x86_64 for `transmute`: the SSE intrinsics
//! that would do the same are `unsafe` to call in this edition, and a
//! transmute between two 16-byte plain-bit types is the smaller claim.
#![allow(unsafe_code)]

/// The 128 bits of a vector register (`xmm0` on x86_64, `q0`/`v0` on
/// aarch64), as two 64-bit halves, low first: the same type on both
/// architectures.
///
/// ```
/// use context::V128;
/// let v = V128::from_bits(1.5f64.to_bits(), 7);
/// assert_eq!(v.bits(), (1.5f64.to_bits(), 7));
/// assert_eq!(f64::from_bits(v.lo()), 1.5);
/// ```
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct V128 {
    lo: u64,
    hi: u64,
}

impl V128 {
    /// The value whose low 64 bits are `lo` and high 64 bits are `hi`.
    #[inline]
    pub const fn from_bits(lo: u64, hi: u64) -> V128 {
        V128 { lo, hi }
    }

    /// The low and high 64 bits.
    #[inline]
    pub const fn bits(self) -> (u64, u64) {
        (self.lo, self.hi)
    }

    /// The low 64 bits (a `double` argument or result lives here; a
    /// `float` in the low 32 of them).
    #[inline]
    pub const fn lo(self) -> u64 {
        self.lo
    }

    /// The high 64 bits.
    #[inline]
    pub const fn hi(self) -> u64 {
        self.hi
    }
}

/// The floating-point register value of [`RegVal::FpReg`](crate::RegVal)
/// and [`Context::get_retval_fp`](crate::Context::get_retval_fp): the
/// architecture's own type, `__m128` on x86_64 and [`V128`] on aarch64.
/// Code for both architectures uses [`V128`] through
/// [`Context::get_retval_v128`](crate::Context::get_retval_v128),
/// [`UntypedRetVal::v128`](crate::UntypedRetVal::v128) and `V128::from`.
#[cfg(target_arch = "x86_64")]
pub type FpRegValue = core::arch::x86_64::__m128;
/// The floating-point register value of [`RegVal::FpReg`](crate::RegVal)
/// and [`Context::get_retval_fp`](crate::Context::get_retval_fp): the
/// architecture's own type, `__m128` on x86_64 and [`V128`] on aarch64.
#[cfg(target_arch = "aarch64")]
pub type FpRegValue = V128;

#[cfg(target_arch = "x86_64")]
impl From<core::arch::x86_64::__m128> for V128 {
    fn from(x: core::arch::x86_64::__m128) -> V128 {
        // SAFETY: `V128` is `repr(C)` of two `u64`s, 16 bytes like
        // `__m128`, and every bit pattern is a valid value of either.
        unsafe { core::mem::transmute::<core::arch::x86_64::__m128, V128>(x) }
    }
}

#[cfg(target_arch = "x86_64")]
impl From<V128> for core::arch::x86_64::__m128 {
    fn from(x: V128) -> core::arch::x86_64::__m128 {
        // SAFETY: as in `From<__m128> for V128`.
        unsafe { core::mem::transmute::<V128, core::arch::x86_64::__m128>(x) }
    }
}

/// The [`FpRegValue`] whose low 64 bits are `lo` and high 64 bits are `hi`.
#[inline]
// On aarch64 FpRegValue is V128 and the conversion is the identity.
#[allow(clippy::useless_conversion)]
pub(crate) fn fp_from_bits(lo: u64, hi: u64) -> FpRegValue {
    FpRegValue::from(V128::from_bits(lo, hi))
}

/// The low and high 64 bits of an [`FpRegValue`].
#[inline]
// On aarch64 FpRegValue is V128 and the conversion is the identity.
#[allow(clippy::useless_conversion)]
pub(crate) fn fp_bits(x: FpRegValue) -> (u64, u64) {
    V128::from(x).bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // On aarch64 FpRegValue is V128 and the conversion is the identity.
    #[allow(clippy::useless_conversion)]
    fn halves_round_trip_in_order() {
        assert_eq!(fp_bits(fp_from_bits(1, 0x8000_0000_0000_0000)), (1, 0x8000_0000_0000_0000));
        assert_eq!(V128::from(fp_from_bits(3, 4)), V128::from_bits(3, 4));
    }

    #[test]
    fn v128_is_sixteen_aligned_bytes() {
        assert_eq!(core::mem::size_of::<V128>(), 16);
        assert_eq!(core::mem::align_of::<V128>(), 16);
    }
}
