//! Channel recording on the media server (seed 002 "Recording"), end to end: a real S3 server
//! (s3s-fs, checking signatures) as `RECORDING_STORAGE`, mediasoup-client in Debian's Chromium
//! publishing camera and microphone into the recorded channel, and ffprobe/ffmpeg (Debian)
//! reading and decoding the WebM file the server stored. Also the API's errors: a second start,
//! a bad format, a stop without a recording, and a server with recording off.

mod stream_support;

use std::process::Command;
use std::time::Duration;

use ringcast_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use ringcast_tests::{Server, ServerOptions, deps, media_lock, paths, script};
use serde_json::{Value, json};
use stream_support::*;

/// Seconds the pages exchange media after the consumer subscribed.
const RUN_S: u64 = 8;
const BUCKET: &str = "recordings";

fn recording_server(s3: &S3Server) -> Server {
    Server::start(
        ServerOptions::new(1, ringcast_tests::Io::Mmsg)
            .env("JWT_SECRET", SECRET)
            .env("ENABLE_RECORDING", "true")
            .env("RECORDING_STORAGE", s3.storage_url(BUCKET))
            .env("RECORDING_ACCESS_KEY", ACCESS_KEY)
            .env("RECORDING_SECRET_KEY", SECRET_KEY),
    )
    .expect("server starts")
}

