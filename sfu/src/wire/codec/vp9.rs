//! VP9 payload descriptor (RFC 9628 §4.2, the VP9 RTP payload format): picture ID, layer
//! indices, flexible-mode reference diffs and the scalability structure.

use super::CodecError;

/// Most reference P_DIFFs a flexible-mode descriptor carries.
pub const MAX_P_DIFF: usize = 3;
/// Most spatial layers a scalability structure announces (N_S is 3 bits).
pub const MAX_SS_LAYERS: usize = 8;

/// The VP9 payload descriptor at the start of every VP9 RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Descriptor {
    /// P: the picture is inter-picture predicted (not a keyframe at this layer).
    pub inter_picture: bool,
    /// F: flexible mode.
    pub flexible: bool,
    /// B: first packet of a layer frame.
    pub start_of_frame: bool,
    /// E: last packet of a layer frame.
    pub end_of_frame: bool,
    /// Z: not used as a reference by the next spatial layer.
    pub not_upper_reference: bool,
    /// Picture ID, 7 or 15 bits.
    pub picture_id: Option<u16>,
    /// The picture ID is in the 15-bit form (M bit).
    pub long_picture_id: bool,
    /// TID (when the L bit is set).
    pub tid: Option<u8>,
    /// U: switching up point.
    pub switching_up: bool,
    /// SID (when the L bit is set).
    pub sid: Option<u8>,
    /// D: inter-layer dependency.
    pub inter_layer_dependency: bool,
    /// TL0PICIDX (non-flexible mode with layer indices).
    pub tl0_pic_idx: Option<u8>,
    /// Reference picture ID differences (flexible mode, inter-picture predicted).
    pub p_diff: [u8; MAX_P_DIFF],
    /// How many of `p_diff` are used.
    pub p_diff_count: u8,
    /// Number of spatial layers announced by a scalability structure (V bit), if any.
    pub ss_spatial_layers: Option<u8>,
    /// The picture height of each announced spatial layer, when the structure gives
    /// resolutions (Y bit); 0 otherwise.
    pub ss_heights: [u16; MAX_SS_LAYERS],
    /// Length of the descriptor; the VP9 frame data starts here.
    pub header_len: usize,
}

