//! One impaired direction as a sans-IO state machine: packets and time in, packets out at their
//! release times. Order of effects: random loss, then the rate limiter (GCRA form of a token
//! bucket with a FIFO queue bounded in waiting time), then delay and jitter (order kept), then
//! reordering (a chosen packet is held and released right after the next one). Every random
//! choice comes from a seeded generator, so a run is repeatable.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::impairment::Impairment;
use super::rate::RateLimiter;

/// A held packet is released alone after this long if no packet comes to overtake it.
const REORDER_HOLD_MAX: Duration = Duration::from_millis(50);

/// SplitMix64: small, fast, and the same on every platform and crate version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What happened to a packet handed to [`Link::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Queued; it comes out of [`Link::poll_release`] at its time.
    Queued,
    /// Dropped at random (`loss`).
    Lost,
    /// Dropped because the rate limiter's queue was full.
    QueueFull,
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub reordered: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
}

#[derive(Debug)]
struct Pending {
    release: Instant,
    data: Vec<u8>,
}

/// One impaired direction.
#[derive(Debug)]
pub struct Link {
    cfg: Impairment,
    rng: SplitMix64,
    /// The rate limit, when there is one.
    limiter: Option<RateLimiter>,
    /// Release time of the last packet put on the delay line (jitter keeps order).
    last_release: Option<Instant>,
    /// Packets in release order.
    line: VecDeque<Pending>,
    /// A packet waiting for the next one to overtake it.
    held: Option<Pending>,
    free: Vec<Vec<u8>>,
    stats: LinkStats,
}

impl Link {
    /// A link applying `cfg`, its random choices drawn from `seed`.
    pub fn new(cfg: Impairment, seed: u64) -> Self {
        Link {
            cfg,
            rng: SplitMix64::new(seed),
            limiter: cfg
                .rate_bps
                .map(|r| RateLimiter::new(r, cfg.burst, cfg.queue)),
            last_release: None,
            line: VecDeque::new(),
            held: None,
            free: Vec::new(),
            stats: LinkStats::default(),
        }
    }

