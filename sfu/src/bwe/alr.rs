//! Application-limited region detection (libwebrtc `AlrDetector`): an interval budget filled at
//! 65 % of the estimate and drained by what is sent. When more than 80 % of the budget stays
//! unused the sender is application-limited (it sends far less than the path allows, so the
//! estimate is not being tested); below 50 % it is not any more.

use std::time::{Duration, Instant};

use crate::types::Bitrate;

/// Parameters of the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlrConfig {
    /// Share of the estimate the budget fills at.
    pub usage_ratio: f64,
    /// Budget level (share unused) that starts the region.
    pub start_level: f64,
    /// Budget level that ends it.
    pub stop_level: f64,
    /// Span of the budget.
    pub window: Duration,
}

impl Default for AlrConfig {
    fn default() -> Self {
        AlrConfig {
            usage_ratio: 0.65,
            start_level: 0.80,
            stop_level: 0.50,
            window: Duration::from_millis(500),
        }
    }
}

/// The detector. Fixed-size state.
#[derive(Debug, Clone)]
pub struct AlrDetector {
    cfg: AlrConfig,
    /// Budget fill rate, bit/s.
    rate_bps: f64,
    /// Unused budget, bytes (negative: overspent).
    remaining: f64,
    last_send: Option<Instant>,
    since: Option<Instant>,
}

impl AlrDetector {
    pub fn new(cfg: AlrConfig, estimate: Bitrate) -> Self {
        AlrDetector {
            rate_bps: cfg.usage_ratio * estimate.0 as f64,
            cfg,
            remaining: 0.0,
            last_send: None,
            since: None,
        }
    }

    fn max_bytes(&self) -> f64 {
        (self.rate_bps * self.cfg.window.as_secs_f64() / 8.0).max(1.0)
    }

    /// The estimate changed.
    pub fn set_estimate(&mut self, estimate: Bitrate) {
        self.rate_bps = self.cfg.usage_ratio * estimate.0 as f64;
        let m = self.max_bytes();
        self.remaining = self.remaining.clamp(-m, m);
    }

    /// Records `bytes` sent at `now`.
    pub fn on_bytes_sent(&mut self, now: Instant, bytes: usize) {
        let elapsed = self
            .last_send
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_send = Some(now);
        let m = self.max_bytes();
        self.remaining = (self.remaining - bytes as f64).max(-m);
        self.remaining = (self.remaining + self.rate_bps * elapsed.as_secs_f64() / 8.0).min(m);
        let level = self.remaining / m;
        if self.since.is_none() && level > self.cfg.start_level {
            self.since = Some(now);
        } else if self.since.is_some() && level < self.cfg.stop_level {
            self.since = None;
        }
    }

    /// Since when the sender has been application-limited, if it is.
    pub fn alr_since(&self) -> Option<Instant> {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_at(d: &mut AlrDetector, t0: Instant, from_ms: u64, to_ms: u64, rate_bps: u64) {
        // 1000-byte packets at `rate_bps`.
        let gap_us = 8_000_000_000 / rate_bps;
        let mut t = from_ms * 1000;
        while t < to_ms * 1000 {
            d.on_bytes_sent(t0 + Duration::from_micros(t), 1000);
            t += gap_us;
        }
    }

    #[test]
    fn sending_far_below_the_estimate_is_application_limited() {
        let t0 = Instant::now();
        let mut d = AlrDetector::new(AlrConfig::default(), Bitrate::kbps(2000));
        send_at(&mut d, t0, 0, 2000, 1_800_000);
        assert!(d.alr_since().is_none(), "at 90 % of the estimate");
        send_at(&mut d, t0, 2000, 4000, 300_000);
        assert!(d.alr_since().is_some(), "at 15 % of the estimate");
        send_at(&mut d, t0, 4000, 6000, 1_800_000);
        assert!(d.alr_since().is_none(), "back at 90 %");
    }
}
