//! The server's RTP capabilities in mediasoup's shape (what `device.load({routerRtpCapabilities})`
//! takes): the codecs the media plane forwards (from the server's SDP capabilities, in their
//! order) with the payload types consumers receive them under, their RTX, and the header
//! extensions with the ids consumers receive them under.

use serde_json::{Map, Value, json};
use sfu::{Codec, MediaKind};

use super::rtp_types::{
    RtcpFeedback, RtpCapabilities, RtpCodecCapability, RtpHeaderExtensionCapability,
};
use crate::sdp::{Capabilities, HeaderExtension};

/// Header-extension ids of the router: what consumers' packets carry.
pub mod ext_id {
    pub const MID: u8 = 1;
    pub const RID: u8 = 2;
    pub const REPAIRED_RID: u8 = 3;
    pub const ABS_SEND_TIME: u8 = 4;
    pub const TRANSPORT_CC: u8 = 5;
    pub const DEPENDENCY_DESCRIPTOR: u8 = 8;
    pub const AUDIO_LEVEL: u8 = 10;
}

/// The payload type (and RTX payload type) consumers receive `codec` under.
pub fn payload_types(codec: Codec) -> (u8, Option<u8>) {
    match codec {
        Codec::Opus => (100, None),
        Codec::Vp8 => (101, Some(102)),
        Codec::H264 => (103, Some(104)),
        Codec::Vp9 => (105, Some(106)),
        Codec::Av1 => (107, Some(108)),
    }
}

