//! JSON payloads of the media server's events (seed 002 "NATS Events"). Every event names the
//! session, its channel and user, and carries an RFC 3339 timestamp.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `media.session.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionCreated {
    pub session_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub channel_id: Uuid,
    pub user_id: String,
    pub node_id: String,
    pub timestamp: String,
}

/// `media.session.closed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClosed {
    pub session_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub channel_id: Uuid,
    pub user_id: String,
    /// `deleted`, `voice_session_ended`, `stream_stopped`, `connect_timeout` (no transport
    /// connected in time), `consent_expired`, `dtls_failed`, `dtls_closed`, `failed` (a shard
    /// refused it), `shutdown`.
    pub reason: String,
    /// Seconds the session lasted.
    pub duration: u64,
    pub node_id: String,
    pub timestamp: String,
}

/// `media.track.added` and `media.track.removed`: a track published or unpublished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackEvent {
    pub session_id: Uuid,
    pub track_id: Uuid,
    /// `audio` or `video`.
    pub kind: String,
    pub channel_id: Uuid,
    pub user_id: String,
    /// Why it was removed (`media.track.removed` only): `unpublished`, or the session's close
    /// reason.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    pub timestamp: String,
}

/// The subject of [`SpeakerActive`]: an extension of the seed's events.
pub const MEDIA_SPEAKER_ACTIVE: &str = "media.speaker.active";

/// `media.speaker.active` (extension): the active speaker of a channel changed. `track_id` is
/// the speaking producer (with its session and user), or null when nobody speaks any more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerActive {
    pub channel_id: Uuid,
    pub track_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub user_id: Option<String>,
    /// The speaker's audio level in dBov (-127 silence ... 0 full scale); null with nobody.
    pub audio_level: Option<i8>,
    pub node_id: String,
    pub timestamp: String,
}
