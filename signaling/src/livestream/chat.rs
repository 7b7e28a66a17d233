//! Livestream chat: history and sending over HTTP (Socket.IO clients send with `chat:message`
//! too), every stored message broadcast as `chat:message` to the stream's chat room in the
//! stored order; a per-user rate limit; moderation (delete a message, mute a user).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::handlers::{Svc, json_body, parse_id, respond, stream_key};
use super::store::{ChatMessage, Mute, Status};
use super::{Caller, LivestreamService, iso, now_ms, socket};
use crate::problem::Problem;
use crate::service_metrics::inc;
use crate::stream_service::ApiError;

/// Default and largest page of the history.
const DEFAULT_HISTORY: i64 = 50;
const MAX_HISTORY: i64 = 200;

/// The JSON of a chat message, as `chat:message` carries it.
pub fn message_json(m: &ChatMessage) -> Value {
    json!({
        "id": m.id,
        "streamId": m.stream_id,
        "userId": m.user_id,
        "message": m.message,
        "timestamp": iso(m.created_at),
        "seq": m.seq,
    })
}

impl LivestreamService {
    /// Stores `text` from `caller` in the chat of `stream` and broadcasts it. Refused: 409 when
    /// the stream is not live, 400 for an empty or too long message, 403 when the caller is
    /// muted, 429 (with `retryAfterMs`) past the rate limit.
    pub async fn post_chat(
        &self,
        stream: Uuid,
        caller: &Caller,
        text: &str,
    ) -> Result<ChatMessage, ApiError> {
        let ls = self.load(stream).await?;
        if ls.status != Status::Live {
            return Err(Problem::conflict(format!(
                "livestream {stream} is not live: its chat is closed"
            ))
            .into());
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(Problem::bad_request("message is empty").into());
        }
        let max = self.cfg.chat_max_length;
        if text.chars().count() > max {
            return Err(ApiError::from(Problem::bad_request(format!(
                "message is longer than {max} characters (CHAT_MAX_LENGTH)"
            )))
            .with("maxLength", json!(max)));
        }
        let now = now_ms();
        if let Some(m) = self.store.mute_of(stream, caller.user.clone()).await?
            && m.active(now)
        {
            inc(&self.app.services.livestream.chat_muted);
            return Err(ApiError::forbidden(match m.until {
                Some(u) => format!("you are muted in this chat until {}", iso(u)),
                None => "you are muted in this chat".to_string(),
            })
            .with("mutedUntil", json!(m.until.map(iso))));
        }
        let key = (stream, caller.user.clone());
        {
            let mut rl = self
                .chat_limiter
                .lock()
                .map_err(|_| Problem::internal("chat limiter lock poisoned"))?;
            if let Err(l) = rl.check(&key, Instant::now()) {
                let ms = l.retry_after.as_millis().max(1) as u64;
                let secs = ms.div_ceil(1000) as u32;
                inc(&self.app.services.livestream.chat_rate_limited);
                return Err(ApiError::too_many(
                    format!(
                        "chat rate limit: at most {} messages per {} s; retry in {:.1} s",
                        rl.limit(),
                        rl.window().as_secs(),
                        ms as f64 / 1000.0
                    ),
                    secs,
                )
                .with("retryAfterMs", json!(ms))
                .with("limit", json!(rl.limit()))
                .with("windowSeconds", json!(rl.window().as_secs())));
            }
        }
        let order_lock = self
            .chat_order
            .lock()
            .map_err(|_| Problem::internal("chat order lock poisoned"))?
            .entry(stream)
            .or_default()
            .clone();
        let order = order_lock.lock().await;
        let msg = ChatMessage {
            id: Uuid::new_v4(),
            seq: 0,
            stream_id: stream,
            user_id: caller.user.clone(),
            message: text.to_string(),
            created_at: now_ms(),
            deleted_at: None,
        };
        let stored = match self.store.add_chat(msg).await {
            Ok(m) => m,
            Err(e) => {
                if let Ok(mut rl) = self.chat_limiter.lock() {
                    rl.refund(&key);
                }
                return Err(e.into());
            }
        };
        inc(&self.app.services.livestream.chat_messages);
        let payload = message_json(&stored);
        if let Err(e) = self
            .io
            .to(socket::chat_room(stream))
            .emit("chat:message", &payload)
            .await
        {
            tracing::warn!(%stream, error = %e, "chat message not broadcast to every socket");
        }
        drop(order);
        Ok(stored)
    }
}

