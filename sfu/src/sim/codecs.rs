//! The negotiated parameters the simulated peers use: payload types, SSRCs, codecs and the
//! session descriptions of a camera publisher and a viewer, as signaling would hand them to a
//! shard after SDP negotiation.

use crate::control::{
    CodecParams, ExtMap, IceParams, LayerOrder, PublishSpec, RtcpFeedback, SessionSpec,
    SubscribeSpec,
};
use crate::dtls::Fingerprint;
use crate::{Codec, MediaKind, Mid, PayloadType, Rid, SessionId, Ssrc, StreamKey, TrackId};

/// The publisher's VP8 payload type.
pub const PUB_VP8: u8 = 96;
/// The publisher's RTX payload type for VP8.
pub const PUB_VP8_RTX: u8 = 97;
/// The publisher's Opus payload type.
pub const PUB_OPUS: u8 = 111;
/// A viewer's VP8 payload type (different from the publisher's, so rewriting shows).
pub const VIEW_VP8: u8 = 100;
/// A viewer's RTX payload type for VP8.
pub const VIEW_VP8_RTX: u8 = 101;
/// A viewer's Opus payload type.
pub const VIEW_OPUS: u8 = 109;
/// The publisher's video SSRC (announced in its offer).
pub const VIDEO_SSRC: u32 = 0x1111_0000;
/// The publisher's RTX SSRC.
pub const RTX_SSRC: u32 = 0x1111_0001;
/// The publisher's audio SSRC (not announced: the shard learns it from the MID extension).
pub const AUDIO_SSRC: u32 = 0x2222_0000;
/// The publisher's MID extension id.
pub const PUB_EXT_MID: u8 = 1;
/// The publisher's audio-level extension id.
pub const PUB_EXT_AUDIO_LEVEL: u8 = 2;

fn video_feedback() -> RtcpFeedback {
    RtcpFeedback {
        nack: true,
        nack_pli: true,
        ccm_fir: true,
        transport_cc: false,
        goog_remb: false,
    }
}

/// VP8 at 90 kHz with NACK, PLI and FIR, and RTX when `rtx` is given.
pub fn vp8(pt: u8, rtx: Option<u8>) -> CodecParams {
    CodecParams {
        pt: PayloadType(pt),
        codec: Codec::Vp8,
        clock_rate: 90_000,
        channels: 0,
        fmtp: String::new(),
        rtx_pt: rtx.map(PayloadType),
        feedback: video_feedback(),
    }
}

/// Stereo Opus at 48 kHz with in-band FEC.
pub fn opus(pt: u8) -> CodecParams {
    CodecParams {
        pt: PayloadType(pt),
        codec: Codec::Opus,
        clock_rate: 48_000,
        channels: 2,
        fmtp: "minptime=10;useinbandfec=1".into(),
        rtx_pt: None,
        feedback: RtcpFeedback::default(),
    }
}

/// The ICE credentials of session `id`: the server's (in the answer) and the client's (in the
/// offer).
pub fn ice_credentials(id: SessionId) -> (IceParams, IceParams) {
    let server = IceParams {
        ufrag: format!("srv{}", id.0),
        pwd: format!("server-password-{:08}", id.0),
    };
    let client = IceParams {
        ufrag: format!("cli{}", id.0),
        pwd: format!("client-password-{:08}", id.0),
    };
    (server, client)
}

/// A session publishing VP8 (with RTX, SSRCs announced) and Opus (SSRC learned) on `stream`.
/// `local_ice` is the server's side, `remote_ice` the client's.
pub fn publisher_spec(
    id: SessionId,
    local_ice: IceParams,
    remote_ice: IceParams,
    remote_fingerprint: Fingerprint,
    stream: StreamKey,
) -> SessionSpec {
    SessionSpec {
        id,
        local_ice,
        remote_ice,
        remote_fingerprint,
        extmap: ExtMap {
            mid: Some(PUB_EXT_MID),
            audio_level: Some(PUB_EXT_AUDIO_LEVEL),
            ..ExtMap::default()
        },
        publish: vec![
            PublishSpec {
                stream,
                track: TrackId(id.0 * 10),
                kind: MediaKind::Video,
                mid: Mid("0".into()),
                ssrc: Some(Ssrc(VIDEO_SSRC)),
                rtx_ssrc: Some(Ssrc(RTX_SSRC)),
                codecs: vec![vp8(PUB_VP8, Some(PUB_VP8_RTX))],
                layers: Vec::new(),
                layer_order: LayerOrder::Named,
                content: crate::control::TrackContent::Camera,
            },
            PublishSpec {
                stream,
                track: TrackId(id.0 * 10 + 1),
                kind: MediaKind::Audio,
                mid: Mid("1".into()),
                ssrc: None,
                rtx_ssrc: None,
                codecs: vec![opus(PUB_OPUS)],
                layers: Vec::new(),
                layer_order: LayerOrder::Named,
                content: crate::control::TrackContent::Camera,
            },
        ],
        subscribe: vec![],
    }
}

