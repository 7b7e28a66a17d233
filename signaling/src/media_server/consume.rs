//! A consumer of a producer: which of the producer's codec the consuming device can receive
//! (its `rtpCapabilities`), and the RTP parameters it receives with (mediasoup's consumer
//! parameters: the router's payload types and extension ids, Ringcast's SSRCs, the producer's
//! CNAME), plus the [`SubscribeSpec`] and extension ids the media plane sends with.

use serde_json::{Map, Value};
use sfu::control::{CodecParams, ExtMap, RtcpFeedback, SubscribeSpec};
use sfu::{Codec, MediaKind, Mid, PayloadType, Ssrc};

use super::presets::AudioQuality;
use super::produce::Produced;
use super::router_caps::{consumer_ext_id, kind_name, mime_type, payload_types};
use super::rtp_types::{
    RtcpParameters, RtpCapabilities, RtpCodecCapability, RtpCodecParameters, RtpEncodingParameters,
    RtpHeaderExtensionParameters, RtpParameters, RtxParameters, fmtp_of, param_text,
};
use crate::sdp::{Capabilities, HeaderExtension};

/// Why a device cannot consume a producer (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    #[error(
        "rtp_capabilities cannot receive the track's codec {0}: load the Device with the router's capabilities and pass device.rtpCapabilities"
    )]
    CannotConsume(String),
}

/// A consumer ready for the client and the media plane.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub rtp_parameters: RtpParameters,
    pub spec: SubscribeSpec,
    pub extmap: ExtMap,
}

/// What one consumer is made of.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerIds<'a> {
    pub mid: &'a str,
    pub ssrc: Ssrc,
    pub rtx_ssrc: Ssrc,
    /// The CNAME when the producer gave none.
    pub fallback_cname: &'a str,
}

fn param(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(param_text)
}

/// Whether a device's codec capability can receive what `codec` with `params` sends.
fn matches(codec: Codec, params: &Map<String, Value>, cap: &RtpCodecCapability) -> bool {
    if !cap.mime_type.eq_ignore_ascii_case(&mime_type(codec))
        || cap.clock_rate != codec.clock_rate()
    {
        return false;
    }
    match codec {
        Codec::Opus => cap.channels.unwrap_or(1) == 2,
        Codec::H264 => {
            let mode =
                |m: &Map<String, Value>| param(m, "packetization-mode").unwrap_or("0".into());
            let profile = |m: &Map<String, Value>| {
                param(m, "profile-level-id")
                    .unwrap_or("42000a".into())
                    .get(..2)
                    .map(str::to_ascii_lowercase)
            };
            mode(params) == mode(&cap.parameters) && profile(params) == profile(&cap.parameters)
        }
        Codec::Vp9 => {
            let p = |m: &Map<String, Value>| param(m, "profile-id").unwrap_or("0".into());
            p(params) == p(&cap.parameters)
        }
        _ => true,
    }
}

