//! Errors of the SDP layer, split into the two answers WHIP/WHEP give a bad offer (RFC 9725 §4.2):
//! 400 for a malformed offer, 422 for a well-formed offer that asks for something Ringcast does
//! not support.

/// How the HTTP layer should answer an offer that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpErrorClass {
    /// The text is not a usable offer at all: 400 Bad Request.
    Malformed,
    /// The offer is well formed but asks for something unsupported: 422 Unprocessable Content.
    Unsupported,
}

/// Why an offer or a trickle fragment could not be used. Every message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    // ---- malformed (400) ----
    /// The SDP parser rejected the text.
    #[error("the body is not a valid SDP document: {0}")]
    NotSdp(String),
    /// No `m=` line at all.
    #[error("the offer has no m= line")]
    NoMediaLines,
    /// An `m=` line without `a=mid` (RFC 8843 requires one on every bundled line).
    #[error("m-line {index} has no a=mid")]
    MissingMid { index: usize },
    /// An `a=mid` value that is not a short SDP token.
    #[error("invalid a=mid value {0:?}: expected 1 to 32 token characters")]
    InvalidMid(String),
    /// Two `m=` lines with the same `a=mid`.
    #[error("a=mid:{0} appears on more than one m-line")]
    DuplicateMid(String),
    /// Several `m=` lines but no `a=group:BUNDLE`: Ringcast serves one transport per session.
    #[error(
        "the offer has {count} m-lines but no a=group:BUNDLE; bundle all media on one transport"
    )]
    MissingBundle { count: usize },
    /// `a=group:BUNDLE` names a mid that no `m=` line carries.
    #[error("a=group:BUNDLE names mid {0:?}, which no m-line carries")]
    BundleUnknownMid(String),
    /// No `a=ice-ufrag`/`a=ice-pwd` for a bundled line, at media or session level.
    #[error("m-line {mid}: no ICE credentials (a=ice-ufrag and a=ice-pwd, RFC 8839)")]
    MissingIceCredentials { mid: String },
    /// ICE credentials outside the RFC 8839 grammar.
    #[error("invalid ICE credentials: {0}")]
    InvalidIceCredentials(String),
    /// Bundled lines carry different ICE credentials.
    #[error("ICE credentials differ between bundled m-lines {first} and {other}")]
    InconsistentIceCredentials { first: String, other: String },
    /// No `a=fingerprint` for a bundled line, at media or session level.
    #[error("m-line {mid}: no a=fingerprint (RFC 8122)")]
    MissingFingerprint { mid: String },
    /// An `a=fingerprint` whose digest is not colon-separated hex of the right length.
    #[error("invalid a=fingerprint value {0:?}")]
    InvalidFingerprint(String),
    /// Bundled lines carry different fingerprints.
    #[error("DTLS fingerprints differ between bundled m-lines {first} and {other}")]
    InconsistentFingerprint { first: String, other: String },
    /// Bundled lines carry different `a=setup` roles.
    #[error("a=setup differs between bundled m-lines {first} and {other}")]
    InconsistentSetup { first: String, other: String },
    /// An attribute (or the `m=` line) whose value does not follow its grammar.
    #[error("invalid a={attribute} value {value:?}")]
    InvalidAttribute {
        attribute: &'static str,
        value: String,
    },
    /// A trickle ICE fragment (RFC 8840) that could not be read.
    #[error("invalid trickle ICE fragment: {0}")]
    InvalidFragment(String),

    // ---- unsupported (422) ----
    /// No codec of a line is one Ringcast forwards.
    #[error(
        "m-line {mid} ({kind}): none of the offered codecs is supported (Ringcast accepts {accepted})"
    )]
    NoUsableCodec {
        mid: String,
        kind: &'static str,
        accepted: String,
    },
    /// A bundled RTP line without `a=rtcp-mux` (RFC 5761); Ringcast multiplexes RTP and RTCP.
    #[error("m-line {mid} does not offer a=rtcp-mux, which Ringcast requires")]
    NoRtcpMux { mid: String },
    /// A bundled RTP line whose protocol is not DTLS-SRTP.
    #[error("m-line {mid}: protocol {proto} is not supported; offer UDP/TLS/RTP/SAVPF")]
    UnsupportedTransport { mid: String, proto: String },
    /// A WHIP offer in which no line sends media.
    #[error("a WHIP publisher offer must send media, but no m-line is sendonly or sendrecv")]
    PublisherNotSending,
    /// A WHEP offer in which no line receives media.
    #[error("a WHEP viewer offer must receive media, but no m-line is recvonly or sendrecv")]
    ViewerNotReceiving,
    /// `a=setup:passive` in an offer: Ringcast is always the DTLS server.
    #[error(
        "a=setup:passive is not supported: Ringcast is the DTLS server, offer actpass or active"
    )]
    PassiveSetup,
    /// `a=setup:holdconn`.
    #[error("a=setup:{0} is not supported; offer actpass or active")]
    UnsupportedSetup(String),
    /// Every offered fingerprint uses a hash other than SHA-256/384/512.
    #[error("fingerprint hash function {0} is not supported; use sha-256, sha-384 or sha-512")]
    UnsupportedFingerprintHash(String),
    /// The offerer is ICE-lite too: two lite agents never run connectivity checks (RFC 8445 §2.5).
    #[error("the offer is a=ice-lite, but Ringcast is ICE-lite too; the offerer must run full ICE")]
    OffererIceLite,
    /// Nothing in the offer is bundled audio or video that is not disabled.
    #[error("the offer has no enabled audio or video m-line in its BUNDLE group")]
    NoUsableMedia,
}

