//! Writing the answer: ICE-lite (RFC 8445 §2.5), BUNDLE (RFC 8843), DTLS-SRTP with Ringcast as
//! the DTLS server (`a=setup:passive`, RFC 5763), RTP/RTCP multiplexing (RFC 5761), the host
//! candidates and, toward viewers, the SSRCs and `a=msid` of what Ringcast sends (RFC 5576,
//! RFC 8830).

use std::fmt::Write as _;
use std::net::IpAddr;

use sfu::control::{CodecParams, IceParams};
use sfu::dtls::Fingerprint;
use sfu::{MediaKind, Ssrc};

use super::candidate::{Candidate, is_valid_foundation};
use super::negotiate::{Negotiated, NegotiatedMedia, OtherLine};

/// The SSRCs and stream identity Ringcast sends with on one line toward a viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSsrcs {
    pub ssrc: Ssrc,
    /// Announced in `a=ssrc-group:FID` when RTX is negotiated on the line.
    pub rtx_ssrc: Option<Ssrc>,
    /// The `a=msid` stream id (RFC 8830 `msid-id`): token characters, no spaces.
    pub msid_stream: String,
    /// The `a=msid` track id (`msid-appdata`): token characters, no spaces.
    pub msid_track: String,
}

/// Ringcast's side of the session, as the answer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDescription {
    pub ice: IceParams,
    pub fingerprint: Fingerprint,
    /// UDP host candidates; the first one is also the address of the `m=`/`c=` lines.
    pub candidates: Vec<Candidate>,
    /// The `o=` session id (RFC 8866 §5.2; below 2^63 by JSEP convention).
    pub session_id: u64,
    /// The RTCP CNAME of what Ringcast sends (written in `a=ssrc:... cname:`).
    pub cname: String,
    /// Per entry of [`Negotiated::media`] (same index): what Ringcast sends on that line. Only
    /// lines answered `sendonly` (viewers) use it; `None` or a missing entry writes no SSRC.
    pub send_ssrcs: Vec<Option<SendSsrcs>>,
}

