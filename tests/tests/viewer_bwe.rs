//! Send-side bandwidth estimation toward a Chromium WHEP viewer: the viewer negotiates
//! transport-cc, sends feedback on what the server stamps, and the server's estimate for it
//! (read from `GET /whep/{stream}/{session}/stats` and `/metrics`) becomes nonzero and
//! plausible, while the viewer keeps decoding at full frame rate through the probe padding.

use std::time::{Duration, Instant};

use ringcast_tests::{Io, PeerProcess, PeerSpec, Server, ServerOptions, Stack, deps, media_lock};

/// The fake camera runs at 30 fps.
const MIN_FPS: f64 = 25.0;
const WINDOW: Duration = Duration::from_secs(5);
const RUN: Duration = Duration::from_secs(14);

#[test]
fn chromium_viewer_feedback_gives_the_server_a_plausible_estimate() {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, Io::Uring)).expect("server starts");
    let peers = [PeerSpec::publish("bwe"), PeerSpec::view("bwe")];
    let mut run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &peers,
        RUN,
        &["--stagger", "1000"],
    )
    .expect("Chromium starts");
    run.wait_decoding("view-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
    let location = run
        .snapshot()
        .peer_info("view-0")
        .and_then(|p| p["location"].as_str().map(str::to_owned))
        .expect("the viewer's WHEP resource");
    let path = location
        .find("/whep/")
        .map(|i| format!("{}/stats", &location[i..]))
        .expect("a /whep/ resource URL");

    // Reports come once a second; feedback every 50–100 ms from Chromium.
    let deadline = Instant::now() + Duration::from_secs(8);
    let bwe = loop {
        let resp = server.get(&path).expect("stats request");
        let body = String::from_utf8_lossy(&resp.body);
        assert_eq!(resp.status, 200, "GET {path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("stats are JSON");
        let bwe = v["bwe"].clone();
        if bwe["feedback_received"].as_u64() > Some(20) || Instant::now() > deadline {
            break bwe;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("server's estimate toward the Chromium viewer: {bwe}");
    let feedback = bwe["feedback_received"].as_u64().unwrap_or(0);
    assert!(feedback > 20, "Chromium sent transport-cc feedback: {bwe}");
    let target = bwe["target_bps"].as_u64().unwrap_or(0);
    let acked = bwe["acked_bps"].as_u64().unwrap_or(0);
    // Loopback has no bottleneck: the estimate leaves the 300 kbit/s start (the probes
    // succeed) and stays within the estimator's 20 Mbit/s ceiling; the acknowledged rate is
    // what the fake camera sends (hundreds of kbit/s to a few Mbit/s).
    assert!(
        (300_000..=20_000_000).contains(&target),
        "target {target} bit/s: {bwe}"
    );
    assert!(
        (50_000..=10_000_000).contains(&acked),
        "acknowledged {acked} bit/s: {bwe}"
    );
    assert!(
        bwe["padding_packets"].as_u64() > Some(0),
        "probes were sent: {bwe}"
    );
    let rtt = bwe["rtt_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(rtt < 200.0, "loopback round trip {rtt} ms: {bwe}");

    let m = server.metrics().expect("metrics");
    assert!(
        m.sum("ringcast_viewer_bwe_target_bps_count", &[]) >= 1.0,
        "the estimate reaches /metrics"
    );

    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let fps =
        report.assert_viewer_healthy("view-0", MIN_FPS, WINDOW, &["audio", "packetsReceived"]);
    eprintln!(
        "view-0: {fps:.1} fps, lost {:?}, nacks {:?}, plis {:?}",
        report.last("view-0", &["video", "packetsLost"]),
        report.last("view-0", &["video", "nackCount"]),
        report.last("view-0", &["video", "pliCount"]),
    );
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success());
}
