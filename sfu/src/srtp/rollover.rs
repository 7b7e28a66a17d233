//! The implicit SRTP packet index: roll-over counter estimation from a 16-bit sequence number
//! (RFC 3711 §3.3.1 and appendix A).

/// Packet indices are 48 bits: `2^16 * ROC + SEQ`.
pub const MAX_INDEX: u64 = (1 << 48) - 1;

/// Estimates the packet index of `seq` given `highest`, the highest index seen so far on this SSRC
/// (RFC 3711 §3.3.1): the candidate among ROC-1, ROC and ROC+1 closest to `highest`.
///
/// While the roll-over counter is still zero an index below zero is impossible, so a sequence
/// number more than 2^15 ahead counts as a jump forward in the same roll-over period (the same
/// choice webrtc-srtp and libsrtp's sender make).
///
/// The result can exceed [`MAX_INDEX`] only when the roll-over counter itself would wrap;
/// callers refuse such packets.
#[inline]
pub fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 && roc > 0 {
            roc - 1
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    (v << 16) | u64::from(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(roc: u64, seq: u16) -> u64 {
        (roc << 16) | u64::from(seq)
    }

    #[test]
    fn in_order_packets_keep_roc() {
        assert_eq!(estimate_index(idx(3, 100), 101), idx(3, 101));
        assert_eq!(estimate_index(idx(3, 40_000), 40_001), idx(3, 40_001));
    }

    #[test]
    fn wrap_to_small_sequence_increments_roc() {
        assert_eq!(estimate_index(idx(0, 65_535), 0), idx(1, 0));
        assert_eq!(estimate_index(idx(7, 65_000), 200), idx(8, 200));
    }

    #[test]
    fn late_packet_from_before_wrap_uses_previous_roc() {
        assert_eq!(estimate_index(idx(1, 3), 65_534), idx(0, 65_534));
        assert_eq!(estimate_index(idx(5, 100), 40_000), idx(4, 40_000));
    }

    #[test]
    fn reordered_packet_inside_half_range_keeps_roc() {
        assert_eq!(estimate_index(idx(2, 50_000), 20_000), idx(2, 20_000));
        assert_eq!(estimate_index(idx(2, 20_000), 50_000), idx(2, 50_000));
    }

    #[test]
    fn roc_never_goes_below_zero() {
        assert_eq!(estimate_index(idx(0, 10), 60_000), idx(0, 60_000));
    }

    #[test]
    fn estimate_is_within_half_range_of_highest() {
        use proptest::prelude::*;
        proptest!(|(roc in 1u64..1000, s_l: u16, seq: u16)| {
            let h = idx(roc, s_l);
            let e = estimate_index(h, seq);
            prop_assert_eq!(e as u16, seq);
            let d = e as i64 - h as i64;
            prop_assert!((-0x8000..=0x8000).contains(&d), "d={}", d);
        });
    }
}
