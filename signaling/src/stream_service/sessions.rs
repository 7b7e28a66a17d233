//! Media sessions of a stream: the sharer's WHIP publish (`POST /stream/{id}/whip`, RFC 9725)
//! and the session resource `/stream/{id}/sessions/{session_id}`: `PUT` the viewer's SDP answer
//! to the server's offer, `PATCH` trickle-ICE fragments (RFC 8840), `DELETE` to leave.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfu::SessionId;
use sfu::control::Command;
use uuid::Uuid;

use super::error::ApiError;
use super::handlers::{load, parse_id};
use super::server_offer::accept_answer;
use super::{LocalSession, SessionRole, SessionState, StreamService, media_name};
use crate::api::{ACCEPT_PATCH, check_content_type, header_value, read_body};
use crate::problem::Problem;
use crate::registry::Role;
use crate::{sdp, session_spec};

type Svc = State<Arc<StreamService>>;

fn sdp_problem(e: sdp::SdpError) -> ApiError {
    if e.http_status() == 422 {
        Problem::unprocessable(e.to_string()).into()
    } else {
        Problem::bad_request(e.to_string()).into()
    }
}

fn session_url(stream: Uuid, session: Uuid) -> String {
    format!("/stream/{stream}/sessions/{session}")
}

/// `OPTIONS`: what the endpoints accept.
pub async fn options() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert("accept-post", header_value("application/sdp"));
    h.insert(
        ACCEPT_PATCH,
        header_value("application/trickle-ice-sdpfrag"),
    );
    resp
}

/// `POST /stream/{stream_id}/whip`: the sharer's SDP offer in, the answer out (201, `Location`
/// is the session resource, named by the start response's `session_id`).
pub async fn whip(
    State(svc): Svc,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let run = async {
        let user = svc.user(&headers)?;
        let id = parse_id(&stream_id)?;
        check_content_type(&headers, "application/sdp")?;
        let rec = load(&svc, id).await?;
        if rec.user_id != user.0 {
            return Err(ApiError::forbidden(format!(
                "stream {id} belongs to another user"
            )));
        }
        if rec.node_id != svc.node_id {
            return Err(svc.foreign(&rec).await);
        }
        let bytes = read_body(body, svc.app.cfg.max_sdp_bytes).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Problem::bad_request("the SDP offer is not UTF-8 text"))?;
        let offer = sdp::parse_offer(text).map_err(sdp_problem)?;
        let neg = sdp::negotiate(&offer, sdp::Role::Publisher, &svc.app.capabilities)
            .map_err(sdp_problem)?;
        let sid = SessionId(session_spec::random_id());
        let etag = format!("\"{:016x}\"", session_spec::random_id());
        let ice = session_spec::local_ice();
        let name = media_name(id);
        let mut local = svc.local()?;
        if local.find(rec.session_id).is_some() {
            return Err(Problem::conflict(format!(
                "stream {id} already has its sharer's media session; DELETE it first"
            ))
            .into());
        }
        let answer = {
            let mut reg = svc
                .app
                .registry
                .lock()
                .map_err(|_| Problem::internal("registry lock poisoned"))?;
            let adm = reg.admit(
                sid,
                &name,
                Role::Publisher,
                etag.clone(),
                neg.remote_ice.ufrag.clone(),
            )?;
            let media = &svc.app.media;
            let port = media.port(adm.shard);
            let (mut spec, local_desc) =
                session_spec::build(sid, Role::Publisher, adm.key, &name, &neg, ice, media, port);
            // The stream service shares screens: its allocators keep them before camera video.
            session_spec::mark_screen(&mut spec);
            reg.set_published_video(&name, crate::registry::published_video(&spec));
            media.send(adm.shard, Command::AddSession(Box::new(spec)));
            for (to, cmd) in adm.commands {
                media.send(to, cmd);
            }
            tracing::info!(stream = %id, session = %sid, shard = %adm.shard, "sharer publishing");
            sdp::write_answer(&neg, &local_desc)
        };
        local.insert(
            sid,
            LocalSession {
                uuid: rec.session_id,
                stream_id: id,
                channel_id: rec.channel_id,
                user_id: user.0.clone(),
                owner: rec.user_id.clone(),
                role: SessionRole::Sharer,
                state: SessionState::Running {
                    connected: false,
                    remote_ufrag: neg.remote_ice.ufrag.clone(),
                },
                etag: etag.clone(),
            },
        );
        drop(local);
        let mut resp = (StatusCode::CREATED, answer).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, header_value("application/sdp"));
        h.insert(
            header::LOCATION,
            header_value(&session_url(id, rec.session_id)),
        );
        h.insert(header::ETAG, header_value(&etag));
        h.insert(
            ACCEPT_PATCH,
            header_value("application/trickle-ice-sdpfrag"),
        );
        Ok::<Response, ApiError>(resp)
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Finds a local session of `stream` by its id, checking who asks.
fn find_session(
    svc: &StreamService,
    stream: &str,
    session: &str,
    user: &str,
    allow_owner: bool,
) -> Result<(SessionId, LocalSession), ApiError> {
    let stream = parse_id(stream)?;
    let session = parse_id(session)?;
    let local = svc.local()?;
    let (id, s) = local
        .find(session)
        .filter(|(_, s)| s.stream_id == stream)
        .ok_or_else(|| ApiError::from(Problem::not_found(format!("no session {session}"))))?;
    if s.user_id != user && !(allow_owner && s.owner == user) {
        return Err(ApiError::forbidden(format!(
            "session {session} belongs to another user"
        )));
    }
    Ok((id, s.clone()))
}

