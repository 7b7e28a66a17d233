//! Dynacast: which simulcast encodings of a published track must keep coming. An encoding some
//! viewer needs turns on at once; one nobody needs turns off only after a delay (3 s), so that
//! a viewer moving between layers does not make the publisher stop and restart encodings.
//! While the track has no viewer at all, every encoding stays on: a publisher is not stopped
//! before anyone watches.

use std::time::{Duration, Instant};

use crate::control::MAX_SIMULCAST_LAYERS;

/// How long an encoding nobody needs keeps coming.
pub const DEMAND_OFF_DELAY: Duration = Duration::from_secs(3);

/// The demand state of one simulcast track; layers are bits of a mask (bit `i`: encoding `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemandTracker {
    /// Encodings in the track (bits above are ignored).
    count: u8,
    active: u8,
    /// When each encoding was last needed.
    needed_at: [Instant; MAX_SIMULCAST_LAYERS],
    delay: Duration,
}

impl DemandTracker {
    /// A track of `count` encodings, all on, created at `now`.
    pub fn new(count: u8, now: Instant) -> Self {
        let count = count.min(MAX_SIMULCAST_LAYERS as u8);
        DemandTracker {
            count,
            active: Self::all(count),
            needed_at: [now; MAX_SIMULCAST_LAYERS],
            delay: DEMAND_OFF_DELAY,
        }
    }

    fn all(count: u8) -> u8 {
        ((1u16 << count) - 1) as u8
    }

    /// The encodings that are on.
    pub fn active(&self) -> u8 {
        self.active
    }

    /// What the viewers need at `now` (`None`: there is no viewer). Returns the new set of
    /// encodings that are on when it changed.
    pub fn update(&mut self, now: Instant, needed: Option<u8>) -> Option<u8> {
        let all = Self::all(self.count);
        let needed = needed.map_or(all, |m| m & all);
        let mut active = 0;
        for i in 0..usize::from(self.count) {
            let bit = 1u8 << i;
            if needed & bit != 0 {
                self.needed_at[i] = now;
            }
            if needed & bit != 0 || now.saturating_duration_since(self.needed_at[i]) < self.delay {
                active |= bit;
            }
        }
        if active == self.active {
            return None;
        }
        self.active = active;
        Some(active)
    }

    /// When an encoding that is on but not needed would turn off (for the caller's timer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        (0..usize::from(self.count))
            .filter(|&i| self.active & (1 << i) != 0)
            .map(|i| self.needed_at[i] + self.delay)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unneeded_layer_turns_off_after_the_delay_and_on_at_once() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = DemandTracker::new(3, t0);
        assert_eq!(d.active(), 0b111);
        assert_eq!(d.update(at(0), Some(0b011)), None);
        assert_eq!(d.update(at(2_999), Some(0b011)), None);
        assert_eq!(d.update(at(3_000), Some(0b011)), Some(0b011));
        assert_eq!(d.update(at(3_500), Some(0b111)), Some(0b111), "on at once");
        assert_eq!(d.update(at(4_000), Some(0b001)), None);
        assert_eq!(d.update(at(6_500), Some(0b001)), Some(0b001));
    }

    #[test]
    fn without_viewers_every_layer_stays_on() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = DemandTracker::new(3, t0);
        assert_eq!(d.update(at(10_000), None), None);
        assert_eq!(d.active(), 0b111);
        d.update(at(10_000), Some(0b001));
        assert_eq!(d.update(at(20_000), Some(0b001)), Some(0b001));
        assert_eq!(
            d.update(at(20_001), None),
            Some(0b111),
            "the last viewer left"
        );
    }

    #[test]
    fn the_timeout_is_when_the_first_unneeded_layer_goes() {
        let t0 = Instant::now();
        let mut d = DemandTracker::new(2, t0);
        d.update(t0 + Duration::from_secs(1), Some(0b01));
        assert_eq!(d.poll_timeout(), Some(t0 + DEMAND_OFF_DELAY));
    }
}
