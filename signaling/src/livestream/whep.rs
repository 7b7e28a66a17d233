//! WHEP viewers of a livestream (`POST /api/livestream/{id}/whep`, the session resource with
//! `DELETE` and trickle `PATCH`), counted as viewers like Socket.IO viewers, and WHEP's
//! server-sent events extension (draft-ietf-wish-whep): the session's `Link` with
//! `rel="urn:ietf:params:whep:ext:core:server-sent-events"` names the events offered
//! (`active`, `inactive`, `viewercount`); a `POST` there with a JSON array of events answers
//! 201 with the `Location` of a `text/event-stream`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use sfu::control::Command;
use sfu::{MediaKind, SessionId};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::handlers::{Svc, parse_id, respond};
use super::media::{LiveRole, LiveSession, sdp_problem};
use super::presence::Attachment;
use super::{LivestreamService, media_name};
use crate::api::{check_content_type, header_value, read_body};
use crate::problem::Problem;
use crate::registry::Role;
use crate::stream_service::ApiError;
use crate::{sdp, session_spec};

/// The link relation of WHEP's server-sent events extension.
pub const SSE_REL: &str = "urn:ietf:params:whep:ext:core:server-sent-events";
/// The events offered.
pub const SSE_EVENTS: [&str; 3] = ["active", "inactive", "viewercount"];
const ACCEPT_PATCH: header::HeaderName = header::HeaderName::from_static("accept-patch");

/// What a livestream's event streams hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent {
    ViewerCount(usize),
    /// The broadcaster's media is connected.
    Active,
    /// The broadcaster's media is gone.
    Inactive,
    /// The livestream ended: event streams close.
    Ended,
}

/// Per-livestream broadcast channels for the event streams, with the last known state.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    inner: Mutex<HashMap<Uuid, (broadcast::Sender<StreamEvent>, bool)>>,
}

impl EventHub {
    fn send(&self, stream: Uuid, ev: StreamEvent) {
        let Ok(mut m) = self.inner.lock() else {
            return;
        };
        let entry = m
            .entry(stream)
            .or_insert_with(|| (broadcast::channel(64).0, false));
        match ev {
            StreamEvent::Active => entry.1 = true,
            StreamEvent::Inactive | StreamEvent::Ended => entry.1 = false,
            StreamEvent::ViewerCount(_) => {}
        }
        let _ = entry.0.send(ev);
        if ev == StreamEvent::Ended {
            m.remove(&stream);
        }
    }

    pub fn viewer_count(&self, stream: Uuid, n: usize) {
        self.send(stream, StreamEvent::ViewerCount(n));
    }
    pub fn active(&self, stream: Uuid) {
        self.send(stream, StreamEvent::Active);
    }
    pub fn inactive(&self, stream: Uuid) {
        self.send(stream, StreamEvent::Inactive);
    }
    pub fn ended(&self, stream: Uuid) {
        self.send(stream, StreamEvent::Ended);
    }

    /// A receiver of a livestream's events and whether its broadcaster is active now.
    pub fn subscribe(&self, stream: Uuid) -> Option<(broadcast::Receiver<StreamEvent>, bool)> {
        let mut m = self.inner.lock().ok()?;
        let entry = m
            .entry(stream)
            .or_insert_with(|| (broadcast::channel(64).0, false));
        Some((entry.0.subscribe(), entry.1))
    }
}

fn session_url(stream: Uuid, id: SessionId) -> String {
    format!("/api/livestream/{stream}/whep/{id}")
}

fn parse_session(s: &str) -> Result<SessionId, ApiError> {
    u64::from_str_radix(s, 16)
        .map(SessionId)
        .map_err(|_| Problem::not_found("no such session").into())
}

/// `OPTIONS`: what the WHEP endpoints accept.
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

impl LivestreamService {
    /// Negotiates a WHEP viewer's offer and starts its session; returns (session, answer).
    fn whep_session(
        &self,
        stream: Uuid,
        user: &str,
        id: SessionId,
        neg: &sdp::Negotiated,
    ) -> Result<(String, String), ApiError> {
        let etag = format!("\"{:016x}\"", session_spec::random_id());
        let name = media_name(stream);
        let mut local = self.media_lock()?;
        let answer = {
            let mut reg = self
                .app
                .registry
                .lock()
                .map_err(|_| Problem::internal("registry lock poisoned"))?;
            let adm = reg.admit(
                id,
                &name,
                Role::Viewer,
                etag.clone(),
                neg.remote_ice.ufrag.clone(),
            )?;
            let media = &self.app.media;
            let port = media.port(adm.shard);
            let (spec, local_desc) = session_spec::build(
                id,
                Role::Viewer,
                adm.key,
                &name,
                neg,
                session_spec::local_ice(),
                media,
                port,
            );
            let mids = spec
                .subscribe
                .iter()
                .filter(|s| s.kind == MediaKind::Video)
                .map(|s| s.mid.clone())
                .collect();
            reg.set_video_mids(id, mids);
            media.send(adm.shard, Command::AddSession(Box::new(spec)));
            for (to, cmd) in adm.commands {
                media.send(to, cmd);
            }
            sdp::write_answer(neg, &local_desc)
        };
        local.sessions.insert(
            id,
            LiveSession {
                stream,
                user: user.to_string(),
                role: LiveRole::Whep {
                    etag: etag.clone(),
                    remote_ufrag: neg.remote_ice.ufrag.clone(),
                },
                connected: false,
            },
        );
        Ok((etag, answer))
    }
}