/// `GET /api/livestream/{id}/chat?limit=50&before=<seq>` → `{messages: [...]}`, oldest first.
pub async fn history(
    State(svc): Svc,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    respond(
        async {
            svc.caller(&headers)?;
            let Query(q) =
                query.map_err(|e| Problem::bad_request(format!("bad query string: {e}")))?;
            let num = |name: &str| -> Result<Option<i64>, ApiError> {
                q.get(name)
                    .map(|v| {
                        v.trim()
                            .parse::<i64>()
                            .ok()
                            .filter(|n| *n >= 0)
                            .ok_or_else(|| {
                                ApiError::from(Problem::bad_request(format!(
                                    "{name} must be a non-negative integer"
                                )))
                            })
                    })
                    .transpose()
            };
            let limit = num("limit")?
                .unwrap_or(DEFAULT_HISTORY)
                .clamp(1, MAX_HISTORY);
            let before = num("before")?;
            let ls = svc.load(parse_id(&id)?).await?;
            let msgs = svc.store.chat(ls.id, limit, before).await?;
            Ok(Json(json!({
                "streamId": ls.id,
                "messages": msgs.iter().map(message_json).collect::<Vec<_>>(),
            }))
            .into_response())
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
struct SendRequest {
    message: Option<String>,
}

/// `POST /api/livestream/{id}/chat` `{message}` → 201 with the stored message.
pub async fn send(
    State(svc): Svc,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let caller = svc.caller(&headers)?;
            let id = parse_id(&id)?;
            let req: SendRequest = json_body(&headers, body).await?;
            let text = req
                .message
                .ok_or_else(|| ApiError::from(Problem::bad_request("message is required")))?;
            let m = svc.post_chat(id, &caller, &text).await?;
            Ok((StatusCode::CREATED, Json(message_json(&m))).into_response())
        }
        .await,
    )
}

/// `DELETE /api/livestream/{id}/chat/{message_id}` (key holder, owner or admin): the message
/// disappears from the history and `chat:deleted` `{id, streamId}` goes to the chat room.
pub async fn delete_message(
    State(svc): Svc,
    Path((id, message)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let ls = svc.load(parse_id(&id)?).await?;
            let caller = svc.optional_caller(&headers)?;
            svc.authorize(&ls, caller.as_ref(), stream_key(&headers, None), true)?;
            let msg = message
                .parse::<Uuid>()
                .map_err(|_| Problem::not_found(format!("no message {message}")))?;
            let by = caller
                .map(|c| c.user)
                .unwrap_or_else(|| "key-holder".into());
            if !svc
                .store
                .delete_chat(ls.id, msg, by.clone(), now_ms())
                .await?
            {
                return Err(Problem::not_found(format!("no message {msg} in this chat")).into());
            }
            tracing::info!(stream = %ls.id, message = %msg, by, "chat message deleted");
            let _ = svc
                .io
                .to(socket::chat_room(ls.id))
                .emit("chat:deleted", &json!({ "id": msg, "streamId": ls.id }))
                .await;
            Ok(Json(json!({ "success": true, "id": msg })).into_response())
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MuteRequest {
    user_id: Option<String>,
    /// Seconds; absent: until unmuted.
    duration_seconds: Option<u64>,
}

/// `POST /api/livestream/{id}/mute` `{userId, durationSeconds?}` (key holder, owner or admin).
pub async fn mute(
    State(svc): Svc,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let ls = svc.load(parse_id(&id)?).await?;
            let caller = svc.optional_caller(&headers)?;
            svc.authorize(&ls, caller.as_ref(), stream_key(&headers, None), true)?;
            let req: MuteRequest = json_body(&headers, body).await?;
            let user = req
                .user_id
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .ok_or_else(|| ApiError::from(Problem::bad_request("userId is required")))?;
            let now = now_ms();
            let until = req
                .duration_seconds
                .map(|s| now.saturating_add(Duration::from_secs(s).as_millis() as i64));
            let by = caller
                .map(|c| c.user)
                .unwrap_or_else(|| "key-holder".into());
            svc.store
                .mute(Mute {
                    stream_id: ls.id,
                    user_id: user.clone(),
                    muted_by: by.clone(),
                    until,
                    created_at: now,
                })
                .await?;
            tracing::info!(stream = %ls.id, user, by, ?until, "chat user muted");
            Ok(Json(json!({
                "success": true,
                "userId": user,
                "mutedUntil": until.map(iso),
            }))
            .into_response())
        }
        .await,
    )
}

/// `DELETE /api/livestream/{id}/mute/{user_id}` (key holder, owner or admin).
pub async fn unmute(
    State(svc): Svc,
    Path((id, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let ls = svc.load(parse_id(&id)?).await?;
            let caller = svc.optional_caller(&headers)?;
            svc.authorize(&ls, caller.as_ref(), stream_key(&headers, None), true)?;
            if !svc.store.unmute(ls.id, user.clone()).await? {
                return Err(Problem::not_found(format!("{user} is not muted here")).into());
            }
            Ok(Json(json!({ "success": true, "userId": user })).into_response())
        }
        .await,
    )
}
