//! The stream service on NATS: an independent subscriber (async-nats in the test) sees each
//! published event with its ids and an RFC 3339 timestamp; `voice.session.ended` and
//! `channel.deleted` published by another service stop streams. Viewer joined/left from real
//! sessions are checked in `stream_service_browser.rs`.

mod stream_support;

use std::time::Duration;

use ringcast_tests::Server;
use serde_json::json;
use stream_support::*;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn nats_subscriber_sees_every_event_and_subscribed_events_stop_streams() {
    let nats = Backing::nats();
    let mut events = Subscriber::connect(&nats.nats_url(), &["stream.>"]);
    let server =
        Server::start(stream_server(&[("NATS_URL", nats.nats_url())])).expect("server starts");
    let status = get(&server, "/stream/status", None).json().expect("JSON");
    assert_eq!(status["bus"]["kind"], "nats", "{status}");

    let alice = token("alice");
    let channel = uuid();
    let s = start_stream(&server, &alice, &channel);
    let id = s["stream_id"].as_str().expect("id").to_string();
    let started = events.wait_for("stream.started", WAIT, |v| v["stream_id"] == id.as_str());
    assert_eq!(started["channel_id"], channel.as_str());
    assert_eq!(started["user_id"], "alice");
    assert_eq!(started["session_id"], s["session_id"]);
    assert_eq!(started["resolution"], "1920x1080");
    assert!(is_rfc3339(&started["timestamp"]), "{started}");

    let r = patch_json(
        &server,
        &format!("/stream/{id}/quality"),
        Some(&alice),
        &json!({ "resolution": "1280x720", "framerate": 30, "bitrate": 1500 }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let q = events.wait_for("stream.quality.changed", WAIT, |v| {
        v["stream_id"] == id.as_str()
    });
    assert_eq!(q["bitrate"], 1500);
    assert_eq!(q["preset"], "720p");
    assert_eq!(q["preferred_layer"], "m");
    assert!(is_rfc3339(&q["timestamp"]), "{q}");

    let r = post_json(
        &server,
        "/stream/stop",
        Some(&alice),
        &json!({ "stream_id": id }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let stopped = events.wait_for("stream.stopped", WAIT, |v| v["stream_id"] == id.as_str());
    assert_eq!(stopped["reason"], "requested");
    assert_eq!(stopped["user_id"], "alice");
    assert!(is_rfc3339(&stopped["timestamp"]), "{stopped}");

    // voice.session.ended from the voice service stops that user's stream in that channel only.
    let in_voice = start_stream(&server, &alice, &channel);
    let elsewhere = start_stream(&server, &alice, &uuid());
    let bobs = start_stream(&server, &token("bob"), &channel);
    events.publish(
        &nats.nats_url(),
        "voice.session.ended",
        &json!({ "user_id": "alice", "channel_id": channel, "session_id": uuid() }),
    );
    let v = in_voice["stream_id"].as_str().expect("id");
    let stopped = events.wait_for("stream.stopped", WAIT, |e| e["stream_id"] == v);
    assert_eq!(stopped["reason"], "voice_session_ended");
    assert_problem(&get(&server, &format!("/stream/{v}"), Some(&alice)), 404);
    for other in [&elsewhere, &bobs] {
        let o = other["stream_id"].as_str().expect("id");
        let r = get(&server, &format!("/stream/{o}"), Some(&alice));
        assert_eq!(r.status, 200, "{o} must keep running: {}", r.describe());
    }

    // channel.deleted stops every stream of the channel.
    let also = start_stream(&server, &token("carol"), &channel);
    events.publish(
        &nats.nats_url(),
        "channel.deleted",
        &json!({ "channel_id": channel }),
    );
    for s in [&bobs, &also] {
        let sid = s["stream_id"].as_str().expect("id");
        let e = events.wait_for("stream.stopped", WAIT, |e| e["stream_id"] == sid);
        assert_eq!(e["reason"], "channel_deleted");
    }
    let e = elsewhere["stream_id"].as_str().expect("id");
    assert_eq!(
        get(&server, &format!("/stream/{e}"), Some(&alice)).status,
        200
    );
}

#[test]
fn nats_outage_does_not_fail_requests_and_events_resume() {
    let mut nats = Backing::nats();
    let server =
        Server::start(stream_server(&[("NATS_URL", nats.nats_url())])).expect("server starts");
    let alice = token("alice");
    nats.stop();
    // The bus is down: the API still works (events are buffered by the client).
    let s = start_stream(&server, &alice, &uuid());
    nats.start();
    let mut events = Subscriber::connect(&nats.nats_url(), &["stream.>"]);
    // Once reconnected, new events arrive.
    let id = s["stream_id"].as_str().expect("id").to_string();
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let st = get(&server, "/stream/status", None).json().expect("JSON");
        if st["bus"]["connected"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "signaling did not reconnect to NATS: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = post_json(
        &server,
        "/stream/stop",
        Some(&alice),
        &json!({ "stream_id": id }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    events.wait_for("stream.stopped", WAIT, |v| v["stream_id"] == id.as_str());
}
