//! The measurement tag at the end of every synthetic payload: a magic word, the publisher's send
//! time (nanoseconds on the run's [`Clock`](super::Clock)) and a per-stream sequence tag. A
//! retransmission carries the tag of the original.

/// Tag length in bytes.
pub const TAG_LEN: usize = 20;
/// "LGT1": marks a payload as carrying a tag.
const MAGIC: u32 = 0x4c47_5431;

/// A decoded tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Send time in nanoseconds since the run started.
    pub send_ns: u64,
    /// Index of the packet in its stream (0, 1, 2, ...), independent of RTP sequence numbers.
    pub seq: u64,
}

impl Tag {
    /// Writes the tag into the last [`TAG_LEN`] bytes of `payload`; no-op when it is shorter.
    pub fn write_tail(&self, payload: &mut [u8]) {
        let Some(start) = payload.len().checked_sub(TAG_LEN) else {
            return;
        };
        let t = &mut payload[start..];
        t[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        t[4..12].copy_from_slice(&self.send_ns.to_be_bytes());
        t[12..20].copy_from_slice(&self.seq.to_be_bytes());
    }

    /// Reads the tag at the end of `payload`, if the magic word is there.
    pub fn read_tail(payload: &[u8]) -> Option<Tag> {
        let start = payload.len().checked_sub(TAG_LEN)?;
        let t = &payload[start..];
        let word = |r: std::ops::Range<usize>| -> Option<u64> {
            let mut b = [0u8; 8];
            let s = t.get(r)?;
            b[8 - s.len()..].copy_from_slice(s);
            Some(u64::from_be_bytes(b))
        };
        if word(0..4)? != u64::from(MAGIC) {
            return None;
        }
        Some(Tag {
            send_ns: word(4..12)?,
            seq: word(12..20)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_round_trips_at_the_end_of_a_payload() {
        let mut p = [0xaau8; 64];
        let t = Tag {
            send_ns: 123_456_789_012,
            seq: 77,
        };
        t.write_tail(&mut p);
        assert_eq!(Tag::read_tail(&p), Some(t));
        assert_eq!(p[0], 0xaa, "bytes before the tag are kept");
    }

    #[test]
    fn payloads_without_the_magic_or_too_short_have_no_tag() {
        assert_eq!(Tag::read_tail(&[0u8; 64]), None);
        assert_eq!(Tag::read_tail(&[0u8; 5]), None);
        let mut short = [0u8; 10];
        Tag { send_ns: 1, seq: 1 }.write_tail(&mut short);
        assert_eq!(short, [0u8; 10]);
    }
}
