//! Where media sessions and their published tracks are recorded: in memory by default, in Redis
//! (the stream service's [`RedisBackend`], keys under `ringcast:media:`) when `REDIS_URL` is set,
//! so every node can tell which node serves a session or a track. `MAX_SESSIONS` is counted per
//! node and applied atomically with the insert (a Lua script in Redis).
//!
//! ```text
//! ringcast:media:session:{id}          the session's record (JSON)
//! ringcast:media:session:{id}:tracks   set of its track ids
//! ringcast:media:track:{id}            a published track's record (JSON)
//! ringcast:media:node:{node}:sessions  set of the node's session ids
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::BoxFuture;
use crate::store::RedisBackend;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaStoreError {
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    #[error("this node already holds {limit} media sessions (MAX_SESSIONS)")]
    Full { limit: usize },
    #[error("corrupt media record: {0}")]
    Corrupt(String),
}

impl From<crate::store::StoreError> for MediaStoreError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(s) => MediaStoreError::Unavailable(s),
            other => MediaStoreError::Corrupt(other.to_string()),
        }
    }
}

/// What every node may know about a media session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub session_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub channel_id: Uuid,
    pub user_id: String,
    pub node_id: String,
    pub node_url: String,
    pub created_at: String,
}

/// What every node may know about a published track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRecord {
    pub track_id: Uuid,
    pub session_id: Uuid,
    pub channel_id: Uuid,
    pub kind: String,
    pub node_id: String,
    pub node_url: String,
}

/// Media sessions and tracks, shared by the nodes that use the same store.
pub trait MediaSessionStore: Send + Sync + std::fmt::Debug {
    /// Records a session unless its node already has `max_per_node`.
    fn insert_session(
        &self,
        rec: SessionRecord,
        max_per_node: usize,
    ) -> BoxFuture<'_, Result<(), MediaStoreError>>;
    fn get_session(
        &self,
        id: Uuid,
    ) -> BoxFuture<'_, Result<Option<SessionRecord>, MediaStoreError>>;
    /// Removes a session and its tracks.
    fn remove_session(&self, rec: SessionRecord) -> BoxFuture<'_, Result<(), MediaStoreError>>;
    fn insert_track(&self, rec: TrackRecord) -> BoxFuture<'_, Result<(), MediaStoreError>>;
    fn get_track(&self, id: Uuid) -> BoxFuture<'_, Result<Option<TrackRecord>, MediaStoreError>>;
    fn remove_track(&self, rec: TrackRecord) -> BoxFuture<'_, Result<(), MediaStoreError>>;
    /// Forgets every session of `node` (a node that starts holds none, whatever a previous run
    /// of it left behind).
    fn reset_node(&self, node: String) -> BoxFuture<'_, Result<(), MediaStoreError>>;
    /// `memory` or `redis`.
    fn kind(&self) -> &'static str;
}

/// The store for a configuration: Redis at `redis_url`, else memory.
pub fn open(redis_url: Option<&str>) -> Result<Arc<dyn MediaSessionStore>, MediaStoreError> {
    Ok(match redis_url.filter(|u| !u.trim().is_empty()) {
        Some(url) => Arc::new(RedisMediaStore {
            redis: RedisBackend::open(url)?,
        }),
        None => Arc::new(MemoryMediaStore::default()),
    })
}

#[derive(Debug, Default)]
struct Memory {
    sessions: HashMap<Uuid, SessionRecord>,
    tracks: HashMap<Uuid, TrackRecord>,
}

/// Sessions in this process only.
#[derive(Debug, Default)]
pub struct MemoryMediaStore {
    inner: Mutex<Memory>,
}

impl MemoryMediaStore {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> Result<T, MediaStoreError> {
        self.inner
            .lock()
            .map(|mut m| f(&mut m))
            .map_err(|_| MediaStoreError::Unavailable("memory store lock poisoned".into()))
    }
}

