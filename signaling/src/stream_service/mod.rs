//! The stream service (seed 000): screen-share streams over the HTTP API `/stream/*`.
//!
//! ```text
//! POST  /stream/start                          start a stream (JWT user = sharer)
//! POST  /stream/{stream_id}/whip               the sharer publishes its media (WHIP, RFC 9725)
//! POST  /stream/watch                          a viewer gets the server's SDP offer
//! PUT   /stream/{stream_id}/sessions/{sid}     the viewer's SDP answer
//! PATCH /stream/{stream_id}/sessions/{sid}     trickle ICE (RFC 8840)
//! DELETE /stream/{stream_id}/sessions/{sid}    end a viewer (or the sharer's) session
//! PATCH /stream/{stream_id}/quality            change the quality settings
//! POST  /stream/stop                           stop a stream
//! GET   /stream/{stream_id}                    the stream's state
//! ```
//!
//! Streams live in a [`StreamStore`] (memory, or Redis shared by several processes); events go
//! to an [`EventBus`] (in process, or NATS). The media of a stream runs on the node that started
//! it; other nodes answer requests that need that media with 409 and the owner's URL.

mod config;
mod error;
mod handlers;
mod ice_servers;
mod lifecycle;
pub mod quality;
pub mod server_offer;
mod sessions;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, patch, post, put};
use serde::Serialize;
use sfu::{SessionId, StreamKey};
use uuid::Uuid;

pub use config::StreamConfig;
pub use error::ApiError;
pub use ice_servers::{IceServer, ice_servers, turn_rest_credential};

use crate::auth::{AuthConfigError, AuthError, JwtVerifier, UserId};
use crate::events::{BusError, EventBus};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{StoreError, StreamRecord, StreamStore};
use server_offer::ServerOffer;

/// Longest the service spends stopping its streams at shutdown.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(3);

/// Why the stream service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which side of a stream a local media session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRole {
    Sharer,
    Viewer,
}

/// Where a local media session is in its life.
#[derive(Debug, Clone)]
pub(crate) enum SessionState {
    /// A viewer's offer is out; the registry holds its place, the shard does not know it yet.
    Offered {
        offer: Box<ServerOffer>,
        key: StreamKey,
        since: Instant,
    },
    /// The shard runs it. `connected`: the shard reported ICE and DTLS done.
    Running {
        connected: bool,
        remote_ufrag: String,
    },
}

/// A media session of the stream service on this node.
#[derive(Debug, Clone)]
pub(crate) struct LocalSession {
    pub uuid: Uuid,
    pub stream_id: Uuid,
    pub channel_id: Uuid,
    pub user_id: String,
    /// The stream's sharer.
    pub owner: String,
    pub role: SessionRole,
    pub state: SessionState,
    pub etag: String,
}

#[derive(Debug, Default)]
pub(crate) struct Local {
    pub sessions: HashMap<SessionId, LocalSession>,
    pub by_uuid: HashMap<Uuid, SessionId>,
    /// Streams this node started and has not seen stop.
    pub owned: HashSet<Uuid>,
    /// The quality cap every viewer of a stream served here gets.
    pub caps: HashMap<Uuid, sfu::control::QualityCap>,
}

impl Local {
    pub fn insert(&mut self, id: SessionId, s: LocalSession) {
        self.by_uuid.insert(s.uuid, id);
        self.sessions.insert(id, s);
    }
    pub fn remove(&mut self, id: SessionId) -> Option<LocalSession> {
        let s = self.sessions.remove(&id)?;
        self.by_uuid.remove(&s.uuid);
        Some(s)
    }
    pub fn find(&self, uuid: Uuid) -> Option<(SessionId, &LocalSession)> {
        let id = *self.by_uuid.get(&uuid)?;
        self.sessions.get(&id).map(|s| (id, s))
    }
    pub fn of_stream(&self, stream: Uuid) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.stream_id == stream)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The stream service of one signaling process.
#[derive(Debug)]
pub struct StreamService {
    pub app: Arc<AppState>,
    pub cfg: StreamConfig,
    auth: Option<JwtVerifier>,
    pub bus: Arc<dyn EventBus>,
    pub store: Arc<dyn StreamStore>,
    pub node_id: String,
    pub node_url: String,
    pub(crate) local: Mutex<Local>,
}

