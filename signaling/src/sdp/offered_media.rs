//! One `m=` section of an offer, read in a single pass over its attributes: codecs (RFC 8866
//! `a=rtpmap`/`a=fmtp`, RFC 4585 `a=rtcp-fb`, RFC 4588 RTX), header extensions (RFC 8285), SSRCs
//! (RFC 5576), `a=msid` (RFC 8830), RIDs and simulcast (RFC 8851, RFC 8853), `a=content`
//! (RFC 4796).

use std::collections::HashMap;

use sdp::description::media::MediaDescription;
use sfu::control::RtcpFeedback;
use sfu::{Codec, MediaKind, Mid, PayloadType, Rid, Ssrc};

use super::error::SdpError;
use super::fmtp;

/// Media direction of an `m=` line (RFC 3264 §5.1); `sendrecv` when the offer says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Reads a direction attribute name.
    pub fn from_attribute(key: &str) -> Option<Self> {
        match key {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name (`a=sendonly`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the side that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// Direction of an `a=rid` (RFC 8851 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RidDirection {
    Send,
    Recv,
}

/// One payload format of an offered line, in the offerer's numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedCodec {
    pub pt: PayloadType,
    /// Encoding name as written (`opus`, `VP8`, `rtx`, `red`, ...).
    pub name: String,
    pub clock_rate: u32,
    /// Encoding parameters of `a=rtpmap` (audio channels); 1 when absent.
    pub channels: u8,
    /// The `a=fmtp` parameters, verbatim; empty when absent.
    pub fmtp: String,
    /// The `a=rtcp-fb` types offered for this format (including `*` wildcards).
    pub feedback: RtcpFeedback,
    /// The RTX format whose `apt=` points at this one (RFC 4588 §8.6), if any.
    pub rtx_pt: Option<PayloadType>,
}

impl OfferedCodec {
    /// The codec this format names, if the media plane knows it.
    pub fn codec(&self) -> Option<Codec> {
        Codec::from_sdp_name(&self.name)
    }

    /// Whether this is an RTX retransmission format.
    pub fn is_rtx(&self) -> bool {
        self.name.eq_ignore_ascii_case("rtx")
    }
}

/// One `m=` line of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    pub mid: Mid,
    /// `None` for `application` (data channels) and other non-RTP media.
    pub kind: Option<MediaKind>,
    /// The media token of the `m=` line (`audio`, `video`, `application`, ...).
    pub media_type: String,
    /// The protocol of the `m=` line (`UDP/TLS/RTP/SAVPF`, ...).
    pub proto: String,
    pub direction: Direction,
    /// The `m=` port is 0: the line is disabled unless it is `a=bundle-only` (RFC 8843 §6).
    pub port_zero: bool,
    pub bundle_only: bool,
    /// In the offer's first BUNDLE group (or the only line of an offer without one).
    pub bundled: bool,
    /// Payload formats with an `a=rtpmap`, in `m=` line order.
    pub codecs: Vec<OfferedCodec>,
    /// `a=extmap` ids and URIs, first mapping of an id wins; session-level mappings of
    /// extensions Ringcast knows are included where the line does not use the id itself.
    pub extmaps: Vec<(u8, String)>,
    pub ssrc: Option<Ssrc>,
    /// The RTX SSRC from `a=ssrc-group:FID`.
    pub rtx_ssrc: Option<Ssrc>,
    /// `a=msid` (or the primary SSRC's `msid:`), verbatim: `<stream id> <track id>`.
    pub msid: Option<String>,
    pub rids: Vec<(Rid, RidDirection)>,
    /// `a=simulcast` verbatim (for example `send h;m;l`).
    pub simulcast: Option<String>,
    pub rtcp_mux: bool,
    pub rtcp_rsize: bool,
    /// The `a=content` tokens (RFC 4796: `slides`, `speaker`, `sl`, `main`, `alt`, or an
    /// extension token), lowercased, in order; empty when absent.
    pub content: Vec<String>,
    /// The first format of the `m=` line, echoed when the answer rejects the line.
    pub(crate) first_format: String,
}

