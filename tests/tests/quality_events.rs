//! `media.quality.degraded` and `media.quality.restored` over real NATS, from a real viewer whose
//! allocation is low: a Chromium viewer inside a network namespace whose downlink is limited to
//! 400 kbit/s watches a Chromium simulcast publisher (top encoding about 0.8 Mbit/s). An
//! independent NATS subscriber sees the viewer degraded (its WHEP session id and stream, its
//! allocation below what it wants, the estimate), and restored once the limit is removed.

mod adaptation_support;
mod stream_support;

use std::time::{Duration, Instant};

use adaptation_support::*;
use ringcast_tests::{Io, NetNs, Server, ServerOptions, deps, media_lock, netns};
use stream_support::{Backing, Subscriber, is_rfc3339};

const LIMIT_KBIT: u32 = 400;

#[test]
fn a_viewer_short_of_bandwidth_is_announced_degraded_then_restored_on_nats() {
    deps::require_browser();
    netns::require_netns();
    let _media = media_lock();
    let nats = Backing::nats();
    let mut events = Subscriber::connect(&nats.nats_url(), &["media.quality.>"]);
    let ns = NetNs::create().expect("network namespace");
    let mut server = Server::start(
        ServerOptions::new(1, Io::Mmsg)
            .bind(ANY)
            .env("NATS_URL", nats.nats_url()),
    )
    .expect("server starts");
    let stream = "degraded";
    let run = Duration::from_secs(100);
    let publisher = publisher(&server, stream, run);
    std::thread::sleep(Duration::from_secs(4));

    ns.limit_downlink(LIMIT_KBIT).expect("tbf on the downlink");
    let joined = Instant::now();
    let mut viewer = viewer(&server, Some(&ns), stream, run, &[]);
    let path = resource_path(&mut viewer, "view-0");
    let session = path.rsplit('/').next().expect("session id").to_string();

    let degraded = events.wait_for("media.quality.degraded", Duration::from_secs(40), |v| {
        v["session_id"] == session.as_str()
    });
    let to_degraded = joined.elapsed();
    eprintln!("degraded after {to_degraded:?}: {degraded}");
    assert_eq!(degraded["stream"], stream);
    let allocated = degraded["allocated_bps"].as_u64().expect("allocated_bps");
    let wanted = degraded["wanted_bps"].as_u64().expect("wanted_bps");
    assert!(allocated < wanted, "{degraded}");
    // Without a preset it wants the top layers: more than the link carries (Chromium's
    // 1280-wide encoding of the fake camera at 20 fps takes about 0.8 Mbit/s).
    assert!(
        wanted > u64::from(LIMIT_KBIT) * 1000,
        "without a preset the viewer wants the top layers: {degraded}"
    );
    let estimate = degraded["estimate_bps"].as_u64().expect("estimate_bps");
    assert!(
        estimate < 800_000,
        "the estimate follows the 400 kbit/s limit: {degraded}"
    );
    assert!(is_rfc3339(&degraded["timestamp"]), "{degraded}");
    let stats = server
        .get(&format!("{path}/stats"))
        .expect("stats")
        .json()
        .expect("stats JSON");
    assert_eq!(stats["degraded"], true, "{stats}");
    let m = server.metrics().expect("metrics");
    assert_eq!(m.sum("ringcast_viewers_degraded", &[]), 1.0);

    ns.clear_limit().expect("limit removed");
    let lifted = Instant::now();
    events.expect_restored(&session, stream, lifted, Duration::from_secs(40));
    drop(viewer);
    drop(publisher);
    server.assert_alive();
}
