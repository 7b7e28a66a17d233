//! The HTTP handlers of `/sessions/*` for sessions and transports: router capabilities, create,
//! read and delete sessions, connect transports; and what the track
//! handlers (`tracks.rs`) share.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sfu::dtls::Fingerprint;
use uuid::Uuid;

use super::payload::SessionCreated;
use super::presets::{AudioQuality, VideoQuality, video_encoding_hint};
use super::router_caps::kind_name;
use super::rtp_types::{
    DtlsFingerprint, DtlsParameters, IceCandidate, IceParameters, TransportOptions,
};
use super::session::{Direction, MediaSession, SessionType, Transport, TransportState};
use super::store::SessionRecord;
use super::{MediaServer, store_problem};
use crate::api::header_value;
use crate::events::payload::now_rfc3339;
use crate::events::subjects;
use crate::problem::Problem;
use crate::registry::Role;
use crate::session_spec;
use crate::stream_service::{ApiError, IceServer};

pub(super) type Ms = State<Arc<MediaServer>>;

/// Largest JSON body accepted (RTP capabilities of a browser are a few kilobytes).
const MAX_JSON: usize = 64 * 1024;

pub(super) fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Reads a JSON body into `T`; any failure is a 400/413/415 problem.
pub(super) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, ApiError> {
    crate::api::check_content_type(headers, "application/json")?;
    let bytes = crate::api::read_body(body, MAX_JSON).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")).into())
}

pub(super) fn parse_id(s: &str, what: &str) -> Result<Uuid, ApiError> {
    s.parse::<Uuid>()
        .map_err(|_| Problem::not_found(format!("{s:?} is not a {what} id")).into())
}

/// The media of a session lives on another node: go there.
pub(super) fn elsewhere(what: &str, node_id: &str, node_url: &str) -> ApiError {
    ApiError::from(Problem::conflict(format!(
        "{what} is served by node {node_id} at {node_url}: send this request there"
    )))
    .with("node_id", json!(node_id))
    .with("node_url", json!(node_url))
}

impl MediaServer {
    /// Finds a session of this node that `user` owns: 404 when unknown, 403 for another user's,
    /// 409 with the node for a session of another node.
    pub(crate) async fn find(&self, id: &str, user: &str) -> Result<Uuid, ApiError> {
        let id = parse_id(id, "session")?;
        {
            let local = self.local()?;
            if let Some(s) = local.sessions.get(&id) {
                if s.user_id != user {
                    return Err(ApiError::forbidden(format!(
                        "session {id} belongs to another user"
                    )));
                }
                return Ok(id);
            }
        }
        if let Some(c) = self.local()?.closed.get(&id) {
            if c.user_id != user {
                return Err(ApiError::forbidden(format!(
                    "session {id} belongs to another user"
                )));
            }
            return Err(ApiError::from(Problem::not_found(format!(
                "session {id} has closed ({})",
                c.reason
            )))
            .with("reason", json!(c.reason)));
        }
        match self.store.get_session(id).await.map_err(store_problem)? {
            Some(rec) if rec.user_id != user => Err(ApiError::forbidden(format!(
                "session {id} belongs to another user"
            ))),
            Some(rec) if rec.node_id != self.node_id => Err(elsewhere(
                &format!("session {id}"),
                &rec.node_id,
                &rec.node_url,
            )),
            _ => Err(Problem::not_found(format!("no session {id}")).into()),
        }
    }

    /// The server's DTLS parameters: its certificate, always the DTLS server.
    fn dtls_parameters(&self) -> DtlsParameters {
        let fp = &self.app.media.fingerprint;
        let text = fp.to_string();
        let value = text.split_once(' ').map_or(text.as_str(), |(_, v)| v);
        DtlsParameters {
            role: Some("server".into()),
            fingerprints: vec![DtlsFingerprint {
                algorithm: fp.algorithm.clone(),
                value: value.to_string(),
            }],
        }
    }

    fn transport_options(&self, t: &Transport) -> TransportOptions {
        TransportOptions {
            id: t.id.to_string(),
            ice_parameters: IceParameters {
                username_fragment: t.ice.ufrag.clone(),
                password: t.ice.pwd.clone(),
                ice_lite: true,
            },
            ice_candidates: t
                .candidates
                .iter()
                .map(|c| IceCandidate {
                    foundation: c.foundation.clone(),
                    priority: c.priority,
                    address: c.ip.to_string(),
                    ip: c.ip.to_string(),
                    protocol: "udp".into(),
                    port: c.port,
                    kind: "host".into(),
                })
                .collect(),
            dtls_parameters: self.dtls_parameters(),
        }
    }

