//! The HTTP API of the livestream service, in process: a real media node (one shard, loopback,
//! ephemeral port), SQLite in a temporary directory, requests through the router.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use super::store::hash_key;
use super::{LivestreamService, router};
use crate::config::Config;
use crate::state::AppState;

mod socket_io;
mod viewer_limit;
mod whep;

const SECRET: &str = "livestream-test-secret";

struct Harness {
    app: Router,
    svc: Arc<LivestreamService>,
    state: Arc<AppState>,
    dir: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.state.media.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn harness(extra: &[&str]) -> Harness {
    let dir = std::env::temp_dir().join(format!("ringcast-lsapi-{}", Uuid::new_v4()));
    let d = dir.to_string_lossy().into_owned();
    let mut args = vec![
        "ringcast",
        "--shards",
        "1",
        "--io",
        "mmsg",
        "--rtc-min-port",
        "0",
        "--rtc-bind",
        "127.0.0.1",
        "--no-pin",
        "--data-dir",
        &d,
    ];
    args.extend_from_slice(extra);
    let cfg = Config::try_parse_from(args).expect("valid flags");
    let (state, _events) = crate::build(cfg).expect("media node starts");
    let svc = LivestreamService::start(Arc::clone(&state))
        .await
        .expect("livestream service starts");
    Harness {
        app: router(Arc::clone(&svc)),
        svc,
        state,
        dir,
    }
}

fn token(sub: &str) -> String {
    let exp = super::now_ms() / 1000 + 3600;
    jsonwebtoken::encode(
        &Header::default(),
        &json!({ "sub": sub, "exp": exp }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn call(
    h: &Harness,
    method: &str,
    uri: &str,
    hdrs: &[(&str, String)],
    body: Option<Value>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in hdrs {
        req = req.header(*k, v);
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = h
        .app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn bearer(user: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", token(user)))
}

fn key_header(key: &str) -> (&'static str, String) {
    ("x-stream-key", key.to_string())
}

#[track_caller]
fn assert_problem(r: &Resp, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["status"], json!(status), "{:?}", r.body);
}

/// Creates a livestream; returns (id, key).
async fn create(h: &Harness, hdrs: &[(&str, String)]) -> (String, String) {
    let r = call(
        h,
        "POST",
        "/api/livestream/create",
        hdrs,
        Some(json!({"title": "Launch", "description": "d", "recordingEnabled": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["streamId"].as_str().expect("streamId").to_string(),
        r.body["streamKey"].as_str().expect("streamKey").to_string(),
    )
}

#[tokio::test]
async fn create_hands_out_a_key_once_and_stores_only_its_hash() {
    let h = harness(&[]).await;
    let r = call(
        &h,
        "POST",
        "/api/livestream/create",
        &[],
        Some(json!({"title": "  My Stream ", "description": "about", "recordingEnabled": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["streamId"].as_str().expect("id");
    let key = r.body["streamKey"].as_str().expect("key");
    assert!(key.starts_with("lsk_"));
    assert_eq!(r.body["title"], json!("My Stream"));
    assert_eq!(r.body["status"], json!("created"));
    assert_eq!(r.body["recordingEnabled"], json!(true));
    let stored = h
        .svc
        .store
        .get(id.parse().expect("uuid"))
        .await
        .expect("db")
        .expect("row");
    assert_eq!(stored.stream_key_hash, hash_key(key));
    assert_ne!(stored.stream_key_hash, key);
    let got = call(&h, "GET", &format!("/api/livestream/{id}"), &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.get("streamKey").is_none(), "{:?}", got.body);
    assert!(!got.body.to_string().contains(key));
    // No title: 400. Not JSON: 415.
    assert_problem(
        &call(&h, "POST", "/api/livestream/create", &[], Some(json!({}))).await,
        400,
    );
    assert_problem(
        &call(
            &h,
            "GET",
            &format!("/api/livestream/{}", Uuid::new_v4()),
            &[],
            None,
        )
        .await,
        404,
    );
    assert_problem(
        &call(&h, "GET", "/api/livestream/not-a-uuid", &[], None).await,
        404,
    );
}

#[tokio::test]
async fn only_the_key_holder_or_owner_starts_and_the_key_rotates_at_the_end() {
    let h = harness(&["--jwt-secret", SECRET, "--livestream-admins", "mod"]).await;
    // With JWT configured, creating needs a token.
    assert_problem(
        &call(
            &h,
            "POST",
            "/api/livestream/create",
            &[],
            Some(json!({"title": "x"})),
        )
        .await,
        401,
    );
    let (id, key) = create(&h, &[bearer("alice")]).await;
    let start = format!("/api/livestream/{id}/start");
    assert_problem(&call(&h, "POST", &start, &[], None).await, 401);
    assert_problem(
        &call(&h, "POST", &start, &[bearer("mallory")], None).await,
        403,
    );
    assert_problem(
        &call(&h, "POST", &start, &[key_header("lsk_wrong")], None).await,
        403,
    );
    // An admin moderates but does not start.
    assert_problem(&call(&h, "POST", &start, &[bearer("mod")], None).await, 403);
    let r = call(&h, "POST", &start, &[key_header(&key)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["success"], json!(true));
    assert_eq!(r.body["status"], json!("live"));
    // The owner's token works too, and a second start changes nothing.
    let r = call(&h, "POST", &start, &[bearer("alice")], None).await;
    assert_eq!(r.status, StatusCode::OK);

    let active = call(
        &h,
        "GET",
        "/api/livestream/active?limit=10&offset=0",
        &[],
        None,
    )
    .await;
    assert_eq!(active.status, StatusCode::OK);
    let streams = active.body["streams"].as_array().expect("streams");
    assert!(streams.iter().any(|s| s["streamId"] == json!(id)));

    let end = format!("/api/livestream/{id}/end");
    assert_problem(
        &call(&h, "POST", &end, &[bearer("mallory")], None).await,
        403,
    );
    let r = call(
        &h,
        "POST",
        &end,
        &[],
        Some(json!({"recordingUrl": "https://rec.example/1.webm", "streamKey": key})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["success"], json!(true));
    assert_eq!(r.body["recordingUrl"], json!("https://rec.example/1.webm"));
    let new_key = r.body["streamKey"].as_str().expect("new key").to_string();
    assert_ne!(new_key, key);
    assert_problem(
        &call(&h, "POST", &end, &[key_header(&new_key)], None).await,
        409,
    );
    // The old key is dead; the new one starts it again.
    assert_problem(
        &call(&h, "POST", &start, &[key_header(&key)], None).await,
        403,
    );
    let r = call(&h, "POST", &start, &[key_header(&new_key)], None).await;
    assert_eq!(r.body["status"], json!("live"));
    let active = call(&h, "GET", "/api/livestream/active", &[], None).await;
    assert_eq!(active.body["streams"].as_array().map(Vec::len), Some(1));
    // A moderator ends it at once and does not learn the new key.
    let r = call(&h, "POST", &end, &[bearer("mod")], None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body.get("streamKey").is_none());
    let active = call(&h, "GET", "/api/livestream/active", &[], None).await;
    assert_eq!(active.body["streams"], json!([]));
    // Rotation on demand.
    let r = call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/key"),
        &[bearer("alice")],
        None,
    )
    .await;
    let rotated = r.body["streamKey"].as_str().expect("key").to_string();
    assert_problem(
        &call(&h, "POST", &start, &[key_header(&new_key)], None).await,
        403,
    );
    assert_eq!(
        call(&h, "POST", &start, &[key_header(&rotated)], None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn viewers_need_tokens_respect_the_limit_and_are_counted_in_rows() {
    let h = harness(&["--jwt-secret", SECRET, "--livestream-max-viewers", "2"]).await;
    let (id, key) = create(&h, &[bearer("alice")]).await;
    let join = format!("/api/livestream/{id}/join");
    // Not live yet.
    assert_problem(&call(&h, "POST", &join, &[bearer("v1")], None).await, 409);
    call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/start"),
        &[key_header(&key)],
        None,
    )
    .await;
    assert_problem(&call(&h, "POST", &join, &[], None).await, 401);
    let r = call(&h, "POST", &join, &[bearer("v1")], None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["success"], json!(true));
    assert!(r.body["iceServers"].is_array());
    assert_eq!(r.body["viewerCount"], json!(1));
    assert_eq!(
        call(&h, "POST", &join, &[bearer("v2")], None).await.body["viewerCount"],
        json!(2)
    );
    let full = call(&h, "POST", &join, &[bearer("v3")], None).await;
    assert_problem(&full, 429);
    assert_eq!(full.body["limit"], json!(2));
    // An existing viewer joining again is still one viewer.
    assert_eq!(
        call(&h, "POST", &join, &[bearer("v1")], None).await.body["viewerCount"],
        json!(2)
    );
    let r = call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/leave"),
        &[bearer("v2")],
        None,
    )
    .await;
    assert_eq!(r.body["success"], json!(true));
    assert_eq!(
        call(&h, "POST", &join, &[bearer("v3")], None).await.status,
        StatusCode::OK
    );

    let a = call(
        &h,
        "GET",
        &format!("/api/livestream/{id}/analytics"),
        &[bearer("alice")],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["peakViewers"], json!(2));
    assert_eq!(a.body["currentViewers"], json!(2));
    assert_eq!(a.body["totalViews"], json!(3));
    let metrics = || {
        let mut out = String::new();
        h.state.services.render(&mut out);
        out
    };
    let m = metrics();
    assert!(m.contains("ringcast_livestream_viewers 2\n"), "{m}");
    assert!(
        m.contains("ringcast_livestream_joins_refused_total 1\n"),
        "{m}"
    );
    let rows = a.body["viewers"].as_array().expect("rows");
    let v2 = rows
        .iter()
        .find(|r| r["userId"] == json!("v2"))
        .expect("v2 row");
    assert!(v2["leftAt"].is_string());
    assert!(
        rows.iter()
            .filter(|r| r["userId"] != json!("v2"))
            .all(|r| r["leftAt"].is_null())
    );
    assert_problem(
        &call(
            &h,
            "GET",
            &format!("/api/livestream/{id}/analytics"),
            &[bearer("v1")],
            None,
        )
        .await,
        403,
    );
    // Ending closes every row.
    call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/end"),
        &[key_header(&key)],
        None,
    )
    .await;
    let rows = h
        .svc
        .store
        .viewers(id.parse().expect("uuid"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.left_at.is_some()));
    assert_eq!(h.svc.viewer_count(id.parse().expect("uuid")).await, 0);
    let m = metrics();
    assert!(m.contains("ringcast_livestream_viewers 0\n"), "{m}");
}

#[tokio::test]
async fn an_http_join_without_media_expires() {
    let h = harness(&["--livestream-join-ttl", "1"]).await;
    let (id, key) = create(&h, &[]).await;
    call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/start"),
        &[key_header(&key)],
        None,
    )
    .await;
    let r = call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/join"),
        &[("x-user-id", "v".into())],
        None,
    )
    .await;
    assert_eq!(r.body["viewerCount"], json!(1));
    let sid: Uuid = id.parse().expect("uuid");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.svc.viewer_count(sid).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the HTTP join never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = h.svc.store.viewers(sid).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].left_at.is_some());
}

#[tokio::test]
async fn chat_is_rate_limited_per_user_with_a_clear_error_and_keeps_order() {
    let h = harness(&[
        "--jwt-secret",
        SECRET,
        "--chat-rate-limit",
        "5",
        "--chat-rate-window",
        "10",
    ])
    .await;
    let (id, key) = create(&h, &[bearer("alice")]).await;
    let chat = format!("/api/livestream/{id}/chat");
    // Closed until live.
    assert_problem(
        &call(
            &h,
            "POST",
            &chat,
            &[bearer("bob")],
            Some(json!({"message": "hi"})),
        )
        .await,
        409,
    );
    call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/start"),
        &[key_header(&key)],
        None,
    )
    .await;
    assert_problem(
        &call(&h, "POST", &chat, &[], Some(json!({"message": "hi"}))).await,
        401,
    );
    assert_problem(
        &call(
            &h,
            "POST",
            &chat,
            &[bearer("bob")],
            Some(json!({"message": "   "})),
        )
        .await,
        400,
    );
    let long = "x".repeat(501);
    assert_problem(
        &call(
            &h,
            "POST",
            &chat,
            &[bearer("bob")],
            Some(json!({"message": long})),
        )
        .await,
        400,
    );
    for i in 0..5 {
        let r = call(
            &h,
            "POST",
            &chat,
            &[bearer("bob")],
            Some(json!({"message": format!("m{i}")})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["userId"], json!("bob"));
        assert_eq!(r.body["message"], json!(format!("m{i}")));
        assert!(r.body["id"].is_string() && r.body["timestamp"].is_string());
    }
    let limited = call(
        &h,
        "POST",
        &chat,
        &[bearer("bob")],
        Some(json!({"message": "m5"})),
    )
    .await;
    assert_problem(&limited, 429);
    let detail = limited.body["detail"].as_str().expect("detail");
    assert!(detail.contains("at most 5 messages per 10 s"), "{detail}");
    let retry_ms = limited.body["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(retry_ms > 0 && retry_ms <= 10_000, "{retry_ms}");
    assert!(limited.headers.contains_key("retry-after"));
    // Another user is not limited by bob.
    let r = call(
        &h,
        "POST",
        &chat,
        &[bearer("carol")],
        Some(json!({"message": "c0"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let hist = call(&h, "GET", &chat, &[bearer("dave")], None).await;
    let texts: Vec<&str> = hist.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4", "c0"]);
    let paged = call(
        &h,
        "GET",
        &format!("{chat}?limit=2"),
        &[bearer("dave")],
        None,
    )
    .await;
    let texts: Vec<&str> = paged.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    assert_eq!(texts, ["m4", "c0"]);
}

#[tokio::test]
async fn moderators_delete_messages_mute_users_and_others_cannot() {
    let h = harness(&["--jwt-secret", SECRET, "--livestream-admins", "mod"]).await;
    let (id, key) = create(&h, &[bearer("alice")]).await;
    call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/start"),
        &[key_header(&key)],
        None,
    )
    .await;
    let chat = format!("/api/livestream/{id}/chat");
    let spam = call(
        &h,
        "POST",
        &chat,
        &[bearer("troll")],
        Some(json!({"message": "spam"})),
    )
    .await;
    let spam_id = spam.body["id"].as_str().expect("id").to_string();
    let del = format!("{chat}/{spam_id}");
    assert_problem(
        &call(&h, "DELETE", &del, &[bearer("troll")], None).await,
        403,
    );
    let r = call(&h, "DELETE", &del, &[bearer("mod")], None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_problem(
        &call(&h, "DELETE", &del, &[bearer("alice")], None).await,
        404,
    );
    let hist = call(&h, "GET", &chat, &[bearer("alice")], None).await;
    assert_eq!(hist.body["messages"], json!([]));

    let mute = format!("/api/livestream/{id}/mute");
    assert_problem(
        &call(
            &h,
            "POST",
            &mute,
            &[bearer("troll")],
            Some(json!({"userId": "troll"})),
        )
        .await,
        403,
    );
    let r = call(
        &h,
        "POST",
        &mute,
        &[key_header(&key)],
        Some(json!({"userId": "troll", "durationSeconds": 600})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["mutedUntil"].is_string());
    let refused = call(
        &h,
        "POST",
        &chat,
        &[bearer("troll")],
        Some(json!({"message": "again"})),
    )
    .await;
    assert_problem(&refused, 403);
    assert!(refused.body["mutedUntil"].is_string());
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("muted"))
    );
    let r = call(
        &h,
        "DELETE",
        &format!("{mute}/troll"),
        &[bearer("alice")],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_problem(
        &call(
            &h,
            "DELETE",
            &format!("{mute}/troll"),
            &[bearer("alice")],
            None,
        )
        .await,
        404,
    );
    let r = call(
        &h,
        "POST",
        &chat,
        &[bearer("troll")],
        Some(json!({"message": "sorry"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn active_list_pages_and_validates_its_parameters() {
    let h = harness(&[]).await;
    for _ in 0..3 {
        let (id, key) = create(&h, &[]).await;
        call(
            &h,
            "POST",
            &format!("/api/livestream/{id}/start"),
            &[key_header(&key)],
            None,
        )
        .await;
    }
    let (_, _) = create(&h, &[]).await;
    let all = call(&h, "GET", "/api/livestream/active", &[], None).await;
    assert_eq!(all.body["streams"].as_array().map(Vec::len), Some(3));
    let page = call(
        &h,
        "GET",
        "/api/livestream/active?limit=2&offset=2",
        &[],
        None,
    )
    .await;
    assert_eq!(page.body["streams"].as_array().map(Vec::len), Some(1));
    assert_problem(
        &call(&h, "GET", "/api/livestream/active?limit=-1", &[], None).await,
        400,
    );
    assert_problem(
        &call(&h, "GET", "/api/livestream/active?offset=x", &[], None).await,
        400,
    );
}
