//! The Redis store (redis crate, tokio). Keys, under the prefix `ringcast:`:
//!
//! ```text
//! stream:{id}           the stream's record (JSON)
//! stream:{id}:viewers   set of viewer session ids
//! channel:{id}:streams  set of stream ids of a channel
//! user:{id}:streams     set of stream ids of a user
//! node:{id}             a signaling node's heartbeat (expires unless renewed)
//! ```
//!
//! Limits are checked and applied in one Lua script, so concurrent processes cannot overshoot.
//! The connection is a [`RedisBackend`]: while Redis is unreachable every call fails within
//! [`super::redis_backend::TIMEOUT`] with [`StoreError::Unavailable`].

use std::time::Duration;

use uuid::Uuid;

use super::redis_backend::RedisBackend;
use super::{BoxFuture, StoreError, StreamRecord, StreamStore};

const PREFIX: &str = "ringcast:";

/// KEYS: stream, channel set, user set. ARGV: record JSON, stream id, channel limit.
const INSERT: &str = r"
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1";

/// KEYS: stream, viewers, channel set, user set. ARGV: stream id.
const REMOVE: &str = r"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
return 1";

/// KEYS: stream, viewers. ARGV: session id, limit. -1: no stream, -2: full, else the count.
const ADD_VIEWER: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return redis.call('SCARD', KEYS[2]) end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -2 end
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('SCARD', KEYS[2])";

fn stream_key(id: Uuid) -> String {
    format!("{PREFIX}stream:{id}")
}
fn viewers_key(id: Uuid) -> String {
    format!("{PREFIX}stream:{id}:viewers")
}
fn channel_key(id: Uuid) -> String {
    format!("{PREFIX}channel:{id}:streams")
}
fn node_key(id: &str) -> String {
    format!("{PREFIX}node:{id}")
}
fn user_key(id: &str) -> String {
    format!("{PREFIX}user:{id}:streams")
}

/// Streams in Redis, shared by every process using the same server.
#[derive(Debug, Clone)]
pub struct RedisStore {
    redis: RedisBackend,
}

impl RedisStore {
    /// The stream store on a Redis backend.
    pub fn new(redis: RedisBackend) -> Self {
        RedisStore { redis }
    }

    async fn records(&self, ids: Vec<String>) -> Result<Vec<StreamRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = id.parse::<Uuid>() else { continue };
            if let Some(r) = self.get(id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn get(&self, id: Uuid) -> Result<Option<StreamRecord>, StoreError> {
        let v: Option<String> = self
            .redis
            .run(redis::cmd("GET").arg(stream_key(id)).clone())
            .await?;
        v.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }
}

impl StreamStore for RedisStore {
    fn insert_stream(
        &self,
        rec: StreamRecord,
        max_per_channel: usize,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let json =
                serde_json::to_string(&rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let keys = [
                stream_key(rec.stream_id),
                channel_key(rec.channel_id),
                user_key(&rec.user_id),
            ];
            let args = [json, rec.stream_id.to_string(), max_per_channel.to_string()];
            let ok: i64 = self.redis.eval(INSERT, &keys, &args).await?;
            if ok == 1 {
                Ok(())
            } else {
                Err(StoreError::ChannelFull {
                    channel: rec.channel_id,
                    limit: max_per_channel,
                })
            }
        })
    }

    fn get_stream(&self, id: Uuid) -> BoxFuture<'_, Result<Option<StreamRecord>, StoreError>> {
        Box::pin(self.get(id))
    }

    fn update_stream(&self, rec: StreamRecord) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let json =
                serde_json::to_string(&rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let r: Option<String> = self
                .redis
                .run(
                    redis::cmd("SET")
                        .arg(stream_key(rec.stream_id))
                        .arg(json)
                        .arg("XX")
                        .clone(),
                )
                .await?;
            Ok(r.is_some())
        })
    }

    fn remove_stream(&self, id: Uuid) -> BoxFuture<'_, Result<Option<StreamRecord>, StoreError>> {
        Box::pin(async move {
            let Some(rec) = self.get(id).await? else {
                return Ok(None);
            };
            let keys = [
                stream_key(id),
                viewers_key(id),
                channel_key(rec.channel_id),
                user_key(&rec.user_id),
            ];
            let removed: i64 = self.redis.eval(REMOVE, &keys, &[id.to_string()]).await?;
            Ok((removed == 1).then_some(rec))
        })
    }

    fn channel_streams(
        &self,
        channel: Uuid,
    ) -> BoxFuture<'_, Result<Vec<StreamRecord>, StoreError>> {
        Box::pin(async move {
            let ids: Vec<String> = self
                .redis
                .run(redis::cmd("SMEMBERS").arg(channel_key(channel)).clone())
                .await?;
            self.records(ids).await
        })
    }

    fn user_streams(&self, user: String) -> BoxFuture<'_, Result<Vec<StreamRecord>, StoreError>> {
        Box::pin(async move {
            let ids: Vec<String> = self
                .redis
                .run(redis::cmd("SMEMBERS").arg(user_key(&user)).clone())
                .await?;
            self.records(ids).await
        })
    }

    fn add_viewer(
        &self,
        stream: Uuid,
        session: Uuid,
        max: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let keys = [stream_key(stream), viewers_key(stream)];
            let n: i64 = self
                .redis
                .eval(ADD_VIEWER, &keys, &[session.to_string(), max.to_string()])
                .await?;
            match n {
                -1 => Err(StoreError::NoSuchStream(stream)),
                -2 => Err(StoreError::ViewerLimit { stream, limit: max }),
                n => Ok(n.max(0) as usize),
            }
        })
    }

    fn remove_viewer(
        &self,
        stream: Uuid,
        session: Uuid,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let _: i64 = self
                .redis
                .run(
                    redis::cmd("SREM")
                        .arg(viewers_key(stream))
                        .arg(session.to_string())
                        .clone(),
                )
                .await?;
            self.viewer_count(stream).await
        })
    }

    fn viewer_count(&self, stream: Uuid) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let n: usize = self
                .redis
                .run(redis::cmd("SCARD").arg(viewers_key(stream)).clone())
                .await?;
            Ok(n)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.redis.ping())
    }

    fn heartbeat(&self, node: String, ttl: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let ms = ttl.as_millis().max(1).to_string();
            let _: Option<String> = self
                .redis
                .run(
                    redis::cmd("SET")
                        .arg(node_key(&node))
                        .arg("1")
                        .arg("PX")
                        .arg(ms)
                        .clone(),
                )
                .await?;
            Ok(())
        })
    }

    fn node_alive(&self, node: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let n: i64 = self
                .redis
                .run(redis::cmd("EXISTS").arg(node_key(&node)).clone())
                .await?;
            Ok(n == 1)
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_prefix() {
        let id = Uuid::nil();
        assert_eq!(
            stream_key(id),
            "ringcast:stream:00000000-0000-0000-0000-000000000000"
        );
        assert!(viewers_key(id).ends_with(":viewers"));
        assert_eq!(
            channel_key(id),
            "ringcast:channel:00000000-0000-0000-0000-000000000000:streams"
        );
        assert_eq!(user_key("u"), "ringcast:user:u:streams");
    }
}
