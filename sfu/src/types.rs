//! Newtypes for the media-plane domain: identifiers, sequence numbers and rates.

use std::fmt;

/// RTP synchronization source (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// RTP sequence number as carried on the wire (16 bits, wraps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u16);

/// A 16-bit sequence number extended with its roll-over count (RFC 3550 appendix A.1), so that it
/// orders and subtracts across wrap-around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExtSeq(pub u64);

impl ExtSeq {
    /// The 16-bit value on the wire.
    pub fn wire(self) -> SeqNo {
        SeqNo(self.0 as u16)
    }
}

/// RTP payload type (7 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PayloadType(pub u8);

/// Media identification tag (RFC 8843 §15).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mid(pub String);

/// RTP stream identifier (RFC 8851), used by simulcast.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Rid(pub String);

/// A bit rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Bitrate(pub u64);

impl Bitrate {
    pub const ZERO: Bitrate = Bitrate(0);
    pub fn kbps(k: u64) -> Self {
        Bitrate(k * 1000)
    }
    pub fn as_bps(self) -> u64 {
        self.0
    }
}

/// Index of a shard (and of the core it is pinned to, counted among the shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ShardId(pub u16);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A WebRTC session (one peer connection) on a shard; unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A published track (one media source: audio or video); unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TrackId(pub u64);

/// The kind of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

/// Media codecs the media plane knows how to forward (RFC 7587, RFC 7741, RFC 6184, and the VP9
/// and AV1 RTP payload formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Vp8,
    Vp9,
    H264,
    Av1,
}

impl Codec {
    pub fn kind(self) -> MediaKind {
        match self {
            Codec::Opus => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }
    /// Encoding name as written in SDP `a=rtpmap` (matched case-insensitively).
    pub fn sdp_name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9",
            Codec::H264 => "H264",
            Codec::Av1 => "AV1",
        }
    }
    pub fn from_sdp_name(name: &str) -> Option<Codec> {
        [Codec::Opus, Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1]
            .into_iter()
            .find(|c| c.sdp_name().eq_ignore_ascii_case(name))
    }
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 90_000,
        }
    }
}

/// A stream (a named broadcast: one publisher's tracks and any number of viewers), interned by
/// signaling to a number that every shard uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StreamKey(pub u64);
