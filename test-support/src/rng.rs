//! A small deterministic generator (splitmix64) for random delays,
//! schedules and generated signatures: good enough, and the same on every
//! machine, so a seed replays a run.
//!
//! Self-contained (std only, no `crate::` paths): `context-tests-c/build.rs`
//! includes this file by path, since a build script cannot use a
//! dev-dependency.

/// splitmix64 with its whole state in the one word.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)] // endless: an Iterator would only add `Some`
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`), by remainder: slightly biased for
    /// large `n`, which none of the uses mind.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_sequence_is_splitmix64() {
        // The first outputs for seed 0 of the reference implementation
        // (Vigna, splitmix64.c).
        let mut r = Rng(0);
        assert_eq!(r.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next(), 0x6e78_9e6a_a1b9_65f4);
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}
