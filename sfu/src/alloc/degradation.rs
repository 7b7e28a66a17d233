//! Whether a viewer counts as degraded: its video allocation stayed below what it wants for a
//! hold time (5 s), and stops counting once it stayed at it for as long.

use std::time::{Duration, Instant};

/// How long a viewer must stay below (or at) what it wants before its state changes.
pub const DEGRADATION_HOLD: Duration = Duration::from_secs(5);

/// Tracks one viewer's degraded state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DegradationTracker {
    degraded: bool,
    /// Since when the viewer's condition has been the opposite of `degraded`.
    since: Option<Instant>,
    hold: Duration,
}

impl Default for DegradationTracker {
    fn default() -> Self {
        Self::new(DEGRADATION_HOLD)
    }
}

impl DegradationTracker {
    /// A tracker that changes state after `hold` in the opposite condition.
    pub fn new(hold: Duration) -> Self {
        DegradationTracker {
            degraded: false,
            since: None,
            hold,
        }
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// The viewer's condition at `now` (`below`: its allocation is below what it wants).
    /// Returns the new state when it changed.
    pub fn update(&mut self, now: Instant, below: bool) -> Option<bool> {
        if below == self.degraded {
            self.since = None;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        if now.saturating_duration_since(since) >= self.hold {
            self.degraded = below;
            self.since = None;
            return Some(below);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_after_five_seconds_below_and_cleared_after_five_at_it() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = DegradationTracker::default();
        assert_eq!(d.update(at(0), true), None);
        assert_eq!(d.update(at(4_900), true), None);
        assert_eq!(d.update(at(5_000), true), Some(true));
        assert!(d.is_degraded());
        assert_eq!(d.update(at(6_000), true), None, "reported once");
        assert_eq!(d.update(at(7_000), false), None);
        assert_eq!(d.update(at(11_999), false), None);
        assert_eq!(d.update(at(12_000), false), Some(false));
    }

    #[test]
    fn a_short_dip_does_not_count() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = DegradationTracker::default();
        d.update(at(0), true);
        d.update(at(3_000), false);
        assert_eq!(d.update(at(4_000), true), None);
        assert_eq!(
            d.update(at(8_000), true),
            None,
            "the clock restarted at 4 s"
        );
        assert_eq!(d.update(at(9_000), true), Some(true));
    }
}
