//! The demo page at `/`, used the way a person uses it: two pages of it in one Chromium (fake
//! camera and microphone), "Publish camera" on one and "Watch" on the other with the same stream
//! name, both driven only through the page's own inputs and buttons. The watcher's `<video>`
//! element must play the stream; both Stop buttons must end their sessions on the server.

use std::time::Duration;

use ringcast_tests::{Io, PeerEvent, PeerProcess, Server, ServerOptions, Stack, deps, media_lock};
use serde_json::Value;

/// The fake camera runs at 30 fps; the watcher's `<video>` must get at least this many frames
/// per second (`getVideoPlaybackQuality().totalVideoFrames`).
const MIN_FPS: f64 = 20.0;
/// Frames the compositor presents (`requestVideoFrameCallback`) per second, at least. Lower
/// than `MIN_FPS`: a headless page on a busy machine may skip painting some frames.
const MIN_PRESENTED_FPS: f64 = 10.0;
/// Rates are measured over the last this-much of the playing period.
const WINDOW: Duration = Duration::from_secs(4);
/// How long both pages stay started before the Stop buttons are clicked.
const PLAY: Duration = Duration::from_secs(8);
/// How long the browser stays open after both Stop clicks, while /metrics is checked.
const LINGER: Duration = Duration::from_secs(10);
/// Characters the server accepts in a stream name, all of them used.
const STREAM: &str = "Demo_page-1.x";

fn of_type<'a>(events: &'a [PeerEvent], kind: &str) -> impl Iterator<Item = &'a Value> {
    events
        .iter()
        .filter(move |e| e.value["type"] == kind)
        .map(|e| &e.value)
}

/// The HTTP status of the page's `method` request to a URL containing `path`, if it made one.
fn http_status(events: &[PeerEvent], method: &str, path: &str) -> Option<u64> {
    of_type(events, "http")
        .find(|e| e["method"] == method && e["url"].as_str().is_some_and(|u| u.contains(path)))
        .and_then(|e| e["status"].as_u64())
}