    fn ice_servers(&self, user: &str) -> Vec<IceServer> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        crate::stream_service::ice_servers(&self.app.cfg, &self.stream_cfg, user, now)
    }

    /// The JSON of a session: the seed's fields, the transports, the tracks.
    fn session_json(&self, s: &MediaSession) -> Value {
        let producers: Vec<Value> = s
            .producers
            .iter()
            .map(|p| json!({ "id": p.id, "track_id": p.id, "kind": kind_name(p.kind()) }))
            .collect();
        let mut consumers: Vec<Value> = s
            .consumers
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "track_id": c.producer,
                    "producer_id": c.producer,
                    "kind": kind_name(c.kind()),
                    "rtp_parameters": c.rtp_parameters,
                })
            })
            .collect();
        // The channel's mix, when the session takes it (docs/api/media-server.md).
        if let Some(m) = &s.mix {
            consumers.push(json!({
                "id": m.id,
                "track_id": "mix",
                "producer_id": "mix",
                "kind": "audio",
                "rtp_parameters": m.rtp_parameters,
            }));
        }
        json!({
            "session_id": s.id,
            "type": s.kind,
            "channel_id": s.channel_id,
            "user_id": s.user_id,
            "ice_servers": self.ice_servers(&s.user_id),
            "dtls_parameters": self.dtls_parameters(),
            "router_rtp_capabilities": self.router_caps,
            "send_transport": self.transport_options(&s.send),
            "recv_transport": self.transport_options(&s.recv),
            "audio_quality": s.audio,
            "audio_codec_options": s.audio.codec_options(),
            "video_quality": s.video,
            "video_encoding": s.video.and_then(video_encoding_hint),
            "producers": producers,
            "consumers": consumers,
            "created_at": s.created_at,
            "duration": s.created.elapsed().as_secs(),
        })
    }
}