impl MediaSessionStore for MemoryMediaStore {
    fn insert_session(
        &self,
        rec: SessionRecord,
        max_per_node: usize,
    ) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            self.with(|m| {
                let n = m
                    .sessions
                    .values()
                    .filter(|s| s.node_id == rec.node_id)
                    .count();
                if n >= max_per_node {
                    return Err(MediaStoreError::Full {
                        limit: max_per_node,
                    });
                }
                m.sessions.insert(rec.session_id, rec);
                Ok(())
            })?
        })
    }

    fn get_session(
        &self,
        id: Uuid,
    ) -> BoxFuture<'_, Result<Option<SessionRecord>, MediaStoreError>> {
        Box::pin(async move { self.with(|m| m.sessions.get(&id).cloned()) })
    }

    fn remove_session(&self, rec: SessionRecord) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            self.with(|m| {
                m.sessions.remove(&rec.session_id);
                m.tracks.retain(|_, t| t.session_id != rec.session_id);
            })
        })
    }

    fn insert_track(&self, rec: TrackRecord) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            self.with(|m| {
                m.tracks.insert(rec.track_id, rec);
            })
        })
    }

    fn get_track(&self, id: Uuid) -> BoxFuture<'_, Result<Option<TrackRecord>, MediaStoreError>> {
        Box::pin(async move { self.with(|m| m.tracks.get(&id).cloned()) })
    }

    fn remove_track(&self, rec: TrackRecord) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            self.with(|m| {
                m.tracks.remove(&rec.track_id);
            })
        })
    }

    fn reset_node(&self, node: String) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            self.with(|m| {
                let gone: Vec<Uuid> = m
                    .sessions
                    .values()
                    .filter(|s| s.node_id == node)
                    .map(|s| s.session_id)
                    .collect();
                for id in gone {
                    m.sessions.remove(&id);
                    m.tracks.retain(|_, t| t.session_id != id);
                }
            })
        })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

const PREFIX: &str = "ringcast:media:";

fn session_key(id: Uuid) -> String {
    format!("{PREFIX}session:{id}")
}
fn session_tracks_key(id: Uuid) -> String {
    format!("{PREFIX}session:{id}:tracks")
}
fn track_key(id: Uuid) -> String {
    format!("{PREFIX}track:{id}")
}
fn node_key(node: &str) -> String {
    format!("{PREFIX}node:{node}:sessions")
}

/// KEYS: session, node set. ARGV: record JSON, session id, limit.
const INSERT_SESSION: &str = r"
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1";

/// KEYS: session, its tracks set, node set. ARGV: session id, track key prefix.
const REMOVE_SESSION: &str = r"
for _, t in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[2] .. t) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1";

/// Sessions in Redis, shared by every node on the same server.
#[derive(Debug, Clone)]
pub struct RedisMediaStore {
    redis: RedisBackend,
}

