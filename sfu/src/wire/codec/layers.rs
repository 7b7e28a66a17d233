//! The scalability information of one video RTP packet, read from its payload descriptor: the
//! temporal layer (VP8 TID, RFC 7741 §4.2; VP9 TID, RFC 9628 §4.2), the spatial layer (VP9 SID),
//! the switching points (AV1's from the dependency descriptor), and the VP8 picture numbering an
//! SFU rewrites when it drops pictures or switches between simulcast encodings.

use super::{LayerSet, Vp8Descriptor, Vp9Descriptor, is_frame_start};
use crate::types::Codec;

/// Layer facts of one packet. Codecs without layer information (H.264, AV1, Opus) leave every
/// optional field `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketLayers {
    /// First packet of a keyframe (a decoder can start here).
    pub keyframe: bool,
    /// First packet of a picture (VP9: of the base spatial layer).
    pub picture_start: bool,
    /// Temporal layer id.
    pub tid: Option<u8>,
    /// VP8 Y: this picture depends only on the base temporal layer, so forwarding of its temporal
    /// layer may start here.
    pub layer_sync: bool,
    /// VP9 U: pictures after this one do not reference older pictures of higher temporal layers.
    pub switching_up: bool,
    /// Dependency descriptor: on the first packet of a frame, the layers whose decode targets
    /// the frame is a switch point for (a temporal switch up may start here).
    pub switch_points: LayerSet,
    /// VP9 spatial layer id.
    pub sid: Option<u8>,
    /// VP9 E: last packet of this spatial layer's frame.
    pub end_of_layer_frame: bool,
    /// VP8 picture id and whether it is the 15-bit form.
    pub vp8_picture_id: Option<(u16, bool)>,
    /// VP8 TL0PICIDX.
    pub vp8_tl0_pic_idx: Option<u8>,
}

impl PacketLayers {
    /// Reads the layer facts of `payload`; malformed descriptors give the defaults (no layer
    /// information), `keyframe` is passed through as the ingress path computed it.
    pub fn parse(codec: Codec, payload: &[u8], keyframe: bool) -> PacketLayers {
        let mut l = PacketLayers {
            keyframe,
            ..PacketLayers::default()
        };
        match codec {
            Codec::Vp8 => {
                if let Ok(d) = Vp8Descriptor::parse(payload) {
                    l.picture_start = d.is_frame_start();
                    l.tid = d.tid;
                    l.layer_sync = d.layer_sync;
                    l.vp8_picture_id = d.picture_id.map(|p| (p, d.long_picture_id));
                    l.vp8_tl0_pic_idx = d.tl0_pic_idx;
                }
            }
            Codec::Vp9 => {
                if let Ok(d) = Vp9Descriptor::parse(payload) {
                    l.picture_start = d.start_of_frame && d.spatial_layer() == 0;
                    l.tid = d.tid;
                    l.switching_up = d.switching_up;
                    l.sid = d.sid;
                    l.end_of_layer_frame = d.end_of_frame;
                }
            }
            Codec::H264 | Codec::Av1 | Codec::Opus => {
                l.picture_start = is_frame_start(codec, payload);
            }
        }
        l
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vp8_descriptor_gives_tid_sync_and_picture_numbers() {
        // X, S; I, L, T; 15-bit picture id 0x2bb9; TL0PICIDX 0xd3; TID 1 with Y.
        let p = [0x90, 0xe0, 0xab, 0xb9, 0xd3, 0x60, 0x11];
        let l = PacketLayers::parse(Codec::Vp8, &p, false);
        assert!(l.picture_start);
        assert_eq!(l.tid, Some(1));
        assert!(l.layer_sync);
        assert_eq!(l.vp8_picture_id, Some((0x2bb9, true)));
        assert_eq!(l.vp8_tl0_pic_idx, Some(0xd3));
        assert_eq!(l.sid, None);
    }

    #[test]
    fn vp9_descriptor_gives_sid_tid_and_end_of_layer_frame() {
        // I, P, L, B, E (non-flexible); picture id 0x05; TID 2, U, SID 1; TL0PICIDX 7.
        let p = [0xec, 0x05, (2 << 5) | 0x10 | (1 << 1), 0x07, 0x00];
        let l = PacketLayers::parse(Codec::Vp9, &p, false);
        assert_eq!(l.tid, Some(2));
        assert_eq!(l.sid, Some(1));
        assert!(l.switching_up && l.end_of_layer_frame);
        assert!(
            !l.picture_start,
            "a spatial layer above the base does not start the picture"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..32)) {
            for c in [Codec::Opus, Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1] {
                let _ = PacketLayers::parse(c, &buf, false);
            }
        }
    }
}
