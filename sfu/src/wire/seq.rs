//! Wrap-aware comparison of 16-bit RTP sequence numbers (RFC 3550 §A.1 serial arithmetic).

use crate::types::SeqNo;

/// Signed distance from `a` to `b` in sequence space: positive when `b` is newer than `a`.
/// The half-way point (32768 apart) counts as newer.
#[inline]
pub fn seq_diff(a: SeqNo, b: SeqNo) -> i32 {
    let d = b.0.wrapping_sub(a.0);
    if d >= 0x8000 {
        i32::from(d) - 0x1_0000
    } else {
        i32::from(d)
    }
}

/// True when `b` comes after `a` in wrap-aware order.
#[inline]
pub fn seq_newer(a: SeqNo, b: SeqNo) -> bool {
    seq_diff(a, b) > 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn seq_diff_crosses_the_wrap() {
        assert_eq!(seq_diff(SeqNo(65535), SeqNo(0)), 1);
        assert_eq!(seq_diff(SeqNo(0), SeqNo(65535)), -1);
        assert_eq!(seq_diff(SeqNo(100), SeqNo(90)), -10);
        assert!(seq_newer(SeqNo(65000), SeqNo(10)));
        assert!(!seq_newer(SeqNo(10), SeqNo(65000)));
        assert!(!seq_newer(SeqNo(7), SeqNo(7)));
    }
}