impl SdpError {
    /// Whether the offer was malformed (400) or unsupported (422).
    pub fn class(&self) -> SdpErrorClass {
        use SdpError::*;
        match self {
            NotSdp(_)
            | NoMediaLines
            | MissingMid { .. }
            | InvalidMid(_)
            | DuplicateMid(_)
            | MissingBundle { .. }
            | BundleUnknownMid(_)
            | MissingIceCredentials { .. }
            | InvalidIceCredentials(_)
            | InconsistentIceCredentials { .. }
            | MissingFingerprint { .. }
            | InvalidFingerprint(_)
            | InconsistentFingerprint { .. }
            | InconsistentSetup { .. }
            | InvalidAttribute { .. }
            | InvalidFragment(_) => SdpErrorClass::Malformed,
            NoUsableCodec { .. }
            | NoRtcpMux { .. }
            | UnsupportedTransport { .. }
            | PublisherNotSending
            | ViewerNotReceiving
            | PassiveSetup
            | UnsupportedSetup(_)
            | UnsupportedFingerprintHash(_)
            | OffererIceLite
            | NoUsableMedia => SdpErrorClass::Unsupported,
        }
    }

    /// The HTTP status the WHIP/WHEP endpoint answers with: 400 or 422.
    pub fn http_status(&self) -> u16 {
        match self.class() {
            SdpErrorClass::Malformed => 400,
            SdpErrorClass::Unsupported => 422,
        }
    }

    pub(crate) fn invalid(attribute: &'static str, value: &str) -> Self {
        SdpError::InvalidAttribute {
            attribute,
            value: clip(value),
        }
    }
}

/// Shortens text copied from the input into an error message, so that a megabyte of garbage does
/// not come back in the response body.
pub(crate) fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_unsupported_map_to_400_and_422() {
        assert_eq!(SdpError::NoMediaLines.http_status(), 400);
        assert_eq!(
            SdpError::MissingFingerprint { mid: "0".into() }.http_status(),
            400
        );
        assert_eq!(SdpError::PassiveSetup.http_status(), 422);
        assert_eq!(
            SdpError::NoRtcpMux { mid: "0".into() }.class(),
            SdpErrorClass::Unsupported
        );
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(1000);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), 81);
        assert!(clipped.ends_with('…'));
    }
}
