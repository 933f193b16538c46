//! Conversions between `__m128` and its two 64-bit halves.
//!
//! This module needs `unsafe` for `transmute`: the SSE intrinsics that would
//! do the same are `unsafe` to call in this edition, and a transmute between
//! two 16-byte plain-bit types is the smaller claim.
#![allow(unsafe_code)]

use core::arch::x86_64::__m128;

/// An `__m128` whose low 64 bits are `lo` and high 64 bits are `hi`.
pub(crate) fn m128_from_bits(lo: u64, hi: u64) -> __m128 {
    // SAFETY: `[u64; 2]` and `__m128` are both 16 bytes, and every bit
    // pattern is a valid value of either.
    unsafe { core::mem::transmute::<[u64; 2], __m128>([lo, hi]) }
}

/// The low and high 64 bits of an `__m128`.
pub(crate) fn m128_bits(x: __m128) -> (u64, u64) {
    // SAFETY: as in `m128_from_bits`.
    let [lo, hi] = unsafe { core::mem::transmute::<__m128, [u64; 2]>(x) };
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_trip_in_order() {
        assert_eq!(m128_bits(m128_from_bits(1, 0x8000_0000_0000_0000)), (1, 0x8000_0000_0000_0000));
    }
}
