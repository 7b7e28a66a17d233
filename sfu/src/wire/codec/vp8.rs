//! VP8 payload descriptor (RFC 7741 §4.2) and the keyframe bit of the VP8 payload header
//! (§4.3).

use super::CodecError;

/// The VP8 payload descriptor at the start of every VP8 RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// N: the frame can be discarded without affecting others.
    pub non_reference: bool,
    /// S: the packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index (0..=7).
    pub partition_id: u8,
    /// Picture ID, 7 or 15 bits.
    pub picture_id: Option<u16>,
    /// The picture ID is in the 15-bit form (M bit).
    pub long_picture_id: bool,
    /// TL0PICIDX: running index of base temporal layer frames.
    pub tl0_pic_idx: Option<u8>,
    /// TID: temporal layer index (present when the T bit is set).
    pub tid: Option<u8>,
    /// Y: layer sync (meaningful when `tid` is present).
    pub layer_sync: bool,
    /// KEYIDX: temporal key frame index (present when the K bit is set).
    pub key_idx: Option<u8>,
    /// Length of the descriptor; the VP8 payload starts here.
    pub header_len: usize,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of `payload`.
    pub fn parse(payload: &[u8]) -> Result<Vp8Descriptor, CodecError> {
        let &b0 = payload.first().ok_or(CodecError::Empty)?;
        let byte = |i: usize| payload.get(i).copied().ok_or(CodecError::Truncated);
        let mut d = Vp8Descriptor {
            non_reference: b0 & 0x20 != 0,
            start_of_partition: b0 & 0x10 != 0,
            partition_id: b0 & 0x07,
            ..Default::default()
        };
        let mut pos = 1;
        if b0 & 0x80 != 0 {
            let x = byte(1)?;
            pos = 2;
            if x & 0x80 != 0 {
                let p = byte(pos)?;
                if p & 0x80 != 0 {
                    d.long_picture_id = true;
                    d.picture_id = Some((u16::from(p & 0x7f) << 8) | u16::from(byte(pos + 1)?));
                    pos += 2;
                } else {
                    d.picture_id = Some(u16::from(p));
                    pos += 1;
                }
            }
            if x & 0x40 != 0 {
                d.tl0_pic_idx = Some(byte(pos)?);
                pos += 1;
            }
            if x & 0x30 != 0 {
                let t = byte(pos)?;
                pos += 1;
                if x & 0x20 != 0 {
                    d.tid = Some(t >> 6);
                    d.layer_sync = t & 0x20 != 0;
                }
                if x & 0x10 != 0 {
                    d.key_idx = Some(t & 0x1f);
                }
            }
        }
        d.header_len = pos;
        Ok(d)
    }

    /// True for the first packet of a frame: S set, partition 0.
    pub fn is_frame_start(&self) -> bool {
        self.start_of_partition && self.partition_id == 0
    }
}

/// True for the first packet of a frame (S=1, PID=0).
pub fn is_frame_start(payload: &[u8]) -> bool {
    Vp8Descriptor::parse(payload).is_ok_and(|d| d.is_frame_start())
}

/// True for the first packet of a keyframe: a frame start whose VP8 payload header has the
/// inverse key frame flag P = 0.
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    match Vp8Descriptor::parse(payload) {
        Ok(d) if d.is_frame_start() => payload.get(d.header_len).is_some_and(|b| b & 0x01 == 0),
        _ => false,
    }
}

