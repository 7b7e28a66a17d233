//! The Janus API messages the VideoRoom target sends and reads (Janus 1.x, HTTP transport):
//! session and handle requests, VideoRoom plugin bodies, and the classification of replies
//! (`success`, `ack`, `event`, `error`) with their plugin data and JSEP.

use serde_json::{Value, json};

/// What a Janus reply (synchronous or an event from the long poll) says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `{"janus":"success"}`: `data` for session and handle creation, `plugin` for synchronous
    /// plugin requests.
    Success {
        data: Option<Value>,
        plugin: Option<Value>,
    },
    /// `{"janus":"ack"}`: an asynchronous request was queued; its result comes as an event.
    Ack,
    /// `{"janus":"event"}` from a plugin, with its data and an optional JSEP.
    Event {
        sender: Option<u64>,
        plugin: Option<Value>,
        jsep: Option<Jsep>,
    },
    /// `{"janus":"error"}`.
    Error { code: i64, reason: String },
    /// Anything else (`webrtcup`, `media`, `hangup`, `slowlink`, `keepalive`, ...).
    Other(String),
}

/// An SDP with its type, as Janus carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsep {
    /// `offer` or `answer`.
    pub kind: String,
    pub sdp: String,
}

/// Classifies a reply object.
pub fn classify(v: &Value) -> Reply {
    let kind = v.get("janus").and_then(Value::as_str).unwrap_or("");
    let plugin = || v.pointer("/plugindata/data").cloned();
    match kind {
        "success" => Reply::Success {
            data: v.get("data").cloned(),
            plugin: plugin(),
        },
        "ack" => Reply::Ack,
        "event" => Reply::Event {
            sender: v.get("sender").and_then(Value::as_u64),
            plugin: plugin(),
            jsep: v.get("jsep").and_then(|j| {
                Some(Jsep {
                    kind: j.get("type")?.as_str()?.to_string(),
                    sdp: j.get("sdp")?.as_str()?.to_string(),
                })
            }),
        },
        "error" => Reply::Error {
            code: v
                .pointer("/error/code")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            reason: v
                .pointer("/error/reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        },
        other => Reply::Other(other.to_string()),
    }
}

/// The `transaction` of a reply, if it has one.
pub fn transaction(v: &Value) -> Option<&str> {
    v.get("transaction").and_then(Value::as_str)
}

/// A VideoRoom error inside plugin data (`error_code`, `error`).
pub fn plugin_error(data: &Value) -> Option<(i64, String)> {
    let code = data.get("error_code")?.as_i64()?;
    let reason = data
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((code, reason))
}

/// VideoRoom error: the room already exists.
pub const ERR_ROOM_EXISTS: i64 = 427;
/// VideoRoom error: no such feed (the publisher has not joined, or not published yet).
pub const ERR_NO_SUCH_FEED: i64 = 428;

/// `create`: a new Janus session.
pub fn create_session(tx: &str) -> Value {
    json!({"janus": "create", "transaction": tx})
}

/// `attach`: a new handle on the VideoRoom plugin.
pub fn attach_videoroom(tx: &str) -> Value {
    json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": tx})
}

/// `keepalive` for the session.
pub fn keepalive(tx: &str) -> Value {
    json!({"janus": "keepalive", "transaction": tx})
}

/// `detach` a handle (hangs up its PeerConnection and leaves the room).
pub fn detach(tx: &str) -> Value {
    json!({"janus": "detach", "transaction": tx})
}

/// `destroy` the session.
pub fn destroy(tx: &str) -> Value {
    json!({"janus": "destroy", "transaction": tx})
}

/// A plugin `message` with `body` and, optionally, a JSEP. `trickle: false` tells Janus the
/// SDP holds every candidate, so it does not wait for trickled ones.
pub fn message(tx: &str, body: Value, jsep: Option<(&str, &str)>) -> Value {
    let mut m = json!({"janus": "message", "transaction": tx, "body": body});
    if let Some((kind, sdp)) = jsep {
        m["jsep"] = json!({"type": kind, "sdp": sdp, "trickle": false});
    }
    m
}

/// A `trickle` saying there are no more candidates.
pub fn trickle_completed(tx: &str) -> Value {
    json!({"janus": "trickle", "transaction": tx, "candidate": {"completed": true}})
}

/// VideoRoom `create` body: a VP8/Opus room for `publishers` publishers, no bitrate cap,
/// no recording, no join notifications (they would cost every participant an event).
pub fn create_room(room: u64, publishers: usize) -> Value {
    json!({
        "request": "create",
        "room": room,
        "description": format!("loadgen room {room}"),
        "publishers": publishers,
        "bitrate": 0,
        "fir_freq": 10,
        "audiocodec": "opus",
        "videocodec": "vp8",
        "notify_joining": false,
        "record": false,
    })
}

/// VideoRoom `joinandconfigure` body for a publisher with feed id `feed`.
pub fn join_publisher(room: u64, feed: u64, display: &str) -> Value {
    json!({
        "request": "joinandconfigure",
        "ptype": "publisher",
        "room": room,
        "id": feed,
        "display": display,
        "audio": true,
        "video": true,
    })
}

/// VideoRoom `join` body for a subscriber to `feed` (Janus offers).
pub fn join_subscriber(room: u64, feed: u64) -> Value {
    json!({
        "request": "join",
        "ptype": "subscriber",
        "room": room,
        "streams": [{"feed": feed}],
    })
}

/// VideoRoom `start` body (sent with the subscriber's answer).
pub fn start(room: u64) -> Value {
    json!({"request": "start", "room": room})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn success_with_session_id_is_read() {
        let v: Value =
            serde_json::from_str(r#"{"janus":"success","transaction":"t1","data":{"id":42}}"#)
                .unwrap();
        assert_eq!(transaction(&v), Some("t1"));
        let Reply::Success { data, plugin } = classify(&v) else {
            panic!()
        };
        assert_eq!(data.unwrap()["id"], 42);
        assert!(plugin.is_none());
    }

    #[test]
    fn joined_event_with_answer_is_read() {
        let v: Value = serde_json::from_str(
            r#"{"janus":"event","session_id":1,"transaction":"t2","sender":7,
               "plugindata":{"plugin":"janus.plugin.videoroom",
                             "data":{"videoroom":"joined","room":1234,"id":5}},
               "jsep":{"type":"answer","sdp":"v=0\r\n"}}"#,
        )
        .unwrap();
        let Reply::Event {
            sender,
            plugin,
            jsep,
        } = classify(&v)
        else {
            panic!()
        };
        assert_eq!(sender, Some(7));
        assert_eq!(plugin.unwrap()["videoroom"], "joined");
        let jsep = jsep.unwrap();
        assert_eq!(
            (jsep.kind.as_str(), jsep.sdp.as_str()),
            ("answer", "v=0\r\n")
        );
    }

    #[test]
    fn plugin_and_core_errors_are_read() {
        let v: Value = serde_json::from_str(
            r#"{"janus":"success","plugindata":{"plugin":"janus.plugin.videoroom",
               "data":{"videoroom":"event","error_code":427,"error":"Room 1 already exists"}}}"#,
        )
        .unwrap();
        let Reply::Success {
            plugin: Some(data), ..
        } = classify(&v)
        else {
            panic!()
        };
        assert_eq!(plugin_error(&data).unwrap().0, ERR_ROOM_EXISTS);
        let v: Value = serde_json::from_str(
            r#"{"janus":"error","error":{"code":458,"reason":"No such session"}}"#,
        )
        .unwrap();
        assert_eq!(
            classify(&v),
            Reply::Error {
                code: 458,
                reason: "No such session".into()
            }
        );
        let v: Value = serde_json::from_str(r#"{"janus":"webrtcup","sender":3}"#).unwrap();
        assert_eq!(classify(&v), Reply::Other("webrtcup".into()));
    }

    #[test]
    fn messages_carry_body_and_jsep_without_trickle() {
        let m = message("t", join_publisher(9, 3, "p3"), Some(("offer", "v=0")));
        assert_eq!(m["janus"], "message");
        assert_eq!(m["body"]["request"], "joinandconfigure");
        assert_eq!(m["body"]["id"], 3);
        assert_eq!(m["jsep"]["type"], "offer");
        assert_eq!(m["jsep"]["trickle"], false);
        let m = message("t", join_subscriber(9, 3), None);
        assert_eq!(m["body"]["streams"][0]["feed"], 3);
        assert!(m.get("jsep").is_none());
        assert_eq!(create_room(9, 50)["publishers"], 50);
    }
}
