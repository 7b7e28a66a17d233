//! The end-of-run report: a summary table for people (stdout) and a JSON document for scripts
//! (`--json FILE`). Field names are an interface; see docs/loadgen.md.

use std::fmt::Write as _;

use serde::Serialize;

use super::classes::ClassReport;
use super::counters::{Counters, ReceiveQuality};
use super::histogram::{Histogram, Quantiles};
use super::server_metrics::ServerTraffic;

/// Join times in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct JoinMs {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl JoinMs {
    /// From a histogram in microseconds.
    pub fn from_us(h: &Histogram) -> Self {
        let q = h.quantiles(1000.0);
        JoinMs {
            count: q.count,
            mean: q.mean,
            p50: q.p50,
            p95: q.p95,
            p99: q.p99,
            max: q.max,
        }
    }
}

/// The publishers' side.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PublisherReport {
    pub requested: u64,
    pub joins_ok: u64,
    pub joins_failed: u64,
    pub connected_at_end: u64,
    pub join_ms: JoinMs,
    pub rtp_sent: u64,
    pub video_frames: u64,
    pub keyframes: u64,
    pub frames_skipped: u64,
    pub nacks_received: u64,
    pub nacked_packets: u64,
    pub rtx_sent: u64,
    pub rtx_unavailable: u64,
    pub plis_received: u64,
    pub firs_received: u64,
    pub twcc_feedback_received: u64,
    pub sender_reports_sent: u64,
}

/// The subscribers' side.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SubscriberReport {
    pub requested: u64,
    pub joins_ok: u64,
    pub joins_failed: u64,
    pub connected_at_end: u64,
    pub receiving_at_end: u64,
    pub join_ms: JoinMs,
    pub rtp_received: u64,
    pub video_packets: u64,
    pub audio_packets: u64,
    pub rtx_received: u64,
    pub untagged: u64,
    pub unknown_stream: u64,
    pub nacks_sent: u64,
    pub nack_requests_sent: u64,
    pub plis_sent: u64,
    pub receiver_reports_sent: u64,
    pub sender_reports_received: u64,
    pub video: ReceiveQuality,
    pub audio: ReceiveQuality,
    /// Connected subscribers that received no video packet at all (0 when video is expected
    /// and flowing everywhere).
    pub without_video: u64,
    /// The same for audio (only meaningful with `--audio`).
    pub without_audio: u64,
    /// Transport-wide feedback packets sent, and padding-only probes received.
    pub twcc_feedback_sent: u64,
    pub padding_received: u64,
    /// What every subscriber's video looked like (layers, freezes, bit rates), as one group.
    pub experience: ClassReport,
}

/// Sent and received totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub sent: u64,
    pub received: u64,
}

/// The server's CPU use over the measurement window (`--server-pid`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerCpu {
    pub pid: u32,
    pub cpu_s: f64,
    /// Server CPU seconds per wall second (all threads).
    pub cpu_ratio: f64,
    /// The thread that used the most CPU (a shard, under media load).
    pub busiest_thread: String,
    pub busiest_thread_ratio: f64,
}