/// Overwrites the picture id (in the form the descriptor already uses: 7 or 15 bits) and the
/// TL0PICIDX of the descriptor at the start of `payload`, where present. The descriptor's length
/// does not change. Returns false (and writes nothing) when the descriptor is malformed.
pub fn rewrite_picture_numbers(payload: &mut [u8], picture_id: u16, tl0_pic_idx: u8) -> bool {
    let Ok(d) = Vp8Descriptor::parse(payload) else {
        return false;
    };
    // The descriptor parsed, so every offset below lies within `payload`.
    let mut pos = 2;
    if d.picture_id.is_some() {
        if d.long_picture_id {
            payload[pos] = 0x80 | ((picture_id >> 8) as u8 & 0x7f);
            payload[pos + 1] = picture_id as u8;
            pos += 2;
        } else {
            payload[pos] = picture_id as u8 & 0x7f;
            pos += 1;
        }
    }
    if d.tl0_pic_idx.is_some() {
        payload[pos] = tl0_pic_idx;
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_full_descriptor_from_a_real_stream() {
        // X, S; I, L, T; 15-bit picture ID 0x2bb9; TL0PICIDX 0xd3; TID 1 with Y; VP8 header
        // byte 0x11 (P = 1: an interframe).
        let p = [0x90, 0xe0, 0xab, 0xb9, 0xd3, 0x60, 0x11];
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!(d.header_len, 6);
        assert!(d.start_of_partition && !d.non_reference);
        assert_eq!(d.picture_id, Some(0x2bb9));
        assert!(d.long_picture_id);
        assert_eq!(d.tl0_pic_idx, Some(0xd3));
        assert_eq!(d.tid, Some(1));
        assert!(d.layer_sync);
        assert_eq!(d.key_idx, None);
        assert!(is_frame_start(&p));
        assert!(!is_keyframe_start(&p));
    }

    #[test]
    fn keyframe_needs_frame_start_and_p_bit_clear() {
        // Same layout, picture ID 0x3d9d, VP8 header 0xb0 (P = 0).
        let key = [0xb0, 0xe0, 0xbd, 0x9d, 0x3e, 0x40, 0xb0];
        assert!(is_keyframe_start(&key));
        assert_eq!(Vp8Descriptor::parse(&key).unwrap().picture_id, Some(0x3d9d));
        // S = 0: a continuation of the keyframe, not its start.
        let cont = [0xa0, 0xe0, 0xbd, 0x9d, 0x3e, 0x40, 0xb0];
        assert!(!is_keyframe_start(&cont));
        assert!(!is_frame_start(&cont));
        // S = 1 but partition 1.
        assert!(!is_keyframe_start(&[0x11, 0x00]));
        // Minimal descriptor, keyframe header with the start code 9d 01 2a.
        assert!(is_keyframe_start(&[
            0x10, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a
        ]));
        // Descriptor only, no VP8 header byte.
        assert!(!is_keyframe_start(&[0x10]));
    }

    #[test]
    fn short_picture_id_and_keyidx_without_tid() {
        // X; I and K; 7-bit picture ID 0x55; KEYIDX 7 (TID bits ignored since T = 0).
        let p = [0x90, 0x90, 0x55, 0xc7, 0x00];
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!((d.picture_id, d.long_picture_id), (Some(0x55), false));
        assert_eq!((d.tid, d.key_idx), (None, Some(7)));
        assert_eq!(d.header_len, 4);
        assert!(is_keyframe_start(&p));
    }

    #[test]
    fn picture_numbers_are_rewritten_in_place() {
        let mut p = [0x90, 0xe0, 0xab, 0xb9, 0xd3, 0x60, 0x11];
        assert!(rewrite_picture_numbers(&mut p, 0x1234, 0x42));
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!(
            (d.picture_id, d.tl0_pic_idx, d.tid),
            (Some(0x1234), Some(0x42), Some(1))
        );
        assert_eq!(p[6], 0x11, "the VP8 payload is untouched");
        let mut short = [0x90, 0x80, 0x55, 0x00];
        assert!(rewrite_picture_numbers(&mut short, 0x1ff, 0));
        assert_eq!(Vp8Descriptor::parse(&short).unwrap().picture_id, Some(0x7f));
        assert!(!rewrite_picture_numbers(&mut [0x80], 1, 1));
    }

    #[test]
    fn truncated_descriptors_are_errors() {
        assert_eq!(Vp8Descriptor::parse(&[]), Err(CodecError::Empty));
        assert_eq!(Vp8Descriptor::parse(&[0x80]), Err(CodecError::Truncated));
        assert_eq!(
            Vp8Descriptor::parse(&[0x80, 0x80, 0x80]),
            Err(CodecError::Truncated)
        );
        assert_eq!(
            Vp8Descriptor::parse(&[0x80, 0x20]),
            Err(CodecError::Truncated)
        );
    }

    prop_compose! {
        fn arb_descriptor()(
            n in any::<bool>(), s in any::<bool>(), pid in 0u8..8,
            pic in proptest::option::of(0u16..0x8000), long in any::<bool>(),
            tl0 in proptest::option::of(any::<u8>()), tid in proptest::option::of(0u8..4),
            y in any::<bool>(), key in proptest::option::of(0u8..32),
        ) -> Vp8Descriptor {
            let long = pic.is_some_and(|p| long || p > 0x7f);
            Vp8Descriptor {
                non_reference: n, start_of_partition: s, partition_id: pid, picture_id: pic,
                long_picture_id: long, tl0_pic_idx: tl0, tid, layer_sync: y && tid.is_some(),
                key_idx: key, header_len: 0,
            }
        }
    }

    fn encode(d: &Vp8Descriptor) -> Vec<u8> {
        let ext = d.picture_id.is_some()
            || d.tl0_pic_idx.is_some()
            || d.tid.is_some()
            || d.key_idx.is_some();
        let mut v = vec![
            (u8::from(ext) << 7)
                | (u8::from(d.non_reference) << 5)
                | (u8::from(d.start_of_partition) << 4)
                | d.partition_id,
        ];
        if ext {
            v.push(
                (u8::from(d.picture_id.is_some()) << 7)
                    | (u8::from(d.tl0_pic_idx.is_some()) << 6)
                    | (u8::from(d.tid.is_some()) << 5)
                    | (u8::from(d.key_idx.is_some()) << 4),
            );
        }
        if let Some(p) = d.picture_id {
            if d.long_picture_id {
                v.extend_from_slice(&(0x8000 | p).to_be_bytes());
            } else {
                v.push(p as u8);
            }
        }
        if let Some(t) = d.tl0_pic_idx {
            v.push(t);
        }
        if d.tid.is_some() || d.key_idx.is_some() {
            v.push(
                (d.tid.unwrap_or(0) << 6) | (u8::from(d.layer_sync) << 5) | d.key_idx.unwrap_or(0),
            );
        }
        v
    }

    proptest! {
        #[test]
        fn descriptors_round_trip_and_match_the_rtp_crate(d in arb_descriptor(), body in proptest::collection::vec(any::<u8>(), 1..8)) {
            let mut p = encode(&d);
            let hl = p.len();
            p.extend_from_slice(&body);
            let got = Vp8Descriptor::parse(&p).unwrap();
            prop_assert_eq!(got, Vp8Descriptor { header_len: hl, ..d });

            // The rtp crate's depacketizer (which needs at least 4 bytes) reads the same fields.
            if p.len() >= 4 {
                use rtp::packetizer::Depacketizer;
                let pkt = super::super::tests::oracle_packet(&p);
                let mut theirs = rtp::codecs::vp8::Vp8Packet::default();
                let rest = theirs.depacketize(&pkt.payload).unwrap();
                prop_assert_eq!(rest.len(), body.len());
                prop_assert_eq!(theirs.s == 1, got.start_of_partition);
                prop_assert_eq!(theirs.pid, got.partition_id);
                prop_assert_eq!(theirs.picture_id, got.picture_id.unwrap_or(0));
                prop_assert_eq!(theirs.tl0_pic_idx, got.tl0_pic_idx.unwrap_or(0));
                prop_assert_eq!(theirs.tid, got.tid.unwrap_or(0));
                prop_assert_eq!(theirs.key_idx, got.key_idx.unwrap_or(0));
            }
        }
    }
}
