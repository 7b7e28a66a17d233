//! Probe result estimation (libwebrtc `ProbeBitrateEstimator`): from the feedback of one probe
//! cluster, the rate it was sent at and the rate it arrived at; the result is the smaller, and
//! when the path visibly throttled the burst (received below 90 % of sent) 95 % of the received
//! rate.
//!
//! One addition to libwebrtc: a second, steady reading of the cluster. When the first half of a
//! cluster (by arrival) came in at least twice as fast as the later half, the steady reading
//! takes the later half's rate as the receive rate. A token-bucket shaper (Linux tbf, a cable modem) passes the first
//! bucketful of a cluster at line rate and only then its rate: a 15 ms cluster of small padding
//! packets into a 600 kbit/s bucket with a 1.6 kB burst arrives at 1.1 Mbit/s overall, at
//! 600 kbit/s from its middle on. The estimator keeps libwebrtc's reading (random jitter also
//! bunches arrivals, and reading it steadily would pull the estimate under capacity); the
//! allocator steps up on the steady one.

use super::probe::{ProbeCluster, ProbeId};
use crate::types::Bitrate;

/// Clusters tracked at once.
const CLUSTERS: usize = 8;
/// Share of a cluster's packets and bytes that must be acknowledged before it is judged.
const MIN_RECEIVED_SHARE: f64 = 0.8;
/// Longest plausible send or receive span of a cluster, µs.
const MAX_INTERVAL_US: i64 = 1_000_000;
/// A receive rate this many times the send rate is a measurement error.
const MAX_VALID_RATIO: f64 = 2.0;
const MIN_RATIO_FOR_UNSATURATED: f64 = 0.9;
const TARGET_UTILIZATION: f64 = 0.95;
/// Clusters older than this (µs since their last packet was sent) are forgotten.
const CLUSTER_HISTORY_US: i64 = 1_000_000;
/// Arrivals remembered per cluster for the later half's rate (later ones are not).
const ARRIVALS: usize = 32;
/// Least arrivals for the later half's rate to count.
const MIN_ARRIVALS_FOR_TAIL: usize = 6;

#[derive(Debug, Clone, Copy)]
struct Aggregate {
    cluster: ProbeCluster,
    first_send_us: i64,
    last_send_us: i64,
    first_recv_us: i64,
    last_recv_us: i64,
    size_last_send: usize,
    size_first_recv: usize,
    total: usize,
    packets: u32,
    /// Receive time (µs) and size of the first [`ARRIVALS`] packets acknowledged.
    arrivals: [(i64, u32); ARRIVALS],
}

/// The estimator. Fixed-size state.
#[derive(Debug, Clone, Default)]
pub struct ProbeEstimator {
    slots: [Option<Aggregate>; CLUSTERS],
    last: Option<(ProbeId, ProbeResult)>,
}

/// What one probe cluster measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// libwebrtc's result: what the estimator takes.
    pub rate: Bitrate,
    /// The same judged on the later half of the cluster when its first half came in a burst
    /// (see the module's description): what a step up may rely on.
    pub steady: Bitrate,
}

impl ProbeEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an acknowledged packet of `cluster`; returns the cluster's estimate when it has
    /// enough packets to be judged and the measurement is plausible.
    pub fn on_packet(
        &mut self,
        cluster: &ProbeCluster,
        send_us: i64,
        recv_us: i64,
        size: usize,
    ) -> Option<ProbeResult> {
        self.forget_older_than(send_us - CLUSTER_HISTORY_US);
        let idx = match self
            .slots
            .iter()
            .position(|s| s.is_some_and(|a| a.cluster.id == cluster.id))
        {
            Some(i) => i,
            None => {
                // A free slot, or the one with the oldest cluster.
                let i = self
                    .slots
                    .iter()
                    .position(Option::is_none)
                    .or_else(|| {
                        (0..CLUSTERS).min_by_key(|&i| self.slots[i].map_or(0, |a| a.last_send_us))
                    })
                    .unwrap_or(0);
                self.slots[i] = Some(Aggregate {
                    cluster: *cluster,
                    first_send_us: send_us,
                    last_send_us: send_us,
                    first_recv_us: recv_us,
                    last_recv_us: recv_us,
                    size_last_send: size,
                    size_first_recv: size,
                    total: 0,
                    packets: 0,
                    arrivals: [(0, 0); ARRIVALS],
                });
                i
            }
        };
        let a = self.slots[idx].as_mut()?;
        if send_us < a.first_send_us {
            a.first_send_us = send_us;
        }
        if send_us >= a.last_send_us {
            a.last_send_us = send_us;
            a.size_last_send = size;
        }
        if recv_us < a.first_recv_us {
            a.first_recv_us = recv_us;
            a.size_first_recv = size;
        }
        a.last_recv_us = a.last_recv_us.max(recv_us);
        if let Some(slot) = a.arrivals.get_mut(a.packets as usize) {
            *slot = (recv_us, size as u32);
        }
        a.total += size;
        a.packets += 1;
        let a = &*a;
        if f64::from(a.packets) < MIN_RECEIVED_SHARE * f64::from(a.cluster.min_packets)
            || (a.total as f64) < MIN_RECEIVED_SHARE * a.cluster.min_bytes as f64
        {
            return None;
        }
        let send_span = a.last_send_us - a.first_send_us;
        let recv_span = a.last_recv_us - a.first_recv_us;
        if send_span <= 0
            || send_span > MAX_INTERVAL_US
            || recv_span <= 0
            || recv_span > MAX_INTERVAL_US
        {
            return None;
        }
        // The last packet sent and the first received took no time to send or receive.
        let send_rate = (a.total - a.size_last_send) as f64 * 8e6 / send_span as f64;
        let recv_rate = (a.total - a.size_first_recv) as f64 * 8e6 / recv_span as f64;
        if recv_rate > MAX_VALID_RATIO * send_rate {
            return None;
        }
        let judge = |recv_rate: f64| {
            let result = if recv_rate < MIN_RATIO_FOR_UNSATURATED * send_rate {
                TARGET_UTILIZATION * recv_rate
            } else {
                send_rate.min(recv_rate)
            };
            Bitrate(result as u64)
        };
        let rate = judge(recv_rate);
        let steady = later_half_rate(a).map_or(rate, |t| judge(t.min(recv_rate)).min(rate));
        let r = ProbeResult { rate, steady };
        self.last = Some((a.cluster.id, r));
        Some(r)
    }

    /// The latest result since the last call, taken.
    pub fn take_last(&mut self) -> Option<ProbeResult> {
        self.last.take().map(|(_, r)| r)
    }

    fn forget_older_than(&mut self, send_us: i64) {
        for s in &mut self.slots {
            if s.is_some_and(|a| a.last_send_us < send_us) {
                *s = None;
            }
        }
    }
}

