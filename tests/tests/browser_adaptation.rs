//! Quality adaptation with real Chromium on both ends. A Chromium publisher sends three simulcast
//! encodings (1280x720 fake camera, rids q/h/f at 320/640/1280 wide, 20 fps).
//!
//! - A Chromium viewer inside a network namespace of the test's own, whose downlink (what the
//!   host sends into the namespace) is limited to 600 kbit/s with tbf: the server's estimate
//!   stays near the limit, its allocator keeps the viewer on a lower encoding (320 or 640
//!   wide: the fake camera's 640-wide encoding at 20 fps takes about 400 kbit/s and fits; the
//!   1280-wide one does not) and the viewer keeps decoding without freezing; once the limit is
//!   removed the top encoding's width arrives within 10 s.
//! - Dynacast: the only viewer is capped to the low layer (`?quality=low`), so no viewer needs
//!   the top encoding; the server says so on the WHIP layers resource, the publisher (which
//!   follows it) turns the encoding off, and turns it back on when the viewer's cap is lifted.

mod adaptation_support;

use std::time::{Duration, Instant};

use adaptation_support::*;
use ringcast_tests::{Io, NetNs, Server, ServerOptions, deps, media_lock, netns};

const DOWNLINK_KBIT: u32 = 600;
/// From the join: time for the estimator to find the limited link (reported, not judged).
const STARTUP: Duration = Duration::from_secs(10);
/// Then: how long the viewer must stay below the top without freezing.
const STEADY: Duration = Duration::from_secs(20);

