//! Two shards: the publisher lands on one, the viewer on the other, and media crosses between
//! them.
//!
//! Placement keeps a stream's viewers on their publisher's shard while it fits, so a single
//! viewer would never leave it. These tests pass `--placement spread`, ASSUMED to place every new
//! session on the least loaded shard regardless of stream. If the server names that option
//! differently, change `PLACEMENT_ARGS` (see `signaling --help`).

use std::time::Duration;

use ringcast_tests::{Io, PeerProcess, PeerSpec, Server, ServerOptions, Stack, deps, media_lock};

/// Assumed option: each new session on the least loaded shard.
const PLACEMENT_ARGS: &[&str] = &["--placement", "spread"];
const MIN_FPS: f64 = 20.0;
const WINDOW: Duration = Duration::from_secs(5);

fn viewer_on_other_shard(io: Io) {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(2, io).args(PLACEMENT_ARGS.iter().copied()))
        .expect("server starts");
    let stream = format!("two-shards-{}", io.as_str());
    let peers = [PeerSpec::publish(&stream), PeerSpec::view(&stream)];
    let mut run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &peers,
        Duration::from_secs(12),
        &["--stagger", "1000"],
    )
    .expect("Chromium starts");
    run.wait_decoding("view-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));

    let m = server
        .wait_for_metrics(Duration::from_secs(5), |m| {
            m.sum("ringcast_publishers", &[]) == 1.0 && m.sum("ringcast_viewers", &[]) == 1.0
        })
        .unwrap_or_else(|m| panic!("want 1 publisher and 1 viewer in /metrics, got {m}"));
    let sessions = m.per_shard("ringcast_sessions");
    assert!(
        sessions.get(&0) >= Some(&1.0) && sessions.get(&1) >= Some(&1.0),
        "both shards must hold a session, got {sessions:?}"
    );
    let publisher_shard = m
        .per_shard("ringcast_publishers")
        .into_iter()
        .find(|(_, v)| *v >= 1.0)
        .map(|(s, _)| s);
    let viewer_shard = m
        .per_shard("ringcast_viewers")
        .into_iter()
        .find(|(_, v)| *v >= 1.0)
        .map(|(s, _)| s);
    assert!(
        publisher_shard.is_some() && viewer_shard.is_some() && publisher_shard != viewer_shard,
        "publisher on shard {publisher_shard:?}, viewer on shard {viewer_shard:?}: want different shards"
    );

    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let fps =
        report.assert_viewer_healthy("view-0", MIN_FPS, WINDOW, &["audio", "packetsReceived"]);
    eprintln!("cross-shard viewer over {}: {fps:.1} fps", io.as_str());

    // Each peer talks to its own shard's port, and both shards carried traffic.
    for (peer, shard) in [("publish-0", publisher_shard), ("view-0", viewer_shard)] {
        let want = shard
            .and_then(|s| u16::try_from(s).ok())
            .map(|s| f64::from(server.rtc_port(s)));
        let port = report.last(peer, &["pair", "remote", "port"]);
        assert_eq!(
            port, want,
            "{peer}'s remote candidate port vs its shard {shard:?}"
        );
    }
    let after = server.metrics().expect("metrics");
    let out = after.per_shard("ringcast_rtp_out_total");
    let viewer_out = viewer_shard
        .and_then(|s| out.get(&s))
        .copied()
        .unwrap_or(0.0);
    assert!(viewer_out > 0.0, "viewer's shard sent no RTP: {out:?}");
    let dgrams = after.per_shard("ringcast_datagrams_in_total");
    assert!(
        dgrams.values().filter(|v| **v > 0.0).count() == 2,
        "datagrams per shard: {dgrams:?}"
    );

    server.assert_alive();
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success(), "server exited with {status}");
}

#[test]
fn viewer_on_another_shard_decodes_publisher_over_uring() {
    viewer_on_other_shard(Io::Uring);
}

#[test]
fn viewer_on_another_shard_decodes_publisher_over_mmsg() {
    viewer_on_other_shard(Io::Mmsg);
}
