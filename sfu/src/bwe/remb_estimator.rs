//! Receive-side estimation for publishers that negotiated abs-send-time but not transport-cc
//! (draft-ietf-rmcat-gcc-02 §5 run at the receiver, as libwebrtc's
//! `RemoteBitrateEstimatorAbsSendTime`), reported with REMB (draft-alvestrand-rmcat-remb-03):
//! the 24-bit 6.18 fixed-point send times and the arrival times of the publisher's packets feed
//! the same inter-arrival grouping, trendline filter and AIMD controller as the send side, with
//! the incoming bitrate (1 s window) as the acknowledged rate.
//!
//! A REMB is due every `interval` (1 s) and at once when the estimate falls 3 % or more below
//! the last one sent. Nothing is reported until the estimate is initialised: 5 s after the
//! first packet, or at the first over-use. Fixed-size state, no allocation.

use std::time::{Duration, Instant};

use super::aimd::{AimdConfig, AimdRateControl};
use super::clock_unwrap::Unwrap24;
use super::inter_arrival::InterArrival;
use super::overuse_detector::BandwidthUsage;
use super::trendline::{Trendline, TrendlineConfig};
use crate::types::Bitrate;

/// Parameters of a [`RembEstimator`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RembConfig {
    pub min: Bitrate,
    pub max: Bitrate,
    /// Spacing of REMB messages while the estimate holds or rises.
    pub interval: Duration,
    /// A decrease to below this fraction of the last value sent is sent at once.
    pub immediate_below: f64,
    /// Time from the first packet to the first estimate (without over-use).
    pub init_time: Duration,
    /// No REMB once the publisher has been silent this long.
    pub stream_timeout: Duration,
    pub trendline: TrendlineConfig,
    pub aimd: AimdConfig,
}

impl Default for RembConfig {
    fn default() -> Self {
        RembConfig {
            min: Bitrate::kbps(30),
            max: Bitrate::kbps(20_000),
            interval: Duration::from_secs(1),
            immediate_below: 0.97,
            init_time: Duration::from_secs(5),
            stream_timeout: Duration::from_secs(2),
            trendline: TrendlineConfig::default(),
            aimd: AimdConfig::default(),
        }
    }
}

/// Ticks of the abs-send-time clock per second (2^18).
const ABS_TICKS_PER_S: i64 = 1 << 18;
/// Buckets of the incoming-rate window and their span.
const RATE_BUCKETS: usize = 20;
const RATE_BUCKET: Duration = Duration::from_millis(50);

/// Bytes received over the last second, in 50 ms buckets.
#[derive(Debug, Clone, Copy)]
struct RateWindow {
    /// (bucket number, bytes) per slot.
    buckets: [(u64, u64); RATE_BUCKETS],
}

impl RateWindow {
    fn bucket_of(epoch: Instant, now: Instant) -> u64 {
        (now.saturating_duration_since(epoch).as_millis() / RATE_BUCKET.as_millis()) as u64
    }

    fn add(&mut self, n: u64, bytes: usize) {
        let slot = &mut self.buckets[(n % RATE_BUCKETS as u64) as usize];
        if slot.0 != n {
            *slot = (n, 0);
        }
        slot.1 += bytes as u64;
    }

    /// The rate over the window ending in bucket `n`.
    fn rate(&self, n: u64) -> Bitrate {
        let oldest = n.saturating_sub(RATE_BUCKETS as u64 - 1);
        let bytes: u64 = self
            .buckets
            .iter()
            .filter(|(b, _)| *b >= oldest && *b <= n)
            .map(|(_, bytes)| bytes)
            .sum();
        let window = RATE_BUCKET.as_secs_f64() * RATE_BUCKETS as f64;
        Bitrate((bytes as f64 * 8.0 / window) as u64)
    }
}

