//! HDR histograms (the `hdrhistogram` crate: 3 significant digits, fixed memory after creation)
//! for latencies in nanoseconds and join times in microseconds.

use serde::Serialize;

/// A histogram of positive integer values from 1 to `max`.
#[derive(Debug, Clone)]
pub struct Histogram {
    h: hdrhistogram::Histogram<u64>,
    max: u64,
    /// Values above `max`, recorded as `max`.
    clamped: u64,
}

/// Quantiles of a histogram in its unit divided by `scale`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Histogram {
    /// Values from 1 to `max`, 3 significant digits.
    pub fn new(max: u64) -> Self {
        let max = max.max(2);
        // Bounds 1..max with 3 digits are always valid for max >= 2.
        let h = hdrhistogram::Histogram::new_with_bounds(1, max, 3)
            .expect("1..max with 3 significant digits is a valid histogram");
        Histogram { h, max, clamped: 0 }
    }

    /// Latencies in nanoseconds up to 60 s.
    pub fn latency_ns() -> Self {
        Self::new(60_000_000_000)
    }

    /// Join times in microseconds up to 10 minutes.
    pub fn join_us() -> Self {
        Self::new(600_000_000)
    }

    /// Records one value (0 counts as 1, values above the maximum as the maximum).
    #[inline]
    pub fn record(&mut self, v: u64) {
        let v = v.clamp(1, self.max);
        if v == self.max {
            self.clamped += 1;
        }
        // In range by the clamp above, so this cannot fail.
        let _ = self.h.record(v);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        // Same bounds on both sides (both made by `new` with values clamped), so add succeeds;
        // a histogram with other bounds is added value by value.
        if self.h.add(&other.h).is_err() {
            for v in other.h.iter_recorded() {
                let _ = self
                    .h
                    .record_n(v.value_iterated_to().clamp(1, self.max), v.count_at_value());
            }
        }
        self.clamped += other.clamped;
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        self.h.reset();
        self.clamped = 0;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The value at quantile `q` (0..=1), 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.value_at_quantile(q)
        }
    }

    /// Summary with every value divided by `scale` (1000 turns ns into µs).
    pub fn quantiles(&self, scale: f64) -> Quantiles {
        if self.h.is_empty() {
            return Quantiles::default();
        }
        let s = |v: u64| v as f64 / scale;
        Quantiles {
            count: self.h.len(),
            min: s(self.h.min()),
            mean: self.h.mean() / scale,
            p50: s(self.h.value_at_quantile(0.50)),
            p90: s(self.h.value_at_quantile(0.90)),
            p95: s(self.h.value_at_quantile(0.95)),
            p99: s(self.h.value_at_quantile(0.99)),
            p999: s(self.h.value_at_quantile(0.999)),
            max: s(self.h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_uniform_spread_are_where_expected() {
        let mut h = Histogram::latency_ns();
        for us in 1..=10_000u64 {
            h.record(us * 1000);
        }
        let q = h.quantiles(1000.0);
        assert_eq!(q.count, 10_000);
        for (got, want) in [
            (q.p50, 5000.0),
            (q.p99, 9900.0),
            (q.p999, 9990.0),
            (q.max, 10_000.0),
        ] {
            assert!((got - want).abs() / want < 0.002, "{got} vs {want}");
        }
        assert!((q.mean - 5000.5).abs() < 5.0);
    }

    #[test]
    fn merging_adds_counts_and_reset_empties() {
        let mut a = Histogram::latency_ns();
        let mut b = Histogram::latency_ns();
        for _ in 0..100 {
            a.record(1_000);
            b.record(1_000_000);
        }
        a.merge(&b);
        assert_eq!(a.count(), 200);
        assert!(a.quantile(0.25) < 1_100 && a.quantile(0.75) > 900_000);
        a.reset();
        assert_eq!(a.count(), 0);
        assert_eq!(a.quantiles(1.0), Quantiles::default());
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = Histogram::new(1000);
        h.record(0);
        h.record(5000);
        assert_eq!(h.count(), 2);
        assert_eq!(h.quantile(0.0), 1);
        assert!(h.quantile(1.0) >= 1000);
    }
}
