//! A livestream's own viewer limit (`maxViewers` at creation), in process: validated against
//! `LIVESTREAM_MAX_VIEWERS`, shown wherever the livestream is, and enforced on HTTP and WHEP
//! joins (Socket.IO joins go through the same check; tests/tests/livestream_socketio.rs drives
//! them with socket.io-client).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::whep::whep;
use super::{Harness, SECRET, assert_problem, bearer, call, harness, key_header};
use crate::livestream::store::{Livestream, Status, hash_key};

/// Creates a livestream with `body` as alice and starts it; returns (id, create response body).
async fn create_live(h: &Harness, body: Value) -> (String, Value) {
    let r = call(
        h,
        "POST",
        "/api/livestream/create",
        &[bearer("alice")],
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["streamId"].as_str().expect("streamId").to_string();
    let key = r.body["streamKey"].as_str().expect("streamKey").to_string();
    let started = call(
        h,
        "POST",
        &format!("/api/livestream/{id}/start"),
        &[key_header(&key)],
        None,
    )
    .await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    (id, r.body)
}

async fn http_join(h: &Harness, id: &str, user: &str) -> super::Resp {
    call(
        h,
        "POST",
        &format!("/api/livestream/{id}/join"),
        &[bearer(user)],
        None,
    )
    .await
}

#[tokio::test]
async fn a_stream_limited_to_two_refuses_the_third_viewer_while_another_admits_more() {
    let h = harness(&["--jwt-secret", SECRET, "--livestream-max-viewers", "10"]).await;
    let (small, created) = create_live(&h, json!({"title": "Small room", "maxViewers": 2})).await;
    assert_eq!(created["maxViewers"], json!(2), "{created}");
    let (open, created) = create_live(&h, json!({"title": "Open room"})).await;
    assert_eq!(created["maxViewers"], Value::Null, "{created}");

    // Two viewers fill the small room: one over HTTP, one over WHEP.
    let r = http_join(&h, &small, "v1").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (r, _) = whep(&h, &small, Some("v2"), "v2000001").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // The third is refused on every path, with the stream's own limit.
    let full = http_join(&h, &small, "v3").await;
    assert_problem(&full, 429);
    assert_eq!(full.body["limit"], json!(2), "{:?}", full.body);
    assert!(full.headers.contains_key("retry-after"));
    let detail = full.body["detail"].as_str().expect("detail");
    assert!(detail.contains("maxViewers"), "{detail}");
    let (full, _) = whep(&h, &small, Some("v3"), "v3000001").await;
    assert_problem(&full, 429);
    assert_eq!(full.body["limit"], json!(2), "{:?}", full.body);
    // A viewer already watching is never refused.
    assert_eq!(http_join(&h, &small, "v1").await.status, StatusCode::OK);

    // The stream without a limit of its own admits more than two (the server's 10 apply).
    for (i, user) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        let r = http_join(&h, &open, user).await;
        assert_eq!(r.status, StatusCode::OK, "{user}: {:?}", r.body);
        assert_eq!(r.body["viewerCount"], json!(i + 1));
    }
    let (r, _) = whep(&h, &open, Some("v5"), "v5000001").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(h.svc.viewer_count(open.parse().expect("uuid")).await, 5);

    // Leaving frees a place in the small room.
    call(
        &h,
        "POST",
        &format!("/api/livestream/{small}/leave"),
        &[bearer("v1")],
        None,
    )
    .await;
    assert_eq!(http_join(&h, &small, "v3").await.status, StatusCode::OK);

    // The limit is in every view of the livestream.
    let got = call(&h, "GET", &format!("/api/livestream/{small}"), &[], None).await;
    assert_eq!(got.body["maxViewers"], json!(2), "{:?}", got.body);
    let got = call(&h, "GET", &format!("/api/livestream/{open}"), &[], None).await;
    assert!(got.body["maxViewers"].is_null(), "{:?}", got.body);
    let active = call(&h, "GET", "/api/livestream/active", &[], None).await;
    let mut limits: Vec<(String, Value)> = active.body["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| (s["title"].to_string(), s["maxViewers"].clone()))
        .collect();
    limits.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        limits,
        [
            ("\"Open room\"".to_string(), Value::Null),
            ("\"Small room\"".to_string(), json!(2))
        ]
    );
}

#[tokio::test]
async fn max_viewers_must_be_an_integer_from_one_to_the_server_limit() {
    let h = harness(&["--livestream-max-viewers", "50"]).await;
    for bad in [
        json!(0),
        json!(-1),
        json!(51),
        json!(2.5),
        json!("5"),
        json!(true),
        json!([3]),
        json!(u64::MAX),
    ] {
        let r = call(
            &h,
            "POST",
            "/api/livestream/create",
            &[],
            Some(json!({"title": "t", "maxViewers": bad})),
        )
        .await;
        assert_problem(&r, 400);
        let detail = r.body["detail"].as_str().expect("detail");
        assert!(
            detail.contains("maxViewers") && detail.contains("from 1 to 50"),
            "{bad}: {detail}"
        );
    }
    // Nothing was created by the refused requests.
    assert_eq!(
        h.svc
            .store
            .list(Status::Created, 100, 0)
            .await
            .expect("list")
            .len(),
        0
    );
    for (given, shown) in [
        (json!(1), json!(1)),
        (json!(50), json!(50)),
        (Value::Null, Value::Null),
    ] {
        let r = call(
            &h,
            "POST",
            "/api/livestream/create",
            &[],
            Some(json!({"title": "t", "maxViewers": given})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{given}: {:?}", r.body);
        assert_eq!(r.body["maxViewers"], shown, "{given}");
    }
}

#[tokio::test]
async fn a_lowered_server_limit_caps_a_streams_own_limit() {
    // A livestream created under a higher LIVESTREAM_MAX_VIEWERS than the server runs with now.
    let h = harness(&["--livestream-max-viewers", "2"]).await;
    let ls = Livestream {
        id: uuid::Uuid::new_v4(),
        owner_id: "alice".into(),
        title: "From before".into(),
        description: String::new(),
        status: Status::Created,
        stream_key_hash: hash_key("lsk_before"),
        recording_enabled: false,
        recording_url: None,
        peak_viewers: 0,
        created_at: 1,
        started_at: None,
        ended_at: None,
        key_rotated_at: 1,
        max_viewers: Some(10),
    };
    h.svc.store.create(ls.clone()).await.expect("create");
    let id = ls.id.to_string();
    call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/start"),
        &[key_header("lsk_before")],
        None,
    )
    .await;
    for user in ["a", "b"] {
        let r = call(
            &h,
            "POST",
            &format!("/api/livestream/{id}/join"),
            &[("x-user-id", user.into())],
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let full = call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/join"),
        &[("x-user-id", "c".into())],
        None,
    )
    .await;
    assert_problem(&full, 429);
    assert_eq!(full.body["limit"], json!(2), "{:?}", full.body);
    let detail = full.body["detail"].as_str().expect("detail");
    assert!(detail.contains("LIVESTREAM_MAX_VIEWERS"), "{detail}");
    // What the owner asked for is still what the livestream says.
    let got = call(&h, "GET", &format!("/api/livestream/{id}"), &[], None).await;
    assert_eq!(got.body["maxViewers"], json!(10), "{:?}", got.body);
}
