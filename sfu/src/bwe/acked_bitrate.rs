//! Acknowledged bitrate (libwebrtc `AcknowledgedBitrateEstimator` / `BitrateEstimator`): the
//! rate at which the receiver got packets, measured over arrival-time windows (500 ms for the
//! first sample, 150 ms after) and smoothed by a Bayesian update whose sample variance grows
//! with the sample's distance from the estimate, so outliers move it little.

use crate::types::Bitrate;

/// Parameters of the estimator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AckedBitrateConfig {
    /// Window of the first sample, ms.
    pub initial_window_ms: i64,
    /// Window of later samples, ms.
    pub window_ms: i64,
    /// Scale of a sample's uncertainty.
    pub uncertainty_scale: f64,
    /// Scale while the sender is application-limited (samples say less about the path).
    pub uncertainty_scale_in_alr: f64,
}

impl Default for AckedBitrateConfig {
    fn default() -> Self {
        AckedBitrateConfig {
            initial_window_ms: 500,
            window_ms: 150,
            uncertainty_scale: 10.0,
            uncertainty_scale_in_alr: 20.0,
        }
    }
}

/// Variance added per update (the estimate drifts).
const VARIANCE_INCREASE: f64 = 5.0;
const INITIAL_VARIANCE: f64 = 50.0;

/// The estimator. Fixed-size state.
#[derive(Debug, Clone)]
pub struct AckedBitrate {
    cfg: AckedBitrateConfig,
    sum_bytes: i64,
    window_elapsed_ms: i64,
    prev_ms: Option<i64>,
    estimate_kbps: Option<f64>,
    variance: f64,
}

impl AckedBitrate {
    pub fn new(cfg: AckedBitrateConfig) -> Self {
        AckedBitrate {
            cfg,
            sum_bytes: 0,
            window_elapsed_ms: 0,
            prev_ms: None,
            estimate_kbps: None,
            variance: INITIAL_VARIANCE,
        }
    }

    /// The estimate, once one window has been measured.
    pub fn estimate(&self) -> Option<Bitrate> {
        self.estimate_kbps.map(|k| Bitrate((k * 1000.0) as u64))
    }

    /// Makes the estimate follow the next samples quickly (after ALR ends or a probe).
    pub fn expect_fast_change(&mut self) {
        self.variance += 200.0;
    }

    /// Adds one acknowledged packet that arrived at `arrival_ms` (receiver clock).
    pub fn on_packet(&mut self, arrival_ms: i64, bytes: usize, in_alr: bool) {
        let window = if self.estimate_kbps.is_none() {
            self.cfg.initial_window_ms
        } else {
            self.cfg.window_ms
        };
        let Some(sample) = self.update_window(arrival_ms, bytes as i64, window) else {
            return;
        };
        let Some(est) = self.estimate_kbps else {
            self.estimate_kbps = Some(sample);
            return;
        };
        let scale = if in_alr {
            self.cfg.uncertainty_scale_in_alr
        } else {
            self.cfg.uncertainty_scale
        };
        let uncertainty = scale * (est - sample).abs() / est.max(1.0);
        let sample_var = uncertainty * uncertainty;
        let pred_var = self.variance + VARIANCE_INCREASE;
        let new = if sample_var + pred_var > 0.0 {
            (sample_var * est + pred_var * sample) / (sample_var + pred_var)
        } else {
            sample
        };
        self.estimate_kbps = Some(new.max(0.0));
        self.variance = if sample_var + pred_var > 0.0 {
            sample_var * pred_var / (sample_var + pred_var)
        } else {
            0.0
        };
    }

    /// Accumulates bytes; returns a rate sample (kbit/s) when a window completes.
    fn update_window(&mut self, now_ms: i64, bytes: i64, window_ms: i64) -> Option<f64> {
        if self.prev_ms.is_some_and(|p| now_ms < p) {
            // Arrivals went back in time (reordering across feedback): restart the window.
            self.prev_ms = None;
            self.sum_bytes = 0;
            self.window_elapsed_ms = 0;
        }
        if let Some(p) = self.prev_ms {
            let gap = now_ms - p;
            self.window_elapsed_ms += gap;
            if gap > window_ms {
                // A silence longer than a window: it says nothing about the path.
                self.sum_bytes = 0;
                self.window_elapsed_ms %= window_ms;
            }
        }
        self.prev_ms = Some(now_ms);
        let mut sample = None;
        if self.window_elapsed_ms >= window_ms {
            sample = Some(8.0 * self.sum_bytes as f64 / window_ms as f64);
            self.window_elapsed_ms -= window_ms;
            self.sum_bytes = 0;
        }
        self.sum_bytes += bytes;
        sample
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_arrivals_give_their_rate() {
        let mut e = AckedBitrate::new(AckedBitrateConfig::default());
        // 1000-byte packets every 8 ms: 1 Mbit/s.
        for i in 0..500 {
            e.on_packet(i * 8, 1000, false);
        }
        let r = e.estimate().expect("estimate").0 as f64;
        assert!((950_000.0..1_050_000.0).contains(&r), "rate {r}");
    }

    #[test]
    fn estimate_follows_a_rate_change_within_seconds() {
        let mut e = AckedBitrate::new(AckedBitrateConfig::default());
        let mut t = 0;
        for _ in 0..250 {
            e.on_packet(t, 1000, false);
            t += 8;
        }
        // Halve the rate for 2 s.
        for _ in 0..125 {
            e.on_packet(t, 1000, false);
            t += 16;
        }
        let r = e.estimate().expect("estimate").0 as f64;
        assert!((450_000.0..600_000.0).contains(&r), "rate {r}");
    }
}
