//! Probe result estimation (libwebrtc `ProbeBitrateEstimator`): from the feedback of one probe
//! cluster, the rate it was sent at and the rate it arrived at; the result is the smaller, and
//! when the path visibly throttled the burst (received below 90 % of sent) 95 % of the received
//! rate.

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
}

/// The estimator. Fixed-size state.
#[derive(Debug, Clone, Default)]
pub struct ProbeEstimator {
    slots: [Option<Aggregate>; CLUSTERS],
    last: Option<(ProbeId, Bitrate)>,
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
    ) -> Option<Bitrate> {
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
        a.total += size;
        a.packets += 1;
        let a = *a;
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
        let mut result = send_rate.min(recv_rate);
        if recv_rate < MIN_RATIO_FOR_UNSATURATED * send_rate {
            result = TARGET_UTILIZATION * recv_rate;
        }
        let r = Bitrate(result as u64);
        self.last = Some((a.cluster.id, r));
        Some(r)
    }

    /// The latest estimate since the last call, taken.
    pub fn take_last(&mut self) -> Option<Bitrate> {
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
        let r = r.expect("result").0 as f64;
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
        let r = r.expect("result").0 as f64;
        assert!((940_000.0..960_000.0).contains(&r), "{r}");
        assert!(e.take_last().is_some());
        assert!(e.take_last().is_none());
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
