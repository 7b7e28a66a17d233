//! Errors of the stream service as problem details (RFC 9457), with extension members where a
//! client can act on them (the owning node of a stream that runs elsewhere, the limit hit).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::auth::AuthError;
use crate::problem::Problem;
use crate::store::StoreError;

/// Seconds a client should wait after a 503 from an unreachable store.
pub const STORE_RETRY_AFTER_S: u32 = 2;

/// A problem answer with optional extension members.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub problem: Problem,
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.problem.status
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "Forbidden", detail).into()
    }

    pub fn too_many(detail: impl Into<String>, retry_after: u32) -> Self {
        Problem {
            retry_after: Some(retry_after),
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", detail)
        }
        .into()
    }

    /// The stream's media runs on another node: go there.
    pub fn elsewhere(stream: uuid::Uuid, node_id: &str, node_url: &str) -> Self {
        ApiError::from(Problem::conflict(format!(
            "stream {stream} is served by node {node_id} at {node_url}: send this request there"
        )))
        .with("node_id", json!(node_id))
        .with("node_url", json!(node_url))
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        ApiError {
            problem,
            extra: Map::new(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Problem::unauthorized(e.to_string()).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                Problem::unavailable(e.to_string(), STORE_RETRY_AFTER_S).into()
            }
            StoreError::ChannelFull { limit, .. } => ApiError::from(Problem::conflict(format!(
                "{e} (MAX_STREAMS_PER_CHANNEL): stop one first"
            )))
            .with("limit", json!(limit)),
            StoreError::ViewerLimit { limit, .. } => {
                ApiError::too_many(format!("{e} (MAX_VIEWERS_PER_STREAM)"), 10)
                    .with("limit", json!(limit))
            }
            StoreError::NoSuchStream(_) => Problem::not_found(e.to_string()).into(),
            StoreError::Corrupt(_) => Problem::internal(e.to_string()).into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = &self.problem;
        let mut body = Map::new();
        body.insert("type".into(), json!("about:blank"));
        body.insert("title".into(), json!(p.title));
        body.insert("status".into(), json!(p.status.as_u16()));
        body.insert("detail".into(), json!(p.detail));
        for (k, v) in self.extra {
            body.entry(k).or_insert(v);
        }
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut resp = (p.status, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = p.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if p.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
