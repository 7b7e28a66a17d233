//! The HTTP handlers of a session's tracks: publish (a producer), subscribe (a consumer),
//! unpublish and unsubscribe.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sfu::{MediaKind, ShardId, Ssrc, TrackId};
use uuid::Uuid;

use super::consume::{ConsumerIds, consume};
use super::handlers::{Ms, elsewhere, json_body, parse_id, respond};
use super::mix::MixConsumer;
use super::payload::TrackEvent;
use super::produce::Produced;
use super::produce::produce;
use super::router_caps::kind_name;
use super::rtp_types::{RtpCapabilities, RtpParameters};
use super::session::{Consumer, Producer, SessionType};
use super::store::TrackRecord;
use super::store_problem;
use crate::events::payload::now_rfc3339;
use crate::events::subjects;
use crate::problem::Problem;
use crate::session_spec;
use crate::stream_service::ApiError;

fn parse_kind(k: &str) -> Result<MediaKind, ApiError> {
    match k {
        "audio" => Ok(MediaKind::Audio),
        "video" => Ok(MediaKind::Video),
        other => Err(Problem::bad_request(format!(
            "kind must be \"audio\" or \"video\", not {other:?}"
        ))
        .into()),
    }
}

#[derive(Deserialize)]
struct PublishRequest {
    kind: String,
    #[serde(alias = "rtpParameters")]
    rtp_parameters: RtpParameters,
    #[serde(default, alias = "transportId")]
    transport_id: Option<Uuid>,
    /// What the track shows: `"camera"` (default) or `"screen"`; a viewer short of bandwidth
    /// keeps a screen share's quality before a camera's. Also read from mediasoup-client's
    /// `appData.source`.
    #[serde(default)]
    source: Option<String>,
    #[serde(default, alias = "appData")]
    app_data: Option<serde_json::Value>,
}

