//! Reading the server's description (an answer to our offer, or a server's offer): ICE lite or
//! not, credentials, fingerprint, `setup`, host candidates (RFC 8839 §5.1), and per `m=` section
//! the codecs with their RTX pairing (RFC 4588 `apt`), header extensions, SSRCs and the FID group.

use std::net::{IpAddr, SocketAddr};

use sfu::MediaKind;
use sfu::control::IceParams;
use sfu::dtls::Fingerprint;

use super::{Direction, SdpError};

/// The DTLS role a description announces (RFC 4145 `a=setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
}

/// One `a=candidate` (UDP only; TCP candidates are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCandidate {
    pub foundation: String,
    pub component: u16,
    pub priority: u32,
    pub addr: SocketAddr,
    /// `host`, `srflx`, `prflx` or `relay`.
    pub typ: String,
}

/// One payload format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCodec {
    pub pt: u8,
    /// Encoding name as written (`VP8`, `opus`, `rtx`).
    pub name: String,
    pub clock_rate: u32,
    /// The RTX payload type whose `apt=` names this format.
    pub rtx_pt: Option<u8>,
    /// `a=fmtp` parameters, verbatim.
    pub fmtp: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// `None` for sections other than audio and video (data channels).
    pub kind: Option<MediaKind>,
    /// The media token as written (`audio`, `video`, `application`).
    pub kind_token: String,
    pub proto: String,
    /// First format on the `m=` line (for rejecting it in an answer).
    pub first_format: String,
    /// Port 0: the section was rejected.
    pub rejected: bool,
    pub mid: String,
    pub direction: Direction,
    /// Payload formats in `m=` line order; RTX formats are folded into `rtx_pt`.
    pub codecs: Vec<RemoteCodec>,
    /// `a=extmap` (id, URI).
    pub extmaps: Vec<(u8, String)>,
    /// Every SSRC named by `a=ssrc`, first appearance order.
    pub ssrcs: Vec<u32>,
    /// The (primary, retransmission) pair of `a=ssrc-group:FID`.
    pub fid: Option<(u32, u32)>,
    /// Candidates listed in this section.
    pub candidates: Vec<RemoteCandidate>,
    /// `a=rid` ids with direction `recv` (an answer accepting our simulcast encodings).
    pub recv_rids: Vec<String>,
}

impl RemoteMedia {
    /// The payload type of the codec called `name`.
    pub fn pt_of(&self, name: &str) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.pt)
    }

    /// The codec with payload type `pt`.
    pub fn codec(&self, pt: u8) -> Option<&RemoteCodec> {
        self.codecs.iter().find(|c| c.pt == pt)
    }

    /// The id of the extension with `uri`.
    pub fn ext_id(&self, uri: &str) -> Option<u8> {
        self.extmaps.iter().find(|(_, u)| u == uri).map(|(i, _)| *i)
    }

    /// The primary SSRC the sender announced: the FID group's first, else the first `a=ssrc`.
    pub fn primary_ssrc(&self) -> Option<u32> {
        self.fid
            .map(|(p, _)| p)
            .or_else(|| self.ssrcs.first().copied())
    }
}

/// A parsed remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDescription {
    pub ice_lite: bool,
    pub ice: IceParams,
    pub fingerprint: Fingerprint,
    pub setup: Option<Setup>,
    /// `a=group:BUNDLE` mids.
    pub bundle: Vec<String>,
    /// UDP candidates of every section, duplicates removed, in order of appearance.
    pub candidates: Vec<RemoteCandidate>,
    pub media: Vec<RemoteMedia>,
}

impl RemoteDescription {
    /// The first accepted section of `kind`.
    pub fn section(&self, kind: MediaKind) -> Option<&RemoteMedia> {
        self.media
            .iter()
            .find(|m| m.kind == Some(kind) && !m.rejected)
    }

    /// The candidate to send to: one whose address equals `prefer` if any (the address the
    /// signaling server was reached at), else the highest-priority IPv4 one, else any.
    pub fn pick_candidate(&self, prefer: Option<IpAddr>) -> Option<SocketAddr> {
        if let Some(ip) = prefer
            && let Some(c) = self.candidates.iter().find(|c| c.addr.ip() == ip)
        {
            return Some(c.addr);
        }
        let best = |v4: bool| {
            self.candidates
                .iter()
                .filter(|c| c.addr.is_ipv4() == v4)
                .max_by_key(|c| c.priority)
                .map(|c| c.addr)
        };
        best(true).or_else(|| best(false))
    }

