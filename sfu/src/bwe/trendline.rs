//! Trendline filter (draft-ietf-rmcat-gcc-02 §5.3 in the form libwebrtc's `TrendlineEstimator`
//! uses instead of the draft's Kalman filter): the one-way delay variation of packet groups is
//! accumulated, exponentially smoothed, and a least-squares line is fitted over the last
//! `window` points; its slope is the delay trend handed to the [`OveruseDetector`].

use super::inter_arrival::GroupDeltas;
use super::overuse_detector::{BandwidthUsage, OveruseConfig, OveruseDetector};

/// Most points the regression window can hold.
pub const MAX_WINDOW: usize = 64;

/// Parameters of the filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendlineConfig {
    /// Points in the regression (libwebrtc: 20), at most [`MAX_WINDOW`].
    pub window: usize,
    /// Exponential smoothing of the accumulated delay (libwebrtc: 0.9).
    pub smoothing: f64,
    /// The detector fed by the trend.
    pub detector: OveruseConfig,
}

impl Default for TrendlineConfig {
    fn default() -> Self {
        TrendlineConfig {
            window: 20,
            smoothing: 0.9,
            detector: OveruseConfig::default(),
        }
    }
}

/// Samples counted for the detector's scaling, at most.
const MAX_DELTAS: u32 = 1000;

/// The trendline filter with its detector. Fixed-size state (no allocation after `new`).
#[derive(Debug, Clone)]
pub struct Trendline {
    cfg: TrendlineConfig,
    /// Ring of (arrival ms since the first group, smoothed accumulated delay ms).
    points: [(f64, f64); MAX_WINDOW],
    head: usize,
    len: usize,
    first_arrival_us: Option<i64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    deltas: u32,
    trend: f64,
    detector: OveruseDetector,
}

impl Trendline {
    /// An empty filter.
    pub fn new(cfg: TrendlineConfig) -> Self {
        let cfg = TrendlineConfig {
            window: cfg.window.clamp(2, MAX_WINDOW),
            ..cfg
        };
        Trendline {
            detector: OveruseDetector::new(cfg.detector),
            cfg,
            points: [(0.0, 0.0); MAX_WINDOW],
            head: 0,
            len: 0,
            first_arrival_us: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            deltas: 0,
            trend: 0.0,
        }
    }

    /// The last fitted slope (ms of extra delay per ms).
    pub fn trend(&self) -> f64 {
        self.trend
    }

    /// The detector's current threshold, ms.
    pub fn threshold_ms(&self) -> f64 {
        self.detector.threshold_ms()
    }

    /// The current hypothesis.
    pub fn state(&self) -> BandwidthUsage {
        self.detector.state()
    }

    /// Feeds the deltas between two packet groups and returns the detector's hypothesis.
    pub fn update(&mut self, d: &GroupDeltas) -> BandwidthUsage {
        let recv_ms = d.arrival_delta_us as f64 / 1000.0;
        let send_ms = d.send_delta_us as f64 / 1000.0;
        let first = *self.first_arrival_us.get_or_insert(d.arrival_us);
        let x = (d.arrival_us - first) as f64 / 1000.0;
        self.deltas = (self.deltas + 1).min(MAX_DELTAS);
        self.accumulated_ms += recv_ms - send_ms;
        self.smoothed_ms = self.cfg.smoothing * self.smoothed_ms
            + (1.0 - self.cfg.smoothing) * self.accumulated_ms;
        self.push((x, self.smoothed_ms));
        if self.len == self.cfg.window
            && let Some(slope) = self.fit()
        {
            self.trend = slope;
        }
        self.detector.detect(self.trend, self.deltas, send_ms, x)
    }

    fn push(&mut self, p: (f64, f64)) {
        let w = self.cfg.window;
        self.points[(self.head + self.len) % w] = p;
        if self.len < w {
            self.len += 1;
        } else {
            self.head = (self.head + 1) % w;
        }
    }

    /// Least-squares slope of the window; `None` when all x are equal.
    fn fit(&self) -> Option<f64> {
        let w = self.cfg.window;
        let n = self.len as f64;
        let (mut sx, mut sy) = (0.0, 0.0);
        for i in 0..self.len {
            let (x, y) = self.points[(self.head + i) % w];
            sx += x;
            sy += y;
        }
        let (mx, my) = (sx / n, sy / n);
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..self.len {
            let (x, y) = self.points[(self.head + i) % w];
            num += (x - mx) * (y - my);
            den += (x - mx) * (x - mx);
        }
        (den != 0.0).then(|| num / den)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(trend: &mut Trendline, groups: i64, extra_delay_per_group_us: i64) -> BandwidthUsage {
        let mut state = BandwidthUsage::Normal;
        for i in 0..groups {
            state = trend.update(&GroupDeltas {
                send_delta_us: 10_000,
                arrival_delta_us: 10_000 + extra_delay_per_group_us,
                size_delta: 0,
                arrival_us: i * (10_000 + extra_delay_per_group_us),
            });
        }
        state
    }

    #[test]
    fn rising_delay_slope_is_detected_as_overuse() {
        let mut t = Trendline::new(TrendlineConfig::default());
        // Each 10 ms group arrives 1 ms later than it was sent: the queue grows 10 %.
        assert_eq!(run(&mut t, 60, 1_000), BandwidthUsage::Overusing);
        assert!(t.trend() > 0.05, "trend {}", t.trend());
    }

    #[test]
    fn constant_delay_stays_normal() {
        let mut t = Trendline::new(TrendlineConfig::default());
        assert_eq!(run(&mut t, 200, 0), BandwidthUsage::Normal);
        assert!(t.trend().abs() < 1e-9);
    }

    #[test]
    fn falling_delay_slope_is_detected_as_underuse() {
        let mut t = Trendline::new(TrendlineConfig::default());
        run(&mut t, 30, 1_000);
        assert_eq!(run(&mut t, 60, -1_000), BandwidthUsage::Underusing);
    }

    #[test]
    fn jitter_without_a_slope_is_not_overuse() {
        let mut t = Trendline::new(TrendlineConfig::default());
        let mut arrival = 0;
        let mut overuse = 0;
        for i in 0..500i64 {
            // ±2 ms of alternating jitter around a constant delay.
            let jitter = if i % 2 == 0 { 2_000 } else { -2_000 };
            arrival += 10_000 + jitter;
            let s = t.update(&GroupDeltas {
                send_delta_us: 10_000,
                arrival_delta_us: 10_000 + jitter,
                size_delta: 0,
                arrival_us: arrival,
            });
            overuse += i32::from(s == BandwidthUsage::Overusing);
        }
        assert_eq!(overuse, 0);
    }
}