/// Builds the consumer of `producer` for a device with `device` capabilities. `audio` is the
/// producer's audio preset (it shapes Opus parameters).
pub fn consume(
    caps: &Capabilities,
    producer: &Produced,
    audio: AudioQuality,
    device: &RtpCapabilities,
    ids: ConsumerIds<'_>,
) -> Result<Consumed, ConsumeError> {
    let codec = producer.codec;
    let kind = codec.kind();
    let cap = device
        .codecs
        .iter()
        .find(|c| matches(codec, &producer.codec_parameters, c))
        .ok_or_else(|| ConsumeError::CannotConsume(mime_type(codec)))?;
    let pt = cap.preferred_payload_type.unwrap_or(payload_types(codec).0);
    let rtx_pt = (kind == MediaKind::Video)
        .then(|| {
            device.codecs.iter().find(|r| {
                r.mime_type
                    .eq_ignore_ascii_case(&format!("{}/rtx", kind_name(kind)))
                    && param(&r.parameters, "apt") == Some(pt.to_string())
            })
        })
        .flatten()
        .and_then(|r| r.preferred_payload_type);

    // Header extensions the media plane writes toward viewers, where the device takes them.
    let mut extmap = ExtMap::default();
    let mut header_extensions = Vec::new();
    let wanted = [
        (HeaderExtension::TransportCc, true),
        (HeaderExtension::AudioLevel, kind == MediaKind::Audio),
        (
            HeaderExtension::DependencyDescriptor,
            kind == MediaKind::Video && codec == Codec::Av1,
        ),
    ];
    for (ext, wanted) in wanted {
        if !wanted || consumer_ext_id(caps, ext, kind).is_none() {
            continue;
        }
        let Some(d) = device
            .header_extensions
            .iter()
            .find(|e| e.uri == ext.uri() && e.kind.as_deref().is_none_or(|k| k == kind_name(kind)))
        else {
            continue;
        };
        let id = d.preferred_id;
        match ext {
            HeaderExtension::TransportCc => extmap.transport_cc = Some(id),
            HeaderExtension::AudioLevel => extmap.audio_level = Some(id),
            _ => extmap.dependency_descriptor = Some(id),
        }
        header_extensions.push(RtpHeaderExtensionParameters {
            uri: ext.uri().into(),
            id,
            encrypt: false,
            parameters: Map::new(),
        });
    }

    let tcc = extmap.transport_cc.is_some();
    let rtcp_feedback: Vec<_> = cap
        .rtcp_feedback
        .iter()
        .filter(|f| match (f.kind.as_str(), f.parameter.as_str()) {
            ("nack", "") | ("nack", "pli") | ("ccm", "fir") => kind == MediaKind::Video,
            ("transport-cc", _) => tcc,
            _ => false,
        })
        .cloned()
        .collect();
    let mut parameters = producer.codec_parameters.clone();
    if codec == Codec::Opus {
        audio.apply_to_opus(&mut parameters);
    }
    let mut codecs = vec![RtpCodecParameters {
        mime_type: mime_type(codec),
        payload_type: pt,
        clock_rate: codec.clock_rate(),
        channels: (codec == Codec::Opus).then_some(2),
        parameters: parameters.clone(),
        rtcp_feedback: rtcp_feedback.clone(),
    }];
    if let Some(r) = rtx_pt {
        let mut apt = Map::new();
        apt.insert("apt".into(), Value::from(pt));
        codecs.push(RtpCodecParameters {
            mime_type: format!("{}/rtx", kind_name(kind)),
            payload_type: r,
            clock_rate: codec.clock_rate(),
            channels: None,
            parameters: apt,
            rtcp_feedback: Vec::new(),
        });
    }
    let mut feedback = RtcpFeedback::default();
    for f in &rtcp_feedback {
        match (f.kind.as_str(), f.parameter.as_str()) {
            ("nack", "") => feedback.nack = true,
            ("nack", "pli") => feedback.nack_pli = true,
            ("ccm", "fir") => feedback.ccm_fir = true,
            ("transport-cc", _) => feedback.transport_cc = true,
            _ => {}
        }
    }
    let rtx_ssrc = rtx_pt.map(|_| ids.rtx_ssrc);
    let rtp_parameters = RtpParameters {
        mid: Some(ids.mid.to_string()),
        codecs,
        header_extensions,
        encodings: vec![RtpEncodingParameters {
            ssrc: Some(ids.ssrc.0),
            rtx: rtx_ssrc.map(|s| RtxParameters { ssrc: s.0 }),
            ..RtpEncodingParameters::default()
        }],
        rtcp: RtcpParameters {
            cname: Some(
                producer
                    .cname
                    .clone()
                    .unwrap_or_else(|| ids.fallback_cname.to_string()),
            ),
            reduced_size: Some(true),
            mux: Some(true),
        },
        msid: None,
    };
    let spec = SubscribeSpec {
        stream: producer.spec.stream,
        kind,
        mid: Mid(ids.mid.to_string()),
        ssrc: ids.ssrc,
        rtx_ssrc,
        codecs: vec![CodecParams {
            pt: PayloadType(pt),
            codec,
            clock_rate: codec.clock_rate(),
            channels: if codec == Codec::Opus { 2 } else { 1 },
            fmtp: fmtp_of(&parameters),
            rtx_pt: rtx_pt.map(PayloadType),
            feedback,
        }],
    };
    Ok(Consumed {
        rtp_parameters,
        spec,
        extmap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_server::produce::produce;
    use crate::media_server::router_caps::{ext_id, router_capabilities};
    use serde_json::json;
    use sfu::{StreamKey, TrackId};

    fn producer(kind: MediaKind, v: serde_json::Value) -> Produced {
        let p: RtpParameters = serde_json::from_value(v).expect("parameters");
        produce(
            &Capabilities::default(),
            kind,
            &p,
            StreamKey(5),
            TrackId(6),
            "0",
        )
        .expect("produce")
    }

    fn opus_producer() -> Produced {
        producer(
            MediaKind::Audio,
            json!({
                "mid": "0",
                "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
                            "parameters": {"minptime": 10, "useinbandfec": 1}}],
                "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1}],
                "encodings": [{"ssrc": 42}],
                "rtcp": {"cname": "producer-cname"}
            }),
        )
    }

    fn ids() -> ConsumerIds<'static> {
        ConsumerIds {
            mid: "3",
            ssrc: Ssrc(1000),
            rtx_ssrc: Ssrc(1001),
            fallback_cname: "x",
        }
    }

    #[test]
    fn a_device_with_the_router_capabilities_consumes_opus_at_the_preset() {
        let caps = Capabilities::default();
        // A device that took everything the router offers.
        let device = router_capabilities(&caps);
        let c = consume(&caps, &opus_producer(), AudioQuality::Low, &device, ids())
            .expect("consumable");
        let p = &c.rtp_parameters;
        assert_eq!(p.codecs.len(), 1);
        assert_eq!(
            p.codecs[0].payload_type, 100,
            "the router's payload type, not the producer's"
        );
        assert_eq!(p.codecs[0].parameters["maxaveragebitrate"], json!(16000));
        assert_eq!(p.codecs[0].parameters["stereo"], json!(0));
        assert_eq!(
            p.codecs[0].parameters["useinbandfec"],
            json!(1),
            "the producer's own stay"
        );
        assert_eq!(p.rtcp.cname.as_deref(), Some("producer-cname"));
        assert_eq!(p.encodings[0].ssrc, Some(1000));
        assert_eq!(p.mid.as_deref(), Some("3"));
        let uris: Vec<&str> = p.header_extensions.iter().map(|e| e.uri.as_str()).collect();
        assert!(uris.contains(&HeaderExtension::AudioLevel.uri()));
        assert_eq!(c.extmap.audio_level, Some(ext_id::AUDIO_LEVEL));
        assert_eq!(c.spec.stream, StreamKey(5));
        assert_eq!(c.spec.codecs[0].pt, PayloadType(100));
        assert!(c.spec.codecs[0].fmtp.contains("maxaveragebitrate=16000"));
        let high =
            consume(&caps, &opus_producer(), AudioQuality::High, &device, ids()).expect("ok");
        assert_eq!(high.rtp_parameters.codecs[0].parameters["stereo"], json!(1));
    }

    #[test]
    fn video_consumers_get_rtx_and_feedback_the_device_supports() {
        let caps = Capabilities::default();
        let vp8 = producer(
            MediaKind::Video,
            json!({"mid": "1", "codecs": [{"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000}],
                   "encodings": [{"ssrc": 7}]}),
        );
        let device = router_capabilities(&caps);
        let c = consume(&caps, &vp8, AudioQuality::Medium, &device, ids()).expect("consumable");
        let p = &c.rtp_parameters;
        assert_eq!(p.codecs[1].mime_type, "video/rtx");
        assert_eq!(p.codecs[1].parameters["apt"], json!(101));
        assert_eq!(p.encodings[0].rtx, Some(RtxParameters { ssrc: 1001 }));
        let fb: Vec<(&str, &str)> = p.codecs[0]
            .rtcp_feedback
            .iter()
            .map(|f| (f.kind.as_str(), f.parameter.as_str()))
            .collect();
        assert!(fb.contains(&("nack", "pli")) && fb.contains(&("transport-cc", "")));
        assert!(
            !fb.contains(&("goog-remb", "")),
            "viewers' REMB is not read"
        );
        assert_eq!(c.spec.rtx_ssrc, Some(Ssrc(1001)));
        assert_eq!(c.extmap.transport_cc, Some(ext_id::TRANSPORT_CC));

        // A device without VP8 cannot consume it.
        let mut no_vp8 = device.clone();
        no_vp8.codecs.retain(|c| c.mime_type != "video/VP8");
        assert!(matches!(
            consume(&caps, &vp8, AudioQuality::Medium, &no_vp8, ids()),
            Err(ConsumeError::CannotConsume(_))
        ));
    }
}
