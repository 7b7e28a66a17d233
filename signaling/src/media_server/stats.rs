//! `GET /sessions/{id}/stats`: how long the session has run and, per track, its bit rate,
//! packets, loss and jitter as the shards count them ([`TrackCommand::Stats`]).
//!
//! For a published track `packets_sent` is what the client sent that reached the server and
//! `packets_lost` what it sent that did not (RFC 3550 A.3); for a subscribed track they are what
//! the server sent and what the client reported lost. `jitter` is in seconds. `bitrate` (bits per
//! second) is measured since the session's previous stats request, or since the track began.
//! A published audio track also has `audio_level` (dBov over the last second, RFC 6464 levels
//! as the client sent them) and `speaking`; the session has `active_speaker`, the producer its
//! channel's active speaker publishes (null when nobody speaks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sfu::control::{Command, SessionTrackStats, TrackCommand, TrackDirection, TrackStats};

use super::MediaServer;
use super::router_caps::kind_name;
use super::session::{Direction, MediaSession};
use crate::problem::Problem;
use crate::stream_service::ApiError;

/// Longest a shard may take to answer.
const SHARD_ANSWER: Duration = Duration::from_secs(1);

/// Asks a transport's shard for its figures; None when the transport does not run or the shard
/// does not answer in time.
async fn ask(ms: &MediaServer, s: &MediaSession, d: Direction) -> Option<SessionTrackStats> {
    let t = s.transport(d);
    if !t.is_running() {
        return None;
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    ms.app.media.send(
        t.shard,
        Command::Tracks(TrackCommand::Stats {
            session: t.shard_session,
            reply: tx,
        }),
    );
    tokio::task::spawn_blocking(move || rx.recv_timeout(SHARD_ANSWER).ok())
        .await
        .ok()
        .flatten()
        .filter(|s| s.found)
}

/// Bits per second from `bytes` now and the previous mark (or the track's start).
fn bitrate(mark: Option<(Instant, u64)>, since: Instant, bytes: u64, now: Instant) -> u64 {
    let (t0, b0) = mark.unwrap_or((since, 0));
    let secs = now.saturating_duration_since(t0).as_secs_f64();
    if secs < 0.05 {
        return 0;
    }
    (bytes.saturating_sub(b0) as f64 * 8.0 / secs).round() as u64
}

fn jitter_seconds(t: &TrackStats) -> f64 {
    if t.clock_rate == 0 {
        0.0
    } else {
        f64::from(t.jitter) / f64::from(t.clock_rate)
    }
}

/// `GET /sessions/{id}/stats`.
pub async fn stats(
    State(ms): State<Arc<MediaServer>>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let user = ms.user(&headers)?;
        let id = ms.find(&session_id, &user.0).await?;
        let (snapshot, active_speaker) = {
            let local = ms.local()?;
            let s =
                local.sessions.get(&id).cloned().ok_or_else(|| {
                    ApiError::from(Problem::not_found(format!("no session {id}")))
                })?;
            let speaker = local
                .speakers
                .current(s.channel_id)
                .and_then(|t| local.producer_of_track(s.channel_id, t))
                .map(|(_, p)| p.id);
            (s, speaker)
        };
        let send = ask(&ms, &snapshot, Direction::Send).await;
        let recv = ask(&ms, &snapshot, Direction::Recv).await;
        let now = Instant::now();
        let mut marks = Vec::new();
        let mut tracks: Vec<Value> = Vec::new();
        for p in &snapshot.producers {
            let t = send.as_ref().and_then(|s| {
                s.tracks
                    .iter()
                    .find(|t| t.direction == TrackDirection::Publish && t.track == Some(p.track()))
            });
            let key = (Direction::Send, p.produced.spec.mid.0.clone());
            let bytes = t.map_or(0, |t| t.bytes);
            let rate = bitrate(
                snapshot.rate_marks.get(&key).copied(),
                p.created,
                bytes,
                now,
            );
            marks.push((key, bytes));
            let mut track = json!({
                "track_id": p.id,
                "kind": kind_name(p.kind()),
                "direction": "publish",
                "bitrate": rate,
                "packets_sent": t.map_or(0, |t| t.packets),
                "packets_lost": t.map_or(0, |t| t.packets_lost),
                "jitter": t.map_or(0.0, jitter_seconds),
            });
            if p.kind() == sfu::MediaKind::Audio {
                // The level over the last second (dBov) and whether the track speaks;
                // silence (-127) until the shard has measured it.
                let voice = t.and_then(|t| t.voice);
                track["audio_level"] = json!(voice.map_or(-127, |v| v.level));
                track["speaking"] = json!(voice.is_some_and(|v| v.speaking));
            }
            tracks.push(track);
        }
        for c in &snapshot.consumers {
            let t = recv.as_ref().and_then(|s| {
                s.tracks
                    .iter()
                    .find(|t| t.direction == TrackDirection::Subscribe && t.mid == c.spec.mid)
            });
            let key = (Direction::Recv, c.spec.mid.0.clone());
            let bytes = t.map_or(0, |t| t.bytes);
            let rate = bitrate(
                snapshot.rate_marks.get(&key).copied(),
                c.created,
                bytes,
                now,
            );
            marks.push((key, bytes));
            tracks.push(json!({
                "track_id": c.producer,
                "consumer_id": c.id,
                "kind": kind_name(c.kind()),
                "direction": "subscribe",
                "bitrate": rate,
                "packets_sent": t.map_or(0, |t| t.packets),
                "packets_lost": t.map_or(0, |t| t.packets_lost),
                "jitter": t.map_or(0.0, jitter_seconds),
            }));
        }
        if let Some(m) = &snapshot.mix {
            let t = recv.as_ref().and_then(|s| {
                s.tracks
                    .iter()
                    .find(|t| t.direction == TrackDirection::Subscribe && t.mid == m.spec.mid)
            });
            let key = (Direction::Recv, m.spec.mid.0.clone());
            let bytes = t.map_or(0, |t| t.bytes);
            let rate = bitrate(
                snapshot.rate_marks.get(&key).copied(),
                m.created,
                bytes,
                now,
            );
            marks.push((key, bytes));
            tracks.push(json!({
                "track_id": "mix",
                "consumer_id": m.id,
                "kind": "audio",
                "direction": "subscribe",
                "bitrate": rate,
                "packets_sent": t.map_or(0, |t| t.packets),
                "packets_lost": t.map_or(0, |t| t.packets_lost),
                "jitter": t.map_or(0.0, jitter_seconds),
            }));
        }
        if let Ok(mut local) = ms.local.lock()
            && let Some(s) = local.sessions.get_mut(&id)
        {
            for (key, bytes) in marks {
                s.rate_marks.insert(key, (now, bytes));
            }
        }
        Ok::<Response, ApiError>(
            Json(json!({
                "session_id": id,
                "duration": snapshot.created.elapsed().as_secs(),
                "active_speaker": active_speaker,
                "tracks": tracks,
            }))
            .into_response(),
        )
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrate_is_measured_since_the_previous_mark() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(2);
        assert_eq!(bitrate(None, t0, 16_000, now), 64_000, "since the start");
        let mark = Some((t0 + Duration::from_secs(1), 8_000));
        assert_eq!(bitrate(mark, t0, 16_000, now), 64_000);
        assert_eq!(bitrate(Some((now, 16_000)), t0, 16_000, now), 0, "too soon");
    }
}
