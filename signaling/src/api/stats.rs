//! `GET /whep/{stream}/{session}/stats`: a viewer's figures as JSON — the allocator's report
//! (estimate, allocated and desired rates, degradation, the layer of each media section) and
//! the send-side estimator's internals. [`allocation_json`] is shared with the stream service's
//! viewer listing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use sfu::control::{TrackAllocation, TrackContent, ViewerStats};
use sfu::{MediaKind, SessionId};

use super::{check_auth, header_value};
use crate::problem::Problem;
use crate::registry::SessionRecord;
use crate::state::AppState;

fn kind_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn content_name(c: TrackContent) -> &'static str {
    match c {
        TrackContent::Camera => "camera",
        TrackContent::Screen => "screen",
    }
}

fn track_json(t: &TrackAllocation) -> Value {
    json!({
        "kind": kind_name(t.kind),
        "content": content_name(t.content),
        "layer": {"spatial": t.spatial, "temporal": t.temporal},
        "target": {"spatial": t.target_spatial, "temporal": t.target_temporal},
        "paused": t.paused,
        "allocated_bps": t.allocated.0,
        "sent_bps": t.sent.0,
        "loss": f64::from(t.loss_permille) / 1000.0,
        "jitter_ms": t.jitter_ms,
    })
}

/// The allocation fields of a viewer: `null` figures until its shard's first report (one a
/// second), `quality` the preset name when it has one.
pub fn allocation_json(rec: &SessionRecord) -> Map<String, Value> {
    let s: Option<&ViewerStats> = rec.stats.as_ref();
    let mut out = Map::new();
    out.insert("quality".into(), json!(rec.quality.map(|p| p.name)));
    out.insert(
        "estimate_bps".into(),
        json!(s.and_then(|s| s.estimate).map(|b| b.0)),
    );
    out.insert("allocated_bps".into(), json!(s.map(|s| s.allocated.0)));
    out.insert("desired_bps".into(), json!(s.map(|s| s.desired.0)));
    out.insert(
        "degraded".into(),
        json!(rec.degraded.is_some() || s.is_some_and(|s| s.degraded)),
    );
    out.insert(
        "wanted_bps".into(),
        json!(rec.degraded.map(|(_, wanted)| wanted.0)),
    );
    out.insert(
        "rtt_ms".into(),
        json!(s.and_then(|s| s.rtt).map(|r| r.as_secs_f64() * 1000.0)),
    );
    out.insert(
        "cap".into(),
        json!({
            "max_video_bps": s.and_then(|s| s.cap.max_video).map(|b| b.0),
            "max_height": s.and_then(|s| s.cap.max_height),
        }),
    );
    let tracks: Map<String, Value> = s
        .map(|s| {
            s.tracks
                .iter()
                .map(|t| (t.mid.0.clone(), track_json(t)))
                .collect()
        })
        .unwrap_or_default();
    out.insert("tracks".into(), Value::Object(tracks));
    out
}

fn bwe_json(b: &sfu::control::ViewerBweStats) -> Value {
    json!({
        "target_bps": b.target.0,
        "delay_based_bps": b.delay_based.0,
        "acked_bps": b.acked.map(|r| r.0),
        "loss": f64::from(b.loss_permille) / 1000.0,
        "rtt_ms": b.rtt.as_secs_f64() * 1000.0,
        "usage": format!("{:?}", b.usage).to_lowercase(),
        "rate_state": format!("{:?}", b.rate_state).to_lowercase(),
        "in_alr": b.in_alr,
        "last_probe_bps": b.last_probe.map(|r| r.0),
        "last_trial": b.last_trial.map(|t| json!({
            "rate_bps": t.rate.0,
            "sent_bps": t.sent.0,
            "received_bps": t.received.0,
            "aborted": t.aborted,
            "passed": t.passed,
        })),
        "trials": b.trials,
        "trials_passed": b.trials_passed,
        "packets_sent": b.packets_sent,
        "padding_packets": b.padding_packets,
        "padding_bytes": b.padding_bytes,
        "feedback_received": b.feedback_received,
        "probe_bytes": b.probe_bytes,
        "paced_packets": b.paced_packets,
        "pacer_queue": b.pacer_queue,
    })
}

