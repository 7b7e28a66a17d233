//! Quality adaptation over the HTTP API in process (real shards, no sockets for HTTP): WHEP
//! quality presets, the viewer statistics the shards report, the aggregate `/metrics` families,
//! and the WHIP layers resource (JSON and server-sent events) fed by the media plane's dynacast
//! events.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clap::Parser;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use sfu::control::{Event, QualityCap, TrackAllocation, TrackContent, ViewerStats};
use sfu::{Bitrate, MediaKind, Mid, Rid, SessionId, ShardId};
use signaling::config::Config;
use signaling::state::AppState;

const CHROME_VIEW: &str = include_str!("data/chrome-view.sdp");
const CHROME_SIMULCAST: &str = include_str!("../src/sdp/testdata/chrome_simulcast.sdp");

fn server() -> Arc<AppState> {
    let cfg = Config::try_parse_from([
        "ringcast",
        "--shards",
        "1",
        "--rtc-min-port",
        "0",
        "--rtc-bind",
        "127.0.0.1",
        "--no-pin",
        "--io",
        "mmsg",
    ])
    .expect("valid flags");
    signaling::build(cfg).expect("server starts").0
}

async fn call(
    st: &Arc<AppState>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = signaling::api::router(Arc::clone(st))
        .oneshot(req)
        .await
        .expect("router answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn post(path: &str, ct: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, ct)
        .body(body.into())
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn problem(status: StatusCode, h: &axum::http::HeaderMap, body: &str) -> u16 {
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json",
        "{status} {body}"
    );
    status.as_u16()
}

/// Creates a WHEP viewer; returns its Location.
async fn view(st: &Arc<AppState>, path: &str) -> String {
    let (status, h, body) = call(st, post(path, "application/sdp", CHROME_VIEW)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    h.get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn session_of(location: &str) -> SessionId {
    SessionId(u64::from_str_radix(location.rsplit('/').next().unwrap(), 16).unwrap())
}

async fn stats(st: &Arc<AppState>, location: &str) -> Value {
    let (status, _, body) = call(st, get(&format!("{location}/stats"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn whep_viewers_choose_a_quality_preset_at_join_and_change_it_later() {
    let st = server();
    let a = view(&st, "/whep/q?quality=720p").await;
    assert_eq!(stats(&st, &a).await["quality"], "720p");
    let b = view(&st, "/whep/q?quality=LOW").await;
    assert_eq!(stats(&st, &b).await["quality"], "low");
    let none = view(&st, "/whep/q").await;
    assert_eq!(stats(&st, &none).await["quality"], Value::Null);

    for (query, expected) in [("quality=4k", 422), ("quality=", 400), ("quality=%zz", 422)] {
        let (status, h, body) = call(
            &st,
            post(&format!("/whep/q?{query}"), "application/sdp", CHROME_VIEW),
        )
        .await;
        assert_eq!(problem(status, &h, &body), expected, "{query}: {body}");
    }

    // The layer extension's quality field changes it (alone or with a layer), null removes it.
    let layer = format!("{a}/layer");
    let json = "application/json";
    let (status, _, body) = call(&st, post(&layer, json, r#"{"quality":"ultra"}"#)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(stats(&st, &a).await["quality"], "ultra");
    let (status, _, body) = call(&st, post(&layer, json, r#"{"quality":null}"#)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(stats(&st, &a).await["quality"], Value::Null);
    for (body, expected) in [
        (r#"{"quality":"best"}"#, 422),
        (r#"{"quality":3}"#, 400),
        (r#"{"quality":"high","spatialLayerId":"x"}"#, 400),
    ] {
        let (status, h, resp) = call(&st, post(&layer, json, body.to_owned())).await;
        assert_eq!(problem(status, &h, &resp), expected, "{body}: {resp}");
    }
    // A refused request changes nothing.
    assert_eq!(stats(&st, &a).await["quality"], Value::Null);
}

fn report(degraded: bool, paused: bool) -> ViewerStats {
    ViewerStats {
        estimate: Some(Bitrate(650_000)),
        rtt: Some(Duration::from_millis(30)),
        allocated: Bitrate(450_000),
        desired: Bitrate(2_400_000),
        cap: QualityCap::default(),
        degraded,
        tracks: vec![
            TrackAllocation {
                mid: Mid("0".into()),
                kind: MediaKind::Audio,
                content: TrackContent::Camera,
                spatial: None,
                temporal: None,
                target_spatial: None,
                target_temporal: None,
                paused: false,
                allocated: Bitrate(40_000),
                sent: Bitrate(38_000),
                loss_permille: 0,
                jitter_ms: 2,
            },
            TrackAllocation {
                mid: Mid("1".into()),
                kind: MediaKind::Video,
                content: TrackContent::Camera,
                spatial: Some(0),
                temporal: Some(2),
                target_spatial: Some(0),
                target_temporal: Some(2),
                paused,
                allocated: Bitrate(410_000),
                sent: Bitrate(395_000),
                loss_permille: 12,
                jitter_ms: 9,
            },
        ],
    }
}

#[tokio::test]
async fn shard_reports_reach_the_stats_resource_and_metrics_aggregates() {
    let st = server();
    let a = view(&st, "/whep/m").await;
    let b = view(&st, "/whep/m").await;
    let before = stats(&st, &a).await;
    assert_eq!(before["allocated_bps"], Value::Null);
    assert_eq!(before["tracks"], json!({}));

    signaling::handle_event(
        &st,
        Event::ViewerStats {
            id: session_of(&a),
            shard: ShardId(0),
            stats: report(false, false),
        },
    );
    signaling::handle_event(
        &st,
        Event::ViewerStats {
            id: session_of(&b),
            shard: ShardId(0),
            stats: report(false, true),
        },
    );
    signaling::handle_event(
        &st,
        Event::QualityDegraded {
            id: session_of(&b),
            shard: ShardId(0),
            degraded: true,
            allocated: Bitrate(0),
            wanted: Bitrate(2_400_000),
        },
    );
    let s = stats(&st, &a).await;
    assert_eq!(s["estimate_bps"], 650_000);
    assert_eq!(s["allocated_bps"], 450_000);
    assert_eq!(s["desired_bps"], 2_400_000);
    assert_eq!(s["degraded"], false);
    assert_eq!(s["rtt_ms"], 30.0);
    assert_eq!(
        s["tracks"]["1"]["layer"],
        json!({"spatial": 0, "temporal": 2})
    );
    assert_eq!(s["tracks"]["1"]["sent_bps"], 395_000);
    assert_eq!(s["tracks"]["1"]["loss"], 0.012);
    assert_eq!(s["tracks"]["0"]["kind"], "audio");
    let s = stats(&st, &b).await;
    assert_eq!(
        (s["degraded"].clone(), s["wanted_bps"].clone()),
        (json!(true), json!(2_400_000))
    );
    assert_eq!(s["tracks"]["1"]["paused"], true);

    let (status, _, metrics) = call(&st, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "ringcast_viewer_layer{layer=\"0\"} 1",
        "ringcast_viewer_layer{layer=\"paused\"} 1",
        "ringcast_viewers_degraded 1",
        "ringcast_viewer_loss_permille_bucket{le=\"10\"} 0",
        "ringcast_viewer_loss_permille_bucket{le=\"20\"} 2",
        "ringcast_viewer_rtt_seconds_bucket{le=\"0.05\"} 2",
        "ringcast_viewer_rtt_seconds_count 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    // Cleared: the gauge follows.
    signaling::handle_event(
        &st,
        Event::QualityDegraded {
            id: session_of(&b),
            shard: ShardId(0),
            degraded: false,
            allocated: Bitrate(2_400_000),
            wanted: Bitrate(2_400_000),
        },
    );
    signaling::handle_event(
        &st,
        Event::ViewerStats {
            id: session_of(&b),
            shard: ShardId(0),
            stats: report(false, false),
        },
    );
    let (_, _, metrics) = call(&st, get("/metrics")).await;
    assert!(metrics.lines().any(|l| l == "ringcast_viewers_degraded 0"));
    assert!(
        metrics
            .lines()
            .any(|l| l == "ringcast_viewer_layer{layer=\"0\"} 2")
    );
}

/// Reads the next complete server-sent event's data from a streaming body.
async fn next_event(body: &mut Body, buf: &mut String) -> Option<Value> {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            if block.lines().any(|l| l == "event: layers") {
                return Some(serde_json::from_str(&data).unwrap());
            }
            continue;
        }
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")?
            .expect("body frame");
        if let Ok(data) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn whip_layers_resource_follows_the_media_planes_layer_demand() {
    let st = server();
    let (status, h, body) = call(&st, post("/whip/dyn", "application/sdp", CHROME_SIMULCAST)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let location = h
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let layers = format!("{location}/layers");
    let links: Vec<&str> = h
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        links.contains(&format!("<{layers}>; rel=\"urn:ringcast:whip:layers\"").as_str()),
        "{links:?}"
    );

    // CORS preflight for browsers that send a bearer token.
    let (status, h, _) = call(&st, Request::options(&layers).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(h.get(header::ACCESS_CONTROL_ALLOW_METHODS).is_some());

    // Before any demand: everything is needed.
    let (status, h, body) = call(&st, get(&layers)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "application/json");
    let all = json!({"1": {"active": ["q", "h", "f"], "inactive": []}});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), all);

    // The event stream: the current object at once, then each change.
    let resp = signaling::api::router(Arc::clone(&st))
        .oneshot(
            Request::get(&layers)
                .header(header::ACCEPT, "text/event-stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    let mut sse = resp.into_body();
    let mut buf = String::new();
    assert_eq!(next_event(&mut sse, &mut buf).await, Some(all.clone()));

    let (key, track) = {
        let reg = st.registry.lock().unwrap();
        let (key, video) = reg.published("dyn").unwrap();
        (key, video[0].track)
    };
    let demand = |active: &[&str]| Event::LayerDemand {
        stream: key,
        track,
        mid: Mid("1".into()),
        active: active.iter().map(|r| Rid((*r).into())).collect(),
    };
    signaling::handle_event(&st, demand(&["q"]));
    let low = json!({"1": {"active": ["q"], "inactive": ["h", "f"]}});
    assert_eq!(next_event(&mut sse, &mut buf).await, Some(low.clone()));
    let (_, _, body) = call(&st, get(&layers)).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), low);
    // The same demand again sends nothing; the next change does.
    signaling::handle_event(&st, demand(&["q"]));
    signaling::handle_event(&st, demand(&["q", "h", "f"]));
    assert_eq!(next_event(&mut sse, &mut buf).await, Some(all));

    // Viewers have no layers resource; unknown sessions neither.
    let viewer = view(&st, "/whep/dyn").await;
    let (status, h, body) = call(
        &st,
        get(&format!(
            "/whip/dyn/{}/layers",
            viewer.rsplit('/').next().unwrap()
        )),
    )
    .await;
    assert_eq!(problem(status, &h, &body), 404);
    let (status, h, body) = call(&st, get("/whip/dyn/0123456789abcdef/layers")).await;
    assert_eq!(problem(status, &h, &body), 404);

    // The publisher leaves: the event stream ends.
    let (status, _, _) = call(&st, Request::delete(&location).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next_event(&mut sse, &mut buf).await, None);
}

#[tokio::test]
async fn a_whep_preset_reaches_the_viewers_shard_as_its_cap() {
    let cfg = Config::try_parse_from([
        "ringcast",
        "--shards",
        "1",
        "--rtc-min-port",
        "0",
        "--rtc-bind",
        "127.0.0.1",
        "--no-pin",
        "--io",
        "mmsg",
    ])
    .expect("valid flags");
    let (st, mut events) = signaling::build(cfg).expect("server starts");
    let v = view(&st, "/whep/cap?quality=480p").await;
    let id = session_of(&v);
    // The shard reports every viewer once a second, connected or not, with the cap it holds.
    let cap = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await.expect("the shards run") {
                Event::ViewerStats { id: i, stats, .. } if i == id => return stats.cap,
                _ => {}
            }
        }
    })
    .await
    .expect("a report within 5 s");
    assert_eq!(
        cap,
        QualityCap {
            max_video: Some(Bitrate(800_000)),
            max_height: Some(480)
        }
    );
    // Changed through the layer extension: the next report has the new cap.
    let (status, _, body) = call(
        &st,
        post(
            &format!("{v}/layer"),
            "application/json",
            r#"{"quality":"medium"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let cap = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await.expect("the shards run") {
                Event::ViewerStats { id: i, stats, .. }
                    if i == id && stats.cap.max_height == Some(360) =>
                {
                    return stats.cap;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a report with the new cap within 5 s");
    assert_eq!(cap.max_video, Some(Bitrate(500_000)));
    st.media.shutdown();
}

#[tokio::test]
async fn degradation_notices_are_published_on_the_bus_with_the_viewers_figures() {
    let st = server();
    let svc = signaling::stream_service::StreamService::start(
        Arc::clone(&st),
        "http://127.0.0.1:9".into(),
    )
    .await
    .expect("stream service starts");
    let mut sub = svc
        .bus
        .subscribe("media.quality.>".into())
        .await
        .expect("subscription");
    let v = view(&st, "/whep/notice").await;
    let id = session_of(&v);
    let report = Event::ViewerStats {
        id,
        shard: ShardId(0),
        stats: report(false, false),
    };
    signaling::handle_event(&st, report.clone());
    for (degraded, subject) in [
        (true, "media.quality.degraded"),
        (false, "media.quality.restored"),
    ] {
        let ev = Event::QualityDegraded {
            id,
            shard: ShardId(0),
            degraded,
            allocated: Bitrate(450_000),
            wanted: Bitrate(2_400_000),
        };
        signaling::handle_event(&st, ev.clone());
        svc.on_media_event(&ev);
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("a notice within 5 s")
            .expect("the bus runs");
        assert_eq!(m.subject, subject);
        let p: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(p["session_id"], v.rsplit('/').next().unwrap());
        assert_eq!(p["stream"], "notice");
        assert_eq!(p["allocated_bps"], 450_000);
        assert_eq!(p["wanted_bps"], 2_400_000);
        assert_eq!(p["estimate_bps"], 650_000);
        assert!(
            p["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{p}"
        );
    }
    // An unknown session is not announced.
    svc.on_media_event(&Event::QualityDegraded {
        id: SessionId(1),
        shard: ShardId(0),
        degraded: true,
        allocated: Bitrate(1),
        wanted: Bitrate(2),
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.next())
            .await
            .is_err()
    );
}
