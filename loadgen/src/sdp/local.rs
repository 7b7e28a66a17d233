//! Writing this client's side: the offer (WHIP/WHEP, `setup:actpass`) and the answer to a
//! server's offer (`setup:active`), both ICE-full toward the server with one host candidate.

use std::fmt::Write as _;
use std::net::SocketAddr;

use sfu::control::IceParams;
use sfu::dtls::Fingerprint;
use sfu::{MediaKind, Ssrc};

use super::remote::{RemoteDescription, RemoteMedia};
use super::{
    Direction, EXT_AUDIO_LEVEL, EXT_ID_AUDIO_LEVEL, EXT_ID_MID, EXT_ID_REPAIRED_RID, EXT_ID_RID,
    EXT_ID_TRANSPORT_CC, EXT_MID, EXT_REPAIRED_RID, EXT_RID, EXT_TRANSPORT_CC, PT_OPUS, PT_VP8,
    PT_VP8_RTX, SdpError,
};

/// The SSRCs a publisher announces (`a=ssrc`, `a=ssrc-group:FID`, RFC 5576 / RFC 4588).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherSsrcs {
    pub video: Ssrc,
    pub video_rtx: Ssrc,
    pub audio: Ssrc,
}

/// Header extension ids to write on a section (`None`: not written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtIds {
    pub audio_level: Option<u8>,
    pub transport_cc: Option<u8>,
    pub mid: Option<u8>,
    /// RTP stream id and repaired stream id (RFC 8852), for simulcast.
    pub rid: Option<u8>,
    pub repaired_rid: Option<u8>,
}

impl ExtIds {
    /// The ids this client offers.
    pub fn offered() -> Self {
        ExtIds {
            audio_level: Some(EXT_ID_AUDIO_LEVEL),
            transport_cc: Some(EXT_ID_TRANSPORT_CC),
            mid: Some(EXT_ID_MID),
            rid: None,
            repaired_rid: None,
        }
    }

    /// The ids a simulcast publisher offers on its video section.
    pub fn offered_simulcast() -> Self {
        ExtIds {
            rid: Some(EXT_ID_RID),
            repaired_rid: Some(EXT_ID_REPAIRED_RID),
            ..Self::offered()
        }
    }

    /// The ids a remote section uses for the extensions this client knows.
    pub fn of(m: &RemoteMedia) -> Self {
        ExtIds {
            audio_level: m.ext_id(EXT_AUDIO_LEVEL),
            transport_cc: m.ext_id(EXT_TRANSPORT_CC),
            mid: m.ext_id(EXT_MID),
            rid: m.ext_id(EXT_RID),
            repaired_rid: m.ext_id(EXT_REPAIRED_RID),
        }
    }

    fn write(&self, out: &mut String, audio: bool) {
        if audio && let Some(id) = self.audio_level {
            line(out, format_args!("a=extmap:{id} {EXT_AUDIO_LEVEL}"));
        }
        if let Some(id) = self.transport_cc {
            line(out, format_args!("a=extmap:{id} {EXT_TRANSPORT_CC}"));
        }
        if let Some(id) = self.mid {
            line(out, format_args!("a=extmap:{id} {EXT_MID}"));
        }
        if let Some(id) = self.rid {
            line(out, format_args!("a=extmap:{id} {EXT_RID}"));
        }
        if let Some(id) = self.repaired_rid {
            line(out, format_args!("a=extmap:{id} {EXT_REPAIRED_RID}"));
        }
    }
}

/// What this client writes about itself.
#[derive(Debug, Clone)]
pub struct LocalDescription {
    pub ice: IceParams,
    /// SHA-256 fingerprint of the client's DTLS certificate.
    pub fingerprint: Fingerprint,
    /// The client's UDP host candidate, if it wants to announce one.
    pub candidate: Option<SocketAddr>,
    /// `sendonly` for publishers, `recvonly` for subscribers.
    pub direction: Direction,
    pub video: bool,
    pub audio: bool,
    /// `o=` session id.
    pub session_id: u64,
    /// RTCP CNAME (RFC 7022).
    pub cname: String,
    /// Announced when the client sends.
    pub ssrcs: Option<PublisherSsrcs>,
    /// A sending client's simulcast encodings (`a=rid:<id> send`, `a=simulcast:send`), lowest
    /// first; empty: one encoding. Their SSRCs are not announced (the rid extension names them).
    pub simulcast: Vec<String>,
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    // Writing into a String cannot fail.
    let _ = out.write_fmt(args);
    out.push_str("\r\n");
}

