//! Which simulcast encoding a subscriber is receiving, from the rank in each payload's tag
//! ([`crate::media::Tag`]): packets and bytes per layer, the time spent on each (from one
//! in-order packet to the next; a gap longer than [`IDLE_GAP`] counts as no video), and how
//! often the layer changed. Fixed memory.

use std::time::{Duration, Instant};

/// Layers tracked: the load generator's publishers send ranks 0, 1 and 2 (q, h, f).
pub const MAX_LAYERS: usize = 3;
/// Time between two video packets beyond which the subscriber counts as having no video.
pub const IDLE_GAP: Duration = Duration::from_secs(1);

/// Counters of a [`LayerTracker`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Distinct packets per layer (retransmissions included).
    pub packets: [u64; MAX_LAYERS],
    /// Payload bytes per layer.
    pub bytes: [u64; MAX_LAYERS],
    /// Time on each layer, µs.
    pub time_us: [u64; MAX_LAYERS],
    /// Time without video (gaps longer than [`IDLE_GAP`]), µs.
    pub idle_us: u64,
    /// Layer changes.
    pub switches: u64,
    /// The layer received last.
    pub current: Option<u8>,
}

impl LayerStats {
    /// What happened since `base` (an earlier copy); the current layer is the latest.
    pub fn since(&self, base: &LayerStats) -> LayerStats {
        let mut d = *self;
        for i in 0..MAX_LAYERS {
            d.packets[i] = d.packets[i].saturating_sub(base.packets[i]);
            d.bytes[i] = d.bytes[i].saturating_sub(base.bytes[i]);
            d.time_us[i] = d.time_us[i].saturating_sub(base.time_us[i]);
        }
        d.idle_us = d.idle_us.saturating_sub(base.idle_us);
        d.switches = d.switches.saturating_sub(base.switches);
        d
    }

    /// Time on any layer, µs.
    pub fn layer_time_us(&self) -> u64 {
        self.time_us.iter().sum()
    }
}

/// Follows the layer of one subscriber's video.
#[derive(Debug, Clone, Default)]
pub struct LayerTracker {
    stats: LayerStats,
    /// Arrival of the last in-order packet.
    last: Option<Instant>,
}

impl LayerTracker {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A distinct video packet of `layer` with `bytes` of payload arrived at `now`; `in_order`
    /// when it is the newest so far and not a retransmission (only those move the current
    /// layer: a late retransmission from before a switch does not switch back).
    pub fn on_packet(&mut self, now: Instant, layer: u8, bytes: usize, in_order: bool) {
        let i = usize::from(layer);
        if i >= MAX_LAYERS {
            return;
        }
        self.stats.packets[i] += 1;
        self.stats.bytes[i] += bytes as u64;
        if !in_order {
            return;
        }
        self.account(now);
        self.last = Some(now);
        if self.stats.current != Some(layer) {
            if self.stats.current.is_some() {
                self.stats.switches += 1;
            }
            self.stats.current = Some(layer);
        }
    }

    /// Adds the time since the last in-order packet to its layer (or to idle).
    fn account(&mut self, now: Instant) {
        let (Some(last), Some(cur)) = (self.last, self.stats.current) else {
            return;
        };
        let gap = now.saturating_duration_since(last);
        let us = gap.as_micros() as u64;
        if gap <= IDLE_GAP {
            self.stats.time_us[usize::from(cur)] += us;
        } else {
            self.stats.idle_us += us;
        }
    }

    /// Counters up to `now`: the time since the last packet is counted as if a packet of the
    /// current layer arrived now.
    pub fn stats(&self, now: Instant) -> LayerStats {
        let mut t = self.clone();
        t.account(now);
        t.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_goes_to_the_layer_being_received_and_switches_are_counted() {
        let t0 = Instant::now();
        let mut l = LayerTracker::new();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // 1 s on layer 2, then 2 s on layer 0, then back to 2 for 1 s.
        for k in 0..100 {
            l.on_packet(ms(k * 10), 2, 1000, true);
        }
        for k in 100..300 {
            l.on_packet(ms(k * 10), 0, 200, true);
        }
        for k in 300..400 {
            l.on_packet(ms(k * 10), 2, 1000, true);
        }
        let s = l.stats(ms(4000));
        assert_eq!(s.switches, 2);
        assert_eq!(s.current, Some(2));
        assert_eq!(s.packets, [200, 0, 200]);
        assert_eq!(s.bytes, [40_000, 0, 200_000]);
        assert_eq!(s.time_us, [2_000_000, 0, 2_000_000]);
        assert_eq!(s.idle_us, 0);
        assert_eq!(s.layer_time_us(), 4_000_000);
    }

    #[test]
    fn late_retransmissions_count_but_do_not_switch() {
        let t0 = Instant::now();
        let mut l = LayerTracker::new();
        l.on_packet(t0, 2, 100, true);
        l.on_packet(t0 + Duration::from_millis(10), 0, 100, true);
        l.on_packet(t0 + Duration::from_millis(20), 2, 100, false);
        l.on_packet(t0 + Duration::from_millis(30), 0, 100, true);
        let s = l.stats(t0 + Duration::from_millis(30));
        assert_eq!(s.switches, 1);
        assert_eq!(s.packets, [2, 0, 2]);
        assert_eq!(s.time_us, [20_000, 0, 10_000]);
    }

    #[test]
    fn a_long_gap_is_idle_time_and_ranks_beyond_the_table_are_ignored() {
        let t0 = Instant::now();
        let mut l = LayerTracker::new();
        l.on_packet(t0, 1, 100, true);
        l.on_packet(t0 + Duration::from_millis(500), 1, 100, true);
        l.on_packet(t0 + Duration::from_millis(3500), 1, 100, true);
        l.on_packet(t0 + Duration::from_millis(3600), 7, 100, true);
        let s = l.stats(t0 + Duration::from_millis(3600));
        assert_eq!(s.time_us[1], 600_000);
        assert_eq!(s.idle_us, 3_000_000);
        assert_eq!((s.switches, s.current), (0, Some(1)));
    }

    #[test]
    fn stats_since_a_baseline_cover_only_the_window() {
        let t0 = Instant::now();
        let mut l = LayerTracker::new();
        l.on_packet(t0, 2, 100, true);
        l.on_packet(t0 + Duration::from_millis(500), 0, 100, true);
        let base = l.stats(t0 + Duration::from_millis(600));
        l.on_packet(t0 + Duration::from_millis(1000), 0, 100, true);
        let s = l.stats(t0 + Duration::from_millis(1000)).since(&base);
        assert_eq!(s.switches, 0);
        assert_eq!(s.time_us, [400_000, 0, 0]);
        assert_eq!(s.packets, [1, 0, 0]);
    }
}
