//! The default store: a map in this process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{BoxFuture, StoreError, StreamRecord, StreamStore};

#[derive(Debug, Default)]
struct Inner {
    streams: HashMap<Uuid, StreamRecord>,
    viewers: HashMap<Uuid, HashSet<Uuid>>,
    /// Heartbeat deadlines of nodes.
    nodes: HashMap<String, Instant>,
}

/// Streams in process memory (one signaling process).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        f(&mut g)
    }
}

impl StreamStore for MemoryStore {
    fn insert_stream(
        &self,
        rec: StreamRecord,
        max_per_channel: usize,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let r = self.with(|s| {
            let n = s
                .streams
                .values()
                .filter(|r| r.channel_id == rec.channel_id)
                .count();
            if n >= max_per_channel {
                return Err(StoreError::ChannelFull {
                    channel: rec.channel_id,
                    limit: max_per_channel,
                });
            }
            s.viewers.insert(rec.stream_id, HashSet::new());
            s.streams.insert(rec.stream_id, rec);
            Ok(())
        });
        Box::pin(async move { r })
    }

    fn get_stream(&self, id: Uuid) -> BoxFuture<'_, Result<Option<StreamRecord>, StoreError>> {
        let r = self.with(|s| Ok(s.streams.get(&id).cloned()));
        Box::pin(async move { r })
    }

    fn update_stream(&self, rec: StreamRecord) -> BoxFuture<'_, Result<bool, StoreError>> {
        let r = self.with(|s| match s.streams.get_mut(&rec.stream_id) {
            Some(old) => {
                *old = rec;
                Ok(true)
            }
            None => Ok(false),
        });
        Box::pin(async move { r })
    }

    fn remove_stream(&self, id: Uuid) -> BoxFuture<'_, Result<Option<StreamRecord>, StoreError>> {
        let r = self.with(|s| {
            s.viewers.remove(&id);
            Ok(s.streams.remove(&id))
        });
        Box::pin(async move { r })
    }

    fn channel_streams(
        &self,
        channel: Uuid,
    ) -> BoxFuture<'_, Result<Vec<StreamRecord>, StoreError>> {
        let r = self.with(|s| {
            Ok(s.streams
                .values()
                .filter(|r| r.channel_id == channel)
                .cloned()
                .collect())
        });
        Box::pin(async move { r })
    }

    fn user_streams(&self, user: String) -> BoxFuture<'_, Result<Vec<StreamRecord>, StoreError>> {
        let r = self.with(|s| {
            Ok(s.streams
                .values()
                .filter(|r| r.user_id == user)
                .cloned()
                .collect())
        });
        Box::pin(async move { r })
    }

    fn add_viewer(
        &self,
        stream: Uuid,
        session: Uuid,
        max: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        let r = self.with(|s| {
            let v = s
                .viewers
                .get_mut(&stream)
                .ok_or(StoreError::NoSuchStream(stream))?;
            if !v.contains(&session) && v.len() >= max {
                return Err(StoreError::ViewerLimit { stream, limit: max });
            }
            v.insert(session);
            Ok(v.len())
        });
        Box::pin(async move { r })
    }

    fn remove_viewer(
        &self,
        stream: Uuid,
        session: Uuid,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        let r = self.with(|s| {
            Ok(s.viewers
                .get_mut(&stream)
                .map(|v| {
                    v.remove(&session);
                    v.len()
                })
                .unwrap_or(0))
        });
        Box::pin(async move { r })
    }

    fn viewer_count(&self, stream: Uuid) -> BoxFuture<'_, Result<usize, StoreError>> {
        let r = self.with(|s| Ok(s.viewers.get(&stream).map_or(0, HashSet::len)));
        Box::pin(async move { r })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn heartbeat(&self, node: String, ttl: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        let r = self.with(|s| {
            s.nodes.insert(node, Instant::now() + ttl);
            Ok(())
        });
        Box::pin(async move { r })
    }

    fn node_alive(&self, node: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        let r = self.with(|s| Ok(s.nodes.get(&node).is_some_and(|d| *d > Instant::now())));
        Box::pin(async move { r })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Quality;

    pub(crate) fn record(channel: Uuid, user: &str) -> StreamRecord {
        StreamRecord {
            stream_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            channel_id: channel,
            user_id: user.into(),
            node_id: "n1".into(),
            node_url: "http://127.0.0.1:1".into(),
            quality: Quality {
                resolution: "1920x1080".into(),
                framerate: 30,
                bitrate: 2500,
                preset: "1080p".into(),
                max_bitrate_kbps: 2500,
                preferred_layer: "h".into(),
            },
            started_at: "1970-01-01T00:00:00.000Z".into(),
        }
    }

    #[tokio::test]
    async fn channel_limit_counts_only_that_channel() {
        let s = MemoryStore::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        s.insert_stream(record(a, "u1"), 2).await.expect("first");
        s.insert_stream(record(a, "u2"), 2).await.expect("second");
        assert!(matches!(
            s.insert_stream(record(a, "u3"), 2).await,
            Err(StoreError::ChannelFull { limit: 2, .. })
        ));
        s.insert_stream(record(b, "u3"), 2)
            .await
            .expect("other channel");
        assert_eq!(s.channel_streams(a).await.expect("ok").len(), 2);
        assert_eq!(s.user_streams("u3".into()).await.expect("ok").len(), 1);
    }

    #[tokio::test]
    async fn nodes_are_alive_until_their_heartbeat_expires() {
        let s = MemoryStore::default();
        assert_eq!(s.node_alive("n1".into()).await, Ok(false));
        s.heartbeat("n1".into(), Duration::from_millis(50))
            .await
            .expect("heartbeat");
        assert_eq!(s.node_alive("n1".into()).await, Ok(true));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(s.node_alive("n1".into()).await, Ok(false));
    }

    #[tokio::test]
    async fn viewer_limit_and_removal() {
        let s = MemoryStore::default();
        let rec = record(Uuid::new_v4(), "u");
        let id = rec.stream_id;
        s.insert_stream(rec, 5).await.expect("insert");
        let (v1, v2) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(s.add_viewer(id, v1, 1).await, Ok(1));
        assert_eq!(s.add_viewer(id, v1, 1).await, Ok(1), "idempotent");
        assert!(matches!(
            s.add_viewer(id, v2, 1).await,
            Err(StoreError::ViewerLimit { limit: 1, .. })
        ));
        assert_eq!(s.remove_viewer(id, v1).await, Ok(0));
        assert!(s.remove_stream(id).await.expect("ok").is_some());
        assert!(s.remove_stream(id).await.expect("ok").is_none());
        assert_eq!(
            s.add_viewer(id, v2, 1).await,
            Err(StoreError::NoSuchStream(id))
        );
    }
}