/// `OPTIONS` on the JSON endpoints (CORS preflight).
pub async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /sessions/rtp-capabilities`: what `device.load({ routerRtpCapabilities })` takes.
pub async fn rtp_capabilities(State(ms): Ms, headers: HeaderMap) -> Response {
    respond(
        async {
            ms.user(&headers)?;
            Ok(Json(json!(ms.router_caps)).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct CreateRequest {
    #[serde(rename = "type")]
    kind: SessionType,
    channel_id: Uuid,
    user_id: String,
    #[serde(default)]
    audio_quality: Option<AudioQuality>,
    #[serde(default)]
    video_quality: Option<VideoQuality>,
}

/// `POST /sessions`.
pub async fn create(State(ms): Ms, headers: HeaderMap, body: axum::body::Body) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            let req: CreateRequest = json_body(&headers, body).await?;
            if req.user_id != user.0 {
                return Err(ApiError::forbidden(format!(
                    "user_id {:?} is not the token's subject",
                    req.user_id
                )));
            }
            let id = Uuid::new_v4();
            let created_at = now_rfc3339();
            let rec = SessionRecord {
                session_id: id,
                kind: req.kind.name().into(),
                channel_id: req.channel_id,
                user_id: user.0.clone(),
                node_id: ms.node_id.clone(),
                node_url: ms.node_url.clone(),
                created_at: created_at.clone(),
            };
            ms.store
                .insert_session(rec.clone(), ms.cfg.max_sessions)
                .await
                .map_err(store_problem)?;
            let placed = ms.place_transports(req.channel_id);
            let (send, recv) = match placed {
                Ok(t) => t,
                Err(e) => {
                    let _ = ms.store.remove_session(rec).await;
                    return Err(e);
                }
            };
            let session = MediaSession {
                id,
                kind: req.kind,
                channel_id: req.channel_id,
                user_id: user.0.clone(),
                created: Instant::now(),
                created_at: created_at.clone(),
                audio: req.audio_quality.unwrap_or_default(),
                video: req.video_quality,
                send,
                recv,
                producers: Vec::new(),
                consumers: Vec::new(),
                next_mid: 0,
                rate_marks: HashMap::new(),
                mix: None,
            };
            let body = ms.session_json(&session);
            ms.local()?.insert(session);
            tracing::info!(session = %id, channel = %req.channel_id, user = %user, kind = req.kind.name(), "media session created");
            ms.emit(
                subjects::MEDIA_SESSION_CREATED,
                &SessionCreated {
                    session_id: id,
                    kind: req.kind.name().into(),
                    channel_id: req.channel_id,
                    user_id: user.0.clone(),
                    node_id: ms.node_id.clone(),
                    timestamp: created_at,
                },
            )
            .await;
            let mut resp = (StatusCode::CREATED, Json(body)).into_response();
            resp.headers_mut()
                .insert(header::LOCATION, header_value(&format!("/sessions/{id}")));
            Ok(resp)
        }
        .await,
    )
}

impl MediaServer {
    /// Places a session's two transports on a shard: the channel's, while it has room.
    fn place_transports(&self, channel: Uuid) -> Result<(Transport, Transport), ApiError> {
        let media = &self.app.media;
        let mut reg = self
            .app
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned"))?;
        let mut made = Vec::new();
        for _ in [Direction::Send, Direction::Recv] {
            let shard_session = sfu::SessionId(session_spec::random_id());
            let admitted = reg.admit(
                shard_session,
                &super::registry_stream(channel),
                Role::Viewer,
                String::new(),
                String::new(),
            );
            let adm = match admitted {
                Ok(a) => a,
                Err(p) => {
                    for t in &made {
                        let t: &Transport = t;
                        reg.remove(t.shard_session);
                    }
                    return Err(p.into());
                }
            };
            // A channel's sessions never publish on the registry's stream: no links to send.
            made.push(Transport {
                id: Uuid::new_v4(),
                shard_session,
                shard: adm.shard,
                ice: session_spec::local_ice(),
                candidates: session_spec::host_candidates(media, media.port(adm.shard)),
                state: TransportState::New,
            });
        }
        let recv = made.pop();
        let send = made.pop();
        match (send, recv) {
            (Some(s), Some(r)) => Ok((s, r)),
            _ => Err(Problem::internal("transport placement").into()),
        }
    }
}

/// `GET /sessions/{id}`.
pub async fn get_session(
    State(ms): Ms,
    Path(session_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            let id = ms.find(&session_id, &user.0).await?;
            let local = ms.local()?;
            let s = local
                .sessions
                .get(&id)
                .ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
            Ok(Json(ms.session_json(s)).into_response())
        }
        .await,
    )
}

/// `DELETE /sessions/{id}`.
pub async fn delete_session(
    State(ms): Ms,
    Path(session_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            // Closed by the server already (its transports ended first): the same answer.
            if let Ok(id) = session_id.parse::<Uuid>() {
                let closed = ms.local()?.closed.get(&id).cloned();
                if let Some(c) = closed.filter(|c| c.user_id == user.0) {
                    return Ok(Json(json!({
                        "session_id": id,
                        "status": "closed",
                        "reason": c.reason,
                        "duration": c.duration,
                    }))
                    .into_response());
                }
            }
            let id = ms.find(&session_id, &user.0).await?;
            let s = ms
                .close_session(id, "deleted")
                .await
                .ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
            Ok(Json(json!({
                "session_id": id,
                "status": "closed",
                "reason": "deleted",
                "duration": s.created.elapsed().as_secs(),
            }))
            .into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct ConnectRequest {
    #[serde(default, alias = "transportId")]
    transport_id: Option<Uuid>,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(alias = "dtlsParameters")]
    dtls_parameters: DtlsParameters,
}

/// The client's certificate fingerprint, the strongest hash it gave that the server checks.
fn client_fingerprint(p: &DtlsParameters) -> Result<Fingerprint, ApiError> {
    if p.role.as_deref() == Some("server") {
        return Err(Problem::unprocessable(
            "dtls_parameters.role is \"server\": this server is always the DTLS server, so the client must be \"client\" (or \"auto\")",
        )
        .into());
    }
    let rank = |a: &str| match a {
        "sha-256" => 0,
        "sha-384" => 1,
        "sha-512" => 2,
        _ => 3,
    };
    let mut fps: Vec<&DtlsFingerprint> = p.fingerprints.iter().collect();
    fps.sort_by_key(|f| rank(&f.algorithm.to_ascii_lowercase()));
    fps.iter()
        .find_map(|f| Fingerprint::parse(&format!("{} {}", f.algorithm, f.value)).ok())
        .ok_or_else(|| {
            Problem::unprocessable(
                "dtls_parameters.fingerprints has no usable fingerprint (sha-256, sha-384, sha-512 or sha-1, colon-separated hex)",
            )
            .into()
        })
}

/// `POST /sessions/{id}/connect`: a transport's DTLS parameters; the shard starts its session.
pub async fn connect(
    State(ms): Ms,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            let id = ms.find(&session_id, &user.0).await?;
            let req: ConnectRequest = json_body(&headers, body).await?;
            let fp = client_fingerprint(&req.dtls_parameters)?;
            let mut local = ms.local()?;
            let s = local
                .sessions
                .get(&id)
                .ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
            let direction = match (req.transport_id, req.direction) {
                (Some(t), _) => s.transport_by_id(t).ok_or_else(|| {
                    Problem::not_found(format!("session {id} has no transport {t}"))
                })?,
                (None, Some(d)) => d,
                (None, None) => {
                    return Err(Problem::bad_request(
                        "name the transport: transport_id, or direction \"send\" or \"recv\"",
                    )
                    .into());
                }
            };
            let transport_id = s.transport(direction).id;
            let cmds = local
                .connect(id, direction, fp)
                .map_err(|e| ApiError::from(Problem::conflict(e.to_string())))?;
            ms.send(cmds);
            tracing::info!(session = %id, ?direction, "transport connecting");
            Ok(Json(json!({
                "transport_id": transport_id,
                "direction": direction,
                "dtls_role": "server",
            }))
            .into_response())
        }
        .await,
    )
}
