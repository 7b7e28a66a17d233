//! Server-initiated negotiation for viewers of `/stream/watch`: Ringcast writes the SDP offer
//! (RFC 3264 / RFC 8829 §5.2 shape: ICE-lite, BUNDLE, rtcp-mux, `a=setup:actpass`, one
//! `sendonly` audio and one `sendonly` video line with Ringcast's SSRCs) and accepts the viewer's
//! answer (`recvonly`, `a=setup:active`: the viewer is the DTLS client, Ringcast stays the DTLS
//! server as with WHIP/WHEP). The answer is read with the same parser and negotiation as WHEP
//! offers, then checked against what was offered.

use std::fmt::Write as _;

use sfu::control::{CodecParams, ExtMap, IceParams, RtcpFeedback, SessionSpec, SubscribeSpec};
use sfu::dtls::Fingerprint;
use sfu::{Codec, MediaKind, Mid, PayloadType, SessionId, Ssrc, StreamKey};

use crate::problem::Problem;
use crate::sdp::{self, Candidate, Capabilities, HeaderExtension, Setup};

/// Header-extension ids of the offer (one-byte form).
const EXT_MID: u8 = 1;
const EXT_AUDIO_LEVEL: u8 = 2;

/// One line of the offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedLine {
    pub mid: Mid,
    pub kind: MediaKind,
    /// Offered formats in Ringcast's numbering.
    pub codecs: Vec<CodecParams>,
    pub ssrc: Ssrc,
    pub rtx_ssrc: Ssrc,
}

/// An offer Ringcast made, kept until the viewer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOffer {
    pub sdp: String,
    pub ice: IceParams,
    pub lines: Vec<OfferedLine>,
}

/// What the offer is built from.
#[derive(Debug, Clone)]
pub struct OfferParams<'a> {
    pub ice: IceParams,
    pub fingerprint: &'a Fingerprint,
    pub candidates: &'a [Candidate],
    /// `o=` session id (below 2^63).
    pub session_id: u64,
    pub cname: &'a str,
    /// `a=msid` stream id (token characters).
    pub msid_stream: &'a str,
    /// SSRCs for (audio, audio RTX, video, video RTX).
    pub ssrcs: [Ssrc; 4],
}

/// The viewer's answer, checked and ready for the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedAnswer {
    pub remote_ice: IceParams,
    pub remote_fingerprint: Fingerprint,
    pub extmap: ExtMap,
    /// The lines the viewer accepted, with the formats it kept.
    pub lines: Vec<(OfferedLine, Vec<CodecParams>)>,
}

/// Why an answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("{0}")]
    Sdp(#[from] sdp::SdpError),
    #[error("the answer must take the DTLS client role (a=setup:active)")]
    SetupNotActive,
    #[error("the answer has {got} media lines, the offer had {want}")]
    LineCount { got: usize, want: usize },
    #[error("answer line {index} has mid {got:?}, the offer had {want:?}")]
    MidMismatch {
        index: usize,
        got: String,
        want: String,
    },
    #[error(
        "answer line {mid} uses payload type {pt}, which the offer did not have for that codec"
    )]
    UnofferedFormat { mid: String, pt: u8 },
}

impl From<AnswerError> for Problem {
    fn from(e: AnswerError) -> Problem {
        if e.http_status() == 422 {
            Problem::unprocessable(e.to_string())
        } else {
            Problem::bad_request(e.to_string())
        }
    }
}

impl AnswerError {
    /// 400 for malformed SDP, 422 for a well-formed answer that does not fit the offer.
    pub fn http_status(&self) -> u16 {
        match self {
            AnswerError::Sdp(e) => e.http_status(),
            _ => 422,
        }
    }
}

fn fb_video() -> RtcpFeedback {
    RtcpFeedback {
        nack: true,
        nack_pli: true,
        ccm_fir: true,
        transport_cc: false,
        goog_remb: false,
    }
}