    /// Parses a description. Credentials and fingerprint may sit at session or media level.
    pub fn parse(sdp: &str) -> Result<RemoteDescription, SdpError> {
        let mut ice_lite = false;
        let (mut ufrag, mut pwd, mut fingerprint, mut setup) = (None, None, None, None);
        let mut bundle = Vec::new();
        let mut media: Vec<RemoteMedia> = Vec::new();
        let mut saw_version = false;
        for raw in sdp.lines() {
            let l = raw.trim_end_matches('\r');
            if l.is_empty() {
                continue;
            }
            let malformed = |reason| SdpError::Malformed {
                line: l.chars().take(120).collect(),
                reason,
            };
            let (kind, value) = l.split_once('=').ok_or_else(|| malformed("no '='"))?;
            match kind {
                "v" => saw_version = true,
                "m" => media.push(parse_m_line(value).ok_or_else(|| malformed("bad m= line"))?),
                "a" => {
                    let (name, arg) = match value.split_once(':') {
                        Some((n, a)) => (n, Some(a)),
                        None => (value, None),
                    };
                    match (name, arg) {
                        ("ice-lite", _) => ice_lite = true,
                        ("ice-ufrag", Some(a)) => ufrag = ufrag.or(Some(a.trim().to_string())),
                        ("ice-pwd", Some(a)) => pwd = pwd.or(Some(a.trim().to_string())),
                        ("fingerprint", Some(a)) if fingerprint.is_none() => {
                            fingerprint = Some(
                                Fingerprint::parse(a).map_err(|_| malformed("bad fingerprint"))?,
                            );
                        }
                        ("setup", Some(a)) => {
                            setup = setup.or(match a.trim() {
                                "active" => Some(Setup::Active),
                                "passive" => Some(Setup::Passive),
                                "actpass" => Some(Setup::ActPass),
                                _ => None,
                            })
                        }
                        ("group", Some(a)) => {
                            let mut it = a.split_whitespace();
                            if it.next() == Some("BUNDLE") {
                                bundle = it.map(str::to_string).collect();
                            }
                        }
                        _ => {
                            if let Some(m) = media.last_mut() {
                                media_attribute(m, name, arg).map_err(malformed)?;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(SdpError::Missing("v= line"));
        }
        let ice = IceParams {
            ufrag: ufrag.ok_or(SdpError::Missing("a=ice-ufrag"))?,
            pwd: pwd.ok_or(SdpError::Missing("a=ice-pwd"))?,
        };
        let fingerprint = fingerprint.ok_or(SdpError::Missing("a=fingerprint"))?;
        for m in &mut media {
            fold_rtx(m);
        }
        let mut candidates: Vec<RemoteCandidate> = Vec::new();
        for m in &media {
            for c in &m.candidates {
                if !candidates.iter().any(|k| k.addr == c.addr) {
                    candidates.push(c.clone());
                }
            }
        }
        Ok(RemoteDescription {
            ice_lite,
            ice,
            fingerprint,
            setup,
            bundle,
            candidates,
            media,
        })
    }
}

fn parse_m_line(value: &str) -> Option<RemoteMedia> {
    let mut it = value.split_whitespace();
    let kind_token = it.next()?.to_string();
    let port: u16 = it.next()?.split('/').next()?.parse().ok()?;
    let proto = it.next()?.to_string();
    let formats: Vec<&str> = it.collect();
    let kind = match kind_token.as_str() {
        "audio" => Some(MediaKind::Audio),
        "video" => Some(MediaKind::Video),
        _ => None,
    };
    let codecs = if kind.is_some() {
        formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .map(|pt| RemoteCodec {
                pt,
                name: String::new(),
                clock_rate: 0,
                rtx_pt: None,
                fmtp: String::new(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(RemoteMedia {
        kind,
        kind_token,
        proto,
        first_format: formats.first().map_or("0", |f| f).to_string(),
        rejected: port == 0,
        mid: String::new(),
        direction: Direction::SendRecv,
        codecs,
        extmaps: Vec::new(),
        ssrcs: Vec::new(),
        fid: None,
        candidates: Vec::new(),
        recv_rids: Vec::new(),
    })
}

fn media_attribute(m: &mut RemoteMedia, name: &str, arg: Option<&str>) -> Result<(), &'static str> {
    if let Some(d) = Direction::from_attribute(name) {
        m.direction = d;
        return Ok(());
    }
    let Some(arg) = arg else { return Ok(()) };
    match name {
        "mid" => m.mid = arg.trim().to_string(),
        "rtpmap" => {
            let (pt, enc) = arg.split_once(' ').ok_or("rtpmap without encoding")?;
            let pt: u8 = pt.parse().map_err(|_| "bad rtpmap payload type")?;
            let mut parts = enc.trim().split('/');
            let name = parts.next().unwrap_or("").to_string();
            let clock = parts
                .next()
                .and_then(|c| c.parse().ok())
                .ok_or("bad rtpmap clock rate")?;
            if let Some(c) = m.codecs.iter_mut().find(|c| c.pt == pt) {
                c.name = name;
                c.clock_rate = clock;
            }
        }
        "fmtp" => {
            let (pt, params) = arg.split_once(' ').ok_or("fmtp without parameters")?;
            let pt: u8 = pt.parse().map_err(|_| "bad fmtp payload type")?;
            if let Some(c) = m.codecs.iter_mut().find(|c| c.pt == pt) {
                c.fmtp = params.trim().to_string();
            }
        }
        "extmap" => {
            let mut it = arg.split_whitespace();
            let id = it.next().ok_or("empty extmap")?;
            let id: u8 = id
                .split('/')
                .next()
                .and_then(|i| i.parse().ok())
                .ok_or("bad extmap id")?;
            let uri = it.next().ok_or("extmap without URI")?;
            m.extmaps.push((id, uri.to_string()));
        }
        "ssrc" => {
            let ssrc: u32 = arg
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("bad ssrc")?;
            if !m.ssrcs.contains(&ssrc) {
                m.ssrcs.push(ssrc);
            }
        }
        "ssrc-group" => {
            let mut it = arg.split_whitespace();
            if it.next() == Some("FID") {
                let p = it.next().and_then(|s| s.parse().ok());
                let r = it.next().and_then(|s| s.parse().ok());
                if let (Some(p), Some(r)) = (p, r) {
                    m.fid = Some((p, r));
                }
            }
        }
        "rid" => {
            let mut it = arg.split_whitespace();
            if let (Some(id), Some("recv")) = (it.next(), it.next())
                && !m.recv_rids.iter().any(|r| r == id)
            {
                m.recv_rids.push(id.to_string());
            }
        }
        "candidate" => {
            if let Some(c) = parse_candidate(arg) {
                m.candidates.push(c);
            }
        }
        _ => {}
    }
    Ok(())
}

/// `foundation component transport priority address port typ type ...`; UDP only.
fn parse_candidate(arg: &str) -> Option<RemoteCandidate> {
    let f: Vec<&str> = arg.split_whitespace().collect();
    if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") || f[6] != "typ" {
        return None;
    }
    let ip: IpAddr = f[4].parse().ok()?;
    Some(RemoteCandidate {
        foundation: f[0].to_string(),
        component: f[1].parse().ok()?,
        priority: f[3].parse().ok()?,
        addr: SocketAddr::new(ip, f[5].parse().ok()?),
        typ: f[7].to_string(),
    })
}

/// Folds RTX formats into the codec their `apt` names and drops them from the list.
fn fold_rtx(m: &mut RemoteMedia) {
    let pairs: Vec<(u8, u8)> = m
        .codecs
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case("rtx"))
        .filter_map(|c| {
            let apt = c
                .fmtp
                .split(';')
                .find_map(|p| p.trim().strip_prefix("apt="))?
                .parse()
                .ok()?;
            Some((c.pt, apt))
        })
        .collect();
    for (rtx, apt) in pairs {
        if let Some(c) = m.codecs.iter_mut().find(|c| c.pt == apt) {
            c.rtx_pt = Some(rtx);
        }
    }
    m.codecs.retain(|c| !c.name.eq_ignore_ascii_case("rtx"));
}
