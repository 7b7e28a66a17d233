//! Capacity classes against the real server: viewers of different downlink rates
//! (`--subscriber-classes`), each behind its own rate limit in the load generator, sending
//! transport-cc feedback so that the server's estimator sees their real downlink.

mod common;

use common::{Server, describe, loadgen};

fn f(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut x = v;
    for k in path {
        x = match k.parse::<usize>() {
            Ok(i) if x.is_array() => &x[i],
            _ => &x[*k],
        };
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number in {v:#}", path.join(".")))
}

/// The report's section of class `name`.
fn class<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["classes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["class"] == name))
        .unwrap_or_else(|| panic!("no class {name} in {r:#}"))
}

fn share(c: &serde_json::Value, layer: usize) -> f64 {
    c["layers"]["time_share"][layer].as_f64().unwrap_or(-1.0)
}

/// A 3.2 Mbit/s simulcast publisher (q 200 kbit/s, h 800 kbit/s, f 3.2 Mbit/s) watched by four
/// viewers behind 600 kbit/s and four without a limit. Past the first seconds, the server's
/// per-viewer allocator, fed by each viewer's transport-cc feedback, keeps the 600 kbit/s
/// viewers on q (h does not fit) without a freeze, and the others on f.
#[test]
fn viewers_behind_600k_settle_on_the_lowest_layer_without_freezes_and_unlimited_ones_on_the_top() {
    let server = Server::start();
    let url = server.url();
    let (out, report) = loadgen(&[
        "--target",
        &url,
        "--simulcast",
        "--video-bitrate",
        "3200000",
        "--audio",
        "--publishers",
        "1",
        "--subscriber-classes",
        "600k:4,unlimited:4",
        "--duration",
        "24",
        "--warmup",
        "12",
        "--ramp",
        "20",
        "--quiet",
    ]);
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    let msg = || format!("{}\n{r:#}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(f(&r, &["joins_ok"]), 9.0, "{}", msg());
    assert_eq!(f(&r, &["joins_failed"]), 0.0, "{}", msg());
    assert!(
        f(&r, &["subscribers", "twcc_feedback_sent"]) > 8.0 * 12.0 * 15.0,
        "every viewer sends feedback every 50 ms: {}",
        msg()
    );
    let window = f(&r, &["media_s"]);

    let low = class(&r, "600k");
    assert_eq!(f(low, &["receiving"]), 4.0, "{}", msg());
    assert!(share(low, 0) >= 0.8, "600k mostly on q: {}", msg());
    assert!(
        f(low, &["layers", "at_end", "0"]) >= 3.0,
        "600k ends on q: {}",
        msg()
    );
    assert_eq!(f(low, &["freezes"]), 0.0, "600k freezes: {}", msg());
    assert_eq!(f(low, &["viewers_without_frames"]), 0.0, "{}", msg());
    // q renders at the publisher's 30 fps.
    let low_fps = f(low, &["frames_rendered"]) / 4.0 / window;
    assert!(low_fps >= 25.0, "600k renders {low_fps:.1} fps: {}", msg());
    // What reaches them fits their downlink.
    assert!(f(low, &["bitrate_bps", "max"]) <= 612_000.0, "{}", msg());

    let high = class(&r, "unlimited");
    assert_eq!(f(high, &["receiving"]), 4.0, "{}", msg());
    assert!(share(high, 2) >= 0.8, "unlimited mostly on f: {}", msg());
    assert_eq!(
        f(high, &["layers", "at_end", "2"]),
        4.0,
        "unlimited ends on f: {}",
        msg()
    );
    assert_eq!(f(high, &["freezes"]), 0.0, "unlimited freezes: {}", msg());
    assert!(
        f(high, &["bitrate_bps", "p10"]) > 2_500_000.0,
        "unlimited viewers receive f: {}",
        msg()
    );
}

/// What the classes do whatever the server chooses to send: a class below even the audio's
/// rate (Opus at 32 kbit/s is about 48 kbit/s on the wire) receives at most its rate and loses
/// the rest at its queue, whatever the server does with the video; classes with room receive
/// everything; every class is reported, and the server hears every viewer's feedback.
#[test]
fn a_rate_limited_class_receives_at_most_its_rate_and_reports_its_queue_drops() {
    let server = Server::start();
    let url = server.url();
    // Plain (non-simulcast) 200 kbit/s video: it fits the estimator's 300 kbit/s start.
    let (out, report) = loadgen(&[
        "--target",
        &url,
        "--video-bitrate",
        "200000",
        "--audio",
        "--publishers",
        "1",
        "--subscriber-classes",
        "40k:2,4m:2,unlimited:1",
        "--duration",
        "12",
        "--warmup",
        "4",
        "--ramp",
        "20",
        "--quiet",
    ]);
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    let msg = || format!("{}\n{r:#}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(f(&r, &["joins_ok"]), 6.0, "{}", msg());
    assert_eq!(f(&r, &["subscribers", "requested"]), 5.0, "{}", msg());
    let names: Vec<&str> = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["class"].as_str())
        .collect();
    assert_eq!(names, ["40k", "4m", "unlimited"]);

    let low = class(&r, "40k");
    assert_eq!(f(low, &["viewers"]), 2.0);
    assert_eq!(f(low, &["rate_bps"]), 40_000.0);
    let rate = f(low, &["bitrate_bps", "max"]);
    assert!(rate <= 41_000.0, "40k receives {rate}: {}", msg());
    assert!(
        f(low, &["bitrate_bps", "min"]) >= 30_000.0,
        "the 40k link is busy: {}",
        msg()
    );
    assert!(f(low, &["downlink", "drops"]) > 50.0, "{}", msg());
    // No simulcast: no layer in the tags.
    assert_eq!(f(low, &["layers", "time_share", "2"]), 0.0);

    // The others have room for everything the server sends them (whether its allocator
    // keeps their video on is its business): nothing is lost, and their video plays.
    for name in ["4m", "unlimited"] {
        let c = class(&r, name);
        let mean = f(c, &["bitrate_bps", "mean"]);
        // At most 200 kbit/s of video, 32 kbit/s of audio, headers, RTCP and probes.
        assert!(
            (60_000.0..=1_000_000.0).contains(&mean),
            "{name} receives {mean}: {}",
            msg()
        );
        assert_eq!(f(c, &["video_loss_ratio"]), 0.0, "{name}: {}", msg());
        assert!(f(c, &["frames_rendered"]) > 0.0, "{name}: {}", msg());
    }
    assert!(class(&r, "unlimited")["downlink"].is_null());
    assert_eq!(f(class(&r, "4m"), &["downlink", "drops"]), 0.0, "{}", msg());
    // The server hears from every viewer, and its estimate follows the limit.
    for name in ["40k", "4m", "unlimited"] {
        let fb = f(class(&r, name), &["server_feedback_received"]);
        assert!(fb > 50.0, "{name}: {fb} feedback packets: {}", msg());
    }
    let low_est = f(low, &["server_estimate_bps", "max"]);
    let high_est = f(class(&r, "unlimited"), &["server_estimate_bps", "min"]);
    // (GoogCC keeps a loss-driven estimate of about 100 kbit/s over a busy 40 kbit/s link.)
    assert!(low_est <= 150_000.0, "40k estimate {low_est}: {}", msg());
    assert!(
        high_est >= 250_000.0,
        "unlimited estimate {high_est}: {}",
        msg()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("class 40k"), "{stdout}");
    assert!(stdout.contains("class unlimited"), "{stdout}");
}

#[test]
fn a_class_list_that_does_not_parse_stops_the_run_before_it_starts() {
    let (out, report) = loadgen(&["--subscriber-classes", "600k", "--duration", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(report.is_none());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--subscriber-classes"),
        "{}",
        describe(&out)
    );
    // --subscribers and --subscriber-classes exclude each other.
    let (out, _) = loadgen(&[
        "--subscribers",
        "3",
        "--subscriber-classes",
        "600k:1",
        "--duration",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}