impl OfferedMedia {
    /// Whether the offerer wants this line to carry media (port not 0, or bundle-only).
    pub fn enabled(&self) -> bool {
        !self.port_zero || self.bundle_only
    }

    /// Whether `a=content` names the line as slides (RFC 4796 §5: a presentation or a shared
    /// screen).
    pub fn is_slides(&self) -> bool {
        self.content.iter().any(|c| c == "slides")
    }
}

/// Transport attributes of one section, resolved against the session level by the caller.
#[derive(Debug, Default)]
pub(crate) struct SectionTransport {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub fingerprints: Vec<String>,
    pub setup: Option<String>,
    pub trickle: bool,
}

/// Session-level attributes that apply to every section that does not override them.
#[derive(Debug, Default)]
pub(crate) struct SessionDefaults {
    pub direction: Option<Direction>,
    pub extmaps: Vec<(u8, String)>,
}

/// A section as read, before the offer-wide checks.
#[derive(Debug)]
pub(crate) struct Section {
    pub mid: Option<String>,
    pub media: OfferedMedia,
    pub transport: SectionTransport,
}

/// The `a=rtpmap` of one payload type.
#[derive(Debug, Clone)]
struct RtpMap {
    name: String,
    clock_rate: u32,
    channels: u8,
}

/// Reads one `m=` section. Linear in the number of attributes: every lookup is by payload type
/// (an array of 128) or by hash.
pub(crate) fn read_section(
    md: &MediaDescription,
    defaults: &SessionDefaults,
) -> Result<Section, SdpError> {
    let media_type = md.media_name.media.clone();
    let kind = match media_type.as_str() {
        "audio" => Some(MediaKind::Audio),
        "video" => Some(MediaKind::Video),
        _ => None,
    };
    let proto = md.media_name.protos.join("/");
    let first_format = md
        .media_name
        .formats
        .first()
        .cloned()
        .unwrap_or_else(|| "0".into());

    let mut rtpmaps: Vec<Option<RtpMap>> = vec![None; 128];
    let mut fmtps: Vec<Option<String>> = vec![None; 128];
    let mut feedback = [RtcpFeedback::default(); 128];
    let mut wildcard_feedback = RtcpFeedback::default();
    let mut extmaps: Vec<(u8, String)> = Vec::new();
    let mut extmap_seen = [false; 256];
    let mut ssrc_first: Option<u32> = None;
    let mut fid: Option<(u32, u32)> = None;
    let mut ssrc_msid: HashMap<u32, String> = HashMap::new();
    let mut rids = Vec::new();
    let mut rid_seen = std::collections::HashSet::new();

    let mut section = Section {
        mid: None,
        media: OfferedMedia {
            mid: Mid::default(),
            kind,
            media_type,
            proto,
            direction: defaults.direction.unwrap_or_default(),
            port_zero: md.media_name.port.value == 0,
            bundle_only: false,
            bundled: false,
            codecs: Vec::new(),
            extmaps: Vec::new(),
            ssrc: None,
            rtx_ssrc: None,
            msid: None,
            rids: Vec::new(),
            simulcast: None,
            rtcp_mux: false,
            rtcp_rsize: false,
            content: Vec::new(),
            first_format,
        },
        transport: SectionTransport::default(),
    };
    let media = &mut section.media;
    let transport = &mut section.transport;

    for attr in &md.attributes {
        let value = attr.value.as_deref().unwrap_or("").trim();
        match attr.key.as_str() {
            "mid" => {
                if section.mid.is_none() {
                    section.mid = Some(value.to_owned());
                }
            }
            "ice-ufrag" => {
                transport.ufrag.get_or_insert_with(|| value.to_owned());
            }
            "ice-pwd" => {
                transport.pwd.get_or_insert_with(|| value.to_owned());
            }
            "ice-options" => {
                transport.trickle |= value.split([' ', '\t', ',']).any(|o| o == "trickle")
            }
            "fingerprint" => transport.fingerprints.push(value.to_owned()),
            "setup" => {
                transport.setup.get_or_insert_with(|| value.to_owned());
            }
            "rtcp-mux" => media.rtcp_mux = true,
            "rtcp-rsize" => media.rtcp_rsize = true,
            "bundle-only" => media.bundle_only = true,
            "extmap" => {
                let (id, uri) = parse_extmap(value)?;
                if !extmap_seen[usize::from(id)] {
                    extmap_seen[usize::from(id)] = true;
                    extmaps.push((id, uri.to_owned()));
                }
            }
            "rtpmap" => {
                let (pt, map) = parse_rtpmap(value)?;
                let slot = &mut rtpmaps[usize::from(pt)];
                if slot.is_none() {
                    *slot = Some(map);
                }
            }
            "fmtp" => {
                let (pt, params) =
                    split_pt(value).ok_or_else(|| SdpError::invalid("fmtp", value))?;
                let pt = parse_pt(pt).ok_or_else(|| SdpError::invalid("fmtp", value))?;
                let slot = &mut fmtps[usize::from(pt)];
                if slot.is_none() {
                    *slot = Some(params.to_owned());
                }
            }
            "rtcp-fb" => {
                let mut tokens = value.split_whitespace();
                let target = tokens
                    .next()
                    .ok_or_else(|| SdpError::invalid("rtcp-fb", value))?;
                let kind = tokens
                    .next()
                    .ok_or_else(|| SdpError::invalid("rtcp-fb", value))?;
                let param = tokens.next();
                let fb = if target == "*" {
                    &mut wildcard_feedback
                } else {
                    let pt = parse_pt(target).ok_or_else(|| SdpError::invalid("rtcp-fb", value))?;
                    &mut feedback[usize::from(pt)]
                };
                add_feedback(fb, kind, param);
            }
            "ssrc" => {
                let (ssrc, rest) = value.split_once(' ').unwrap_or((value, ""));
                let ssrc: u32 = ssrc.parse().map_err(|_| SdpError::invalid("ssrc", value))?;
                ssrc_first.get_or_insert(ssrc);
                if let Some(msid) = rest.trim().strip_prefix("msid:") {
                    ssrc_msid
                        .entry(ssrc)
                        .or_insert_with(|| msid.trim().to_owned());
                }
            }
            "ssrc-group" => {
                let mut tokens = value.split_whitespace();
                let semantics = tokens.next().unwrap_or("");
                let ssrcs = tokens
                    .map(|t| t.parse::<u32>())
                    .collect::<Result<Vec<u32>, _>>()
                    .map_err(|_| SdpError::invalid("ssrc-group", value))?;
                if semantics == "FID" && fid.is_none() {
                    match ssrcs.as_slice() {
                        [primary, rtx, ..] => fid = Some((*primary, *rtx)),
                        _ => return Err(SdpError::invalid("ssrc-group", value)),
                    }
                }
            }
            "msid" => {
                if media.msid.is_none() && !value.is_empty() {
                    media.msid = Some(value.to_owned());
                }
            }
            "rid" => {
                let (rid, direction) = parse_rid(value)?;
                if rid_seen.insert(rid.clone()) {
                    rids.push((Rid(rid), direction));
                }
            }
            "simulcast" => {
                media.simulcast.get_or_insert_with(|| value.to_owned());
            }
            "content" => {
                // RFC 4796 §5: `a=content:` 1*(token) separated by commas.
                for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let token = token.to_ascii_lowercase();
                    if !media.content.contains(&token) {
                        media.content.push(token);
                    }
                }
            }
            key => {
                if let Some(direction) = Direction::from_attribute(key) {
                    media.direction = direction;
                }
            }
        }
    }

    // Session-level extmaps apply where the section does not use the id itself.
    for (id, uri) in &defaults.extmaps {
        if !extmap_seen[usize::from(*id)] {
            extmap_seen[usize::from(*id)] = true;
            extmaps.push((*id, uri.clone()));
        }
    }
    media.extmaps = extmaps;
    media.rids = rids;

    let (primary, rtx) = match fid {
        Some((primary, rtx)) => (Some(primary), Some(rtx)),
        None => (ssrc_first, None),
    };
    media.ssrc = primary.map(Ssrc);
    media.rtx_ssrc = rtx.map(Ssrc);
    if media.msid.is_none() {
        media.msid = primary.and_then(|s| ssrc_msid.remove(&s));
    }

    if kind.is_some() {
        media.codecs = collect_codecs(
            &md.media_name.formats,
            rtpmaps,
            fmtps,
            &feedback,
            wildcard_feedback,
        )?;
    }
    Ok(section)
}

