//! The media server (seed 002): media sessions over `/sessions/*` in mediasoup's ORTC model, so
//! that mediasoup-client works against it unchanged.
//!
//! ```text
//! GET    /sessions/rtp-capabilities        the router's RTP capabilities (Device.load)
//! POST   /sessions                         a session: a send and a receive transport
//! GET    /sessions/{id}                    the session, its transports and tracks
//! POST   /sessions/{id}/connect            a transport's DTLS parameters (Transport 'connect')
//! POST   /sessions/{id}/publish            a producer on the send transport (Transport 'produce')
//! POST   /sessions/{id}/subscribe          a consumer on the receive transport (Transport.consume)
//! DELETE /sessions/{id}/tracks/{track_id}  unpublish a producer or drop a consumer
//! GET    /sessions/{id}/stats              duration and per-track figures
//! DELETE /sessions/{id}                    close the session
//! POST   /channels/{id}/recording/start    start recording the channel (WebM per participant)
//! POST   /channels/{id}/recording/stop     stop it and store the files (MinIO / S3 / directory)
//! GET    /channels/{id}/recordings         the channel's recordings
//! GET    /recordings/{id}                  one recording, with download URLs
//! ```
//!
//! Each transport is one shard session: ICE-lite on the shard's UDP port, DTLS server (the
//! client takes the DTLS client role), started when the client connects it; producers and
//! consumers are added to the running session with [`sfu::control::TrackCommand`]. Every
//! producer is its own stream key; consumers subscribe to it (linked across shards when their
//! transports sit elsewhere). Both transports of a session, and the sessions of one channel, are
//! placed on the channel's shard while it has room.
//!
//! Auth, the event bus and the node identity are the stream service's (JWT bearer tokens,
//! NATS or in process); sessions are recorded in a [`store::MediaSessionStore`] (memory, or the
//! same Redis).

mod config;
mod consume;
mod handlers;
mod lifecycle;
mod mix;
pub mod payload;
pub mod presets;
mod produce;
mod recording;
mod recording_api;
pub mod router_caps;
pub mod rtp_types;
mod session;
mod speakers;
mod stats;
pub mod store;
mod tracks;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;

pub use config::{MediaServerConfig, RtcPortsError, check_rtc_ports};
pub use produce::ProduceError;
pub use session::{Direction, SessionType};

/// The registry's stream name of a channel's media server transports (they take a shard's
/// place there like any session, but publish nothing on that stream).
pub fn registry_stream(channel: uuid::Uuid) -> String {
    format!("{REGISTRY_PREFIX}{channel}")
}

/// Whether a registry stream name is a media server channel's (see [`registry_stream`]).
pub fn is_registry_stream(name: &str) -> bool {
    name.starts_with(REGISTRY_PREFIX)
}

const REGISTRY_PREFIX: &str = "media/";

use crate::auth::{AuthConfigError, JwtVerifier, UserId};
use crate::events::{BusError, EventBus};
use crate::problem::Problem;
use crate::state::AppState;
use crate::stream_service::{ApiError, StreamConfig, StreamService};
use rtp_types::RtpCapabilities;
use session::{Commands, Local};
use store::{MediaSessionStore, MediaStoreError};

/// Why the media server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("media session store: {0}")]
    Store(#[from] MediaStoreError),
    #[error("recording: {0}")]
    Recording(String),
}

/// Checks the recording settings (`ENABLE_RECORDING`, `RECORDING_STORAGE` and its
/// credentials) before anything starts, so that a server that cannot record says so first,
/// whatever else would fail after it.
pub fn check_recording_config(
    cfg: &MediaServerConfig,
    data_dir: &std::path::Path,
) -> Result<(), StartError> {
    recording::env_from_config(cfg, data_dir)
        .map(drop)
        .map_err(StartError::Recording)
}

/// The media server of one signaling process.
#[derive(Debug)]
pub struct MediaServer {
    pub app: Arc<AppState>,
    pub cfg: MediaServerConfig,
    stream_cfg: StreamConfig,
    auth: Option<JwtVerifier>,
    pub bus: Arc<dyn EventBus>,
    pub store: Arc<dyn MediaSessionStore>,
    pub node_id: String,
    pub node_url: String,
    router_caps: RtpCapabilities,
    pub(crate) local: Mutex<Local>,
    /// What recording needs; None when `ENABLE_RECORDING` is off.
    recording: Option<recording::RecordingEnv>,
    recordings: Mutex<recording::Recordings>,
    /// Held by whatever starts or ends recording parts (see `recording.rs`).
    recording_turn: tokio::sync::Mutex<()>,
}

