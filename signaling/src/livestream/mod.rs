//! The livestream service (seed 001): one broadcaster per livestream, authenticated by its
//! stream key, publishes over Socket.IO signaling; viewers watch over Socket.IO (the server
//! makes the offer) or WHEP; chat with a per-user rate limit and moderation.
//!
//! ```text
//! POST /api/livestream/create                 a livestream and its stream key
//! GET  /api/livestream/active?limit&offset    live streams
//! GET  /api/livestream/{id}                   one livestream
//! POST /api/livestream/{id}/start | /end      go live / end (the key rotates)
//! POST /api/livestream/{id}/key               a new stream key
//! POST /api/livestream/{id}/join | /leave     a viewer joins (ICE servers) / leaves
//! GET  /api/livestream/{id}/analytics         peak viewers and every viewer's watch
//! GET|POST /api/livestream/{id}/chat          chat history / send
//! DELETE /api/livestream/{id}/chat/{msg}      moderation: delete a message
//! POST /api/livestream/{id}/mute, DELETE …/mute/{user}   moderation: (un)mute a user
//! POST /api/livestream/{id}/whep              WHEP viewer (+ session resource, SSE events)
//! /socket.io/                                 Socket.IO: stream:* and chat events
//! ```
//!
//! Livestreams, viewer rows and chat live in a [`store::LivestreamStore`] (SQLite under
//! `DATA_DIR`, or PostgreSQL with `DATABASE_URL`). Who watches right now, the media sessions
//! and the sockets are this process's (see [`presence`]).

mod arrival;
mod chat;
mod config;
mod handlers;
mod keys;
mod media;
pub mod presence;
pub mod rate_limit;
mod socket;
pub mod store;
mod whep;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use uuid::Uuid;

pub use config::LivestreamConfig;

use crate::auth::{AuthConfigError, AuthError, JwtVerifier};
use crate::problem::Problem;
use crate::service_metrics::inc;
use crate::state::AppState;
use crate::stream_service::{ApiError, IceServer, StreamConfig, ice_servers};
use presence::{Attachment, JoinPlan, Presence};
use rate_limit::RateLimiter;
use store::{Livestream, LivestreamStore, LivestreamStoreError, Status};

/// How often expired HTTP joins and unanswered offers are looked for.
const HOUSEKEEPING_TICK: Duration = Duration::from_secs(1);
/// Seconds a client should wait after a 503 from an unreachable database.
const DB_RETRY_AFTER_S: u32 = 2;

/// Why the livestream service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error("livestream database: {0}")]
    Store(#[from] LivestreamStoreError),
}

impl From<LivestreamStoreError> for ApiError {
    fn from(e: LivestreamStoreError) -> Self {
        match e {
            LivestreamStoreError::Unavailable(_) => {
                Problem::unavailable(e.to_string(), DB_RETRY_AFTER_S).into()
            }
            _ => Problem::internal(e.to_string()).into(),
        }
    }
}

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    /// Verified by a bearer token (always `false` without JWT configuration).
    pub authenticated: bool,
}

/// By what right a request acts on a livestream as its owner side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// Presented the current stream key.
    KeyHolder,
    /// The token's user created it.
    Owner,
    /// A user of `LIVESTREAM_ADMINS`.
    Admin,
}

impl Authority {
    /// The `reason` of `stream:ended` when a livestream is ended by this authority.
    pub fn end_reason(self) -> &'static str {
        match self {
            Authority::Admin => "moderator",
            Authority::KeyHolder | Authority::Owner => "broadcaster",
        }
    }
}

/// What a Socket.IO connection is, as far as the service knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct SocketInfo {
    pub caller: Option<Caller>,
    /// The livestream this socket broadcasts, once its key was accepted.
    pub broadcasting: Option<Uuid>,
    /// Livestreams this socket watches (`stream:join`).
    pub watching: HashSet<Uuid>,
}

/// The livestream service of one signaling process.
#[derive(Debug)]
pub struct LivestreamService {
    pub app: Arc<AppState>,
    pub cfg: LivestreamConfig,
    stream_cfg: StreamConfig,
    auth: Option<JwtVerifier>,
    pub store: Arc<dyn LivestreamStore>,
    /// Viewers now; held across the database calls of a join or leave so that both stay in step.
    presence: tokio::sync::Mutex<Presence>,
    chat_limiter: Mutex<RateLimiter<(Uuid, String)>>,
    /// Per livestream, chat messages are stored and broadcast one at a time: everyone sees the
    /// stored order.
    chat_order: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) media: Mutex<media::MediaSessions>,
    pub(crate) sockets: Mutex<HashMap<String, SocketInfo>>,
    pub(crate) events: whep::EventHub,
    pub io: SocketIo,
    /// `/socket.io/` (one engine.io service: its clones share the sessions).
    sio_router: Router,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `ms` (Unix milliseconds) in RFC 3339.