/// Builds the codec list in `m=` line order and links RTX formats to the formats they repair.
fn collect_codecs(
    formats: &[String],
    mut rtpmaps: Vec<Option<RtpMap>>,
    mut fmtps: Vec<Option<String>>,
    feedback: &[RtcpFeedback; 128],
    wildcard: RtcpFeedback,
) -> Result<Vec<OfferedCodec>, SdpError> {
    let mut codecs = Vec::new();
    let mut index_of_pt: [Option<usize>; 128] = [None; 128];
    for format in formats {
        let pt = parse_pt(format).ok_or_else(|| SdpError::invalid("m", format))?;
        let slot = usize::from(pt);
        if index_of_pt[slot].is_some() {
            continue;
        }
        let Some(map) = rtpmaps[slot].take() else {
            // A static payload type without a=rtpmap: none that Ringcast forwards.
            continue;
        };
        let fb = feedback[slot];
        index_of_pt[slot] = Some(codecs.len());
        codecs.push(OfferedCodec {
            pt: PayloadType(pt),
            name: map.name,
            clock_rate: map.clock_rate,
            channels: map.channels,
            fmtp: fmtps[slot].take().unwrap_or_default(),
            feedback: RtcpFeedback {
                nack: fb.nack || wildcard.nack,
                nack_pli: fb.nack_pli || wildcard.nack_pli,
                ccm_fir: fb.ccm_fir || wildcard.ccm_fir,
                transport_cc: fb.transport_cc || wildcard.transport_cc,
                goog_remb: fb.goog_remb || wildcard.goog_remb,
            },
            rtx_pt: None,
        });
    }
    for i in 0..codecs.len() {
        if !codecs[i].is_rtx() {
            continue;
        }
        let Some(apt) = fmtp::get(&codecs[i].fmtp, "apt").and_then(parse_pt) else {
            continue;
        };
        let Some(primary) = index_of_pt[usize::from(apt)] else {
            continue;
        };
        let (rtx_pt, rtx_clock) = (codecs[i].pt, codecs[i].clock_rate);
        let primary = &mut codecs[primary];
        if !primary.is_rtx() && primary.rtx_pt.is_none() && primary.clock_rate == rtx_clock {
            primary.rtx_pt = Some(rtx_pt);
        }
    }
    Ok(codecs)
}