/// `POST /api/livestream/{id}/whep`: a WHEP viewer (RFC 9725's exchange): the SDP offer in,
/// 201 with the answer, `Location` of the session and the events `Link`.
pub async fn offer(
    State(svc): Svc,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let caller = svc.caller(&headers)?;
            let stream = parse_id(&stream)?;
            check_content_type(&headers, "application/sdp")?;
            let bytes = read_body(body, svc.app.cfg.max_sdp_bytes).await?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Problem::bad_request("the SDP offer is not UTF-8 text"))?;
            let offer = sdp::parse_offer(text).map_err(sdp_problem)?;
            let neg = sdp::negotiate(&offer, sdp::Role::Viewer, &svc.app.capabilities)
                .map_err(sdp_problem)?;
            let ls = svc.load(stream).await?;
            let id = SessionId(session_spec::random_id());
            // Anonymous WHEP viewers are each their own viewer.
            let user = if caller.authenticated || caller.user != "anonymous" {
                caller.user.clone()
            } else {
                format!("whep-{id}")
            };
            svc.join_viewer(&ls, &user, Attachment::Whep(id.0)).await?;
            let (etag, answer) = match svc.whep_session(ls.id, &user, id, &neg) {
                Ok(x) => x,
                Err(e) => {
                    svc.leave_viewer(ls.id, &user, &Attachment::Whep(id.0))
                        .await;
                    return Err(e);
                }
            };
            tracing::info!(stream = %ls.id, session = %id, user, "WHEP viewer");
            let count = svc.viewer_count(ls.id).await;
            svc.announce(
                ls.id,
                "stream:viewer:joined",
                &id.to_string(),
                &user,
                count,
                "whep",
            )
            .await;
            let location = session_url(ls.id, id);
            let mut resp = (StatusCode::CREATED, answer).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, header_value("application/sdp"));
            h.insert(header::LOCATION, header_value(&location));
            h.insert(header::ETAG, header_value(&etag));
            h.insert(
                ACCEPT_PATCH,
                header_value("application/trickle-ice-sdpfrag"),
            );
            h.append(
                header::LINK,
                header_value(&format!(
                    "<{location}/sse>; rel=\"{SSE_REL}\"; events=\"{}\"",
                    SSE_EVENTS.join(",")
                )),
            );
            for link in &svc.app.ice_links {
                h.append(header::LINK, link.clone());
            }
            Ok(resp)
        }
        .await,
    )
}

/// The WHEP session `id` of `stream`, with its user.
fn find(
    svc: &LivestreamService,
    stream: &str,
    session: &str,
) -> Result<(Uuid, SessionId, LiveSession), ApiError> {
    let stream = parse_id(stream)?;
    let id = parse_session(session)?;
    let local = svc.media_lock()?;
    let s = local
        .sessions
        .get(&id)
        .filter(|s| s.stream == stream && matches!(s.role, LiveRole::Whep { .. }))
        .cloned()
        .ok_or_else(|| ApiError::from(Problem::not_found("no such session")))?;
    Ok((stream, id, s))
}

/// `DELETE` the WHEP session: the viewer leaves.
pub async fn delete(
    State(svc): Svc,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let caller = svc.caller(&headers)?;
            let (stream, id, s) = find(&svc, &stream, &session)?;
            if caller.authenticated && caller.user != s.user {
                return Err(ApiError::forbidden("this session belongs to another user"));
            }
            svc.end_media_session(id, "deleted");
            let count = svc
                .leave_viewer(stream, &s.user, &Attachment::Whep(id.0))
                .await;
            svc.announce(
                stream,
                "stream:viewer:left",
                &id.to_string(),
                &s.user,
                count,
                "whep",
            )
            .await;
            Ok(StatusCode::OK.into_response())
        }
        .await,
    )
}

