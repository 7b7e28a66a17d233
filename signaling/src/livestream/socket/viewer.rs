//! Viewer events: `stream:join`, `stream:answer`, `stream:leave`; and what viewers hear when
//! a livestream ends.

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use uuid::Uuid;

use super::*;

impl LivestreamService {
    /// `stream:join`: the socket's user becomes a viewer; the server's offer follows.
    async fn on_join(
        &self,
        s: &SocketRef,
        d: &Value,
    ) -> Result<Value, (Option<Uuid>, &'static str, ApiError)> {
        let sid = s.id.to_string();
        let stream = stream_id(d).map_err(|e| (None, code_of(&e), e))?;
        let caller = self
            .message_caller(&sid, d)
            .map_err(|e| (Some(stream), "unauthorized", e))?;
        let ls = self
            .load(stream)
            .await
            .map_err(|e| (Some(stream), "not_found", e))?;
        let count = self
            .join_viewer(&ls, &caller.user, Attachment::Socket(sid.clone()))
            .await
            .map_err(|e| {
                let code = match e.status().as_u16() {
                    409 => "not_live",
                    429 => "viewer_limit",
                    _ => code_of(&e),
                };
                (Some(stream), code, e)
            })?;
        let offer = match self.offer_viewer(&ls, &caller.user, &sid) {
            Ok(o) => o,
            Err(e) => {
                self.leave_viewer(stream, &caller.user, &Attachment::Socket(sid.clone()))
                    .await;
                return Err((Some(stream), code_of(&e), e));
            }
        };
        let newly = {
            let mut newly = false;
            self.update_socket(&sid, |i| newly = i.watching.insert(stream));
            newly
        };
        s.join(viewers_room(stream));
        let broadcasting = self
            .media
            .lock()
            .ok()
            .and_then(|l| l.publisher_of(stream))
            .is_some();
        let ack = json!({
            "success": true,
            "streamId": stream,
            "viewerId": sid,
            "userId": caller.user,
            "viewerCount": count,
            "broadcasting": broadcasting,
            "iceServers": self.ice_servers(&caller.user),
        });
        let _ = s.emit("stream:join:ack", &ack);
        let _ = s.emit(
            "stream:offer:received",
            &json!({
                "streamId": stream,
                "viewerId": sid,
                "offer": { "type": "offer", "sdp": offer },
            }),
        );
        // The offer carries the candidates already; clients written to trickle get them too.
        let session = self
            .media
            .lock()
            .ok()
            .and_then(|l| l.socket_viewer(&sid, stream));
        if let Some(id) = session {
            self.send_candidates(s, stream, id);
        }
        if newly {
            self.announce(
                stream,
                "stream:viewer:joined",
                &sid,
                &caller.user,
                count,
                "socketio",
            )
            .await;
        }
        Ok(ack)
    }

    /// Ends what `sid` watches of `stream`: its media, its room, its attachment (the viewer
    /// leaves when it was its last); the broadcaster hears `stream:viewer:left`.
    pub(crate) async fn end_socket_viewing(&self, sid: &str, stream: Uuid) {
        let id = self
            .media
            .lock()
            .ok()
            .and_then(|l| l.socket_viewer(sid, stream));
        if let Some(id) = id {
            self.end_media_session(id, "left");
        }
        let mut was = false;
        self.update_socket(sid, |i| was = i.watching.remove(&stream));
        if let Ok(parsed) = sid.parse::<Sid>()
            && let Some(s) = self.io.get_socket(parsed)
        {
            s.leave(viewers_room(stream));
        }
        let Some(caller) = self.socket_info(sid).caller else {
            return;
        };
        let count = self
            .leave_viewer(stream, &caller.user, &Attachment::Socket(sid.to_string()))
            .await;
        if was {
            self.announce(
                stream,
                "stream:viewer:left",
                sid,
                &caller.user,
                count,
                "socketio",
            )
            .await;
        }
    }

    /// Tells a livestream's sockets it ended (`stream:ended`) and forgets their viewing.
    pub(crate) async fn socket_stream_ended(&self, stream: Uuid, reason: &str) {
        let v = json!({ "streamId": stream, "reason": reason });
        // A socket in several of the rooms hears it once.
        let mut told = std::collections::HashSet::new();
        for s in self
            .io
            .to([
                viewers_room(stream),
                chat_room(stream),
                broadcaster_room(stream),
            ])
            .sockets()
        {
            if told.insert(s.id) {
                let _ = s.emit("stream:ended", &v);
            }
        }
        let _ = self
            .io
            .to(viewers_room(stream))
            .leave(viewers_room(stream))
            .await;
        if let Ok(mut m) = self.sockets.lock() {
            for info in m.values_mut() {
                info.watching.remove(&stream);
                if info.broadcasting == Some(stream) {
                    info.broadcasting = None;
                }
            }
        }
    }
}

/// Registers the viewer's events.
pub(super) fn register(weak: &Shared, s: &SocketRef) {
    let w = weak.clone();
    s.on(
        "stream:join",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                match svc.on_join(&s, &payload(d)).await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:answer",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let run = || -> Result<Uuid, (Option<Uuid>, &'static str, ApiError)> {
                    let stream = stream_id(&d).map_err(|e| (None, "bad_request", e))?;
                    let sdp = sdp_of(&d, "answer", "answer")
                        .or_else(|_| sdp_of(&d, "sdp", "answer"))
                        .map_err(|e| (Some(stream), "bad_request", e))?;
                    svc.accept_viewer_answer(&sid, stream, sdp)
                        .map_err(|e| (Some(stream), code_of_publish(&e), e))?;
                    Ok(stream)
                };
                match run() {
                    Ok(stream) => {
                        let _ = ack.send(&json!({ "success": true, "streamId": stream }));
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:leave",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let streams: Vec<Uuid> = match stream_id(&d) {
                    Ok(id) => vec![id],
                    // Without a stream id: everything this socket watches.
                    Err(_) => svc.socket_info(&sid).watching.into_iter().collect(),
                };
                for stream in &streams {
                    svc.end_socket_viewing(&sid, *stream).await;
                }
                let _ = ack.send(&json!({ "success": true, "streams": streams }));
            }
        },
    );
}
