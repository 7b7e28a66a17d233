//! The livestream lifecycle over HTTP: create, list, read, start, end, key rotation, viewer
//! join and leave, analytics.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

use super::keys;
use super::presence::Attachment;
use super::store::{Livestream, Status};
use super::{Authority, LivestreamService, iso, livestream_json, now_ms};
use crate::problem::Problem;
use crate::stream_service::ApiError;

/// Largest JSON body accepted.
const MAX_JSON: usize = 16 * 1024;
/// Longest title and description, in characters.
const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 5000;
/// Default and largest page of `GET /active`.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;

pub(super) type Svc = State<Arc<LivestreamService>>;

pub(super) fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Reads an optional JSON body: empty means `T::default()`; otherwise `application/json`.
pub(super) async fn json_body<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, ApiError> {
    let bytes = crate::api::read_body(body, MAX_JSON).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    crate::api::check_content_type(headers, "application/json")?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")).into())
}

/// A livestream id from the path (404 when it is not a uuid).
pub(super) fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    s.parse::<Uuid>()
        .map_err(|_| Problem::not_found(format!("{s:?} is not a livestream id")).into())
}

/// The stream key of a request: `X-Stream-Key`, else the body's `streamKey`.
pub(super) fn stream_key<'a>(headers: &'a HeaderMap, body_key: Option<&'a str>) -> Option<&'a str> {
    headers
        .get("x-stream-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or(body_key.map(str::trim))
        .filter(|k| !k.is_empty())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    title: Option<String>,
    description: Option<String>,
    recording_enabled: Option<bool>,
    /// Kept as JSON so that a wrong type is refused naming the field.
    max_viewers: Option<serde_json::Value>,
}

fn check_len(what: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.chars().count() > max {
        return Err(Problem::bad_request(format!("{what} is longer than {max} characters")).into());
    }
    Ok(())
}

/// A livestream's own viewer limit from a request: absent or `null` is none (the server-wide
/// limit applies); otherwise an integer from 1 to `server_max`, else 400.
fn max_viewers_param(
    v: Option<&serde_json::Value>,
    server_max: usize,
) -> Result<Option<i64>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    v.as_u64()
        .filter(|n| (1..=server_max as u64).contains(n))
        .and_then(|n| i64::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "maxViewers must be an integer from 1 to {server_max} (LIVESTREAM_MAX_VIEWERS)"
            ))
            .into()
        })
}

/// `POST /api/livestream/create`: `{title, description?, recordingEnabled?, maxViewers?}` → 201
/// `{streamId, streamKey, …}`. The key is shown this once.
pub async fn create(State(svc): Svc, headers: HeaderMap, body: axum::body::Body) -> Response {
    respond(
        async {
            let caller = svc.caller(&headers)?;
            let req: CreateRequest = json_body(&headers, body).await?;
            let title = req.title.as_deref().map(str::trim).unwrap_or("");
            if title.is_empty() {
                return Err(Problem::bad_request("title is required").into());
            }
            check_len("title", title, MAX_TITLE)?;
            let description = req.description.as_deref().map(str::trim).unwrap_or("");
            check_len("description", description, MAX_DESCRIPTION)?;
            let max_viewers = max_viewers_param(req.max_viewers.as_ref(), svc.cfg.max_viewers)?;
            let key = keys::new_key();
            let now = now_ms();
            let ls = Livestream {
                id: Uuid::new_v4(),
                owner_id: caller.user.clone(),
                title: title.to_string(),
                description: description.to_string(),
                status: Status::Created,
                stream_key_hash: keys::hash_key(&key),
                recording_enabled: req.recording_enabled.unwrap_or(false),
                recording_url: None,
                peak_viewers: 0,
                created_at: now,
                started_at: None,
                ended_at: None,
                key_rotated_at: now,
                max_viewers,
            };
            svc.store.create(ls.clone()).await?;
            tracing::info!(stream = %ls.id, owner = %ls.owner_id, "livestream created");
            let mut body = livestream_json(&ls, 0);
            body["streamKey"] = json!(key);
            let mut resp = (StatusCode::CREATED, Json(body)).into_response();
            resp.headers_mut().insert(
                header::LOCATION,
                crate::api::header_value(&format!("/api/livestream/{}", ls.id)),
            );
            Ok(resp)
        }
        .await,
    )
}

