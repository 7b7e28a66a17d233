//! The media server on NATS: an independent subscriber (async-nats in the test) sees
//! `media.session.created`, `media.track.added`, `media.track.removed` and `media.session.closed`
//! with their ids and RFC 3339 timestamps; `voice.session.ended` from another service closes that
//! user's sessions in the channel, and `stream.stopped` (from another service, or from this
//! server's own stream service) closes the stream owner's video sessions in that channel.

mod stream_support;

use std::time::Duration;

use ringcast_tests::Server;
use serde_json::json;
use stream_support::*;

const WAIT: Duration = Duration::from_secs(10);

fn session(server: &Server, user: &str, channel: &str, kind: &str) -> String {
    let r = post_json(
        server,
        "/sessions",
        Some(&token(user)),
        &json!({ "type": kind, "channel_id": channel, "user_id": user }),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    r.json().expect("JSON")["session_id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn publish_audio(server: &Server, user: &str, session: &str, mid: &str) -> String {
    let params = json!({
        "mid": mid,
        "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2}],
        "encodings": [{"ssrc": 4242}]
    });
    let r = post_json(
        server,
        &format!("/sessions/{session}/publish"),
        Some(&token(user)),
        &json!({ "kind": "audio", "rtp_parameters": params }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    r.json().expect("JSON")["track_id"]
        .as_str()
        .expect("track_id")
        .to_string()
}

fn is_gone(server: &Server, user: &str, session: &str) -> bool {
    get(server, &format!("/sessions/{session}"), Some(&token(user))).status == 404
}

#[test]
fn nats_subscriber_sees_media_events_and_subscribed_events_close_sessions() {
    let nats = Backing::nats();
    let mut events = Subscriber::connect(&nats.nats_url(), &["media.>"]);
    let server =
        Server::start(stream_server(&[("NATS_URL", nats.nats_url())])).expect("server starts");
    let channel = uuid();

    // Created, track added, track removed (unpublished), closed (deleted).
    let a = session(&server, "alice", &channel, "video");
    let created = events.wait_for("media.session.created", WAIT, |v| {
        v["session_id"] == a.as_str()
    });
    assert_eq!(created["type"], "video");
    assert_eq!(created["channel_id"], channel.as_str());
    assert_eq!(created["user_id"], "alice");
    assert!(is_rfc3339(&created["timestamp"]), "{created}");
    let t1 = publish_audio(&server, "alice", &a, "0");
    let added = events.wait_for("media.track.added", WAIT, |v| v["track_id"] == t1.as_str());
    assert_eq!(added["session_id"], a.as_str());
    assert_eq!(added["kind"], "audio");
    assert_eq!(added["channel_id"], channel.as_str());
    assert!(is_rfc3339(&added["timestamp"]), "{added}");
    let r = call(
        "DELETE",
        &server.url(&format!("/sessions/{a}/tracks/{t1}")),
        Some(&token("alice")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let removed = events.wait_for("media.track.removed", WAIT, |v| {
        v["track_id"] == t1.as_str()
    });
    assert_eq!(removed["reason"], "unpublished");
    assert!(is_rfc3339(&removed["timestamp"]), "{removed}");
    let t2 = publish_audio(&server, "alice", &a, "1");
    let r = call(
        "DELETE",
        &server.url(&format!("/sessions/{a}")),
        Some(&token("alice")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let removed = events.wait_for("media.track.removed", WAIT, |v| {
        v["track_id"] == t2.as_str()
    });
    assert_eq!(
        removed["reason"], "deleted",
        "a closing session unpublishes its tracks"
    );
    let closed = events.wait_for("media.session.closed", WAIT, |v| {
        v["session_id"] == a.as_str()
    });
    assert_eq!(closed["reason"], "deleted");
    assert_eq!(closed["user_id"], "alice");
    assert!(closed["duration"].is_u64(), "{closed}");
    assert!(is_rfc3339(&closed["timestamp"]), "{closed}");

    // voice.session.ended: alice's sessions in that channel close, nobody else's.
    let in_voice: Vec<String> = ["audio", "video"]
        .iter()
        .map(|k| session(&server, "alice", &channel, k))
        .collect();
    let elsewhere = session(&server, "alice", &uuid(), "audio");
    let bobs = session(&server, "bob", &channel, "audio");
    events.publish(
        &nats.nats_url(),
        "voice.session.ended",
        &json!({ "user_id": "alice", "channel_id": channel, "session_id": uuid() }),
    );
    for s in &in_voice {
        let c = events.wait_for("media.session.closed", WAIT, |v| {
            v["session_id"] == s.as_str()
        });
        assert_eq!(c["reason"], "voice_session_ended");
        assert!(is_gone(&server, "alice", s));
    }
    assert!(
        !is_gone(&server, "alice", &elsewhere),
        "another channel's session stays"
    );
    assert!(
        !is_gone(&server, "bob", &bobs),
        "another user's session stays"
    );

    // stream.stopped from another service: the owner's video sessions in that channel close.
    let carol_video = session(&server, "carol", &channel, "video");
    let carol_audio = session(&server, "carol", &channel, "audio");
    events.publish(
        &nats.nats_url(),
        "stream.stopped",
        &json!({
            "stream_id": uuid(), "channel_id": channel, "user_id": "carol", "reason": "requested",
            "node_id": "another-node", "timestamp": "2026-11-21T09:19:43.000Z"
        }),
    );
    let c = events.wait_for("media.session.closed", WAIT, |v| {
        v["session_id"] == carol_video.as_str()
    });
    assert_eq!(c["reason"], "stream_stopped");
    assert!(
        !is_gone(&server, "carol", &carol_audio),
        "audio sessions stay"
    );

    // ... and from this server's own stream service.
    let dave_video = session(&server, "dave", &channel, "video");
    let stream = start_stream(&server, &token("dave"), &channel);
    let r = post_json(
        &server,
        "/stream/stop",
        Some(&token("dave")),
        &json!({ "stream_id": stream["stream_id"] }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let c = events.wait_for("media.session.closed", WAIT, |v| {
        v["session_id"] == dave_video.as_str()
    });
    assert_eq!(c["reason"], "stream_stopped");

    // Malformed payloads are ignored.
    events.publish(
        &nats.nats_url(),
        "voice.session.ended",
        &json!({ "nobody": 1 }),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!is_gone(&server, "bob", &bobs));
}
