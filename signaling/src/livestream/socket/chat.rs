//! Chat events: `join-livestream`, `leave-livestream`, `chat:message`, handled in the order
//! each socket sent them (see `livestream::arrival`).

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use uuid::Uuid;

use super::*;

/// Registers the chat events.
pub(super) fn register(weak: &Shared, s: &SocketRef) {
    let w = weak.clone();
    s.on(
        "join-livestream",
        move |arrived: Arrival, s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                // A chat:message sent right after (without waiting for this acknowledgement)
                // is handled once the socket is in the room: the sender sees its own message.
                let _turn = arrival::wait_turn(&arrived).await;
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let run = async {
                    let stream = stream_id(&d).map_err(|e| (None, code_of(&e), e))?;
                    svc.message_caller(&sid, &d)
                        .map_err(|e| (Some(stream), "unauthorized", e))?;
                    let ls = svc
                        .load(stream)
                        .await
                        .map_err(|e| (Some(stream), "not_found", e))?;
                    s.join(chat_room(ls.id));
                    Ok::<Value, (Option<Uuid>, &'static str, ApiError)>(json!({
                        "success": true,
                        "streamId": ls.id,
                        "status": ls.status.as_str(),
                    }))
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

    s.on(
        "leave-livestream",
        move |arrived: Arrival, s: SocketRef, d: TryData<Value>, ack: AckSender| async move {
            // In order with the socket's chat messages and chat room joins.
            let _turn = arrival::wait_turn(&arrived).await;
            let d = payload(d);
            match stream_id(&d) {
                Ok(stream) => {
                    s.leave(chat_room(stream));
                    let _ = ack.send(&json!({ "success": true, "streamId": stream }));
                }
                Err(e) => fail(&s, ack, None, "bad_request", &e),
            }
        },
    );

    let w = weak.clone();
    s.on(
        "chat:message",
        move |arrived: Arrival, s: SocketRef, d: TryData<Value>, ack: AckSender| {
            let w = w.clone();
            async move {
                // One sender's messages are stored and broadcast in the order it sent them (and
                // after the chat room joins and leaves it sent before them).
                let _turn = arrival::wait_turn(&arrived).await;
                let Some(svc) = w.upgrade() else { return };
                let d = payload(d);
                let sid = s.id.to_string();
                let run = async {
                    let stream = stream_id(&d).map_err(|e| (None, code_of(&e), e))?;
                    let caller = svc
                        .message_caller(&sid, &d)
                        .map_err(|e| (Some(stream), "unauthorized", e))?;
                    let text = d.get("message").and_then(Value::as_str).ok_or_else(|| {
                        (
                            Some(stream),
                            "bad_request",
                            ApiError::from(Problem::bad_request("message is required")),
                        )
                    })?;
                    let m = svc.post_chat(stream, &caller, text).await.map_err(|e| {
                        let code = match e.status().as_u16() {
                            429 => "rate_limited",
                            403 => "muted",
                            409 => "not_live",
                            _ => code_of(&e),
                        };
                        (Some(stream), code, e)
                    })?;
                    Ok::<Value, (Option<Uuid>, &'static str, ApiError)>(json!({
                        "success": true,
                        "message": crate::livestream::chat::message_json(&m),
                    }))
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