/// `PATCH` the WHEP session with trickled candidates (RFC 8840). Ringcast is ICE-lite: a valid
/// fragment needs no action; an ICE restart is refused.
pub async fn patch(
    State(svc): Svc,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            let caller = svc.caller(&headers)?;
            let (_, _, s) = find(&svc, &stream, &session)?;
            if caller.authenticated && caller.user != s.user {
                return Err(ApiError::forbidden("this session belongs to another user"));
            }
            let LiveRole::Whep { etag, remote_ufrag } = &s.role else {
                return Err(Problem::not_found("no such session").into());
            };
            check_content_type(&headers, "application/trickle-ice-sdpfrag")?;
            if let Some(m) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
                && m.trim() != "*"
                && m.trim() != etag
            {
                return Err(Problem::precondition_failed(
                    "If-Match does not match the session's ETag",
                )
                .into());
            }
            let bytes = read_body(body, svc.app.cfg.max_sdp_bytes).await?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Problem::bad_request("the fragment is not UTF-8 text"))?;
            let frag = sdp::parse_trickle_sdpfrag(text).map_err(sdp_problem)?;
            if frag.ice.as_ref().is_some_and(|i| &i.ufrag != remote_ufrag) {
                return Err(Problem::unprocessable(
                    "ICE restarts are not supported: start a new session instead",
                )
                .into());
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// `POST …/whep/{session}/sse` with a JSON array of event names: 201, `Location` of the event
/// stream. Unknown names are refused (422); an empty array means every event offered.
pub async fn sse_subscribe(
    State(svc): Svc,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    respond(
        async {
            svc.caller(&headers)?;
            let (stream, id, _) = find(&svc, &stream, &session)?;
            check_content_type(&headers, "application/json")?;
            let bytes = read_body(body, 4096).await?;
            let names: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| {
                Problem::bad_request(format!("expected a JSON array of event names: {e}"))
            })?;
            if let Some(bad) = names.iter().find(|n| !SSE_EVENTS.contains(&n.as_str())) {
                return Err(Problem::unprocessable(format!(
                    "event {bad:?} is not offered; offered: {}",
                    SSE_EVENTS.join(",")
                ))
                .into());
            }
            let list = if names.is_empty() {
                SSE_EVENTS.join(",")
            } else {
                names.join(",")
            };
            let mut resp = StatusCode::CREATED.into_response();
            resp.headers_mut().insert(
                header::LOCATION,
                header_value(&format!("{}/sse/{list}", session_url(stream, id))),
            );
            Ok(resp)
        }
        .await,
    )
}

fn sse_of(ev: StreamEvent) -> (&'static str, SseEvent) {
    match ev {
        StreamEvent::ViewerCount(n) => (
            "viewercount",
            SseEvent::default()
                .event("viewercount")
                .data(serde_json::json!({ "viewercount": n }).to_string()),
        ),
        StreamEvent::Active => ("active", SseEvent::default().event("active").data("{}")),
        StreamEvent::Inactive | StreamEvent::Ended => {
            ("inactive", SseEvent::default().event("inactive").data("{}"))
        }
    }
}

/// `GET …/whep/{session}/sse/{events}`: the event stream (`text/event-stream`): the current
/// state first, then every change, until the livestream ends or the session goes.
pub async fn sse_stream(
    State(svc): Svc,
    Path((stream, session, events)): Path<(String, String, String)>,
) -> Response {
    let run = async {
        let (stream, _, _) = find(&svc, &stream, &session)?;
        let wanted: Vec<String> = events
            .split(',')
            .filter(|e| SSE_EVENTS.contains(e))
            .map(str::to_string)
            .collect();
        if wanted.is_empty() {
            return Err(ApiError::from(Problem::not_found("no such event stream")));
        }
        let (rx, active) = svc
            .events
            .subscribe(stream)
            .ok_or_else(|| ApiError::from(Problem::internal("event hub lock poisoned")))?;
        let count = svc.viewer_count(stream).await;
        let initial = vec![
            if active {
                StreamEvent::Active
            } else {
                StreamEvent::Inactive
            },
            StreamEvent::ViewerCount(count),
        ];
        Ok(Sse::new(event_stream(initial, rx, wanted))
            .keep_alive(KeepAlive::default())
            .into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

fn event_stream(
    initial: Vec<StreamEvent>,
    rx: broadcast::Receiver<StreamEvent>,
    wanted: Vec<String>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(
        (initial.into_iter(), rx, wanted, false),
        |(mut initial, mut rx, wanted, done)| async move {
            if done {
                return None;
            }
            loop {
                let (ev, last) = match initial.next() {
                    Some(ev) => (ev, false),
                    None => match rx.recv().await {
                        Ok(ev) => (ev, ev == StreamEvent::Ended),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                };
                let (name, sse) = sse_of(ev);
                if wanted.iter().any(|w| w == name) {
                    return Some((Ok(sse), (initial, rx, wanted, last)));
                }
                if last {
                    return None;
                }
            }
        },
    )
}
