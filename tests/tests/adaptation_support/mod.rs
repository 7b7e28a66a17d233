//! Shared by the adaptation tests: a Chromium simulcast publisher on the host (1280x720 fake
//! camera, rids q/h/f scaled down by 4/2/1, following the WHIP layers resource), Chromium viewers
//! on the host or inside a network namespace, and readers of their reports.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ringcast_tests::{NetNs, PeerEvent, PeerProcess, PeerSpec, Server, Stack};
use serde_json::Value;

/// The publisher's top encoding is 1280 wide; `h` 640, `q` 320.
pub const TOP_WIDTH: f64 = 1280.0;
pub const LOW_WIDTH: f64 = 320.0;

/// Starts the simulcast publisher of `stream` for `run`.
pub fn publisher(server: &Server, stream: &str, run: Duration) -> PeerProcess {
    let mut p = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &[PeerSpec::publish(stream)],
        run,
        &[
            "--simulcast",
            "--width",
            "1280",
            "--height",
            "720",
            "--fps",
            "20",
            "--interval",
            "250",
        ],
    )
    .expect("Chromium publisher starts");
    p.wait_connected("publish-0", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    p
}

/// Starts one viewer of `stream` (`extra`: more peer.mjs options), inside `ns` when given
/// (reaching the server at the namespace's host side), else on the host.
pub fn viewer(
    server: &Server,
    ns: Option<&NetNs>,
    stream: &str,
    run: Duration,
    extra: &[&str],
) -> PeerProcess {
    let mut args = vec!["--interval", "250"];
    args.extend_from_slice(extra);
    let peers = [PeerSpec::view(stream)];
    let mut v = match ns {
        Some(ns) => PeerProcess::spawn_wrapped(
            &ns.exec_prefix(),
            Stack::Chromium,
            &server.base_url_at(ns.host_ip()),
            &peers,
            run,
            &args,
        ),
        None => PeerProcess::spawn(Stack::Chromium, &server.base_url(), &peers, run, &args),
    }
    .expect("Chromium viewer starts");
    v.wait_decoding("view-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
    v
}

/// The server's path of a peer's resource (`/whep/...` or `/whip/...`).
pub fn resource_path(p: &mut PeerProcess, peer: &str) -> String {
    let location = p
        .snapshot()
        .peer_info(peer)
        .and_then(|i| i["location"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{peer} has a Location"));
    let i = location
        .find("/whep/")
        .or_else(|| location.find("/whip/"))
        .expect("a WHIP/WHEP location");
    location[i..].to_string()
}

/// `video.<field>` of every stats sample of `view-0`, with when it arrived.
pub fn viewer_series(events: &[PeerEvent], field: &str) -> Vec<(Instant, f64)> {
    events
        .iter()
        .filter(|e| e.value["type"] == "stats" && e.value["peer"] == "view-0")
        .filter_map(|e| Some((e.at, e.value["video"][field].as_f64()?)))
        .collect()
}

/// The viewer's latest decoded width.
pub fn viewer_width(events: &[PeerEvent]) -> Option<f64> {
    viewer_series(events, "frameWidth").last().map(|s| s.1)
}

/// Waits until the viewer decodes `width`-wide frames; returns when, or `None` after `timeout`.
pub fn wait_width(v: &mut PeerProcess, width: f64, timeout: Duration) -> Option<Instant> {
    v.wait_until(timeout, |ev| {
        viewer_width(ev).is_some_and(|w| (w - width).abs() < 1.0)
    })
    .then(Instant::now)
}

/// Longest stretch (from `from` on) in which the viewer's `framesDecoded` did not grow.
pub fn longest_stall(events: &[PeerEvent], from: Instant) -> Duration {
    let s: Vec<(Instant, f64)> = viewer_series(events, "framesDecoded")
        .into_iter()
        .filter(|(t, _)| *t >= from)
        .collect();
    let mut longest = Duration::ZERO;
    let mut since = s.first().map(|x| x.0);
    for w in s.windows(2) {
        if w[1].1 > w[0].1 {
            since = Some(w[1].0);
        } else if let Some(t) = since {
            longest = longest.max(w[1].0 - t);
        }
    }
    longest
}

/// `video.freezeCount` of the viewer's last sample at or before `at` (0 before any).
pub fn freezes_at(events: &[PeerEvent], at: Instant) -> f64 {
    viewer_series(events, "freezeCount")
        .into_iter()
        .take_while(|(t, _)| *t <= at)
        .last()
        .map_or(0.0, |s| s.1)
}

/// The publisher's outbound stats of encoding `rid` in its last sample.
pub fn encoding(events: &[PeerEvent], rid: &str) -> Option<Value> {
    events.iter().rev().find_map(|e| {
        (e.value["type"] == "stats" && e.value["peer"] == "publish-0")
            .then(|| e.value["encodings"][rid].clone())
            .filter(|v| !v.is_null())
    })
}

/// Bytes encoding `rid` sent between the samples nearest `from` and the latest one.
pub fn bytes_since(events: &[PeerEvent], rid: &str, from: Instant) -> f64 {
    let s: Vec<(Instant, f64)> = events
        .iter()
        .filter(|e| e.value["type"] == "stats" && e.value["peer"] == "publish-0")
        .filter_map(|e| Some((e.at, e.value["encodings"][rid]["bytesSent"].as_f64()?)))
        .collect();
    let start = s.iter().find(|(t, _)| *t >= from).map(|x| x.1);
    match (start, s.last()) {
        (Some(a), Some(&(_, b))) => b - a,
        _ => 0.0,
    }
}

/// The publisher's last `layers` event (the object it applied), if any.
pub fn last_layers(events: &[PeerEvent]) -> Option<Value> {
    events
        .iter()
        .rev()
        .find(|e| e.value["type"] == "layers")
        .map(|e| e.value.clone())
}

/// `0.0.0.0`: the server listens on loopback and on the namespace's veth.
pub const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
