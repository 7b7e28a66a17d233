//! The HTTP API: WHIP and WHEP (RFC 9725 and its viewer counterpart), the demo page, `/health`
//! and `/metrics`.

mod demo;
mod metrics;
mod offer;
mod resource;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};

use crate::problem::Problem;
use crate::state::AppState;

/// The router with every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
        ])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::ETAG,
            HeaderName::from_static("accept-post"),
            header::ACCEPT_PATCH,
        ]);
    Router::new()
        .route("/", get(demo::index))
        .route("/health", get(health))
        .route("/metrics", get(metrics::render))
        .route("/whip/{stream}", post(offer::whip).options(offer::options))
        .route("/whep/{stream}", post(offer::whep).options(offer::options))
        .route(
            "/whip/{stream}/{session}",
            axum::routing::delete(resource::delete)
                .patch(resource::patch)
                .options(resource::options),
        )
        .route(
            "/whep/{stream}/{session}",
            axum::routing::delete(resource::delete)
                .patch(resource::patch)
                .options(resource::options),
        )
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .layer(cors)
        .with_state(state)
}

async fn health(
    axum::extract::State(st): axum::extract::State<Arc<AppState>>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "shards": st.media.shard_count() }))
}

/// Enforces `Authorization: Bearer <secret>` when a secret is configured.
pub(crate) fn check_auth(st: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(secret) = st.cfg.auth_secret.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| Problem::unauthorized("missing bearer token"))?;
    let ok = given.len() == secret.len()
        && given
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok {
        Ok(())
    } else {
        Err(Problem::unauthorized("invalid bearer token"))
    }
}

/// Requires a `Content-Type` (parameters ignored).
pub(crate) fn check_content_type(headers: &HeaderMap, expected: &str) -> Result<(), Problem> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let base = ct.split(';').next().unwrap_or("").trim();
    if base.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Problem::unsupported_media_type(format!(
            "expected Content-Type {expected}, got {:?}",
            ct
        )))
    }
}

/// Reads a request body of at most `limit` bytes.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, Problem> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Problem::too_large(format!("body larger than {limit} bytes")))
}

/// Stream names: 1–128 characters of letters, digits, `-`, `_`, `.`.
pub(crate) fn check_stream_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "stream names are 1-128 characters of A-Z a-z 0-9 - _ .",
        ))
    }
}

pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}
