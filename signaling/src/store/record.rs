//! What the store keeps about one stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Encoding settings of a stream and what the media plane should make of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quality {
    /// `WIDTHxHEIGHT`, as requested.
    pub resolution: String,
    pub framerate: u32,
    /// Requested bitrate, kbps.
    pub bitrate: u32,
    /// The preset the request maps to (`1080p`, `720p`, `480p`).
    pub preset: String,
    /// Bitrate cap toward viewers, kbps (the requested bitrate).
    pub max_bitrate_kbps: u32,
    /// The simulcast layer viewers should get (`h`, `m`, `l`).
    pub preferred_layer: String,
}

/// One started stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub stream_id: Uuid,
    /// The sharer's media session (publish with WHIP to `/stream/{stream_id}/whip`).
    pub session_id: Uuid,
    pub channel_id: Uuid,
    /// The sharer (`sub` of their token).
    pub user_id: String,
    /// The signaling process that runs the stream's media.
    pub node_id: String,
    /// That process's base URL (where viewers and the sharer must go).
    pub node_url: String,
    pub quality: Quality,
    /// RFC 3339.
    pub started_at: String,
}
