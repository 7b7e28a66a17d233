//! The media sessions of livestreams on this node: the broadcaster's publish (its SDP offer
//! over Socket.IO, answered by the server), Socket.IO viewers (the server's offer, the
//! viewer's answer: the stream service's server-made offers) and WHEP viewers; and what the
//! media plane reports about them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfu::control::{Command, Event};
use sfu::{SessionId, StreamKey};
use uuid::Uuid;

use super::presence::Attachment;
use super::store::Livestream;
use super::{LivestreamService, media_name, socket};
use crate::problem::Problem;
use crate::registry::{Role, published_video};
use crate::stream_service::ApiError;
use crate::stream_service::server_offer::{OfferParams, ServerOffer, accept_answer, write_offer};
use crate::{sdp, session_spec};

/// What a local media session is.
#[derive(Debug, Clone)]
pub(crate) enum LiveRole {
    /// The broadcaster, signalled on `socket`; `answer` is the SDP answer it got (a
    /// peer-to-peer-model client that offers again per viewer gets the same answer back).
    Publisher { socket: String, answer: String },
    /// A Socket.IO viewer: `offered` until its answer arrives.
    SocketViewer {
        socket: String,
        offered: Option<(Box<ServerOffer>, StreamKey, Instant)>,
    },
    /// A WHEP viewer.
    Whep { etag: String, remote_ufrag: String },
}

/// A media session of a livestream.
#[derive(Debug, Clone)]
pub(crate) struct LiveSession {
    pub stream: Uuid,
    pub user: String,
    pub role: LiveRole,
    /// The shard reported ICE and DTLS done.
    pub connected: bool,
}

/// This node's livestream media sessions.
#[derive(Debug, Default)]
pub(crate) struct MediaSessions {
    pub sessions: HashMap<SessionId, LiveSession>,
}

impl MediaSessions {
    pub fn publisher_of(&self, stream: Uuid) -> Option<SessionId> {
        self.sessions
            .iter()
            .find(|(_, s)| s.stream == stream && matches!(s.role, LiveRole::Publisher { .. }))
            .map(|(id, _)| *id)
    }

    /// The viewer session of `socket` for `stream`.
    pub fn socket_viewer(&self, socket: &str, stream: Uuid) -> Option<SessionId> {
        self.sessions
            .iter()
            .find(|(_, s)| {
                s.stream == stream
                    && matches!(&s.role, LiveRole::SocketViewer { socket: x, .. } if x == socket)
            })
            .map(|(id, _)| *id)
    }

    /// Every session signalled on `socket`.
    pub fn of_socket(&self, socket: &str) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| match &s.role {
                LiveRole::Publisher { socket: x, .. }
                | LiveRole::SocketViewer { socket: x, .. } => x == socket,
                LiveRole::Whep { .. } => false,
            })
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn of_stream(&self, stream: Uuid) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.stream == stream)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// 400 for malformed SDP, 422 for SDP Ringcast cannot serve.
pub(crate) fn sdp_problem(e: sdp::SdpError) -> ApiError {
    if e.http_status() == 422 {
        Problem::unprocessable(e.to_string()).into()
    } else {
        Problem::bad_request(e.to_string()).into()
    }
}

fn random_ssrc() -> sfu::Ssrc {
    loop {
        let v: u32 = rand::random();
        if v != 0 {
            return sfu::Ssrc(v);
        }
    }
}