fn page_param(q: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Problem::bad_request(format!("{name} must be a non-negative integer")).into()
            }),
    }
}

/// `GET /api/livestream/active?limit=50&offset=0` → `{streams: [...]}`, latest start first.
pub async fn active(
    State(svc): Svc,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    respond(
        async {
            let Query(q) =
                query.map_err(|e| Problem::bad_request(format!("bad query string: {e}")))?;
            let limit = page_param(&q, "limit", DEFAULT_PAGE)?.clamp(1, MAX_PAGE);
            let offset = page_param(&q, "offset", 0)?;
            let list = svc.store.list(Status::Live, limit, offset).await?;
            let mut streams = Vec::with_capacity(list.len());
            for ls in &list {
                streams.push(livestream_json(ls, svc.viewer_count(ls.id).await));
            }
            Ok(
                Json(json!({ "streams": streams, "limit": limit, "offset": offset }))
                    .into_response(),
            )
        }
        .await,
    )
}

/// `GET /api/livestream/{id}`.
pub async fn get_one(State(svc): Svc, Path(id): Path<String>) -> Response {
    respond(
        async {
            let ls = svc.load(parse_id(&id)?).await?;
            let n = svc.viewer_count(ls.id).await;
            Ok(Json(livestream_json(&ls, n)).into_response())
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KeyRequest {
    stream_key: Option<String>,
}

/// `POST /api/livestream/{id}/start` (key holder or owner) → `{success: true, …}`. Starting a
/// live stream changes nothing; an ended one goes live again with its current key.
pub async fn start(
    State(svc): Svc,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let id = parse_id(&id)?;
            let req: KeyRequest = json_body(&headers, body).await?;
            let ls = svc.load(id).await?;
            let caller = svc.optional_caller(&headers)?;
            svc.authorize(
                &ls,
                caller.as_ref(),
                stream_key(&headers, req.stream_key.as_deref()),
                false,
            )?;
            let changed = svc.store.start(id, now_ms()).await?;
            let ls = svc.load(id).await?;
            if changed {
                tracing::info!(stream = %id, "livestream live");
            }
            Ok(Json(json!({
                "success": true,
                "streamId": id,
                "status": ls.status.as_str(),
                "startedAt": ls.started_at.map(iso),
            }))
            .into_response())
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EndRequest {
    recording_url: Option<String>,
    stream_key: Option<String>,
}

/// `POST /api/livestream/{id}/end` `{recordingUrl?}` (key holder, owner or admin): ends it at
/// once and rotates the key. The new key is in the answer for the key holder and the owner.
pub async fn end(
    State(svc): Svc,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let id = parse_id(&id)?;
            let req: EndRequest = json_body(&headers, body).await?;
            let ls = svc.load(id).await?;
            let caller = svc.optional_caller(&headers)?;
            let authority = svc.authorize(
                &ls,
                caller.as_ref(),
                stream_key(&headers, req.stream_key.as_deref()),
                true,
            )?;
            let url = req
                .recording_url
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty());
            if let Some(u) = &url {
                check_len("recordingUrl", u, 2048)?;
            }
            let key = svc.end_stream(&ls, url, authority.end_reason()).await?;
            let ls = svc.load(id).await?;
            let mut body = json!({
                "success": true,
                "streamId": id,
                "status": ls.status.as_str(),
                "endedAt": ls.ended_at.map(iso),
                "peakViewers": ls.peak_viewers,
                "recordingUrl": ls.recording_url,
            });
            if authority != Authority::Admin {
                body["streamKey"] = json!(key);
            }
            Ok(Json(body).into_response())
        }
        .await,
    )
}

/// `POST /api/livestream/{id}/key` (key holder or owner): a new stream key; the old one stops
/// working at once (a broadcast in progress goes on).
pub async fn rotate_key(
    State(svc): Svc,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let id = parse_id(&id)?;
            let req: KeyRequest = json_body(&headers, body).await?;
            let ls = svc.load(id).await?;
            let caller = svc.optional_caller(&headers)?;
            svc.authorize(
                &ls,
                caller.as_ref(),
                stream_key(&headers, req.stream_key.as_deref()),
                false,
            )?;
            let key = keys::new_key();
            if !svc
                .store
                .rotate_key(id, keys::hash_key(&key), now_ms())
                .await?
            {
                return Err(Problem::not_found(format!("no livestream {id}")).into());
            }
            tracing::info!(stream = %id, "stream key rotated");
            Ok(Json(json!({ "streamId": id, "streamKey": key })).into_response())
        }
        .await,
    )
}