/// The whole stats document of a session.
pub fn stats_json(id: SessionId, rec: &SessionRecord) -> Value {
    let mut body = Map::new();
    body.insert("session".into(), json!(id.to_string()));
    body.insert("stream".into(), json!(rec.stream));
    body.insert("shard".into(), json!(rec.shard.0));
    body.extend(allocation_json(rec));
    body.insert("bwe".into(), json!(rec.bwe.as_ref().map(bwe_json)));
    Value::Object(body)
}

/// `GET /whep/{stream}/{session}/stats`.
pub async fn get(
    State(st): State<Arc<AppState>>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = || -> Result<Response, Problem> {
        check_auth(&st, &headers)?;
        let id = u64::from_str_radix(&session, 16)
            .map(SessionId)
            .map_err(|_| Problem::not_found("no such session"))?;
        let reg = st
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned"))?;
        let rec = reg
            .session(id)
            .filter(|r| r.stream == stream)
            .ok_or_else(|| Problem::not_found("no such session"))?;
        let mut resp = stats_json(id, rec).to_string().into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, header_value("application/json"));
        Ok(resp)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Role;
    use sfu::control::QualityCap;
    use sfu::{Bitrate, Mid, ShardId};
    use std::time::Duration;

    fn record() -> SessionRecord {
        SessionRecord {
            stream: "demo".into(),
            role: Role::Viewer,
            shard: ShardId(1),
            etag: String::new(),
            remote_ufrag: String::new(),
            video_mids: vec![Mid("1".into())],
            selections: Vec::new(),
            bwe: None,
            quality: None,
            stats: None,
            degraded: None,
            layer_demand: Vec::new(),
        }
    }

    #[test]
    fn before_the_first_report_the_figures_are_null() {
        let v = stats_json(SessionId(0xab), &record());
        assert_eq!(v["session"], "00000000000000ab");
        assert_eq!(v["estimate_bps"], Value::Null);
        assert_eq!(v["allocated_bps"], Value::Null);
        assert_eq!(v["degraded"], false);
        assert_eq!(v["tracks"], json!({}));
        assert_eq!(v["bwe"], Value::Null);
        assert_eq!(v["quality"], Value::Null);
    }

    #[test]
    fn a_report_shows_per_mid_layers_and_the_session_figures() {
        let mut rec = record();
        rec.quality = crate::quality::find("720p");
        rec.stats = Some(ViewerStats {
            estimate: Some(Bitrate(900_000)),
            rtt: Some(Duration::from_millis(42)),
            allocated: Bitrate(600_000),
            desired: Bitrate(1_500_000),
            cap: QualityCap {
                max_video: Some(Bitrate(1_500_000)),
                max_height: Some(720),
            },
            degraded: false,
            tracks: vec![TrackAllocation {
                mid: Mid("1".into()),
                kind: MediaKind::Video,
                content: TrackContent::Screen,
                spatial: Some(0),
                temporal: Some(2),
                target_spatial: Some(1),
                target_temporal: None,
                paused: false,
                allocated: Bitrate(600_000),
                sent: Bitrate(580_000),
                loss_permille: 25,
                jitter_ms: 7,
            }],
        });
        rec.degraded = Some((Bitrate(600_000), Bitrate(1_500_000)));
        let v = stats_json(SessionId(1), &rec);
        assert_eq!(v["quality"], "720p");
        assert_eq!(v["estimate_bps"], 900_000);
        assert_eq!(v["allocated_bps"], 600_000);
        assert_eq!(v["desired_bps"], 1_500_000);
        assert_eq!(v["degraded"], true);
        assert_eq!(v["wanted_bps"], 1_500_000);
        assert_eq!(v["rtt_ms"], 42.0);
        assert_eq!(
            v["cap"],
            json!({"max_video_bps": 1_500_000, "max_height": 720})
        );
        let t = &v["tracks"]["1"];
        assert_eq!(t["kind"], "video");
        assert_eq!(t["content"], "screen");
        assert_eq!(t["layer"], json!({"spatial": 0, "temporal": 2}));
        assert_eq!(t["target"], json!({"spatial": 1, "temporal": null}));
        assert_eq!(t["paused"], false);
        assert_eq!(t["sent_bps"], 580_000);
        assert_eq!(t["loss"], 0.025);
        assert_eq!(t["jitter_ms"], 7);
    }
}