/// The formats offered on a line of `kind`, in the capabilities' order.
fn offered_codecs(caps: &Capabilities, kind: MediaKind) -> Vec<CodecParams> {
    let mut out = Vec::new();
    for codec in caps.codecs_for(kind) {
        let (pt, rtx, fmtp) = match codec {
            Codec::Opus => (111, None, "minptime=10;useinbandfec=1"),
            Codec::Vp8 => (96, Some(97), ""),
            Codec::H264 => (
                102,
                Some(103),
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
            Codec::Vp9 => (98, Some(99), "profile-id=0"),
            Codec::Av1 => (45, Some(46), ""),
        };
        out.push(CodecParams {
            pt: PayloadType(pt),
            codec: *codec,
            clock_rate: codec.clock_rate(),
            channels: if kind == MediaKind::Audio { 2 } else { 1 },
            fmtp: fmtp.to_string(),
            rtx_pt: rtx.map(PayloadType),
            feedback: if kind == MediaKind::Video {
                fb_video()
            } else {
                RtcpFeedback::default()
            },
        });
    }
    out
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    // Writing into a String cannot fail.
    let _ = out.write_fmt(args);
    out.push_str("\r\n");
}

/// Writes the offer: audio (mid 0) and video (mid 1), both `sendonly`.
pub fn write_offer(caps: &Capabilities, p: &OfferParams<'_>) -> ServerOffer {
    let [a_ssrc, a_rtx, v_ssrc, v_rtx] = p.ssrcs;
    let lines: Vec<OfferedLine> = [
        (MediaKind::Audio, "0", a_ssrc, a_rtx),
        (MediaKind::Video, "1", v_ssrc, v_rtx),
    ]
    .into_iter()
    .map(|(kind, mid, ssrc, rtx_ssrc)| OfferedLine {
        mid: Mid(mid.into()),
        kind,
        codecs: offered_codecs(caps, kind),
        ssrc,
        rtx_ssrc,
    })
    .filter(|l| !l.codecs.is_empty())
    .collect();

    let (addr, port) = p
        .candidates
        .first()
        .map(|c| (c.ip, c.port))
        .unwrap_or((std::net::IpAddr::from([0, 0, 0, 0]), 9));
    let conn = match addr {
        std::net::IpAddr::V4(v4) => format!("IN IP4 {v4}"),
        std::net::IpAddr::V6(v6) => format!("IN IP6 {v6}"),
    };
    let mut out = String::with_capacity(4096);
    line(&mut out, format_args!("v=0"));
    line(
        &mut out,
        format_args!("o=- {} 2 IN IP4 127.0.0.1", p.session_id),
    );
    line(&mut out, format_args!("s=-"));
    line(&mut out, format_args!("t=0 0"));
    line(&mut out, format_args!("a=ice-lite"));
    let mids: Vec<&str> = lines.iter().map(|l| l.mid.0.as_str()).collect();
    line(&mut out, format_args!("a=group:BUNDLE {}", mids.join(" ")));
    line(
        &mut out,
        format_args!("a=msid-semantic: WMS {}", p.msid_stream),
    );
    for l in &lines {
        let mut formats = String::new();
        for c in &l.codecs {
            let _ = write!(formats, " {}", c.pt.0);
            if let Some(r) = c.rtx_pt {
                let _ = write!(formats, " {}", r.0);
            }
        }
        let kind = match l.kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        line(
            &mut out,
            format_args!("m={kind} {port} UDP/TLS/RTP/SAVPF{formats}"),
        );
        line(&mut out, format_args!("c={conn}"));
        line(&mut out, format_args!("a=mid:{}", l.mid.0));
        line(&mut out, format_args!("a=ice-ufrag:{}", p.ice.ufrag));
        line(&mut out, format_args!("a=ice-pwd:{}", p.ice.pwd));
        line(&mut out, format_args!("a=fingerprint:{}", p.fingerprint));
        line(&mut out, format_args!("a=setup:actpass"));
        line(&mut out, format_args!("a=sendonly"));
        line(&mut out, format_args!("a=rtcp-mux"));
        line(&mut out, format_args!("a=rtcp-rsize"));
        if caps.header_extensions.contains(&HeaderExtension::Mid) {
            line(
                &mut out,
                format_args!("a=extmap:{EXT_MID} {}", HeaderExtension::Mid.uri()),
            );
        }
        if l.kind == MediaKind::Audio
            && caps
                .header_extensions
                .contains(&HeaderExtension::AudioLevel)
        {
            line(
                &mut out,
                format_args!(
                    "a=extmap:{EXT_AUDIO_LEVEL} {}",
                    HeaderExtension::AudioLevel.uri()
                ),
            );
        }
        line(
            &mut out,
            format_args!("a=msid:{} {}-{}", p.msid_stream, p.msid_stream, l.mid.0),
        );
        let mut any_rtx = false;
        for c in &l.codecs {
            let pt = c.pt.0;
            match l.kind {
                MediaKind::Audio => line(
                    &mut out,
                    format_args!(
                        "a=rtpmap:{pt} {}/{}/{}",
                        c.codec.sdp_name(),
                        c.clock_rate,
                        c.channels
                    ),
                ),
                MediaKind::Video => line(
                    &mut out,
                    format_args!("a=rtpmap:{pt} {}/{}", c.codec.sdp_name(), c.clock_rate),
                ),
            }
            for (on, v) in [
                (c.feedback.nack, "nack"),
                (c.feedback.nack_pli, "nack pli"),
                (c.feedback.ccm_fir, "ccm fir"),
            ] {
                if on {
                    line(&mut out, format_args!("a=rtcp-fb:{pt} {v}"));
                }
            }
            if !c.fmtp.is_empty() {
                line(&mut out, format_args!("a=fmtp:{pt} {}", c.fmtp));
            }
            if let Some(r) = c.rtx_pt {
                any_rtx = true;
                line(
                    &mut out,
                    format_args!("a=rtpmap:{} rtx/{}", r.0, c.clock_rate),
                );
                line(&mut out, format_args!("a=fmtp:{} apt={pt}", r.0));
            }
        }
        if any_rtx {
            line(
                &mut out,
                format_args!("a=ssrc-group:FID {} {}", l.ssrc, l.rtx_ssrc),
            );
        }
        line(
            &mut out,
            format_args!("a=ssrc:{} cname:{}", l.ssrc, p.cname),
        );
        if any_rtx {
            line(
                &mut out,
                format_args!("a=ssrc:{} cname:{}", l.rtx_ssrc, p.cname),
            );
        }
        for c in p.candidates {
            line(&mut out, format_args!("a=candidate:{c}"));
        }
        line(&mut out, format_args!("a=end-of-candidates"));
    }
    ServerOffer {
        sdp: out,
        ice: p.ice.clone(),
        lines,
    }
}

/// Reads and checks the viewer's answer to `offer`.
pub fn accept_answer(
    offer: &ServerOffer,
    answer: &str,
    caps: &Capabilities,
) -> Result<AcceptedAnswer, AnswerError> {
    let parsed = sdp::parse_offer(answer).map_err(|e| match e {
        sdp::SdpError::PassiveSetup => AnswerError::SetupNotActive,
        e => AnswerError::Sdp(e),
    })?;
    if parsed.setup != Setup::Active {
        return Err(AnswerError::SetupNotActive);
    }
    let rtp_lines: Vec<_> = parsed.media.iter().filter(|m| m.kind.is_some()).collect();
    if rtp_lines.len() != offer.lines.len() {
        return Err(AnswerError::LineCount {
            got: rtp_lines.len(),
            want: offer.lines.len(),
        });
    }
    for (index, (a, o)) in rtp_lines.iter().zip(&offer.lines).enumerate() {
        if a.mid != o.mid {
            return Err(AnswerError::MidMismatch {
                index,
                got: a.mid.0.clone(),
                want: o.mid.0.clone(),
            });
        }
    }
    let neg = sdp::negotiate(&parsed, sdp::Role::Viewer, caps)?;
    let mut lines = Vec::new();
    for nm in neg.accepted() {
        let Some(o) = offer.lines.iter().find(|o| o.mid == nm.mid) else {
            continue;
        };
        for c in &nm.codecs {
            let ours = o
                .codecs
                .iter()
                .find(|oc| oc.pt == c.pt && oc.codec == c.codec);
            if ours.is_none() {
                return Err(AnswerError::UnofferedFormat {
                    mid: nm.mid.0.clone(),
                    pt: c.pt.0,
                });
            }
        }
        lines.push((o.clone(), nm.codecs.clone()));
    }
    Ok(AcceptedAnswer {
        remote_ice: neg.remote_ice.clone(),
        remote_fingerprint: neg.remote_fingerprint.clone(),
        extmap: neg.extmap,
        lines,
    })
}

impl AcceptedAnswer {
    /// The shard's session for viewer `id` of `stream` that answered `offer` this way.
    pub fn into_spec(self, id: SessionId, offer: &ServerOffer, stream: StreamKey) -> SessionSpec {
        SessionSpec {
            id,
            local_ice: offer.ice.clone(),
            subscribe: self.subscriptions(stream),
            remote_ice: self.remote_ice,
            remote_fingerprint: self.remote_fingerprint,
            extmap: self.extmap,
            publish: Vec::new(),
        }
    }

    /// The subscriptions the shard runs for this viewer of `stream`.
    pub fn subscriptions(&self, stream: StreamKey) -> Vec<SubscribeSpec> {
        self.lines
            .iter()
            .map(|(o, codecs)| SubscribeSpec {
                stream,
                kind: o.kind,
                mid: o.mid.clone(),
                ssrc: o.ssrc,
                rtx_ssrc: codecs
                    .iter()
                    .any(|c| c.rtx_pt.is_some())
                    .then_some(o.rtx_ssrc),
                codecs: codecs.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
