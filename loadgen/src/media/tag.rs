//! The measurement tag at the end of every synthetic payload: a magic word, the publisher's send
//! time (nanoseconds on the run's [`Clock`](super::Clock)) and a per-stream sequence tag. A
//! retransmission carries the tag of the original.
//!
//! A simulcast encoding marks its spatial rank (0 lowest) in the magic word: `LGT1` is a tag
//! without a layer (every non-simulcast payload, unchanged), `LGL` followed by the rank byte a
//! tag of that encoding. Both are [`TAG_LEN`] bytes.

/// Tag length in bytes.
pub const TAG_LEN: usize = 20;
/// "LGT1": marks a payload as carrying a tag without a layer.
const MAGIC: u32 = 0x4c47_5431;
/// "LGL" and the rank in the low byte: a tag of one simulcast encoding.
const MAGIC_LAYER: u32 = 0x4c47_4c00;
/// Highest rank a tag can carry.
pub const MAX_TAG_LAYER: u8 = 0x7f;

/// A decoded tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Send time in nanoseconds since the run started.
    pub send_ns: u64,
    /// Index of the packet in its stream (0, 1, 2, ...), independent of RTP sequence numbers.
    pub seq: u64,
    /// The simulcast encoding's spatial rank (0 lowest); `None` without simulcast.
    pub layer: Option<u8>,
}

impl Tag {
    /// A tag without a layer.
    pub fn new(send_ns: u64, seq: u64) -> Self {
        Tag {
            send_ns,
            seq,
            layer: None,
        }
    }

    /// Writes the tag into the last [`TAG_LEN`] bytes of `payload`; no-op when it is shorter.
    /// A layer above [`MAX_TAG_LAYER`] is written as that.
    pub fn write_tail(&self, payload: &mut [u8]) {
        let Some(start) = payload.len().checked_sub(TAG_LEN) else {
            return;
        };
        let magic = match self.layer {
            None => MAGIC,
            Some(l) => MAGIC_LAYER | u32::from(l.min(MAX_TAG_LAYER)),
        };
        let t = &mut payload[start..];
        t[0..4].copy_from_slice(&magic.to_be_bytes());
        t[4..12].copy_from_slice(&self.send_ns.to_be_bytes());
        t[12..20].copy_from_slice(&self.seq.to_be_bytes());
    }

    /// Reads the tag at the end of `payload`, if a magic word is there.
    pub fn read_tail(payload: &[u8]) -> Option<Tag> {
        let start = payload.len().checked_sub(TAG_LEN)?;
        let t = &payload[start..];
        let word = |r: std::ops::Range<usize>| -> Option<u64> {
            let mut b = [0u8; 8];
            let s = t.get(r)?;
            b[8 - s.len()..].copy_from_slice(s);
            Some(u64::from_be_bytes(b))
        };
        let magic = word(0..4)? as u32;
        let layer = if magic == MAGIC {
            None
        } else if magic & 0xffff_ff00 == MAGIC_LAYER && (magic as u8) <= MAX_TAG_LAYER {
            Some(magic as u8)
        } else {
            return None;
        };
        Some(Tag {
            send_ns: word(4..12)?,
            seq: word(12..20)?,
            layer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_round_trips_at_the_end_of_a_payload() {
        let mut p = [0xaau8; 64];
        let t = Tag::new(123_456_789_012, 77);
        t.write_tail(&mut p);
        assert_eq!(Tag::read_tail(&p), Some(t));
        assert_eq!(p[0], 0xaa, "bytes before the tag are kept");
    }

    #[test]
    fn a_tag_without_a_layer_keeps_the_original_bytes() {
        let mut p = [0u8; 20];
        Tag::new(0x0102_0304_0506_0708, 9).write_tail(&mut p);
        assert_eq!(&p[..4], b"LGT1");
        assert_eq!(&p[4..12], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&p[12..20], &9u64.to_be_bytes());
    }

    #[test]
    fn a_simulcast_tag_carries_its_rank() {
        for layer in [0u8, 1, 2, MAX_TAG_LAYER] {
            let mut p = [0u8; 40];
            let t = Tag {
                send_ns: 5,
                seq: 6,
                layer: Some(layer),
            };
            t.write_tail(&mut p);
            assert_eq!(&p[20..23], b"LGL");
            assert_eq!(Tag::read_tail(&p), Some(t));
        }
        // An unknown word in the layer family is not a tag.
        let mut p = [0u8; 20];
        p[..4].copy_from_slice(&(MAGIC_LAYER | 0xff).to_be_bytes());
        assert_eq!(Tag::read_tail(&p), None);
    }

    #[test]
    fn payloads_without_the_magic_or_too_short_have_no_tag() {
        assert_eq!(Tag::read_tail(&[0u8; 64]), None);
        assert_eq!(Tag::read_tail(&[0u8; 5]), None);
        let mut short = [0u8; 10];
        Tag::new(1, 1).write_tail(&mut short);
        assert_eq!(short, [0u8; 10]);
    }
}