/// The router's codec parameters for `codec` (Opus before any quality preset).
pub fn codec_parameters(codec: Codec) -> Map<String, Value> {
    let v = match codec {
        Codec::Opus => json!({ "minptime": 10, "useinbandfec": 1 }),
        Codec::Vp8 | Codec::Av1 => json!({}),
        Codec::H264 => json!({
            "level-asymmetry-allowed": 1,
            "packetization-mode": 1,
            "profile-level-id": "42e01f"
        }),
        Codec::Vp9 => json!({ "profile-id": 0 }),
    };
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// RTCP feedback the media plane handles for `codec` (toward publishers and from viewers).
pub fn codec_feedback(codec: Codec) -> Vec<RtcpFeedback> {
    let mut fb = Vec::new();
    if codec.kind() == MediaKind::Video {
        fb.push(RtcpFeedback::new("nack", ""));
        fb.push(RtcpFeedback::new("nack", "pli"));
        fb.push(RtcpFeedback::new("ccm", "fir"));
        fb.push(RtcpFeedback::new("goog-remb", ""));
    }
    fb.push(RtcpFeedback::new("transport-cc", ""));
    fb
}

pub fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// `video/VP8`, `audio/opus`.
pub fn mime_type(codec: Codec) -> String {
    format!("{}/{}", kind_name(codec.kind()), codec.sdp_name())
}

/// The header extensions of the router: (extension, kind, id, direction seen from the router).
/// `recvonly`: the media plane reads it from producers but does not write it toward consumers.
fn extensions() -> Vec<(HeaderExtension, MediaKind, u8, &'static str)> {
    use HeaderExtension as H;
    use MediaKind::{Audio, Video};
    vec![
        (H::Mid, Audio, ext_id::MID, "recvonly"),
        (H::Mid, Video, ext_id::MID, "recvonly"),
        (H::Rid, Video, ext_id::RID, "recvonly"),
        (H::RepairedRid, Video, ext_id::REPAIRED_RID, "recvonly"),
        (H::AbsSendTime, Video, ext_id::ABS_SEND_TIME, "recvonly"),
        (H::TransportCc, Audio, ext_id::TRANSPORT_CC, "sendrecv"),
        (H::TransportCc, Video, ext_id::TRANSPORT_CC, "sendrecv"),
        (H::AudioLevel, Audio, ext_id::AUDIO_LEVEL, "sendrecv"),
        (
            H::DependencyDescriptor,
            Video,
            ext_id::DEPENDENCY_DESCRIPTOR,
            "sendrecv",
        ),
    ]
}

/// The router's RTP capabilities for the server's SDP capabilities.
pub fn router_capabilities(caps: &Capabilities) -> RtpCapabilities {
    let mut codecs = Vec::new();
    for &codec in caps.audio_codecs.iter().chain(&caps.video_codecs) {
        let (pt, rtx) = payload_types(codec);
        let kind = kind_name(codec.kind()).to_string();
        codecs.push(RtpCodecCapability {
            kind: kind.clone(),
            mime_type: mime_type(codec),
            preferred_payload_type: Some(pt),
            clock_rate: codec.clock_rate(),
            channels: (codec == Codec::Opus).then_some(2),
            parameters: codec_parameters(codec),
            rtcp_feedback: codec_feedback(codec),
        });
        if let Some(rtx) = rtx {
            let mut apt = Map::new();
            apt.insert("apt".into(), json!(pt));
            codecs.push(RtpCodecCapability {
                kind: kind.clone(),
                mime_type: format!("{kind}/rtx"),
                preferred_payload_type: Some(rtx),
                clock_rate: codec.clock_rate(),
                channels: None,
                parameters: apt,
                rtcp_feedback: Vec::new(),
            });
        }
    }
    let header_extensions = extensions()
        .into_iter()
        .filter(|(e, ..)| caps.header_extensions.contains(e))
        .map(|(e, kind, id, direction)| RtpHeaderExtensionCapability {
            kind: Some(kind_name(kind).into()),
            uri: e.uri().into(),
            preferred_id: id,
            preferred_encrypt: false,
            direction: Some(direction.into()),
        })
        .collect();
    RtpCapabilities {
        codecs,
        header_extensions,
    }
}

/// The router's id for `ext` on `kind`, if the router has it and writes it toward consumers.
pub fn consumer_ext_id(caps: &Capabilities, ext: HeaderExtension, kind: MediaKind) -> Option<u8> {
    extensions()
        .into_iter()
        .find(|(e, k, _, dir)| *e == ext && *k == kind && *dir == "sendrecv")
        .filter(|(e, ..)| caps.header_extensions.contains(e))
        .map(|(_, _, id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_forwarded_codec_is_offered_with_its_rtx_and_distinct_payload_types() {
        let rc = router_capabilities(&Capabilities::default());
        let mimes: Vec<&str> = rc.codecs.iter().map(|c| c.mime_type.as_str()).collect();
        assert_eq!(
            mimes,
            [
                "audio/opus",
                "video/VP8",
                "video/rtx",
                "video/H264",
                "video/rtx",
                "video/VP9",
                "video/rtx",
                "video/AV1",
                "video/rtx"
            ]
        );
        let mut pts: Vec<u8> = rc
            .codecs
            .iter()
            .filter_map(|c| c.preferred_payload_type)
            .collect();
        pts.sort_unstable();
        pts.dedup();
        assert_eq!(pts.len(), rc.codecs.len(), "payload types are distinct");
        let vp8_rtx = &rc.codecs[2];
        assert_eq!(vp8_rtx.parameters["apt"], 101);
        assert_eq!(rc.codecs[0].channels, Some(2));
    }

    #[test]
    fn extension_ids_are_distinct_per_kind_and_consumers_get_only_written_ones() {
        let caps = Capabilities::default();
        let rc = router_capabilities(&caps);
        for kind in ["audio", "video"] {
            let mut ids: Vec<u8> = rc
                .header_extensions
                .iter()
                .filter(|e| e.kind.as_deref() == Some(kind))
                .map(|e| e.preferred_id)
                .collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n, "{kind} ids distinct");
        }
        assert_eq!(
            consumer_ext_id(&caps, HeaderExtension::AudioLevel, MediaKind::Audio),
            Some(ext_id::AUDIO_LEVEL)
        );
        assert_eq!(
            consumer_ext_id(&caps, HeaderExtension::Mid, MediaKind::Video),
            None,
            "the media plane does not write mid toward viewers"
        );
    }
}
