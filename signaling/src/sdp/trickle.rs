//! Trickle ICE fragments (`application/trickle-ice-sdpfrag`, RFC 8840 §9) as WHIP/WHEP clients
//! PATCH them (RFC 9725 §4.3): ICE credentials, candidates per `m=` section, end-of-candidates.
//! A fragment is not a full SDP document (no `v=`/`o=`/`s=`/`t=`), so it is read line by line.

use sfu::Mid;
use sfu::control::IceParams;

use super::candidate::{RemoteCandidate, parse_candidate};
use super::error::{SdpError, clip};
use super::offer::is_valid_mid;

/// A parsed trickle ICE fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFrag {
    /// `a=ice-ufrag`/`a=ice-pwd`, at session or media level; new values mean an ICE restart.
    pub ice: Option<IceParams>,
    pub ice_options_trickle: bool,
    /// Session-level `a=end-of-candidates`.
    pub end_of_candidates: bool,
    /// Candidates outside any `m=` section (some clients send them so).
    pub session_candidates: Vec<RemoteCandidate>,
    /// One entry per `m=` section, in order.
    pub media: Vec<FragMedia>,
}

impl SdpFrag {
    /// Whether the fragment says that no more candidates will come (session level, or every
    /// section when it has sections).
    pub fn gathering_complete(&self) -> bool {
        self.end_of_candidates
            || (!self.media.is_empty() && self.media.iter().all(|m| m.end_of_candidates))
    }
}

/// The candidates of one `m=` section of a fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragMedia {
    pub mid: Option<Mid>,
    pub candidates: Vec<RemoteCandidate>,
    pub end_of_candidates: bool,
}