/// `POST /api/livestream/{id}/join` → `{success: true, iceServers, viewerId, viewerCount}`: the
/// caller counts as a viewer until it leaves, or for `LIVESTREAM_JOIN_TTL` unless a Socket.IO
/// or WHEP connection follows.
pub async fn join(State(svc): Svc, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            let caller = svc.caller(&headers)?;
            let ls = svc.load(parse_id(&id)?).await?;
            let count = svc.join_viewer(&ls, &caller.user, Attachment::Http).await?;
            Ok(Json(json!({
                "success": true,
                "streamId": ls.id,
                "viewerId": caller.user,
                "viewerCount": count,
                "iceServers": svc.ice_servers(&caller.user),
            }))
            .into_response())
        }
        .await,
    )
}

/// `POST /api/livestream/{id}/leave` → `{success: true}`: the caller stops watching (its
/// Socket.IO and WHEP media for this livestream end too).
pub async fn leave(State(svc): Svc, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            let caller = svc.caller(&headers)?;
            let ls = svc.load(parse_id(&id)?).await?;
            let was = svc.remove_viewer(ls.id, &caller.user).await;
            Ok(
                Json(json!({ "success": true, "streamId": ls.id, "wasWatching": was }))
                    .into_response(),
            )
        }
        .await,
    )
}

/// `GET /api/livestream/{id}/analytics` (key holder, owner or admin): peak and current
/// viewers, and every viewer row.
pub async fn analytics(State(svc): Svc, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            let ls = svc.load(parse_id(&id)?).await?;
            let caller = svc.optional_caller(&headers)?;
            svc.authorize(&ls, caller.as_ref(), stream_key(&headers, None), true)?;
            let rows = svc.store.viewers(ls.id).await?;
            let now = now_ms();
            let mut users = std::collections::HashSet::new();
            let mut total_ms: i64 = 0;
            let viewers: Vec<_> = rows
                .iter()
                .map(|r| {
                    users.insert(r.user_id.as_str());
                    let watched = r.left_at.unwrap_or(now) - r.joined_at;
                    total_ms += watched.max(0);
                    json!({
                        "userId": r.user_id,
                        "client": r.client,
                        "joinedAt": iso(r.joined_at),
                        "leftAt": r.left_at.map(iso),
                        "watchSeconds": (watched.max(0) as f64) / 1000.0,
                    })
                })
                .collect();
            let avg = if rows.is_empty() {
                0.0
            } else {
                (total_ms as f64) / 1000.0 / rows.len() as f64
            };
            Ok(Json(json!({
                "streamId": ls.id,
                "status": ls.status.as_str(),
                "peakViewers": ls.peak_viewers,
                "currentViewers": svc.viewer_count(ls.id).await,
                "totalViews": rows.len(),
                "uniqueViewers": users.len(),
                "averageWatchSeconds": avg,
                "viewers": viewers,
            }))
            .into_response())
        }
        .await,
    )
}
