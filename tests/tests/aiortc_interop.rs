//! Interop with an independent WebRTC stack: aiortc publishes and views, alone and mixed with
//! Chromium, over both I/O backends.

use std::time::Duration;

use ringcast_tests::{
    Io, PeerProcess, PeerReport, PeerSpec, Server, ServerOptions, Stack, deps, media_lock,
};

const MIN_FPS: f64 = 20.0;
const WINDOW: Duration = Duration::from_secs(5);
const VIEW_RUN: Duration = Duration::from_secs(10);
/// The publisher outlives the viewer's run (it starts first and must still send at its end).
const PUBLISH_RUN: Duration = Duration::from_secs(18);

/// Starts `pub_stack` publishing, then `view_stack` viewing once the publisher is up; returns
/// both reports.
fn publish_then_view(
    io: Io,
    pub_stack: Stack,
    view_stack: Stack,
) -> (Server, PeerReport, PeerReport) {
    deps::require_aiortc();
    if pub_stack == Stack::Chromium || view_stack == Stack::Chromium {
        deps::require_browser();
    }
    let server = Server::start(ServerOptions::new(1, io)).expect("server starts");
    let stream = format!("interop-{:?}-{:?}-{}", pub_stack, view_stack, io.as_str()).to_lowercase();
    let mut publisher = PeerProcess::spawn(
        pub_stack,
        &server.base_url(),
        &[PeerSpec::publish(&stream)],
        PUBLISH_RUN,
        &[],
    )
    .expect("publisher starts");
    let connected = publisher.wait_until(Duration::from_secs(40), |ev| {
        ev.iter()
            .any(|e| e.value["type"] == "state" && e.value["pc"] == "connected")
    });
    assert!(
        connected,
        "{pub_stack:?} publisher never connected\n{:#?}\n--- server ---\n{}",
        publisher.events(),
        server.log_tail(80)
    );
    let viewer = PeerProcess::spawn(
        view_stack,
        &server.base_url(),
        &[PeerSpec::view(&stream)],
        VIEW_RUN,
        &[],
    )
    .expect("viewer starts");
    let viewer = viewer.wait().expect("viewer run ends");
    let publisher = publisher.wait().expect("publisher run ends");
    (server, publisher, viewer)
}

fn check_aiortc_viewer(report: &PeerReport, expect_size: Option<(f64, f64)>) {
    report.assert_ok();
    let fps = report.assert_viewer_healthy("view-0", MIN_FPS, WINDOW, &["audio", "framesDecoded"]);
    let size = (
        report
            .last("view-0", &["video", "frameWidth"])
            .unwrap_or(0.0),
        report
            .last("view-0", &["video", "frameHeight"])
            .unwrap_or(0.0),
    );
    match expect_size {
        Some(want) => assert_eq!(size, want, "decoded frame size\n{}", report.describe()),
        None => assert!(
            size.0 > 0.0 && size.1 > 0.0,
            "no frame size\n{}",
            report.describe()
        ),
    }
    eprintln!("aiortc viewer: {fps:.1} fps at {}x{}", size.0, size.1);
}

fn aiortc_to_aiortc(io: Io) {
    let _media = media_lock();
    let (mut server, publisher, viewer) = publish_then_view(io, Stack::Aiortc, Stack::Aiortc);
    check_aiortc_viewer(&viewer, Some((640.0, 480.0)));
    // The pattern moves: the viewer saw the bar in many places, so frames are not repeats.
    let positions = viewer
        .last("view-0", &["video", "barPositions"])
        .unwrap_or(0.0);
    assert!(
        positions >= 10.0,
        "viewer saw the test bar at only {positions} positions\n{}",
        viewer.describe()
    );
    publisher.assert_ok();
    server.assert_alive();
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success(), "server exited with {status}");
}

fn chromium_to_aiortc(io: Io) {
    let _media = media_lock();
    let (mut server, publisher, viewer) = publish_then_view(io, Stack::Chromium, Stack::Aiortc);
    check_aiortc_viewer(&viewer, None);
    publisher.assert_ok();
    server.assert_alive();
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success(), "server exited with {status}");
}

#[test]
fn aiortc_publisher_reaches_aiortc_viewer_over_uring() {
    aiortc_to_aiortc(Io::Uring);
}

#[test]
fn aiortc_publisher_reaches_aiortc_viewer_over_mmsg() {
    aiortc_to_aiortc(Io::Mmsg);
}

#[test]
fn chromium_publisher_reaches_aiortc_viewer_over_uring() {
    chromium_to_aiortc(Io::Uring);
}

#[test]
fn chromium_publisher_reaches_aiortc_viewer_over_mmsg() {
    chromium_to_aiortc(Io::Mmsg);
}

#[test]
fn aiortc_publisher_reaches_chromium_viewer_over_mmsg() {
    let _media = media_lock();
    let (mut server, publisher, viewer) =
        publish_then_view(Io::Mmsg, Stack::Aiortc, Stack::Chromium);
    viewer.assert_ok();
    let fps =
        viewer.assert_viewer_healthy("view-0", MIN_FPS, WINDOW, &["audio", "packetsReceived"]);
    assert_eq!(
        viewer.last("view-0", &["video", "frameWidth"]),
        Some(640.0),
        "{}",
        viewer.describe()
    );
    eprintln!("Chromium viewer of aiortc: {fps:.1} fps");
    publisher.assert_ok();
    server.assert_alive();
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success(), "server exited with {status}");
}