impl MediaServer {
    /// Starts the media server beside the stream service, sharing its bus, JWT configuration and
    /// node identity; opens the session store, subscribes to the events it acts on and starts
    /// its housekeeping.
    pub async fn start(
        app: Arc<AppState>,
        streams: &StreamService,
    ) -> Result<Arc<Self>, StartError> {
        let cfg = app.cfg.media_server.clone();
        let stream_cfg = streams.cfg.clone();
        let auth = JwtVerifier::from_config(
            stream_cfg.jwt_secret.as_deref(),
            stream_cfg.jwt_public_key_file.as_deref(),
        )?;
        let store = store::open(stream_cfg.redis_url.as_deref())?;
        if let Err(e) = store.reset_node(streams.node_id.clone()).await {
            tracing::warn!(error = %e, "media sessions of this node's previous run not cleared");
        }
        let recording = recording::env_from_config(&cfg, &app.cfg.livestream.data_dir)
            .map_err(StartError::Recording)?;
        if let Some(env) = &recording {
            tracing::info!(storage = ?env.storage.location(), dir = %env.dir.display(), "recording enabled");
        }
        let router_caps = router_caps::router_capabilities(&app.capabilities);
        let ms = Arc::new(MediaServer {
            cfg,
            stream_cfg,
            auth,
            bus: Arc::clone(&streams.bus),
            store,
            node_id: streams.node_id.clone(),
            node_url: streams.node_url.clone(),
            router_caps,
            local: Mutex::new(Local::default()),
            recording,
            recordings: Mutex::new(recording::Recordings::default()),
            recording_turn: tokio::sync::Mutex::new(()),
            app,
        });
        lifecycle::spawn_background(&ms).await?;
        recording::spawn_reconcile(&ms);
        tracing::info!(
            store = ms.store.kind(),
            max_sessions = ms.cfg.max_sessions,
            "media server ready"
        );
        Ok(ms)
    }

    /// The authenticated user of a request.
    pub(crate) fn user(&self, headers: &axum::http::HeaderMap) -> Result<UserId, ApiError> {
        let auth = self.auth.as_ref().ok_or_else(|| {
            ApiError::from(Problem::unavailable(
                "the media server has no JWT_SECRET or JWT_PUBLIC_KEY_FILE configured",
                60,
            ))
        })?;
        auth.authenticate(headers).map_err(ApiError::from)
    }

    pub(crate) fn local(&self) -> Result<MutexGuard<'_, Local>, ApiError> {
        self.local
            .lock()
            .map_err(|_| Problem::internal("media server lock poisoned").into())
    }

    /// Sends shard commands in order.
    pub(crate) fn send(&self, cmds: Commands) {
        for (to, cmd) in cmds {
            self.app.media.send(to, cmd);
        }
    }

    /// Publishes an event; a bus failure is logged, never fails the caller.
    pub(crate) async fn emit<T: Serialize>(&self, subject: &str, payload: &T) {
        let bytes = match serde_json::to_vec(payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(subject, error = %e, "cannot serialise event");
                return;
            }
        };
        if let Err(e) = self.bus.publish(subject.to_string(), bytes).await {
            tracing::warn!(subject, error = %e, "event not published");
        }
    }
}

/// A store failure as a problem: 503 while it is unreachable, 429 at `MAX_SESSIONS`.
pub(crate) fn store_problem(e: MediaStoreError) -> ApiError {
    match e {
        MediaStoreError::Unavailable(_) => Problem::unavailable(e.to_string(), 2).into(),
        MediaStoreError::Full { limit } => {
            ApiError::too_many(e.to_string(), 5).with("limit", serde_json::json!(limit))
        }
        MediaStoreError::Corrupt(_) => Problem::internal(e.to_string()).into(),
    }
}

/// The routes of the media server.
/// CORS of `/sessions/*`.
static CORS: crate::api::cors::Cors = crate::api::cors::Cors {
    expose: "Location, Retry-After",
    methods: "GET, POST, DELETE, OPTIONS",
    headers: "Authorization, Content-Type",
};

pub fn router(ms: Arc<MediaServer>) -> Router {
    use axum::routing::delete;
    Router::new()
        .route(
            "/sessions/rtp-capabilities",
            get(handlers::rtp_capabilities).options(handlers::preflight),
        )
        .route(
            "/sessions",
            post(handlers::create).options(handlers::preflight),
        )
        .route(
            "/sessions/{session_id}",
            get(handlers::get_session)
                .delete(handlers::delete_session)
                .options(handlers::preflight),
        )
        .route(
            "/sessions/{session_id}/connect",
            post(handlers::connect).options(handlers::preflight),
        )
        .route(
            "/sessions/{session_id}/publish",
            post(tracks::publish).options(handlers::preflight),
        )
        .route(
            "/sessions/{session_id}/subscribe",
            post(tracks::subscribe).options(handlers::preflight),
        )
        .route(
            "/sessions/{session_id}/tracks/{track_id}",
            delete(tracks::delete_track).options(handlers::preflight),
        )
        .route(
            "/sessions/{session_id}/stats",
            get(stats::stats).options(handlers::preflight),
        )
        .route(
            "/channels/{channel_id}/recording/start",
            post(recording_api::start).options(handlers::preflight),
        )
        .route(
            "/channels/{channel_id}/recording/stop",
            post(recording_api::stop).options(handlers::preflight),
        )
        .route(
            "/channels/{channel_id}/recordings",
            get(recording_api::list).options(handlers::preflight),
        )
        .route(
            "/recordings/{recording_id}",
            get(recording_api::get).options(handlers::preflight),
        )
        .method_not_allowed_fallback(crate::api::cors::method_not_allowed)
        .layer(axum::middleware::from_fn(|r, n| CORS.apply(r, n)))
        .with_state(ms)
}