/// Facts about the run that are not counters.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub target: String,
    pub threads: usize,
    pub publishers_requested: u64,
    pub subscribers_requested: u64,
    /// Seconds from the first join to the stop of media.
    pub media_s: f64,
    /// Process CPU seconds over the same span.
    pub cpu_s: f64,
    /// CPU seconds over run seconds of each worker thread.
    pub worker_cpu_ratios: Vec<f64>,
    /// Share of the window each worker thread was running or waiting for a CPU.
    pub worker_busy_ratios: Vec<f64>,
    /// Distinct join errors, first ones first.
    pub errors: Vec<String>,
    pub leave_failures: u64,
    /// Seconds of warm-up excluded from the measurements.
    pub warmup_s: f64,
    pub server: Option<ServerCpu>,
    pub server_traffic: Option<ServerTraffic>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report<C: Serialize> {
    pub version: &'static str,
    pub target: String,
    pub config: C,
    /// Seconds of warm-up (ramp) excluded from traffic, loss, latency and CPU figures.
    pub warmup_s: f64,
    /// Seconds the measurements cover (from the end of the warm-up to the stop).
    pub media_s: f64,
    pub threads: usize,
    pub joins_ok: u64,
    pub joins_failed: u64,
    /// Publishers: request to connected; subscribers: request to first media packet.
    pub join_ms: JoinMs,
    /// RTP packets the publishers sent (retransmissions included).
    pub packets_sent: u64,
    /// RTP packets the subscribers received (duplicates and retransmissions included).
    pub packets_received: u64,
    /// UDP payload bytes, every kind of datagram.
    pub bytes: Totals,
    pub datagrams: Totals,
    pub egress_bps: f64,
    pub ingress_bps: f64,
    pub expected: u64,
    pub lost: u64,
    pub loss_ratio: f64,
    pub duplicates: u64,
    pub reordered: u64,
    pub recovered: u64,
    pub latency_us: Quantiles,
    /// NACK messages: sent by subscribers plus received by publishers.
    pub nacks: u64,
    /// PLI messages: sent by subscribers plus received by publishers.
    pub plis: u64,
    pub send_errors: u64,
    pub undecodable: u64,
    pub publishers: PublisherReport,
    pub subscribers: SubscriberReport,
    pub loadgen_cpu_s: f64,
    /// Load generator CPU seconds per wall second; near `threads` means the load generator,
    /// not the server, limited the run.
    pub loadgen_cpu_ratio: f64,
    pub worker_cpu_ratios: Vec<f64>,
    /// Share of the time each worker thread was running or waiting for a CPU (schedstat); near
    /// 1 it could not keep up, whether it had a CPU or lost it to other processes.
    pub worker_busy_ratios: Vec<f64>,
    pub loadgen_saturated: bool,
    pub server: Option<ServerCpu>,
    /// The server's own counters over the window, when it exposes Ringcast `/metrics`.
    pub server_traffic: Option<ServerTraffic>,
    /// Per capacity class (`--subscriber-classes`), in the order given; empty without.
    pub classes: Vec<ClassReport>,
    pub errors: Vec<String>,
    pub leave_failures: u64,
}

/// CPU ratio per worker thread above which the load generator counts as saturated.
pub const SATURATION: f64 = 0.85;

/// Busy share of a worker thread above which the load generator counts as saturated.
pub const BUSY_SATURATION: f64 = 0.9;

/// Everything measured, merged across workers.
#[derive(Debug)]
pub struct Measured<'a> {
    pub counters: &'a Counters,
    pub quality: &'a ReceiveQuality,
    pub video: &'a ReceiveQuality,
    pub audio: &'a ReceiveQuality,
    pub latency_ns: &'a Histogram,
    pub join_publishers_us: &'a Histogram,
    pub join_subscribers_us: &'a Histogram,
    pub subscribers_without_video: u64,
    pub subscribers_without_audio: u64,
    /// Every subscriber as one group, and each capacity class.
    pub experience: &'a ClassReport,
    pub classes: &'a [ClassReport],
}

