//! The rows of the livestream tables as Rust values. Times are Unix milliseconds.

use serde::Serialize;
use uuid::Uuid;

/// Where a livestream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started or not started since it ended.
    Created,
    /// Started and not ended: the key holder may broadcast, viewers may join.
    Live,
    /// Ended; its key has been rotated. Starting it again makes it live.
    Ended,
}

impl Status {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Live => "live",
            Status::Ended => "ended",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(Status::Created),
            "live" => Some(Status::Live),
            "ended" => Some(Status::Ended),
            _ => None,
        }
    }
}

/// A row of `livestreams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Livestream {
    pub id: Uuid,
    /// The user who created it (the token's `sub`, or `anonymous` without auth).
    pub owner_id: String,
    pub title: String,
    pub description: String,
    pub status: Status,
    /// SHA-256 of the stream key, lowercase hex; the key itself is never stored.
    pub stream_key_hash: String,
    pub recording_enabled: bool,
    pub recording_url: Option<String>,
    /// Most viewers watching at once, over the stream's life.
    pub peak_viewers: i64,
    pub created_at: i64,
    /// The latest start.
    pub started_at: Option<i64>,
    /// The latest end (cleared by a new start).
    pub ended_at: Option<i64>,
    /// When the current key was issued.
    pub key_rotated_at: i64,
    /// The livestream's own viewer limit (positive); `None`: the server-wide limit applies.
    pub max_viewers: Option<i64>,
}

impl Livestream {
    /// The most viewers this livestream admits when the server-wide limit is `server_max`: its
    /// own limit when set, never more than the server's.
    pub fn viewer_limit(&self, server_max: usize) -> usize {
        self.max_viewers
            .and_then(|n| usize::try_from(n).ok())
            .map_or(server_max, |n| n.min(server_max))
    }
}

/// How a viewer watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewerClient {
    /// Socket.IO signaling (`stream:join`).
    Socketio,
    /// WHEP (`POST /api/livestream/{id}/whep`).
    Whep,
    /// `POST /api/livestream/{id}/join` not yet followed by media.
    Http,
}

impl ViewerClient {
    pub fn as_str(self) -> &'static str {
        match self {
            ViewerClient::Socketio => "socketio",
            ViewerClient::Whep => "whep",
            ViewerClient::Http => "http",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "socketio" => Some(ViewerClient::Socketio),
            "whep" => Some(ViewerClient::Whep),
            "http" => Some(ViewerClient::Http),
            _ => None,
        }
    }
}

/// A row of `livestream_viewers`: one viewer's watch, from join to leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerRow {
    pub id: i64,
    pub stream_id: Uuid,
    pub user_id: String,
    /// How the viewer joined.
    pub client: ViewerClient,
    pub joined_at: i64,
    /// `None` while watching.
    pub left_at: Option<i64>,
}

/// A row of `livestream_chat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: Uuid,
    /// Order of the stream's chat (assigned by the store on insert; 0 before).
    pub seq: i64,
    pub stream_id: Uuid,
    pub user_id: String,
    pub message: String,
    pub created_at: i64,
    /// Set when a moderator deleted it.
    pub deleted_at: Option<i64>,
}

/// A row of `livestream_mutes`: a user who may not chat in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub stream_id: Uuid,
    pub user_id: String,
    pub muted_by: String,
    /// `None`: until unmuted.
    pub until: Option<i64>,
    pub created_at: i64,
}

impl Mute {
    /// Whether the mute holds at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.until.is_none_or(|u| u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_limit(max_viewers: Option<i64>) -> Livestream {
        Livestream {
            id: Uuid::nil(),
            owner_id: "alice".into(),
            title: "t".into(),
            description: String::new(),
            status: Status::Live,
            stream_key_hash: String::new(),
            recording_enabled: false,
            recording_url: None,
            peak_viewers: 0,
            created_at: 0,
            started_at: None,
            ended_at: None,
            key_rotated_at: 0,
            max_viewers,
        }
    }

    #[test]
    fn a_streams_own_limit_applies_and_the_server_limit_caps_it() {
        assert_eq!(with_limit(None).viewer_limit(100), 100);
        assert_eq!(with_limit(Some(2)).viewer_limit(100), 2);
        assert_eq!(with_limit(Some(100)).viewer_limit(100), 100);
        // The server's limit lowered below what the stream was created with.
        assert_eq!(with_limit(Some(80)).viewer_limit(50), 50);
    }
}