/// Writes the answer for a negotiated offer. Lines follow the offer's order; rejected lines get
/// port 0 and stay out of the BUNDLE group.
pub fn write_answer(neg: &Negotiated, local: &LocalDescription) -> String {
    let mut out = String::with_capacity(1024 + 1024 * neg.media.len());
    let (address, port) = match local.candidates.first() {
        Some(c) => (c.ip, c.port),
        None => (IpAddr::from([0, 0, 0, 0]), 9),
    };
    let connection = connection_line(address);

    line(&mut out, format_args!("v=0"));
    line(
        &mut out,
        format_args!("o=- {} 2 IN IP4 127.0.0.1", local.session_id),
    );
    line(&mut out, format_args!("s=-"));
    line(&mut out, format_args!("t=0 0"));
    line(&mut out, format_args!("a=ice-lite"));
    let bundle: Vec<&str> = neg.accepted().map(|m| m.mid.0.as_str()).collect();
    if neg.bundle_offered && !bundle.is_empty() {
        line(
            &mut out,
            format_args!("a=group:BUNDLE {}", bundle.join(" ")),
        );
    }
    if neg.extmap_allow_mixed {
        line(&mut out, format_args!("a=extmap-allow-mixed"));
    }

    // Audio/video lines and other lines are each in offer order; merge them by position.
    let mut media = neg.media.iter().enumerate().peekable();
    let mut others = neg.other_lines.iter().peekable();
    loop {
        let take_media = match (media.peek(), others.peek()) {
            (Some((_, m)), Some(o)) => m.line < o.line,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_media {
            let Some((index, m)) = media.next() else {
                break;
            };
            if m.accepted {
                let send = local.send_ssrcs.get(index).and_then(Option::as_ref);
                write_accepted(&mut out, m, local, &connection, port, send);
            } else {
                write_rejected(
                    &mut out,
                    kind_token(m.kind),
                    &m.proto,
                    &m.first_format,
                    &m.mid.0,
                    true,
                );
            }
        } else if let Some(o) = others.next() {
            let OtherLine {
                mid,
                media_type,
                proto,
                first_format,
                ..
            } = o;
            write_rejected(&mut out, media_type, proto, first_format, &mid.0, false);
        }
    }
    out
}

fn write_accepted(
    out: &mut String,
    m: &NegotiatedMedia,
    local: &LocalDescription,
    connection: &str,
    port: u16,
    send: Option<&SendSsrcs>,
) {
    let mut formats = String::new();
    for c in &m.codecs {
        let _ = write!(formats, " {}", c.pt.0);
        if let Some(rtx) = c.rtx_pt {
            let _ = write!(formats, " {}", rtx.0);
        }
    }
    line(
        out,
        format_args!("m={} {} {}{}", kind_token(m.kind), port, m.proto, formats),
    );
    line(out, format_args!("c={connection}"));
    line(out, format_args!("a=mid:{}", m.mid.0));
    line(out, format_args!("a=ice-ufrag:{}", local.ice.ufrag));
    line(out, format_args!("a=ice-pwd:{}", local.ice.pwd));
    line(out, format_args!("a=fingerprint:{}", local.fingerprint));
    line(out, format_args!("a=setup:passive"));
    line(out, format_args!("a={}", m.direction.as_str()));
    line(out, format_args!("a=rtcp-mux"));
    if m.rtcp_rsize {
        line(out, format_args!("a=rtcp-rsize"));
    }
    for (id, uri) in &m.extmaps {
        line(out, format_args!("a=extmap:{id} {uri}"));
    }
    let send = send.filter(|_| m.direction.sends());
    if let Some(s) = send {
        line(
            out,
            format_args!("a=msid:{} {}", s.msid_stream, s.msid_track),
        );
    }
    for c in &m.codecs {
        write_codec(out, m.kind, c);
    }
    if !m.rids.is_empty() {
        // RFC 8853 §5.3: the answer receives the encodings the offer sends.
        let mut list = String::new();
        for (i, rid) in m.rids.iter().enumerate() {
            line(out, format_args!("a=rid:{} recv", rid.0));
            if i > 0 {
                list.push(';');
            }
            list.push_str(&rid.0);
        }
        line(out, format_args!("a=simulcast:recv {list}"));
    }
    if let Some(s) = send {
        let rtx = s
            .rtx_ssrc
            .filter(|_| m.codecs.iter().any(|c| c.rtx_pt.is_some()));
        if let Some(rtx) = rtx {
            line(out, format_args!("a=ssrc-group:FID {} {}", s.ssrc, rtx));
        }
        line(out, format_args!("a=ssrc:{} cname:{}", s.ssrc, local.cname));
        if let Some(rtx) = rtx {
            line(out, format_args!("a=ssrc:{} cname:{}", rtx, local.cname));
        }
    }
    for c in &local.candidates {
        debug_assert!(
            is_valid_foundation(&c.foundation),
            "candidate foundation {:?}",
            c.foundation
        );
        line(out, format_args!("a=candidate:{c}"));
    }
    line(out, format_args!("a=end-of-candidates"));
}

fn write_codec(out: &mut String, kind: MediaKind, c: &CodecParams) {
    let pt = c.pt.0;
    match kind {
        MediaKind::Audio => line(
            out,
            format_args!(
                "a=rtpmap:{pt} {}/{}/{}",
                c.codec.sdp_name(),
                c.clock_rate,
                c.channels
            ),
        ),
        MediaKind::Video => line(
            out,
            format_args!("a=rtpmap:{pt} {}/{}", c.codec.sdp_name(), c.clock_rate),
        ),
    }
    let fb = c.feedback;
    for (on, value) in [
        (fb.nack, "nack"),
        (fb.nack_pli, "nack pli"),
        (fb.ccm_fir, "ccm fir"),
        (fb.transport_cc, "transport-cc"),
    ] {
        if on {
            line(out, format_args!("a=rtcp-fb:{pt} {value}"));
        }
    }
    if !c.fmtp.is_empty() {
        line(out, format_args!("a=fmtp:{pt} {}", c.fmtp));
    }
    if let Some(rtx) = c.rtx_pt {
        line(out, format_args!("a=rtpmap:{} rtx/{}", rtx.0, c.clock_rate));
        line(out, format_args!("a=fmtp:{} apt={pt}", rtx.0));
    }
}

fn write_rejected(out: &mut String, media: &str, proto: &str, format: &str, mid: &str, rtp: bool) {
    line(out, format_args!("m={media} 0 {proto} {format}"));
    line(out, format_args!("c=IN IP4 0.0.0.0"));
    line(out, format_args!("a=mid:{mid}"));
    if rtp {
        line(out, format_args!("a=inactive"));
    }
}

fn kind_token(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn connection_line(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("IN IP4 {v4}"),
        IpAddr::V6(v6) => format!("IN IP6 {v6}"),
    }
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    // Writing into a String cannot fail.
    let _ = out.write_fmt(args);
    out.push_str("\r\n");
}
