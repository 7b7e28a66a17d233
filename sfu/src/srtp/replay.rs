//! Sliding-window replay protection over packet indices (RFC 3711 §3.3.2), as a fixed-size
//! circular bitmap: no allocation, O(1) per packet for in-order traffic.

use super::error::ReplayKind;

/// Remembers which of the last `64 * WORDS` indices up to the highest one were accepted.
///
/// Bit `i % (64 * WORDS)` stands for index `i`. Advancing the highest index clears the bits of
/// the indices skipped over, so a bit inside the window always describes the index it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow<const WORDS: usize> {
    /// Highest index accepted; meaningless while `bits` is all zero and `started` is false.
    highest: u64,
    started: bool,
    bits: [u64; WORDS],
}

impl<const WORDS: usize> Default for ReplayWindow<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const WORDS: usize> ReplayWindow<WORDS> {
    /// Number of indices the window covers, counting the highest one.
    pub const SIZE: u64 = 64 * WORDS as u64;

    /// An empty window: every index is new.
    pub const fn new() -> Self {
        ReplayWindow {
            highest: 0,
            started: false,
            bits: [0; WORDS],
        }
    }

    /// The highest index accepted so far, if any.
    pub fn highest(&self) -> Option<u64> {
        self.started.then_some(self.highest)
    }

    /// Checks `index` without recording it: `Ok` if it is new.
    pub fn check(&self, index: u64) -> Result<(), ReplayKind> {
        if !self.started || index > self.highest {
            return Ok(());
        }
        if self.highest - index >= Self::SIZE {
            return Err(ReplayKind::TooOld);
        }
        if self.bit(index) {
            Err(ReplayKind::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records `index` as received. Call only after [`check`](Self::check) passed and the packet
    /// authenticated.
    pub fn accept(&mut self, index: u64) {
        if !self.started {
            self.started = true;
            self.highest = index;
            self.bits = [0; WORDS];
        } else if index > self.highest {
            let advance = index - self.highest;
            if advance >= Self::SIZE {
                self.bits = [0; WORDS];
            } else {
                // Clear the bits of the indices skipped over (highest+1 ..= index).
                let mut i = self.highest + 1;
                while i <= index {
                    let bit = i % Self::SIZE;
                    let word = (bit / 64) as usize;
                    if bit.is_multiple_of(64) && index - i >= 63 {
                        // Whole word skipped.
                        self.bits[word] = 0;
                        i += 64;
                    } else {
                        self.bits[word] &= !(1u64 << (bit % 64));
                        i += 1;
                    }
                }
            }
            self.highest = index;
        } else if self.highest - index >= Self::SIZE {
            return;
        }
        let bit = index % Self::SIZE;
        self.bits[(bit / 64) as usize] |= 1u64 << (bit % 64);
    }

    fn bit(&self, index: u64) -> bool {
        let bit = index % Self::SIZE;
        self.bits[(bit / 64) as usize] & (1u64 << (bit % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type W = ReplayWindow<2>;

    #[test]
    fn fresh_window_accepts_anything() {
        let w = W::new();
        assert_eq!(w.check(0), Ok(()));
        assert_eq!(w.check(u64::MAX >> 16), Ok(()));
        assert_eq!(w.highest(), None);
    }

    #[test]
    fn duplicate_is_rejected_and_new_index_accepted() {
        let mut w = W::new();
        w.accept(10);
        assert_eq!(w.check(10), Err(ReplayKind::Duplicate));
        assert_eq!(w.check(11), Ok(()));
        w.accept(11);
        assert_eq!(w.check(11), Err(ReplayKind::Duplicate));
        assert_eq!(w.highest(), Some(11));
    }

    #[test]
    fn out_of_order_inside_window_is_accepted_once() {
        let mut w = W::new();
        w.accept(1000);
        for i in (1000 - 127..1000).rev().step_by(3) {
            assert_eq!(w.check(i), Ok(()), "index {i}");
            w.accept(i);
            assert_eq!(w.check(i), Err(ReplayKind::Duplicate));
        }
        assert_eq!(w.highest(), Some(1000));
    }

    #[test]
    fn index_behind_window_is_too_old() {
        let mut w = W::new();
        w.accept(1000);
        assert_eq!(w.check(1000 - 127), Ok(()));
        assert_eq!(w.check(1000 - 128), Err(ReplayKind::TooOld));
        assert_eq!(w.check(0), Err(ReplayKind::TooOld));
    }

    #[test]
    fn advancing_forgets_bits_of_skipped_indices() {
        let mut w = W::new();
        // Mark every index 0..128, then jump ahead by less than the window: the indices skipped
        // over reuse bit positions and must read as new.
        for i in 0..128 {
            w.accept(i);
        }
        w.accept(127 + 100);
        for i in 128..227 {
            assert_eq!(w.check(i), Ok(()), "index {i}");
        }
        for i in 100..128 {
            assert_eq!(w.check(i), Err(ReplayKind::Duplicate), "index {i}");
        }
        assert_eq!(w.check(99), Err(ReplayKind::TooOld));
    }

    #[test]
    fn large_jump_clears_everything() {
        let mut w = W::new();
        for i in 0..50 {
            w.accept(i);
        }
        w.accept(10_000);
        for i in 10_000 - 127..10_000 {
            assert_eq!(w.check(i), Ok(()));
        }
    }

    #[test]
    fn matches_a_reference_set_on_random_sequences() {
        use proptest::prelude::*;
        proptest!(|(steps in proptest::collection::vec(0u64..400, 1..300))| {
            let mut w = ReplayWindow::<4>::new();
            let mut seen = std::collections::BTreeSet::new();
            let mut highest: Option<u64> = None;
            for s in steps {
                let expect = match highest {
                    Some(h) if s <= h && h - s >= 256 => Err(ReplayKind::TooOld),
                    _ if seen.contains(&s) => Err(ReplayKind::Duplicate),
                    _ => Ok(()),
                };
                prop_assert_eq!(w.check(s), expect);
                if expect.is_ok() {
                    w.accept(s);
                    seen.insert(s);
                    highest = Some(highest.map_or(s, |h| h.max(s)));
                }
            }
        });
    }
}
