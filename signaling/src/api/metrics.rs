//! `GET /metrics`: Prometheus text exposition of every shard's counters and gauges.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use sfu::metrics::{DropReason, ShardMetrics};

use crate::state::AppState;

type Field = fn(&ShardMetrics) -> &AtomicU64;

const COUNTERS: &[(&str, &str, Field)] = &[
    (
        "ringcast_datagrams_in_total",
        "UDP datagrams received",
        |m| &m.datagrams_in,
    ),
    ("ringcast_datagrams_out_total", "UDP datagrams sent", |m| {
        &m.datagrams_out
    }),
    (
        "ringcast_bytes_in_total",
        "UDP payload bytes received",
        |m| &m.bytes_in,
    ),
    ("ringcast_bytes_out_total", "UDP payload bytes sent", |m| {
        &m.bytes_out
    }),
    (
        "ringcast_rtp_in_total",
        "RTP packets received and decrypted",
        |m| &m.rtp_in,
    ),
    (
        "ringcast_rtp_out_total",
        "RTP packets forwarded to viewers",
        |m| &m.rtp_out,
    ),
    (
        "ringcast_rtcp_in_total",
        "RTCP compound packets received",
        |m| &m.rtcp_in,
    ),
    ("ringcast_rtcp_out_total", "RTCP packets sent", |m| {
        &m.rtcp_out
    }),
    ("ringcast_stun_in_total", "STUN messages received", |m| {
        &m.stun_in
    }),
    ("ringcast_dtls_in_total", "DTLS datagrams received", |m| {
        &m.dtls_in
    }),
    (
        "ringcast_nacks_in_total",
        "NACK packets received from viewers",
        |m| &m.nacks_in,
    ),
    (
        "ringcast_nacks_out_total",
        "NACK packets sent to publishers",
        |m| &m.nacks_out,
    ),
    (
        "ringcast_retransmits_total",
        "packets retransmitted to viewers",
        |m| &m.retransmits,
    ),
    (
        "ringcast_keyframe_requests_total",
        "keyframe requests sent toward publishers",
        |m| &m.keyframe_requests_out,
    ),
    (
        "ringcast_cross_shard_out_total",
        "messages sent to other shards",
        |m| &m.cross_shard_out,
    ),
    (
        "ringcast_cross_shard_in_total",
        "messages received from other shards",
        |m| &m.cross_shard_in,
    ),
    (
        "ringcast_layer_switches_total",
        "viewers started on or moved to a simulcast encoding",
        |m| &m.layer_switches,
    ),
    (
        "ringcast_send_errors_total",
        "datagrams the kernel refused to send",
        |m| &m.send_errors,
    ),
    (
        "ringcast_loop_iterations_total",
        "shard loop iterations",
        |m| &m.loop_iterations,
    ),
];

const GAUGES: &[(&str, &str, Field)] = &[
    ("ringcast_sessions", "sessions on the shard", |m| {
        &m.sessions
    }),
    (
        "ringcast_publishers",
        "publishing sessions on the shard",
        |m| &m.publishers,
    ),
    ("ringcast_viewers", "viewing sessions on the shard", |m| {
        &m.viewers
    }),
];