fn session_header(out: &mut String, l: &LocalDescription, mids: &[&str]) {
    line(out, format_args!("v=0"));
    line(
        out,
        format_args!("o=- {} 2 IN IP4 127.0.0.1", l.session_id & (u64::MAX >> 1)),
    );
    line(out, format_args!("s=-"));
    line(out, format_args!("t=0 0"));
    if !mids.is_empty() {
        line(out, format_args!("a=group:BUNDLE {}", mids.join(" ")));
    }
    line(out, format_args!("a=extmap-allow-mixed"));
    line(out, format_args!("a=msid-semantic: WMS loadgen"));
}

/// Transport attributes shared by every `m=` section (BUNDLE makes them one transport).
fn transport(out: &mut String, l: &LocalDescription, setup: &str, first: bool) {
    let ip = l
        .candidate
        .map_or_else(|| "0.0.0.0".to_string(), |a| a.ip().to_string());
    let v = if ip.contains(':') { "IP6" } else { "IP4" };
    line(out, format_args!("c=IN {v} {ip}"));
    line(out, format_args!("a=rtcp:9 IN IP4 0.0.0.0"));
    if first && let Some(a) = l.candidate {
        // RFC 8445 §5.1.2.1 host priority: type 126, local preference 65535, component 1.
        let priority = (126u32 << 24) | (65535 << 8) | 255;
        line(
            out,
            format_args!(
                "a=candidate:1 1 udp {priority} {} {} typ host generation 0",
                a.ip(),
                a.port()
            ),
        );
        line(out, format_args!("a=end-of-candidates"));
    }
    line(out, format_args!("a=ice-ufrag:{}", l.ice.ufrag));
    line(out, format_args!("a=ice-pwd:{}", l.ice.pwd));
    line(out, format_args!("a=ice-options:trickle"));
    line(out, format_args!("a=fingerprint:{}", l.fingerprint));
    line(out, format_args!("a=setup:{setup}"));
}

fn m_port(l: &LocalDescription) -> u16 {
    l.candidate.map_or(9, |a| a.port())
}

