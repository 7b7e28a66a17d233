//! Extends 16-bit RTP sequence numbers to 64 bits by counting wrap-arounds (RFC 3550 appendix A.1),
//! taking each new number as the one nearest to the highest seen so that reordering across the
//! wrap resolves correctly.

use crate::types::{ExtSeq, SeqNo};

/// Roll-over count given to the first packet, so that a packet slightly older than the first one
/// (even across the wrap) still gets a valid, smaller extended number instead of underflowing.
const FIRST_ROLLOVER: u64 = 1 << 16;

/// Unwraps the sequence numbers of one RTP stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    /// An unwrapper that has seen no packet yet.
    pub fn new() -> Self {
        Self { highest: None }
    }

    /// Extends `seq` and remembers it if it is the highest so far.
    ///
    /// The first packet gets a roll-over count of 1. Every later number is placed within ±2^15 of
    /// the highest one seen, which is what makes a late packet from before a wrap come out smaller
    /// and a packet after the wrap come out larger.
    pub fn unwrap(&mut self, seq: SeqNo) -> ExtSeq {
        let ext = self.peek(seq);
        if self.highest.is_none_or(|h| ext.0 > h) {
            self.highest = Some(ext.0);
        }
        ext
    }

    /// What [`unwrap`](Self::unwrap) would return for `seq`, without remembering anything.
    pub fn peek(&self, seq: SeqNo) -> ExtSeq {
        match self.highest {
            None => ExtSeq(FIRST_ROLLOVER + u64::from(seq.0)),
            Some(h) => {
                let delta = i64::from(seq.0.wrapping_sub(h as u16) as i16);
                // Only a stream that went backwards by more than 2^16 * 2^15 packets from its
                // first number could go below zero; clamp instead of wrapping.
                ExtSeq(h.checked_add_signed(delta).unwrap_or(0))
            }
        }
    }

    /// The highest extended sequence number seen, if any packet was seen.
    pub fn highest(&self) -> Option<ExtSeq> {
        self.highest.map(ExtSeq)
    }

    /// Forgets all state (for example when the stream's SSRC changes).
    pub fn reset(&mut self) {
        self.highest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_packet_starts_at_rollover_one() {
        let mut u = SeqUnwrapper::new();
        assert_eq!(u.unwrap(SeqNo(7)), ExtSeq(65536 + 7));
        assert_eq!(u.highest(), Some(ExtSeq(65536 + 7)));
    }

    #[test]
    fn in_order_packets_cross_the_wrap() {
        let mut u = SeqUnwrapper::new();
        assert_eq!(u.unwrap(SeqNo(65534)).0, 65536 + 65534);
        assert_eq!(u.unwrap(SeqNo(65535)).0, 65536 + 65535);
        assert_eq!(u.unwrap(SeqNo(0)).0, 2 * 65536);
        assert_eq!(u.unwrap(SeqNo(1)).0, 2 * 65536 + 1);
    }

    #[test]
    fn late_packet_from_before_the_wrap_comes_out_smaller() {
        let mut u = SeqUnwrapper::new();
        u.unwrap(SeqNo(65535));
        u.unwrap(SeqNo(2));
        assert_eq!(u.unwrap(SeqNo(65534)).0, 65536 + 65534);
        assert_eq!(u.unwrap(SeqNo(0)).0, 2 * 65536);
        assert_eq!(u.highest(), Some(ExtSeq(2 * 65536 + 2)));
    }

    #[test]
    fn packet_older_than_the_first_does_not_underflow() {
        let mut u = SeqUnwrapper::new();
        u.unwrap(SeqNo(0));
        assert_eq!(u.unwrap(SeqNo(65530)).0, 65530);
        assert_eq!(u.highest(), Some(ExtSeq(65536)));
    }

    #[test]
    fn peek_does_not_advance() {
        let mut u = SeqUnwrapper::new();
        u.unwrap(SeqNo(100));
        assert_eq!(u.peek(SeqNo(200)).0, 65536 + 200);
        assert_eq!(u.highest(), Some(ExtSeq(65536 + 100)));
    }

    proptest! {
        /// Any stream that moves forward in steps below 2^15 and is delivered with bounded
        /// reordering unwraps to exactly the numbers it was sent with (shifted by a constant).
        #[test]
        fn unwrap_recovers_sent_numbers_under_reordering(
            start in any::<u16>(),
            steps in proptest::collection::vec(1u64..300, 1..400),
            jitter in proptest::collection::vec(0usize..50, 401),
        ) {
            let mut sent = Vec::with_capacity(steps.len() + 1);
            let mut s = u64::from(start) + 65536;
            sent.push(s);
            for st in &steps {
                s += st;
                sent.push(s);
            }
            // Each packet is delayed by at most 50 positions.
            let mut keyed: Vec<(usize, u64)> =
                sent.iter().enumerate().map(|(i, &x)| (i + jitter[i], x)).collect();
            keyed.sort_by_key(|&(k, _)| k);
            let order: Vec<u64> = keyed.into_iter().map(|(_, x)| x).collect();
            let mut u = SeqUnwrapper::new();
            let first = order[0];
            let offset = u.unwrap(SeqNo(first as u16)).0 as i64 - first as i64;
            for &x in &order[1..] {
                let got = u.unwrap(SeqNo(x as u16)).0 as i64;
                prop_assert_eq!(got - offset, x as i64);
            }
        }
    }
}
