//! The HTTP API in process (real shards, no sockets for HTTP): WHIP/WHEP status codes, headers and
//! problem bodies for good and bad requests.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clap::Parser;
use http_body_util::BodyExt;
use tower::ServiceExt;

use signaling::config::Config;
use signaling::state::AppState;

const CHROME_PUBLISH: &str = include_str!("data/chrome-publish.sdp");
const CHROME_VIEW: &str = include_str!("data/chrome-view.sdp");

fn server(extra: &[&str]) -> Arc<AppState> {
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    let cfg = Config::try_parse_from(args).expect("valid flags");
    let (state, _events) = signaling::build(cfg).expect("server starts");
    state
}

async fn call(
    state: &Arc<AppState>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = signaling::api::router(Arc::clone(state))
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

fn assert_problem(status: StatusCode, headers: &axum::http::HeaderMap, body: &str, expected: u16) {
    assert_eq!(status.as_u16(), expected, "body: {body}");
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    let v: serde_json::Value = serde_json::from_str(body).expect("problem body is JSON");
    assert_eq!(v["status"], expected);
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn whip_publish_answers_201_with_an_ice_lite_answer_and_location() {
    let st = server(&[]);
    let (status, h, body) = call(&st, post("/whip/cam", "application/sdp", CHROME_PUBLISH)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "application/sdp");
    let location = h
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(location.starts_with("/whip/cam/"));
    assert!(h.get(header::ETAG).is_some());
    assert!(body.contains("a=ice-lite"));
    assert!(body.contains("a=setup:passive"));
    assert!(body.contains("a=fingerprint:sha-256 "));
    assert!(body.contains("typ host"));
    assert!(body.contains("a=recvonly"));

    // A second publisher on the same stream conflicts.
    let (status, h2, b2) = call(&st, post("/whip/cam", "application/sdp", CHROME_PUBLISH)).await;
    assert_problem(status, &h2, &b2, 409);

    // DELETE ends the session; a second DELETE finds nothing.
    let (status, _, _) = call(&st, Request::delete(&location).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, h3, b3) = call(&st, Request::delete(&location).body(Body::empty()).unwrap()).await;
    assert_problem(status, &h3, &b3, 404);

    // The stream is free again.
    let (status, _, _) = call(&st, post("/whip/cam", "application/sdp", CHROME_PUBLISH)).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn whep_viewers_get_sendonly_answers_with_their_own_ssrcs() {
    let st = server(&[]);
    let mut ssrcs = Vec::new();
    for _ in 0..2 {
        let (status, h, body) = call(&st, post("/whep/show", "application/sdp", CHROME_VIEW)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(
            h.get(header::LOCATION)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("/whep/show/")
        );
        assert!(body.contains("a=sendonly"));
        let ssrc: Vec<String> = body
            .lines()
            .filter(|l| l.starts_with("a=ssrc:"))
            .map(|l| l[7..].split(' ').next().unwrap().to_string())
            .collect();
        assert!(!ssrc.is_empty(), "answer announces SSRCs:\n{body}");
        ssrcs.extend(ssrc);
    }
    let mut unique = ssrcs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ssrcs.len(), "viewers do not share SSRCs");
}

#[tokio::test]
async fn bad_requests_get_problem_responses() {
    let st = server(&[]);
    let (s, h, b) = call(&st, post("/whip/x", "text/plain", CHROME_PUBLISH)).await;
    assert_problem(s, &h, &b, 415);
    let (s, h, b) = call(&st, post("/whip/x", "application/sdp", "this is not sdp")).await;
    assert_problem(s, &h, &b, 400);
    let (s, h, b) = call(
        &st,
        post("/whip/x", "application/sdp", vec![0xffu8, 0xfe, 0x00, 0x01]),
    )
    .await;
    assert_problem(s, &h, &b, 400);
    let (s, h, b) = call(&st, post("/whip/x", "application/sdp", "")).await;
    assert_problem(s, &h, &b, 400);
    let big = format!(
        "{CHROME_PUBLISH}{}",
        "a=x-filler:0123456789012345678901234567890123456789\r\n".repeat(40_000)
    );
    let (s, h, b) = call(&st, post("/whip/x", "application/sdp", big)).await;
    assert_problem(s, &h, &b, 413);
    let truncated = &CHROME_PUBLISH[..CHROME_PUBLISH.len() / 3];
    let (s, _, b) = call(
        &st,
        post("/whip/x", "application/sdp", truncated.to_string()),
    )
    .await;
    assert!(s.is_client_error(), "truncated offer: {s} {b}");
    let (s, h, b) = call(
        &st,
        post("/whip/bad%20name", "application/sdp", CHROME_PUBLISH),
    )
    .await;
    assert_problem(s, &h, &b, 400);
    // A viewer's recvonly offer on the publish endpoint cannot be served.
    let (s, h, b) = call(&st, post("/whip/x", "application/sdp", CHROME_VIEW)).await;
    assert_problem(s, &h, &b, 422);
    let (s, h, b) = call(
        &st,
        Request::delete("/whip/x/00000000000000ff")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_problem(s, &h, &b, 404);
    let (s, h, b) = call(&st, Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_problem(s, &h, &b, 404);
}

#[tokio::test]
async fn bearer_token_is_enforced_when_configured() {
    let st = server(&["--auth-secret", "s3cret"]);
    let (s, h, b) = call(&st, post("/whip/x", "application/sdp", CHROME_PUBLISH)).await;
    assert_problem(s, &h, &b, 401);
    assert_eq!(h.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    let wrong = Request::post("/whip/x")
        .header(header::CONTENT_TYPE, "application/sdp")
        .header(header::AUTHORIZATION, "Bearer nope")
        .body(Body::from(CHROME_PUBLISH))
        .unwrap();
    let (s, h, b) = call(&st, wrong).await;
    assert_problem(s, &h, &b, 401);
    let right = Request::post("/whip/x")
        .header(header::CONTENT_TYPE, "application/sdp")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::from(CHROME_PUBLISH))
        .unwrap();
    let (s, _, b) = call(&st, right).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn patch_accepts_trickle_and_refuses_ice_restart() {
    let st = server(&[]);
    let (_, h, _) = call(&st, post("/whip/t", "application/sdp", CHROME_PUBLISH)).await;
    let location = h
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let etag = h.get(header::ETAG).unwrap().to_str().unwrap().to_string();
    let ufrag = CHROME_PUBLISH
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .trim()
        .to_string();
    let frag = format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:whatever0123456789abcdef\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 192.0.2.9 50000 typ host\r\na=end-of-candidates\r\n"
    );
    let req = Request::patch(&location)
        .header(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag")
        .header(header::IF_MATCH, &etag)
        .body(Body::from(frag.clone()))
        .unwrap();
    let (s, _, b) = call(&st, req).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let stale = Request::patch(&location)
        .header(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag")
        .header(header::IF_MATCH, "\"stale\"")
        .body(Body::from(frag.clone()))
        .unwrap();
    let (s, h2, b) = call(&st, stale).await;
    assert_problem(s, &h2, &b, 412);
    let restart = frag.replace(&format!("a=ice-ufrag:{ufrag}"), "a=ice-ufrag:newU");
    let req = Request::patch(&location)
        .header(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag")
        .body(Body::from(restart))
        .unwrap();
    let (s, h2, b) = call(&st, req).await;
    assert_problem(s, &h2, &b, 422);
    let req = Request::patch(&location)
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(Body::from(frag))
        .unwrap();
    let (s, h2, b) = call(&st, req).await;
    assert_problem(s, &h2, &b, 415);
}

#[tokio::test]
async fn options_health_and_metrics_describe_the_server() {
    let st = server(&[
        "--ice-servers",
        "stun:stun.example.net:3478,turn:turn.example.net:3478",
        "--ice-username",
        "u",
        "--ice-credential",
        "p",
    ]);
    let (s, h, _) = call(
        &st,
        Request::options("/whip/x").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h.get("accept-post").unwrap(), "application/sdp");
    let links: Vec<&str> = h
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(links.len(), 2);
    assert!(links[1].contains("username=\"u\"") && links[1].contains("credential=\"p\""));
    let (s, _, b) = call(&st, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.contains("\"ok\""));
    let (s, _, b) = call(&st, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    for series in [
        "ringcast_datagrams_in_total{shard=\"0\"}",
        "ringcast_sessions{shard=\"0\"}",
        "ringcast_drops_total{shard=\"0\",reason=\"srtp_auth\"}",
    ] {
        assert!(b.contains(series), "missing {series}");
    }
    let (s, h, b) = call(&st, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h.get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(b.contains("/whip/") && b.contains("/whep/"));
}

#[tokio::test]
async fn full_shards_answer_503_with_retry_after() {
    let st = server(&["--max-sessions-per-shard", "1"]);
    let (s, _, b) = call(&st, post("/whep/full", "application/sdp", CHROME_VIEW)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, h, b) = call(&st, post("/whep/full", "application/sdp", CHROME_VIEW)).await;
    assert_problem(s, &h, &b, 503);
    assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "5");
}

const CHROME_SIMULCAST: &str = include_str!("../src/sdp/testdata/chrome_simulcast.sdp");

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn whep_layer_extension_lists_and_selects_simulcast_encodings() {
    let st = server(&[]);
    let (status, _, answer) =
        call(&st, post("/whip/sim", "application/sdp", CHROME_SIMULCAST)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(answer.contains("a=simulcast:recv q;h;f\r\n"), "{answer}");
    let (status, h, body) = call(&st, post("/whep/sim", "application/sdp", CHROME_VIEW)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let location = h
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let layer = format!("{location}/layer");
    let links: Vec<&str> = h
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        links.contains(&format!("<{layer}>; rel=\"urn:ietf:params:whep:ext:core:layer\"").as_str()),
        "{links:?}"
    );

    let (status, h, body) = call(&st, get(&layer)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let video = v.as_object().unwrap().values().next().unwrap();
    let ids: Vec<&str> = video["encodings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["encodingId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["q", "h", "f"]);
    assert_eq!(video["order"], "named");
    assert_eq!(video["selected"]["spatialLayerId"], serde_json::Value::Null);

    let json = "application/json";
    let (status, _, body) = call(
        &st,
        post(&layer, json, r#"{"encodingId":"h","temporalLayerId":1}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, _, body) = call(&st, get(&layer)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let selected = &v.as_object().unwrap().values().next().unwrap()["selected"];
    assert_eq!(
        (
            selected["spatialLayerId"].as_u64(),
            selected["temporalLayerId"].as_u64()
        ),
        (Some(1), Some(1))
    );

    for (body, ct, expected) in [
        ("{}", json, 400),
        ("not json", json, 400),
        (r#"{"spatialLayerId":-1}"#, json, 400),
        (r#"{"encodingId":"q","spatialLayerId":2}"#, json, 400),
        (r#"{"encodingId":"x"}"#, json, 422),
        (r#"{"spatialLayerId":3}"#, json, 422),
        (r#"{"mediaId":"nope","spatialLayerId":0}"#, json, 422),
        (r#"{"spatialLayerId":0}"#, "text/plain", 415),
    ] {
        let (status, h, resp) = call(&st, post(&layer, ct, body.to_owned())).await;
        assert_problem(status, &h, &resp, expected);
    }
    // Only WHEP sessions have the extension.
    let (status, h, resp) = call(&st, get("/whep/sim/0123456789abcdef/layer")).await;
    assert_problem(status, &h, &resp, 404);
}
