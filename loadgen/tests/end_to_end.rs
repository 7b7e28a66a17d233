//! The load generator against the real server binary on loopback.

mod common;

use common::{Server, describe, loadgen};

fn f(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut x = v;
    for k in path {
        x = &x[*k];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number in {v:#}", path.join(".")))
}

#[test]
fn two_publishers_three_subscribers_in_two_rooms_receive_everything_without_loss() {
    two_by_three("uring", "1");
}

#[test]
fn the_epoll_receive_path_on_two_workers_delivers_the_same() {
    two_by_three("epoll", "2");
}

fn two_by_three(io: &str, threads: &str) {
    let server = Server::start();
    let url = server.url();
    let (out, report) = loadgen(&[
        "--io",
        io,
        "--threads",
        threads,
        "--target",
        &url,
        "--publishers",
        "2",
        "--subscribers",
        "3",
        "--rooms",
        "2",
        "--audio",
        "--duration",
        "6",
        "--ramp",
        "20",
    ]);
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert!(out.status.success(), "{}\n{r:#}", describe(&out));
    let msg = || format!("{r:#}");
    assert_eq!(f(&r, &["joins_ok"]), 8.0, "{}", msg());
    assert_eq!(f(&r, &["joins_failed"]), 0.0, "{}", msg());
    assert_eq!(f(&r, &["subscribers", "joins_ok"]), 6.0);
    assert_eq!(f(&r, &["subscribers", "receiving_at_end"]), 6.0);
    // Every subscriber got both kinds.
    assert_eq!(f(&r, &["subscribers", "without_video"]), 0.0, "{}", msg());
    assert_eq!(f(&r, &["subscribers", "without_audio"]), 0.0, "{}", msg());
    // About 5 s of media for 6 subscribers: audio alone is 50 packets/s each.
    let audio = f(&r, &["subscribers", "audio_packets"]);
    let video = f(&r, &["subscribers", "video_packets"]);
    assert!(audio > 6.0 * 50.0 * 3.5, "audio {audio}");
    assert!(video > 6.0 * 30.0 * 3.5, "video {video}");
    assert_eq!(f(&r, &["packets_received"]), audio + video);
    // Loopback: nothing lost, latency well under a few milliseconds.
    assert_eq!(f(&r, &["loss_ratio"]), 0.0, "{}", msg());
    assert_eq!(f(&r, &["lost"]), 0.0);
    let p50 = f(&r, &["latency_us", "p50"]);
    let p99 = f(&r, &["latency_us", "p99"]);
    let p999 = f(&r, &["latency_us", "p999"]);
    assert!(p50 > 0.0 && p50 < 3000.0, "latency p50 {p50} µs");
    assert!(p99 >= p50 && p999 >= p99, "{}", msg());
    assert!(
        f(&r, &["latency_us", "count"])
            >= f(&r, &["packets_received"]) - f(&r, &["duplicates"]) - 1.0
    );
    let j50 = f(&r, &["join_ms", "p50"]);
    assert!(j50 > 0.0 && j50 < 2000.0, "join p50 {j50} ms");
    assert!(
        f(&r, &["join_ms", "p95"]) >= j50
            && f(&r, &["join_ms", "p99"]) >= f(&r, &["join_ms", "p95"])
    );
    // Publishers sent what subscribers got, thrice over (3 subscribers each).
    let sent = f(&r, &["packets_sent"]);
    assert!(sent > 0.0 && (audio + video) <= 3.0 * sent, "{}", msg());
    assert!(
        f(&r, &["bytes", "sent"]) > 0.0
            && f(&r, &["bytes", "received"]) > f(&r, &["bytes", "sent"])
    );
    assert!(f(&r, &["nacks"]) >= 0.0);
    assert!(f(&r, &["plis"]) >= 0.0);
    assert!(
        f(&r, &["duplicates"]) == 0.0 && f(&r, &["reordered"]) == 0.0,
        "{}",
        msg()
    );
    let cpu = f(&r, &["loadgen_cpu_ratio"]);
    assert!(cpu > 0.0 && cpu < 2.0, "cpu ratio {cpu}");
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(f(&r, &["config", "publishers"]), 2.0);
    assert_eq!(f(&r, &["config", "rooms"]), 2.0);
    assert_eq!(r["config"]["io"], io);
    assert_eq!(
        r["worker_cpu_ratios"].as_array().map(Vec::len),
        threads.parse().ok()
    );
    // The server's own counters agree that it forwarded.
    assert!(
        f(&r, &["server_traffic", "rtp_out_per_s"]) > 0.0,
        "{}",
        msg()
    );
    assert!(f(&r, &["publishers", "keyframes"]) >= 2.0);
    // The summary table went to stdout.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("8 ok, 0 failed"), "{stdout}");
    assert!(stdout.contains("latency"), "{stdout}");
}

#[test]
fn a_closed_port_fails_every_join_and_exits_nonzero() {
    // Bind and drop a listener: the port is closed (nothing listens) for the run.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (out, report) = loadgen(&[
        "--target",
        &url,
        "--publishers",
        "1",
        "--subscribers",
        "2",
        "--duration",
        "1.5",
        "--ramp",
        "0",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert_eq!(f(&r, &["joins_failed"]), 3.0, "{r:#}");
    assert_eq!(f(&r, &["joins_ok"]), 0.0);
    assert_eq!(f(&r, &["packets_received"]), 0.0);
    let errors = r["errors"].as_array().unwrap();
    assert!(
        !errors.is_empty() && errors[0].as_str().unwrap().contains("POST"),
        "{r:#}"
    );
}

#[test]
fn a_wrong_path_on_a_real_server_fails_the_joins() {
    let server = Server::start();
    let url = format!("{}/not-an-api", server.url());
    let (out, report) = loadgen(&[
        "--target",
        &url,
        "--publishers",
        "1",
        "--subscribers",
        "1",
        "--duration",
        "1.5",
        "--ramp",
        "0",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report.unwrap();
    assert_eq!(f(&r, &["joins_failed"]), 2.0, "{r:#}");
    assert!(
        r["errors"][0].as_str().unwrap().contains("HTTP 404"),
        "{r:#}"
    );
}

#[test]
fn help_lists_the_documented_options() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--target",
        "--publishers",
        "--subscribers",
        "--rooms",
        "--video-bitrate",
        "--simulcast",
        "--audio",
        "--duration",
        "--ramp",
        "--json",
        "--stream-prefix",
        "--token",
        "--bind-ip",
        "--seed",
        "--threads",
        "--subscriber-classes",
        "--class-queue",
        "--class-burst",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
}

#[test]
fn the_bearer_token_opens_a_protected_server_and_stays_out_of_the_report() {
    let server = Server::start_with(&["--auth-secret", "s3cret-token"]);
    let url = server.url();
    let run = |token: Option<&str>| {
        let mut args = vec![
            "--target",
            url.as_str(),
            "--subscribers",
            "1",
            "--duration",
            "3",
            "--ramp",
            "0",
            "--quiet",
        ];
        if let Some(t) = token {
            args.extend(["--token", t]);
        }
        loadgen(&args)
    };
    let (out, report) = run(None);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report.unwrap();
    assert_eq!(f(&r, &["joins_failed"]), 2.0, "{r:#}");
    assert!(r["errors"][0].as_str().unwrap().contains("401"), "{r:#}");

    let (out, report) = run(Some("s3cret-token"));
    let r = report.unwrap();
    assert!(out.status.success(), "{}\n{r:#}", describe(&out));
    assert_eq!(f(&r, &["joins_ok"]), 2.0);
    assert!(f(&r, &["packets_received"]) > 0.0);
    assert_eq!(r["config"]["token"], "<redacted>");
    assert!(!r.to_string().contains("s3cret-token"));
}

#[test]
fn simulcast_publishers_reach_subscribers_with_the_highest_encoding_only() {
    let server = Server::start();
    let url = server.url();
    let (out, report) = loadgen(&[
        "--target",
        &url,
        "--simulcast",
        "--publishers",
        "1",
        "--subscribers",
        "2",
        "--video-bitrate",
        "2000000",
        "--duration",
        "16",
        // The server's allocator ramps each subscriber up one encoding at a time as its
        // estimate is confirmed (q, h, then f: a few seconds on loopback); measure after it.
        "--warmup",
        "10",
    ]);
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert!(out.status.success(), "{}\n{r:#}", describe(&out));
    let msg = || format!("{r:#}");
    assert_eq!(f(&r, &["joins_ok"]), 3.0, "{}", msg());
    assert_eq!(
        f(&r, &["subscribers", "receiving_at_end"]),
        2.0,
        "{}",
        msg()
    );
    assert_eq!(f(&r, &["subscribers", "without_video"]), 0.0, "{}", msg());
    assert_eq!(f(&r, &["loss_ratio"]), 0.0, "{}", msg());
    // The server takes three encodings in and sends each subscriber one: the highest, which
    // is about two thirds of the packets (q 1/16, h 1/4, f all of the bit rate).
    let rtp_in = f(&r, &["server_traffic", "rtp_in_per_s"]);
    let rtp_out = f(&r, &["server_traffic", "rtp_out_per_s"]);
    let share = rtp_out / (2.0 * rtp_in);
    eprintln!("rtp in {rtp_in:.0}/s, out {rtp_out:.0}/s, share per subscriber {share:.2}");
    assert!(share > 0.5 && share < 0.85, "share {share:.2}\n{}", msg());
    let drops = &r["server_traffic"]["drops"];
    assert!(
        drops.get("unknown_rid").is_none() && drops.get("unknown_ssrc").is_none(),
        "{drops}"
    );
}