impl LivestreamService {
    fn registry(&self) -> Result<std::sync::MutexGuard<'_, crate::registry::Registry>, ApiError> {
        self.app
            .registry
            .lock()
            .map_err(|_| Problem::internal("registry lock poisoned").into())
    }

    /// Publishes the broadcaster's media from its SDP offer; returns the SDP answer. A
    /// publisher the livestream already has (the key holder reconnecting) is replaced.
    pub(crate) fn publish(
        &self,
        ls: &Livestream,
        socket: &str,
        user: &str,
        offer_sdp: &str,
    ) -> Result<String, ApiError> {
        if offer_sdp.len() > self.app.cfg.max_sdp_bytes {
            return Err(Problem::too_large("the SDP offer is too large").into());
        }
        let offer = sdp::parse_offer(offer_sdp).map_err(sdp_problem)?;
        let neg = sdp::negotiate(&offer, sdp::Role::Publisher, &self.app.capabilities)
            .map_err(sdp_problem)?;
        let old = self.media_lock()?.publisher_of(ls.id);
        if let Some(old) = old {
            let old_socket = self.end_media_session(old, "replaced");
            if let Some(s) = old_socket.filter(|s| s != socket) {
                socket::emit_to(
                    &self.io,
                    &s,
                    "stream:error",
                    &serde_json::json!({
                        "streamId": ls.id,
                        "code": "replaced",
                        "message": "another connection with the stream key took over the broadcast",
                    }),
                );
            }
        }
        let sid = SessionId(session_spec::random_id());
        let etag = format!("\"{:016x}\"", session_spec::random_id());
        let name = media_name(ls.id);
        let mut local = self.media_lock()?;
        let answer = {
            let mut reg = self.registry()?;
            let adm = reg.admit(
                sid,
                &name,
                Role::Publisher,
                etag,
                neg.remote_ice.ufrag.clone(),
            )?;
            let media = &self.app.media;
            let port = media.port(adm.shard);
            let (spec, local_desc) = session_spec::build(
                sid,
                Role::Publisher,
                adm.key,
                &name,
                &neg,
                session_spec::local_ice(),
                media,
                port,
            );
            reg.set_published_video(&name, published_video(&spec));
            media.send(adm.shard, Command::AddSession(Box::new(spec)));
            for (to, cmd) in adm.commands {
                media.send(to, cmd);
            }
            tracing::info!(stream = %ls.id, session = %sid, shard = %adm.shard, "broadcaster publishing");
            sdp::write_answer(&neg, &local_desc)
        };
        local.sessions.insert(
            sid,
            LiveSession {
                stream: ls.id,
                user: user.to_string(),
                role: LiveRole::Publisher {
                    socket: socket.to_string(),
                    answer: answer.clone(),
                },
                connected: false,
            },
        );
        Ok(answer)
    }

    /// The SDP answer of the publisher signalled on `socket` for `stream`, if it publishes.
    pub(crate) fn publisher_answer(&self, socket: &str, stream: Uuid) -> Option<String> {
        let local = self.media.lock().ok()?;
        local.sessions.values().find_map(|s| match &s.role {
            LiveRole::Publisher { socket: x, answer } if x == socket && s.stream == stream => {
                Some(answer.clone())
            }
            _ => None,
        })
    }

    /// Places a Socket.IO viewer of `ls` and writes the server's SDP offer for it (an earlier
    /// viewer session of the same socket and stream ends first).
    pub(crate) fn offer_viewer(
        &self,
        ls: &Livestream,
        user: &str,
        socket: &str,
    ) -> Result<String, ApiError> {
        let old = self.media_lock()?.socket_viewer(socket, ls.id);
        if let Some(old) = old {
            self.end_media_session(old, "rejoined");
        }
        let id = SessionId(session_spec::random_id());
        let etag = format!("\"{:016x}\"", session_spec::random_id());
        let media = &self.app.media;
        let mut local = self.media_lock()?;
        let (offer, key) = {
            let mut reg = self.registry()?;
            let adm = reg.admit(id, &media_name(ls.id), Role::Viewer, etag, String::new())?;
            for (to, cmd) in adm.commands {
                media.send(to, cmd);
            }
            let candidates = session_spec::host_candidates(media, media.port(adm.shard));
            let cname = Uuid::new_v4().simple().to_string();
            let msid = ls.id.to_string();
            let offer = write_offer(
                &self.app.capabilities,
                &OfferParams {
                    ice: session_spec::local_ice(),
                    fingerprint: &media.fingerprint,
                    candidates: &candidates,
                    session_id: id.0 >> 1,
                    cname: &cname,
                    msid_stream: &msid,
                    ssrcs: std::array::from_fn(|_| random_ssrc()),
                },
            );
            (offer, adm.key)
        };
        let sdp = offer.sdp.clone();
        local.sessions.insert(
            id,
            LiveSession {
                stream: ls.id,
                user: user.to_string(),
                role: LiveRole::SocketViewer {
                    socket: socket.to_string(),
                    offered: Some((Box::new(offer), key, Instant::now())),
                },
                connected: false,
            },
        );
        tracing::info!(stream = %ls.id, session = %id, socket, "viewer offered");
        Ok(sdp)
    }

    /// Accepts a Socket.IO viewer's SDP answer to the server's offer and starts its session.
    pub(crate) fn accept_viewer_answer(
        &self,
        socket: &str,
        stream: Uuid,
        answer_sdp: &str,
    ) -> Result<(), ApiError> {
        if answer_sdp.len() > self.app.cfg.max_sdp_bytes {
            return Err(Problem::too_large("the SDP answer is too large").into());
        }
        let mut local = self.media_lock()?;
        let id = local.socket_viewer(socket, stream).ok_or_else(|| {
            ApiError::from(Problem::not_found(format!(
                "this connection has no offer for livestream {stream}: send stream:join first"
            )))
        })?;
        let Some(LiveSession {
            role: LiveRole::SocketViewer { offered, .. },
            ..
        }) = local.sessions.get_mut(&id)
        else {
            return Err(Problem::internal("viewer session changed role").into());
        };
        let Some((offer, key, _)) = offered.as_ref() else {
            return Err(Problem::conflict("this offer has its answer already").into());
        };
        let spec = accept_answer(offer, answer_sdp, &self.app.capabilities)
            .map_err(Problem::from)?
            .into_spec(id, offer, *key);
        let reg = self.registry()?;
        let shard = reg
            .session(id)
            .map(|r| r.shard)
            .ok_or_else(|| Problem::not_found("the session ended before its answer"))?;
        self.app
            .media
            .send(shard, Command::AddSession(Box::new(spec)));
        *offered = None;
        tracing::info!(%stream, session = %id, socket, %shard, "viewer answered");
        Ok(())
    }

    /// Takes a session out of the registry (and off its shard when it runs there).
    fn release(&self, id: SessionId, running: bool) {
        let Ok(mut reg) = self.app.registry.lock() else {
            return;
        };
        if let Some((rec, commands)) = reg.remove(id) {
            if running {
                self.app.media.send(rec.shard, Command::RemoveSession(id));
            }
            for (to, cmd) in commands {
                self.app.media.send(to, cmd);
            }
        }
    }

    /// Ends a local media session (nothing when unknown). Returns the socket it was signalled
    /// on, if any. Presence is the caller's business.
    pub(crate) fn end_media_session(&self, id: SessionId, reason: &str) -> Option<String> {
        let s = self.media.lock().ok()?.sessions.remove(&id)?;
        let (running, socket) = match &s.role {
            LiveRole::Publisher { socket, .. } => (true, Some(socket.clone())),
            LiveRole::SocketViewer { socket, offered } => (offered.is_none(), Some(socket.clone())),
            LiveRole::Whep { .. } => (true, None),
        };
        self.release(id, running);
        if matches!(s.role, LiveRole::Publisher { .. }) {
            self.events.inactive(s.stream);
        }
        tracing::info!(stream = %s.stream, session = %id, reason, "livestream media session ended");
        socket
    }

    /// Ends every media session of a livestream.
    pub(crate) fn teardown_media(&self, stream: Uuid) {
        let ids = match self.media.lock() {
            Ok(l) => l.of_stream(stream),
            Err(_) => return,
        };
        for id in ids {
            self.end_media_session(id, "stream_ended");
        }
    }

    /// Ends every livestream media session of this node.
    pub(crate) fn teardown_all_media(&self) {
        let ids: Vec<SessionId> = match self.media.lock() {
            Ok(l) => l.sessions.keys().copied().collect(),
            Err(_) => return,
        };
        for id in ids {
            self.end_media_session(id, "shutdown");
        }
    }

    /// Drops Socket.IO viewer offers left unanswered past `LIVESTREAM_ANSWER_TIMEOUT`.
    pub(crate) async fn expire_offers(&self) {
        let timeout = Duration::from_secs(self.cfg.answer_timeout.max(1));
        let expired: Vec<(SessionId, String, Uuid)> = match self.media.lock() {
            Ok(l) => l
                .sessions
                .iter()
                .filter_map(|(id, s)| match &s.role {
                    LiveRole::SocketViewer {
                        socket,
                        offered: Some((_, _, since)),
                    } if since.elapsed() > timeout => Some((*id, socket.clone(), s.stream)),
                    _ => None,
                })
                .collect(),
            Err(_) => return,
        };
        for (id, sock, stream) in expired {
            self.end_media_session(id, "answer_timeout");
            socket::emit_to(
                &self.io,
                &sock,
                "stream:error",
                &serde_json::json!({
                    "streamId": stream,
                    "code": "answer_timeout",
                    "message": "no stream:answer came for the offer; send stream:join again",
                }),
            );
        }
    }

    /// Applies a media-plane event. Call after [`crate::handle_event`] has updated the registry.
    pub fn on_media_event(self: &Arc<Self>, ev: &Event) {
        match ev {
            Event::SessionConnected { id, .. } => {
                let publisher = {
                    let Ok(mut local) = self.media.lock() else {
                        return;
                    };
                    match local.sessions.get_mut(id) {
                        Some(s) => {
                            s.connected = true;
                            matches!(s.role, LiveRole::Publisher { .. }).then_some(s.stream)
                        }
                        None => None,
                    }
                };
                if let Some(stream) = publisher {
                    tracing::info!(%stream, session = %id, "broadcaster connected");
                    self.events.active(stream);
                }
            }
            Event::SessionClosed { id, .. } | Event::CommandFailed { id: Some(id), .. } => {
                self.media_closed(*id)
            }
            _ => {}
        }
    }

    /// A session the shard closed (consent lost, connect timeout, DTLS failure) or refused.
    fn media_closed(self: &Arc<Self>, id: SessionId) {
        let Some(s) = self
            .media
            .lock()
            .ok()
            .and_then(|l| l.sessions.get(&id).cloned())
        else {
            return;
        };
        self.end_media_session(id, "media_closed");
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            match &s.role {
                LiveRole::Whep { .. } => {
                    let count = svc
                        .leave_viewer(s.stream, &s.user, &Attachment::Whep(id.0))
                        .await;
                    svc.announce(
                        s.stream,
                        "stream:viewer:left",
                        &id.to_string(),
                        &s.user,
                        count,
                        "whep",
                    )
                    .await;
                }
                LiveRole::SocketViewer { socket: sock, .. } => socket::emit_to(
                    &svc.io,
                    sock,
                    "stream:error",
                    &serde_json::json!({
                        "streamId": s.stream,
                        "code": "media_closed",
                        "message": "the media connection closed; send stream:join again",
                    }),
                ),
                LiveRole::Publisher { socket: sock, .. } => socket::emit_to(
                    &svc.io,
                    sock,
                    "stream:error",
                    &serde_json::json!({
                        "streamId": s.stream,
                        "code": "media_closed",
                        "message": "the broadcast's media connection closed; send stream:offer again",
                    }),
                ),
            }
        });
    }
}