#[test]
fn viewer_behind_a_600_kbit_downlink_gets_the_low_layer_without_freezing_then_the_top_layer() {
    deps::require_browser();
    netns::require_netns();
    let _media = media_lock();
    // The namespace first: the server announces the veth's address as a host candidate.
    let ns = NetNs::create().expect("network namespace");
    let mut server =
        Server::start(ServerOptions::new(1, Io::Mmsg).bind(ANY)).expect("server starts");
    let stream = "adapt";
    let run = Duration::from_secs(110);
    let publisher = publisher(&server, stream, run);
    // Every encoding is flowing before the viewer comes (Chromium ramps its encoders up).
    std::thread::sleep(Duration::from_secs(4));

    ns.limit_downlink(DOWNLINK_KBIT)
        .expect("tbf on the downlink");
    let joined = Instant::now();
    let mut viewer = viewer(&server, Some(&ns), stream, run, &[]);
    let first_frame = joined.elapsed();
    let stats_path = format!("{}/stats", resource_path(&mut viewer, "view-0"));

    // A lower encoding first; the estimator then has until 10 s after the join to find the
    // link (start-up, reported), and must hold the viewer below the top for the next 20 s
    // without a freeze or a stall.
    let lower = |w: f64| w < TOP_WIDTH - 1.0;
    let reached = viewer.wait_until(Duration::from_secs(30), |ev| {
        viewer_width(ev).is_some_and(lower)
    });
    assert!(
        reached,
        "the viewer behind {DOWNLINK_KBIT} kbit/s never decoded a lower encoding; server: {}\n{}",
        server
            .get(&stats_path)
            .map(|r| r.describe())
            .unwrap_or_default(),
        viewer.snapshot().describe()
    );
    let to_low = joined.elapsed();
    let settled = joined + STARTUP;
    std::thread::sleep(settled.saturating_duration_since(Instant::now()));
    // The server's view, once a second: estimate, allocation, forwarded layer.
    let mut timeline = Vec::new();
    while settled.elapsed() < STEADY {
        std::thread::sleep(Duration::from_secs(1));
        let a: serde_json::Value = server
            .get(&stats_path)
            .ok()
            .and_then(|r| r.json().ok())
            .unwrap_or_default();
        timeline.push(format!(
            "{:.0}s est {} alloc {} layer {} paused {}",
            joined.elapsed().as_secs_f64(),
            a["estimate_bps"],
            a["allocated_bps"],
            a["tracks"]["1"]["layer"]["spatial"],
            a["tracks"]["1"]["paused"]
        ));
    }
    let events = viewer.events();
    let limited_end = Instant::now();
    let widths: Vec<f64> = viewer_series(&events, "frameWidth")
        .into_iter()
        .filter(|(t, _)| *t >= settled)
        .map(|s| s.1)
        .collect();
    let stall_start = longest_stall(&events, joined);
    let stall = longest_stall(&events, settled);
    let freezes_start = freezes_at(&events, settled);
    let freezes_steady = freezes_at(&events, limited_end) - freezes_start;
    let allocation: serde_json::Value = server
        .get(&stats_path)
        .expect("stats")
        .json()
        .expect("stats JSON");
    let mut seen = widths.clone();
    seen.dedup();
    // When each width began (seconds since the join), and what the publisher turned on and off
    // (it follows the WHIP layers resource): a top-width frame while limited is told apart from
    // an encoder that changed an encoding's resolution.
    let mut width_changes: Vec<(String, f64)> = Vec::new();
    for (t, w) in viewer_series(&events, "frameWidth") {
        if width_changes.last().is_none_or(|l| l.1 != w) {
            width_changes.push((format!("{:.1}s", (t - joined).as_secs_f64()), w));
        }
    }
    let publisher_layers: Vec<String> = publisher
        .events()
        .iter()
        .filter(|e| e.value["type"] == "layers")
        .map(|e| {
            format!(
                "{:.1}s {}",
                e.at.saturating_duration_since(joined).as_secs_f64(),
                e.value["layers"]
            )
        })
        .collect();
    eprintln!(
        "behind {DOWNLINK_KBIT} kbit/s: first frame after {first_frame:?}, lower layer after {to_low:?}; \
         start-up ({STARTUP:?}): {freezes_start} freezes, longest stall {stall_start:?}; \
         steady ({STEADY:?}): widths {seen:?}, {freezes_steady} freezes, longest stall {stall:?}\n\
         server, once a second: {timeline:#?}\n{}",
        ns.qdisc_stats()
    );
    assert!(
        widths.iter().all(|w| lower(*w)),
        "the viewer got the top encoding while limited: {seen:?}\nwidths from: {width_changes:?}\n\
         publisher's encodings: {publisher_layers:#?}\n{timeline:#?}"
    );
    assert!(
        stall < Duration::from_secs(2),
        "decoding stalled for {stall:?} behind the limit\n{timeline:#?}\n{}",
        viewer.snapshot().describe()
    );
    assert_eq!(
        freezes_steady, 0.0,
        "Chromium counted freezes while limited\n{timeline:#?}"
    );
    let est = allocation["estimate_bps"].as_u64().unwrap_or(u64::MAX);
    assert!(
        est < 1_000_000,
        "the server's estimate {est} bit/s is not near the {DOWNLINK_KBIT} kbit/s limit: {allocation}"
    );

    // Lifted: the top encoding within 10 s.
    ns.clear_limit().expect("limit removed");
    let lifted = Instant::now();
    let at_top = wait_width(&mut viewer, TOP_WIDTH, Duration::from_secs(10));
    let allocation = server
        .get(&stats_path)
        .ok()
        .and_then(|r| r.json().ok())
        .unwrap_or_default();
    let Some(at_top) = at_top else {
        panic!(
            "no {TOP_WIDTH}-wide frames within 10 s of lifting the limit; server: {allocation}\n{}",
            viewer.snapshot().describe()
        );
    };
    let to_top = at_top - lifted;
    std::thread::sleep(Duration::from_secs(3));
    let events = viewer.events();
    let freezes_total = freezes_at(&events, Instant::now());
    eprintln!(
        "limit lifted: top layer after {to_top:?}; freezes over the whole run {freezes_total}; server: {allocation}"
    );
    assert!(
        longest_stall(&events, lifted) < Duration::from_secs(2),
        "decoding stalled on the way up\n{}",
        viewer.snapshot().describe()
    );
    let m = server.metrics().expect("metrics");
    assert!(
        m.sum("ringcast_viewer_layer", &[("layer", "2")]) >= 1.0,
        "/metrics counts the viewer on the top layer"
    );
    drop(viewer);
    drop(publisher);
    server.assert_alive();
}