/// `PUT /stream/{stream_id}/sessions/{session_id}`: the viewer's answer to the server's offer.
pub async fn answer(
    State(svc): Svc,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let run = async {
        let user = svc.user(&headers)?;
        let (id, s) = find_session(&svc, &stream, &session, &user.0, false)?;
        check_content_type(&headers, "application/sdp")?;
        let SessionState::Offered { offer, key, .. } = &s.state else {
            return Err(ApiError::from(Problem::conflict(
                "this session already has its answer",
            )));
        };
        let bytes = read_body(body, svc.app.cfg.max_sdp_bytes).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Problem::bad_request("the SDP answer is not UTF-8 text"))?;
        let spec = accept_answer(offer, text, &svc.app.capabilities)
            .map_err(Problem::from)?
            .into_spec(id, offer, *key);
        let remote_ufrag = spec.remote_ice.ufrag.clone();
        {
            let mut local = svc.local()?;
            // Still offered (not expired or answered meanwhile): the state moves under this lock.
            let Some(cur) = local.sessions.get_mut(&id) else {
                return Err(Problem::not_found("the session ended before its answer").into());
            };
            if !matches!(cur.state, SessionState::Offered { .. }) {
                return Err(Problem::conflict("this session already has its answer").into());
            }
            let reg = svc
                .app
                .registry
                .lock()
                .map_err(|_| Problem::internal("registry lock poisoned"))?;
            let shard = reg
                .session(id)
                .map(|r| r.shard)
                .ok_or_else(|| Problem::not_found("the session ended before its answer"))?;
            svc.app
                .media
                .send(shard, Command::AddSession(Box::new(spec)));
            let cap = local.caps.get(&s.stream_id).copied();
            if let Some(cap) = cap {
                // The stream's quality, from the viewer's first packet on.
                svc.app
                    .media
                    .send(shard, Command::SetQuality { session: id, cap });
            }
            let Some(cur) = local.sessions.get_mut(&id) else {
                return Err(Problem::not_found("the session ended before its answer").into());
            };
            cur.state = SessionState::Running {
                connected: false,
                remote_ufrag,
            };
            tracing::info!(stream = %s.stream_id, session = %s.uuid, %shard, "viewer answered");
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        resp.headers_mut()
            .insert(header::ETAG, header_value(&s.etag));
        Ok(resp)
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `PATCH /stream/{stream_id}/sessions/{session_id}`: trickled candidates. Ringcast is ICE-lite:
/// the peer's checks reveal its addresses, so a valid fragment needs no action.
pub async fn trickle(
    State(svc): Svc,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let run = async {
        let user = svc.user(&headers)?;
        let (_, s) = find_session(&svc, &stream, &session, &user.0, false)?;
        check_content_type(&headers, "application/trickle-ice-sdpfrag")?;
        if let Some(m) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
            && m.trim() != "*"
            && m.trim() != s.etag
        {
            return Err(ApiError::from(Problem::precondition_failed(
                "If-Match does not match the session's ETag",
            )));
        }
        let bytes = read_body(body, svc.app.cfg.max_sdp_bytes).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Problem::bad_request("the fragment is not UTF-8 text"))?;
        let frag = sdp::parse_trickle_sdpfrag(text).map_err(sdp_problem)?;
        if let (Some(ice), SessionState::Running { remote_ufrag, .. }) = (&frag.ice, &s.state)
            && &ice.ufrag != remote_ufrag
        {
            return Err(Problem::unprocessable(
                "ICE restarts are not supported: watch again for a new session",
            )
            .into());
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /stream/{stream_id}/sessions/{session_id}`: the viewer leaves (the viewer or the
/// stream's sharer may end it); the sharer's own session ends the stream.
pub async fn delete(
    State(svc): Svc,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let user = svc.user(&headers)?;
        let (id, s) = find_session(&svc, &stream, &session, &user.0, true)?;
        match s.role {
            SessionRole::Viewer => svc.end_viewer(id, "deleted", true).await,
            SessionRole::Sharer => {
                svc.stop_stream(s.stream_id, "publisher_left").await?;
            }
        }
        Ok::<Response, ApiError>(StatusCode::OK.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