impl PublishRequest {
    /// The track's content from `source` (or `appData.source`).
    fn content(&self) -> Result<sfu::control::TrackContent, ApiError> {
        let source = self.source.clone().or_else(|| {
            self.app_data
                .as_ref()
                .and_then(|d| d.get("source"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
        match source.as_deref() {
            None | Some("camera") | Some("webcam") | Some("mic") | Some("microphone") => {
                Ok(sfu::control::TrackContent::Camera)
            }
            Some("screen") | Some("screen-share") | Some("share") => {
                Ok(sfu::control::TrackContent::Screen)
            }
            Some(other) => Err(Problem::unprocessable(format!(
                "source {other:?} is not \"camera\" or \"screen\""
            ))
            .into()),
        }
    }
}

/// `POST /sessions/{id}/publish`: a producer (mediasoup-client's `produce` event).
pub async fn publish(
    State(ms): Ms,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            let id = ms.find(&session_id, &user.0).await?;
            let req: PublishRequest = json_body(&headers, body).await?;
            let kind = parse_kind(&req.kind)?;
            let content = req.content()?;
            let producer_id = Uuid::new_v4();
            let (event, record) = {
                let mut local = ms.local()?;
                let key = local.next_stream_key();
                let s = local
                    .sessions
                    .get(&id)
                    .ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
                s.send.usable(req.transport_id, "send", "publish")?;
                if s.kind == SessionType::Audio && kind == MediaKind::Video {
                    return Err(Problem::unprocessable(
                        "an audio session publishes audio only: create a video session for video",
                    )
                    .into());
                }
                let default_mid = format!("p{}", s.producers.len());
                let mut produced = produce(
                    &ms.app.capabilities,
                    kind,
                    &req.rtp_parameters,
                    key,
                    TrackId(session_spec::random_id()),
                    &default_mid,
                )
                .map_err(|e| ApiError::from(Problem::unprocessable(e.to_string())))?;
                produced.spec.content = content;
                if s.producers
                    .iter()
                    .any(|p| p.produced.spec.mid == produced.spec.mid)
                {
                    return Err(Problem::conflict(format!(
                        "mid {:?} is already published on this session",
                        produced.spec.mid.0
                    ))
                    .into());
                }
                let event = TrackEvent {
                    session_id: id,
                    track_id: producer_id,
                    kind: req.kind.clone(),
                    channel_id: s.channel_id,
                    user_id: s.user_id.clone(),
                    reason: None,
                    timestamp: now_rfc3339(),
                };
                let record = TrackRecord {
                    track_id: producer_id,
                    session_id: id,
                    channel_id: s.channel_id,
                    kind: req.kind.clone(),
                    node_id: ms.node_id.clone(),
                    node_url: ms.node_url.clone(),
                };
                let cmds = local.add_producer(
                    id,
                    Producer {
                        id: producer_id,
                        produced,
                        created: Instant::now(),
                    },
                );
                ms.send(cmds);
                (event, record)
            };
            if let Err(e) = ms.store.insert_track(record).await {
                tracing::warn!(track = %producer_id, error = %e, "track not recorded in the store");
            }
            tracing::info!(session = %id, track = %producer_id, kind = %req.kind, "track published");
            ms.emit(subjects::MEDIA_TRACK_ADDED, &event).await;
            Ok(Json(json!({ "id": producer_id, "track_id": producer_id, "kind": req.kind }))
                .into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct SubscribeRequest {
    /// The producer to consume, or `"mix"` for the channel's mix.
    #[serde(default, alias = "producer_id", alias = "producerId")]
    track_id: Option<String>,
    #[serde(alias = "rtpCapabilities")]
    rtp_capabilities: RtpCapabilities,
    #[serde(default, alias = "transportId")]
    transport_id: Option<Uuid>,
    /// One Opus stream mixing every audio producer of the channel but the session's own.
    #[serde(default)]
    mix: bool,
    /// With `mix`: the channel (must be the session's).
    #[serde(default, alias = "channelId")]
    channel_id: Option<Uuid>,
}

/// What a subscribe request asks for.
enum Wanted {
    Track(Uuid),
    Mix,
}

impl SubscribeRequest {
    fn wanted(&self) -> Result<Wanted, ApiError> {
        match self.track_id.as_deref() {
            Some("mix") => Ok(Wanted::Mix),
            Some(t) if !self.mix => super::handlers::parse_id(t, "track").map(Wanted::Track),
            Some(_) => Err(Problem::unprocessable(
                "give either track_id or \"mix\": true, not both",
            )
            .into()),
            None if self.mix => Ok(Wanted::Mix),
            None => Err(Problem::unprocessable(
                "track_id is required (or \"mix\": true for the channel's mix)",
            )
            .into()),
        }
    }
}

fn random_ssrc() -> Ssrc {
    loop {
        let v: u32 = rand::random();
        if v != 0 {
            return Ssrc(v);
        }
    }
}

/// `POST /sessions/{id}/subscribe`: a consumer of a track of the same channel.
pub async fn subscribe(
    State(ms): Ms,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            let id = ms.find(&session_id, &user.0).await?;
            let req: SubscribeRequest = json_body(&headers, body).await?;
            let track = match req.wanted()? {
                Wanted::Track(t) => t,
                Wanted::Mix => return subscribe_mix(&ms, id, &req),
            };
            let local_producer = ms.local()?.producers.get(&track).copied();
            if local_producer.is_none() {
                // Not here: another node's, or nobody's.
                return Err(match ms.store.get_track(track).await.map_err(store_problem)? {
                    Some(t) if t.node_id != ms.node_id => {
                        elsewhere(&format!("track {track}"), &t.node_id, &t.node_url)
                    }
                    _ => Problem::not_found(format!("no track {track}")).into(),
                });
            }
            let mut local = ms.local()?;
            let s = local
                .sessions
                .get(&id)
                .ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
            s.recv.usable(req.transport_id, "receive", "subscribe")?;
            let psession = local
                .producers
                .get(&track)
                .and_then(|p| local.sessions.get(p))
                .ok_or_else(|| Problem::not_found(format!("no track {track}")))?;
            if psession.channel_id != s.channel_id {
                return Err(Problem::not_found(format!(
                    "no track {track} in channel {}",
                    s.channel_id
                ))
                .into());
            }
            if s.consumers.iter().any(|c| c.producer == track) {
                return Err(Problem::conflict(format!(
                    "session {id} already subscribes to track {track}"
                ))
                .into());
            }
            let producer = psession
                .producers
                .iter()
                .find(|p| p.id == track)
                .ok_or_else(|| Problem::not_found(format!("no track {track}")))?;
            let mid = s.next_mid.to_string();
            let cname = Uuid::new_v4().simple().to_string();
            let consumed = consume(
                &ms.app.capabilities,
                &producer.produced,
                psession.audio,
                &req.rtp_capabilities,
                ConsumerIds {
                    mid: &mid,
                    ssrc: random_ssrc(),
                    rtx_ssrc: random_ssrc(),
                    fallback_cname: &cname,
                },
            )
            .map_err(|e| ApiError::from(Problem::unprocessable(e.to_string())))?;
            let simulcast = producer.produced.spec.layers.len() > 1;
            let kind = kind_name(producer.kind());
            let pshard: ShardId = psession.send.shard;
            let consumer_id = Uuid::new_v4();
            let rtp = consumed.rtp_parameters.clone();
            if let Some(s) = local.sessions.get_mut(&id) {
                s.next_mid += 1;
            }
            let cmds = local.add_consumer(
                id,
                Consumer {
                    id: consumer_id,
                    producer: track,
                    producer_shard: pshard,
                    spec: consumed.spec,
                    extmap: consumed.extmap,
                    rtp_parameters: consumed.rtp_parameters,
                    created: Instant::now(),
                },
            );
            ms.send(cmds);
            drop(local);
            tracing::info!(session = %id, track = %track, consumer = %consumer_id, "track subscribed");
            Ok(Json(json!({
                "id": consumer_id,
                "consumer_id": consumer_id,
                "track_id": track,
                "producer_id": track,
                "producerId": track,
                "kind": kind,
                "type": if simulcast { "simulcast" } else { "simple" },
                "rtp_parameters": rtp,
                "rtpParameters": rtp,
            }))
            .into_response())
        }
        .await,
    )
}

/// The mix part of `POST /sessions/{id}/subscribe`: the channel's Opus mix on the session's
/// receive transport, without the session's own audio.
fn subscribe_mix(
    ms: &super::MediaServer,
    id: Uuid,
    req: &SubscribeRequest,
) -> Result<Response, ApiError> {
    let mut local = ms.local()?;
    let s = local
        .sessions
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
    s.recv.usable(req.transport_id, "receive", "subscribe")?;
    if let Some(c) = req.channel_id
        && c != s.channel_id
    {
        return Err(Problem::unprocessable(format!(
            "channel {c} is not this session's channel {}: a session mixes its own channel",
            s.channel_id
        ))
        .into());
    }
    if s.mix.is_some() {
        return Err(
            Problem::conflict(format!("session {id} already takes the channel's mix")).into(),
        );
    }
    let channel = s.channel_id;
    let mid = s.next_mid.to_string();
    let consumed = consume(
        &ms.app.capabilities,
        &mix_source(channel),
        s.audio,
        &req.rtp_capabilities,
        ConsumerIds {
            mid: &mid,
            ssrc: random_ssrc(),
            rtx_ssrc: random_ssrc(),
            fallback_cname: &format!("mix-{}", channel.simple()),
        },
    )
    .map_err(|e| ApiError::from(Problem::unprocessable(e.to_string())))?;
    let consumer_id = Uuid::new_v4();
    let rtp = consumed.rtp_parameters.clone();
    if let Some(s) = local.sessions.get_mut(&id) {
        s.next_mid += 1;
    }
    let cmds = local.add_mix(
        id,
        MixConsumer {
            id: consumer_id,
            spec: consumed.spec,
            extmap: consumed.extmap,
            rtp_parameters: consumed.rtp_parameters,
            created: Instant::now(),
        },
    );
    ms.send(cmds);
    drop(local);
    tracing::info!(session = %id, %channel, consumer = %consumer_id, "channel mix subscribed");
    Ok(Json(json!({
        "id": consumer_id,
        "consumer_id": consumer_id,
        "track_id": "mix",
        "producer_id": "mix",
        "producerId": "mix",
        "channel_id": channel,
        "kind": "audio",
        "type": "mix",
        "rtp_parameters": rtp,
        "rtpParameters": rtp,
    }))
    .into_response())
}

/// The mix as the source of a consumer: mono-content Opus (negotiated as `opus/48000/2`, as
/// WebRTC does), in-band FEC off.
fn mix_source(channel: Uuid) -> Produced {
    let mut params = serde_json::Map::new();
    params.insert("minptime".into(), json!(10));
    let spec = sfu::control::PublishSpec {
        stream: sfu::StreamKey(0),
        track: TrackId(0),
        kind: MediaKind::Audio,
        mid: sfu::Mid("mix".into()),
        ssrc: None,
        rtx_ssrc: None,
        codecs: Vec::new(),
        layers: Vec::new(),
        layer_order: sfu::control::LayerOrder::Named,
        content: sfu::control::TrackContent::Camera,
    };
    Produced {
        spec,
        extmap: sfu::control::ExtMap::default(),
        codec: sfu::Codec::Opus,
        codec_parameters: params,
        cname: Some(format!("mix-{}", channel.simple())),
    }
}

/// `DELETE /sessions/{id}/tracks/{track_id}`: unpublish one of the session's tracks (its
/// consumers everywhere end too), or drop a consumer (named by its id or its track's).
pub async fn delete_track(
    State(ms): Ms,
    Path((session_id, track_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let user = ms.user(&headers)?;
            let id = ms.find(&session_id, &user.0).await?;
            if track_id == "mix"
                || ms
                    .local()?
                    .sessions
                    .get(&id)
                    .is_some_and(|s| s.mix.as_ref().is_some_and(|m| m.id.to_string() == track_id))
            {
                let removed = ms.local()?.remove_mix(id);
                let Some((m, cmds)) = removed else {
                    return Err(Problem::not_found(format!(
                        "session {id} does not take the channel's mix"
                    ))
                    .into());
                };
                ms.send(cmds);
                return Ok(Json(json!({
                    "track_id": "mix",
                    "consumer_id": m.id,
                    "status": "unsubscribed",
                }))
                .into_response());
            }
            let track = parse_id(&track_id, "track")?;
            let (own, consumer) = {
                let local = ms.local()?;
                let s = local
                    .sessions
                    .get(&id)
                    .ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
                let own = s.producers.iter().any(|p| p.id == track);
                let consumer = s
                    .consumers
                    .iter()
                    .find(|c| c.id == track || c.producer == track)
                    .map(|c| c.id);
                (own, consumer)
            };
            if own {
                ms.unpublish(id, track, "unpublished").await;
                return Ok(
                    Json(json!({ "track_id": track, "status": "unpublished" })).into_response()
                );
            }
            let Some(c) = consumer else {
                return Err(
                    Problem::not_found(format!("session {id} has no track {track}")).into(),
                );
            };
            let removed = ms.local()?.remove_consumer(id, c);
            if let Some((c, cmds)) = removed {
                ms.send(cmds);
                return Ok(Json(json!({
                    "track_id": c.producer,
                    "consumer_id": c.id,
                    "status": "unsubscribed",
                }))
                .into_response());
            }
            Err(Problem::not_found(format!("session {id} has no track {track}")).into())
        }
        .await,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use sfu::control::TrackContent;

    fn request(extra: &str) -> PublishRequest {
        let body = format!(r#"{{"kind": "video", "rtp_parameters": {{"codecs": []}}{extra}}}"#);
        serde_json::from_str(&body).unwrap()
    }

    #[test]
    fn publish_source_names_screen_content_directly_or_in_app_data() {
        assert_eq!(request("").content().unwrap(), TrackContent::Camera);
        let screen = request(r#", "source": "screen""#).content().unwrap();
        assert_eq!(screen, TrackContent::Screen);
        let app = request(r#", "appData": {"source": "screen", "x": 1}"#);
        assert_eq!(app.content().unwrap(), TrackContent::Screen);
        assert!(request(r#", "source": "hologram""#).content().is_err());
    }
}
