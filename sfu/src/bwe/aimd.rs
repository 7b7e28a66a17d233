//! AIMD rate control of the delay-based estimate (draft-ietf-rmcat-gcc-02 §5.5, libwebrtc
//! `AimdRateControl`): the detector's hypothesis drives a Hold / Increase / Decrease state
//! machine. Increase is multiplicative (up to 8 % per second) far from the last congestion
//! point and additive (about one packet per response time) near it; decrease is to β of the
//! acknowledged rate: 0.9 at the known congestion point, 0.85 elsewhere (GCC: 0.8–0.95).

use std::time::{Duration, Instant};

use super::link_capacity::LinkCapacity;
use super::overuse_detector::BandwidthUsage;
use crate::types::Bitrate;

/// Parameters of the rate controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AimdConfig {
    pub min: Bitrate,
    pub max: Bitrate,
    /// Multiplicative decrease factor on over-use (0.85).
    pub beta: f64,
    /// The decrease factor when the acknowledged rate is within the link-capacity band (the
    /// over-use is the sawtooth's own, at a known congestion point: 0.9; GCC allows
    /// 0.8–0.95). A drop below the band — the path changed — gets `beta`.
    pub beta_near_capacity: f64,
    /// Multiplicative increase per second far from convergence (1.08).
    pub increase_per_second: f64,
}

impl Default for AimdConfig {
    fn default() -> Self {
        AimdConfig {
            min: Bitrate::kbps(30),
            max: Bitrate::kbps(50_000),
            beta: 0.85,
            beta_near_capacity: 0.9,
            increase_per_second: 1.08,
        }
    }
}

/// State of the rate controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateControlState {
    #[default]
    Hold,
    Increase,
    Decrease,
}

/// An acknowledged rate at least this share of the link capacity estimate is at the known
/// congestion point (the decrease is `beta_near_capacity`); below it the path changed.
const NEAR_CAPACITY: f64 = 0.9;
/// Least additive increase, bit/s per second.
const MIN_ADDITIVE_BPS_PER_S: f64 = 4000.0;
/// Least multiplicative increase step, bit/s.
const MIN_MULTIPLICATIVE_STEP_BPS: f64 = 1000.0;
/// Frame rate assumed to size the additive step (libwebrtc: 30).
const ASSUMED_FPS: f64 = 30.0;
/// Packet payload assumed to size the additive step, bits.
const ASSUMED_PACKET_BITS: f64 = 1200.0 * 8.0;
/// Added to the RTT to get the time one increase takes to show in feedback.
const RESPONSE_EXTRA: Duration = Duration::from_millis(100);

/// The AIMD controller. Fixed-size state.
#[derive(Debug, Clone)]
pub struct AimdRateControl {
    cfg: AimdConfig,
    current_bps: f64,
    state: RateControlState,
    link: LinkCapacity,
    rtt: Duration,
    last_change: Option<Instant>,
    last_acked: Option<Bitrate>,
}

impl AimdRateControl {
    /// A controller starting at `start`.
    pub fn new(cfg: AimdConfig, start: Bitrate) -> Self {
        AimdRateControl {
            current_bps: start.0.clamp(cfg.min.0, cfg.max.0) as f64,
            cfg,
            state: RateControlState::Hold,
            link: LinkCapacity::new(),
            rtt: Duration::from_millis(200),
            last_change: None,
            last_acked: None,
        }
    }

    /// The current estimate.
    pub fn estimate(&self) -> Bitrate {
        Bitrate(self.current_bps as u64)
    }

    pub fn state(&self) -> RateControlState {
        self.state
    }

    /// The link capacity estimate (the rate at recent over-uses).
    pub fn link_capacity(&self) -> Option<Bitrate> {
        self.link.estimate()
    }

    /// The round-trip time, which sets the additive step and the spacing of decreases.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Changes the bounds.
    pub fn set_bounds(&mut self, min: Bitrate, max: Bitrate) {
        self.cfg.min = min;
        self.cfg.max = max.max(min);
        self.current_bps = self.current_bps.clamp(min.0 as f64, self.cfg.max.0 as f64);
    }

