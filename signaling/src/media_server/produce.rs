//! A producer's RTP parameters (what mediasoup-client's `Transport.produce` sends: the client's
//! own payload types, header-extension ids, SSRCs or simulcast rids) checked and turned into the
//! [`PublishSpec`] and extension ids the media plane receives the track with.

use sfu::control::{
    CodecParams, ExtMap, LayerOrder, MAX_SIMULCAST_LAYERS, PublishSpec, RtcpFeedback,
};
use sfu::{Codec, MediaKind, Mid, PayloadType, Rid, Ssrc, StreamKey, TrackId};

use super::rtp_types::{RtpCodecParameters, RtpParameters, fmtp_of, param_text};
use crate::sdp::{Capabilities, HeaderExtension};

/// Why a producer's parameters are refused (each answers 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProduceError {
    #[error("rtp_parameters has no codec this server forwards for {0} (it forwards {1})")]
    NoCodec(&'static str, String),
    #[error("codec {0} is not a {1} codec")]
    KindMismatch(String, &'static str),
    #[error("codec {mime} has unsupported parameters: {reason}")]
    BadParameters { mime: String, reason: String },
    #[error("rtp_parameters.encodings: {0}")]
    Encodings(String),
    #[error("payload type {0} is used twice")]
    DuplicatePayloadType(u8),
    #[error("header extension id {0} is used twice")]
    DuplicateExtensionId(u8),
    #[error("rtp_parameters.mid {0:?} is not a valid mid (1-16 letters, digits, - or _)")]
    BadMid(String),
}

/// A producer ready for the media plane.
#[derive(Debug, Clone)]
pub struct Produced {
    pub spec: PublishSpec,
    pub extmap: ExtMap,
    /// The codec the producer sends (its first).
    pub codec: Codec,
    /// That codec's parameters as the producer gave them.
    pub codec_parameters: serde_json::Map<String, serde_json::Value>,
    /// The RTCP CNAME (consumers get it, so that their players synchronise the producer's
    /// tracks).
    pub cname: Option<String>,
}

fn kind_name(k: MediaKind) -> &'static str {
    super::router_caps::kind_name(k)
}

/// `video/VP8` → (`video`, `VP8`).
fn split_mime(mime: &str) -> Option<(&str, &str)> {
    mime.split_once('/')
}

fn is_rtx(c: &RtpCodecParameters) -> bool {
    split_mime(&c.mime_type).is_some_and(|(_, s)| s.eq_ignore_ascii_case("rtx"))
}

/// Feedback mechanisms the media plane acts on.
pub fn feedback_of(c: &RtpCodecParameters) -> RtcpFeedback {
    let mut fb = RtcpFeedback::default();
    for f in &c.rtcp_feedback {
        match (f.kind.as_str(), f.parameter.as_str()) {
            ("nack", "") => fb.nack = true,
            ("nack", "pli") => fb.nack_pli = true,
            ("ccm", "fir") => fb.ccm_fir = true,
            ("transport-cc", _) => fb.transport_cc = true,
            ("goog-remb", _) => fb.goog_remb = true,
            _ => {}
        }
    }
    fb
}

/// Checks a codec's parameters the way the SDP path does (RFC 6184 packetization mode 1, VP9
/// profiles 0 and 2, AV1 profile 0, two-channel Opus).
pub fn check_codec(codec: Codec, c: &RtpCodecParameters) -> Result<(), String> {
    let p = |k: &str| c.parameters.get(k).and_then(param_text);
    if c.clock_rate != codec.clock_rate() {
        return Err(format!(
            "clock rate {} (want {})",
            c.clock_rate,
            codec.clock_rate()
        ));
    }
    match codec {
        Codec::Opus if c.channels != Some(2) => Err("Opus must have 2 channels".into()),
        Codec::H264 if p("packetization-mode").as_deref() != Some("1") => {
            Err("H.264 needs packetization-mode=1".into())
        }
        Codec::Vp9 if !matches!(p("profile-id").as_deref(), None | Some("0") | Some("2")) => {
            Err("VP9 profile-id must be 0 or 2".into())
        }
        Codec::Av1 if !matches!(p("profile").as_deref(), None | Some("0")) => {
            Err("AV1 profile must be 0".into())
        }
        _ => Ok(()),
    }
}

/// The header extensions of `params` the media plane understands, by id.
pub fn extmap_of(params: &RtpParameters) -> Result<ExtMap, ProduceError> {
    let mut m = ExtMap::default();
    let mut seen = [false; 256];
    for e in &params.header_extensions {
        if std::mem::replace(&mut seen[usize::from(e.id)], true) {
            return Err(ProduceError::DuplicateExtensionId(e.id));
        }
        let slot = match HeaderExtension::from_uri(&e.uri) {
            Some(HeaderExtension::Mid) => &mut m.mid,
            Some(HeaderExtension::Rid) => &mut m.rid,
            Some(HeaderExtension::RepairedRid) => &mut m.repaired_rid,
            Some(HeaderExtension::AbsSendTime) => &mut m.abs_send_time,
            Some(HeaderExtension::TransportCc) => &mut m.transport_cc,
            Some(HeaderExtension::AudioLevel) => &mut m.audio_level,
            Some(HeaderExtension::DependencyDescriptor) => &mut m.dependency_descriptor,
            None => continue,
        };
        *slot = Some(e.id);
    }
    Ok(m)
}