impl RedisMediaStore {
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
    ) -> Result<Option<T>, MediaStoreError> {
        let v: Option<String> = self.redis.run(redis::cmd("GET").arg(key).clone()).await?;
        v.map(|s| serde_json::from_str(&s).map_err(|e| MediaStoreError::Corrupt(e.to_string())))
            .transpose()
    }

    async fn remove(&self, rec: &SessionRecord) -> Result<(), MediaStoreError> {
        let keys = [
            session_key(rec.session_id),
            session_tracks_key(rec.session_id),
            node_key(&rec.node_id),
        ];
        let args = [rec.session_id.to_string(), format!("{PREFIX}track:")];
        let _: i64 = self.redis.eval(REMOVE_SESSION, &keys, &args).await?;
        Ok(())
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, MediaStoreError> {
    serde_json::to_string(v).map_err(|e| MediaStoreError::Corrupt(e.to_string()))
}

impl MediaSessionStore for RedisMediaStore {
    fn insert_session(
        &self,
        rec: SessionRecord,
        max_per_node: usize,
    ) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            let keys = [session_key(rec.session_id), node_key(&rec.node_id)];
            let args = [
                to_json(&rec)?,
                rec.session_id.to_string(),
                max_per_node.to_string(),
            ];
            let ok: i64 = self.redis.eval(INSERT_SESSION, &keys, &args).await?;
            if ok == 1 {
                Ok(())
            } else {
                Err(MediaStoreError::Full {
                    limit: max_per_node,
                })
            }
        })
    }

    fn get_session(
        &self,
        id: Uuid,
    ) -> BoxFuture<'_, Result<Option<SessionRecord>, MediaStoreError>> {
        Box::pin(self.get_json(session_key(id)))
    }

    fn remove_session(&self, rec: SessionRecord) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move { self.remove(&rec).await })
    }

    fn insert_track(&self, rec: TrackRecord) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            let json = to_json(&rec)?;
            let _: Option<String> = self
                .redis
                .run(
                    redis::cmd("SET")
                        .arg(track_key(rec.track_id))
                        .arg(json)
                        .clone(),
                )
                .await?;
            let _: i64 = self
                .redis
                .run(
                    redis::cmd("SADD")
                        .arg(session_tracks_key(rec.session_id))
                        .arg(rec.track_id.to_string())
                        .clone(),
                )
                .await?;
            Ok(())
        })
    }

    fn get_track(&self, id: Uuid) -> BoxFuture<'_, Result<Option<TrackRecord>, MediaStoreError>> {
        Box::pin(self.get_json(track_key(id)))
    }

    fn remove_track(&self, rec: TrackRecord) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            let _: i64 = self
                .redis
                .run(redis::cmd("DEL").arg(track_key(rec.track_id)).clone())
                .await?;
            let _: i64 = self
                .redis
                .run(
                    redis::cmd("SREM")
                        .arg(session_tracks_key(rec.session_id))
                        .arg(rec.track_id.to_string())
                        .clone(),
                )
                .await?;
            Ok(())
        })
    }

    fn reset_node(&self, node: String) -> BoxFuture<'_, Result<(), MediaStoreError>> {
        Box::pin(async move {
            let ids: Vec<String> = self
                .redis
                .run(redis::cmd("SMEMBERS").arg(node_key(&node)).clone())
                .await?;
            for id in ids {
                let Ok(id) = id.parse::<Uuid>() else { continue };
                let rec = SessionRecord {
                    session_id: id,
                    kind: String::new(),
                    channel_id: Uuid::nil(),
                    user_id: String::new(),
                    node_id: node.clone(),
                    node_url: String::new(),
                    created_at: String::new(),
                };
                self.remove(&rec).await?;
            }
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(node: &str) -> SessionRecord {
        SessionRecord {
            session_id: Uuid::new_v4(),
            kind: "audio".into(),
            channel_id: Uuid::nil(),
            user_id: "u".into(),
            node_id: node.into(),
            node_url: "http://n".into(),
            created_at: String::new(),
        }
    }

    #[tokio::test]
    async fn the_session_limit_counts_this_nodes_sessions_only() {
        let s = MemoryMediaStore::default();
        let a = rec("a");
        s.insert_session(a.clone(), 1).await.expect("first fits");
        assert_eq!(
            s.insert_session(rec("a"), 1).await,
            Err(MediaStoreError::Full { limit: 1 })
        );
        s.insert_session(rec("b"), 1)
            .await
            .expect("another node has room");
        let t = TrackRecord {
            track_id: Uuid::new_v4(),
            session_id: a.session_id,
            channel_id: Uuid::nil(),
            kind: "audio".into(),
            node_id: "a".into(),
            node_url: "http://n".into(),
        };
        s.insert_track(t.clone()).await.expect("track");
        assert_eq!(s.get_track(t.track_id).await, Ok(Some(t.clone())));
        s.remove_session(a.clone()).await.expect("removed");
        assert_eq!(s.get_track(t.track_id).await, Ok(None), "tracks go with it");
        s.insert_session(rec("a"), 1).await.expect("room again");
        s.reset_node("a".into()).await.expect("reset");
        s.insert_session(rec("a"), 1)
            .await
            .expect("room after reset");
    }

    #[test]
    fn keys_share_the_media_prefix() {
        let id = Uuid::nil();
        assert_eq!(
            session_key(id),
            "ringcast:media:session:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(node_key("n1"), "ringcast:media:node:n1:sessions");
        assert!(track_key(id).starts_with("ringcast:media:track:"));
    }
}
