//! The session resource of RFC 9725 §4.3 (`/whip/{stream}/{session}`, `/whep/...`): `DELETE`
//! ends the session, `PATCH` with a trickle-ICE fragment (RFC 8840) is accepted.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use sfu::SessionId;
use sfu::control::Command;

use super::offer::sdp_problem;
use super::{check_auth, check_content_type, header_value, read_body};
use crate::problem::Problem;
use crate::sdp;
use crate::state::AppState;

fn parse_session(s: &str) -> Result<SessionId, Problem> {
    u64::from_str_radix(s, 16)
        .map(SessionId)
        .map_err(|_| Problem::not_found("no such session"))
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = || -> Result<Response, Problem> {
        check_auth(&st, &headers)?;
        let id = parse_session(&session)?;
        let mut reg = st
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned"))?;
        if reg.session(id).is_none_or(|r| r.stream != stream) {
            return Err(Problem::not_found("no such session"));
        }
        // Present: checked just above under the same lock.
        let (rec, commands) = reg.remove(id).expect("session exists");
        st.media.send(rec.shard, Command::RemoveSession(id));
        for (to, cmd) in commands {
            st.media.send(to, cmd);
        }
        tracing::info!(session = %id, stream = %stream, "session deleted by client");
        Ok(StatusCode::OK.into_response())
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub async fn patch(
    State(st): State<Arc<AppState>>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let run = async {
        check_auth(&st, &headers)?;
        let id = parse_session(&session)?;
        let (etag, remote_ufrag) = {
            let reg = st
                .registry
                .lock()
                .map_err(|_| Problem::internal("registry lock poisoned"))?;
            let rec = reg
                .session(id)
                .filter(|r| r.stream == stream)
                .ok_or_else(|| Problem::not_found("no such session"))?;
            (rec.etag.clone(), rec.remote_ufrag.clone())
        };
        check_content_type(&headers, "application/trickle-ice-sdpfrag")?;
        if let Some(m) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
            && m.trim() != "*"
            && m.trim() != etag
        {
            return Err(Problem::precondition_failed(
                "If-Match does not match the session's ETag",
            ));
        }
        let bytes = read_body(body, st.cfg.max_sdp_bytes).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Problem::bad_request("the fragment is not UTF-8 text"))?;
        let frag = sdp::parse_trickle_sdpfrag(text).map_err(sdp_problem)?;
        if frag.ice.as_ref().is_some_and(|i| i.ufrag != remote_ufrag) {
            return Err(Problem::unprocessable(
                "ICE restarts are not supported: start a new session instead",
            ));
        }
        // ICE-lite: the peer's checks reveal its addresses, so trickled candidates need no action.
        Ok::<Response, Problem>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn options() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        super::ACCEPT_PATCH,
        header_value("application/trickle-ice-sdpfrag"),
    );
    resp
}