fn valid_mid(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 16
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a producer of `kind` and builds its spec on `stream` as `track`. `default_mid` is
/// used when the parameters carry none.
pub fn produce(
    caps: &Capabilities,
    kind: MediaKind,
    params: &RtpParameters,
    stream: StreamKey,
    track: TrackId,
    default_mid: &str,
) -> Result<Produced, ProduceError> {
    let kn = kind_name(kind);
    let mut seen = [false; 128];
    for c in &params.codecs {
        if c.payload_type > 127 || std::mem::replace(&mut seen[usize::from(c.payload_type)], true) {
            return Err(ProduceError::DuplicatePayloadType(c.payload_type));
        }
    }
    let mut codecs = Vec::new();
    let mut first_params = None;
    for c in params.codecs.iter().filter(|c| !is_rtx(c)) {
        let Some((k, sub)) = split_mime(&c.mime_type) else {
            return Err(ProduceError::KindMismatch(c.mime_type.clone(), kn));
        };
        if !k.eq_ignore_ascii_case(kn) {
            return Err(ProduceError::KindMismatch(c.mime_type.clone(), kn));
        }
        let Some(codec) = Codec::from_sdp_name(sub).filter(|c| caps.codecs_for(kind).contains(c))
        else {
            continue;
        };
        check_codec(codec, c).map_err(|reason| ProduceError::BadParameters {
            mime: c.mime_type.clone(),
            reason,
        })?;
        let rtx_pt = params
            .codecs
            .iter()
            .filter(|r| is_rtx(r))
            .find(|r| {
                r.parameters.get("apt").and_then(param_text) == Some(c.payload_type.to_string())
            })
            .map(|r| PayloadType(r.payload_type));
        first_params.get_or_insert_with(|| c.parameters.clone());
        codecs.push(CodecParams {
            pt: PayloadType(c.payload_type),
            codec,
            clock_rate: c.clock_rate,
            channels: c
                .channels
                .unwrap_or(if kind == MediaKind::Audio { 2 } else { 1 }),
            fmtp: fmtp_of(&c.parameters),
            rtx_pt,
            feedback: feedback_of(c),
        });
    }
    let Some(first) = codecs.first().map(|c| c.codec) else {
        let names: Vec<&str> = caps.codecs_for(kind).iter().map(|c| c.sdp_name()).collect();
        return Err(ProduceError::NoCodec(kn, names.join(", ")));
    };
    let enc = &params.encodings;
    let (ssrc, rtx_ssrc, layers) = match enc.len() {
        0 => (None, None, Vec::new()),
        1 => (
            enc[0].ssrc.map(Ssrc),
            enc[0].rtx.map(|r| Ssrc(r.ssrc)),
            Vec::new(),
        ),
        n if kind == MediaKind::Audio => {
            return Err(ProduceError::Encodings(format!(
                "{n} encodings: audio is one encoding"
            )));
        }
        n if n > MAX_SIMULCAST_LAYERS => {
            return Err(ProduceError::Encodings(format!(
                "{n} encodings: at most {MAX_SIMULCAST_LAYERS} simulcast encodings"
            )));
        }
        _ => {
            let mut with_rid: Vec<(usize, &super::rtp_types::RtpEncodingParameters)> =
                enc.iter().enumerate().collect();
            if with_rid
                .iter()
                .any(|(_, e)| e.rid.as_deref().is_none_or(str::is_empty))
            {
                return Err(ProduceError::Encodings(
                    "simulcast encodings need a rid each (SSRC-only simulcast is not supported)"
                        .into(),
                ));
            }
            // Lowest first: by scaleResolutionDownBy when every encoding has it (the largest
            // factor is the smallest picture), else in the given order (mediasoup's convention).
            if with_rid
                .iter()
                .all(|(_, e)| e.scale_resolution_down_by.is_some())
            {
                with_rid.sort_by(|(ia, a), (ib, b)| {
                    b.scale_resolution_down_by
                        .partial_cmp(&a.scale_resolution_down_by)
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(ia.cmp(ib))
                });
            }
            let rids: Vec<Rid> = with_rid
                .iter()
                .filter_map(|(_, e)| e.rid.clone().map(Rid))
                .collect();
            let mut dedup = rids.clone();
            dedup.sort();
            dedup.dedup();
            if dedup.len() != rids.len() {
                return Err(ProduceError::Encodings("rids must be distinct".into()));
            }
            (None, None, rids)
        }
    };
    let mid = params
        .mid
        .clone()
        .unwrap_or_else(|| default_mid.to_string());
    if !valid_mid(&mid) {
        return Err(ProduceError::BadMid(mid));
    }
    let extmap = extmap_of(params)?;
    Ok(Produced {
        spec: PublishSpec {
            stream,
            track,
            kind,
            mid: Mid(mid),
            ssrc,
            rtx_ssrc,
            codecs,
            layers,
            layer_order: LayerOrder::Named,
            // The request may say it is a screen share (see `tracks::PublishRequest::source`).
            content: sfu::control::TrackContent::Camera,
        },
        extmap,
        codec: first,
        codec_parameters: first_params.unwrap_or_default(),
        cname: params.rtcp.cname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: serde_json::Value) -> RtpParameters {
        serde_json::from_value(v).expect("valid JSON parameters")
    }

    fn chromium_video() -> RtpParameters {
        params(json!({
            "mid": "1",
            "codecs": [
                {"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
                 "rtcpFeedback": [{"type": "transport-cc"}, {"type": "nack"}, {"type": "nack", "parameter": "pli"}, {"type": "ccm", "parameter": "fir"}]},
                {"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": {"apt": 96}}
            ],
            "headerExtensions": [
                {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4},
                {"uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 3},
                {"uri": "urn:3gpp:video-orientation", "id": 13}
            ],
            "encodings": [{"ssrc": 1234, "rtx": {"ssrc": 5678}}],
            "rtcp": {"cname": "c1"}
        }))
    }

    #[test]
    fn a_chromium_camera_producer_becomes_a_publish_spec() {
        let p = produce(
            &Capabilities::default(),
            MediaKind::Video,
            &chromium_video(),
            StreamKey(9),
            TrackId(3),
            "x",
        )
        .expect("accepted");
        assert_eq!(p.codec, Codec::Vp8);
        assert_eq!(p.spec.mid, Mid("1".into()));
        assert_eq!(
            (p.spec.ssrc, p.spec.rtx_ssrc),
            (Some(Ssrc(1234)), Some(Ssrc(5678)))
        );
        let c = &p.spec.codecs[0];
        assert_eq!((c.pt, c.rtx_pt), (PayloadType(96), Some(PayloadType(97))));
        assert!(c.feedback.nack && c.feedback.nack_pli && c.feedback.transport_cc);
        assert_eq!((p.extmap.mid, p.extmap.transport_cc), (Some(4), Some(3)));
        assert_eq!(p.extmap.audio_level, None, "unknown extensions are ignored");
        assert_eq!(p.cname.as_deref(), Some("c1"));
    }

    #[test]
    fn simulcast_by_rid_is_ordered_lowest_first() {
        let mut v = chromium_video();
        v.encodings = serde_json::from_value(json!([
            {"rid": "r2", "scaleResolutionDownBy": 1.0},
            {"rid": "r0", "scaleResolutionDownBy": 4.0},
            {"rid": "r1", "scaleResolutionDownBy": 2.0}
        ]))
        .expect("encodings");
        let p = produce(
            &Capabilities::default(),
            MediaKind::Video,
            &v,
            StreamKey(1),
            TrackId(1),
            "0",
        )
        .expect("accepted");
        let rids: Vec<&str> = p.spec.layers.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(rids, ["r0", "r1", "r2"]);
        assert_eq!(p.spec.ssrc, None);
    }

    #[test]
    fn unusable_parameters_are_refused_with_a_reason() {
        let caps = Capabilities::default();
        let go = |v: &RtpParameters, k| produce(&caps, k, v, StreamKey(1), TrackId(1), "0");
        let v = chromium_video();
        assert!(matches!(
            go(&v, MediaKind::Audio),
            Err(ProduceError::KindMismatch(..))
        ));
        let mut h264 = chromium_video();
        h264.codecs[0].mime_type = "video/H264".into();
        h264.codecs[0].parameters =
            serde_json::from_value(json!({"packetization-mode": 0})).expect("map");
        assert!(matches!(
            go(&h264, MediaKind::Video),
            Err(ProduceError::BadParameters { .. })
        ));
        let mut unknown = chromium_video();
        unknown.codecs[0].mime_type = "video/H265".into();
        assert!(matches!(
            go(&unknown, MediaKind::Video),
            Err(ProduceError::NoCodec(..))
        ));
        let mut ssrc_simulcast = chromium_video();
        ssrc_simulcast.encodings =
            serde_json::from_value(json!([{"ssrc": 1}, {"ssrc": 2}])).expect("enc");
        assert!(matches!(
            go(&ssrc_simulcast, MediaKind::Video),
            Err(ProduceError::Encodings(_))
        ));
        let mut dup = chromium_video();
        dup.codecs[1].payload_type = 96;
        assert_eq!(
            go(&dup, MediaKind::Video).err(),
            Some(ProduceError::DuplicatePayloadType(96))
        );
        let mut bad_mid = chromium_video();
        bad_mid.mid = Some("a b".into());
        assert!(matches!(
            go(&bad_mid, MediaKind::Video),
            Err(ProduceError::BadMid(_))
        ));
    }
}
