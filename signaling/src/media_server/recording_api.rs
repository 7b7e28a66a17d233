//! The recording endpoints (seed 002 "Recording"): `POST /channels/{id}/recording/start` and
//! `/stop`, `GET /recordings/{id}`, `GET /channels/{id}/recordings`. What they drive is in
//! `recording.rs`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::handlers::{Ms, json_body, respond};
use crate::api::header_value;
use crate::problem::Problem;
use crate::stream_service::ApiError;

/// The bit rates a request may ask for.
const AUDIO_BITRATE: std::ops::RangeInclusive<u32> = 6_000..=510_000;
const VIDEO_BITRATE: std::ops::RangeInclusive<u32> = 50_000..=50_000_000;

#[derive(Deserialize)]
struct StartRequest {
    #[serde(default = "default_format")]
    format: String,
    #[serde(default = "default_audio_bitrate")]
    audio_bitrate: u32,
    #[serde(default = "default_video_bitrate")]
    video_bitrate: u32,
}

fn default_format() -> String {
    "webm".into()
}
fn default_audio_bitrate() -> u32 {
    128_000
}
fn default_video_bitrate() -> u32 {
    2_500_000
}

fn parse_uuid(what: &str, v: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(v)
        .map_err(|_| Problem::bad_request(format!("{what} {v:?} is not a UUID")).into())
}

/// `POST /channels/{id}/recording/start`.
pub async fn start(
    State(ms): Ms,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            let channel = parse_uuid("channel id", &channel_id)?;
            ms.recording_env()?;
            let req: StartRequest = json_body(&headers, body).await?;
            if !req.format.eq_ignore_ascii_case("webm") {
                return Err(Problem::bad_request(format!(
                    "format {:?} is not supported: recordings are \"webm\"",
                    req.format
                ))
                .into());
            }
            if !AUDIO_BITRATE.contains(&req.audio_bitrate) {
                return Err(Problem::bad_request(format!(
                    "audio_bitrate {} is outside {}..={}",
                    req.audio_bitrate,
                    AUDIO_BITRATE.start(),
                    AUDIO_BITRATE.end()
                ))
                .into());
            }
            if !VIDEO_BITRATE.contains(&req.video_bitrate) {
                return Err(Problem::bad_request(format!(
                    "video_bitrate {} is outside {}..={}",
                    req.video_bitrate,
                    VIDEO_BITRATE.start(),
                    VIDEO_BITRATE.end()
                ))
                .into());
            }
            let id = ms.begin_recording(channel, &user.0, req.audio_bitrate, req.video_bitrate)?;
            tracing::info!(recording = %id, %channel, user = %user, "recording started");
            ms.reconcile_recordings().await;
            let body = ms.recording_json(id)?;
            let mut resp = (StatusCode::CREATED, Json(body)).into_response();
            resp.headers_mut()
                .insert(header::LOCATION, header_value(&format!("/recordings/{id}")));
            Ok(resp)
        }
        .await,
    )
}

/// `POST /channels/{id}/recording/stop`: ends the channel's recording and stores its files.
pub async fn stop(State(ms): Ms, Path(channel_id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            ms.user(&headers)?;
            let channel = parse_uuid("channel id", &channel_id)?;
            ms.recording_env()?;
            let id = ms.recording_of(channel)?.ok_or_else(|| {
                Problem::not_found(format!("channel {channel} is not being recorded"))
            })?;
            ms.stop_recording(id).await?;
            Ok(Json(ms.recording_json(id)?).into_response())
        }
        .await,
    )
}

/// `GET /recordings/{id}`.
pub async fn get(State(ms): Ms, Path(recording_id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            ms.user(&headers)?;
            let id = parse_uuid("recording id", &recording_id)?;
            Ok(Json(ms.recording_json(id)?).into_response())
        }
        .await,
    )
}

/// `GET /channels/{id}/recordings`: the channel's recordings on this node, newest first.
pub async fn list(State(ms): Ms, Path(channel_id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            ms.user(&headers)?;
            let channel = parse_uuid("channel id", &channel_id)?;
            ms.recording_env()?;
            let ids = ms.recordings_of(channel)?;
            let list = ids
                .into_iter()
                .map(|id| ms.recording_json(id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(
                Json(serde_json::json!({ "channel_id": channel, "recordings": list }))
                    .into_response(),
            )
        }
        .await,
    )
}
