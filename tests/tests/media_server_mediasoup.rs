//! mediasoup-client (3.x, bundled with esbuild) in Debian's Chromium against the real server's
//! `/sessions` API: one page loads the Device from the server's capabilities, creates a send
//! transport and produces the fake camera and microphone; a second page creates a receive
//! transport and consumes both. The consumer must decode the video (frames, 640-wide pictures)
//! and receive the audio; the server's `GET /sessions/{id}/stats` must count the same media; the
//! audio preset must reach the producer's encoder. Run on one shard, and on two shards with the
//! consumer's transport on the other shard than the producer's.

mod stream_support;

use std::process::Command;
use std::time::Duration;

use ringcast_tests::{Server, ServerOptions, deps, media_lock, paths, script};
use serde_json::Value;
use stream_support::*;

/// Seconds the pages exchange media after the consumer subscribed.
const RUN_S: u64 = 8;

/// Runs `tests/mediasoup/run.mjs` against `server`; its JSON lines.
fn run_pages(server: &Server, audio_quality: &str) -> Vec<Value> {
    deps::require_node_modules(
        "mediasoup",
        &["mediasoup-client", "esbuild", "playwright-core"],
    );
    let channel = uuid();
    let mut cmd = Command::new("node");
    cmd.current_dir(paths::workspace_root())
        .arg("tests/mediasoup/run.mjs")
        .args(["--server", &server.base_url(), "--channel", &channel])
        .args(["--pub-user", "alice", "--pub-token", &token("alice")])
        .args(["--sub-user", "bob", "--sub-token", &token("bob")])
        .args(["--duration", &RUN_S.to_string()])
        .args(["--audio-quality", audio_quality]);
    script::run_json_lines(cmd, Duration::from_secs(RUN_S + 60))
        .unwrap_or_else(|e| panic!("`node` is needed (scripts/install-test-deps.sh): {e}"))
        .into_clean_lines("run.mjs", server)
}

fn line<'a>(lines: &'a [Value], kind: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} line in {lines:#?}"))
}

fn of_kind<'a>(list: &'a Value, kind: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|x| x["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} entry in {list}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The assertions shared by both runs.
fn check(server: &Server, lines: &[Value]) {
    let subscribed = line(lines, "subscribed");
    let codecs = &subscribed["consumers"];
    assert_eq!(of_kind(codecs, "video")["codec"]["mimeType"], "video/VP8");
    let opus = &of_kind(codecs, "audio")["codec"];
    assert_eq!(
        opus["parameters"]["maxaveragebitrate"], 16000,
        "the low audio preset in the consumer's parameters: {opus}"
    );

    let samples: Vec<&Value> = lines.iter().filter(|v| v["type"] == "sample").collect();
    assert!(
        samples.len() >= RUN_S as usize - 1,
        "{} samples",
        samples.len()
    );
    let last = samples[samples.len() - 1];
    let earlier = samples[samples.len() - 5];
    let span = num(&last["t"]) - num(&earlier["t"]);

    // The consumer decodes the camera: frames keep coming, at the camera's size.
    let video = of_kind(&last["subscriber"]["consumers"], "video");
    let frames = num(&video["framesDecoded"]);
    let before = num(&of_kind(&earlier["subscriber"]["consumers"], "video")["framesDecoded"]);
    let fps = (frames - before) / span;
    eprintln!(
        "consumer video: {frames} frames decoded, {fps:.1} fps over the last {span:.1} s, {}x{}",
        video["frameWidth"], video["frameHeight"]
    );
    assert!(frames > 0.0, "no frame decoded: {video}");
    assert!(fps >= 10.0, "decoding stalled: {fps:.1} fps");
    assert_eq!(video["frameWidth"], 640, "{video}");
    assert_eq!(video["frameHeight"], 480, "{video}");
    let audio = of_kind(&last["subscriber"]["consumers"], "audio");
    assert!(num(&audio["packetsReceived"]) > 100.0, "{audio}");
    assert!(num(&audio["totalSamplesReceived"]) > 48_000.0, "{audio}");

    // The producer's encoder follows the preset's codec options (16 kbit/s Opus payload).
    let sent = |s: &Value| num(&of_kind(&s["publisher"]["producers"], "audio")["bytesSent"]);
    let audio_kbps = (sent(last) - sent(earlier)) * 8.0 / span / 1000.0;
    eprintln!("producer audio payload: {audio_kbps:.1} kbit/s");
    assert!(
        audio_kbps > 4.0 && audio_kbps <= 20.0,
        "Opus at the low preset sends about 16 kbit/s, got {audio_kbps:.1}"
    );

    // The server counts the same media.
    let sp = &last["server_publisher"];
    assert_eq!(sp["status"], 200, "{sp}");
    let tracks = &sp["body"]["tracks"];
    let v = of_kind(tracks, "video");
    let a = of_kind(tracks, "audio");
    eprintln!("server, published: video {v}, audio {a}");
    assert_eq!(v["direction"], "publish");
    assert!(num(&v["packets_sent"]) > 100.0, "{v}");
    assert!(num(&v["bitrate"]) > 100_000.0, "{v}");
    assert!(
        num(&a["bitrate"]) > 8_000.0 && num(&a["bitrate"]) < 60_000.0,
        "{a}"
    );
    assert!(num(&v["jitter"]) < 0.1, "{v}");
    let ss = &last["server_subscriber"];
    let sv = of_kind(&ss["body"]["tracks"], "video");
    eprintln!("server, subscribed: video {sv}");
    assert_eq!(sv["direction"], "subscribe");
    assert!(num(&sv["packets_sent"]) > 100.0, "{sv}");
    assert!(num(&sv["bitrate"]) > 100_000.0, "{sv}");
    assert_eq!(
        sv["track_id"],
        line(lines, "published")["video"],
        "the consumer names the track it receives"
    );

    // Both sessions were deleted by the pages; the server holds none.
    let closed = line(lines, "closed");
    assert!(closed["publisher"]["events"].is_array(), "{closed}");
    let alice = token("alice");
    let pid = line(lines, "published")["session_id"].as_str().expect("id");
    assert_problem(&get(server, &format!("/sessions/{pid}"), Some(&alice)), 404);
}

#[test]
fn mediasoup_client_produces_and_consumes_camera_and_microphone() {
    let _lock = media_lock();
    let server =
        Server::start(ServerOptions::new(1, ringcast_tests::Io::Mmsg).env("JWT_SECRET", SECRET))
            .expect("server starts");
    let lines = run_pages(&server, "low");
    check(&server, &lines);
}

#[test]
fn mediasoup_client_consumer_on_another_shard() {
    let _lock = media_lock();
    // Spread placement: the publisher's send transport lands on shard 0 and the consumer's
    // receive transport on shard 1, so every packet crosses between shards.
    let server = Server::start(
        ServerOptions::new(2, ringcast_tests::Io::Mmsg)
            .env("JWT_SECRET", SECRET)
            .env("PLACEMENT", "spread"),
    )
    .expect("server starts");
    let lines = run_pages(&server, "low");
    check(&server, &lines);
    let m = server.metrics().expect("metrics");
    let crossed = m.sum("ringcast_cross_shard_out_total", &[]);
    assert!(crossed > 300.0, "packets crossed between shards: {crossed}");
}
