//! Socket.IO signaling of the livestream service (socketioxide on `/socket.io/`, namespace
//! `/`), with the seed's event names. Unmodified socket.io clients (JavaScript, Python) work.
//!
//! Broadcaster: `stream:offer` `{streamId?, streamKey, offer}` publishes (the livestream goes
//! live) and is answered with `stream:offer:ack` and `stream:answer:received` `{answer}`;
//! `stream:offer:viewer` `{viewerId, offer}` from peer-to-peer-model clients publishes the same
//! way (or gets the publish answer again); `stream:end`; `stream:viewer:joined` and
//! `stream:viewer:left` arrive as viewers come and go.
//!
//! Viewer: `stream:join` `{streamId}` → `stream:join:ack` and the server's offer as
//! `stream:offer:received` `{offer}`, answered with `stream:answer` `{streamId, answer}`;
//! `stream:leave`; `stream:ended` when the livestream ends; `stream:error` for every refusal.
//!
//! Both: `stream:ice-candidate` (accepted; Ringcast is ICE-lite and learns addresses from the
//! checks) and `stream:ice-candidate:received` (the server's candidates).
//!
//! Chat: `join-livestream` / `leave-livestream` `{streamId}` (or the id as a string) enter and
//! leave the chat room; `chat:message` `{streamId, message}` sends; every stored message goes
//! to the room as `chat:message` `{id, userId, message, timestamp}`.
//!
//! Every event accepts an acknowledgement callback; it gets `{success: true, …}` or
//! `{success: false, error, code, status}`.

mod broadcaster;
mod chat;
mod viewer;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::Sid;
use uuid::Uuid;

use super::arrival::{self, Arrival};
use super::presence::Attachment;
use super::store::Status;
use super::{Authority, Caller, LivestreamService, SocketInfo, keys, now_ms};
use crate::problem::Problem;
use crate::stream_service::ApiError;

/// The chat room of a livestream.
pub fn chat_room(stream: Uuid) -> String {
    format!("chat:{stream}")
}

/// The room of a livestream's Socket.IO viewers.
pub fn viewers_room(stream: Uuid) -> String {
    format!("viewers:{stream}")
}

/// The room of a livestream's broadcaster socket(s).
pub fn broadcaster_room(stream: Uuid) -> String {
    format!("broadcaster:{stream}")
}

/// Emits to one socket by id (nothing when it is gone).
pub fn emit_to(io: &SocketIo, sid: &str, event: &str, data: &Value) {
    if let Ok(sid) = sid.parse::<Sid>()
        && let Some(s) = io.get_socket(sid)
    {
        let _ = s.emit(event, data);
    }
}

/// A socket-facing error: `{code, message, status}` plus the problem's extension members.
fn error_json(stream: Option<Uuid>, code: &str, e: &ApiError) -> Value {
    let mut v = json!({
        "success": false,
        "code": code,
        "error": e.problem.detail,
        "message": e.problem.detail,
        "status": e.status().as_u16(),
    });
    if let Some(s) = stream {
        v["streamId"] = json!(s);
    }
    for (k, x) in &e.extra {
        v[k] = x.clone();
    }
    v
}

/// The default error code of a status.
fn code_of(e: &ApiError) -> &'static str {
    match e.status().as_u16() {
        400 | 413 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        422 => "unprocessable",
        429 => "too_many_requests",
        503 => "unavailable",
        _ => "internal",
    }
}

/// Sends `stream:error` and the negative acknowledgement.
fn fail(s: &SocketRef, ack: AckSender, stream: Option<Uuid>, code: &str, e: &ApiError) {
    let v = error_json(stream, code, e);
    tracing::debug!(socket = %s.id, code, error = %e.problem.detail, "socket request refused");
    let _ = s.emit("stream:error", &v);
    let _ = ack.send(&v);
}

/// `streamId` of a payload: the `streamId` (or `stream_id`) field, or the payload itself when
/// it is a string.
fn stream_id(d: &Value) -> Result<Uuid, ApiError> {
    let raw = match d {
        Value::String(s) => Some(s.as_str()),
        Value::Object(_) => d
            .get("streamId")
            .or_else(|| d.get("stream_id"))
            .and_then(Value::as_str),
        _ => None,
    };
    let raw = raw.ok_or_else(|| ApiError::from(Problem::bad_request("streamId is required")))?;
    raw.trim()
        .parse::<Uuid>()
        .map_err(|_| Problem::not_found(format!("{raw:?} is not a livestream id")).into())
}