/// The receive rate of the later half of a cluster's remembered arrivals (by receive time),
/// when its first half came in at least twice as fast (a shaper's burst; jitter alone spreads
/// both halves alike): the bytes after the middle arrival over the time from it to the last.
fn later_half_rate(a: &Aggregate) -> Option<f64> {
    let n = (a.packets as usize).min(ARRIVALS);
    if n < MIN_ARRIVALS_FOR_TAIL {
        return None;
    }
    let mut arr = a.arrivals;
    let arr = &mut arr[..n];
    arr.sort_unstable_by_key(|&(t, _)| t);
    let mid = n / 2;
    let bytes = |r: &[(i64, u32)]| r.iter().map(|&(_, s)| s as f64).sum::<f64>();
    let (head_span, tail_span) = (arr[mid].0 - arr[0].0, arr[n - 1].0 - arr[mid].0);
    let (head_bytes, tail_bytes) = (bytes(&arr[1..=mid]), bytes(&arr[mid + 1..]));
    if tail_span <= 0 || head_bytes * tail_span as f64 <= 2.0 * tail_bytes * head_span as f64 {
        return None;
    }
    Some(tail_bytes * 8e6 / tail_span as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(rate: u64) -> ProbeCluster {
        ProbeCluster {
            id: ProbeId(1),
            rate: Bitrate(rate),
            min_packets: 5,
            min_bytes: (rate as usize * 15 / 1000) / 8,
        }
    }

    #[test]
    fn unthrottled_probe_reports_the_send_rate() {
        let c = cluster(2_000_000);
        let mut e = ProbeEstimator::new();
        let mut r = None;
        // 1000-byte packets every 4 ms: 2 Mbit/s, received with the same spacing.
        for i in 0..6 {
            r = e.on_packet(&c, i * 4000, 50_000 + i * 4000, 1000).or(r);
        }
        let r = r.expect("result").rate.0 as f64;
        assert!((1_990_000.0..2_010_000.0).contains(&r), "{r}");
    }

    #[test]
    fn throttled_probe_reports_95_percent_of_the_receive_rate() {
        let c = cluster(2_000_000);
        let mut e = ProbeEstimator::new();
        let mut r = None;
        // Sent at 2 Mbit/s, arrives at 1 Mbit/s (8 ms apart).
        for i in 0..6 {
            r = e.on_packet(&c, i * 4000, 50_000 + i * 8000, 1000).or(r);
        }
        let r = r.expect("result").rate.0 as f64;
        assert!((940_000.0..960_000.0).contains(&r), "{r}");
        assert!(e.take_last().is_some());
        assert!(e.take_last().is_none());
    }

    #[test]
    fn a_token_bucket_burst_does_not_inflate_the_steady_reading() {
        // 10 padding packets of 320 bytes sent over 15 ms (1.5 Mbit/s) into a 600 kbit/s
        // bucket with a 1.6 kB burst: five pass at once, the rest 4.3 ms apart. The whole
        // cluster arrives at 1.1 Mbit/s; the path carries 600 kbit/s.
        let c = ProbeCluster {
            id: ProbeId(1),
            rate: Bitrate(1_500_000),
            min_packets: 5,
            min_bytes: 2800,
        };
        let mut e = ProbeEstimator::new();
        let mut r = None;
        for i in 0..10i64 {
            let recv = 50_000 + i * 10 + (i - 4).max(0) * 4_267;
            r = e.on_packet(&c, i * 1_667, recv, 320).or(r);
        }
        let r = r.expect("result");
        let (rate, steady) = (r.rate.0 as f64, r.steady.0 as f64);
        assert!((540_000.0..640_000.0).contains(&steady), "{steady}");
        assert!(
            rate > 1_000_000.0,
            "libwebrtc's reading keeps the burst: {rate}"
        );
    }

    #[test]
    fn jitter_alone_leaves_the_steady_reading_at_the_result() {
        let c = cluster(2_000_000);
        let mut e = ProbeEstimator::new();
        let mut r = None;
        // Sent at 2 Mbit/s, arrives at 1 Mbit/s with a few hundred µs of jitter.
        for i in 0..10i64 {
            let jitter = [0, 300, 100, 400, 0, 200, 350, 50, 250, 150][i as usize];
            r = e
                .on_packet(&c, i * 4000, 50_000 + i * 8000 + jitter, 1000)
                .or(r);
        }
        let r = r.expect("result");
        assert_eq!(r.steady, r.rate);
    }

    #[test]
    fn too_few_packets_give_no_result() {
        let c = cluster(2_000_000);
        let mut e = ProbeEstimator::new();
        for i in 0..3 {
            assert!(e.on_packet(&c, i * 4000, i * 4000, 1000).is_none());
        }
    }
}
