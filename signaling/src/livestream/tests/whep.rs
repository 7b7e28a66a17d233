//! WHEP viewers of a livestream, in process: the same viewer rules as every viewer (token, live
//! stream, viewer limit, rows, peak) and the server-sent events extension (`viewercount`,
//! `inactive`; `active` needs real media and is shown by the Chromium test).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use super::{
    Harness, Resp, SECRET, assert_problem, bearer, call, create, harness, key_header, token,
};

/// A Chromium WHEP offer (recvonly audio and video).
const WHEP_OFFER: &str = include_str!("../../sdp/testdata/chromium156_whep.sdp");

/// The WHEP offer with its own ICE credentials (every viewer's are different).
fn offer(ufrag: &str) -> String {
    WHEP_OFFER.replace("a=ice-ufrag:z2iB", &format!("a=ice-ufrag:{ufrag}"))
}

/// Sends a request with a raw body of `content_type`.
async fn send(
    h: &Harness,
    method: &str,
    uri: &str,
    user: Option<&str>,
    content_type: &str,
    body: String,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    if let Some(u) = user {
        req = req.header("authorization", format!("Bearer {}", token(u)));
    }
    let resp = h
        .app
        .clone()
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        headers,
        body,
    }
}

/// POSTs a WHEP offer for `user`; returns the response and the session path on success.
pub(super) async fn whep(
    h: &Harness,
    id: &str,
    user: Option<&str>,
    ufrag: &str,
) -> (Resp, Option<String>) {
    let r = send(
        h,
        "POST",
        &format!("/api/livestream/{id}/whep"),
        user,
        "application/sdp",
        offer(ufrag),
    )
    .await;
    let location = r
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r, location)
}

/// An open `text/event-stream`: reads until a wanted text shows up.
struct Events {
    body: Body,
    seen: String,
}

impl Events {
    /// Reads until `needle` appears after what earlier calls consumed; `false` when the stream
    /// ended or nothing came for 5 s.
    async fn until(&mut self, needle: &str) -> bool {
        loop {
            if let Some(i) = self.seen.find(needle) {
                self.seen.drain(..i + needle.len());
                return true;
            }
            match tokio::time::timeout(Duration::from_secs(5), self.body.frame()).await {
                Ok(Some(Ok(f))) => {
                    if let Ok(data) = f.into_data() {
                        self.seen.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => return false,
            }
        }
    }

    /// Whether the stream ends within 5 s.
    async fn closes(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.body.frame()).await {
                Ok(None) => return true,
                Ok(Some(Ok(_))) => continue,
                _ => return false,
            }
        }
    }
}

#[tokio::test]
async fn whep_viewers_are_counted_limited_and_hear_viewercount_until_the_end() {
    let h = harness(&["--jwt-secret", SECRET, "--livestream-max-viewers", "2"]).await;
    let (id, key) = create(&h, &[bearer("alice")]).await;
    let stream: Uuid = id.parse().expect("uuid");

    // Like every viewer: a token, then a live stream.
    assert_problem(&whep(&h, &id, None, "anon0001").await.0, 401);
    assert_problem(&whep(&h, &id, Some("bob"), "bob00001").await.0, 409);
    call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/start"),
        &[key_header(&key)],
        None,
    )
    .await;

    let (r, bob) = whep(&h, &id, Some("bob"), "bob00001").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let bob = bob.expect("Location");
    assert!(
        bob.starts_with(&format!("/api/livestream/{id}/whep/")),
        "{bob}"
    );
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/sdp")
    );
    assert!(r.headers.contains_key("etag"));
    assert!(r.body.as_str().is_some_and(|s| s.starts_with("v=0")));
    let link = r
        .headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|l| l.contains("urn:ietf:params:whep:ext:core:server-sent-events"))
        .expect("the server-sent events link")
        .to_string();
    assert!(
        link.starts_with(&format!("<{bob}/sse>"))
            && link.contains("events=\"active,inactive,viewercount\""),
        "{link}"
    );
    assert_eq!(h.svc.viewer_count(stream).await, 1);

    // Events: unknown names are refused; [] is every event offered.
    let sse = format!("{bob}/sse");
    let bad = send(
        &h,
        "POST",
        &sse,
        Some("bob"),
        "application/json",
        r#"["layers"]"#.into(),
    )
    .await;
    assert_problem(&bad, 422);
    let sub = send(
        &h,
        "POST",
        &sse,
        Some("bob"),
        "application/json",
        "[]".into(),
    )
    .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{:?}", sub.body);
    let events_url = sub.headers["location"].to_str().expect("ascii").to_string();
    assert!(
        events_url.ends_with("/sse/active,inactive,viewercount"),
        "{events_url}"
    );
    let resp = h
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri(&events_url)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/event-stream"))
    );
    let mut events = Events {
        body: resp.into_body(),
        seen: String::new(),
    };
    // The current state first: no broadcaster media, one viewer.
    assert!(events.until("event: inactive").await, "{}", events.seen);
    assert!(
        events.until(r#"{"viewercount":1}"#).await,
        "{}",
        events.seen
    );

    let (r, carol) = whep(&h, &id, Some("carol"), "carol001").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let carol = carol.expect("Location");
    assert!(
        events.until(r#"{"viewercount":2}"#).await,
        "{}",
        events.seen
    );
    // The limit counts WHEP viewers.
    let (full, _) = whep(&h, &id, Some("dave"), "dave0001").await;
    assert_problem(&full, 429);
    assert_eq!(full.body["limit"], json!(2));

    // Only its viewer deletes a session; then it has left.
    let other = send(
        &h,
        "DELETE",
        &carol,
        Some("bob"),
        "application/sdp",
        String::new(),
    )
    .await;
    assert_problem(&other, 403);
    let gone = send(
        &h,
        "DELETE",
        &carol,
        Some("carol"),
        "application/sdp",
        String::new(),
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK, "{:?}", gone.body);
    assert!(
        events.until(r#"{"viewercount":1}"#).await,
        "{}",
        events.seen
    );
    assert_eq!(h.svc.viewer_count(stream).await, 1);

    // The end: the count drops to 0, `inactive`, and the event stream closes.
    let ended = call(
        &h,
        "POST",
        &format!("/api/livestream/{id}/end"),
        &[key_header(&key)],
        None,
    )
    .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    assert!(
        events.until(r#"{"viewercount":0}"#).await,
        "{}",
        events.seen
    );
    assert!(events.until("event: inactive").await, "{}", events.seen);
    assert!(
        events.closes().await,
        "the event stream stayed open after the end"
    );

    let ls = h.svc.store.get(stream).await.expect("db").expect("row");
    assert_eq!(ls.peak_viewers, 2);
    let rows = h.svc.store.viewers(stream).await.expect("rows");
    let users: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.user_id.as_str(), r.client.as_str()))
        .collect();
    assert_eq!(users, [("bob", "whep"), ("carol", "whep")]);
    assert!(rows.iter().all(|r| r.left_at.is_some()), "{rows:?}");
    assert!(rows[1].left_at <= rows[0].left_at, "{rows:?}");
}
