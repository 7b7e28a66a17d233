//! The event bus: subjects published and subscribed by the services (NATS subject syntax),
//! in process by default ([`InProcessBus`], tokio broadcast) or over NATS ([`NatsBus`]) when
//! `NATS_URL` is set. Payloads are JSON; [`payload`] has the stream service's.

mod in_process;
mod nats;
pub mod payload;
mod subject;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use in_process::InProcessBus;
pub use nats::NatsBus;
pub use subject::subject_matches;

/// A boxed, sendable future (what the object-safe traits of this crate return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Subjects of the stream service (seed 000) and the media server (seed 002).
pub mod subjects {
    pub const STREAM_STARTED: &str = "stream.started";
    pub const STREAM_STOPPED: &str = "stream.stopped";
    pub const STREAM_VIEWER_JOINED: &str = "stream.viewer.joined";
    pub const STREAM_VIEWER_LEFT: &str = "stream.viewer.left";
    pub const STREAM_QUALITY_CHANGED: &str = "stream.quality.changed";
    pub const VOICE_SESSION_ENDED: &str = "voice.session.ended";
    pub const CHANNEL_DELETED: &str = "channel.deleted";
    pub const MEDIA_SESSION_CREATED: &str = "media.session.created";
    pub const MEDIA_SESSION_CLOSED: &str = "media.session.closed";
    pub const MEDIA_TRACK_ADDED: &str = "media.track.added";
    pub const MEDIA_TRACK_REMOVED: &str = "media.track.removed";
    pub const MEDIA_QUALITY_DEGRADED: &str = "media.quality.degraded";
    pub const MEDIA_QUALITY_RESTORED: &str = "media.quality.restored";
}

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    pub subject: String,
    pub payload: Vec<u8>,
}

/// Why the bus refused an operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("invalid subject {0:?}")]
    InvalidSubject(String),
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

/// Messages of one subscription, in order. Ends when the bus is dropped.
#[derive(Debug)]
pub struct Subscription {
    rx: tokio::sync::mpsc::Receiver<BusMessage>,
}

impl Subscription {
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<BusMessage>) -> Self {
        Subscription { rx }
    }

    /// The next message, or `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<BusMessage> {
        self.rx.recv().await
    }
}

/// Publish/subscribe on subjects. Implementations reconnect by themselves; a publish while the
/// transport is down is either queued (NATS buffers while reconnecting) or refused with
/// [`BusError::Unavailable`].
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes `payload` on `subject` (no wildcards).
    fn publish(&self, subject: String, payload: Vec<u8>) -> BoxFuture<'_, Result<(), BusError>>;
    /// Subscribes to `subject`, which may use `*` (one token) and `>` (the rest).
    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BusError>>;
    /// `in-process` or `nats`.
    fn kind(&self) -> &'static str;
    /// Whether the transport is up right now.
    fn is_connected(&self) -> bool;
}

/// The bus for a configuration: NATS at `nats_url`, else in process.
pub async fn connect(nats_url: Option<&str>) -> Result<Arc<dyn EventBus>, BusError> {
    Ok(match nats_url.filter(|u| !u.trim().is_empty()) {
        Some(url) => Arc::new(NatsBus::connect(url).await?),
        None => Arc::new(InProcessBus::new()),
    })
}
