//! The macro benchmark's results: one [`Point`] per run, a summary per server (with the
//! saturation point and the half-saturation run), the comparison table and the JSON form.

use std::fmt::Write as _;

use serde::Serialize;

use super::options::Options;
use super::procfs::Machine;
use super::server::ServerKind;
use super::{LATENCY_LIMIT_US, LOSS_LIMIT};

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub publishers: usize,
    pub subs_per_publisher: usize,
    /// Subscriber streams in total.
    pub subscribers: usize,
    pub window_s: f64,
    /// Datagrams the server sent per second (media, RTCP, STUN): the larger of its interface's
    /// TX packets and the datagrams the loadgen's clients received, because the interface counts
    /// one UDP GSO send (many datagrams) as one packet.
    pub egress_pps: f64,
    /// TX packets of the server's interface per second (GSO sends count once).
    pub veth_tx_pps: f64,
    pub ingress_pps: f64,
    /// Server process CPU over the window (all threads, user + system).
    pub server_cpu_s: f64,
    /// Cores' worth of CPU the server used.
    pub server_cpu_util: f64,
    /// CPU-seconds per million egress packets (= µs per packet).
    pub cpu_s_per_mpkt: f64,
    pub rss_idle_mib: f64,
    pub rss_load_mib: f64,
    pub rss_per_subscriber_kib: f64,
    /// End-to-end latency publisher → subscriber through the server, from the loadgen.
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub loss_ratio: f64,
    pub joins_failed: u64,
    pub receiving_at_end: u64,
    /// Cores' worth of CPU the loadgen used (near its thread count: the loadgen was the limit).
    pub loadgen_cpu_util: f64,
    pub loadgen_exit: i32,
    pub loadgen_s: f64,
}

impl Point {
    /// Whether the load was sustained in real time: every subscriber joined and receives, loss
    /// at most 0.5 %, and p99 latency at most 200 ms (past that packets queue somewhere, in the
    /// server or in a loadgen that cannot keep up, and loss only shows later).
    pub fn holds(&self) -> bool {
        self.joins_failed == 0
            && self.receiving_at_end as usize >= self.subscribers
            && self.loss_ratio <= LOSS_LIMIT
            && self.latency_p99_us <= LATENCY_LIMIT_US
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} subs: egress {:.0} pkt/s, server CPU {:.2} cores, {:.2} µs/pkt, RSS +{:.1} KiB/sub, \
             latency p50 {:.0} µs p99 {:.0} µs, loss {:.3} %, joins failed {}, receiving {}, loadgen CPU {:.2}",
            self.subscribers,
            self.egress_pps,
            self.server_cpu_util,
            self.cpu_s_per_mpkt,
            self.rss_per_subscriber_kib,
            self.latency_p50_us,
            self.latency_p99_us,
            self.loss_ratio * 100.0,
            self.joins_failed,
            self.receiving_at_end,
            self.loadgen_cpu_util
        )
    }
}

/// Everything measured for one server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    pub server: ServerKind,
    /// Every run, in order (one without --saturate).
    pub points: Vec<Point>,
    /// The largest run that held (with --saturate).
    pub saturation: Option<Point>,
    /// The run at half of that subscriber count (with --saturate).
    pub half_saturation: Option<Point>,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub tuning: String,
    pub options: Options,
    pub server_cores: Vec<usize>,
    pub loadgen_cores: Vec<usize>,
    pub servers: Vec<ServerSummary>,
}

fn row(out: &mut String, label: &str, p: &Point) {
    let _ = writeln!(
        out,
        "| {label:<22} | {:>6} | {:>10.0} | {:>5.2} | {:>8.2} | {:>9.1} | {:>8.0} | {:>8.0} | {:>7.3} | {:>5.2} |",
        p.subscribers,
        p.egress_pps,
        p.server_cpu_util,
        p.cpu_s_per_mpkt,
        p.rss_per_subscriber_kib,
        p.latency_p50_us,
        p.latency_p99_us,
        p.loss_ratio * 100.0,
        p.loadgen_cpu_util,
    );
}

impl Report {
    /// The comparison as a Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "machine: {} ({} cores, {} GiB), kernel {}\n{}\nserver cores {:?}, loadgen cores {:?}, \
             {} publisher(s) at {} bit/s, {} s windows, Ringcast I/O: {}\n",
            self.machine.cpu_model,
            self.machine.cores,
            self.machine.memory_gib,
            self.machine.kernel,
            self.tuning,
            self.server_cores,
            self.loadgen_cores,
            self.options.publishers,
            self.options.video_bitrate,
            self.options.duration,
            self.options.io.as_deref().unwrap_or("server default"),
        );
        let _ = writeln!(
            out,
            "| server / run           | subs   | egress pps | cores | µs/pkt   | KiB/sub   | p50 µs   | p99 µs   | loss %  | lg cpu |"
        );
        let _ = writeln!(
            out,
            "|------------------------|--------|------------|-------|----------|-----------|----------|----------|---------|--------|"
        );
        for s in &self.servers {
            let name = s.server.name();
            for p in &s.points {
                let tag = if p.holds() { "" } else { " (fails)" };
                row(&mut out, &format!("{name}{tag}"), p);
            }
            if let Some(p) = &s.saturation {
                row(&mut out, &format!("{name} saturation"), p);
            }
            if let Some(p) = &s.half_saturation {
                row(&mut out, &format!("{name} half-saturation"), p);
            }
        }
        // Ratio of CPU per packet where both servers ran.
        let per_pkt = |k: ServerKind| {
            self.servers
                .iter()
                .find(|s| s.server == k)
                .and_then(|s| s.saturation.as_ref().or(s.points.first()))
                .map(|p| p.cpu_s_per_mpkt)
        };
        if let (Some(r), Some(j)) = (per_pkt(ServerKind::Ringcast), per_pkt(ServerKind::Janus)) {
            let _ = writeln!(
                out,
                "\nCPU per forwarded packet: ringcast {r:.2} µs, janus {j:.2} µs ({:.1}x)",
                j / r
            );
        }
        out.push_str(
            "\nµs/pkt = server CPU-seconds per million egress packets (all threads, /proc/PID/stat); \
             KiB/sub = (VmRSS under load - idle VmRSS) / subscribers; latency and loss from the \
             loadgen; lg cpu = loadgen cores busy (near its thread count: the loadgen was the limit).",
        );
        out
    }
}
