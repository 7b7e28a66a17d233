//! End to end through the stream service: a Chromium sharer starts a stream and publishes it by
//! WHIP to `/stream/{id}/whip`; a Chromium viewer calls `/stream/watch`, answers the server's
//! offer with `PUT` to its `answer_url` and decodes the video. The viewer's joined and left
//! events come from the media session's life (connected; DELETE), seen by an independent NATS
//! subscriber; the sharer's DELETE stops the stream. The stream's quality caps the viewer, at
//! join and after `PATCH …/quality` (read back from the viewer listing of `GET /stream/{id}`).

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

    // The stream's quality caps its viewer: at join (2500 kbit/s, 1080 rows), and again after
    // PATCH (1500 kbit/s, 720 rows), as the viewer's shard reports it once a second. (The
    // sharer sends one 640x480 encoding of about 0.8 Mbit/s, which fits both caps.)
    let viewer_cap = |want: (u64, u64)| {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let st = get(&server, &format!("/stream/{id}"), Some(&alice))
                .json()
                .expect("JSON");
            let v = &st["viewers"][0];
            let cap = (
                v["cap"]["max_video_bps"].as_u64().unwrap_or(0),
                v["cap"]["max_height"].as_u64().unwrap_or(0),
            );
            if cap == want {
                assert_eq!(v["session_id"].as_str(), Some(viewer_session.as_str()));
                assert_eq!(v["state"], "connected", "{st}");
                assert!(
                    v["tracks"].as_object().is_some_and(|t| !t.is_empty()),
                    "{st}"
                );
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "the viewer's cap is {cap:?}, not {want:?}: {st}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    viewer_cap((2_500_000, 1080));
    let r = patch_json(
        &server,
        &format!("/stream/{id}/quality"),
        Some(&alice),
        &serde_json::json!({ "resolution": "1280x720", "bitrate": 1500 }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    viewer_cap((1_500_000, 720));

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

/// Media keeps flowing while Redis hangs (API calls get 503 meanwhile), and a viewer whose
/// browser closes the connection without DELETE still leaves: the shard's session-closed event
/// (DTLS close_notify, or ICE consent expiry) produces `stream.viewer.left`, and the sharer's
/// session closing the same way stops the stream.
#[test]
fn media_survives_a_redis_outage_and_closed_sessions_leave_without_delete() {
    deps::require_browser();
    let _media = media_lock();
    let redis = Backing::redis();
    let nats = Backing::nats();
    let mut events = Subscriber::connect(&nats.nats_url(), &["stream.>"]);
    let server = Server::start(stream_server(&[
        ("NATS_URL", nats.nats_url()),
        ("REDIS_URL", redis.redis_url()),
    ]))
    .expect("server starts");
    let alice = token("alice");
    let s = start_stream(&server, &alice, &uuid());
    let id = s["stream_id"].as_str().expect("id").to_string();
    let run_for = Duration::from_secs(16);
    let args: Vec<String> = [
        "--server",
        &server.base_url(),
        "--duration",
        &format!("{:.1}", run_for.as_secs_f64()),
        "--token",
        &alice,
        "--no-delete",
        // The viewer first, so it closes first: the sharer closing ends the stream.
        &format!("watch:{id}"),
        &format!("share:{id}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut run =
        PeerProcess::spawn_args(Stack::Chromium, &args, run_for + Duration::from_secs(60))
            .expect("Chromium starts");
    run.wait_decoding("watch-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
    let joined = events.wait_for("stream.viewer.joined", Duration::from_secs(10), |v| {
        v["stream_id"] == id.as_str()
    });
    let viewer_session = joined["session_id"]
        .as_str()
        .expect("session_id")
        .to_string();

    // Redis hangs for 6 s: the API answers 503, the media does not notice.
    std::thread::sleep(Duration::from_secs(1));
    redis.pause();
    let down = std::time::Instant::now();
    let r = get(&server, &format!("/stream/{id}"), Some(&alice));
    let p = assert_problem(&r, 503);
    eprintln!("Redis paused: {} after {:?}", p["detail"], down.elapsed());
    std::thread::sleep(Duration::from_secs(6).saturating_sub(down.elapsed()));
    let up = std::time::Instant::now();
    redis.resume();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(&server, &format!("/stream/{id}"), Some(&alice));
        if r.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "store did not recover: {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let fps = report
        .rate_between("watch-0", &["video", "framesDecoded"], down, up)
        .unwrap_or_else(|| panic!("no viewer samples during the outage\n{}", report.describe()));
    eprintln!("viewer decoded {fps:.1} fps while Redis was unreachable");
    assert!(
        fps >= MIN_FPS,
        "{fps:.1} fps during the outage\n{}",
        report.describe()
    );

    // No DELETE was sent: the sessions end on the shard (DTLS close_notify from the closing
    // browser, else ICE consent expiry after 30 s).
    let left = events.wait_for("stream.viewer.left", Duration::from_secs(45), |v| {
        v["session_id"] == viewer_session.as_str()
    });
    assert!(
        left["reason"] == "dtls_closed" || left["reason"] == "consent_expired",
        "{left}"
    );
    let stopped = events.wait_for("stream.stopped", Duration::from_secs(45), |v| {
        v["stream_id"] == id.as_str()
    });
    assert_eq!(stopped["reason"], "publisher_left", "{stopped}");
    eprintln!(
        "viewer left ({}), stream stopped ({})",
        left["reason"], stopped["reason"]
    );
}
