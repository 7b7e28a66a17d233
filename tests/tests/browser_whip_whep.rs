//! Chromium publishes over WHIP; two Chromium viewers watch over WHEP, one of them arriving
//! before the publisher. Both I/O backends.

use std::time::Duration;

use ringcast_tests::{Io, PeerProcess, PeerSpec, Server, ServerOptions, Stack, deps, media_lock};

/// The fake camera runs at 30 fps; a viewer must decode at least this many frames per second.
const MIN_FPS: f64 = 20.0;
const WINDOW: Duration = Duration::from_secs(5);
const RUN: Duration = Duration::from_secs(12);

fn publisher_reaches_two_viewers(io: Io) {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, io)).expect("server starts");
    let stream = format!("browser-{}", io.as_str());
    // Order matters: view-0 subscribes before the stream has a publisher.
    let peers = [
        PeerSpec::view(&stream),
        PeerSpec::publish(&stream),
        PeerSpec::view(&stream),
    ];
    let mut run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &peers,
        RUN,
        &["--stagger", "1000"],
    )
    .expect("Chromium starts");

    run.wait_decoding("view-1", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
    let during = server
        .wait_for_metrics(Duration::from_secs(5), |m| {
            m.sum("ringcast_sessions", &[]) == 3.0
                && m.sum("ringcast_publishers", &[]) == 1.0
                && m.sum("ringcast_viewers", &[]) == 2.0
        })
        .unwrap_or_else(|m| {
            panic!("want 3 sessions (1 publisher, 2 viewers) in /metrics, got {m}")
        });

    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let mut received = 0.0;
    for viewer in ["view-0", "view-1"] {
        let fps =
            report.assert_viewer_healthy(viewer, MIN_FPS, WINDOW, &["audio", "packetsReceived"]);
        let width = report.last(viewer, &["video", "frameWidth"]).unwrap_or(0.0);
        let height = report
            .last(viewer, &["video", "frameHeight"])
            .unwrap_or(0.0);
        assert!(
            width > 0.0 && height > 0.0,
            "{viewer} reports no frame size\n{}",
            report.describe()
        );
        eprintln!(
            "{viewer} over {}: {fps:.1} fps, {width}x{height}, lost {:?}, nacks {:?}, plis {:?}",
            io.as_str(),
            report.last(viewer, &["video", "packetsLost"]),
            report.last(viewer, &["video", "nackCount"]),
            report.last(viewer, &["video", "pliCount"]),
        );
        received += report
            .last(viewer, &["video", "packetsReceived"])
            .unwrap_or(0.0)
            + report
                .last(viewer, &["audio", "packetsReceived"])
                .unwrap_or(0.0);
    }

    // The publisher's selected pair ends at the shard's port.
    let publisher = report.last_sample("publish-0").expect("publisher stats");
    assert_eq!(
        publisher["pair"]["remote"]["port"].as_u64(),
        Some(u64::from(server.rtc_port(0))),
        "publisher's remote candidate is not the shard's port: {}",
        publisher["pair"]
    );
    assert!(
        report.last("publish-0", &["video", "framesEncoded"]) > Some(0.0),
        "{}",
        report.describe()
    );

    // Every packet a viewer received was sent by the server; sessions end with DELETE.
    for peer in ["view-0", "publish-0", "view-1"] {
        let done = report
            .events
            .iter()
            .find(|e| e.value["type"] == "done" && e.value["peer"] == peer);
        let status = done.and_then(|e| e.value["delete_status"].as_u64());
        assert!(
            matches!(status, Some(200 | 204)),
            "DELETE of {peer}'s session: {status:?}\n{}",
            report.describe()
        );
    }
    let after = server
        .wait_for_metrics(Duration::from_secs(5), |m| {
            m.sum("ringcast_sessions", &[]) == 0.0
        })
        .unwrap_or_else(|m| panic!("sessions remain after every peer sent DELETE: {m}"));
    let rtp_out = after.sum("ringcast_rtp_out_total", &[]);
    assert!(
        rtp_out >= received,
        "ringcast_rtp_out_total {rtp_out} < {received} RTP packets the viewers received"
    );
    assert!(during.sum("ringcast_datagrams_in_total", &[]) > 0.0);

    server.assert_alive();
    let (status, took) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops on SIGTERM");
    assert!(
        status.success(),
        "server exited with {status} after {took:?}"
    );
}

#[test]
fn chromium_publisher_reaches_two_chromium_viewers_over_uring() {
    publisher_reaches_two_viewers(Io::Uring);
}

#[test]
fn chromium_publisher_reaches_two_chromium_viewers_over_mmsg() {
    publisher_reaches_two_viewers(Io::Mmsg);
}

/// A viewer that joins a running stream gets video within about a second: the server asks the
/// publisher for a keyframe at once instead of waiting for the next one (Chromium's fake camera
/// sends keyframes only every few minutes on its own).
#[test]
fn late_viewer_sees_video_within_about_a_second() {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, Io::Uring)).expect("server starts");
    let peers = [PeerSpec::publish("late"), PeerSpec::view("late")];
    let mut run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &peers,
        Duration::from_secs(9),
        &["--stagger", "5000", "--interval", "100"],
    )
    .expect("Chromium starts");
    run.wait_decoding("view-0", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let answered = report
        .events
        .iter()
        .find(|e| e.value["type"] == "peer" && e.value["peer"] == "view-0")
        .map(|e| e.at)
        .expect("viewer's WHEP answer event");
    let first_frame = report
        .events
        .iter()
        .find(|e| {
            e.value["type"] == "stats"
                && e.value["peer"] == "view-0"
                && e.value["video"]["framesDecoded"].as_f64() > Some(0.0)
        })
        .map(|e| e.at)
        .expect("viewer decoded a frame");
    let took = first_frame.saturating_duration_since(answered);
    eprintln!("late viewer: first decoded frame {took:?} after its WHEP answer");
    assert!(
        took <= Duration::from_millis(1500),
        "late viewer waited {took:?} for its first frame\n{}",
        report.describe()
    );
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success());
}
