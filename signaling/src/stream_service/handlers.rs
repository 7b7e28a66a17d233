//! `/stream/start`, `/stream/stop`, `/stream/watch`, `PATCH /stream/{id}/quality`,
//! `GET /stream/{id}` and `GET /stream/status`.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sfu::SessionId;
use uuid::Uuid;

use super::error::ApiError;
use super::quality::{resolve, stream_cap};
use super::server_offer::{OfferParams, write_offer};
use super::{LocalSession, SessionRole, SessionState, StreamService, ice_servers, media_name};
use crate::events::payload::{self, QualityChanged, StreamStarted};
use crate::events::subjects;
use crate::problem::Problem;
use crate::registry::Role;
use crate::session_spec;
use crate::store::{StoreError, StreamRecord};

/// Largest JSON body accepted.
const MAX_JSON: usize = 16 * 1024;

type Svc = State<Arc<StreamService>>;

/// Reads a JSON body into `T`; any failure is a 400/415 problem.
pub(crate) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, ApiError> {
    crate::api::check_content_type(headers, "application/json")?;
    let bytes = crate::api::read_body(body, MAX_JSON).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")).into())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Loads a stream or answers 404.
pub(crate) async fn load(svc: &StreamService, id: Uuid) -> Result<StreamRecord, ApiError> {
    svc.store
        .get_stream(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no stream {id}")).into())
}

fn quality_json(rec: &StreamRecord) -> Value {
    let q = &rec.quality;
    json!({
        "resolution": q.resolution,
        "framerate": q.framerate,
        "bitrate": q.bitrate,
        "preset": q.preset,
        "max_bitrate_kbps": q.max_bitrate_kbps,
        "preferred_layer": q.preferred_layer,
    })
}

#[derive(Deserialize)]
struct StartRequest {
    channel_id: Uuid,
    resolution: Option<String>,
    framerate: Option<u32>,
    bitrate: Option<u32>,
}

/// `POST /stream/start`.
pub async fn start(State(svc): Svc, headers: HeaderMap, body: axum::body::Body) -> Response {
    respond(
        async {
            let user = svc.user(&headers)?;
            let req: StartRequest = json_body(&headers, body).await?;
            let quality = resolve(
                req.resolution.as_deref(),
                req.framerate,
                req.bitrate,
                None,
            )
            .map_err(|e| Problem::bad_request(e.to_string()))?;
            let rec = StreamRecord {
                stream_id: Uuid::new_v4(),
                session_id: Uuid::new_v4(),
                channel_id: req.channel_id,
                user_id: user.0.clone(),
                node_id: svc.node_id.clone(),
                node_url: svc.node_url.clone(),
                quality,
                started_at: payload::now_rfc3339(),
            };
            let max = svc.cfg.max_streams_per_channel;
            match svc.store.insert_stream(rec.clone(), max).await {
                Err(StoreError::ChannelFull { .. }) => {
                    // Streams of nodes that died hold slots until someone notices.
                    let recs = svc.store.channel_streams(rec.channel_id).await?;
                    if svc.reap_orphans(recs).await == 0 {
                        return Err(StoreError::ChannelFull {
                            channel: rec.channel_id,
                            limit: max,
                        }
                        .into());
                    }
                    svc.store.insert_stream(rec.clone(), max).await?;
                }
                other => other?,
            }
            {
                let mut local = svc.local()?;
                local.owned.insert(rec.stream_id);
                local.caps.insert(rec.stream_id, stream_cap(&rec.quality));
            }
            tracing::info!(stream = %rec.stream_id, channel = %rec.channel_id, user = %user, "stream started");
            svc.emit(
                subjects::STREAM_STARTED,
                &StreamStarted {
                    stream_id: rec.stream_id,
                    session_id: rec.session_id,
                    channel_id: rec.channel_id,
                    user_id: rec.user_id.clone(),
                    resolution: rec.quality.resolution.clone(),
                    framerate: rec.quality.framerate,
                    bitrate: rec.quality.bitrate,
                    node_id: rec.node_id.clone(),
                    timestamp: rec.started_at.clone(),
                },
            )
            .await;
            let server_endpoint = svc.cfg.server_endpoint.clone().unwrap_or_else(|| {
                svc.node_url
                    .split("://")
                    .nth(1)
                    .unwrap_or(&svc.node_url)
                    .to_string()
            });
            let ice = ice_servers::ice_servers(&svc.app.cfg, &svc.cfg, &user.0, unix_now());
            Ok(Json(json!({
                "stream_id": rec.stream_id,
                "session_id": rec.session_id,
                "server_endpoint": server_endpoint,
                "ice_servers": ice,
                "whip_url": format!("/stream/{}/whip", rec.stream_id),
                "quality": quality_json(&rec),
            }))
            .into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct StreamIdRequest {
    stream_id: Uuid,
}

/// `POST /stream/stop`.
pub async fn stop(State(svc): Svc, headers: HeaderMap, body: axum::body::Body) -> Response {
    respond(
        async {
            let user = svc.user(&headers)?;
            let req: StreamIdRequest = json_body(&headers, body).await?;
            let rec = load(&svc, req.stream_id).await?;
            if rec.user_id != user.0 {
                return Err(ApiError::forbidden(format!(
                    "stream {} belongs to another user",
                    rec.stream_id
                )));
            }
            svc.stop_stream(rec.stream_id, "requested").await?;
            Ok(Json(json!({ "stream_id": rec.stream_id, "status": "stopped" })).into_response())
        }
        .await,
    )
}

/// `POST /stream/watch`: a viewer session with the server's SDP offer.
pub async fn watch(State(svc): Svc, headers: HeaderMap, body: axum::body::Body) -> Response {
    respond(
        async {
            let user = svc.user(&headers)?;
            let req: StreamIdRequest = json_body(&headers, body).await?;
            let rec = load(&svc, req.stream_id).await?;
            if rec.node_id != svc.node_id {
                return Err(svc.foreign(&rec).await);
            }
            let session = Uuid::new_v4();
            let count = svc
                .store
                .add_viewer(rec.stream_id, session, svc.cfg.max_viewers_per_stream)
                .await?;
            let offered = svc.offer_viewer(&rec, session, &user.0);
            let sdp_offer = match offered {
                Ok(sdp) => sdp,
                Err(e) => {
                    let _ = svc.store.remove_viewer(rec.stream_id, session).await;
                    return Err(e);
                }
            };
            tracing::info!(stream = %rec.stream_id, session = %session, viewer = %user, viewers = count, "viewer offered");
            let url = format!("/stream/{}/sessions/{session}", rec.stream_id);
            Ok(Json(json!({
                "session_id": session,
                "sdp_offer": sdp_offer,
                "ice_servers": ice_servers::ice_servers(&svc.app.cfg, &svc.cfg, &user.0, unix_now()),
                "answer_url": url,
                "session_url": url,
                "answer_timeout_s": svc.cfg.watch_answer_timeout,
            }))
            .into_response())
        }
        .await,
    )
}

impl StreamService {
    /// Places a viewer on a shard and writes the server's offer for it.
    fn offer_viewer(
        &self,
        rec: &StreamRecord,
        session: Uuid,
        user: &str,
    ) -> Result<String, ApiError> {
        let id = SessionId(session_spec::random_id());
        let etag = format!("\"{:016x}\"", session_spec::random_id());
        let ice = session_spec::local_ice();
        let media = &self.app.media;
        let (offer, key) = {
            let mut reg = self
                .app
                .registry
                .lock()
                .map_err(|_| Problem::internal("registry lock poisoned"))?;
            let adm = reg.admit(
                id,
                &media_name(rec.stream_id),
                Role::Viewer,
                etag.clone(),
                String::new(),
            )?;
            for (to, cmd) in adm.commands {
                media.send(to, cmd);
            }
            let candidates = session_spec::host_candidates(media, media.port(adm.shard));
            let cname = Uuid::new_v4().simple().to_string();
            let msid = rec.stream_id.to_string();
            let offer = write_offer(
                &self.app.capabilities,
                &OfferParams {
                    ice,
                    fingerprint: &media.fingerprint,
                    candidates: &candidates,
                    session_id: id.0 >> 1,
                    cname: &cname,
                    msid_stream: &msid,
                    ssrcs: std::array::from_fn(|_| random_ssrc()),
                },
            );
            (offer, adm.key)
        };
        let sdp = offer.sdp.clone();
        let mut local = self.local()?;
        local
            .caps
            .entry(rec.stream_id)
            .or_insert_with(|| stream_cap(&rec.quality));
        local.insert(
            id,
            LocalSession {
                uuid: session,
                stream_id: rec.stream_id,
                channel_id: rec.channel_id,
                user_id: user.to_string(),
                owner: rec.user_id.clone(),
                role: SessionRole::Viewer,
                state: SessionState::Offered {
                    offer: Box::new(offer),
                    key,
                    since: Instant::now(),
                },
                etag,
            },
        );
        Ok(sdp)
    }
}

fn random_ssrc() -> sfu::Ssrc {
    loop {
        let v: u32 = rand::random();
        if v != 0 {
            return sfu::Ssrc(v);
        }
    }
}

#[derive(Deserialize)]
struct QualityRequest {
    resolution: Option<String>,
    framerate: Option<u32>,
    bitrate: Option<u32>,
}

/// `PATCH /stream/{stream_id}/quality`.
pub async fn quality(
    State(svc): Svc,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let user = svc.user(&headers)?;
            let id = parse_id(&stream_id)?;
            let req: QualityRequest = json_body(&headers, body).await?;
            let mut rec = load(&svc, id).await?;
            if rec.user_id != user.0 {
                return Err(ApiError::forbidden(format!(
                    "stream {id} belongs to another user"
                )));
            }
            rec.quality = resolve(
                req.resolution.as_deref(),
                req.framerate,
                req.bitrate,
                Some(&rec.quality),
            )
            .map_err(|e| Problem::bad_request(e.to_string()))?;
            if !svc.store.update_stream(rec.clone()).await? {
                return Err(Problem::not_found(format!("no stream {id}")).into());
            }
            svc.apply_quality(rec.stream_id, &rec.quality);
            svc.emit(
                subjects::STREAM_QUALITY_CHANGED,
                &QualityChanged {
                    stream_id: rec.stream_id,
                    channel_id: rec.channel_id,
                    user_id: rec.user_id.clone(),
                    resolution: rec.quality.resolution.clone(),
                    framerate: rec.quality.framerate,
                    bitrate: rec.quality.bitrate,
                    preset: rec.quality.preset.clone(),
                    max_bitrate_kbps: rec.quality.max_bitrate_kbps,
                    preferred_layer: rec.quality.preferred_layer.clone(),
                    timestamp: payload::now_rfc3339(),
                },
            )
            .await;
            let mut out = quality_json(&rec);
            out["stream_id"] = json!(rec.stream_id);
            Ok(Json(out).into_response())
        }
        .await,
    )
}

impl StreamService {
    /// Applies a stream's quality to its viewers on this node: each gets the stream's cap
    /// (`Command::SetQuality`: its bit rate and the height of its resolution) now, and viewers
    /// that answer later get it when their session starts. Streams served by another node are
    /// left to that node, which hears of the change on the bus (`stream.quality.changed`).
    /// Returns whether the cap changed.
    pub(crate) fn apply_quality(&self, stream: Uuid, quality: &crate::store::Quality) -> bool {
        let cap = stream_cap(quality);
        let viewers: Vec<SessionId> = {
            let Ok(mut local) = self.local.lock() else {
                return false;
            };
            if !local.owned.contains(&stream) || local.caps.get(&stream) == Some(&cap) {
                return false;
            }
            local.caps.insert(stream, cap);
            local
                .of_stream(stream)
                .into_iter()
                .filter(|id| {
                    local.sessions.get(id).is_some_and(|s| {
                        s.role == SessionRole::Viewer
                            && matches!(s.state, SessionState::Running { .. })
                    })
                })
                .collect()
        };
        if let Ok(reg) = self.app.registry.lock() {
            for id in &viewers {
                if let Some(r) = reg.session(*id) {
                    self.app.media.send(
                        r.shard,
                        sfu::control::Command::SetQuality { session: *id, cap },
                    );
                }
            }
        }
        tracing::info!(
            %stream,
            preset = %quality.preset,
            max_kbps = quality.max_bitrate_kbps,
            resolution = %quality.resolution,
            viewers = viewers.len(),
            "stream quality applied to its viewers"
        );
        true
    }
}

pub(crate) fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    s.parse::<Uuid>()
        .map_err(|_| Problem::not_found(format!("{s:?} is not a stream or session id")).into())
}

/// `GET /stream/{stream_id}`: the stored state and viewer count (any authenticated user).
pub async fn get_stream(
    State(svc): Svc,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            svc.user(&headers)?;
            let id = parse_id(&stream_id)?;
            let rec = load(&svc, id).await?;
            let viewers = svc.store.viewer_count(id).await?;
            let mut body = json!({
                "stream_id": rec.stream_id,
                "session_id": rec.session_id,
                "channel_id": rec.channel_id,
                "user_id": rec.user_id,
                "node_id": rec.node_id,
                "node_url": rec.node_url,
                "started_at": rec.started_at,
                "viewer_count": viewers,
                "quality": quality_json(&rec),
            });
            if rec.node_id == svc.node_id {
                body["viewers"] = Value::Array(svc.viewer_records(id)?);
            }
            Ok(Json(body).into_response())
        }
        .await,
    )
}

impl StreamService {
    /// This node's viewer sessions of a stream, with their allocation figures (the fields of
    /// `GET /whep/{stream}/{session}/stats`), in session order.
    fn viewer_records(&self, stream: Uuid) -> Result<Vec<Value>, ApiError> {
        let local = self.local()?;
        let reg = self
            .app
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned"))?;
        let mut out: Vec<(Uuid, Value)> = local
            .of_stream(stream)
            .into_iter()
            .filter_map(|id| {
                let s = local.sessions.get(&id)?;
                if s.role != SessionRole::Viewer {
                    return None;
                }
                let state = match s.state {
                    SessionState::Offered { .. } => "offered",
                    SessionState::Running {
                        connected: false, ..
                    } => "connecting",
                    SessionState::Running {
                        connected: true, ..
                    } => "connected",
                };
                let mut v = serde_json::Map::new();
                v.insert("session_id".into(), json!(s.uuid));
                v.insert("user_id".into(), json!(s.user_id));
                v.insert("state".into(), json!(state));
                if let Some(r) = reg.session(id) {
                    v.extend(crate::api::stats::allocation_json(r));
                    // The stream's quality applies, not a WHEP preset.
                    v.remove("quality");
                }
                Some((s.uuid, Value::Object(v)))
            })
            .collect();
        out.sort_by_key(|(u, _)| *u);
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }
}

/// `GET /stream/status`: this node, its store and bus (no auth; 503 when the store is down).
pub async fn status(State(svc): Svc) -> Response {
    let store = svc.store.ping().await;
    let body = json!({
        "node_id": svc.node_id,
        "node_url": svc.node_url,
        "store": { "kind": svc.store.kind(), "ok": store.is_ok(), "error": store.as_ref().err().map(|e| e.to_string()) },
        "bus": { "kind": svc.bus.kind(), "connected": svc.bus.is_connected() },
    });
    let code = if store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}
