//! JSON payloads of the stream service's events, and RFC 3339 timestamps for them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `stream.started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStarted {
    pub stream_id: Uuid,
    pub session_id: Uuid,
    pub channel_id: Uuid,
    pub user_id: String,
    pub resolution: String,
    pub framerate: u32,
    pub bitrate: u32,
    pub node_id: String,
    pub timestamp: String,
}

/// `stream.stopped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStopped {
    pub stream_id: Uuid,
    pub channel_id: Uuid,
    pub user_id: String,
    /// `requested`, `publisher_left`, `voice_session_ended`, `channel_deleted`, `shutdown`,
    /// `node_lost` (the node that served it died; removed by another node).
    pub reason: String,
    pub node_id: String,
    pub timestamp: String,
}

/// `stream.viewer.joined` and `stream.viewer.left`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewerEvent {
    pub stream_id: Uuid,
    pub channel_id: Uuid,
    pub session_id: Uuid,
    /// The viewer.
    pub user_id: String,
    /// Viewers of the stream after this change.
    pub viewer_count: usize,
    /// Why the viewer left (`left.reason` only): `deleted`, `consent_expired`, `connect_timeout`,
    /// `dtls_failed`, `dtls_closed`, `stream_stopped`, `shutdown`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    pub timestamp: String,
}

/// `stream.quality.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityChanged {
    pub stream_id: Uuid,
    pub channel_id: Uuid,
    pub user_id: String,
    pub resolution: String,
    pub framerate: u32,
    pub bitrate: u32,
    /// `1080p`, `720p` or `480p`: the preset the request maps to.
    pub preset: String,
    /// The bitrate cap for the stream, kbps.
    pub max_bitrate_kbps: u32,
    /// The simulcast layer viewers should get (`h`, `m`, `l`).
    pub preferred_layer: String,
    pub timestamp: String,
}

/// `media.quality.degraded` (a viewer's video allocation stayed below what it wants for 5 s) and
/// `media.quality.restored` (it stayed at it for 5 s again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityNotice {
    /// The viewer's session: the stream service's session uuid, a WHEP session's id (16 hex
    /// digits, as in its resource URL), or a media server session's uuid.
    pub session_id: String,
    /// The stream: the stream service's stream uuid, the WHEP stream name, or a media server
    /// session's channel id.
    pub stream: String,
    /// What the allocator gives the viewer's video, bit/s.
    pub allocated_bps: u64,
    /// What the viewer wants: its quality preset's bit rate, or without one the top layers'
    /// rate, bit/s.
    pub wanted_bps: u64,
    /// The send-side estimate toward the viewer, bit/s (`null` without transport-cc or before
    /// the first report).
    pub estimate_bps: Option<u64>,
    pub timestamp: String,
}

/// `voice.session.ended` as other services publish it: the user's stream in that channel (or
/// every stream of the user when no channel is given) stops.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VoiceSessionEnded {
    pub user_id: String,
    #[serde(default)]
    pub channel_id: Option<Uuid>,
}

/// `channel.deleted`: every stream of the channel stops.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChannelDeleted {
    pub channel_id: Uuid,
}

/// The current time in RFC 3339 (UTC, milliseconds): `2026-11-21T09:19:43.123Z`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `t` in RFC 3339 (UTC, milliseconds).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_252_783); // 2026-11-21T09:19:43Z
        assert_eq!(rfc3339(t), "2026-11-21T09:19:43.000Z");
    }

    #[test]
    fn voice_session_ended_accepts_payloads_without_a_channel() {
        let v: VoiceSessionEnded =
            serde_json::from_str(r#"{"user_id":"u1","session_id":"x"}"#).expect("valid");
        assert_eq!(v.user_id, "u1");
        assert_eq!(v.channel_id, None);
    }
}
