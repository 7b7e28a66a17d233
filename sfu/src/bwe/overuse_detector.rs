//! Over-use detection with an adaptive threshold (draft-ietf-rmcat-gcc-02 §5.4 and §5.5, as in
//! libwebrtc's `TrendlineEstimator::Detect` and `UpdateThreshold`): the delay trend, scaled by
//! the number of samples and a gain, is compared against a threshold that follows it slowly
//! upward (k_up) and quickly downward (k_down), so that concurrent loss-based flows (TCP) do not
//! starve the delay-based one.

/// What the delay trend says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// Queues are stable.
    #[default]
    Normal,
    /// Queues are draining: the sender uses less than the path carries.
    Underusing,
    /// Queues are growing: the sender uses more than the path carries.
    Overusing,
}

/// Parameters of the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OveruseConfig {
    /// Multiplier of the trend before comparison (libwebrtc: 4).
    pub threshold_gain: f64,
    /// Threshold adaptation rate when the trend is above it (libwebrtc: 0.0087).
    pub k_up: f64,
    /// Threshold adaptation rate when the trend is below it (libwebrtc: 0.039).
    pub k_down: f64,
    /// Threshold at start, in ms (libwebrtc: 12.5).
    pub initial_threshold_ms: f64,
    /// Over-use must persist this long, in ms, before it is signalled (libwebrtc: 10).
    pub overuse_time_ms: f64,
}

impl Default for OveruseConfig {
    fn default() -> Self {
        OveruseConfig {
            threshold_gain: 4.0,
            k_up: 0.0087,
            k_down: 0.039,
            initial_threshold_ms: 12.5,
            overuse_time_ms: 10.0,
        }
    }
}

/// The trend is scaled by at most this many samples (libwebrtc `kMinNumDeltas`).
const MAX_SAMPLE_SCALE: u32 = 60;
/// A trend this far beyond the threshold (ms) is an outlier: the threshold does not follow it.
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// Largest time step of one threshold adaptation, ms.
const MAX_ADAPT_STEP_MS: f64 = 100.0;
const MIN_THRESHOLD_MS: f64 = 6.0;
const MAX_THRESHOLD_MS: f64 = 600.0;

/// The adaptive-threshold detector. Fixed-size state.
#[derive(Debug, Clone)]
pub struct OveruseDetector {
    cfg: OveruseConfig,
    threshold_ms: f64,
    last_update_ms: Option<f64>,
    /// How long the scaled trend has been above the threshold, ms (`None`: it is not).
    time_over_ms: Option<f64>,
    overuse_count: u32,
    prev_trend: f64,
    modified_trend: f64,
    state: BandwidthUsage,
}

impl OveruseDetector {
    /// A detector in the normal state.
    pub fn new(cfg: OveruseConfig) -> Self {
        OveruseDetector {
            threshold_ms: cfg.initial_threshold_ms,
            cfg,
            last_update_ms: None,
            time_over_ms: None,
            overuse_count: 0,
            prev_trend: 0.0,
            modified_trend: 0.0,
            state: BandwidthUsage::Normal,
        }
    }

    /// The current hypothesis.
    pub fn state(&self) -> BandwidthUsage {
        self.state
    }

    /// The current threshold, ms.
    pub fn threshold_ms(&self) -> f64 {
        self.threshold_ms
    }

    /// The last scaled trend compared against the threshold.
    pub fn modified_trend(&self) -> f64 {
        self.modified_trend
    }

    /// Feeds one trend estimate: `trend` is the delay slope (ms of queueing per ms), `samples`
    /// how many deltas it rests on, `send_delta_ms` the send-time delta of the group that
    /// produced it and `now_ms` its arrival time.
    pub fn detect(
        &mut self,
        trend: f64,
        samples: u32,
        send_delta_ms: f64,
        now_ms: f64,
    ) -> BandwidthUsage {
        if samples < 2 {
            return BandwidthUsage::Normal;
        }
        let modified = f64::from(samples.min(MAX_SAMPLE_SCALE)) * trend * self.cfg.threshold_gain;
        self.modified_trend = modified;
        if modified > self.threshold_ms {
            let t = match self.time_over_ms {
                // Assume the trend crossed halfway through the last group.
                None => send_delta_ms / 2.0,
                Some(t) => t + send_delta_ms,
            };
            self.time_over_ms = Some(t);
            self.overuse_count += 1;
            if t > self.cfg.overuse_time_ms && self.overuse_count > 1 && trend >= self.prev_trend {
                self.time_over_ms = Some(0.0);
                self.overuse_count = 0;
                self.state = BandwidthUsage::Overusing;
            }
        } else if modified < -self.threshold_ms {
            self.time_over_ms = None;
            self.overuse_count = 0;
            self.state = BandwidthUsage::Underusing;
        } else {
            self.time_over_ms = None;
            self.overuse_count = 0;
            self.state = BandwidthUsage::Normal;
        }
        self.prev_trend = trend;
        self.update_threshold(modified, now_ms);
        self.state
    }

    fn update_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_update_ms.get_or_insert(now_ms);
        if modified.abs() > self.threshold_ms + MAX_ADAPT_OFFSET_MS {
            // A spike (a route change, a paused sender): do not let the threshold follow it.
            self.last_update_ms = Some(now_ms);
            return;
        }
        let k = if modified.abs() < self.threshold_ms {
            self.cfg.k_down
        } else {
            self.cfg.k_up
        };
        let dt = (now_ms - last).clamp(0.0, MAX_ADAPT_STEP_MS);
        self.threshold_ms += k * (modified.abs() - self.threshold_ms) * dt;
        self.threshold_ms = self.threshold_ms.clamp(MIN_THRESHOLD_MS, MAX_THRESHOLD_MS);
        self.last_update_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sustained_positive_trend_signals_overuse_only_after_ten_milliseconds() {
        let mut d = OveruseDetector::new(OveruseConfig::default());
        // 60 samples × 0.1 × 4 = 24 ms > 12.5 ms threshold.
        assert_eq!(
            d.detect(0.1, 60, 5.0, 0.0),
            BandwidthUsage::Normal,
            "2.5 ms over"
        );
        assert_eq!(
            d.detect(0.1, 60, 5.0, 5.0),
            BandwidthUsage::Normal,
            "7.5 ms over"
        );
        assert_eq!(
            d.detect(0.1, 60, 5.0, 10.0),
            BandwidthUsage::Overusing,
            "12.5 ms over"
        );
    }

    #[test]
    fn negative_trend_signals_underuse_and_small_trend_normal() {
        let mut d = OveruseDetector::new(OveruseConfig::default());
        assert_eq!(d.detect(-0.1, 60, 5.0, 0.0), BandwidthUsage::Underusing);
        assert_eq!(d.detect(0.01, 60, 5.0, 5.0), BandwidthUsage::Normal);
    }

    #[test]
    fn threshold_rises_toward_a_persistent_trend_and_falls_back() {
        let mut d = OveruseDetector::new(OveruseConfig::default());
        // Scaled trend 20 ms: above the threshold but within the outlier margin.
        for i in 0..200 {
            d.detect(20.0 / 240.0, 60, 5.0, f64::from(i) * 5.0);
        }
        assert!(d.threshold_ms() > 18.0, "threshold {}", d.threshold_ms());
        for i in 200..400 {
            d.detect(0.0, 60, 5.0, f64::from(i) * 5.0);
        }
        assert!(
            (d.threshold_ms() - MIN_THRESHOLD_MS).abs() < 0.5,
            "threshold {}",
            d.threshold_ms()
        );
    }
}
