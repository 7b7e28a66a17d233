//! `GET /`: a page where a person publishes their camera to a stream and watches any stream.

use axum::response::Html;

const PAGE: &str = include_str!("../../static/index.html");

pub async fn index() -> Html<&'static str> {
    Html(PAGE)
}
