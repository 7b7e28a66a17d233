//! Shared state of the stream service: streams, their owners and viewers. In memory by default
//! ([`MemoryStore`]); in Redis ([`RedisStore`]) when `REDIS_URL` is set, so that several
//! signaling processes see the same streams. Limits are checked and applied atomically by the
//! store (a Lua script in Redis), so two processes cannot both take the last slot.
//!
//! The Redis connection ([`RedisBackend`]) is separate from what is stored on it: the media
//! server's session store will be another trait implemented on the same backend, with its own
//! key prefix, opened from the same `REDIS_URL`.

mod memory;
mod record;
mod redis;
mod redis_backend;

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

pub use memory::MemoryStore;
pub use record::{Quality, StreamRecord};
pub use redis::RedisStore;
pub use redis_backend::RedisBackend;

pub use crate::events::BoxFuture;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or did not answer in time; retry later.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    #[error("channel {channel} already has {limit} streams")]
    ChannelFull { channel: Uuid, limit: usize },
    #[error("stream {stream} already has {limit} viewers")]
    ViewerLimit { stream: Uuid, limit: usize },
    #[error("no stream {0}")]
    NoSuchStream(Uuid),
    /// A stored value could not be read back (written by an incompatible version).
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Streams and viewers, shared by every signaling process that uses the same store.
pub trait StreamStore: Send + Sync + std::fmt::Debug {
    /// Records a new stream unless its channel already has `max_per_channel` streams.
    fn insert_stream(
        &self,
        rec: StreamRecord,
        max_per_channel: usize,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    fn get_stream(&self, id: Uuid) -> BoxFuture<'_, Result<Option<StreamRecord>, StoreError>>;
    /// Replaces a stream's record; `false` when the stream is gone.
    fn update_stream(&self, rec: StreamRecord) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Removes a stream and its viewers; returns the record if this call removed it (of two
    /// concurrent removals, exactly one gets it).
    fn remove_stream(&self, id: Uuid) -> BoxFuture<'_, Result<Option<StreamRecord>, StoreError>>;
    fn channel_streams(
        &self,
        channel: Uuid,
    ) -> BoxFuture<'_, Result<Vec<StreamRecord>, StoreError>>;
    fn user_streams(&self, user: String) -> BoxFuture<'_, Result<Vec<StreamRecord>, StoreError>>;
    /// Adds a viewer session unless the stream has `max` viewers; returns the new count
    /// (unchanged when the session was already a viewer).
    fn add_viewer(
        &self,
        stream: Uuid,
        session: Uuid,
        max: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// Removes a viewer session; returns the remaining count.
    fn remove_viewer(
        &self,
        stream: Uuid,
        session: Uuid,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;
    fn viewer_count(&self, stream: Uuid) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// Checks that the backend answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Announces that signaling node `node` is alive for the next `ttl` (nodes renew it well
    /// within `ttl`).
    fn heartbeat(&self, node: String, ttl: Duration) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Whether `node` renewed its heartbeat within its `ttl`: streams of a node that is not
    /// alive have no media anywhere and are removed by whichever node notices.
    fn node_alive(&self, node: String) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// `memory` or `redis`.
    fn kind(&self) -> &'static str;
}

/// The store for a configuration: Redis at `redis_url`, else memory.
pub fn open(redis_url: Option<&str>) -> Result<Arc<dyn StreamStore>, StoreError> {
    Ok(match redis_url.filter(|u| !u.trim().is_empty()) {
        Some(url) => Arc::new(RedisStore::new(RedisBackend::open(url)?)),
        None => Arc::new(MemoryStore::default()),
    })
}
