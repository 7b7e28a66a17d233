//! The HTTP API: WHIP and WHEP (RFC 9725 and its viewer counterpart), the demo page, `/health`
//! and `/metrics`.

pub mod cors;
mod demo;
pub mod layer;
pub mod layers;
mod metrics;
mod offer;
mod resource;
pub mod stats;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::routing::{get, post};

use crate::problem::Problem;
use crate::state::AppState;

/// `Accept-Patch` (RFC 5789), which the `http` crate does not name.
pub(crate) const ACCEPT_PATCH: HeaderName = HeaderName::from_static("accept-patch");

/// The router with every endpoint.
/// CORS of WHIP/WHEP. Preflight requests reach the endpoint's own `OPTIONS` handler, so they
/// also get `Accept-Post` and the ICE-server `Link` headers (RFC 9725 §4.6).
static CORS: cors::Cors = cors::Cors {
    expose: "Location, Link, ETag, Accept-Post, Accept-Patch",
    methods: "GET, POST, PATCH, DELETE, OPTIONS",
    headers: "Authorization, Content-Type, If-Match",
};

pub fn router(state: Arc<AppState>) -> Router {
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
            "/whip/{stream}/{session}/layers",
            get(layers::get).options(layers::options),
        )
        .route(
            "/whep/{stream}/{session}/layer",
            post(layer::post).get(layer::get),
        )
        .route(
            "/whep/{stream}/{session}",
            axum::routing::delete(resource::delete)
                .patch(resource::patch)
                .options(resource::options),
        )
        .route("/whep/{stream}/{session}/stats", get(stats::get))
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn(|r, n| CORS.apply(r, n)))
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