    /// Sets the estimate outright (a probe result): the link capacity follows it.
    pub fn set_estimate(&mut self, now: Instant, rate: Bitrate) {
        self.current_bps = rate.0.clamp(self.cfg.min.0, self.cfg.max.0) as f64;
        self.link.on_probe(rate);
        self.last_change = Some(now);
    }

    /// Whether another decrease is allowed while over-use persists: once per RTT (10–200 ms),
    /// or at once when the acknowledged rate fell below half the estimate.
    pub fn time_to_reduce_further(&self, now: Instant, acked: Bitrate) -> bool {
        let interval = self
            .rtt
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        match self.last_change {
            Some(t) if now.saturating_duration_since(t) < interval => {
                (acked.0 as f64) < 0.5 * self.current_bps
            }
            _ => true,
        }
    }

    /// Applies the detector's hypothesis at `now` with the acknowledged rate `acked` (if known)
    /// and returns the new estimate.
    pub fn update(
        &mut self,
        now: Instant,
        usage: BandwidthUsage,
        acked: Option<Bitrate>,
    ) -> Bitrate {
        if acked.is_some() {
            self.last_acked = acked;
        }
        self.state = match (usage, self.state) {
            (BandwidthUsage::Normal, RateControlState::Hold) => {
                self.last_change = Some(now);
                RateControlState::Increase
            }
            (BandwidthUsage::Normal, s) => s,
            (BandwidthUsage::Overusing, _) => RateControlState::Decrease,
            (BandwidthUsage::Underusing, _) => RateControlState::Hold,
        };
        let current = self.current_bps;
        let mut new = current;
        match self.state {
            RateControlState::Hold => {}
            RateControlState::Increase => {
                if let (Some(a), Some(up)) = (self.last_acked, self.link.upper())
                    && a > up
                {
                    // Far above the last congestion point: the path changed.
                    self.link.reset();
                }
                let elapsed = self
                    .last_change
                    .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
                    .min(Duration::from_secs(1))
                    .as_secs_f64();
                let step = if self.link.estimate().is_some() {
                    self.additive_rate_bps_per_s() * elapsed
                } else {
                    let alpha = self.cfg.increase_per_second.powf(elapsed);
                    (current * (alpha - 1.0)).max(MIN_MULTIPLICATIVE_STEP_BPS)
                };
                new = current + step;
                self.last_change = Some(now);
            }
            RateControlState::Decrease => {
                let acked_bps = self.last_acked.map_or(current, |a| a.0 as f64);
                let near_capacity = self.link.estimate().is_some_and(|e| {
                    self.last_acked
                        .is_some_and(|a| a.0 as f64 >= NEAR_CAPACITY * e.0 as f64)
                });
                let beta = if near_capacity {
                    self.cfg.beta_near_capacity
                } else {
                    self.cfg.beta
                };
                let mut decreased = beta * acked_bps;
                if decreased > current
                    && let Some(l) = self.link.estimate()
                {
                    decreased = beta * l.0 as f64;
                }
                if decreased < current {
                    new = decreased;
                }
                if let Some(a) = self.last_acked {
                    if a < self.link.lower() {
                        self.link.reset();
                    }
                    self.link.on_overuse(a);
                }
                self.state = RateControlState::Hold;
                self.last_change = Some(now);
            }
        }
        if new > current
            && let Some(a) = self.last_acked
        {
            // Never run far ahead of what the path demonstrably carries.
            let limit = 1.5 * a.0 as f64 + 10_000.0;
            if new > limit {
                new = current.max(limit);
            }
        }
        self.current_bps = new.clamp(self.cfg.min.0 as f64, self.cfg.max.0 as f64);
        self.estimate()
    }

