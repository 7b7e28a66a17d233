//! Reading a WHIP/WHEP offer (RFC 9725 §4.2): the SDP text is parsed by the `sdp` crate, then the
//! transport is checked across the BUNDLE group (RFC 8843): one set of ICE credentials (RFC 8839),
//! one DTLS fingerprint (RFC 8122) and one `a=setup` role (RFC 5763).

use std::io::Cursor;

use sdp::description::session::SessionDescription;
use sfu::Mid;
use sfu::control::IceParams;
use sfu::dtls::{Fingerprint, FingerprintError};

use super::error::{SdpError, clip};
use super::extension::HeaderExtension;
use super::offered_media::{Direction, OfferedMedia, Section, SessionDefaults, read_section};

/// The DTLS role the offerer asks for (RFC 4145 §4, RFC 5763 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Either role; the answerer picks (browsers always offer this).
    Actpass,
    /// The offerer will be the DTLS client; also the meaning of an absent `a=setup`.
    Active,
    /// The offerer wants to be the DTLS server, which Ringcast always is.
    Passive,
}

/// A parsed offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The offerer's ICE credentials (session- or media-level; the same on every bundled line).
    pub ice: IceParams,
    /// The certificate fingerprint the offerer's DTLS handshake must match; when several are
    /// offered, the one with the strongest supported hash.
    pub fingerprint: Fingerprint,
    pub setup: Setup,
    /// The mids of the first `a=group:BUNDLE`; empty when the offer has a single line and no group.
    pub bundle: Vec<Mid>,
    /// Every `m=` line, in order.
    pub media: Vec<OfferedMedia>,
    /// `a=ice-options:trickle` at session or media level.
    pub ice_options_trickle: bool,
    /// `a=extmap-allow-mixed` (RFC 8285 §6): the offerer may send two-byte header extensions
    /// (needed for elements over 16 bytes, such as a dependency descriptor with its structure).
    pub extmap_allow_mixed: bool,
}