pub fn iso(ms: i64) -> String {
    crate::events::payload::rfc3339(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

impl LivestreamService {
    /// Opens the database (migrating it), closes viewer rows a previous run left open, and
    /// starts Socket.IO and the housekeeping.
    pub async fn start(app: Arc<AppState>) -> Result<Arc<Self>, StartError> {
        let cfg = app.cfg.livestream.clone();
        let stream_cfg = app.cfg.stream.clone();
        let auth = JwtVerifier::from_config(
            stream_cfg.jwt_secret.as_deref(),
            stream_cfg.jwt_public_key_file.as_deref(),
        )?;
        if auth.is_none() {
            tracing::warn!(
                "neither JWT_SECRET nor JWT_PUBLIC_KEY_FILE is set: /api/livestream/* is open (users are anonymous; stream keys still guard broadcasting)"
            );
        }
        let store = store::open(cfg.database_url.as_deref(), &cfg.data_dir).await?;
        let closed = store.close_open_viewers(None, now_ms()).await?;
        if closed > 0 {
            tracing::info!(
                rows = closed,
                "closed viewer rows left open by the previous run"
            );
        }
        let (sio_service, io) = SocketIo::builder().max_buffer_size(4096).build_svc();
        let sio_router = Router::new().route_service("/socket.io/", sio_service);
        let limiter = RateLimiter::new(
            cfg.chat_rate_limit,
            Duration::from_secs(cfg.chat_rate_window.max(1)),
        );
        tracing::info!(
            database = store.kind(),
            max_viewers = cfg.max_viewers,
            chat_limit = cfg.chat_rate_limit,
            chat_window_s = cfg.chat_rate_window,
            "livestream service ready"
        );
        let svc = Arc::new(LivestreamService {
            app,
            cfg,
            stream_cfg,
            auth,
            store,
            presence: tokio::sync::Mutex::new(Presence::default()),
            chat_limiter: Mutex::new(limiter),
            chat_order: Mutex::new(HashMap::new()),
            media: Mutex::new(media::MediaSessions::default()),
            sockets: Mutex::new(HashMap::new()),
            events: whep::EventHub::default(),
            io,
            sio_router,
        });
        socket::register(&svc);
        spawn_housekeeping(&svc);
        Ok(svc)
    }

    /// The caller of a request: the token's user when JWT is configured (401 without a valid
    /// token); otherwise `X-User-Id` or `anonymous`, unauthenticated.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.optional_caller(headers)?
            .ok_or_else(|| ApiError::from(Problem::unauthorized(AuthError::Missing.to_string())))
    }

    /// Like [`Self::caller`], but `None` when JWT is configured and no token was sent.
    pub fn optional_caller(&self, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
        match &self.auth {
            Some(auth) => {
                if !headers.contains_key(axum::http::header::AUTHORIZATION) {
                    return Ok(None);
                }
                let user = auth.authenticate(headers)?;
                Ok(Some(Caller {
                    user: user.0,
                    authenticated: true,
                }))
            }
            None => {
                let hint = headers
                    .get("x-user-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|u| valid_user_hint(u));
                Ok(Some(Caller {
                    user: hint.unwrap_or("anonymous").to_string(),
                    authenticated: false,
                }))
            }
        }
    }

    /// The caller of a Socket.IO message: the token of its handshake when JWT is configured,
    /// else its `userId` hint or `anonymous-<socket id>`.
    pub(crate) fn socket_caller(
        &self,
        token: Option<&str>,
        hint: Option<&str>,
        sid: &str,
    ) -> Result<Option<Caller>, AuthError> {
        match &self.auth {
            Some(auth) => match token {
                Some(t) => Ok(Some(Caller {
                    user: auth.verify(t)?.0,
                    authenticated: true,
                })),
                None => Ok(None),
            },
            None => Ok(Some(Caller {
                user: hint
                    .map(str::trim)
                    .filter(|u| valid_user_hint(u))
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("anonymous-{sid}")),
                authenticated: false,
            })),
        }
    }

    /// Whether JWT authentication is configured.
    pub fn auth_configured(&self) -> bool {
        self.auth.is_some()
    }

    /// Decides by what right a request acts on `ls` as its owner side: the stream key (from
    /// `key`), the owner's token, or an admin's token when `admin_ok`. 403 otherwise; 401 when
    /// JWT is configured and neither a key nor a token came.
    pub fn authorize(
        &self,
        ls: &Livestream,
        caller: Option<&Caller>,
        key: Option<&str>,
        admin_ok: bool,
    ) -> Result<Authority, ApiError> {
        if let Some(k) = key.filter(|k| !k.is_empty()) {
            return if keys::key_matches(k, &ls.stream_key_hash) {
                Ok(Authority::KeyHolder)
            } else {
                Err(ApiError::forbidden("wrong stream key"))
            };
        }
        match caller {
            Some(c) if c.authenticated && c.user == ls.owner_id => Ok(Authority::Owner),
            Some(c) if c.authenticated && admin_ok && self.is_admin(&c.user) => {
                Ok(Authority::Admin)
            }
            Some(c) if c.authenticated => Err(ApiError::forbidden(format!(
                "only the owner of livestream {} or its stream key may do this",
                ls.id
            ))),
            None if self.auth.is_some() => Err(ApiError::from(Problem::unauthorized(
                "send the stream key (X-Stream-Key) or the owner's bearer token",
            ))),
            _ => Err(ApiError::forbidden(
                "send the stream key (X-Stream-Key header or streamKey field)",
            )),
        }
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.cfg.admins.iter().any(|a| a.trim() == user)
    }

    /// Loads a livestream or answers 404.
    pub async fn load(&self, id: Uuid) -> Result<Livestream, ApiError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no livestream {id}")).into())
    }

    /// The ICE servers handed to livestream clients: `ICE_SERVERS`, `TURN_URL` (shared with the
    /// stream service) and `TURN_SERVER`.
    pub fn ice_servers(&self, user: &str) -> Vec<IceServer> {
        let mut out = ice_servers(
            &self.app.cfg,
            &self.stream_cfg,
            user,
            (now_ms() / 1000) as u64,
        );
        let turn: Vec<String> = self
            .cfg
            .turn_server
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if !turn.is_empty() {
            out.push(IceServer {
                urls: turn,
                username: self.stream_cfg.turn_username.clone(),
                credential: self.stream_cfg.turn_password.clone(),
            });
        }
        out
    }

    pub(crate) fn media_lock(&self) -> Result<MutexGuard<'_, media::MediaSessions>, ApiError> {
        self.media
            .lock()
            .map_err(|_| Problem::internal("livestream media lock poisoned").into())
    }

    /// Makes `user` a viewer of `ls` through `att` (or adds `att` to its viewing): opens its
    /// viewer row and raises the peak when it is a new viewer. 409 unless live; 429 at the
    /// viewer limit (the livestream's `maxViewers` when set, else `LIVESTREAM_MAX_VIEWERS`).
    /// Returns the viewer count.
    pub async fn join_viewer(
        &self,
        ls: &Livestream,
        user: &str,
        att: Attachment,
    ) -> Result<usize, ApiError> {
        if ls.status != Status::Live {
            return Err(Problem::conflict(format!(
                "livestream {} is not live ({})",
                ls.id,
                ls.status.as_str()
            ))
            .into());
        }
        let ttl = Duration::from_secs(self.cfg.join_ttl.max(1));
        let now = Instant::now();
        let limit = ls.viewer_limit(self.cfg.max_viewers);
        let mut p = self.presence.lock().await;
        let count = match p.plan_join(ls.id, user, limit) {
            JoinPlan::Full => {
                inc(&self.app.services.livestream.joins_refused_full);
                let source = if ls.max_viewers == Some(limit as i64) {
                    "maxViewers"
                } else {
                    "LIVESTREAM_MAX_VIEWERS"
                };
                return Err(ApiError::too_many(
                    format!(
                        "livestream {} is at its viewer limit of {limit} ({source})",
                        ls.id
                    ),
                    10,
                )
                .with("limit", json!(limit)));
            }
            JoinPlan::Existing => {
                if let Some(a) = p.attach(ls.id, user, att, now, ttl)
                    && let Some(client) = a.upgraded
                {
                    self.store.set_viewer_client(a.row, client).await?;
                }
                p.count(ls.id)
            }
            JoinPlan::New => {
                let row = self
                    .store
                    .open_viewer(ls.id, user.to_string(), att.client(), now_ms())
                    .await?;
                p.insert(ls.id, user, row, att, now, ttl);
                let count = p.count(ls.id);
                let peak = self.store.raise_peak(ls.id, count as i64).await?;
                tracing::info!(stream = %ls.id, user, viewers = count, peak, "viewer joined");
                count
            }
        };
        self.note_viewers(&p);
        drop(p);
        self.events.viewer_count(ls.id, count);
        Ok(count)
    }

    /// Removes one attachment of a viewer; closes its row when it was the last. Returns the
    /// viewer count after.
    pub async fn leave_viewer(&self, stream: Uuid, user: &str, att: &Attachment) -> usize {
        let mut p = self.presence.lock().await;
        let left = p.detach(stream, user, att);
        let count = p.count(stream);
        if let Some(row) = left {
            if let Err(e) = self.store.close_viewer(row, now_ms()).await {
                tracing::error!(%stream, user, error = %e, "viewer row not closed");
            }
            tracing::info!(%stream, user, viewers = count, "viewer left");
        }
        self.note_viewers(&p);
        drop(p);
        if left.is_some() {
            self.events.viewer_count(stream, count);
        }
        count
    }

    /// Removes a user from a livestream whatever it watches with: closes its row and its
    /// media. Returns whether it was a viewer.
    pub async fn remove_viewer(&self, stream: Uuid, user: &str) -> bool {
        let mut p = self.presence.lock().await;
        let Some((row, atts)) = p.remove_user(stream, user) else {
            return false;
        };
        let count = p.count(stream);
        if let Err(e) = self.store.close_viewer(row, now_ms()).await {
            tracing::error!(%stream, user, error = %e, "viewer row not closed");
        }
        self.note_viewers(&p);
        drop(p);
        for att in atts {
            match att {
                Attachment::Socket(sid) => self.end_socket_viewing(&sid, stream).await,
                Attachment::Whep(id) => {
                    self.end_media_session(sfu::SessionId(id), "left");
                }
                Attachment::Http => {}
            }
        }
        self.events.viewer_count(stream, count);
        true
    }

    /// Publishes the viewer total to `/metrics`.
    fn note_viewers(&self, p: &Presence) {
        let total = p.total() as u64;
        self.app
            .services
            .livestream
            .viewers
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }

    /// Viewers of a livestream on this node now.
    pub async fn viewer_count(&self, stream: Uuid) -> usize {
        self.presence.lock().await.count(stream)
    }

    /// Ends a livestream at once: status `ended` with a new key (returned), every media
    /// session closed, every viewer row closed, `stream:ended` to its sockets. 409 when it has
    /// ended already.
    pub async fn end_stream(
        &self,
        ls: &Livestream,
        recording_url: Option<String>,
        reason: &str,
    ) -> Result<String, ApiError> {
        let key = keys::new_key();
        if !self
            .store
            .end(ls.id, now_ms(), recording_url, keys::hash_key(&key))
            .await?
        {
            return Err(
                Problem::conflict(format!("livestream {} has ended already", ls.id)).into(),
            );
        }
        let viewers = {
            let mut p = self.presence.lock().await;
            let viewers = p.remove_stream(ls.id);
            self.note_viewers(&p);
            viewers
        };
        if let Err(e) = self.store.close_open_viewers(Some(ls.id), now_ms()).await {
            tracing::error!(stream = %ls.id, error = %e, "viewer rows not closed at the end");
        }
        self.teardown_media(ls.id);
        if let Ok(mut m) = self.chat_order.lock() {
            m.remove(&ls.id);
        }
        self.socket_stream_ended(ls.id, reason).await;
        self.events.viewer_count(ls.id, 0);
        self.events.ended(ls.id);
        tracing::info!(stream = %ls.id, reason, viewers = viewers.len(), "livestream ended; key rotated");
        Ok(key)
    }

    /// Closes HTTP joins whose TTL ran out.
    async fn expire_http_joins(&self) {
        let expired = {
            let p = self.presence.lock().await;
            p.expired_http(Instant::now())
        };
        for (stream, user) in expired {
            self.leave_viewer(stream, &user, &Attachment::Http).await;
        }
    }

    /// Stops: ends the media sessions and closes the open viewer rows (livestreams stay as
    /// they are; a broadcaster reconnects after a restart with the same key).
    pub async fn shutdown(&self) {
        if let Err(e) = self.store.close_open_viewers(None, now_ms()).await {
            tracing::warn!(error = %e, "viewer rows left open at shutdown");
        }
        self.teardown_all_media();
        self.io.close().await;
    }
}

