//! Chromium publishes three simulcast encodings over WHIP (a 1280x720 fake camera, rids q/h/f
//! scaled down by 4/2/1); a Chromium viewer watches over WHEP. The viewer first receives the
//! highest encoding, is moved to the lowest and back up through the WHEP layer extension, then to
//! the base temporal layer and back, and keeps decoding throughout (the decoded frame width proves
//! which encoding it gets, the decoded frame rate which temporal layers). Once on one shard, once
//! with the viewer on another shard than the publisher.

use std::time::{Duration, Instant};

use ringcast_tests::{
    Io, PeerEvent, PeerProcess, PeerSpec, Server, ServerOptions, Stack, deps, media_lock,
};
use serde_json::Value;

const WIDTH: f64 = 1280.0;
const RUN: Duration = Duration::from_secs(75);

/// The viewer's last decoded width and frame count.
fn viewer_video(events: &[PeerEvent]) -> Option<(f64, f64)> {
    events.iter().rev().find_map(|e| {
        (e.value["type"] == "stats" && e.value["peer"] == "view-0").then_some(())?;
        let v = &e.value["video"];
        Some((v["frameWidth"].as_f64()?, v["framesDecoded"].as_f64()?))
    })
}

/// Waits until the viewer decodes frames `width` wide; returns when.
fn wait_width(run: &mut PeerProcess, width: f64, timeout: Duration, what: &str) -> Instant {
    let ok = run.wait_until(timeout, |ev| {
        viewer_video(ev).is_some_and(|(w, _)| (w - width).abs() < 1.0)
    });
    assert!(
        ok,
        "{what}: the viewer never decoded {width}-wide frames within {timeout:?}\n{}",
        run.snapshot().describe()
    );
    Instant::now()
}

fn post_layer(server: &Server, layer_path: &str, body: &str) {
    let r = server
        .post(layer_path, "application/json", body.as_bytes())
        .expect("layer request");
    assert_eq!(r.status, 204, "POST {layer_path} {body}: {}", r.describe());
}

/// The viewer's decoded frames per second over the last `window` of samples.
fn viewer_fps(run: &mut PeerProcess, window: Duration) -> f64 {
    run.snapshot()
        .video_fps_last("view-0", window)
        .unwrap_or(0.0)
}

#[test]
fn viewer_switches_simulcast_encodings_through_the_whep_layer_api() {
    switch_encodings(ServerOptions::new(1, Io::Mmsg), false);
}

/// The viewer on the second shard (`--placement spread`): the encodings cross as mirror tracks.
#[test]
fn viewer_on_another_shard_switches_simulcast_encodings() {
    switch_encodings(
        ServerOptions::new(2, Io::Mmsg).args(["--placement", "spread"]),
        true,
    );
}

