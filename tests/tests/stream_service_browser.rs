//! End to end through the stream service: a Chromium sharer starts a stream and publishes it by
//! WHIP to `/stream/{id}/whip`; a Chromium viewer calls `/stream/watch`, answers the server's
//! offer with `PUT` to its `answer_url` and decodes the video. The viewer's joined and left
//! events come from the media session's life (connected; DELETE), seen by an independent NATS
//! subscriber; the sharer's DELETE stops the stream.

mod stream_support;

use std::time::Duration;

use ringcast_tests::{PeerProcess, Server, Stack, deps, media_lock};
use stream_support::*;

/// The fake camera runs at 30 fps; the viewer must decode at least this many frames per second.
const MIN_FPS: f64 = 20.0;
const WINDOW: Duration = Duration::from_secs(5);
const RUN: Duration = Duration::from_secs(12);

#[test]
fn chromium_sharer_reaches_a_chromium_viewer_through_the_server_offer() {
    deps::require_browser();
    let _media = media_lock();
    let nats = Backing::nats();
    let mut events = Subscriber::connect(&nats.nats_url(), &["stream.>"]);
    let server =
        Server::start(stream_server(&[("NATS_URL", nats.nats_url())])).expect("server starts");
    let alice = token("alice");
    let s = start_stream(&server, &alice, &uuid());
    let id = s["stream_id"].as_str().expect("id").to_string();
    let session = s["session_id"].as_str().expect("session_id").to_string();

    let args: Vec<String> = [
        "--server",
        &server.base_url(),
        "--duration",
        &format!("{:.1}", RUN.as_secs_f64()),
        "--token",
        &alice,
        "--stagger",
        "1000",
        // The viewer first: it watches before the sharer publishes, and its DELETE comes
        // before the sharer's (which ends the stream).
        &format!("watch:{id}"),
        &format!("share:{id}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut run = PeerProcess::spawn_args(Stack::Chromium, &args, RUN + Duration::from_secs(60))
        .expect("Chromium starts");
    run.wait_decoding("watch-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));

    // Joined: the viewer's media session connected.
    let joined = events.wait_for("stream.viewer.joined", Duration::from_secs(10), |v| {
        v["stream_id"] == id.as_str()
    });
    assert_eq!(joined["user_id"], "alice");
    assert_eq!(joined["viewer_count"], 1, "{joined}");
    let viewer_session = joined["session_id"]
        .as_str()
        .expect("session_id")
        .to_string();
    let state = get(&server, &format!("/stream/{id}"), Some(&alice))
        .json()
        .expect("JSON");
    assert_eq!(state["viewer_count"], 1, "{state}");

    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let fps =
        report.assert_viewer_healthy("watch-0", MIN_FPS, WINDOW, &["audio", "packetsReceived"]);
    let width = report
        .last("watch-0", &["video", "frameWidth"])
        .unwrap_or(0.0);
    let height = report
        .last("watch-0", &["video", "frameHeight"])
        .unwrap_or(0.0);
    assert!(width > 0.0 && height > 0.0, "{}", report.describe());
    eprintln!(
        "stream viewer: {fps:.1} fps, {width}x{height}, lost {:?}, nacks {:?}",
        report.last("watch-0", &["video", "packetsLost"]),
        report.last("watch-0", &["video", "nackCount"]),
    );
    let info = report.peer_info("watch-0").expect("watch-0 peer event");
    assert_eq!(info["session_id"].as_str(), Some(viewer_session.as_str()));
    assert_eq!(
        report.peer_info("share-0").expect("share-0")["location"].as_str(),
        Some(
            server
                .url(&format!("/stream/{id}/sessions/{session}"))
                .as_str()
        )
    );

    // The peers ended with DELETE: the viewer left, then the sharer's session ended the stream.
    for peer in ["watch-0", "share-0"] {
        let done = report
            .events
            .iter()
            .find(|e| e.value["type"] == "done" && e.value["peer"] == peer)
            .and_then(|e| e.value["delete_status"].as_u64());
        assert_eq!(done, Some(200), "DELETE of {peer}\n{}", report.describe());
    }
    let left = events.wait_for("stream.viewer.left", Duration::from_secs(10), |v| {
        v["session_id"] == viewer_session.as_str()
    });
    assert_eq!(left["reason"], "deleted", "{left}");
    assert_eq!(left["viewer_count"], 0, "{left}");
    let stopped = events.wait_for("stream.stopped", Duration::from_secs(10), |v| {
        v["stream_id"] == id.as_str()
    });
    assert_eq!(stopped["reason"], "publisher_left");
    assert_problem(&get(&server, &format!("/stream/{id}"), Some(&alice)), 404);
}