/// A session viewing `stream` with its own payload types, extension ids and RTX. `n` makes its
/// SSRCs distinct from other viewers'.
pub fn viewer_spec(
    id: SessionId,
    local_ice: IceParams,
    remote_ice: IceParams,
    remote_fingerprint: Fingerprint,
    stream: StreamKey,
    n: u32,
) -> SessionSpec {
    SessionSpec {
        id,
        local_ice,
        remote_ice,
        remote_fingerprint,
        extmap: ExtMap {
            mid: Some(3),
            audio_level: Some(5),
            ..ExtMap::default()
        },
        publish: vec![],
        subscribe: vec![
            SubscribeSpec {
                stream,
                kind: MediaKind::Video,
                mid: Mid("0".into()),
                ssrc: Ssrc(0x5000_0000 + n),
                rtx_ssrc: Some(Ssrc(0x5100_0000 + n)),
                codecs: vec![vp8(VIEW_VP8, Some(VIEW_VP8_RTX))],
            },
            SubscribeSpec {
                stream,
                kind: MediaKind::Audio,
                mid: Mid("1".into()),
                ssrc: Ssrc(0x6000_0000 + n),
                rtx_ssrc: None,
                codecs: vec![opus(VIEW_OPUS)],
            },
        ],
    }
}

/// The publisher's RID extension id (simulcast).
pub const PUB_EXT_RID: u8 = 3;
/// The publisher's repaired-RID extension id (simulcast).
pub const PUB_EXT_REPAIRED_RID: u8 = 4;

/// A session publishing one VP8 media section as simulcast encodings named `rids` (in the
/// publisher's order, ordered as `order` says), SSRCs unannounced (learned from the RID
/// extension).
pub fn simulcast_publisher_spec(
    id: SessionId,
    local_ice: IceParams,
    remote_ice: IceParams,
    remote_fingerprint: Fingerprint,
    stream: StreamKey,
    rids: &[&str],
    order: LayerOrder,
) -> SessionSpec {
    SessionSpec {
        id,
        local_ice,
        remote_ice,
        remote_fingerprint,
        extmap: ExtMap {
            mid: Some(PUB_EXT_MID),
            rid: Some(PUB_EXT_RID),
            repaired_rid: Some(PUB_EXT_REPAIRED_RID),
            ..ExtMap::default()
        },
        publish: vec![PublishSpec {
            stream,
            track: TrackId(id.0 * 10),
            kind: MediaKind::Video,
            mid: Mid("0".into()),
            ssrc: None,
            rtx_ssrc: None,
            codecs: vec![vp8(PUB_VP8, Some(PUB_VP8_RTX))],
            layers: rids.iter().map(|r| Rid((*r).into())).collect(),
            layer_order: order,
            content: crate::control::TrackContent::Camera,
        }],
        subscribe: vec![],
    }
}

/// [`simulcast_publisher_spec`] showing `content`, with an Opus section (mid `1`, SSRC learned)
/// when `audio`.
#[allow(clippy::too_many_arguments)]
pub fn simulcast_av_publisher_spec(
    id: SessionId,
    local_ice: IceParams,
    remote_ice: IceParams,
    remote_fingerprint: Fingerprint,
    stream: StreamKey,
    rids: &[&str],
    content: crate::control::TrackContent,
    audio: bool,
) -> SessionSpec {
    let mut spec = simulcast_publisher_spec(
        id,
        local_ice,
        remote_ice,
        remote_fingerprint,
        stream,
        rids,
        LayerOrder::Named,
    );
    spec.publish[0].content = content;
    if audio {
        spec.extmap.audio_level = Some(PUB_EXT_AUDIO_LEVEL);
        spec.publish.push(PublishSpec {
            stream,
            track: TrackId(id.0 * 10 + 1),
            kind: MediaKind::Audio,
            mid: Mid("1".into()),
            ssrc: None,
            rtx_ssrc: None,
            codecs: vec![opus(PUB_OPUS)],
            layers: Vec::new(),
            layer_order: LayerOrder::Named,
            content: crate::control::TrackContent::Camera,
        });
    }
    spec
}

/// The SSRC a viewer made by [`multi_viewer_spec`] receives its `k`-th video section on.
pub fn multi_viewer_video_ssrc(n: u32, k: usize) -> Ssrc {
    Ssrc(0x5000_0000 + n + 0x10_0000 * k as u32)
}

/// A session viewing the video of each of `streams` (one media section each, mids `v0`,
/// `v1`, ...; SSRCs from [`multi_viewer_video_ssrc`]) and the audio of the first (mid `a`).
pub fn multi_viewer_spec(
    id: SessionId,
    local_ice: IceParams,
    remote_ice: IceParams,
    remote_fingerprint: Fingerprint,
    streams: &[StreamKey],
    n: u32,
) -> SessionSpec {
    let mut spec = viewer_spec(id, local_ice, remote_ice, remote_fingerprint, streams[0], n);
    let audio = spec.subscribe.pop();
    let video = spec.subscribe.remove(0);
    for (k, &stream) in streams.iter().enumerate() {
        spec.subscribe.push(SubscribeSpec {
            stream,
            mid: Mid(format!("v{k}")),
            ssrc: multi_viewer_video_ssrc(n, k),
            rtx_ssrc: Some(Ssrc(0x5100_0000 + n + 0x10_0000 * k as u32)),
            ..video.clone()
        });
    }
    if let Some(mut a) = audio {
        a.mid = Mid("a".into());
        spec.subscribe.push(a);
    }
    spec
}