/// The receive-side estimator of one publisher transport.
#[derive(Debug, Clone)]
pub struct RembEstimator {
    cfg: RembConfig,
    epoch: Option<Instant>,
    last_packet: Option<Instant>,
    /// The publisher's abs-send-time clock.
    send_clock: Unwrap24,
    inter_arrival: InterArrival,
    trendline: Trendline,
    aimd: AimdRateControl,
    initialized: bool,
    incoming: RateWindow,
    last_sent: Option<(Instant, Bitrate)>,
    usage: BandwidthUsage,
}

impl RembEstimator {
    pub fn new(cfg: RembConfig) -> Self {
        let aimd_cfg = AimdConfig {
            min: cfg.min,
            max: cfg.max,
            ..cfg.aimd
        };
        RembEstimator {
            trendline: Trendline::new(cfg.trendline),
            aimd: AimdRateControl::new(aimd_cfg, cfg.min),
            cfg,
            epoch: None,
            last_packet: None,
            send_clock: Unwrap24::new(1_000_000, ABS_TICKS_PER_S),
            inter_arrival: InterArrival::new(),
            initialized: false,
            incoming: RateWindow {
                buckets: [(u64::MAX, 0); RATE_BUCKETS],
            },
            last_sent: None,
            usage: BandwidthUsage::Normal,
        }
    }

    /// The estimate, once initialised.
    pub fn estimate(&self) -> Option<Bitrate> {
        self.initialized.then(|| self.aimd.estimate())
    }

    /// The detector's hypothesis.
    pub fn usage(&self) -> BandwidthUsage {
        self.usage
    }

    /// The rate received over the last second.
    pub fn incoming_rate(&self, now: Instant) -> Bitrate {
        match self.epoch {
            Some(e) => self.incoming.rate(RateWindow::bucket_of(e, now)),
            None => Bitrate::ZERO,
        }
    }

