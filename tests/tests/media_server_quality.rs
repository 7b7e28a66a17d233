//! `media.quality.degraded` and `media.quality.restored` from the media server's `/sessions`
//! API over real NATS: mediasoup-client in Chromium (tests/mediasoup/run.mjs) produces the fake
//! camera and consumes it on a second page, both inside a network namespace whose downlink is
//! limited to 150 kbit/s, below the camera's only encoding. The consumer's receive transport
//! cannot carry the video it wants, so an independent NATS subscriber sees the consuming
//! session announced degraded (its session id and channel); once the limit is lifted it is
//! announced restored.

mod stream_support;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringcast_tests::{Io, NetNs, Server, ServerOptions, deps, media_lock, netns, paths};
use stream_support::{Backing, SECRET, Subscriber, get, is_rfc3339, token, uuid};

const LIMIT_KBIT: u32 = 150;
/// Seconds the pages run after the consumer subscribed.
const RUN_S: u64 = 45;

#[test]
fn a_consumer_short_of_bandwidth_is_announced_degraded_then_restored_on_nats() {
    deps::require_browser();
    netns::require_netns();
    deps::require_node_modules(
        "mediasoup",
        &["mediasoup-client", "esbuild", "playwright-core"],
    );
    let _media = media_lock();
    let nats = Backing::nats();
    let mut events = Subscriber::connect(&nats.nats_url(), &["media.quality.>"]);
    let ns = NetNs::create().expect("network namespace");
    let mut server = Server::start(
        ServerOptions::new(1, Io::Mmsg)
            .bind(Ipv4Addr::UNSPECIFIED)
            .env("JWT_SECRET", SECRET)
            .env("NATS_URL", nats.nats_url()),
    )
    .expect("server starts");
    ns.limit_downlink(LIMIT_KBIT).expect("tbf on the downlink");

    // Both pages in the namespace: the producer's uplink is not limited, the consumer's
    // downlink is.
    let channel = uuid();
    let mut pages = Command::new(ns.exec_prefix()[0]);
    pages
        .args(&ns.exec_prefix()[1..])
        .arg("node")
        .current_dir(paths::workspace_root())
        .arg("tests/mediasoup/run.mjs")
        .args(["--server", &server.base_url_at(ns.host_ip())])
        .args(["--channel", &channel])
        .args(["--pub-user", "alice", "--pub-token", &token("alice")])
        .args(["--sub-user", "bob", "--sub-token", &token("bob")])
        .args(["--duration", &RUN_S.to_string()])
        .args(["--audio-quality", "low"])
        .stdin(Stdio::null());
    let started = Instant::now();
    let mut pages = Pages::spawn(pages);

    let degraded = events.wait_for("media.quality.degraded", Duration::from_secs(40), |v| {
        v["stream"] == channel.as_str()
    });
    eprintln!("degraded after {:?}: {degraded}", started.elapsed());
    let session = degraded["session_id"]
        .as_str()
        .expect("session_id")
        .to_string();
    let allocated = degraded["allocated_bps"].as_u64().expect("allocated_bps");
    let wanted = degraded["wanted_bps"].as_u64().expect("wanted_bps");
    assert!(allocated < wanted, "{degraded}");
    let estimate = degraded["estimate_bps"].as_u64().expect("estimate_bps");
    assert!(
        estimate < 600_000,
        "the estimate follows the {LIMIT_KBIT} kbit/s limit: {degraded}"
    );
    assert!(is_rfc3339(&degraded["timestamp"]), "{degraded}");
    // The degraded session is bob's consuming session, not alice's producing one.
    let r = get(
        &server,
        &format!("/sessions/{session}"),
        Some(&token("bob")),
    );
    assert_eq!(
        r.status,
        200,
        "bob owns the degraded session: {}",
        r.describe()
    );

    ns.clear_limit().expect("limit removed");
    let lifted = Instant::now();
    events.expect_restored(&session, &channel, lifted, Duration::from_secs(30));
    let status = pages.wait();
    assert!(status.success(), "run.mjs exited with {status}");
    server.assert_alive();
}

/// run.mjs running, its output in files; printed when the test fails.
struct Pages {
    child: Child,
    dir: PathBuf,
}

impl Pages {
    fn spawn(mut cmd: Command) -> Pages {
        let dir = std::env::temp_dir().join(format!("ringcast-msq-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("output dir");
        let file = |n: &str| std::fs::File::create(dir.join(n)).expect("output file");
        let child = cmd
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("`node` is needed (scripts/install-test-deps.sh): {e}"));
        Pages { child, dir }
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("run.mjs waited for")
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.child.kill();
            for n in ["stdout", "stderr"] {
                let text = std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- run.mjs {n} (last 30 lines) ---");
                for l in tail.iter().rev() {
                    eprintln!("{}", l.chars().take(600).collect::<String>());
                }
            }
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
