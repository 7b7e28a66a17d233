//! The command line of the `loadgen` binary (clap). These names are an interface: scripts and
//! people rely on them.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

use crate::classes::{ClassPlan, parse_classes};
use crate::engine::RxMode;
use crate::relay::impairment::{parse_bytes, parse_duration};

/// Ringcast load generator: real WHIP/WHEP publishers and subscribers over ICE, DTLS and SRTP.
///
/// Publishers send synthetic VP8-like video (and Opus-like audio with --audio); every
/// subscriber watches one publisher and measures loss, reordering, duplicates and end-to-end
/// latency from timestamps embedded in each payload. A status line refreshes on stderr; a
/// summary table goes to stdout at the end, and a JSON report to --json FILE.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "loadgen", version)]
pub struct Args {
    /// Server to load: http://host:port of a Ringcast (or any WHIP/WHEP) server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,

    /// Number of publishers.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,

    /// Subscribers per publisher.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,

    /// Subscribers per publisher in capacity classes instead of --subscribers:
    /// `600k:10,2m:10,unlimited:5` (downlink rate: COUNT). Every subscriber of a limited class
    /// receives through its own rate limit in the load generator (token bucket of
    /// --class-burst, drop-tail queue of --class-queue); the report has a section per class.
    #[arg(long, conflicts_with = "subscribers")]
    pub subscriber_classes: Option<String>,

    /// Longest wait in a class's downlink queue; a datagram that would wait longer is dropped.
    #[arg(long, default_value = "200ms")]
    pub class_queue: String,

    /// Token bucket depth of a class's downlink: what passes ahead of the rate after an idle
    /// moment. The default, 0, makes the downlink a link that serializes every datagram at its
    /// rate (it arrives when its last bit would); a bucket models a shaper that lets short
    /// bursts, bandwidth probes included, through at any rate.
    #[arg(long, default_value = "0")]
    pub class_burst: String,

    /// Stream names the publishers (and their subscribers) are spread over; default: one per
    /// publisher. With fewer rooms than publishers, a room's publishers get names
    /// PREFIX-ROOM-K.
    #[arg(long)]
    pub rooms: Option<usize>,

    /// Video bitrate of each publisher in bits/s (encoded frames; keyframes are larger).
    #[arg(long, default_value_t = 1_000_000)]
    pub video_bitrate: u64,

    /// Publishers send three simulcast encodings (RFC 8853, rids q, h, f: 1/16, 1/4 and all of
    /// --video-bitrate, each on its own SSRC with the rid header extension, its rank in every
    /// payload's tag); subscribers get the one the server forwards and report which. Needs a
    /// target that takes the publisher's offer (WHIP).
    #[arg(long)]
    pub simulcast: bool,

    /// Also send Opus-like audio (50 packets/s).
    #[arg(long)]
    pub audio: bool,

    /// Audio bitrate in bits/s, with --audio.
    #[arg(long, default_value_t = 32_000)]
    pub audio_bitrate: u64,

    /// Seconds between periodic keyframes.
    #[arg(long, default_value_t = 3.0)]
    pub keyframe_interval: f64,

    /// Run length in seconds, counted from the first join.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,

    /// Joins per second (publishers first, then subscribers); 0: as fast as possible.
    #[arg(long, default_value_t = 50.0)]
    pub ramp: f64,

    /// Seconds at the start excluded from the measurements (traffic, loss, latency, CPU): let
    /// the ramp finish. Join times always cover every join.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,

    /// Process id of the server, when it runs on this machine: its CPU use over the
    /// measurement window goes into the report.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Stream name prefix.
    #[arg(long, default_value = "loadgen")]
    pub stream_prefix: String,

    /// Bearer token sent with every signaling request (never written to the report).
    #[arg(long, env = "LOADGEN_TOKEN")]
    #[serde(serialize_with = "redact")]
    pub token: Option<String>,

    /// Local address for the clients' UDP sockets; default: the address that routes to the
    /// target.
    #[arg(long)]
    pub bind_ip: Option<IpAddr>,

    /// Seed of everything random (frame sizes, SSRCs, ICE credentials).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Worker threads driving the clients (each an epoll loop over its clients' sockets).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// How workers receive: io_uring multishot receives over every socket, or epoll and
    /// recvmmsg per ready socket (also the fallback where io_uring is unavailable).
    #[arg(long, value_enum, default_value_t = RxMode::Uring)]
    pub io: RxMode,