/// Renders the exposition text.
pub fn render_text(st: &AppState) -> String {
    let shards = st.media.shards();
    let mut out = String::with_capacity(8192);
    for (kind, table) in [("counter", COUNTERS), ("gauge", GAUGES)] {
        for (name, help, field) in table {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for s in shards {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{}\"}} {}",
                    s.id.0,
                    field(&s.metrics).load(Ordering::Relaxed)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_drops_total packets dropped, by reason\n# TYPE ringcast_drops_total counter"
    );
    for s in shards {
        for r in DropReason::ALL {
            let _ = writeln!(
                out,
                "ringcast_drops_total{{shard=\"{}\",reason=\"{}\"}} {}",
                s.id.0,
                r.label(),
                s.metrics.drop_count(*r)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_shard_info the I/O backend of each shard\n# TYPE ringcast_shard_info gauge"
    );
    for s in shards {
        let io = match s.io {
            sfu::io::IoKind::Uring => "uring",
            sfu::io::IoKind::Mmsg => "mmsg",
        };
        let _ = writeln!(
            out,
            "ringcast_shard_info{{shard=\"{}\",io=\"{io}\",port=\"{}\"}} 1",
            s.id.0,
            s.local_addr.port()
        );
    }
    if let Ok(reg) = st.registry.lock() {
        render_bwe(&mut out, reg.bwe_estimates().map(|b| b.target.0));
        render_allocation(&mut out, reg.viewers().filter_map(ViewerSample::of));
        let (p, v) = reg.counts();
        let _ = writeln!(
            out,
            "# HELP ringcast_signaling_sessions sessions known to signaling, by role\n# TYPE ringcast_signaling_sessions gauge"
        );
        let _ = writeln!(
            out,
            "ringcast_signaling_sessions{{role=\"publisher\"}} {p}\nringcast_signaling_sessions{{role=\"viewer\"}} {v}"
        );
    }
    st.services.render(&mut out);
    out
}

/// Upper bounds (bit/s) of the estimate histogram's buckets.
const BWE_BUCKETS: [u64; 10] = [
    100_000, 300_000, 500_000, 1_000_000, 1_500_000, 2_500_000, 4_000_000, 6_000_000, 10_000_000,
    20_000_000,
];
/// Viewers estimated below this are counted apart (too little for a usable video layer).
const BWE_LOW_BPS: u64 = 300_000;

/// The distribution of the send-side estimates toward viewers (histogram of the latest
/// target of each viewer) and how many viewers are below 300 kbit/s.
fn render_bwe(out: &mut String, targets: impl Iterator<Item = u64>) {
    let mut counts = [0u64; BWE_BUCKETS.len()];
    let (mut n, mut sum, mut low) = (0u64, 0u64, 0u64);
    for t in targets {
        n += 1;
        sum = sum.saturating_add(t);
        if t < BWE_LOW_BPS {
            low += 1;
        }
        for (c, &b) in counts.iter_mut().zip(&BWE_BUCKETS) {
            if t <= b {
                *c += 1;
            }
        }
    }
    let name = "ringcast_viewer_bwe_target_bps";
    let _ = writeln!(
        out,
        "# HELP {name} send-side bandwidth estimate toward each viewer (latest target)
# TYPE {name} histogram"
    );
    for (c, b) in counts.iter().zip(BWE_BUCKETS) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {n}\n{name}_sum {sum}\n{name}_count {n}"
    );
    let _ = writeln!(
        out,
        "# HELP ringcast_viewers_below_300kbps viewers whose estimate is below 300 kbit/s\n# TYPE ringcast_viewers_below_300kbps gauge\nringcast_viewers_below_300kbps {low}"
    );
}

/// What `/metrics` aggregates of one viewer's latest allocation report.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ViewerSample {
    /// The current layer of its first video section: `Some(rank)`, or `None` while paused.
    /// Viewers without a video layer forwarded or chosen are not counted in the layer gauge.
    layer: Option<Option<u8>>,
    degraded: bool,
    /// The worst loss of its sections, in thousandths.
    loss_permille: u16,
    rtt: Option<std::time::Duration>,
}

impl ViewerSample {
    fn of(rec: &crate::registry::SessionRecord) -> Option<ViewerSample> {
        let s = rec.stats.as_ref()?;
        let video = s.tracks.iter().find(|t| t.kind == sfu::MediaKind::Video);
        let layer = video.and_then(|t| {
            if t.paused {
                Some(None)
            } else {
                // Between layers (or on a single encoding, which has no rank of its own): the
                // layer the allocator chose.
                t.spatial.or(t.target_spatial).map(Some)
            }
        });
        Some(ViewerSample {
            layer,
            degraded: s.degraded || rec.degraded.is_some(),
            loss_permille: s.tracks.iter().map(|t| t.loss_permille).max().unwrap_or(0),
            rtt: s.rtt,
        })
    }
}

/// Upper bounds (thousandths) of the loss histogram's buckets.
const LOSS_BUCKETS: [u16; 9] = [0, 1, 5, 10, 20, 50, 100, 200, 500];
/// Upper bounds (seconds) of the round-trip histogram's buckets.
const RTT_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2];

/// Aggregates of the viewers' allocation reports, without per-session labels: viewers per
/// current layer, degraded viewers, and the distributions of their loss and round-trip times.
fn render_allocation(out: &mut String, viewers: impl Iterator<Item = ViewerSample>) {
    let mut layers = std::collections::BTreeMap::<String, u64>::new();
    for l in ["0", "1", "2", "paused"] {
        layers.insert(l.into(), 0);
    }
    let mut degraded = 0u64;
    let mut loss = [0u64; LOSS_BUCKETS.len()];
    let (mut loss_n, mut loss_sum) = (0u64, 0u64);
    let mut rtt = [0u64; RTT_BUCKETS.len()];
    let (mut rtt_n, mut rtt_sum) = (0u64, 0f64);
    for v in viewers {
        match v.layer {
            Some(Some(rank)) => *layers.entry(rank.to_string()).or_default() += 1,
            Some(None) => *layers.entry("paused".into()).or_default() += 1,
            None => {}
        }
        degraded += u64::from(v.degraded);
        loss_n += 1;
        loss_sum += u64::from(v.loss_permille);
        for (c, &b) in loss.iter_mut().zip(&LOSS_BUCKETS) {
            *c += u64::from(v.loss_permille <= b);
        }
        if let Some(r) = v.rtt {
            let r = r.as_secs_f64();
            rtt_n += 1;
            rtt_sum += r;
            for (c, &b) in rtt.iter_mut().zip(&RTT_BUCKETS) {
                *c += u64::from(r <= b);
            }
        }
    }
    let name = "ringcast_viewer_layer";
    let _ = writeln!(
        out,
        "# HELP {name} viewers by the simulcast/spatial layer of their first video section (paused: no video fits)\n# TYPE {name} gauge"
    );
    for (l, n) in &layers {
        let _ = writeln!(out, "{name}{{layer=\"{l}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_viewers_degraded viewers whose video allocation stayed below what they want\n# TYPE ringcast_viewers_degraded gauge\nringcast_viewers_degraded {degraded}"
    );
    let name = "ringcast_viewer_loss_permille";
    let _ = writeln!(
        out,
        "# HELP {name} loss each viewer reports (worst section, thousandths)\n# TYPE {name} histogram"
    );
    for (c, b) in loss.iter().zip(LOSS_BUCKETS) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {loss_n}\n{name}_sum {loss_sum}\n{name}_count {loss_n}"
    );
    let name = "ringcast_viewer_rtt_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} round-trip time to each viewer\n# TYPE {name} histogram"
    );
    for (c, b) in rtt.iter().zip(RTT_BUCKETS) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {rtt_n}\n{name}_sum {rtt_sum}\n{name}_count {rtt_n}"
    );
}

