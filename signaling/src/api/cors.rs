//! Open CORS (any origin) for the HTTP APIs, one policy per API: every response carries
//! `Access-Control-Allow-Origin: *` and the headers a page may read; a preflight (`OPTIONS`),
//! answered by the endpoint's own handler, also gets the methods and request headers allowed.
//! And the one `405` every API answers with, as a problem body.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::problem::Problem;

/// What one API allows and exposes.
#[derive(Debug, Clone, Copy)]
pub struct Cors {
    /// `Access-Control-Expose-Headers`.
    pub expose: &'static str,
    /// `Access-Control-Allow-Methods` (preflight).
    pub methods: &'static str,
    /// `Access-Control-Allow-Headers` (preflight).
    pub headers: &'static str,
}

impl Cors {
    /// The middleware: `axum::middleware::from_fn(|r, n| POLICY.apply(r, n))`.
    pub async fn apply(&'static self, req: Request, next: Next) -> Response {
        let preflight = req.method() == Method::OPTIONS;
        let mut resp = next.run(req).await;
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(self.expose),
        );
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(self.methods),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(self.headers),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
        }
        resp
    }
}

/// A method the endpoint does not have: `405` as a problem, like every other error.
pub async fn method_not_allowed(method: Method) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        format!("{method} is not allowed here"),
    )
}