fn add_feedback(fb: &mut RtcpFeedback, kind: &str, param: Option<&str>) {
    match (kind, param) {
        ("nack", None) => fb.nack = true,
        ("nack", Some("pli")) => fb.nack_pli = true,
        ("ccm", Some("fir")) => fb.ccm_fir = true,
        ("transport-cc", None) => fb.transport_cc = true,
        ("goog-remb", None) => fb.goog_remb = true,
        _ => {}
    }
}

/// A payload type: a decimal number from 0 to 127.
pub(crate) fn parse_pt(text: &str) -> Option<u8> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u8>().ok().filter(|pt| *pt <= 127)
}

fn split_pt(value: &str) -> Option<(&str, &str)> {
    match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((pt, rest)) => Some((pt, rest.trim())),
        None if !value.is_empty() => Some((value, "")),
        None => None,
    }
}

/// `<pt> <name>/<clock rate>[/<channels>]`.
fn parse_rtpmap(value: &str) -> Result<(u8, RtpMap), SdpError> {
    let bad = || SdpError::invalid("rtpmap", value);
    let (pt, encoding) = split_pt(value).ok_or_else(bad)?;
    let pt = parse_pt(pt).ok_or_else(bad)?;
    let mut parts = encoding.split('/');
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    let clock_rate = parts
        .next()
        .and_then(|c| c.trim().parse::<u32>().ok())
        .ok_or_else(bad)?;
    let channels = match parts.next() {
        Some(c) => c
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(bad)?,
        None => 1,
    };
    if parts.next().is_some() || clock_rate == 0 {
        return Err(bad());
    }
    Ok((
        pt,
        RtpMap {
            name: name.to_owned(),
            clock_rate,
            channels,
        },
    ))
}