/// Parses and checks an offer. Never panics; linear in the length of `text`.
pub fn parse_offer(text: &str) -> Result<Offer, SdpError> {
    let desc = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .map_err(|e| SdpError::NotSdp(clip(&e.to_string())))?;

    // Session level.
    let mut session_ufrag = None;
    let mut session_pwd = None;
    let mut session_fingerprints = Vec::new();
    let mut session_setup = None;
    let mut bundle: Option<Vec<String>> = None;
    let mut trickle = false;
    let mut allow_mixed = false;
    let mut defaults = SessionDefaults::default();
    let mut extmap_seen = [false; 256];
    for attr in &desc.attributes {
        let value = attr.value.as_deref().unwrap_or("").trim();
        match attr.key.as_str() {
            "ice-ufrag" => {
                session_ufrag.get_or_insert_with(|| value.to_owned());
            }
            "ice-pwd" => {
                session_pwd.get_or_insert_with(|| value.to_owned());
            }
            "fingerprint" => session_fingerprints.push(value.to_owned()),
            "setup" => {
                session_setup.get_or_insert_with(|| value.to_owned());
            }
            "ice-lite" => return Err(SdpError::OffererIceLite),
            "extmap-allow-mixed" => allow_mixed = true,
            "ice-options" => trickle |= value.split([' ', '\t', ',']).any(|o| o == "trickle"),
            "group" => {
                let mut tokens = value.split_whitespace();
                if tokens.next() == Some("BUNDLE") && bundle.is_none() {
                    let mids: Vec<String> = tokens.map(str::to_owned).collect();
                    if !mids.is_empty() {
                        bundle = Some(mids);
                    }
                }
            }
            "extmap" => {
                let mut tokens = value.split_whitespace();
                let id = tokens
                    .next()
                    .and_then(|t| t.split('/').next())
                    .and_then(|t| t.parse::<u8>().ok())
                    .filter(|id| *id != 0);
                match (id, tokens.next()) {
                    (Some(id), Some(uri)) => {
                        // Only extensions Ringcast knows are inherited by every line, so that a
                        // long session-level list is not copied into each of many lines.
                        if HeaderExtension::from_uri(uri).is_some() && !extmap_seen[usize::from(id)]
                        {
                            extmap_seen[usize::from(id)] = true;
                            defaults.extmaps.push((id, uri.to_owned()));
                        }
                    }
                    _ => return Err(SdpError::invalid("extmap", value)),
                }
            }
            key => {
                if let Some(direction) = Direction::from_attribute(key) {
                    defaults.direction = Some(direction);
                }
            }
        }
    }

    if desc.media_descriptions.is_empty() {
        return Err(SdpError::NoMediaLines);
    }
    let mut sections = desc
        .media_descriptions
        .iter()
        .map(|md| read_section(md, &defaults))
        .collect::<Result<Vec<Section>, SdpError>>()?;

    // Mids: present, well-formed, unique.
    let mut seen_mids = std::collections::HashSet::new();
    for (index, section) in sections.iter_mut().enumerate() {
        let mid = section.mid.take().ok_or(SdpError::MissingMid { index })?;
        if !is_valid_mid(&mid) {
            return Err(SdpError::InvalidMid(clip(&mid)));
        }
        if !seen_mids.insert(mid.clone()) {
            return Err(SdpError::DuplicateMid(mid));
        }
        section.media.mid = Mid(mid);
    }

    // BUNDLE membership.
    let bundle = match bundle {
        Some(mids) => {
            let mut unique = Vec::with_capacity(mids.len());
            let mut listed = std::collections::HashSet::new();
            for mid in mids {
                if !seen_mids.contains(&mid) {
                    return Err(SdpError::BundleUnknownMid(clip(&mid)));
                }
                if listed.insert(mid.clone()) {
                    unique.push(mid);
                }
            }
            unique
        }
        None if sections.len() > 1 => {
            return Err(SdpError::MissingBundle {
                count: sections.len(),
            });
        }
        None => Vec::new(),
    };
    let bundle_set: std::collections::HashSet<&str> = bundle.iter().map(String::as_str).collect();
    for section in &mut sections {
        section.media.bundled =
            bundle.is_empty() || bundle_set.contains(section.media.mid.0.as_str());
    }

    // The transport: every enabled bundled line must agree.
    let mut transport: Option<(String, IceParams, Fingerprint, Setup)> = None;
    let mut session_fingerprint: Option<Result<Fingerprint, SdpError>> = None;
    for section in sections
        .iter()
        .filter(|s| s.media.bundled && s.media.enabled())
    {
        let mid = &section.media.mid.0;
        let t = &section.transport;
        let ufrag = t.ufrag.as_ref().or(session_ufrag.as_ref());
        let pwd = t.pwd.as_ref().or(session_pwd.as_ref());
        let (Some(ufrag), Some(pwd)) = (ufrag, pwd) else {
            return Err(SdpError::MissingIceCredentials { mid: mid.clone() });
        };
        // Validated (and so at most 256 bytes) before anything is copied.
        check_ice_credentials(ufrag, pwd)?;
        let ice = IceParams {
            ufrag: ufrag.clone(),
            pwd: pwd.clone(),
        };
        let fingerprint = if !t.fingerprints.is_empty() {
            strongest_fingerprint(&t.fingerprints)?
        } else if session_fingerprints.is_empty() {
            return Err(SdpError::MissingFingerprint { mid: mid.clone() });
        } else {
            // Parsed once however many lines inherit it.
            session_fingerprint
                .get_or_insert_with(|| strongest_fingerprint(&session_fingerprints))
                .clone()?
        };
        let setup = parse_setup(t.setup.as_deref().or(session_setup.as_deref()))?;
        trickle |= t.trickle;
        match &transport {
            None => transport = Some((mid.clone(), ice, fingerprint, setup)),
            Some((first, first_ice, first_fp, first_setup)) => {
                let other = mid.clone();
                if *first_ice != ice {
                    return Err(SdpError::InconsistentIceCredentials {
                        first: first.clone(),
                        other,
                    });
                }
                if *first_fp != fingerprint {
                    return Err(SdpError::InconsistentFingerprint {
                        first: first.clone(),
                        other,
                    });
                }
                if *first_setup != setup {
                    return Err(SdpError::InconsistentSetup {
                        first: first.clone(),
                        other,
                    });
                }
            }
        }
    }
    let Some((_, ice, fingerprint, setup)) = transport else {
        return Err(SdpError::NoUsableMedia);
    };
    if setup == Setup::Passive {
        return Err(SdpError::PassiveSetup);
    }

    Ok(Offer {
        ice,
        fingerprint,
        setup,
        bundle: bundle.into_iter().map(Mid).collect(),
        media: sections.into_iter().map(|s| s.media).collect(),
        ice_options_trickle: trickle,
        extmap_allow_mixed: allow_mixed,
    })
}

/// A mid is a short token (RFC 8866 §9 `token`); Ringcast caps it at 32 characters.
pub(crate) fn is_valid_mid(mid: &str) -> bool {
    (1..=32).contains(&mid.len()) && mid.bytes().all(is_token_char)
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b)
}

