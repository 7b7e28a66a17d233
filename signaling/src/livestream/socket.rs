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

use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::socket::Sid;
use uuid::Uuid;

use super::arrival::{self, Arrival};
use super::presence::Attachment;
use super::store::Status;
use super::{Caller, LivestreamService, SocketInfo, keys, now_ms};
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

    /// A broadcaster's offer (`stream:offer`, or `stream:offer:viewer` from a socket that does
    /// not publish yet): checks the key, makes the livestream live, publishes, answers.
    async fn on_offer(
        &self,
        s: &SocketRef,
        d: &Value,
        viewer: Option<&str>,
    ) -> Result<Value, (Option<Uuid>, &'static str, ApiError)> {
        let sid = s.id.to_string();
        let key = str_field(d, "streamKey").or_else(|| str_field(d, "key"));
        let given_id = if d.get("streamId").is_some() || d.get("stream_id").is_some() {
            Some(stream_id(d).map_err(|e| (None, "bad_request", e))?)
        } else {
            None
        };
        let info = self.socket_info(&sid);
        let ls = match (given_id, key) {
            (Some(id), Some(k)) => {
                let ls = self
                    .load(id)
                    .await
                    .map_err(|e| (Some(id), "not_found", e))?;
                if !keys::key_matches(k, &ls.stream_key_hash) {
                    return Err((
                        Some(id),
                        "invalid_key",
                        ApiError::forbidden("wrong stream key"),
                    ));
                }
                ls
            }
            (None, Some(k)) => self
                .store
                .by_key_hash(keys::hash_key(k))
                .await
                .map_err(|e| (None, "unavailable", e.into()))?
                .ok_or_else(|| {
                    (
                        None,
                        "invalid_key",
                        ApiError::forbidden("no livestream has this stream key"),
                    )
                })?,
            (id, None) => match info.broadcasting.filter(|b| id.is_none_or(|i| i == *b)) {
                // A socket whose key was accepted earlier offers again.
                Some(b) => self.load(b).await.map_err(|e| (Some(b), "not_found", e))?,
                None => {
                    return Err((
                        id,
                        "invalid_key",
                        ApiError::forbidden("streamKey is required to broadcast"),
                    ));
                }
            },
        };
        let sdp = sdp_of(d, "offer", "offer")
            .or_else(|_| sdp_of(d, "sdp", "offer"))
            .map_err(|e| (Some(ls.id), "bad_request", e))?;
        if ls.status != Status::Live {
            self.store
                .start(ls.id, now_ms())
                .await
                .map_err(|e| (Some(ls.id), "unavailable", e.into()))?;
            tracing::info!(stream = %ls.id, "livestream live (broadcaster's offer)");
        }
        let user = info
            .caller
            .as_ref()
            .map(|c| c.user.clone())
            .unwrap_or_else(|| ls.owner_id.clone());
        let answer = self
            .publish(&ls, &sid, &user, sdp)
            .map_err(|e| (Some(ls.id), code_of_publish(&e), e))?;
        self.update_socket(&sid, |i| i.broadcasting = Some(ls.id));
        s.join(broadcaster_room(ls.id));
        let count = self.viewer_count(ls.id).await;
        let ack = json!({ "success": true, "streamId": ls.id, "viewerCount": count });
        let _ = s.emit("stream:offer:ack", &ack);
        let mut answered = json!({
            "streamId": ls.id,
            "answer": { "type": "answer", "sdp": answer },
        });
        if let Some(v) = viewer {
            answered["viewerId"] = json!(v);
        }
        let _ = s.emit("stream:answer:received", &answered);
        let id = self.media.lock().ok().and_then(|l| l.publisher_of(ls.id));
        if let Some(id) = id {
            self.send_candidates(s, ls.id, id);
        }
        Ok(json!({
            "success": true,
            "streamId": ls.id,
            "viewerCount": count,
            "answer": { "type": "answer", "sdp": answer },
        }))
    }

    /// `stream:join`: the socket's user becomes a viewer; the server's offer follows.
    async fn on_join(
        &self,
        s: &SocketRef,
        d: &Value,
    ) -> Result<Value, (Option<Uuid>, &'static str, ApiError)> {
        let sid = s.id.to_string();
        let stream = stream_id(d).map_err(|e| (None, code_of(&e), e))?;
        let caller = self
            .message_caller(&sid, d)
            .map_err(|e| (Some(stream), "unauthorized", e))?;
        let ls = self
            .load(stream)
            .await
            .map_err(|e| (Some(stream), "not_found", e))?;
        let count = self
            .join_viewer(&ls, &caller.user, Attachment::Socket(sid.clone()))
            .await
            .map_err(|e| {
                let code = match e.status().as_u16() {
                    409 => "not_live",
                    429 => "viewer_limit",
                    _ => code_of(&e),
                };
                (Some(stream), code, e)
            })?;
        let offer = match self.offer_viewer(&ls, &caller.user, &sid) {
            Ok(o) => o,
            Err(e) => {
                self.leave_viewer(stream, &caller.user, &Attachment::Socket(sid.clone()))
                    .await;
                return Err((Some(stream), code_of(&e), e));
            }
        };
        let newly = {
            let mut newly = false;
            self.update_socket(&sid, |i| newly = i.watching.insert(stream));
            newly
        };
        s.join(viewers_room(stream));
        let broadcasting = self
            .media
            .lock()
            .ok()
            .and_then(|l| l.publisher_of(stream))
            .is_some();
        let ack = json!({
            "success": true,
            "streamId": stream,
            "viewerId": sid,
            "userId": caller.user,
            "viewerCount": count,
            "broadcasting": broadcasting,
            "iceServers": self.ice_servers(&caller.user),
        });
        let _ = s.emit("stream:join:ack", &ack);
        let _ = s.emit(
            "stream:offer:received",
            &json!({
                "streamId": stream,
                "viewerId": sid,
                "offer": { "type": "offer", "sdp": offer },
            }),
        );
        if newly {
            let _ = self
                .io
                .to(broadcaster_room(stream))
                .emit(
                    "stream:viewer:joined",
                    &json!({
                        "streamId": stream,
                        "viewerId": sid,
                        "userId": caller.user,
                        "viewerCount": count,
                    }),
                )
                .await;
        }
        Ok(ack)
    }

    /// Ends what `sid` watches of `stream`: its media, its room, its attachment (the viewer
    /// leaves when it was its last); the broadcaster hears `stream:viewer:left`.
    pub(crate) async fn end_socket_viewing(&self, sid: &str, stream: Uuid) {
        let id = self
            .media
            .lock()
            .ok()
            .and_then(|l| l.socket_viewer(sid, stream));
        if let Some(id) = id {
            self.end_media_session(id, "left");
        }
        let mut was = false;
        self.update_socket(sid, |i| was = i.watching.remove(&stream));
        if let Ok(parsed) = sid.parse::<Sid>()
            && let Some(s) = self.io.get_socket(parsed)
        {
            s.leave(viewers_room(stream));
        }
        let Some(caller) = self.socket_info(sid).caller else {
            return;
        };
        let count = self
            .leave_viewer(stream, &caller.user, &Attachment::Socket(sid.to_string()))
            .await;
        if was {
            let _ = self
                .io
                .to(broadcaster_room(stream))
                .emit(
                    "stream:viewer:left",
                    &json!({
                        "streamId": stream,
                        "viewerId": sid,
                        "userId": caller.user,
                        "viewerCount": count,
                    }),
                )
                .await;
        }
    }

    /// Tells a livestream's sockets it ended (`stream:ended`) and forgets their viewing.
    pub(crate) async fn socket_stream_ended(&self, stream: Uuid, reason: &str) {
        let v = json!({ "streamId": stream, "reason": reason });
        // A socket in several of the rooms hears it once.
        let mut told = std::collections::HashSet::new();
        for s in self
            .io
            .to([
                viewers_room(stream),
                chat_room(stream),
                broadcaster_room(stream),
            ])
            .sockets()
        {
            if told.insert(s.id) {
                let _ = s.emit("stream:ended", &v);
            }
        }
        let _ = self
            .io
            .to(viewers_room(stream))
            .leave(viewers_room(stream))
            .await;
        if let Ok(mut m) = self.sockets.lock() {
            for info in m.values_mut() {
                info.watching.remove(&stream);
                if info.broadcasting == Some(stream) {
                    info.broadcasting = None;
                }
            }
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
pub(super) fn register(svc: &Arc<LivestreamService>) {
    let weak: Shared = Arc::downgrade(svc);
    svc.io.ns("/", move |s: SocketRef, auth: TryData<Value>| {
        let weak = weak.clone();
        async move {
            let Some(svc) = weak.upgrade() else { return };
            let auth = payload(auth);
            on_connect(&svc, &s, &auth);
            handlers(&weak, &s);
            identify_broadcaster(&svc, &s, &auth).await;
        }
    });
}

fn on_connect(svc: &LivestreamService, s: &SocketRef, auth: &Value) {
    let sid = s.id.to_string();
    let header_token = s
        .req_parts()
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let token = str_field(auth, "token")
        .map(str::to_string)
        .or(header_token);
    let hint = str_field(auth, "userId");
    let caller = match svc.socket_caller(token.as_deref(), hint, &sid) {
        Ok(c) => c,
        Err(e) => {
            let err = ApiError::from(e);
            let _ = s.emit("stream:error", &error_json(None, "unauthorized", &err));
            None
        }
    };
    tracing::debug!(socket = %sid, user = ?caller.as_ref().map(|c| &c.user), "socket connected");
    if let Ok(mut m) = svc.sockets.lock() {
        m.insert(
            sid.clone(),
            SocketInfo {
                caller,
                ..SocketInfo::default()
            },
        );
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

fn handlers(weak: &Shared, s: &SocketRef) {
    let w = weak.clone();
    s.on(
        "stream:offer",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                match svc.on_offer(&s, &payload(d), None).await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:offer:viewer",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let viewer = str_field(&d, "viewerId").map(str::to_string);
                // A publishing broadcaster offering again per viewer gets its publish answer.
                if let Some(b) = svc.socket_info(&sid).broadcasting
                    && let Some(answer) = svc.publisher_answer(&sid, b)
                {
                    let v = json!({
                        "streamId": b,
                        "viewerId": viewer,
                        "answer": { "type": "answer", "sdp": answer },
                    });
                    let _ = s.emit("stream:answer:received", &v);
                    let _ =
                        ack.send(&json!({ "success": true, "streamId": b, "viewerId": viewer }));
                    return;
                }
                match svc.on_offer(&s, &d, viewer.as_deref()).await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:ice-candidate",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(_svc) = w.upgrade() else { return };
                let d = payload(d);
                // ICE-lite: the peer's connectivity checks reveal its addresses; a candidate needs
                // no action, only a well-formed message.
                let ok = match d.get("candidate") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(_)) => true,
                    Some(Value::Object(o)) => o.get("candidate").is_none_or(|c| c.is_string()),
                    _ => false,
                };
                if ok {
                    let _ = ack.send(&json!({ "success": true }));
                } else {
                    let e = ApiError::from(Problem::bad_request(
                        "candidate must be an RTCIceCandidateInit or a string",
                    ));
                    fail(&s, ack, stream_id(&d).ok(), "bad_request", &e);
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:end",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let run = async {
                    let info = svc.socket_info(&sid);
                    let stream = match stream_id(&d) {
                        Ok(id) => id,
                        Err(e) => info.broadcasting.ok_or((None, "bad_request", e))?,
                    };
                    let ls = svc
                        .load(stream)
                        .await
                        .map_err(|e| (Some(stream), "not_found", e))?;
                    let key = str_field(&d, "streamKey");
                    let authorized = match key {
                        Some(k) => keys::key_matches(k, &ls.stream_key_hash),
                        None => info.broadcasting == Some(stream),
                    };
                    if !authorized {
                        let caller = info.caller.clone();
                        svc.authorize(&ls, caller.as_ref(), None, true)
                            .map_err(|e| (Some(stream), "forbidden", e))?;
                    }
                    let url = str_field(&d, "recordingUrl").map(str::to_string);
                    let new_key = svc
                        .end_stream(&ls, url, "broadcaster")
                        .await
                        .map_err(|e| (Some(stream), code_of(&e), e))?;
                    Ok::<Value, (Option<Uuid>, &'static str, ApiError)>(json!({
                        "success": true,
                        "streamId": stream,
                        "streamKey": new_key,
                    }))
                };
                match run.await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:join",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                match svc.on_join(&s, &payload(d)).await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:answer",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let run = || -> Result<Uuid, (Option<Uuid>, &'static str, ApiError)> {
                    let stream = stream_id(&d).map_err(|e| (None, "bad_request", e))?;
                    let sdp = sdp_of(&d, "answer", "answer")
                        .or_else(|_| sdp_of(&d, "sdp", "answer"))
                        .map_err(|e| (Some(stream), "bad_request", e))?;
                    svc.accept_viewer_answer(&sid, stream, sdp)
                        .map_err(|e| (Some(stream), code_of_publish(&e), e))?;
                    Ok(stream)
                };
                match run() {
                    Ok(stream) => {
                        let _ = ack.send(&json!({ "success": true, "streamId": stream }));
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:leave",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let streams: Vec<Uuid> = match stream_id(&d) {
                    Ok(id) => vec![id],
                    // Without a stream id: everything this socket watches.
                    Err(_) => svc.socket_info(&sid).watching.into_iter().collect(),
                };
                for stream in &streams {
                    svc.end_socket_viewing(&sid, *stream).await;
                }
                let _ = ack.send(&json!({ "success": true, "streams": streams }));
            }
        },
    );

    let w = weak.clone();
    s.on(
        "join-livestream",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let run = async {
                    let stream = stream_id(&d).map_err(|e| (None, code_of(&e), e))?;
                    svc.message_caller(&sid, &d)
                        .map_err(|e| (Some(stream), "unauthorized", e))?;
                    let ls = svc
                        .load(stream)
                        .await
                        .map_err(|e| (Some(stream), "not_found", e))?;
                    s.join(chat_room(ls.id));
                    Ok::<Value, (Option<Uuid>, &'static str, ApiError)>(json!({
                        "success": true,
                        "streamId": ls.id,
                        "status": ls.status.as_str(),
                    }))
                };
                match run.await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    s.on(
        "leave-livestream",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| async move {
            let d = payload(d);
            match stream_id(&d) {
                Ok(stream) => {
                    s.leave(chat_room(stream));
                    let _ = ack.send(&json!({ "success": true, "streamId": stream }));
                }
                Err(e) => fail(&s, ack, None, "bad_request", &e),
            }
        },
    );

    let w = weak.clone();
    s.on(
        "chat:message",
        move |arrived: Arrival, s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                // One sender's messages are stored and broadcast in the order it sent them.
                let _turn = arrival::wait_turn(&arrived).await;
                let d = payload(d);
                let sid = s.id.to_string();
                let run = async {
                    let stream = stream_id(&d).map_err(|e| (None, code_of(&e), e))?;
                    let caller = svc
                        .message_caller(&sid, &d)
                        .map_err(|e| (Some(stream), "unauthorized", e))?;
                    let text = d.get("message").and_then(Value::as_str).ok_or_else(|| {
                        (
                            Some(stream),
                            "bad_request",
                            ApiError::from(Problem::bad_request("message is required")),
                        )
                    })?;
                    let m = svc.post_chat(stream, &caller, text).await.map_err(|e| {
                        let code = match e.status().as_u16() {
                            429 => "rate_limited",
                            403 => "muted",
                            409 => "not_live",
                            _ => code_of(&e),
                        };
                        (Some(stream), code, e)
                    })?;
                    Ok::<Value, (Option<Uuid>, &'static str, ApiError)>(json!({
                        "success": true,
                        "message": super::chat::message_json(&m),
                    }))
                };
                match run.await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

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
