//! Broadcaster events: `stream:offer`, `stream:offer:viewer`, `stream:ice-candidate`,
//! `stream:end`.

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use uuid::Uuid;

use super::*;

impl LivestreamService {
    /// A broadcaster's offer (`stream:offer`, or `stream:offer:viewer` from a socket that does
    /// not publish yet): checks the key, makes the livestream live, publishes, answers.
    async fn on_offer(
        &self,
        s: &SocketRef,
        d: &Value,
        viewer: Option<&str>,
    ) -> Result<Value, (Option<Uuid>, &'static str, ApiError)> {
        let sid = s.id.to_string();
        let key = str_field(d, "streamKey").or_else(|| str_field(d, "key"));
        let given_id = if d.get("streamId").is_some() || d.get("stream_id").is_some() {
            Some(stream_id(d).map_err(|e| (None, "bad_request", e))?)
        } else {
            None
        };
        let info = self.socket_info(&sid);
        let ls = match (given_id, key) {
            (Some(id), Some(k)) => {
                let ls = self
                    .load(id)
                    .await
                    .map_err(|e| (Some(id), "not_found", e))?;
                if !keys::key_matches(k, &ls.stream_key_hash) {
                    return Err((
                        Some(id),
                        "invalid_key",
                        ApiError::forbidden("wrong stream key"),
                    ));
                }
                ls
            }
            (None, Some(k)) => self
                .store
                .by_key_hash(keys::hash_key(k))
                .await
                .map_err(|e| (None, "unavailable", e.into()))?
                .ok_or_else(|| {
                    (
                        None,
                        "invalid_key",
                        ApiError::forbidden("no livestream has this stream key"),
                    )
                })?,
            (id, None) => match info.broadcasting.filter(|b| id.is_none_or(|i| i == *b)) {
                // A socket whose key was accepted earlier offers again.
                Some(b) => self.load(b).await.map_err(|e| (Some(b), "not_found", e))?,
                None => {
                    return Err((
                        id,
                        "invalid_key",
                        ApiError::forbidden("streamKey is required to broadcast"),
                    ));
                }
            },
        };
        let sdp = sdp_of(d, "offer", "offer")
            .or_else(|_| sdp_of(d, "sdp", "offer"))
            .map_err(|e| (Some(ls.id), "bad_request", e))?;
        if ls.status != Status::Live {
            self.store
                .start(ls.id, now_ms())
                .await
                .map_err(|e| (Some(ls.id), "unavailable", e.into()))?;
            tracing::info!(stream = %ls.id, "livestream live (broadcaster's offer)");
        }
        let user = info
            .caller
            .as_ref()
            .map(|c| c.user.clone())
            .unwrap_or_else(|| ls.owner_id.clone());
        let answer = self
            .publish(&ls, &sid, &user, sdp)
            .map_err(|e| (Some(ls.id), code_of_publish(&e), e))?;
        self.update_socket(&sid, |i| i.broadcasting = Some(ls.id));
        s.join(broadcaster_room(ls.id));
        let count = self.viewer_count(ls.id).await;
        let ack = json!({ "success": true, "streamId": ls.id, "viewerCount": count });
        let _ = s.emit("stream:offer:ack", &ack);
        let mut answered = json!({
            "streamId": ls.id,
            "answer": { "type": "answer", "sdp": answer },
        });
        if let Some(v) = viewer {
            answered["viewerId"] = json!(v);
        }
        let _ = s.emit("stream:answer:received", &answered);
        let id = self.media.lock().ok().and_then(|l| l.publisher_of(ls.id));
        if let Some(id) = id {
            self.send_candidates(s, ls.id, id);
        }
        Ok(json!({
            "success": true,
            "streamId": ls.id,
            "viewerCount": count,
            "answer": { "type": "answer", "sdp": answer },
        }))
    }
}

/// Registers the broadcaster's events.
pub(super) fn register(weak: &Shared, s: &SocketRef) {
    let w = weak.clone();
    s.on(
        "stream:offer",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                match svc.on_offer(&s, &payload(d), None).await {
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
        "stream:offer:viewer",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let viewer = str_field(&d, "viewerId").map(str::to_string);
                // A publishing broadcaster offering again per viewer gets its publish answer.
                if let Some(b) = svc.socket_info(&sid).broadcasting
                    && let Some(answer) = svc.publisher_answer(&sid, b)
                {
                    let v = json!({
                        "streamId": b,
                        "viewerId": viewer,
                        "answer": { "type": "answer", "sdp": answer },
                    });
                    let _ = s.emit("stream:answer:received", &v);
                    let _ =
                        ack.send(&json!({ "success": true, "streamId": b, "viewerId": viewer }));
                    return;
                }
                match svc.on_offer(&s, &d, viewer.as_deref()).await {
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
        "stream:ice-candidate",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(_svc) = w.upgrade() else { return };
                let d = payload(d);
                // ICE-lite: the peer's connectivity checks reveal its addresses; a candidate needs
                // no action, only a well-formed message.
                let ok = match d.get("candidate") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(_)) => true,
                    Some(Value::Object(o)) => o.get("candidate").is_none_or(|c| c.is_string()),
                    _ => false,
                };
                if ok {
                    let _ = ack.send(&json!({ "success": true }));
                } else {
                    let e = ApiError::from(Problem::bad_request(
                        "candidate must be an RTCIceCandidateInit or a string",
                    ));
                    fail(&s, ack, stream_id(&d).ok(), "bad_request", &e);
                }
            }
        },
    );

    let w = weak.clone();
    s.on(
        "stream:end",
        move |s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let run = async {
                    let info = svc.socket_info(&sid);
                    let stream = match stream_id(&d) {
                        Ok(id) => id,
                        Err(e) => info.broadcasting.ok_or((None, "bad_request", e))?,
                    };
                    let ls = svc
                        .load(stream)
                        .await
                        .map_err(|e| (Some(stream), "not_found", e))?;
                    let key = str_field(&d, "streamKey");
                    let key_holder = match key {
                        Some(k) => keys::key_matches(k, &ls.stream_key_hash),
                        None => info.broadcasting == Some(stream),
                    };
                    let authority = if key_holder {
                        Authority::KeyHolder
                    } else {
                        let caller = info.caller.clone();
                        svc.authorize(&ls, caller.as_ref(), None, true)
                            .map_err(|e| (Some(stream), "forbidden", e))?
                    };
                    let url = str_field(&d, "recordingUrl").map(str::to_string);
                    let new_key = svc
                        .end_stream(&ls, url, authority.end_reason())
                        .await
                        .map_err(|e| (Some(stream), code_of(&e), e))?;
                    let mut v = json!({ "success": true, "streamId": stream });
                    // An admin ends a livestream but does not learn its new key.
                    if authority != Authority::Admin {
                        v["streamKey"] = json!(new_key);
                    }
                    Ok::<Value, (Option<Uuid>, &'static str, ApiError)>(v)
                };
                match run.await {
                    Ok(v) => {
                        let _ = ack.send(&v);
                    }
                    Err((stream, code, e)) => fail(&s, ack, stream, code, &e),
                }
            }
        },
    );
}