impl<C: Serialize> Report<C> {
    /// Builds the report.
    pub fn build(config: C, info: &RunInfo, m: &Measured<'_>) -> Self {
        let c = m.counters;
        let mut joins = m.join_publishers_us.clone();
        joins.merge(m.join_subscribers_us);
        let secs = info.media_s.max(1e-9);
        let cpu_ratio = info.cpu_s / secs;
        let worker_max = info.worker_cpu_ratios.iter().copied().fold(0.0, f64::max);
        let busy_max = info.worker_busy_ratios.iter().copied().fold(0.0, f64::max);
        Report {
            version: env!("CARGO_PKG_VERSION"),
            target: info.target.clone(),
            config,
            warmup_s: info.warmup_s,
            media_s: info.media_s,
            threads: info.threads,
            joins_ok: c.joins_ok(),
            joins_failed: c.joins_failed(),
            join_ms: JoinMs::from_us(&joins),
            packets_sent: c.rtp_sent,
            packets_received: c.rtp_received,
            bytes: Totals {
                sent: c.bytes_sent,
                received: c.bytes_received,
            },
            datagrams: Totals {
                sent: c.datagrams_sent,
                received: c.datagrams_received,
            },
            egress_bps: c.bytes_sent as f64 * 8.0 / secs,
            ingress_bps: c.bytes_received as f64 * 8.0 / secs,
            expected: m.quality.expected,
            lost: m.quality.lost,
            loss_ratio: m.quality.loss_ratio(),
            duplicates: m.quality.duplicates,
            reordered: m.quality.reordered,
            recovered: m.quality.recovered,
            latency_us: m.latency_ns.quantiles(1000.0),
            nacks: c.nacks_sent + c.nacks_received,
            plis: c.plis_sent + c.plis_received,
            send_errors: c.send_errors,
            undecodable: c.undecodable,
            publishers: PublisherReport {
                requested: info.publishers_requested,
                joins_ok: c.publisher_joins_ok,
                joins_failed: c.publisher_joins_failed,
                connected_at_end: c.publishers_connected,
                join_ms: JoinMs::from_us(m.join_publishers_us),
                rtp_sent: c.rtp_sent,
                video_frames: c.video_frames,
                keyframes: c.keyframes,
                frames_skipped: c.frames_skipped,
                nacks_received: c.nacks_received,
                nacked_packets: c.nacked_packets,
                rtx_sent: c.rtx_sent,
                rtx_unavailable: c.rtx_unavailable,
                plis_received: c.plis_received,
                firs_received: c.firs_received,
                twcc_feedback_received: c.twcc_feedback_received,
                sender_reports_sent: c.sender_reports_sent,
            },
            subscribers: SubscriberReport {
                requested: info.subscribers_requested,
                joins_ok: c.subscriber_joins_ok,
                joins_failed: c.subscriber_joins_failed,
                connected_at_end: c.subscribers_connected,
                receiving_at_end: c.subscribers_receiving,
                join_ms: JoinMs::from_us(m.join_subscribers_us),
                rtp_received: c.rtp_received,
                video_packets: c.video_packets_received,
                audio_packets: c.audio_packets_received,
                rtx_received: c.rtx_received,
                untagged: c.untagged,
                unknown_stream: c.unknown_stream,
                nacks_sent: c.nacks_sent,
                nack_requests_sent: c.nack_requests_sent,
                plis_sent: c.plis_sent,
                receiver_reports_sent: c.receiver_reports_sent,
                sender_reports_received: c.sender_reports_received,
                video: *m.video,
                audio: *m.audio,
                without_video: m.subscribers_without_video,
                without_audio: m.subscribers_without_audio,
                twcc_feedback_sent: c.twcc_feedback_sent,
                padding_received: c.padding_received,
                experience: m.experience.clone(),
            },
            loadgen_cpu_s: info.cpu_s,
            loadgen_cpu_ratio: cpu_ratio,
            worker_cpu_ratios: info.worker_cpu_ratios.clone(),
            worker_busy_ratios: info.worker_busy_ratios.clone(),
            loadgen_saturated: worker_max >= SATURATION
                || busy_max >= BUSY_SATURATION
                || cpu_ratio >= SATURATION * info.threads.max(1) as f64,
            server: info.server.clone(),
            server_traffic: info.server_traffic.clone(),
            classes: m.classes.to_vec(),
            errors: info.errors.clone(),
            leave_failures: info.leave_failures,
        }
    }

