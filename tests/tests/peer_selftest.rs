//! The test peers themselves, without the server: Chromium and aiortc each stream to themselves
//! in loopback and make offers. When these fail, the end-to-end results say nothing about the
//! server (missing packages, a browser that cannot start, a machine too slow for 30 fps).

use std::process::Command;
use std::time::Duration;

use ringcast_tests::{PeerProcess, Stack, deps, media_lock, paths};

const LOOPBACK: Duration = Duration::from_secs(8);

fn loopback(stack: Stack) -> ringcast_tests::PeerReport {
    let secs = format!("{}", LOOPBACK.as_secs());
    let args = ["--duration", secs.as_str(), "loopback"];
    let run = PeerProcess::spawn_args(stack, &args, LOOPBACK + Duration::from_secs(60))
        .expect("peer starts");
    run.wait().expect("loopback run ends")
}

#[test]
fn chromium_fake_camera_streams_at_30fps_in_loopback() {
    deps::require_browser();
    let _media = media_lock();
    let report = loopback(Stack::Chromium);
    report.assert_ok();
    let fps = report.assert_viewer_healthy(
        "view-0",
        20.0,
        Duration::from_secs(5),
        &["audio", "packetsReceived"],
    );
    // The encoder starts small and grows as the loopback bandwidth estimate ramps up, so the
    // size is bounded by the 640x480 capture rather than equal to it.
    let width = report
        .last("publish-0", &["video", "frameWidth"])
        .unwrap_or(0.0);
    let height = report
        .last("publish-0", &["video", "frameHeight"])
        .unwrap_or(0.0);
    assert!(
        (1.0..=640.0).contains(&width) && (1.0..=480.0).contains(&height),
        "encoded {width}x{height}\n{}",
        report.describe()
    );
    let sent_fps = report
        .rate_last(
            "publish-0",
            &["video", "framesEncoded"],
            Duration::from_secs(5),
        )
        .unwrap_or(0.0);
    eprintln!("Chromium loopback: encoded {sent_fps:.1} fps, decoded {fps:.1} fps");
}

#[test]
fn aiortc_pattern_streams_at_30fps_in_loopback() {
    deps::require_aiortc();
    let _media = media_lock();
    let report = loopback(Stack::Aiortc);
    report.assert_ok();
    let fps = report.assert_viewer_healthy(
        "view-0",
        20.0,
        Duration::from_secs(5),
        &["audio", "framesDecoded"],
    );
    assert!(
        report.last("view-0", &["video", "barPositions"]) >= Some(10.0),
        "pattern does not move\n{}",
        report.describe()
    );
    eprintln!("aiortc loopback: decoded {fps:.1} fps");
}

fn offer(stack: Stack, role: &str) -> String {
    let mut cmd = match stack {
        Stack::Chromium => {
            deps::require_browser();
            let mut c = Command::new("node");
            c.arg(paths::browser_script());
            c
        }
        Stack::Aiortc => {
            deps::require_aiortc();
            let mut c = Command::new(paths::venv_python());
            c.arg(paths::aiortc_script());
            c
        }
    };
    let out = cmd
        .args(["offer", role])
        .output()
        .expect("offer command runs");
    assert!(
        out.status.success(),
        "{stack:?} offer {role}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("SDP is UTF-8")
}

fn assert_webrtc_offer(sdp: &str, direction: &str) {
    assert!(sdp.starts_with("v=0"), "not SDP: {sdp}");
    for needle in [
        "m=audio ",
        "m=video ",
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=fingerprint:sha-256 ",
        "a=setup:actpass",
        "a=group:BUNDLE",
    ] {
        assert!(sdp.contains(needle), "offer lacks {needle:?}:\n{sdp}");
    }
    assert_eq!(
        sdp.matches(&format!("a={direction}")).count(),
        2,
        "want two {direction} sections:\n{sdp}"
    );
    assert!(
        sdp.contains(" 127.0.0.1 "),
        "offer has no loopback host candidate:\n{sdp}"
    );
}

#[test]
fn chromium_offers_are_bundled_sendonly_and_recvonly() {
    assert_webrtc_offer(&offer(Stack::Chromium, "publish"), "sendonly");
    assert_webrtc_offer(&offer(Stack::Chromium, "view"), "recvonly");
}

#[test]
fn aiortc_offers_are_bundled_sendonly_and_recvonly_with_loopback_candidates() {
    assert_webrtc_offer(&offer(Stack::Aiortc, "publish"), "sendonly");
    assert_webrtc_offer(&offer(Stack::Aiortc, "view"), "recvonly");
}