fn str_field<'a>(d: &'a Value, name: &str) -> Option<&'a str> {
    d.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The SDP of a description field: `{type, sdp}` (an `RTCSessionDescriptionInit`) or a string.
fn sdp_of<'a>(d: &'a Value, field: &str, want_type: &str) -> Result<&'a str, ApiError> {
    let v = d
        .get(field)
        .ok_or_else(|| ApiError::from(Problem::bad_request(format!("{field} is required"))))?;
    match v {
        Value::String(s) => Ok(s),
        Value::Object(o) => {
            if let Some(t) = o.get("type").and_then(Value::as_str)
                && t != want_type
            {
                return Err(Problem::bad_request(format!(
                    "{field}.type is {t:?}, expected {want_type:?}"
                ))
                .into());
            }
            o.get("sdp").and_then(Value::as_str).ok_or_else(|| {
                ApiError::from(Problem::bad_request(format!("{field}.sdp is required")))
            })
        }
        _ => Err(Problem::bad_request(format!("{field} must be {{type, sdp}}")).into()),
    }
}

fn payload(d: TryData<Value>) -> Value {
    d.0.unwrap_or(Value::Null)
}

impl LivestreamService {
    fn socket_info(&self, sid: &str) -> SocketInfo {
        self.sockets
            .lock()
            .ok()
            .and_then(|m| m.get(sid).cloned())
            .unwrap_or_default()
    }

    fn update_socket(&self, sid: &str, f: impl FnOnce(&mut SocketInfo)) {
        if let Ok(mut m) = self.sockets.lock()
            && let Some(info) = m.get_mut(sid)
        {
            f(info);
        }
    }

    /// The caller of a socket's message: its handshake identity, or a `token` in the payload.
    fn message_caller(&self, sid: &str, d: &Value) -> Result<Caller, ApiError> {
        if let Some(t) = str_field(d, "token") {
            return match self.socket_caller(Some(t), None, sid) {
                Ok(Some(c)) => Ok(c),
                Ok(None) => Err(Problem::unauthorized("missing bearer token").into()),
                Err(e) => Err(e.into()),
            };
        }
        self.socket_info(sid).caller.ok_or_else(|| {
            ApiError::from(Problem::unauthorized(
                "this connection has no valid token: connect with auth {token: <JWT>}",
            ))
        })
    }

    /// Tells a livestream's broadcaster that a viewer joined or left (`event`):
    /// `{streamId, viewerId, userId, viewerCount, client}`.
    pub(crate) async fn announce(
        &self,
        stream: Uuid,
        event: &str,
        viewer_id: &str,
        user: &str,
        count: usize,
        client: &str,
    ) {
        let _ = self
            .io
            .to(broadcaster_room(stream))
            .emit(
                event,
                &json!({
                    "streamId": stream,
                    "viewerId": viewer_id,
                    "userId": user,
                    "viewerCount": count,
                    "client": client,
                }),
            )
            .await;
    }

    /// `stream:ice-candidate:received` with the server's candidates for session `id`.
    fn send_candidates(&self, s: &SocketRef, stream: Uuid, id: sfu::SessionId) {
        let port = match self.app.registry.lock() {
            Ok(reg) => match reg.session(id) {
                Some(r) => self.app.media.port(r.shard),
                None => return,
            },
            Err(_) => return,
        };
        for c in crate::session_spec::host_candidates(&self.app.media, port) {
            let _ = s.emit(
                "stream:ice-candidate:received",
                &json!({
                    "streamId": stream,
                    "candidate": {
                        "candidate": format!("candidate:{c}"),
                        "sdpMid": "0",
                        "sdpMLineIndex": 0,
                    },
                }),
            );
        }
    }

    /// Everything a socket held, when it disconnects.
    async fn on_disconnect(&self, sid: &str) {
        let info = self.socket_info(sid);
        for stream in info.watching.iter().copied() {
            self.end_socket_viewing(sid, stream).await;
        }
        let left: Vec<sfu::SessionId> = self
            .media
            .lock()
            .map(|l| l.of_socket(sid))
            .unwrap_or_default();
        for id in left {
            self.end_media_session(id, "socket_closed");
        }
        if let Ok(mut m) = self.sockets.lock() {
            m.remove(sid);
            self.app
                .services
                .livestream
                .sockets
                .store(m.len() as u64, Ordering::Relaxed);
        }
    }
}

fn code_of_publish(e: &ApiError) -> &'static str {
    match e.status().as_u16() {
        400 | 413 => "invalid_offer",
        422 => "unsupported_offer",
        503 => "unavailable",
        _ => code_of(e),
    }
}