pub async fn render(State(st): State<Arc<AppState>>) -> Response {
    let mut resp = render_text(&st).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

#[cfg(test)]
mod bwe_tests {
    use super::{ViewerSample, render_allocation, render_bwe};
    use std::time::Duration;

    #[test]
    fn allocation_families_aggregate_viewers_without_session_labels() {
        let v = |layer, degraded, loss_permille, rtt_ms: Option<u64>| ViewerSample {
            layer,
            degraded,
            loss_permille,
            rtt: rtt_ms.map(Duration::from_millis),
        };
        let mut out = String::new();
        render_allocation(
            &mut out,
            [
                v(Some(Some(0)), true, 30, Some(40)),
                v(Some(Some(0)), false, 0, Some(4)),
                v(Some(Some(2)), false, 0, None),
                v(Some(None), true, 600, Some(300)),
                v(None, false, 0, None),
            ]
            .into_iter(),
        );
        assert!(
            out.contains("ringcast_viewer_layer{layer=\"0\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("ringcast_viewer_layer{layer=\"1\"} 0\n"));
        assert!(out.contains("ringcast_viewer_layer{layer=\"2\"} 1\n"));
        assert!(out.contains("ringcast_viewer_layer{layer=\"paused\"} 1\n"));
        assert!(out.contains("ringcast_viewers_degraded 2\n"));
        assert!(out.contains("ringcast_viewer_loss_permille_bucket{le=\"0\"} 3\n"));
        assert!(out.contains("ringcast_viewer_loss_permille_bucket{le=\"50\"} 4\n"));
        assert!(out.contains("ringcast_viewer_loss_permille_bucket{le=\"+Inf\"} 5\n"));
        assert!(out.contains("ringcast_viewer_loss_permille_sum 630\n"));
        assert!(out.contains("ringcast_viewer_rtt_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(out.contains("ringcast_viewer_rtt_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(out.contains("ringcast_viewer_rtt_seconds_bucket{le=\"0.4\"} 3\n"));
        assert!(out.contains("ringcast_viewer_rtt_seconds_count 3\n"));
        assert!(!out.contains("session"), "no per-session labels");
    }

    #[test]
    fn estimate_histogram_counts_viewers_per_bucket_and_below_300_kbps() {
        let mut out = String::new();
        render_bwe(
            &mut out,
            [50_000u64, 250_000, 800_000, 30_000_000].into_iter(),
        );
        assert!(out.contains("ringcast_viewer_bwe_target_bps_bucket{le=\"100000\"} 1\n"));
        assert!(out.contains("ringcast_viewer_bwe_target_bps_bucket{le=\"300000\"} 2\n"));
        assert!(out.contains("ringcast_viewer_bwe_target_bps_bucket{le=\"1000000\"} 3\n"));
        assert!(out.contains("ringcast_viewer_bwe_target_bps_bucket{le=\"20000000\"} 3\n"));
        assert!(out.contains("ringcast_viewer_bwe_target_bps_bucket{le=\"+Inf\"} 4\n"));
        assert!(out.contains("ringcast_viewer_bwe_target_bps_count 4\n"));
        assert!(out.contains("ringcast_viewers_below_300kbps 2\n"));
    }
}
