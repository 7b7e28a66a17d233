//! ICE candidates in SDP (RFC 8839 §5.1): the host candidates Ringcast writes into answers and
//! the candidates clients trickle in (RFC 8840).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::error::SdpError;

/// A local UDP host candidate, written into answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub ip: IpAddr,
    pub port: u16,
    pub priority: u32,
    /// 1 to 32 characters of `[A-Za-z0-9+/]`.
    pub foundation: String,
}

impl Candidate {
    /// A host candidate with the RFC 8445 §5.1.2.1 recommended priority (type preference 126,
    /// local preference `local_preference`, component 1) and a foundation derived from its IP
    /// address (RFC 8445 §5.1.1.3: host candidates share a foundation only when they share a base
    /// address).
    pub fn host(addr: SocketAddr, local_preference: u16) -> Self {
        let priority = (126u32 << 24) | (u32::from(local_preference) << 8) | (256 - 1);
        // FNV-1a over the address bytes: stable across restarts, distinct per address in practice.
        let bytes = match addr.ip() {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let hash = bytes.iter().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        });
        Candidate {
            ip: addr.ip(),
            port: addr.port(),
            priority,
            foundation: hash.to_string(),
        }
    }
}

impl fmt::Display for Candidate {
    /// The value of `a=candidate:` (without the attribute name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} 1 udp {} {} {} typ host",
            self.foundation, self.priority, self.ip, self.port
        )
    }
}

/// Transport protocol of a remote candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateProtocol {
    Udp,
    Tcp,
}

/// Candidate type (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateType {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relayed,
}

/// A candidate received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCandidate {
    pub foundation: String,
    pub component: u16,
    pub protocol: CandidateProtocol,
    pub priority: u32,
    /// An IP address or, for mDNS-obfuscated host candidates, a `.local` name.
    pub address: String,
    pub port: u16,
    pub kind: CandidateType,
    pub related_address: Option<String>,
    pub related_port: Option<u16>,
}

impl RemoteCandidate {
    /// The socket address, when the candidate carries an IP address rather than a name.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.address
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// Parses the value of `a=candidate:` (also accepted with a `candidate:` prefix). Returns
/// `Ok(None)` for a well-formed candidate of a transport or type Ringcast does not know, which
/// RFC 8839 §5.1 says to ignore.
pub fn parse_candidate(value: &str) -> Result<Option<RemoteCandidate>, SdpError> {
    let bad = || SdpError::invalid("candidate", value);
    let text = value.trim();
    let text = text.strip_prefix("candidate:").unwrap_or(text);
    let mut tokens = text.split_whitespace();
    let mut next = || tokens.next().ok_or_else(bad);
    let foundation = next()?;
    let component = next()?;
    let protocol = next()?;
    let priority = next()?;
    let address = next()?;
    let port = next()?;
    let typ = next()?;
    let kind = next()?;
    let ice_chars = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    if !(1..=32).contains(&foundation.len())
        || !ice_chars(foundation)
        || typ != "typ"
        || address.len() > 255
    {
        return Err(bad());
    }
    let component: u16 = component
        .parse()
        .ok()
        .filter(|c| (1..=256).contains(c))
        .ok_or_else(bad)?;
    let priority: u32 = priority.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let mut related_address = None;
    let mut related_port = None;
    while let Ok(name) = next() {
        let value = next()?;
        match name {
            "raddr" => related_address = Some(value.to_owned()),
            "rport" => related_port = Some(value.parse().map_err(|_| bad())?),
            _ => {}
        }
    }
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "udp" => CandidateProtocol::Udp,
        "tcp" => CandidateProtocol::Tcp,
        _ => return Ok(None),
    };
    let kind = match kind {
        "host" => CandidateType::Host,
        "srflx" => CandidateType::ServerReflexive,
        "prflx" => CandidateType::PeerReflexive,
        "relay" => CandidateType::Relayed,
        _ => return Ok(None),
    };
    Ok(Some(RemoteCandidate {
        foundation: foundation.to_owned(),
        component,
        protocol,
        priority,
        address: address.to_owned(),
        port,
        kind,
        related_address,
        related_port,
    }))
}

/// Whether `text` may be written into an answer as a candidate foundation.
pub(crate) fn is_valid_foundation(text: &str) -> bool {
    (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_candidate_has_rfc_8445_priority_and_writes_as_sdp() {
        let c = Candidate::host("192.0.2.10:40000".parse().expect("literal"), 65535);
        assert_eq!(c.priority, 2_130_706_431);
        assert!(is_valid_foundation(&c.foundation));
        assert_eq!(
            c.to_string(),
            format!(
                "{} 1 udp 2130706431 192.0.2.10 40000 typ host",
                c.foundation
            )
        );
        let v6 = Candidate::host("[2001:db8::1]:40000".parse().expect("literal"), 65535);
        assert_eq!(
            v6.to_string(),
            format!(
                "{} 1 udp 2130706431 2001:db8::1 40000 typ host",
                v6.foundation
            )
        );
        let other = Candidate::host("192.0.2.11:40000".parse().expect("literal"), 65535);
        assert_ne!(c.foundation, other.foundation);
        assert_eq!(
            c,
            Candidate::host("192.0.2.10:40000".parse().expect("literal"), 65535)
        );
    }

    #[test]
    fn chrome_trickled_candidate_parses_with_extensions() {
        let c = parse_candidate(
            "candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1",
        )
        .expect("well formed")
        .expect("udp host");
        assert_eq!(c.foundation, "1387637174");
        assert_eq!(c.protocol, CandidateProtocol::Udp);
        assert_eq!(c.kind, CandidateType::Host);
        assert_eq!(
            c.socket_addr(),
            Some("192.0.2.1:61764".parse().expect("literal"))
        );
    }

    #[test]
    fn srflx_candidate_keeps_its_related_address_and_mdns_names_parse() {
        let c = parse_candidate(
            "842163049 1 udp 1677729535 198.51.100.7 52200 typ srflx raddr 0.0.0.0 rport 0",
        )
        .expect("well formed")
        .expect("known type");
        assert_eq!(c.kind, CandidateType::ServerReflexive);
        assert_eq!(c.related_address.as_deref(), Some("0.0.0.0"));
        assert_eq!(c.related_port, Some(0));
        let mdns = parse_candidate(
            "1 1 UDP 2122252543 2cf0b2c0-0842-4fe3-aaa0-4556a2dfbadc.local 33192 typ host",
        )
        .expect("well formed")
        .expect("udp host");
        assert_eq!(mdns.socket_addr(), None);
    }

    #[test]
    fn unknown_transports_and_types_are_ignored_but_garbage_is_an_error() {
        assert_eq!(parse_candidate("1 1 sctp 1 192.0.2.1 9 typ host"), Ok(None));
        assert_eq!(parse_candidate("1 1 udp 1 192.0.2.1 9 typ weird"), Ok(None));
        for bad in [
            "",
            "1 1 udp",
            "1 1 udp x 192.0.2.1 9 typ host",
            "1 0 udp 1 192.0.2.1 9 typ host",
            "1 1 udp 1 192.0.2.1 99999 typ host",
            "1 1 udp 1 192.0.2.1 9 type host",
            "1 1 udp 1 a 9 typ host raddr",
        ] {
            assert!(parse_candidate(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