type Shared = Weak<LivestreamService>;

/// Registers the namespace and its event handlers.
///
/// socketioxide sends the client its `CONNECT` before it spawns the (async) connect handler, so
/// a client that emits at once could be heard before that handler ran: its event would find no
/// handler and be dropped, or no identity. The event handlers and the socket's identity are
/// therefore set up in a connect middleware, which runs before `CONNECT` is sent; the connect
/// handler only does what needs the connection (events to the client, the key lookup).
pub(super) fn register(svc: &Arc<LivestreamService>) {
    let weak: Shared = Arc::downgrade(svc);
    let w = weak.clone();
    let prepare = move |s: SocketRef, auth: TryData<Value>| {
        let weak = w.clone();
        async move {
            if let Some(svc) = weak.upgrade() {
                on_connect(&svc, &s, &payload(auth));
                broadcaster::register(&weak, &s);
                viewer::register(&weak, &s);
                chat::register(&weak, &s);
                register_disconnect(&weak, &s);
            }
            Ok::<(), std::convert::Infallible>(())
        }
    };
    let connected = move |s: SocketRef, auth: TryData<Value>| {
        let weak = weak.clone();
        async move {
            let Some(svc) = weak.upgrade() else { return };
            let auth = payload(auth);
            if let Some(token) = handshake_token(&s, &auth)
                && let Err(e) = svc.socket_caller(Some(&token), None, &s.id.to_string())
            {
                let err = ApiError::from(e);
                let _ = s.emit("stream:error", &error_json(None, "unauthorized", &err));
            }
            identify_broadcaster(&svc, &s, &auth).await;
        }
    };
    svc.io.ns("/", connected.with(prepare));
}

/// The bearer token of a handshake: `auth.token`, else an `Authorization: Bearer` header.
fn handshake_token(s: &SocketRef, auth: &Value) -> Option<String> {
    let header_token = s
        .req_parts()
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    str_field(auth, "token")
        .map(str::to_string)
        .or(header_token)
}

/// Records who the socket is (a bad token leaves it without a caller; the connect handler
/// tells it why).
fn on_connect(svc: &LivestreamService, s: &SocketRef, auth: &Value) {
    let sid = s.id.to_string();
    let token = handshake_token(s, auth);
    let hint = str_field(auth, "userId");
    let caller = svc
        .socket_caller(token.as_deref(), hint, &sid)
        .ok()
        .flatten();
    tracing::debug!(socket = %sid, user = ?caller.as_ref().map(|c| &c.user), "socket connected");
    if let Ok(mut m) = svc.sockets.lock() {
        m.insert(
            sid.clone(),
            SocketInfo {
                caller,
                ..SocketInfo::default()
            },
        );
        svc.app
            .services
            .livestream
            .sockets
            .store(m.len() as u64, Ordering::Relaxed);
    }
}

/// A broadcaster may name its stream key at connect (peer-to-peer-model clients offer only per
/// viewer, after `stream:viewer:joined`).
async fn identify_broadcaster(svc: &LivestreamService, s: &SocketRef, auth: &Value) {
    let sid = s.id.to_string();
    if let Some(key) = str_field(auth, "streamKey") {
        let named = str_field(auth, "streamId").map(|i| i.parse::<Uuid>());
        let found = svc
            .store
            .by_key_hash(keys::hash_key(key))
            .await
            .ok()
            .flatten()
            .filter(|ls| {
                named
                    .as_ref()
                    .is_none_or(|n| n.as_ref().ok() == Some(&ls.id))
            });
        match found {
            Some(ls) => {
                svc.update_socket(&sid, |i| i.broadcasting = Some(ls.id));
                s.join(broadcaster_room(ls.id));
                tracing::info!(socket = %sid, stream = %ls.id, "broadcaster identified by its key");
            }
            None => {
                let e = ApiError::forbidden("no livestream has this stream key");
                let _ = s.emit("stream:error", &error_json(None, "invalid_key", &e));
            }
        }
    }
}

/// Releases what a socket held when it disconnects.
fn register_disconnect(weak: &Shared, s: &SocketRef) {
    let w = weak.clone();
    s.on_disconnect(move |s: SocketRef| {
        let w = w.clone();
        async move {
            let Some(svc) = w.upgrade() else { return };
            svc.on_disconnect(&s.id.to_string()).await;
            arrival::forget(&s.id.to_string());
        }
    });
}