/// User-id hints (without JWT): 1–128 printable characters.
fn valid_user_hint(u: &str) -> bool {
    !u.is_empty() && u.len() <= 128 && u.chars().all(|c| !c.is_control())
}

fn spawn_housekeeping(svc: &Arc<LivestreamService>) {
    let weak = Arc::downgrade(svc);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOUSEKEEPING_TICK);
        loop {
            tick.tick().await;
            let Some(svc) = weak.upgrade() else { return };
            svc.expire_http_joins().await;
            svc.expire_offers().await;
        }
    });
}

/// A JSON view of a livestream for clients (never the key or its hash).
pub fn livestream_json(ls: &Livestream, viewer_count: usize) -> Value {
    json!({
        "streamId": ls.id,
        "title": ls.title,
        "description": ls.description,
        "status": ls.status.as_str(),
        "ownerId": ls.owner_id,
        "recordingEnabled": ls.recording_enabled,
        "recordingUrl": ls.recording_url,
        "viewerCount": viewer_count,
        "maxViewers": ls.max_viewers,
        "peakViewers": ls.peak_viewers,
        "createdAt": iso(ls.created_at),
        "startedAt": ls.started_at.map(iso),
        "endedAt": ls.ended_at.map(iso),
    })
}

/// The media name of a livestream in the registry: not a valid WHIP/WHEP stream name, so
/// `/whip` and `/whep` cannot reach it.
pub(crate) fn media_name(stream: Uuid) -> String {
    format!("livestream/{stream}")
}

