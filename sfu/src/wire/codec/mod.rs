//! Codec payload inspection for forwarding decisions: where frames and keyframes start in RTP
//! payloads of VP8 (RFC 7741), VP9 (RFC 9628, the VP9 RTP payload format draft), H.264
//! (RFC 6184) and AV1 (the AV1 RTP payload specification). Opus packets are each a frame and
//! never a keyframe.

pub mod av1;
pub mod dependency_descriptor;
pub mod h264;
pub mod layers;
pub mod vp8;
pub mod vp9;

pub use dependency_descriptor::{DependencyDescriptor, LayerSet, TemplateLayers};
pub use layers::PacketLayers;
pub use vp8::Vp8Descriptor;
pub use vp9::Vp9Descriptor;

use crate::types::Codec;

/// Why a payload descriptor could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty payload")]
    Empty,
    #[error("payload descriptor runs past the end of the payload")]
    Truncated,
}

/// True when this RTP payload is the first packet of a keyframe: the point where a receiver can
/// start decoding (for layered VP9, the base spatial layer's first packet).
pub fn is_keyframe_start(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Opus => false,
        Codec::Vp8 => vp8::is_keyframe_start(payload),
        Codec::Vp9 => vp9::is_keyframe_start(payload),
        Codec::H264 => h264::is_keyframe_start(payload),
        Codec::Av1 => av1::is_keyframe_start(payload),
    }
}

/// True when this RTP payload is the first packet of a frame (see each codec module for what
/// that means in its format).
pub fn is_frame_start(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Opus => !payload.is_empty(),
        Codec::Vp8 => vp8::is_frame_start(payload),
        Codec::Vp9 => vp9::is_frame_start(payload),
        Codec::H264 => h264::is_frame_start(payload),
        Codec::Av1 => av1::is_frame_start(payload),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An RTP packet carrying `payload` as parsed by the `rtp` crate, whose `payload` field is the
    /// byte type its depacketizers take.
    pub(super) fn oracle_packet(payload: &[u8]) -> rtp::packet::Packet {
        use crate::types::{PayloadType, SeqNo, Ssrc};
        use crate::wire::rtp::{RtpFields, write_rtp};
        use webrtc_util::marshal::Unmarshal;
        let f = RtpFields {
            marker: false,
            payload_type: PayloadType(96),
            seq: SeqNo(1),
            timestamp: 0,
            ssrc: Ssrc(1),
            extensions: &[],
        };
        let mut buf = vec![0u8; 12 + payload.len()];
        let n = write_rtp(&mut buf, &f, payload).expect("sized for the payload");
        rtp::packet::Packet::unmarshal(&mut &buf[..n]).expect("valid RTP")
    }

    const ALL: [Codec; 5] = [Codec::Opus, Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1];

    #[test]
    fn opus_is_never_a_keyframe() {
        assert!(!is_keyframe_start(Codec::Opus, &[0x78, 0x01, 0x02]));
        assert!(is_frame_start(Codec::Opus, &[0x78, 0x01, 0x02]));
    }

    #[test]
    fn empty_payloads_start_nothing() {
        for c in ALL {
            assert!(!is_keyframe_start(c, &[]), "{c:?}");
            assert!(!is_frame_start(c, &[]), "{c:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            for c in ALL {
                let key = is_keyframe_start(c, &buf);
                let start = is_frame_start(c, &buf);
                if c != Codec::H264 {
                    // A keyframe start is a frame start (for H.264 an SPS-led packet can begin
                    // a keyframe while the frame-start test looks only at the first NAL unit).
                    prop_assert!(!key || start, "{:?}", c);
                }
            }
            let _ = Vp8Descriptor::parse(&buf);
            let _ = Vp9Descriptor::parse(&buf);
        }
    }
}