    /// Additive increase rate: one average packet per response time (RTT + 100 ms).
    fn additive_rate_bps_per_s(&self) -> f64 {
        let bits_per_frame = self.current_bps / ASSUMED_FPS;
        let packets_per_frame = (bits_per_frame / ASSUMED_PACKET_BITS).ceil().max(1.0);
        let avg_packet_bits = bits_per_frame / packets_per_frame;
        let response_s = (self.rtt + RESPONSE_EXTRA).as_secs_f64();
        (avg_packet_bits / response_s).max(MIN_ADDITIVE_BPS_PER_S)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn overuse_decreases_to_085_of_acknowledged_rate() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(AimdConfig::default(), Bitrate::kbps(2000));
        let r = a.update(t0, BandwidthUsage::Overusing, Some(Bitrate::kbps(1000)));
        assert_eq!(r, Bitrate::kbps(850));
        assert_eq!(a.state(), RateControlState::Hold);
        assert_eq!(a.link_capacity(), Some(Bitrate::kbps(1000)));
    }

    #[test]
    fn an_overuse_at_the_known_congestion_point_decreases_to_09_and_a_drop_to_085() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(AimdConfig::default(), Bitrate::kbps(2000));
        a.set_rtt(Duration::from_millis(50));
        a.update(t0, BandwidthUsage::Overusing, Some(Bitrate::kbps(1000)));
        assert_eq!(
            a.estimate(),
            Bitrate::kbps(850),
            "no congestion point known yet"
        );
        // Back up to 1.05 Mbit/s; the next over-use acknowledges 980 kbit/s: the sawtooth's own.
        a.set_estimate(ms(t0, 1000), Bitrate::kbps(1050));
        a.update(
            ms(t0, 2000),
            BandwidthUsage::Overusing,
            Some(Bitrate::kbps(980)),
        );
        assert_eq!(a.estimate(), Bitrate::kbps(882), "0.9 × 980");
        // The path drops: 600 kbit/s acknowledged, far below the congestion point.
        a.set_estimate(ms(t0, 3000), Bitrate::kbps(1000));
        a.update(
            ms(t0, 4000),
            BandwidthUsage::Overusing,
            Some(Bitrate::kbps(600)),
        );
        assert_eq!(a.estimate(), Bitrate::kbps(510), "0.85 × 600");
    }

    #[test]
    fn far_from_convergence_increase_is_eight_percent_per_second() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(AimdConfig::default(), Bitrate::kbps(1000));
        for i in 0..=10 {
            a.update(ms(t0, i * 100), BandwidthUsage::Normal, None);
        }
        let r = a.estimate().0 as f64;
        assert!((1_075_000.0..1_085_000.0).contains(&r), "after 1 s: {r}");
    }

    #[test]
    fn near_convergence_increase_is_additive_and_slow() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(AimdConfig::default(), Bitrate::kbps(1000));
        a.set_rtt(Duration::from_millis(100));
        a.update(t0, BandwidthUsage::Overusing, Some(Bitrate::kbps(1000)));
        // Now at 850 kbit/s with a capacity estimate of 1000 kbit/s.
        for i in 1..=11 {
            a.update(
                ms(t0, i * 100),
                BandwidthUsage::Normal,
                Some(Bitrate::kbps(850)),
            );
        }
        let r = a.estimate().0 as f64;
        // About one 7 kbit packet per 200 ms: ~35 kbit/s per second.
        assert!((870_000.0..900_000.0).contains(&r), "after 1 s: {r}");
    }

    #[test]
    fn increase_is_capped_by_the_acknowledged_rate() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(AimdConfig::default(), Bitrate::kbps(1000));
        for i in 0..100 {
            a.update(
                ms(t0, i * 100),
                BandwidthUsage::Normal,
                Some(Bitrate::kbps(200)),
            );
        }
        assert!(
            a.estimate() <= Bitrate::kbps(1000),
            "never grows past 1.5 × acked"
        );
    }

    #[test]
    fn underuse_holds_the_rate() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(AimdConfig::default(), Bitrate::kbps(1000));
        a.update(t0, BandwidthUsage::Underusing, None);
        let r = a.update(ms(t0, 500), BandwidthUsage::Underusing, None);
        assert_eq!(r, Bitrate::kbps(1000));
        assert_eq!(a.state(), RateControlState::Hold);
    }
}