/// `<id>[/<direction>] <uri> [<attributes>]` with an id from 1 to 255 (RFC 8285 §8).
fn parse_extmap(value: &str) -> Result<(u8, &str), SdpError> {
    let bad = || SdpError::invalid("extmap", value);
    let mut tokens = value.split_whitespace();
    let id_dir = tokens.next().ok_or_else(bad)?;
    let uri = tokens.next().ok_or_else(bad)?;
    let (id, dir) = match id_dir.split_once('/') {
        Some((id, dir)) => (id, Some(dir)),
        None => (id_dir, None),
    };
    if dir.is_some_and(|d| Direction::from_attribute(d).is_none()) {
        return Err(bad());
    }
    let id = id
        .parse::<u8>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(bad)?;
    Ok((id, uri))
}

/// `<rid-id> <send|recv> [<restrictions>]` (RFC 8851 §10).
fn parse_rid(value: &str) -> Result<(String, RidDirection), SdpError> {
    let bad = || SdpError::invalid("rid", value);
    let mut tokens = value.split_whitespace();
    let id = tokens.next().ok_or_else(bad)?;
    let valid_id = id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_id {
        return Err(bad());
    }
    let direction = match tokens.next() {
        Some("send") => RidDirection::Send,
        Some("recv") => RidDirection::Recv,
        _ => return Err(bad()),
    };
    Ok((id.to_owned(), direction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtpmap_reads_name_clock_and_channels() {
        let (pt, map) = parse_rtpmap("111 opus/48000/2").expect("valid rtpmap");
        assert_eq!(
            (pt, map.name.as_str(), map.clock_rate, map.channels),
            (111, "opus", 48000, 2)
        );
        let (_, map) = parse_rtpmap("96 VP8/90000").expect("valid rtpmap");
        assert_eq!(map.channels, 1);
        for bad in [
            "",
            "111",
            "128 opus/48000",
            "x opus/48000",
            "96 VP8",
            "96 VP8/x",
            "96 /90000",
            "96 a/1/2/3",
        ] {
            assert!(parse_rtpmap(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn extmap_reads_id_direction_and_uri() {
        assert_eq!(parse_extmap("3 urn:x").expect("valid"), (3, "urn:x"));
        assert_eq!(
            parse_extmap("2/recvonly urn:y attr").expect("valid"),
            (2, "urn:y")
        );
        for bad in [
            "",
            "3",
            "0 urn:x",
            "256 urn:x",
            "2/sideways urn:x",
            "x urn:x",
        ] {
            assert!(parse_extmap(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rid_reads_id_and_direction() {
        assert_eq!(
            parse_rid("h send max-width=1280").expect("valid"),
            ("h".into(), RidDirection::Send)
        );
        assert_eq!(
            parse_rid("lo_1 recv").expect("valid"),
            ("lo_1".into(), RidDirection::Recv)
        );
        for bad in ["", "h", "h both", "h;x send"] {
            assert!(parse_rid(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn payload_types_are_seven_bit_decimals() {
        assert_eq!(parse_pt("0"), Some(0));
        assert_eq!(parse_pt("127"), Some(127));
        for bad in ["", "128", "-1", "+1", "0x1", "0096"] {
            assert_eq!(parse_pt(bad), None, "{bad:?}");
        }
    }
}