/// Runs `tests/mediasoup/run.mjs` (alice publishes, bob consumes) in `channel`.
fn run_pages(server: &Server, channel: &str) -> Vec<Value> {
    deps::require_node_modules(
        "mediasoup",
        &["mediasoup-client", "esbuild", "playwright-core"],
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(paths::workspace_root())
        .arg("tests/mediasoup/run.mjs")
        .args(["--server", &server.base_url(), "--channel", channel])
        .args(["--pub-user", "alice", "--pub-token", &token("alice")])
        .args(["--sub-user", "bob", "--sub-token", &token("bob")])
        .args(["--duration", &RUN_S.to_string()]);
    script::run_json_lines(cmd, Duration::from_secs(RUN_S + 60))
        .unwrap_or_else(|e| panic!("`node` is needed (scripts/install-test-deps.sh): {e}"))
        .into_clean_lines("run.mjs", server)
}

/// A Debian tool the test needs (`ffprobe`, `ffmpeg`), failing clearly when it is missing.
fn tool(name: &str) -> Command {
    let ok = Command::new(name)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{name} is missing: run scripts/install-test-deps.sh (Debian's ffmpeg package)"
    );
    Command::new(name)
}

/// ffprobe's streams and format of a file.
fn probe(path: &std::path::Path) -> Value {
    let out = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Decodes every frame of a file; (video frames, audio frames, what ffmpeg said about errors).
fn decode(path: &std::path::Path) -> (u64, u64, String) {
    let count = |stream: &str| {
        let out = tool("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", stream])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .expect("ffprobe runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    // Decoded frames keep the file's millisecond times (`-enc_time_base -1`): at the default
    // 1/30 s a browser's frames 20 ms apart would share a time, which the null muxer reports as
    // an error though nothing failed to decode.
    let out = tool("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-enc_time_base:v", "-1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    (
        count("v:0"),
        count("a:0"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn start(server: &Server, channel: &str, body: &Value) -> ringcast_tests::HttpResponse {
    post_json(
        server,
        &format!("/channels/{channel}/recording/start"),
        Some(&token("carol")),
        body,
    )
}

#[test]
fn a_recorded_channel_stores_a_playable_webm_of_its_publisher_in_s3() {
    let _lock = media_lock();
    let s3 = S3Server::start();
    let server = recording_server(&s3);
    let channel = uuid();
    let carol = token("carol");

    let r = start(
        &server,
        &channel,
        &json!({ "format": "webm", "audio_bitrate": 128000, "video_bitrate": 2500000 }),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let rec = r.json().expect("JSON");
    assert_eq!(rec["status"], "recording", "{rec}");
    assert_eq!(rec["channel_id"], channel.as_str());
    assert_eq!(rec["started_by"], "carol");
    let id = rec["recording_id"]
        .as_str()
        .expect("recording id")
        .to_string();

    // One recording per channel at a time.
    let p = assert_problem(&start(&server, &channel, &json!({ "format": "webm" })), 409);
    assert_eq!(p["recording_id"], id.as_str(), "{p}");

    let lines = run_pages(&server, &channel);
    let published = lines
        .iter()
        .find(|v| v["type"] == "published")
        .unwrap_or_else(|| panic!("no published line: {lines:#?}"));
    let alice_session = published["session_id"].as_str().expect("session id");

    let r = post_json(
        &server,
        &format!("/channels/{channel}/recording/stop"),
        Some(&carol),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let rec = r.json().expect("JSON");
    eprintln!("stopped: {rec:#}");
    assert_eq!(rec["status"], "stored", "{rec}");
    assert!(
        rec["duration_ms"].as_u64().unwrap_or(0) >= RUN_S * 1000,
        "{rec}"
    );
    let files = rec["files"].as_array().expect("files");
    // Only alice published (bob consumed): one file, both her tracks.
    assert_eq!(files.len(), 1, "{rec}");
    let f = &files[0];
    assert_eq!(f["session_id"], alice_session, "{f}");
    assert_eq!(f["user_id"], "alice");
    assert_eq!(f["tracks"], json!(["audio", "video"]));
    assert_eq!(f["stored"], true);
    let key = f["key"].as_str().expect("key");
    assert_eq!(key, format!("{channel}/{id}/{alice_session}-1.webm"));
    let duration_ms = f["duration_ms"].as_u64().expect("duration");
    assert!(
        duration_ms >= (RUN_S - 2) * 1000,
        "the part covers the publisher's time in the channel: {duration_ms} ms"
    );

    // The object in the store is the file the API describes, and its URL serves it.
    let stored = s3.object_path(BUCKET, key);
    let bytes = std::fs::read(&stored).expect("the object is in the store");
    assert_eq!(bytes.len() as u64, f["size"].as_u64().expect("size"));
    let url = f["url"].as_str().expect("a download URL");
    let got = call("GET", url, None, None);
    assert_eq!(got.status, 200, "presigned GET: {}", got.describe());
    assert_eq!(got.body, bytes, "the download is the stored object");

    // The file plays: VP8 640 wide and Opus, as long as the API says, every frame decodes.
    let probed = probe(&stored);
    eprintln!("ffprobe: {probed:#}");
    let streams = probed["streams"].as_array().expect("streams");
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("an audio stream");
    assert_eq!(video["codec_name"], "vp8");
    assert_eq!(audio["codec_name"], "opus");
    assert_eq!(audio["sample_rate"], "48000");
    let width = video["width"].as_u64().expect("width");
    assert!((320..=640).contains(&width), "picture width {width}");
    let secs: f64 = probed["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("a duration");
    assert!(
        (secs * 1000.0 - duration_ms as f64).abs() < 500.0,
        "ffprobe's {secs} s against the API's {duration_ms} ms"
    );
    let (vframes, aframes, errors) = decode(&stored);
    eprintln!("decoded {vframes} video and {aframes} audio frames in {secs} s; errors: {errors:?}");
    assert!(errors.trim().is_empty(), "decoding errors: {errors}");
    assert!(
        vframes as f64 >= 15.0 * secs * 0.7,
        "{vframes} video frames in {secs} s"
    );
    assert!(
        aframes as f64 >= 50.0 * secs * 0.9,
        "{aframes} audio frames (20 ms) in {secs} s"
    );

    // The recording stays readable, and a second stop has nothing to stop.
    let r = get(&server, &format!("/recordings/{id}"), Some(&carol));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json().expect("JSON")["status"], "stored");
    let r = get(
        &server,
        &format!("/channels/{channel}/recordings"),
        Some(&carol),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.json().expect("JSON")["recordings"][0]["recording_id"],
        id.as_str()
    );
    let r = post_json(
        &server,
        &format!("/channels/{channel}/recording/stop"),
        Some(&carol),
        &json!({}),
    );
    assert_problem(&r, 404);
}

#[test]
fn recording_requests_get_clear_errors() {
    let s3 = S3Server::start();
    let server = recording_server(&s3);
    let channel = uuid();
    // No token: 401. A format other than webm, bit rates out of range, a bad id: 400.
    let r = post_json(
        &server,
        &format!("/channels/{channel}/recording/start"),
        None,
        &json!({}),
    );
    assert_problem(&r, 401);
    let p = assert_problem(&start(&server, &channel, &json!({ "format": "mp4" })), 400);
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("webm")),
        "{p}"
    );
    assert_problem(
        &start(&server, &channel, &json!({ "video_bitrate": 10 })),
        400,
    );
    assert_problem(&start(&server, "not-a-uuid", &json!({})), 400);
    assert_problem(
        &get(
            &server,
            &format!("/recordings/{}", uuid()),
            Some(&token("carol")),
        ),
        404,
    );

    // A recording of an empty channel stops with no files.
    let r = start(&server, &channel, &json!({}));
    assert_eq!(r.status, 201, "{}", r.describe());
    let r = post_json(
        &server,
        &format!("/channels/{channel}/recording/stop"),
        Some(&token("carol")),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let rec = r.json().expect("JSON");
    assert_eq!(rec["status"], "stored");
    assert_eq!(rec["files"], json!([]));

    // Recording off (the seed's default): 403 naming the variable.
    let off =
        Server::start(ServerOptions::new(1, ringcast_tests::Io::Mmsg).env("JWT_SECRET", SECRET))
            .expect("server starts");
    let p = assert_problem(&start(&off, &channel, &json!({})), 403);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ENABLE_RECORDING")),
        "{p}"
    );
}

#[test]
fn a_storage_url_the_server_cannot_use_stops_it_at_start() {
    let bin = paths::server_binary().expect("server binary");
    let out = Command::new(&bin)
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .env("JWT_SECRET", SECRET)
        .env("ENABLE_RECORDING", "true")
        .env("RECORDING_STORAGE", "ftp://example.com/recordings")
        .env_remove("RECORDING_ACCESS_KEY")
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "an ftp:// storage is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RECORDING_STORAGE"),
        "clear error expected, got: {err}"
    );
}