#[allow(clippy::too_many_arguments)]
fn video_section(
    out: &mut String,
    l: &LocalDescription,
    mid: &str,
    setup: &str,
    first: bool,
    pts: (u8, Option<u8>),
    direction: Direction,
    ext: ExtIds,
) {
    let (vp8, rtx) = pts;
    let formats = match rtx {
        Some(r) => format!("{vp8} {r}"),
        None => format!("{vp8}"),
    };
    line(
        out,
        format_args!("m=video {} UDP/TLS/RTP/SAVPF {formats}", m_port(l)),
    );
    transport(out, l, setup, first);
    line(out, format_args!("a=mid:{mid}"));
    ext.write(out, false);
    line(out, format_args!("a={}", direction.as_str()));
    if direction.sends() {
        line(out, format_args!("a=msid:loadgen loadgen-video"));
    }
    line(out, format_args!("a=rtcp-mux"));
    line(out, format_args!("a=rtcp-rsize"));
    line(out, format_args!("a=rtpmap:{vp8} VP8/90000"));
    for fb in ["transport-cc", "ccm fir", "nack", "nack pli"] {
        line(out, format_args!("a=rtcp-fb:{vp8} {fb}"));
    }
    if let Some(r) = rtx {
        line(out, format_args!("a=rtpmap:{r} rtx/90000"));
        line(out, format_args!("a=fmtp:{r} apt={vp8}"));
    }
    if direction.sends() && !l.simulcast.is_empty() {
        for rid in &l.simulcast {
            line(out, format_args!("a=rid:{rid} send"));
        }
        line(
            out,
            format_args!("a=simulcast:send {}", l.simulcast.join(";")),
        );
        return;
    }
    if let (true, Some(s)) = (direction.sends(), l.ssrcs) {
        if rtx.is_some() {
            line(
                out,
                format_args!("a=ssrc-group:FID {} {}", s.video.0, s.video_rtx.0),
            );
        }
        line(out, format_args!("a=ssrc:{} cname:{}", s.video.0, l.cname));
        line(
            out,
            format_args!("a=ssrc:{} msid:loadgen loadgen-video", s.video.0),
        );
        if rtx.is_some() {
            line(
                out,
                format_args!("a=ssrc:{} cname:{}", s.video_rtx.0, l.cname),
            );
            line(
                out,
                format_args!("a=ssrc:{} msid:loadgen loadgen-video", s.video_rtx.0),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn audio_section(
    out: &mut String,
    l: &LocalDescription,
    mid: &str,
    setup: &str,
    first: bool,
    opus: u8,
    direction: Direction,
    ext: ExtIds,
) {
    line(
        out,
        format_args!("m=audio {} UDP/TLS/RTP/SAVPF {opus}", m_port(l)),
    );
    transport(out, l, setup, first);
    line(out, format_args!("a=mid:{mid}"));
    ext.write(out, true);
    line(out, format_args!("a={}", direction.as_str()));
    if direction.sends() {
        line(out, format_args!("a=msid:loadgen loadgen-audio"));
    }
    line(out, format_args!("a=rtcp-mux"));
    line(out, format_args!("a=rtcp-rsize"));
    line(out, format_args!("a=rtpmap:{opus} opus/48000/2"));
    line(out, format_args!("a=rtcp-fb:{opus} transport-cc"));
    line(
        out,
        format_args!("a=fmtp:{opus} minptime=10;useinbandfec=1"),
    );
    if let (true, Some(s)) = (direction.sends(), l.ssrcs) {
        line(out, format_args!("a=ssrc:{} cname:{}", s.audio.0, l.cname));
        line(
            out,
            format_args!("a=ssrc:{} msid:loadgen loadgen-audio", s.audio.0),
        );
    }
}

/// Writes an offer: video on mid `0` (VP8 96 + RTX 97) and, when `l.audio`, Opus 111 on mid
/// `1`; `setup:actpass`, BUNDLE, rtcp-mux, nack/pli/transport-cc feedback.
pub fn write_offer(l: &LocalDescription) -> String {
    let mut out = String::with_capacity(2048);
    let mut mids = Vec::new();
    if l.video {
        mids.push("0");
    }
    if l.audio {
        mids.push("1");
    }
    session_header(&mut out, l, &mids);
    let mut first = true;
    if l.video {
        video_section(
            &mut out,
            l,
            "0",
            "actpass",
            first,
            (PT_VP8, Some(PT_VP8_RTX)),
            l.direction,
            if l.direction.sends() && !l.simulcast.is_empty() {
                ExtIds::offered_simulcast()
            } else {
                ExtIds::offered()
            },
        );
        first = false;
    }
    if l.audio {
        audio_section(
            &mut out,
            l,
            "1",
            "actpass",
            first,
            PT_OPUS,
            l.direction,
            ExtIds::offered(),
        );
    }
    out
}

fn find_pt(m: &RemoteMedia, name: &str) -> Option<u8> {
    m.codecs
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .map(|c| c.pt)
}

/// Writes the answer to a server's offer: every video section with VP8 and every audio section
/// with Opus is accepted in the offer's numbering (other sections get port 0), the direction is
/// the reverse of the offer's, `setup:active`.
pub fn write_answer(l: &LocalDescription, offer: &RemoteDescription) -> Result<String, SdpError> {
    let mut out = String::with_capacity(2048);
    let accept = |m: &RemoteMedia| match m.kind {
        Some(MediaKind::Video) => l.video && find_pt(m, "VP8").is_some() && !m.rejected,
        Some(MediaKind::Audio) => l.audio && find_pt(m, "opus").is_some() && !m.rejected,
        None => false,
    };
    let mids: Vec<&str> = offer
        .media
        .iter()
        .filter(|m| accept(m))
        .map(|m| m.mid.as_str())
        .collect();
    if mids.is_empty() {
        return Err(SdpError::Unusable("VP8 or Opus section"));
    }
    session_header(&mut out, l, &mids);
    let mut first = true;
    for m in &offer.media {
        if !accept(m) {
            let kind = match m.kind {
                Some(MediaKind::Audio) => "audio",
                Some(MediaKind::Video) => "video",
                None => m.kind_token.as_str(),
            };
            line(
                &mut out,
                format_args!("m={kind} 0 {} {}", m.proto, m.first_format),
            );
            line(&mut out, format_args!("c=IN IP4 0.0.0.0"));
            line(&mut out, format_args!("a=mid:{}", m.mid));
            continue;
        }
        let direction = m.direction.reversed();
        match m.kind {
            Some(MediaKind::Video) => {
                let vp8 = find_pt(m, "VP8").unwrap_or(PT_VP8);
                let rtx = m.codecs.iter().find(|c| c.pt == vp8).and_then(|c| c.rtx_pt);
                video_section(
                    &mut out,
                    l,
                    &m.mid,
                    "active",
                    first,
                    (vp8, rtx),
                    direction,
                    ExtIds::of(m),
                );
            }
            _ => {
                let opus = find_pt(m, "opus").unwrap_or(PT_OPUS);
                audio_section(
                    &mut out,
                    l,
                    &m.mid,
                    "active",
                    first,
                    opus,
                    direction,
                    ExtIds::of(m),
                );
            }
        }
        first = false;
    }
    Ok(out)
}