fn switch_encodings(opts: ServerOptions, cross_shard: bool) {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(opts).expect("server starts");
    let stream = "simulcast";
    let peers = [PeerSpec::publish(stream), PeerSpec::view(stream)];
    let mut run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &peers,
        RUN,
        &[
            "--simulcast",
            "--width",
            "1280",
            "--height",
            "720",
            "--fps",
            "20",
            "--stagger",
            "500",
            "--interval",
            "250",
        ],
    )
    .expect("Chromium starts");
    run.wait_decoding("view-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));

    // The WHEP answer advertises the layer extension.
    let info = run
        .snapshot()
        .peer_info("view-0")
        .cloned()
        .expect("viewer info");
    let link = info["link"].as_str().unwrap_or("");
    assert!(
        link.contains("rel=\"urn:ietf:params:whep:ext:core:layer\""),
        "Link: {link}"
    );
    let location = info["location"].as_str().expect("viewer Location");
    let path = location
        .find("/whep/")
        .map(|i| &location[i..])
        .expect("a WHEP location");
    let layer_path = format!("{path}/layer");

    // The layer list names the publisher's encodings, lowest first.
    let listed = server.get(&layer_path).expect("GET layer");
    assert_eq!(listed.status, 200, "{}", listed.describe());
    let json: Value = listed.json().expect("JSON");
    let section = json.as_object().and_then(|o| o.values().next()).cloned();
    let encodings: Vec<String> = section
        .as_ref()
        .and_then(|s| s["encodings"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["encodingId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(encodings, vec!["q", "h", "f"], "{json}");

    // By default: the highest encoding (once the publisher's estimate allows it to be sent).
    let t_top = wait_width(&mut run, WIDTH, Duration::from_secs(40), "default");
    eprintln!("top encoding decoded after {:?}", t_top.elapsed());

    // Down to the lowest.
    post_layer(&server, &layer_path, r#"{"encodingId":"q"}"#);
    let asked = Instant::now();
    wait_width(
        &mut run,
        WIDTH / 4.0,
        Duration::from_secs(15),
        "switch down",
    );
    eprintln!("switched down in {:?}", asked.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    let (w, _) = viewer_video(&run.events()).expect("viewer stats");
    assert!((w - WIDTH / 4.0).abs() < 1.0, "stays on q, got width {w}");

    // Back up (spatialLayerId null: the highest there is).
    post_layer(&server, &layer_path, r#"{"spatialLayerId":null}"#);
    let asked = Instant::now();
    wait_width(&mut run, WIDTH, Duration::from_secs(15), "switch up");
    eprintln!("switched up in {:?}", asked.elapsed());
    std::thread::sleep(Duration::from_secs(3));

    // Only the base temporal layer: the frame rate drops (Chromium's VP8 simulcast encodings
    // have three temporal layers), and comes back with every layer.
    let full = viewer_fps(&mut run, Duration::from_secs(2));
    post_layer(&server, &layer_path, r#"{"temporalLayerId":0}"#);
    std::thread::sleep(Duration::from_secs(3));
    let base = viewer_fps(&mut run, Duration::from_secs(2));
    post_layer(&server, &layer_path, r#"{"temporalLayerId":null}"#);
    std::thread::sleep(Duration::from_secs(3));
    let back = viewer_fps(&mut run, Duration::from_secs(2));
    eprintln!(
        "decoded fps: all temporal layers {full:.1}, base layer {base:.1}, all again {back:.1}"
    );
    assert!(
        base > 1.0 && base < full * 0.6,
        "base temporal layer: {base:.1} fps against {full:.1}"
    );
    assert!(
        back > full * 0.7,
        "all layers again: {back:.1} fps against {full:.1}"
    );

    // Bad requests are problems, not crashes.
    let bad = server
        .post(&layer_path, "application/json", br#"{"encodingId":"zz"}"#)
        .expect("layer request");
    assert_eq!(bad.status, 422, "{}", bad.describe());
    assert_eq!(
        bad.content_type().as_deref(),
        Some("application/problem+json")
    );

    // No freeze: from the first decoded frame on, every two seconds of samples decoded frames.
    let snapshot = run.snapshot();
    let samples: Vec<(Instant, f64)> = snapshot
        .stats("view-0")
        .iter()
        .filter_map(|e| Some((e.at, e.value["video"]["framesDecoded"].as_f64()?)))
        .filter(|(_, f)| *f > 0.0)
        .collect();
    assert!(samples.len() >= 20, "{}", snapshot.describe());
    for (i, &(at, frames)) in samples.iter().enumerate() {
        if let Some(&(_, later)) = samples[i..]
            .iter()
            .find(|(t, _)| t.duration_since(at) >= Duration::from_secs(2))
        {
            assert!(
                later > frames,
                "the viewer decoded nothing for 2 s after {frames} frames\n{}",
                snapshot.describe()
            );
        }
    }
    let freezes = snapshot.last("view-0", &["video", "freezeCount"]);
    let switches = server
        .metrics()
        .map(|m| m.sum("ringcast_layer_switches_total", &[]))
        .unwrap_or(0.0);
    eprintln!(
        "viewer: {} frames decoded, freezeCount {freezes:?}, keyframes {:?}, layer switches {switches}",
        samples.last().map_or(0.0, |s| s.1),
        snapshot.last("view-0", &["video", "keyFramesDecoded"]),
    );
    assert!(switches >= 3.0, "ringcast_layer_switches_total {switches}");
    if cross_shard {
        let crossed = server
            .metrics()
            .map(|m| m.sum("ringcast_cross_shard_out_total", &[]))
            .unwrap_or(0.0);
        assert!(crossed > 100.0, "ringcast_cross_shard_out_total {crossed}");
    }
    drop(run);
    server.assert_alive();
}

/// Chromium publishes one VP9 encoding with three spatial and three temporal layers
/// (`L3T3_KEY`); the viewer gets the top spatial layer by default, the lowest after
/// `{"spatialLayerId":0}` (the SFU cuts the upper layers and marks the end of each picture), and
/// the top again after `{"spatialLayerId":null}` (from the next keyframe, which it requests).
#[test]
fn viewer_selects_vp9_svc_spatial_layers_through_the_whep_layer_api() {
    svc_layers("vp9");
}

/// The same with AV1 (`L3T3_KEY`), whose layers the SFU reads from the dependency descriptor.
#[test]
fn viewer_selects_av1_svc_layers_through_the_whep_layer_api() {
    svc_layers("av1");
}

fn svc_layers(codec: &str) {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, Io::Mmsg)).expect("server starts");
    let stream = format!("svc-{codec}");
    let stream = stream.as_str();
    let peers = [PeerSpec::publish(stream), PeerSpec::view(stream)];
    let mut run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &peers,
        RUN,
        &[
            "--codec",
            codec,
            "--scalability",
            "L3T3_KEY",
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
    .expect("Chromium starts");
    run.wait_decoding("view-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
    let info = run
        .snapshot()
        .peer_info("view-0")
        .cloned()
        .expect("viewer info");
    let location = info["location"].as_str().expect("viewer Location");
    let path = location
        .find("/whep/")
        .map(|i| &location[i..])
        .expect("a WHEP location");
    let layer_path = format!("{path}/layer");

    wait_width(&mut run, WIDTH, Duration::from_secs(40), "default");
    post_layer(&server, &layer_path, r#"{"spatialLayerId":0}"#);
    let asked = Instant::now();
    wait_width(
        &mut run,
        WIDTH / 4.0,
        Duration::from_secs(15),
        "spatial layer 0",
    );
    eprintln!(
        "{codec} SVC: down to spatial layer 0 in {:?}",
        asked.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    let (w, _) = viewer_video(&run.events()).expect("viewer stats");
    assert!(
        (w - WIDTH / 4.0).abs() < 1.0,
        "stays on layer 0, got width {w}"
    );
    post_layer(&server, &layer_path, r#"{"spatialLayerId":null}"#);
    let asked = Instant::now();
    wait_width(
        &mut run,
        WIDTH,
        Duration::from_secs(15),
        "all spatial layers",
    );
    eprintln!("{codec} SVC: back to the top in {:?}", asked.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    // Temporal layers of the SVC stream: down to the base, back up at a switching-up point.
    let full = viewer_fps(&mut run, Duration::from_secs(2));
    post_layer(&server, &layer_path, r#"{"temporalLayerId":0}"#);
    std::thread::sleep(Duration::from_secs(3));
    let base = viewer_fps(&mut run, Duration::from_secs(2));
    post_layer(&server, &layer_path, r#"{"temporalLayerId":null}"#);
    std::thread::sleep(Duration::from_secs(3));
    let back = viewer_fps(&mut run, Duration::from_secs(2));
    eprintln!("{codec} SVC decoded fps: all {full:.1}, base {base:.1}, all again {back:.1}");
    assert!(
        base > 1.0 && base < full * 0.6,
        "base: {base:.1} against {full:.1}"
    );
    assert!(back > full * 0.7, "all again: {back:.1} against {full:.1}");

    let snapshot = run.snapshot();
    let samples: Vec<(Instant, f64)> = snapshot
        .stats("view-0")
        .iter()
        .filter_map(|e| Some((e.at, e.value["video"]["framesDecoded"].as_f64()?)))
        .filter(|(_, f)| *f > 0.0)
        .collect();
    for (i, &(at, frames)) in samples.iter().enumerate() {
        if let Some(&(_, later)) = samples[i..]
            .iter()
            .find(|(t, _)| t.duration_since(at) >= Duration::from_secs(2))
        {
            assert!(
                later > frames,
                "the viewer decoded nothing for 2 s after {frames} frames\n{}",
                snapshot.describe()
            );
        }
    }
    eprintln!(
        "{codec} SVC viewer: {} frames, freezeCount {:?}, publisher mode {:?}",
        samples.last().map_or(0.0, |s| s.1),
        snapshot.last("view-0", &["video", "freezeCount"]),
        snapshot.last_str("publish-0", &["video", "scalabilityMode"]),
    );
    drop(run);
    server.assert_alive();
}

/// An independent stack behind the layer selection: Chromium publishes three simulcast
/// encodings (1280x720 camera: 320, 640 and 1280 wide), an aiortc viewer (libvpx through PyAV)
/// is moved to the middle one, the lowest, and the middle again, and decodes each — through the
/// rewritten sequence numbers, timestamps and VP8 picture ids. (The middle one, because on a busy
/// machine Chromium's CPU adaptation may stop sending the top one, and then the SFU rightly
/// forwards the highest that is sent.)
#[test]
fn aiortc_viewer_follows_simulcast_switches() {
    deps::require_browser();
    deps::require_aiortc();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, Io::Mmsg)).expect("server starts");
    let stream = "simulcast-aiortc";
    let mut publisher = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &[PeerSpec::publish(stream)],
        Duration::from_secs(60),
        &[
            "--simulcast",
            "--width",
            "1280",
            "--height",
            "720",
            "--fps",
            "20",
        ],
    )
    .expect("Chromium starts");
    assert!(
        publisher.wait_until(Duration::from_secs(40), |ev| ev
            .iter()
            .any(|e| e.value["type"] == "state" && e.value["pc"] == "connected")),
        "publisher never connected"
    );
    let mut viewer = PeerProcess::spawn(
        Stack::Aiortc,
        &server.base_url(),
        &[PeerSpec::view(stream)],
        Duration::from_secs(40),
        &["--interval", "0.25"],
    )
    .expect("aiortc starts");
    let width_is = |w: f64| {
        move |ev: &[PeerEvent]| {
            ev.iter().rev().find_map(|e| {
                (e.value["type"] == "stats" && e.value["peer"] == "view-0")
                    .then(|| e.value["video"]["frameWidth"].as_f64())
                    .flatten()
            }) == Some(w)
        }
    };
    assert!(
        viewer.wait_until(Duration::from_secs(30), |ev| ev
            .iter()
            .any(|e| e.value["type"] == "peer" && e.value["location"].is_string())),
        "aiortc got no session\n{}",
        viewer.snapshot().describe()
    );
    let info = viewer
        .snapshot()
        .peer_info("view-0")
        .cloned()
        .expect("viewer info");
    let location = info["location"].as_str().expect("viewer Location");
    let layer_path = format!(
        "{}/layer",
        &location[location.find("/whep/").expect("WHEP")..]
    );
    for (rid, width) in [("h", 640.0), ("q", 320.0), ("h", 640.0)] {
        post_layer(
            &server,
            &layer_path,
            &format!(r#"{{"encodingId":"{rid}"}}"#),
        );
        assert!(
            viewer.wait_until(Duration::from_secs(20), width_is(width)),
            "aiortc never decoded {rid} ({width} wide)\n{}",
            viewer.snapshot().describe()
        );
    }
    let frames = |r: &ringcast_tests::PeerReport| r.last("view-0", &["video", "framesDecoded"]);
    let before = frames(&viewer.snapshot());
    std::thread::sleep(Duration::from_secs(2));
    let after = frames(&viewer.snapshot());
    assert!(
        after > before,
        "aiortc keeps decoding: {before:?} -> {after:?}"
    );
    eprintln!("aiortc viewer: {after:?} frames decoded through three switches");
    drop(viewer);
    drop(publisher);
    server.assert_alive();
}