    /// The round-trip time to the publisher (spaces decreases, sizes the additive step).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.aimd.set_rtt(rtt);
    }

    /// A packet of `size` bytes arrived at `now` carrying abs-send-time `abs_send_time` (the
    /// 24-bit value).
    pub fn on_packet(&mut self, now: Instant, abs_send_time: u32, size: usize) {
        let epoch = *self.epoch.get_or_insert(now);
        self.last_packet = Some(now);
        let bucket = RateWindow::bucket_of(epoch, now);
        self.incoming.add(bucket, size);
        let arrival_us =
            i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX / 4);
        let (send_us, reanchored) = self.send_clock.unwrap(abs_send_time, arrival_us);
        if reanchored {
            self.inter_arrival.reset();
        }
        let Some(d) = self.inter_arrival.on_packet(send_us, arrival_us, size) else {
            return;
        };
        self.usage = self.trendline.update(&d);
        let incoming = self.incoming.rate(bucket);
        if !self.initialized {
            let waited = now.saturating_duration_since(epoch) >= self.cfg.init_time;
            if (waited || self.usage == BandwidthUsage::Overusing) && incoming.0 > 0 {
                self.aimd.set_estimate(now, incoming);
                self.initialized = true;
            } else {
                return;
            }
        }
        match self.usage {
            BandwidthUsage::Overusing => {
                if self.aimd.time_to_reduce_further(now, incoming) {
                    self.aimd.update(now, self.usage, Some(incoming));
                }
            }
            _ => {
                self.aimd.update(now, self.usage, Some(incoming));
            }
        }
    }

    fn active(&self, now: Instant) -> bool {
        self.initialized
            && self
                .last_packet
                .is_some_and(|t| now.saturating_duration_since(t) < self.cfg.stream_timeout)
    }

    /// When the next REMB is due (`None`: nothing to report).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let last_packet = self.last_packet?;
        if !self.initialized {
            return None;
        }
        let due = match self.last_sent {
            None => last_packet,
            Some((at, value)) => {
                if (self.aimd.estimate().0 as f64) < self.cfg.immediate_below * value.0 as f64 {
                    last_packet.max(at)
                } else {
                    at + self.cfg.interval
                }
            }
        };
        (due < last_packet + self.cfg.stream_timeout).then_some(due)
    }

    /// The bit rate to report in a REMB now, if one is due.
    pub fn poll_remb(&mut self, now: Instant) -> Option<Bitrate> {
        if !self.active(now) || self.poll_timeout().is_none_or(|t| now < t) {
            return None;
        }
        let e = self.aimd.estimate();
        self.last_sent = Some((now, e));
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::rtp::AbsSendTime;

    /// Feeds 1000-byte packets every `gap_ms` for `ms` milliseconds; each arrives `delay_ms`
    /// plus `growth` × (time since `from`) after it was sent. Returns the REMBs given.
    #[allow(clippy::too_many_arguments)]
    fn feed(
        e: &mut RembEstimator,
        t0: Instant,
        from_ms: u64,
        ms: u64,
        gap_ms: u64,
        growth: f64,
        out: &mut Vec<(u64, Bitrate)>,
    ) {
        let mut t = from_ms;
        while t < from_ms + ms {
            let extra = ((t - from_ms) as f64 * growth) as u64;
            let arrival = t0 + Duration::from_millis(t + 20 + extra);
            let abs = AbsSendTime::from_micros(t * 1000 + 63_000_000).0; // wraps at 1 s
            e.on_packet(arrival, abs, 1000);
            if let Some(r) = e.poll_remb(arrival) {
                out.push((t + 20 + extra, r));
            }
            t += gap_ms;
        }
    }

    proptest::proptest! {
        /// Arbitrary send times, gaps and sizes never panic.
        #[test]
        fn arbitrary_packets_never_panic(
            packets in proptest::collection::vec(
                (0u64..5_000_000, proptest::prelude::any::<u32>(), 0usize..1500), 1..400),
        ) {
            let t0 = Instant::now();
            let mut e = RembEstimator::new(RembConfig::default());
            let mut now = t0;
            for (gap_us, abs, size) in packets {
                now += Duration::from_micros(gap_us);
                e.on_packet(now, abs, size);
                let _ = e.poll_remb(now);
                let _ = e.poll_timeout();
            }
        }
    }

    #[test]
    fn nothing_is_reported_before_initialisation() {
        let t0 = Instant::now();
        let mut e = RembEstimator::new(RembConfig::default());
        let mut out = Vec::new();
        feed(&mut e, t0, 0, 4000, 8, 0.0, &mut out);
        assert!(out.is_empty());
        assert_eq!(e.estimate(), None);
    }

    #[test]
    fn steady_stream_gets_a_remb_every_second_near_its_rate() {
        let t0 = Instant::now();
        let mut e = RembEstimator::new(RembConfig::default());
        let mut out = Vec::new();
        // 1 Mbit/s for 10 s across an abs-send-time wrap.
        feed(&mut e, t0, 0, 10_000, 8, 0.0, &mut out);
        assert!((4..=6).contains(&out.len()), "{} REMBs", out.len());
        for w in out.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!((1000..=1010).contains(&gap), "gap {gap} ms");
            assert!(w[1].1 >= w[0].1, "no decrease without over-use");
        }
        let first = out[0].1.0 as f64;
        assert!((900_000.0..1_100_000.0).contains(&first), "first {first}");
    }

    #[test]
    fn growing_delay_sends_a_lower_remb_at_once() {
        let t0 = Instant::now();
        let mut e = RembEstimator::new(RembConfig::default());
        let mut out = Vec::new();
        feed(&mut e, t0, 0, 6000, 8, 0.0, &mut out);
        let before = out.last().expect("a REMB").1;
        let n = out.len();
        // Queueing delay grows by 10 % of elapsed time: over-use.
        feed(&mut e, t0, 6000, 2000, 8, 0.1, &mut out);
        let after = &out[n..];
        let first_lower = after
            .iter()
            .find(|(_, r)| (r.0 as f64) < 0.97 * before.0 as f64)
            .expect("a lower REMB");
        assert!(
            first_lower.0 < 6000 + 1000,
            "lower REMB at {} ms, before the 1 s interval",
            first_lower.0
        );
        assert!(e.estimate().expect("estimate") < before);
    }
}
