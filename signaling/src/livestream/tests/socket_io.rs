//! `/socket.io/` over HTTP, in process: a page of another origin may use it (socket.io-client
//! starts with long-polling, and preflights when it sends extra headers).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::harness;

#[tokio::test]
async fn socket_io_polling_is_open_to_pages_of_other_origins() {
    let h = harness(&[]).await;
    let open = h
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/socket.io/?EIO=4&transport=polling")
                .header("origin", "http://page.example")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(open.status(), StatusCode::OK);
    assert_eq!(
        open.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    let body = open.into_body().collect().await.expect("body").to_bytes();
    // engine.io's open packet: `0` and the handshake JSON.
    assert!(body.starts_with(b"0{\"sid\":"), "{body:?}");

    let preflight = h
        .app
        .clone()
        .oneshot(
            Request::builder()
                .method("OPTIONS")
                .uri("/socket.io/?EIO=4&transport=polling")
                .header("origin", "http://page.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let allowed = |name: &str| {
        preflight
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(allowed("access-control-allow-origin"), "*");
    assert!(allowed("access-control-allow-methods").contains("post"));
    assert!(allowed("access-control-allow-headers").contains("authorization"));
}