#[test]
fn the_publisher_stops_the_encoding_no_viewer_needs_and_resumes_it() {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, Io::Mmsg)).expect("server starts");
    let stream = "dynacast";
    let run = Duration::from_secs(80);
    let mut publisher = publisher(&server, stream, run);
    let whip = resource_path(&mut publisher, "publish-0");
    let link = publisher
        .snapshot()
        .peer_info("publish-0")
        .and_then(|i| i["link"].as_str().map(str::to_owned))
        .unwrap_or_default();
    assert!(
        link.contains(&format!(
            "<{whip}/layers>; rel=\"urn:ringcast:whip:layers\""
        )),
        "WHIP Link: {link}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    assert!(
        bytes_since(&publisher.events(), "f", started - Duration::from_secs(2)) > 0.0
            || encoding(&publisher.events(), "f").is_some(),
        "the top encoding is sent before any viewer caps it"
    );

    // The only viewer wants the low preset: 200 kbit/s, 180 rows.
    let joined = Instant::now();
    let mut viewer = viewer(&server, None, stream, run, &["--quality", "low"]);
    let layer_path = format!("{}/layer", resource_path(&mut viewer, "view-0"));
    let off = publisher.wait_until(Duration::from_secs(20), |ev| {
        last_layers(ev).is_some_and(|l| l["applied"]["1"]["f"] == false)
            && encoding(ev, "f").is_some_and(|e| e["active"] == false)
    });
    let layers_now = server
        .get(&format!("{whip}/layers"))
        .ok()
        .and_then(|r| r.json().ok())
        .unwrap_or_default();
    assert!(
        off,
        "the top encoding stayed on while the only viewer is capped low; layers resource {layers_now}\n{}",
        publisher.snapshot().describe()
    );
    let to_off = joined.elapsed();
    assert_eq!(
        layers_now["1"]["inactive"]
            .as_array()
            .map(|a| a.iter().any(|r| r == "f")),
        Some(true),
        "{layers_now}"
    );
    // Off means off: f sends (next to) nothing over 3 s, while the viewer keeps decoding q.
    let quiet_from = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let f_quiet = bytes_since(&publisher.events(), "f", quiet_from);
    let q_busy = bytes_since(&publisher.events(), "q", quiet_from);
    eprintln!(
        "dynacast: f off {to_off:?} after the capped viewer joined; over 3 s f sent {f_quiet} B, q {q_busy} B; viewer width {:?}",
        viewer_width(&viewer.events())
    );
    assert!(f_quiet < 2_000.0, "f still sends {f_quiet} B in 3 s");
    assert!(q_busy > 10_000.0, "q sends {q_busy} B in 3 s");
    assert_eq!(viewer_width(&viewer.events()), Some(LOW_WIDTH));

    // The cap lifted: f comes back and the viewer gets it.
    let r = server
        .post(&layer_path, "application/json", br#"{"quality":null}"#)
        .expect("layer request");
    assert_eq!(r.status, 204, "{}", r.describe());
    let lifted = Instant::now();
    let on = publisher.wait_until(Duration::from_secs(15), |ev| {
        last_layers(ev).is_some_and(|l| l["applied"]["1"]["f"] == true)
            && bytes_since(ev, "f", lifted) > 20_000.0
    });
    assert!(
        on,
        "the top encoding did not come back\n{}",
        publisher.snapshot().describe()
    );
    let to_on = lifted.elapsed();
    let at_top = wait_width(&mut viewer, TOP_WIDTH, Duration::from_secs(15));
    eprintln!(
        "dynacast: f back {to_on:?} after the cap was lifted; viewer at {TOP_WIDTH} after {:?}",
        at_top.map(|t| t - lifted)
    );
    assert!(
        at_top.is_some(),
        "the viewer never got the top encoding back\n{}",
        viewer.snapshot().describe()
    );
    drop(viewer);
    drop(publisher);
    server.assert_alive();
}