    /// The summary table printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "  {k:<22} {v}");
        };
        let mbps = |b: f64| format!("{:.2} Mb/s", b / 1e6);
        row("target", self.target.clone());
        row(
            "joins",
            format!(
                "{} ok, {} failed (publishers {}/{}, subscribers {}/{})",
                self.joins_ok,
                self.joins_failed,
                self.publishers.joins_ok,
                self.publishers.requested,
                self.subscribers.joins_ok,
                self.subscribers.requested
            ),
        );
        row(
            "join time",
            format!(
                "p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms",
                self.join_ms.p50, self.join_ms.p95, self.join_ms.p99
            ),
        );
        row(
            "packets",
            format!(
                "sent {}  received {} ({:.0}/s)  over {:.1} s",
                self.packets_sent,
                self.packets_received,
                self.packets_received as f64 / self.media_s.max(1e-9),
                self.media_s
            ),
        );
        row(
            "bitrate",
            format!(
                "out {}  in {}",
                mbps(self.egress_bps),
                mbps(self.ingress_bps)
            ),
        );
        row(
            "loss",
            format!(
                "{:.4} %  ({} of {} expected; {} recovered by RTX)",
                self.loss_ratio * 100.0,
                self.lost,
                self.expected,
                self.recovered
            ),
        );
        row(
            "order",
            format!(
                "{} duplicates, {} reordered",
                self.duplicates, self.reordered
            ),
        );
        let l = &self.latency_us;
        row(
            "latency",
            format!(
                "p50 {:.0} µs  p99 {:.0} µs  p99.9 {:.0} µs  max {:.0} µs",
                l.p50, l.p99, l.p999, l.max
            ),
        );
        row(
            "feedback",
            format!(
                "{} NACKs, {} PLIs, {} RTX sent, {} keyframes",
                self.nacks, self.plis, self.publishers.rtx_sent, self.publishers.keyframes
            ),
        );
        row(
            "loadgen cpu",
            format!(
                "{:.2} s = {:.2} cores over {} worker thread(s), busy {}{}",
                self.loadgen_cpu_s,
                self.loadgen_cpu_ratio,
                self.threads,
                self.worker_busy_ratios
                    .iter()
                    .map(|b| format!("{:.0} %", b * 100.0))
                    .collect::<Vec<_>>()
                    .join(" "),
                if self.loadgen_saturated {
                    "  SATURATED: the load generator limited this run"
                } else {
                    ""
                }
            ),
        );
        if let Some(sv) = &self.server {
            row(
                "server cpu",
                format!(
                    "{:.2} cores (pid {}); busiest thread {} at {:.0} %",
                    sv.cpu_ratio,
                    sv.pid,
                    sv.busiest_thread,
                    sv.busiest_thread_ratio * 100.0
                ),
            );
        }
        if let Some(t) = &self.server_traffic {
            row(
                "server traffic",
                format!(
                    "rtp out {:.0}/s, datagrams out {:.0}/s, {} drops, {} send errors",
                    t.rtp_out_per_s,
                    t.datagrams_out_per_s,
                    t.drops.values().fold(0.0, |a, b| a + b),
                    t.send_errors
                ),
            );
        }
        let e = &self.subscribers.experience;
        if e.frames_rendered > 0 {
            row(
                "video",
                format!(
                    "{} frames rendered, {} freezes ({:.1} s), {} layer switches",
                    e.frames_rendered, e.freezes, e.freeze_s, e.switches
                ),
            );
        }
        for c in &self.classes {
            row(&format!("class {}", c.class), c.summary_line());
        }
        for e in self.errors.iter().take(5) {
            row("error", e.clone());
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    fn measured() -> (Counters, ReceiveQuality, Histogram, Histogram, Histogram) {
        let c = Counters {
            publisher_joins_ok: 2,
            subscriber_joins_ok: 5,
            subscriber_joins_failed: 1,
            rtp_sent: 1000,
            rtp_received: 5000,
            bytes_sent: 1_000_000,
            bytes_received: 5_000_000,
            nacks_sent: 3,
            nacks_received: 2,
            plis_sent: 1,
            plis_received: 4,
            ..Counters::default()
        };
        let q = ReceiveQuality {
            expected: 5000,
            received: 4990,
            lost: 10,
            duplicates: 1,
            reordered: 2,
            recovered: 3,
            gaps: 13,
        };
        let mut lat = Histogram::latency_ns();
        for i in 1..=1000 {
            lat.record(i * 1000);
        }
        let mut jp = Histogram::join_us();
        jp.record(50_000);
        let mut js = Histogram::join_us();
        for _ in 0..5 {
            js.record(100_000);
        }
        (c, q, lat, jp, js)
    }

    #[test]
    fn the_json_report_has_the_documented_fields_with_consistent_values() {
        let (c, q, lat, jp, js) = measured();
        let info = RunInfo {
            target: "whip http://x".into(),
            threads: 1,
            publishers_requested: 2,
            subscribers_requested: 6,
            media_s: 10.0,
            cpu_s: 2.0,
            worker_cpu_ratios: vec![0.19],
            worker_busy_ratios: vec![0.25],
            errors: vec!["POST: HTTP 503".into()],
            leave_failures: 0,
            warmup_s: 2.0,
            server: Some(ServerCpu {
                pid: 42,
                cpu_s: 5.0,
                cpu_ratio: 0.5,
                busiest_thread: "shard-0".into(),
                busiest_thread_ratio: 0.45,
            }),
            server_traffic: None,
        };
        let m = Measured {
            counters: &c,
            quality: &q,
            video: &q,
            audio: &ReceiveQuality::default(),
            latency_ns: &lat,
            join_publishers_us: &jp,
            join_subscribers_us: &js,
            subscribers_without_video: 0,
            subscribers_without_audio: 0,
            experience: &ClassReport::default(),
            classes: &[],
        };
        let r = Report::build(serde_json::json!({"publishers": 2}), &info, &m);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        for key in [
            "packets_received",
            "packets_sent",
            "loss_ratio",
            "latency_us",
            "join_ms",
            "joins_ok",
            "joins_failed",
            "nacks",
            "plis",
            "loadgen_cpu_ratio",
            "bytes",
            "duplicates",
            "reordered",
            "publishers",
            "subscribers",
            "config",
            "version",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["packets_received"], 5000);
        assert_eq!(v["joins_ok"], 7);
        assert_eq!(v["joins_failed"], 1);
        assert_eq!(v["nacks"], 5);
        assert_eq!(v["plis"], 5);
        assert!((v["loss_ratio"].as_f64().unwrap() - 0.002).abs() < 1e-9);
        let p50 = v["latency_us"]["p50"].as_f64().unwrap();
        assert!((p50 - 500.0).abs() < 1.0, "{p50}");
        assert!(
            v["latency_us"]["p999"].as_f64().unwrap() >= v["latency_us"]["p99"].as_f64().unwrap()
        );
        assert_eq!(v["join_ms"]["count"], 6);
        assert!((v["join_ms"]["p50"].as_f64().unwrap() - 100.0).abs() < 0.2);
        assert!(v["join_ms"]["p95"].as_f64().is_some() && v["join_ms"]["p99"].as_f64().is_some());
        assert!((v["loadgen_cpu_ratio"].as_f64().unwrap() - 0.2).abs() < 1e-9);
        assert_eq!(v["loadgen_saturated"], false);
        assert_eq!(v["config"]["publishers"], 2);
        assert_eq!(v["egress_bps"].as_f64().unwrap(), 800_000.0);
        assert_eq!(v["server"]["busiest_thread"], "shard-0");
        assert_eq!(v["warmup_s"], 2.0);
        let text = r.summary();
        assert!(text.contains("7 ok, 1 failed"), "{text}");
        assert!(text.contains("0.2000 %"), "{text}");
    }

    #[test]
    fn a_busy_worker_marks_the_run_saturated() {
        let (c, q, lat, jp, js) = measured();
        let info = RunInfo {
            threads: 2,
            media_s: 10.0,
            cpu_s: 11.0,
            worker_cpu_ratios: vec![0.5, 0.2],
            worker_busy_ratios: vec![0.97, 0.3],
            ..RunInfo::default()
        };
        let m = Measured {
            counters: &c,
            quality: &q,
            video: &q,
            audio: &q,
            latency_ns: &lat,
            join_publishers_us: &jp,
            join_subscribers_us: &js,
            subscribers_without_video: 0,
            subscribers_without_audio: 0,
            experience: &ClassReport::default(),
            classes: &[],
        };
        let r = Report::build((), &info, &m);
        assert!(r.loadgen_saturated);
        assert!(r.summary().contains("SATURATED"));
    }
}