/// RFC 8839 §5.4: `ice-char = ALPHA / DIGIT / "+" / "/"`, ufrag 4 to 256 characters, pwd 22 to
/// 256. The ufrag goes into STUN USERNAME as `ours:theirs`, so nothing else may appear in it.
fn check_ice_credentials(ufrag: &str, pwd: &str) -> Result<(), SdpError> {
    let ice_chars = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    if !(4..=256).contains(&ufrag.len()) || !ice_chars(ufrag) {
        return Err(SdpError::InvalidIceCredentials(format!(
            "a=ice-ufrag {:?} must be 4 to 256 characters of [A-Za-z0-9+/]",
            clip(ufrag)
        )));
    }
    if !(22..=256).contains(&pwd.len()) || !ice_chars(pwd) {
        return Err(SdpError::InvalidIceCredentials(
            "a=ice-pwd must be 22 to 256 characters of [A-Za-z0-9+/]".into(),
        ));
    }
    Ok(())
}

/// Reads every `a=fingerprint` of a line and keeps the one with the strongest hash Ringcast
/// verifies (SHA-512 over SHA-384 over SHA-256). Hashes it does not verify are skipped; if nothing
/// is left the offer is unsupported.
fn strongest_fingerprint(values: &[String]) -> Result<Fingerprint, SdpError> {
    let rank = |algorithm: &str| match algorithm {
        "sha-512" => Some(3),
        "sha-384" => Some(2),
        "sha-256" => Some(1),
        _ => None,
    };
    let mut best: Option<(u8, Fingerprint)> = None;
    let mut unsupported = Vec::new();
    for value in values {
        match Fingerprint::parse(value) {
            Ok(fp) => match rank(&fp.algorithm) {
                Some(r) if best.as_ref().is_none_or(|(b, _)| r > *b) => best = Some((r, fp)),
                Some(_) => {}
                None => unsupported.push(fp.algorithm),
            },
            Err(FingerprintError::UnsupportedAlgorithm(algorithm)) => unsupported.push(algorithm),
            Err(FingerprintError::MissingAlgorithm | FingerprintError::BadDigest) => {
                return Err(SdpError::InvalidFingerprint(clip(value)));
            }
        }
    }
    match best {
        Some((_, fp)) => Ok(fp),
        None => Err(SdpError::UnsupportedFingerprintHash(clip(
            &unsupported.join(", "),
        ))),
    }
}

fn parse_setup(value: Option<&str>) -> Result<Setup, SdpError> {
    match value {
        None | Some("active") => Ok(Setup::Active),
        Some("actpass") => Ok(Setup::Actpass),
        Some("passive") => Ok(Setup::Passive),
        Some("holdconn") => Err(SdpError::UnsupportedSetup("holdconn".into())),
        Some(other) => Err(SdpError::invalid("setup", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mids_are_short_tokens() {
        assert!(is_valid_mid("0"));
        assert!(is_valid_mid("sdparta_0"));
        assert!(is_valid_mid("video0"));
        assert!(!is_valid_mid(""));
        assert!(!is_valid_mid("a b"));
        assert!(!is_valid_mid("a:b"));
        assert!(!is_valid_mid(&"x".repeat(33)));
    }

    #[test]
    fn ice_credentials_follow_rfc_8839() {
        let pwd = "bP+XJMM09aR8AiX1jdukzR6Y";
        assert!(check_ice_credentials("EsAw", pwd).is_ok());
        assert!(check_ice_credentials("Es:w", pwd).is_err());
        assert!(check_ice_credentials("Esw", pwd).is_err());
        assert!(check_ice_credentials("EsAw", "short").is_err());
        assert!(check_ice_credentials("EsAw", &"p".repeat(257)).is_err());
    }

    #[test]
    fn the_strongest_supported_fingerprint_wins() {
        let hex = |n: usize| vec!["AB"; n].join(":");
        let values = vec![
            format!("sha-1 {}", hex(20)),
            format!("sha-256 {}", hex(32)),
            format!("sha-384 {}", hex(48)),
        ];
        assert_eq!(
            strongest_fingerprint(&values)
                .expect("sha-384 is supported")
                .algorithm,
            "sha-384"
        );
        let weak = vec![format!("sha-1 {}", hex(20)), format!("md5 {}", hex(16))];
        assert_eq!(
            strongest_fingerprint(&weak),
            Err(SdpError::UnsupportedFingerprintHash("sha-1, md5".into()))
        );
        let broken = vec![format!("sha-256 {}", hex(31))];
        assert!(matches!(
            strongest_fingerprint(&broken),
            Err(SdpError::InvalidFingerprint(_))
        ));
    }

    #[test]
    fn setup_defaults_to_active_and_rejects_unknown_roles() {
        assert_eq!(parse_setup(None), Ok(Setup::Active));
        assert_eq!(parse_setup(Some("actpass")), Ok(Setup::Actpass));
        assert_eq!(
            parse_setup(Some("holdconn")),
            Err(SdpError::UnsupportedSetup("holdconn".into()))
        );
        assert!(matches!(
            parse_setup(Some("both")),
            Err(SdpError::InvalidAttribute { .. })
        ));
    }
}
