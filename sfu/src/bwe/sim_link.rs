//! A simulated bottleneck link for bandwidth-estimation tests (the test cases of RFC 8867 need
//! one): a capacity that follows a schedule, a drop-tail queue holding a fixed time's worth of
//! bytes at the current capacity, propagation delay with jitter, and random loss, all driven by
//! a virtual clock and a seeded generator so that every run is the same.
//!
//! Test support (feature `sim`): it allocates freely.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::types::Bitrate;

/// The link's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Capacity from each offset on (sorted; the first entry should be at zero).
    pub capacity: Vec<(Duration, Bitrate)>,
    /// The queue holds this much sending time at the current capacity; more is dropped.
    pub queue: Duration,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..jitter` per packet (packets keep their order).
    pub jitter: Duration,
    /// Probability that a packet is lost before the queue.
    pub loss: f64,
    /// Token-bucket depth, bytes: after an idle spell this much leaves at once (as Linux tbf's
    /// burst, or its peak-rate minburst, lets the first packets of a burst through unshaped).
    pub burst: usize,
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            capacity: vec![(Duration::ZERO, Bitrate::kbps(1000))],
            queue: Duration::from_millis(300),
            delay: Duration::from_millis(25),
            jitter: Duration::ZERO,
            loss: 0.0,
            burst: 0,
            seed: 1,
        }
    }
}

/// Counters of a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub delivered: u64,
    pub dropped_queue: u64,
    pub dropped_random: u64,
}

/// A seeded xorshift64* generator.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `0.0..1.0`.
    pub fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct Queued<T> {
    item: T,
    size: usize,
    enqueued: Instant,
}

/// One direction of a bottleneck link carrying items of type `T`.
#[derive(Debug)]
pub struct SimLink<T> {
    cfg: LinkConfig,
    start: Instant,
    queue: VecDeque<Queued<T>>,
    queued_bytes: usize,
    /// When the link finishes sending what it sent last.
    busy_until: Instant,
    in_flight: VecDeque<(Instant, T)>,
    last_delivery: Instant,
    rng: SimRng,
    stats: LinkStats,
}

impl<T> SimLink<T> {
    /// A link whose schedule starts at `start`.
    pub fn new(cfg: LinkConfig, start: Instant) -> Self {
        SimLink {
            rng: SimRng::new(cfg.seed),
            cfg,
            start,
            queue: VecDeque::new(),
            queued_bytes: 0,
            busy_until: start,
            in_flight: VecDeque::new(),
            last_delivery: start,
            stats: LinkStats::default(),
        }
    }

    /// Capacity at `t`.
    pub fn capacity_at(&self, t: Instant) -> Bitrate {
        let off = t.saturating_duration_since(self.start);
        self.cfg
            .capacity
            .iter()
            .take_while(|(from, _)| *from <= off)
            .last()
            .or(self.cfg.capacity.first())
            .map_or(Bitrate::kbps(1000), |&(_, c)| c)
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Offers an item of `size` bytes at `now`; false when it was dropped.
    pub fn send(&mut self, now: Instant, item: T, size: usize) -> bool {
        self.advance(now);
        self.stats.sent += 1;
        if self.cfg.loss > 0.0 && self.rng.next_f64() < self.cfg.loss {
            self.stats.dropped_random += 1;
            return false;
        }
        let cap = self.capacity_at(now).0 as f64;
        let limit = (cap * self.cfg.queue.as_secs_f64() / 8.0).max(3000.0) as usize;
        if self.queued_bytes + size > limit {
            self.stats.dropped_queue += 1;
            return false;
        }
        self.queue.push_back(Queued {
            item,
            size,
            enqueued: now,
        });
        self.queued_bytes += size;
        true
    }

    /// Moves items whose serialization ended by `now` onto the wire.
    fn advance(&mut self, now: Instant) {
        while let Some(head) = self.queue.front() {
            // A token bucket as a virtual clock: `busy_until` may lag real time by up to the
            // bucket's depth (credit saved while idle); a packet leaves once the clock, advanced
            // by its serialization time, has caught up with real time.
            let cap = self
                .capacity_at(self.busy_until.max(head.enqueued))
                .0
                .max(1) as f64;
            let depth = Duration::from_secs_f64(self.cfg.burst as f64 * 8.0 / cap);
            let earliest = head.enqueued.checked_sub(depth).unwrap_or(head.enqueued);
            let begin = self.busy_until.max(earliest);
            let end = begin + Duration::from_secs_f64(head.size as f64 * 8.0 / cap);
            let leaves = end.max(head.enqueued);
            if leaves > now {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= q.size;
            self.busy_until = end;
            let jitter = self.cfg.jitter.as_secs_f64() * self.rng.next_f64();
            let deliver =
                (leaves + self.cfg.delay + Duration::from_secs_f64(jitter)).max(self.last_delivery);
            self.last_delivery = deliver;
            self.in_flight.push_back((deliver, q.item));
        }
    }

    /// The next item delivered by `now`, with its arrival time.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<(Instant, T)> {
        self.advance(now);
        if self.in_flight.front().is_some_and(|(t, _)| *t <= now) {
            self.stats.delivered += 1;
            return self.in_flight.pop_front();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_carries_its_capacity_and_drops_the_excess() {
        let t0 = Instant::now();
        let mut link = SimLink::new(LinkConfig::default(), t0);
        // Offer 2 Mbit/s for 2 s (1000-byte packets every 4 ms) to a 1 Mbit/s link.
        let mut delivered = 0;
        let mut last = t0;
        for ms in 0..2000u64 {
            let now = t0 + Duration::from_millis(ms);
            if ms % 4 == 0 {
                link.send(now, ms, 1000);
            }
            while let Some((t, _)) = link.poll_deliver(now) {
                delivered += 1;
                last = t;
            }
        }
        let rate = delivered as f64 * 8000.0 / (last - t0).as_secs_f64();
        assert!((950_000.0..1_050_000.0).contains(&rate), "carried {rate}");
        assert!(link.stats().dropped_queue > 200);
        // The queue holds 300 ms at 1 Mbit/s: 37 packets.
        assert!(link.queued_bytes() <= 37_500);
    }

    #[test]
    fn a_burst_passes_the_bucket_depth_at_once_then_the_capacity() {
        let t0 = Instant::now();
        let cfg = LinkConfig {
            burst: 1600,
            delay: Duration::ZERO,
            capacity: vec![(Duration::ZERO, Bitrate::kbps(600))],
            ..LinkConfig::default()
        };
        let mut link = SimLink::new(cfg, t0);
        // Ten 320-byte packets at once, after an idle second.
        let at = t0 + Duration::from_secs(1);
        for i in 0..10u32 {
            link.send(at, i, 320);
        }
        let mut arrivals = Vec::new();
        for us in (0..200_000u64).step_by(100) {
            while let Some((t, _)) = link.poll_deliver(at + Duration::from_micros(us)) {
                arrivals.push(t - at);
            }
        }
        assert_eq!(arrivals.len(), 10);
        // Five fit the bucket and leave at once; each later one takes 320 B at 600 kbit/s.
        let at_once = |d: &Duration| *d < Duration::from_micros(50);
        assert!(arrivals[..5].iter().all(at_once), "{arrivals:?}");
        let step = Duration::from_secs_f64(320.0 * 8.0 / 600_000.0);
        for (k, d) in arrivals[5..].iter().enumerate() {
            let want = step * (k as u32 + 1);
            assert!(d.abs_diff(want) < Duration::from_micros(50), "{arrivals:?}");
        }
    }

    #[test]
    fn capacity_follows_the_schedule() {
        let t0 = Instant::now();
        let cfg = LinkConfig {
            capacity: vec![
                (Duration::ZERO, Bitrate::kbps(1000)),
                (Duration::from_secs(10), Bitrate::kbps(2500)),
            ],
            ..LinkConfig::default()
        };
        let link: SimLink<()> = SimLink::new(cfg, t0);
        assert_eq!(
            link.capacity_at(t0 + Duration::from_secs(9)),
            Bitrate::kbps(1000)
        );
        assert_eq!(
            link.capacity_at(t0 + Duration::from_secs(10)),
            Bitrate::kbps(2500)
        );
    }

    #[test]
    fn random_loss_matches_its_probability() {
        let t0 = Instant::now();
        let cfg = LinkConfig {
            loss: 0.05,
            capacity: vec![(Duration::ZERO, Bitrate::kbps(100_000))],
            ..LinkConfig::default()
        };
        let mut link = SimLink::new(cfg, t0);
        for i in 0..20_000u64 {
            link.send(t0 + Duration::from_micros(i * 100), i, 100);
        }
        let lost = link.stats().dropped_random as f64 / 20_000.0;
        assert!((0.045..0.055).contains(&lost), "lost {lost}");
    }
}