    pub fn impairment(&self) -> &Impairment {
        &self.cfg
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Packets waiting (queued, delayed or held).
    pub fn in_flight(&self) -> usize {
        self.line.len() + usize::from(self.held.is_some())
    }

    /// Hands a packet that arrived at `now` to the link.
    pub fn send(&mut self, now: Instant, data: &[u8]) -> Verdict {
        self.stats.packets_in += 1;
        self.stats.bytes_in += data.len() as u64;
        if self.cfg.loss > 0.0 && self.rng.unit() < self.cfg.loss {
            self.stats.lost += 1;
            return Verdict::Lost;
        }
        let mut depart = now;
        if let Some(limiter) = self.limiter.as_mut() {
            let Some(d) = limiter.admit(now, data.len()) else {
                self.stats.queue_drops += 1;
                return Verdict::QueueFull;
            };
            depart = d;
        }
        let mut delay = self.cfg.delay.as_secs_f64();
        if !self.cfg.jitter.is_zero() {
            delay += (self.rng.unit() * 2.0 - 1.0) * self.cfg.jitter.as_secs_f64();
        }
        let mut release = depart + Duration::from_secs_f64(delay.max(0.0));
        if let Some(last) = self.last_release {
            release = release.max(last);
        }
        self.last_release = Some(release);
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        let pkt = Pending { release, data: buf };
        if let Some(held) = self.held.take() {
            // The held packet goes right behind this one.
            self.line.push_back(pkt);
            self.line.push_back(Pending {
                release,
                data: held.data,
            });
            self.stats.reordered += 1;
        } else if self.cfg.reorder > 0.0 && self.rng.unit() < self.cfg.reorder {
            self.held = Some(pkt);
        } else {
            self.line.push_back(pkt);
        }
        Verdict::Queued
    }

    /// The next packet due at or before `now`.
    pub fn poll_release(&mut self, now: Instant) -> Option<Vec<u8>> {
        if let Some(h) = &self.held
            && h.release + REORDER_HOLD_MAX <= now
        {
            // Nobody overtook it in time: let it go in order.
            if let Some(h) = self.held.take() {
                self.line.push_back(h);
            }
        }
        if self.line.front().is_some_and(|p| p.release <= now) {
            let p = self.line.pop_front()?;
            self.stats.packets_out += 1;
            self.stats.bytes_out += p.data.len() as u64;
            return Some(p.data);
        }
        None
    }

    /// Gives a released packet's buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.free.len() < 256 {
            self.free.push(buf);
        }
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let line = self.line.front().map(|p| p.release);
        let held = self.held.as_ref().map(|h| h.release + REORDER_HOLD_MAX);
        match (line, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    /// Sends `n` packets of `size` bytes, one every `gap`, each tagged with its index; returns
    /// (index, send time, release time) of every packet released, in release order.
    fn drive(link: &mut Link, n: u32, size: usize, gap: Duration) -> Vec<(u32, Instant, Instant)> {
        let t0 = Instant::now();
        let mut sent_at = Vec::new();
        let mut out = Vec::new();
        let step = Duration::from_micros(100);
        let mut now = t0;
        let mut next_send = t0;
        let mut i = 0u32;
        let end_after = gap * n + Duration::from_secs(2);
        while now < t0 + end_after {
            if i < n && now >= next_send {
                let mut p = vec![0u8; size.max(4)];
                p[..4].copy_from_slice(&i.to_be_bytes());
                sent_at.push(now);
                link.send(now, &p);
                i += 1;
                next_send += gap;
            }
            while let Some(p) = link.poll_release(now) {
                let idx = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                out.push((idx, sent_at[idx as usize], now));
                link.recycle(p);
            }
            now += step;
        }
        out
    }

    fn imp() -> Impairment {
        Impairment::default()
    }

    #[test]
    fn no_impairment_passes_everything_at_once_in_order() {
        let mut l = Link::new(imp(), 1);
        let out = drive(&mut l, 1000, 100, Duration::from_millis(1));
        assert_eq!(out.len(), 1000);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(out.iter().all(|(_, s, r)| r == s));
    }

    #[test]
    fn delay_and_jitter_follow_the_configured_distribution() {
        let cfg = Impairment {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
            ..imp()
        };
        let mut l = Link::new(cfg, 7);
        // 25 ms apart: more than twice the jitter, so keeping order never stretches a delay.
        let out = drive(&mut l, 10_000, 200, Duration::from_millis(25));
        assert_eq!(out.len(), 10_000);
        let d: Vec<f64> = out
            .iter()
            .map(|(_, s, r)| (*r - *s).as_secs_f64() * 1e3)
            .collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d.len() as f64;
        let (min, max) = d
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
        // Uniform on [40, 60] ms (sampled on a 0.1 ms grid): mean 50, sd 10/sqrt(3) = 5.77.
        assert!((mean - 50.0).abs() < 0.3, "mean {mean}");
        assert!((var.sqrt() - 5.77).abs() < 0.3, "sd {}", var.sqrt());
        assert!(min >= 39.9 && max <= 60.2, "{min}..{max}");
        // Each 5 ms bucket of the 20 ms range holds about a quarter.
        for k in 0..4 {
            let lo = 40.0 + 5.0 * k as f64;
            let n = d.iter().filter(|&&x| x >= lo && x < lo + 5.0).count();
            assert!((2200..2800).contains(&n), "bucket {lo}: {n}");
        }
    }

    #[test]
    fn jitter_never_reorders() {
        let cfg = Impairment {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(15),
            ..imp()
        };
        let mut l = Link::new(cfg, 3);
        let out = drive(&mut l, 3000, 100, Duration::from_millis(1));
        assert_eq!(out.len(), 3000);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn loss_ratio_is_within_tolerance_over_ten_thousand_packets() {
        let cfg = Impairment {
            loss: 0.02,
            ..imp()
        };
        let mut l = Link::new(cfg, 11);
        let out = drive(&mut l, 10_000, 100, Duration::from_millis(1));
        let lost = 10_000 - out.len();
        // Binomial sd = 14 packets; allow about 3 sd.
        assert!((160..=240).contains(&lost), "lost {lost}");
        assert_eq!(l.stats().lost as usize, lost);
    }

    #[test]
    fn rate_limit_holds_throughput_to_the_configured_rate() {
        let cfg = Impairment {
            rate_bps: Some(600_000),
            burst: 4000,
            queue: Duration::from_millis(200),
            ..imp()
        };
        let mut l = Link::new(cfg, 5);
        // Offer 1.2 Mbit/s: 1000-byte packets every 6.67 ms, for 10 s.
        let out = drive(&mut l, 1500, 1000, Duration::from_micros(6_667));
        let first = out.first().unwrap().2;
        let last = out.last().unwrap().2;
        let secs = (last - first).as_secs_f64();
        let bps = (out.len() - 1) as f64 * 8000.0 / secs;
        assert!((bps - 600_000.0).abs() / 600_000.0 < 0.02, "{bps} bit/s");
        // Half the offered load does not fit: it is dropped at the queue, not delayed forever.
        assert!(l.stats().queue_drops > 600, "{:?}", l.stats());
        let worst = out.iter().map(|(_, s, r)| *r - *s).max().unwrap();
        assert!(worst <= Duration::from_millis(201), "{worst:?}");
    }

    #[test]
    fn rate_limit_lets_traffic_below_the_rate_through_undelayed() {
        let cfg = Impairment {
            rate_bps: Some(600_000),
            ..imp()
        };
        let mut l = Link::new(cfg, 5);
        // 300 kbit/s offered.
        let out = drive(&mut l, 1000, 1000, Duration::from_micros(26_667));
        assert_eq!(out.len(), 1000);
        assert!(out.iter().all(|(_, s, r)| r == s));
    }

    #[test]
    fn reordering_happens_at_the_configured_rate() {
        let cfg = Impairment {
            reorder: 0.05,
            ..imp()
        };
        let mut l = Link::new(cfg, 13);
        let out = drive(&mut l, 10_000, 100, Duration::from_millis(1));
        assert_eq!(out.len(), 10_000, "reordering loses nothing");
        // A packet arrives out of order when a higher index came before it.
        let mut max_seen = 0;
        let mut late = 0;
        for (i, (idx, _, _)) in out.iter().enumerate() {
            if i > 0 && *idx < max_seen {
                late += 1;
            }
            max_seen = max_seen.max(*idx);
        }
        // About 5 % are held (a held packet's successor cannot be held): 400..600.
        assert!((400..=600).contains(&late), "late {late}");
        assert_eq!(l.stats().reordered, late);
    }

    #[test]
    fn a_held_packet_is_not_kept_forever() {
        let cfg = Impairment {
            reorder: 1.0,
            ..imp()
        };
        let mut l = Link::new(cfg, 1);
        let t0 = Instant::now();
        l.send(t0, b"only");
        assert!(l.poll_release(t0).is_none());
        let t = l.poll_timeout().unwrap();
        assert!(t <= t0 + REORDER_HOLD_MAX);
        assert_eq!(l.poll_release(t).as_deref(), Some(&b"only"[..]));
    }

    #[test]
    fn same_seed_same_run_other_seed_other_run() {
        let cfg = Impairment {
            loss: 0.1,
            jitter: Duration::from_millis(5),
            delay: Duration::from_millis(10),
            reorder: 0.05,
            ..imp()
        };
        let run = |seed| {
            let mut l = Link::new(cfg, seed);
            drive(&mut l, 2000, 100, Duration::from_millis(1))
                .into_iter()
                .map(|(i, s, r)| (i, r - s))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
