//! Dynacast toward WHIP publishers: `GET /whip/{stream}/{session}/layers` tells a publisher which
//! of its simulcast encodings some viewer needs, per video `mid`:
//! `{"<mid>": {"active": ["q", "h"], "inactive": ["f"]}}` (lowest first). With
//! `Accept: text/event-stream` the same object is streamed as server-sent events (`event:
//! layers`), once at once and again on every change, until the session ends. A publisher that
//! follows it (`RTCRtpSender.setParameters` with `encodings[i].active`) stops encoding what no
//! viewer receives; one that does not (OBS) keeps sending every encoding. The WHIP `201`
//! announces the resource with a `Link` of relation [`LAYERS_REL`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use sfu::SessionId;

use super::{check_auth, header_value};
use crate::problem::Problem;
use crate::registry::{Registry, Role, SectionDemand};
use crate::state::AppState;

/// The link relation that announces the layers resource on the WHIP 201 response.
pub const LAYERS_REL: &str = "urn:ringcast:whip:layers";

/// How often an idle event stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The JSON object for a publisher's sections.
pub fn demand_json(sections: &[SectionDemand]) -> Value {
    let rids = |v: &[sfu::Rid]| v.iter().map(|r| r.0.clone()).collect::<Vec<_>>();
    Value::Object(
        sections
            .iter()
            .map(|s| {
                (
                    s.mid.0.clone(),
                    json!({"active": rids(&s.active), "inactive": rids(&s.inactive)}),
                )
            })
            .collect::<Map<String, Value>>(),
    )
}

/// The publisher session behind the path, or 404.
fn publisher(reg: &Registry, stream: &str, session: &str) -> Result<SessionId, Problem> {
    let id = u64::from_str_radix(session, 16)
        .map(SessionId)
        .map_err(|_| Problem::not_found("no such session"))?;
    reg.session(id)
        .filter(|r| r.stream == stream && r.role == Role::Publisher)
        .ok_or_else(|| Problem::not_found("no such WHIP session"))?;
    Ok(id)
}

/// The current object, `None` once the session is gone (or no longer its stream's publisher).
fn current(st: &AppState, id: SessionId) -> Option<Value> {
    let reg = st.registry.lock().ok()?;
    reg.layer_demand(id).map(|s| demand_json(&s))
}

fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// `GET /whip/{stream}/{session}/layers`.
pub async fn get(
    State(st): State<Arc<AppState>>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = || -> Result<Response, Problem> {
        check_auth(&st, &headers)?;
        let (id, rx) = {
            let reg = st
                .registry
                .lock()
                .map_err(|_| Problem::internal("registry lock poisoned"))?;
            (publisher(&reg, &stream, &session)?, reg.layers_watch())
        };
        if !wants_events(&headers) {
            let body = current(&st, id).ok_or_else(|| Problem::not_found("no such session"))?;
            let mut resp = (StatusCode::OK, body.to_string()).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, header_value("application/json"));
            return Ok(resp);
        }
        // Sends the object at once, then whenever it differs from the last one sent; ends when
        // the session does.
        let events = futures_util::stream::unfold(
            (Arc::clone(&st), rx, None::<Value>),
            move |(st, mut rx, last)| async move {
                loop {
                    rx.borrow_and_update();
                    let now = current(&st, id)?;
                    if last.as_ref() != Some(&now) {
                        let ev = SseEvent::default().event("layers").data(now.to_string());
                        return Some((Ok::<_, Infallible>(ev), (st, rx, Some(now))));
                    }
                    rx.changed().await.ok()?;
                }
            },
        );
        let mut resp = Sse::new(events)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response();
        // No buffering by proxies (nginx honours this header).
        resp.headers_mut()
            .insert("x-accel-buffering", header_value("no"));
        Ok(resp)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// `OPTIONS`: CORS preflight (a browser sending `Authorization` asks first).
pub async fn options() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu::{Mid, Rid};

    #[test]
    fn the_object_lists_active_and_inactive_rids_per_mid() {
        let r = |s: &str| Rid(s.into());
        let v = demand_json(&[SectionDemand {
            mid: Mid("1".into()),
            active: vec![r("q"), r("h")],
            inactive: vec![r("f")],
        }]);
        assert_eq!(v, json!({"1": {"active": ["q", "h"], "inactive": ["f"]}}));
        assert_eq!(demand_json(&[]), json!({}));
    }

    #[test]
    fn event_streams_are_asked_for_with_accept() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, header_value(v));
            m
        };
        assert!(wants_events(&h("text/event-stream")));
        assert!(wants_events(&h(
            "application/json, Text/Event-Stream;q=0.9"
        )));
        assert!(!wants_events(&h("application/json")));
        assert!(!wants_events(&HeaderMap::new()));
    }
}