impl StreamService {
    /// Connects the bus and the store, subscribes to the events the service acts on and starts
    /// its housekeeping. `node_url`: this node's base URL when `PUBLIC_URL` is not set.
    pub async fn start(app: Arc<AppState>, node_url: String) -> Result<Arc<Self>, StartError> {
        let cfg = app.cfg.stream.clone();
        let auth = JwtVerifier::from_config(
            cfg.jwt_secret.as_deref(),
            cfg.jwt_public_key_file.as_deref(),
        )?;
        if auth.is_none() {
            tracing::warn!(
                "neither JWT_SECRET nor JWT_PUBLIC_KEY_FILE is set: /stream/* answers 503 until one is"
            );
        }
        let bus = crate::events::connect(cfg.nats_url.as_deref()).await?;
        let store = crate::store::open(cfg.redis_url.as_deref())?;
        let node_id = cfg
            .node_id
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        let node_url = cfg
            .public_url
            .clone()
            .unwrap_or(node_url)
            .trim_end_matches('/')
            .to_string();
        tracing::info!(node = %node_id, url = %node_url, bus = bus.kind(), store = store.kind(), "stream service ready");
        let svc = Arc::new(StreamService {
            app,
            cfg,
            auth,
            bus,
            store,
            node_id,
            node_url,
            local: Mutex::new(Local::default()),
        });
        lifecycle::spawn_background(&svc).await?;
        Ok(svc)
    }

    /// The authenticated user of a request.
    pub(crate) fn user(&self, headers: &axum::http::HeaderMap) -> Result<UserId, ApiError> {
        let auth = self.auth.as_ref().ok_or_else(|| {
            ApiError::from(Problem::unavailable(
                "the stream service has no JWT_SECRET or JWT_PUBLIC_KEY_FILE configured",
                60,
            ))
        })?;
        auth.authenticate(headers).map_err(|e: AuthError| e.into())
    }

    /// How long this node's heartbeat lasts in the store.
    pub(crate) fn node_ttl(&self) -> Duration {
        Duration::from_secs(self.cfg.node_ttl.max(1))
    }

    /// The answer to a request that needs the media of a stream served by another node: go
    /// there (409) — or, when that node is gone, the stream is removed and no longer exists (404).
    pub(crate) async fn foreign(&self, rec: &StreamRecord) -> ApiError {
        if self.reap_orphans(vec![rec.clone()]).await > 0 {
            return Problem::not_found(format!(
                "stream {} ended: node {} that served it is gone",
                rec.stream_id, rec.node_id
            ))
            .into();
        }
        ApiError::elsewhere(rec.stream_id, &rec.node_id, &rec.node_url)
    }

    pub(crate) fn local(&self) -> Result<MutexGuard<'_, Local>, ApiError> {
        self.local
            .lock()
            .map_err(|_| Problem::internal("stream service lock poisoned").into())
    }

    /// Stops the streams this node serves (reason `shutdown`), so that a shared store does not
    /// keep streams whose media is gone. Bounded to a few seconds when the store is down.
    pub async fn shutdown(&self) {
        let owned: Vec<Uuid> = match self.local.lock() {
            Ok(l) => l.owned.iter().copied().collect(),
            Err(_) => return,
        };
        let stop_all = async {
            for id in owned {
                if let Err(e) = self.stop_stream(id, "shutdown").await {
                    tracing::warn!(stream = %id, error = %e, "stream left in the store at shutdown");
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_LIMIT, stop_all)
            .await
            .is_err()
        {
            tracing::warn!("gave up stopping streams at shutdown after {SHUTDOWN_LIMIT:?}");
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

/// The registry name of a stream's media: not a valid WHIP/WHEP stream name, so `/whip` and
/// `/whep` cannot reach it.
pub(crate) fn media_name(stream: Uuid) -> String {
    format!("stream/{stream}")
}

/// The routes of the stream service.
/// CORS of `/stream/*`, as for WHIP/WHEP, with `PUT` (the viewer's answer) allowed.
static CORS: crate::api::cors::Cors = crate::api::cors::Cors {
    expose: "Location, ETag, Accept-Post, Accept-Patch, Retry-After",
    methods: "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    headers: "Authorization, Content-Type, If-Match",
};

pub fn router(svc: Arc<StreamService>) -> Router {
    Router::new()
        .route("/stream/start", post(handlers::start).options(preflight))
        .route("/stream/stop", post(handlers::stop).options(preflight))
        .route("/stream/watch", post(handlers::watch).options(preflight))
        .route("/stream/status", get(handlers::status).options(preflight))
        .route(
            "/stream/{stream_id}",
            get(handlers::get_stream).options(preflight),
        )
        .route(
            "/stream/{stream_id}/quality",
            patch(handlers::quality).options(preflight),
        )
        .route(
            "/stream/{stream_id}/whip",
            post(sessions::whip).options(sessions::options),
        )
        .route(
            "/stream/{stream_id}/sessions/{session_id}",
            put(sessions::answer)
                .patch(sessions::trickle)
                .delete(sessions::delete)
                .options(sessions::options),
        )
        .method_not_allowed_fallback(crate::api::cors::method_not_allowed)
        .layer(axum::middleware::from_fn(|r, n| CORS.apply(r, n)))
        .with_state(svc)
}

/// `OPTIONS` on the JSON endpoints (CORS preflight).
async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}