/// CORS of `/api/livestream/*` (the stream key and user headers of its clients allowed).
static CORS: crate::api::cors::Cors = crate::api::cors::Cors {
    expose: "Location, Link, ETag, Accept-Post, Accept-Patch, Retry-After",
    methods: "GET, POST, PATCH, DELETE, OPTIONS",
    headers: "Authorization, Content-Type, If-Match, X-Stream-Key, X-User-Id",
};

/// The routes of the livestream service, Socket.IO included.
pub fn router(svc: Arc<LivestreamService>) -> Router {
    // Socket.IO under the same open CORS: socket.io-client in a page of another origin starts
    // with HTTP long-polling (and preflights when it sends extra headers; engine.io does not
    // answer OPTIONS, so the preflight is answered here).
    let sio = svc
        .sio_router
        .clone()
        .layer(axum::middleware::from_fn(answer_preflight))
        .layer(axum::middleware::from_fn(|r, n| CORS.apply(r, n)));
    Router::new()
        .route(
            "/api/livestream/create",
            post(handlers::create).options(preflight),
        )
        .route(
            "/api/livestream/active",
            get(handlers::active).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}",
            get(handlers::get_one).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/start",
            post(handlers::start).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/end",
            post(handlers::end).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/key",
            post(handlers::rotate_key).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/join",
            post(handlers::join).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/leave",
            post(handlers::leave).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/analytics",
            get(handlers::analytics).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/chat",
            get(chat::history).post(chat::send).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/chat/{message_id}",
            delete(chat::delete_message).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/mute",
            post(chat::mute).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/mute/{user_id}",
            delete(chat::unmute).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/whep",
            post(whep::offer).options(whep::options),
        )
        .route(
            "/api/livestream/{stream_id}/whep/{session}",
            delete(whep::delete)
                .patch(whep::patch)
                .options(whep::options),
        )
        .route(
            "/api/livestream/{stream_id}/whep/{session}/sse",
            post(whep::sse_subscribe).options(preflight),
        )
        .route(
            "/api/livestream/{stream_id}/whep/{session}/sse/{events}",
            get(whep::sse_stream),
        )
        .method_not_allowed_fallback(crate::api::cors::method_not_allowed)
        .layer(axum::middleware::from_fn(|r, n| CORS.apply(r, n)))
        .with_state(svc)
        .merge(sio)
}

async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

/// `204` for a CORS preflight (`OPTIONS`); anything else goes on.
async fn answer_preflight(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if req.method() == axum::http::Method::OPTIONS {
        return axum::response::IntoResponse::into_response(axum::http::StatusCode::NO_CONTENT);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests;
