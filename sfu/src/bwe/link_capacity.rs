//! Link capacity estimate of the AIMD rate controller (libwebrtc `LinkCapacityEstimator`): an
//! exponential average of the acknowledged rate at each over-use, with a normalised variance
//! that gives the band within which the rate is "near convergence" (draft-ietf-rmcat-gcc-02
//! §5.5: additive increase near the last congestion point, multiplicative far from it).

use crate::types::Bitrate;

/// Smoothing of samples taken at over-use.
const ALPHA_OVERUSE: f64 = 0.05;
/// Smoothing of probe results (trusted more).
const ALPHA_PROBE: f64 = 0.5;
const MIN_DEVIATION: f64 = 0.4;
const MAX_DEVIATION: f64 = 2.5;

/// The estimate, in kbit/s, with its deviation.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkCapacity {
    estimate_kbps: Option<f64>,
    deviation_kbps: f64,
}

impl LinkCapacity {
    /// No estimate yet.
    pub fn new() -> Self {
        LinkCapacity {
            estimate_kbps: None,
            deviation_kbps: MIN_DEVIATION,
        }
    }

    /// The estimate, if there is one.
    pub fn estimate(&self) -> Option<Bitrate> {
        self.estimate_kbps.map(|k| Bitrate((k * 1000.0) as u64))
    }

    fn spread_kbps(&self, e: f64) -> f64 {
        3.0 * (e * self.deviation_kbps).sqrt()
    }

    /// Upper edge of the band (no estimate: unbounded).
    pub fn upper(&self) -> Option<Bitrate> {
        self.estimate_kbps
            .map(|e| Bitrate(((e + self.spread_kbps(e)) * 1000.0) as u64))
    }

    /// Lower edge of the band (no estimate: zero).
    pub fn lower(&self) -> Bitrate {
        self.estimate_kbps.map_or(Bitrate::ZERO, |e| {
            Bitrate(((e - self.spread_kbps(e)).max(0.0) * 1000.0) as u64)
        })
    }

    /// Forgets the estimate: the path changed.
    pub fn reset(&mut self) {
        self.estimate_kbps = None;
    }

    /// Folds in the acknowledged rate at an over-use.
    pub fn on_overuse(&mut self, acked: Bitrate) {
        self.update(acked, ALPHA_OVERUSE);
    }

    /// Folds in a probe result.
    pub fn on_probe(&mut self, rate: Bitrate) {
        self.update(rate, ALPHA_PROBE);
    }

    fn update(&mut self, sample: Bitrate, alpha: f64) {
        let s = sample.0 as f64 / 1000.0;
        let e = match self.estimate_kbps {
            None => s,
            Some(e) => (1.0 - alpha) * e + alpha * s,
        };
        let norm = e.max(1.0);
        let err = e - s;
        self.deviation_kbps = ((1.0 - alpha) * self.deviation_kbps + alpha * err * err / norm)
            .clamp(MIN_DEVIATION, MAX_DEVIATION);
        self.estimate_kbps = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_is_a_few_percent_around_a_steady_estimate() {
        let mut c = LinkCapacity::new();
        for _ in 0..20 {
            c.on_overuse(Bitrate::kbps(1000));
        }
        let up = c.upper().expect("estimate").0 as f64;
        assert!((1_050_000.0..1_070_000.0).contains(&up), "upper {up}");
        assert!(c.lower().0 < 1_000_000 && c.lower().0 > 900_000);
        c.reset();
        assert!(c.estimate().is_none());
    }
}