/// Parses a trickle ICE fragment. Candidates of an unknown transport or type are skipped
/// (RFC 8839 §5.1); malformed lines are errors. Linear in the length of `text`.
pub fn parse_trickle_sdpfrag(text: &str) -> Result<SdpFrag, SdpError> {
    let mut frag = SdpFrag::default();
    let mut ufrag: Option<String> = None;
    let mut pwd: Option<String> = None;
    let mut media_ice: Option<(Option<String>, Option<String>)> = None;
    let mut credentials: Vec<(Option<String>, Option<String>)> = Vec::new();

    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(SdpError::InvalidFragment(format!(
                "line {:?} is not of the form x=...",
                clip(line)
            )));
        }
        let value = &line[2..];
        match bytes[0] {
            b'm' => {
                if let Some(ice) = media_ice.take() {
                    credentials.push(ice);
                }
                media_ice = Some((None, None));
                frag.media.push(FragMedia::default());
            }
            b'a' => {
                let (key, attr_value) = value.split_once(':').unwrap_or((value, ""));
                let attr_value = attr_value.trim();
                match key {
                    "ice-ufrag" | "ice-pwd" => {
                        let slot = match (&mut media_ice, key) {
                            (Some((u, _)), "ice-ufrag") => u,
                            (Some((_, p)), _) => p,
                            (None, "ice-ufrag") => &mut ufrag,
                            (None, _) => &mut pwd,
                        };
                        slot.get_or_insert_with(|| attr_value.to_owned());
                    }
                    "ice-options" => {
                        frag.ice_options_trickle |=
                            attr_value.split([' ', '\t', ',']).any(|o| o == "trickle")
                    }
                    "mid" => {
                        if let Some(m) = frag.media.last_mut() {
                            if !is_valid_mid(attr_value) {
                                return Err(SdpError::InvalidMid(clip(attr_value)));
                            }
                            m.mid.get_or_insert_with(|| Mid(attr_value.to_owned()));
                        }
                    }
                    "candidate" => {
                        if let Some(c) = parse_candidate(attr_value)? {
                            match frag.media.last_mut() {
                                Some(m) => m.candidates.push(c),
                                None => frag.session_candidates.push(c),
                            }
                        }
                    }
                    "end-of-candidates" => match frag.media.last_mut() {
                        Some(m) => m.end_of_candidates = true,
                        None => frag.end_of_candidates = true,
                    },
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if let Some(ice) = media_ice.take() {
        credentials.push(ice);
    }

    // Resolve credentials: media level overrides session level; all that are given must agree.
    // Each pair is validated (so at most 256 bytes) before anything is copied.
    let check = |ufrag: &str, pwd: &str| {
        let valid = |s: &str, min: usize| {
            (min..=256).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        };
        if valid(ufrag, 4) && valid(pwd, 22) {
            Ok(())
        } else {
            Err(SdpError::InvalidIceCredentials(
                "a=ice-ufrag must be 4 to 256 and a=ice-pwd 22 to 256 characters of [A-Za-z0-9+/]"
                    .into(),
            ))
        }
    };
    let together =
        || SdpError::InvalidFragment("a=ice-ufrag and a=ice-pwd must come together".into());
    let mut resolved: Option<IceParams> = None;
    let pairs = std::iter::once((ufrag.as_deref(), pwd.as_deref())).chain(credentials.iter().map(
        |(u, p)| {
            (
                u.as_deref().or(ufrag.as_deref()),
                p.as_deref().or(pwd.as_deref()),
            )
        },
    ));
    for pair in pairs {
        match pair {
            (None, None) => {}
            (Some(u), Some(p)) => {
                check(u, p)?;
                match &resolved {
                    None => {
                        resolved = Some(IceParams {
                            ufrag: u.to_owned(),
                            pwd: p.to_owned(),
                        })
                    }
                    Some(first) if first.ufrag == u && first.pwd == p => {}
                    Some(_) => {
                        return Err(SdpError::InconsistentIceCredentials {
                            first: "session".into(),
                            other: "m-line".into(),
                        });
                    }
                }
            }
            _ => return Err(together()),
        }
    }
    frag.ice = resolved;
    Ok(frag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::error::SdpErrorClass;

    /// The example of RFC 9725 §4.3.1 (a Chrome client trickling four candidates).
    const WHIP_PATCH: &str = "a=group:BUNDLE 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=mid:0\r\n\
        a=ice-ufrag:EsAw\r\n\
        a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
        a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
        a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n\
        a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\n\
        a=candidate:2154773085 1 tcp 1518214911 198.51.100.2 9 typ host tcptype active generation 0 ufrag EsAw network-id 2\r\n\
        a=end-of-candidates\r\n";

    #[test]
    fn rfc_9725_patch_example_yields_credentials_candidates_and_end() {
        let frag = parse_trickle_sdpfrag(WHIP_PATCH).expect("the RFC example parses");
        assert_eq!(
            frag.ice,
            Some(IceParams {
                ufrag: "EsAw".into(),
                pwd: "bP+XJMM09aR8AiX1jdukzR6Y".into()
            })
        );
        assert_eq!(frag.media.len(), 1);
        assert_eq!(frag.media[0].mid, Some(Mid("0".into())));
        assert_eq!(frag.media[0].candidates.len(), 4);
        assert!(frag.media[0].end_of_candidates);
        assert!(frag.gathering_complete());
    }

    #[test]
    fn rfc_8840_session_level_credentials_apply_to_sections() {
        let text = "a=ice-options:trickle ice2\na=group:BUNDLE 1\na=ice-ufrag:EsAw\n\
            a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\nm=audio 9 RTP/AVP 0\na=mid:1\n\
            a=candidate:1 1 UDP 2130706431 198.51.100.1 39132 typ host\n";
        let frag = parse_trickle_sdpfrag(text).expect("RFC 8840 example parses");
        assert!(frag.ice_options_trickle);
        assert_eq!(frag.ice.as_ref().map(|i| i.ufrag.as_str()), Some("EsAw"));
        assert!(!frag.gathering_complete());
        assert_eq!(frag.media[0].candidates[0].port, 39132);
    }

    #[test]
    fn end_of_candidates_alone_is_a_valid_fragment() {
        let frag = parse_trickle_sdpfrag("a=end-of-candidates\r\n").expect("valid");
        assert!(frag.gathering_complete());
        assert_eq!(frag.ice, None);
        assert_eq!(parse_trickle_sdpfrag(""), Ok(SdpFrag::default()));
    }

    #[test]
    fn malformed_fragments_are_400() {
        for bad in [
            "this is not sdp",
            "a=candidate:garbage\r\n",
            "a=ice-ufrag:EsAw\r\n",
            "a=ice-ufrag:Es:w\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:EsAw\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:Other\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n",
        ] {
            let err = parse_trickle_sdpfrag(bad).expect_err(bad);
            assert_eq!(err.class(), SdpErrorClass::Malformed, "{bad:?}: {err}");
        }
    }
}