#[test]
fn demo_page_publishes_camera_and_plays_it_in_a_second_page() {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, Io::Mmsg)).expect("server starts");

    // The page is served by the server itself.
    let index = server.get("/").expect("GET /");
    assert_eq!(index.status, 200, "GET /: {}", index.describe());
    let html = index.text();
    for id in ["pubStart", "pubStop", "viewStart", "viewStop", "viewVideo"] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "demo page has no #{id}"
        );
    }

    let args = [
        "demo".to_string(),
        "--server".into(),
        server.base_url(),
        "--stream".into(),
        STREAM.into(),
        "--duration".into(),
        PLAY.as_secs().to_string(),
        "--linger".into(),
        LINGER.as_secs().to_string(),
    ];
    let mut run = PeerProcess::spawn_args(Stack::Chromium, &args, Duration::from_secs(90))
        .expect("Chromium starts");

    // Both sessions exist while the watcher plays.
    let playing = |ev: &[PeerEvent]| {
        of_type(ev, "stats").any(|e| {
            e["peer"] == "demo-watch" && e["video"]["totalVideoFrames"].as_f64() > Some(0.0)
        })
    };
    let failed = |ev: &[PeerEvent]| of_type(ev, "error").next().is_some();
    run.wait_until(Duration::from_secs(40), |ev| playing(ev) || failed(ev));
    assert!(
        playing(&run.events()),
        "the watcher's <video> shows no frame\n{}",
        run.snapshot().describe()
    );
    server
        .wait_for_metrics(Duration::from_secs(5), |m| {
            m.sum("ringcast_sessions", &[]) == 2.0
                && m.sum("ringcast_publishers", &[]) == 1.0
                && m.sum("ringcast_viewers", &[]) == 1.0
        })
        .unwrap_or_else(|m| panic!("want 1 publisher and 1 viewer in /metrics, got {m}"));

    // Both Stop buttons clicked: the sessions are gone while the browser is still open.
    let stopped = run.wait_until(PLAY + Duration::from_secs(30), |ev| {
        of_type(ev, "stopped").next().is_some() || failed(ev)
    });
    assert!(
        stopped && of_type(&run.events(), "stopped").next().is_some(),
        "the Stop buttons were not both clicked\n{}",
        run.snapshot().describe()
    );
    server
        .wait_for_metrics(Duration::from_secs(5), |m| {
            m.sum("ringcast_sessions", &[]) == 0.0
        })
        .unwrap_or_else(|m| panic!("sessions remain after both Stop buttons: {m}"));
    assert!(
        run.try_exit().is_none(),
        "the browser exited before the sessions were checked\n{}",
        run.snapshot().describe()
    );

    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let ev = &report.events;

    // The page made its own WHIP and WHEP requests, and its Stop buttons DELETEd both resources.
    for (method, path, want) in [
        ("POST", format!("/whip/{STREAM}"), 201),
        ("POST", format!("/whep/{STREAM}"), 201),
        ("DELETE", format!("/whip/{STREAM}/"), 200),
        ("DELETE", format!("/whep/{STREAM}/"), 200),
    ] {
        let got = http_status(ev, method, &path);
        assert!(
            got == Some(want) || (method == "DELETE" && got == Some(204)),
            "the page's {method} {path}: {got:?}, want {want}\n{}",
            report.describe()
        );
    }

    // The watcher's <video>: playing, with a picture, time and frames advancing.
    let last = report.last_sample("demo-watch").expect("watcher samples");
    let video = &last["video"];
    assert_eq!(video["paused"], false, "watcher <video> paused: {last}");
    assert!(
        video["readyState"].as_u64() >= Some(2),
        "watcher <video> has no current frame: {last}"
    );
    let (w, h) = (
        video["videoWidth"].as_f64().unwrap_or(0.0),
        video["videoHeight"].as_f64().unwrap_or(0.0),
    );
    assert!(w > 0.0 && h > 0.0, "watcher <video> is {w}x{h}: {last}");
    let clock = report
        .rate_last("demo-watch", &["video", "currentTime"], WINDOW)
        .expect("currentTime samples");
    assert!(
        (0.8..1.2).contains(&clock),
        "watcher <video> currentTime advances {clock:.2} s per second\n{}",
        report.describe()
    );
    let fps = report
        .rate_last("demo-watch", &["video", "totalVideoFrames"], WINDOW)
        .expect("totalVideoFrames samples");
    assert!(
        fps >= MIN_FPS,
        "watcher <video> got {fps:.1} frames per second (totalVideoFrames), want >= {MIN_FPS}\n{}",
        report.describe()
    );
    let presented = report
        .rate_last("demo-watch", &["video", "presentedFrames"], WINDOW)
        .expect("requestVideoFrameCallback samples");
    assert!(
        presented >= MIN_PRESENTED_FPS,
        "watcher <video> presented {presented:.1} frames per second, want >= {MIN_PRESENTED_FPS}\n{}",
        report.describe()
    );
    let status = last["status"].as_str().unwrap_or("");
    assert!(
        status.contains("connection: connected") && status.contains("decoded"),
        "watcher status line: {status:?}"
    );
    let publisher = report
        .last_sample("demo-publish")
        .expect("publisher samples");
    let pub_status = publisher["status"].as_str().unwrap_or("");
    assert!(
        pub_status.contains("connection: connected"),
        "publisher status line: {pub_status:?}"
    );
    assert!(
        publisher["video"]["videoWidth"].as_f64() > Some(0.0),
        "the publisher's camera preview shows nothing: {publisher}"
    );

    // After Stop: both pages idle again, the watcher's <video> detached.
    for peer in ["demo-watch", "demo-publish"] {
        let done = of_type(ev, "done")
            .find(|e| e["peer"] == peer)
            .unwrap_or_else(|| panic!("no done event for {peer}\n{}", report.describe()));
        assert_eq!(done["status"], "stopped", "{peer} after Stop: {done}");
        assert_eq!(done["startDisabled"], false, "{peer} after Stop: {done}");
        assert_eq!(done["stopDisabled"], true, "{peer} after Stop: {done}");
        assert_eq!(
            done["video"]["tracks"],
            serde_json::json!([]),
            "{peer} after Stop: {done}"
        );
    }

    eprintln!(
        "demo page: watcher <video> {w}x{h}, {fps:.1} frames/s (totalVideoFrames), {presented:.1} \
         presented/s (requestVideoFrameCallback), currentTime {clock:.2} s/s; status {status:?}"
    );
    server.assert_alive();
    let (exit, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops on SIGTERM");
    assert!(exit.success(), "server exited with {exit}");
}
