//! Messages between shards (DESIGN.md "Between shards"): a publisher's packet crossing once to
//! each other shard that has viewers of its stream, and feedback travelling back.

use std::time::Instant;

use crate::{Codec, MediaKind, StreamKey, TrackId};

/// Largest RTP packet that crosses between shards; bigger ones are dropped and counted.
pub const CROSS_SHARD_MTU: usize = 1500;

/// A plaintext RTP packet of a track owned by another shard.
#[derive(Clone)]
pub struct MediaPacket {
    pub stream: StreamKey,
    pub track: TrackId,
    pub kind: MediaKind,
    /// Position of the track among the stream's tracks of its kind.
    pub ordinal: u8,
    /// Simulcast identity: the encoding's stable slot, its spatial rank, and how many encodings
    /// the media section has (1: not simulcast).
    pub layer_slot: u8,
    pub layer_rank: u8,
    pub layer_count: u8,
    /// The owner's measurements of the encoding (for viewers' allocators).
    pub layer_info: super::layer_rate::LayerInfo,
    /// What the track shows.
    pub content: crate::control::TrackContent,
    pub codec: Codec,
    pub clock_rate: u32,
    /// The publisher's extended sequence number (shared numbering, so NACKs translate the same
    /// way on every shard).
    pub ext_seq: u64,
    pub keyframe_start: bool,
    pub arrival: Instant,
    pub len: u16,
    pub data: [u8; CROSS_SHARD_MTU],
}

impl std::fmt::Debug for MediaPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPacket")
            .field("track", &self.track)
            .field("layer_slot", &self.layer_slot)
            .field("ext_seq", &self.ext_seq)
            .field("len", &self.len)
            .finish()
    }
}

/// What one shard tells another. Packets travel inline (no allocation per packet), so the
/// queues hold fixed-size messages.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ShardMsg {
    /// A packet for the receiving shard's viewers.
    Media(MediaPacket),
    /// The publisher's latest sender report, translated for the mirror track.
    SenderReport {
        track: TrackId,
        layer_slot: u8,
        ntp: u64,
        rtp_timestamp: u32,
        arrival: Instant,
    },
    /// The publisher's track ended.
    TrackEnded { stream: StreamKey, track: TrackId },
    /// A viewer on the sending shard needs a keyframe of this track.
    KeyframeRequest { track: TrackId, layer_slot: u8 },
    /// The simulcast encodings (bits by spatial rank) the sending shard's viewers of this
    /// track need now (dynacast); 0: none, or no viewers any more.
    LayerDemand { track: TrackId, ranks: u8 },
}
