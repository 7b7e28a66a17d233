//! The SDP a load-generator client writes and reads (RFC 8866 syntax, JSEP RFC 8829 shape):
//! offers and answers with BUNDLE (RFC 8843), rtcp-mux (RFC 5761), ICE credentials
//! (RFC 8839), a DTLS fingerprint and `setup` role (RFC 8122, RFC 5763), VP8 with RTX and Opus;
//! simulcast encodings with rids (RFC 8851, RFC 8853); and the parsed remote description with
//! its candidates, codecs, SSRCs and accepted rids.

mod local;
mod plan;
mod remote;

pub use local::{ExtIds, LocalDescription, PublisherSsrcs, write_answer, write_offer};
pub use plan::{MediaPlan, TrackPlan, plan_media};
pub use remote::{RemoteCandidate, RemoteCodec, RemoteDescription, RemoteMedia, Setup};

/// Payload type numbers this client offers (Chromium's numbering).
pub const PT_VP8: u8 = 96;
pub const PT_VP8_RTX: u8 = 97;
pub const PT_OPUS: u8 = 111;

/// Header extension URIs (RFC 8285 `a=extmap`).
pub const EXT_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const EXT_TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const EXT_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const EXT_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const EXT_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// Header extension ids this client offers.
pub const EXT_ID_AUDIO_LEVEL: u8 = 1;
pub const EXT_ID_TRANSPORT_CC: u8 = 3;
pub const EXT_ID_MID: u8 = 4;
pub const EXT_ID_RID: u8 = 10;
pub const EXT_ID_REPAIRED_RID: u8 = 11;

/// The simulcast encodings a `--simulcast` publisher offers (RFC 8853), lowest first.
pub const SIMULCAST_RIDS: [&str; 3] = ["q", "h", "f"];

/// Why SDP could not be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no {0} in the description")]
    Missing(&'static str),
    #[error("malformed line {line:?}: {reason}")]
    Malformed { line: String, reason: &'static str },
    #[error("no usable {0} in the description")]
    Unusable(&'static str),
}

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Reads an attribute name.
    pub fn from_attribute(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The direction the other side answers with (RFC 3264 §6.1).
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the side that wrote it sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