impl Vp9Descriptor {
    /// Parses the descriptor at the start of `payload`, the scalability structure included.
    pub fn parse(payload: &[u8]) -> Result<Vp9Descriptor, CodecError> {
        let &b0 = payload.first().ok_or(CodecError::Empty)?;
        let byte = |i: usize| payload.get(i).copied().ok_or(CodecError::Truncated);
        let mut d = Vp9Descriptor {
            inter_picture: b0 & 0x40 != 0,
            flexible: b0 & 0x10 != 0,
            start_of_frame: b0 & 0x08 != 0,
            end_of_frame: b0 & 0x04 != 0,
            not_upper_reference: b0 & 0x01 != 0,
            ..Default::default()
        };
        let mut pos = 1;
        if b0 & 0x80 != 0 {
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
        if b0 & 0x20 != 0 {
            let l = byte(pos)?;
            pos += 1;
            d.tid = Some(l >> 5);
            d.switching_up = l & 0x10 != 0;
            d.sid = Some((l >> 1) & 0x07);
            d.inter_layer_dependency = l & 0x01 != 0;
            if !d.flexible {
                d.tl0_pic_idx = Some(byte(pos)?);
                pos += 1;
            }
        }
        if d.flexible && d.inter_picture {
            loop {
                let r = byte(pos)?;
                pos += 1;
                if usize::from(d.p_diff_count) == MAX_P_DIFF {
                    return Err(CodecError::Truncated);
                }
                d.p_diff[usize::from(d.p_diff_count)] = r >> 1;
                d.p_diff_count += 1;
                if r & 0x01 == 0 {
                    break;
                }
            }
        }
        if b0 & 0x02 != 0 {
            let ss = byte(pos)?;
            pos += 1;
            let layers = (ss >> 5) + 1;
            d.ss_spatial_layers = Some(layers);
            if ss & 0x10 != 0 {
                for h in d.ss_heights.iter_mut().take(usize::from(layers)) {
                    *h = u16::from_be_bytes([byte(pos + 2)?, byte(pos + 3)?]);
                    pos += 4;
                }
            }
            if ss & 0x08 != 0 {
                let groups = byte(pos)?;
                pos += 1;
                for _ in 0..groups {
                    let g = byte(pos)?;
                    pos += 1 + usize::from((g >> 2) & 0x03);
                }
            }
            if pos > payload.len() {
                return Err(CodecError::Truncated);
            }
        }
        d.header_len = pos;
        Ok(d)
    }

    /// The spatial layer (0 when the descriptor carries no layer indices).
    pub fn spatial_layer(&self) -> u8 {
        self.sid.unwrap_or(0)
    }

    /// The reference picture ID differences in use.
    pub fn p_diffs(&self) -> &[u8] {
        &self.p_diff[..usize::from(self.p_diff_count)]
    }
}

/// True for the first packet of a picture: B set on the base spatial layer.
pub fn is_frame_start(payload: &[u8]) -> bool {
    Vp9Descriptor::parse(payload).is_ok_and(|d| d.start_of_frame && d.spatial_layer() == 0)
}

/// True for the first packet of a keyframe: B set, not inter-picture predicted, base spatial
/// layer.
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    Vp9Descriptor::parse(payload)
        .is_ok_and(|d| d.start_of_frame && !d.inter_picture && d.spatial_layer() == 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn non_flexible_keyframe_with_scalability_structure() {
        // I, L, B, V: 15-bit picture ID 0x1234; TID 0, SID 0; TL0PICIDX 9; SS with 2 spatial
        // layers, resolutions (Y) and one picture group (G) of TID 0 with one P_DIFF.
        let p = [
            0xaa, 0x92, 0x34, 0x00, 0x09, // I|L|B|V, picture ID, layer indices, TL0PICIDX
            0x38, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01,
            0x68, // N_S=1, Y, G; 320x180, 640x360
            0x01, 0x04, 0x02, // N_G=1: TID 0, R=1, P_DIFF 2
            0xde, 0xad,
        ];
        let d = Vp9Descriptor::parse(&p).unwrap();
        assert_eq!(d.picture_id, Some(0x1234));
        assert_eq!((d.tid, d.sid, d.tl0_pic_idx), (Some(0), Some(0), Some(9)));
        assert_eq!(d.ss_spatial_layers, Some(2));
        assert_eq!(&d.ss_heights[..3], &[180, 360, 0]);
        assert_eq!(d.header_len, 17);
        assert!(is_keyframe_start(&p));
        assert!(is_frame_start(&p));
    }

    #[test]
    fn upper_spatial_layer_and_inter_frames_are_not_keyframe_starts() {
        // I|L|B with SID 1 (inter-layer predicted part of a keyframe).
        let sid1 = [0xa8, 0x05, 0x03, 0x09, 0x00];
        assert!(!is_keyframe_start(&sid1));
        assert!(!is_frame_start(&sid1));
        // I|P|L|B: inter-picture predicted base layer.
        let inter = [0xe8, 0x06, 0x00, 0x0a, 0x00];
        assert!(!is_keyframe_start(&inter));
        assert!(is_frame_start(&inter));
        // B clear: a middle packet.
        assert!(!is_keyframe_start(&[0xa0, 0x06, 0x00, 0x0a, 0x00]));
        // No L: treated as the base layer.
        assert!(is_keyframe_start(&[0x88, 0x07, 0x00]));
    }

    #[test]
    fn flexible_mode_reads_reference_diffs() {
        // I|P|L|F|B: picture ID 5; TID 2, U, SID 0; P_DIFF 1 (N), 3 (N), 4.
        let p = [0xf8, 0x05, 0x50, 0x03, 0x07, 0x08, 0xff];
        let d = Vp9Descriptor::parse(&p).unwrap();
        assert!(d.flexible && d.inter_picture);
        assert_eq!(
            (d.tid, d.switching_up, d.tl0_pic_idx),
            (Some(2), true, None)
        );
        assert_eq!(d.p_diffs(), &[1, 3, 4]);
        assert_eq!(d.header_len, 6);
        // A fourth P_DIFF is malformed.
        assert_eq!(
            Vp9Descriptor::parse(&[0x50, 0x03, 0x03, 0x03, 0x02]),
            Err(CodecError::Truncated)
        );
    }

    #[test]
    fn truncated_descriptors_are_errors() {
        assert_eq!(Vp9Descriptor::parse(&[]), Err(CodecError::Empty));
        assert_eq!(Vp9Descriptor::parse(&[0x80]), Err(CodecError::Truncated));
        assert_eq!(
            Vp9Descriptor::parse(&[0x80, 0x80]),
            Err(CodecError::Truncated)
        );
        assert_eq!(
            Vp9Descriptor::parse(&[0x20, 0x00]),
            Err(CodecError::Truncated)
        ); // no TL0PICIDX
        assert_eq!(
            Vp9Descriptor::parse(&[0x02, 0x10, 0x00]),
            Err(CodecError::Truncated)
        ); // SS sizes
    }

    prop_compose! {
        fn arb_descriptor()(
            p in any::<bool>(), f in any::<bool>(), b in any::<bool>(), e in any::<bool>(),
            z in any::<bool>(), pic in proptest::option::of(0u16..0x8000),
            layer in proptest::option::of((0u8..8, any::<bool>(), 0u8..8, any::<bool>(), any::<u8>())),
            diffs in proptest::collection::vec(0u8..128, 1..=3),
            ss in proptest::option::of((0u8..8, any::<bool>(), proptest::collection::vec((0u8..8, proptest::collection::vec(any::<u8>(), 0..=3)), 0..4))),
        ) -> (Vec<u8>, Vp9Descriptor) {
            let mut v = vec![0u8];
            let mut d = Vp9Descriptor {
                inter_picture: p, flexible: f, start_of_frame: b, end_of_frame: e,
                not_upper_reference: z, ..Default::default()
            };
            v[0] = (u8::from(pic.is_some()) << 7) | (u8::from(p) << 6) | (u8::from(layer.is_some()) << 5)
                | (u8::from(f) << 4) | (u8::from(b) << 3) | (u8::from(e) << 2)
                | (u8::from(ss.is_some()) << 1) | u8::from(z);
            if let Some(id) = pic {
                d.picture_id = Some(id);
                d.long_picture_id = id > 0x7f;
                if id > 0x7f { v.extend_from_slice(&(0x8000 | id).to_be_bytes()) } else { v.push(id as u8) }
            }
            if let Some((tid, u, sid, dep, tl0)) = layer {
                v.push((tid << 5) | (u8::from(u) << 4) | (sid << 1) | u8::from(dep));
                d.tid = Some(tid); d.switching_up = u; d.sid = Some(sid); d.inter_layer_dependency = dep;
                if !f { v.push(tl0); d.tl0_pic_idx = Some(tl0); }
            }
            if f && p {
                for (i, pd) in diffs.iter().enumerate() {
                    v.push((pd << 1) | u8::from(i + 1 < diffs.len()));
                    d.p_diff[i] = *pd;
                }
                d.p_diff_count = diffs.len() as u8;
            }
            if let Some((ns, y, groups)) = ss {
                v.push((ns << 5) | (u8::from(y) << 4) | (u8::from(!groups.is_empty()) << 3));
                d.ss_spatial_layers = Some(ns + 1);
                if y {
                    v.extend(std::iter::repeat_n(7u8, 4 * (usize::from(ns) + 1)));
                    d.ss_heights[..=usize::from(ns)].fill(0x0707);
                }
                if !groups.is_empty() {
                    v.push(groups.len() as u8);
                    for (t, r) in &groups {
                        v.push((t << 5) | ((r.len() as u8) << 2));
                        v.extend_from_slice(r);
                    }
                }
            }
            d.header_len = v.len();
            (v, d)
        }
    }

    proptest! {
        #[test]
        fn descriptors_round_trip_and_match_the_rtp_crate(
            (desc, want) in arb_descriptor(), body in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            let mut p = desc.clone();
            p.extend_from_slice(&body);
            let got = Vp9Descriptor::parse(&p).unwrap();
            prop_assert_eq!(got, want);

            // The rtp crate stops at SID 5 and rejects a third P_DIFF; compare where it parses.
            if got.spatial_layer() >= 5 || got.p_diff_count >= 3 {
                return Ok(());
            }
            use rtp::packetizer::Depacketizer;
            let pkt = super::super::tests::oracle_packet(&p);
            let mut theirs = rtp::codecs::vp9::Vp9Packet::default();
            let rest = theirs.depacketize(&pkt.payload).unwrap();
            prop_assert_eq!(rest.len(), body.len());
            prop_assert_eq!(theirs.picture_id, got.picture_id.unwrap_or(0));
            prop_assert_eq!(theirs.sid, got.sid.unwrap_or(0));
            prop_assert_eq!(theirs.tid, got.tid.unwrap_or(0));
            prop_assert_eq!(theirs.b, got.start_of_frame);
            prop_assert_eq!(theirs.p, got.inter_picture);
            prop_assert_eq!(&theirs.pdiff[..], got.p_diffs());
        }
    }
}