    /// Threads doing signaling (HTTP) in parallel during the ramp.
    #[arg(long, default_value_t = 4)]
    pub join_threads: usize,

    /// Seconds a client may take to join (publisher: connected; subscriber: first media).
    #[arg(long, default_value_t = 15.0)]
    pub join_timeout: f64,

    /// Timeout of each signaling request, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub http_timeout: f64,

    /// Socket receive and send buffer size per client, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub socket_buffer: usize,

    /// No live status line.
    #[arg(long)]
    pub quiet: bool,

    /// Network impairment for --impair-subscribers of the subscribers, both directions,
    /// through a built-in relay: `delay=50ms,jitter=10ms,loss=2%,rate=600kbps,reorder=1%`
    /// (also `queue=200ms`, `burst=16kB`).
    #[arg(long)]
    pub impair: Option<String>,

    /// Fraction of subscribers (0..1, spread evenly) whose traffic goes through --impair.
    #[arg(long, default_value_t = 0.0)]
    pub impair_subscribers: f64,
}

/// Writes a secret as `"<redacted>"` (or null when absent).
fn redact<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

impl Args {
    /// Rooms in effect: `--rooms`, clamped to 1..=publishers.
    pub fn rooms(&self) -> usize {
        self.rooms
            .unwrap_or(self.publishers)
            .clamp(1, self.publishers.max(1))
    }

    /// Subscribers per publisher: `--subscribers`, or the sum of `--subscriber-classes`.
    pub fn subscribers_per_publisher(&self) -> usize {
        match self.class_plan() {
            Ok(Some(plan)) => plan.subscribers_per_publisher(),
            _ => self.subscribers,
        }
    }

    /// Total clients.
    pub fn clients(&self) -> usize {
        self.publishers + self.publishers * self.subscribers_per_publisher()
    }

    /// The capacity classes of `--subscriber-classes`, if given.
    pub fn class_plan(&self) -> Result<Option<ClassPlan>, String> {
        let Some(text) = self.subscriber_classes.as_deref() else {
            return Ok(None);
        };
        let classes = parse_classes(text).map_err(|e| format!("--subscriber-classes: {e}"))?;
        let queue = parse_duration(&self.class_queue)
            .filter(|q| !q.is_zero())
            .ok_or("--class-queue must be a time like 200ms")?;
        let burst = match self.class_burst.trim() {
            "0" => 0,
            b => parse_bytes(b).ok_or("--class-burst must be bytes (like 0 or 16kB)")?,
        };
        Ok(Some(ClassPlan::new(classes, self.publishers, burst, queue)))
    }

    /// Checks values clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.publishers == 0 {
            return Err("--publishers must be at least 1".into());
        }
        if self.threads == 0 || self.join_threads == 0 {
            return Err("--threads and --join-threads must be at least 1".into());
        }
        if !(self.duration > 0.0 && self.duration.is_finite()) {
            return Err("--duration must be a positive number of seconds".into());
        }
        if !(self.warmup >= 0.0 && self.warmup < self.duration) {
            return Err("--warmup must be at least 0 and shorter than --duration".into());
        }
        if !(self.ramp >= 0.0 && self.ramp.is_finite()) {
            return Err("--ramp must be 0 or a positive rate".into());
        }
        if !(self.keyframe_interval > 0.0 && self.join_timeout > 0.0 && self.http_timeout > 0.0) {
            return Err("intervals and timeouts must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.impair_subscribers) {
            return Err("--impair-subscribers must be a fraction 0..1".into());
        }
        self.class_plan()?;
        if let Some(i) = &self.impair {
            crate::relay::Impairment::parse(i).map_err(|e| format!("--impair: {e}"))?;
        }
        if self.video_bitrate < 10_000 {
            return Err("--video-bitrate must be at least 10000".into());
        }
        let name_ok = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if self.stream_prefix.is_empty() || !name_ok(&self.stream_prefix) {
            return Err("--stream-prefix must be made of A-Z a-z 0-9 - _ .".into());
        }
        Ok(())
    }
}
