//! One viewer's downlink of limited capacity, in the load generator's own receive path (a
//! capacity class of `--subscriber-classes`): every datagram from the server goes through the
//! relay's rate limit ([`RateLimiter`]: token bucket, drop-tail queue bounded in waiting time)
//! and reaches the client at its departure time. Datagrams wait in a byte ring sized for the
//! longest queue at the rate, allocated once; nothing is allocated per datagram. Sans-IO: time
//! in, datagrams out at their release times.

use std::time::{Duration, Instant};

use super::rate::RateLimiter;

/// Bytes of a queued record's header: release time (ns since the downlink's epoch) and length.
const HDR: usize = 16;
/// Length value that marks the rest of the ring as unused (the next record is at 0).
const WRAP: u32 = u32::MAX;
/// Room always kept for the largest datagram the client reads.
const MAX_DATAGRAM: usize = 2048;

/// The shape of a downlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownlinkConfig {
    /// Capacity in bits/s (UDP payload).
    pub rate_bps: u64,
    /// Token bucket depth in bytes: what passes at once after an idle moment.
    pub burst: usize,
    /// Longest time a datagram may wait; one that would wait longer is dropped.
    pub queue: Duration,
}

/// Counters of a downlink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownlinkStats {
    /// Datagrams offered.
    pub datagrams: u64,
    pub bytes: u64,
    /// Dropped at the queue.
    pub drops: u64,
    /// Delivered after their arrival (queued, or serialized when the bucket is empty); the
    /// rest went through at once.
    pub delayed: u64,
}

impl DownlinkStats {
    /// What happened since `base` (an earlier copy).
    pub fn since(&self, base: &DownlinkStats) -> DownlinkStats {
        DownlinkStats {
            datagrams: self.datagrams.saturating_sub(base.datagrams),
            bytes: self.bytes.saturating_sub(base.bytes),
            drops: self.drops.saturating_sub(base.drops),
            delayed: self.delayed.saturating_sub(base.delayed),
        }
    }

    /// Adds another downlink's counters.
    pub fn add(&mut self, o: &DownlinkStats) {
        self.datagrams += o.datagrams;
        self.bytes += o.bytes;
        self.drops += o.drops;
        self.delayed += o.delayed;
    }
}

/// What happened to a datagram offered to the downlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Nothing waits and the bucket has the tokens: deliver it now.
    Now,
    /// Queued; [`Downlink::pop_due`] gives it back at its release time.
    Queued,
    /// The queue is full: dropped.
    Dropped,
}

/// One viewer's rate-limited downlink.
pub struct Downlink {
    limiter: RateLimiter,
    epoch: Instant,
    ring: Box<[u8]>,
    /// Where the oldest record starts (or a wrap point before it).
    head: usize,
    /// Where the next record goes.
    tail: usize,
    count: usize,
    stats: DownlinkStats,
    /// The release timer the caller has set for this downlink, if any.
    pub armed: Option<Instant>,
}

impl std::fmt::Debug for Downlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downlink")
            .field("rate_bps", &self.limiter.rate_bps())
            .field("queued", &self.count)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn padded(len: usize) -> usize {
    HDR + len.div_ceil(8) * 8
}

impl Downlink {
    /// A downlink whose release times count from `epoch`. The ring holds what the queue can
    /// hold at the rate (the bucket included) with room for per-datagram headers, and at least
    /// a few of the largest datagrams.
    pub fn new(cfg: DownlinkConfig, epoch: Instant) -> Self {
        let bytes = cfg.rate_bps as f64 / 8.0 * cfg.queue.as_secs_f64() + cfg.burst as f64;
        // Headers of small datagrams (a 100-byte audio packet adds 16 %), and the datagram
        // that is leaving while the queue is full.
        let cap = (bytes * 1.5) as usize + 4 * (HDR + MAX_DATAGRAM);
        Downlink {
            limiter: RateLimiter::new(cfg.rate_bps, cfg.burst, cfg.queue),
            epoch,
            ring: vec![0u8; cap.div_ceil(8) * 8].into_boxed_slice(),
            head: 0,
            tail: 0,
            count: 0,
            stats: DownlinkStats::default(),
            armed: None,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DownlinkStats {
        self.stats
    }

    /// Datagrams waiting.
    pub fn queued(&self) -> usize {
        self.count
    }

    /// Offers a datagram that arrived at `now`.
    pub fn admit(&mut self, now: Instant, data: &[u8]) -> Admit {
        self.stats.datagrams += 1;
        self.stats.bytes += data.len() as u64;
        let Some(depart) = self.limiter.admit(now, data.len()) else {
            self.stats.drops += 1;
            return Admit::Dropped;
        };
        if depart <= now && self.count == 0 {
            return Admit::Now;
        }
        let release = depart.max(now);
        if data.len() > MAX_DATAGRAM || !self.push(release, data) {
            self.stats.drops += 1;
            return Admit::Dropped;
        }
        self.stats.delayed += 1;
        Admit::Queued
    }

    fn push(&mut self, release: Instant, data: &[u8]) -> bool {
        let need = padded(data.len());
        let cap = self.ring.len();
        if self.count == 0 {
            self.head = 0;
            self.tail = 0;
        }
        // Wrapped: the free space is [tail, head); otherwise [tail, cap) and [0, head).
        let wrapped = self.count > 0 && self.tail <= self.head;
        let at = if wrapped {
            if self.head - self.tail < need {
                return false;
            }
            self.tail
        } else if cap - self.tail >= need {
            self.tail
        } else if self.head >= need {
            if cap - self.tail >= HDR {
                self.ring[self.tail + 8..self.tail + 12].copy_from_slice(&WRAP.to_le_bytes());
            }
            0
        } else {
            return false;
        };
        let ns = release.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.ring[at..at + 8].copy_from_slice(&ns.to_le_bytes());
        self.ring[at + 8..at + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.ring[at + HDR..at + HDR + data.len()].copy_from_slice(data);
        self.tail = at + need;
        self.count += 1;
        true
    }

    /// Position, release time and length of the oldest record.
    fn front(&self) -> Option<(usize, Instant, usize)> {
        if self.count == 0 {
            return None;
        }
        let cap = self.ring.len();
        let word = |at: usize| u32::from_le_bytes([0, 1, 2, 3].map(|i| self.ring[at + 8 + i]));
        let mut at = self.head;
        if cap - at < HDR || word(at) == WRAP {
            at = 0;
        }
        let ns = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7].map(|i| self.ring[at + i]));
        Some((at, self.epoch + Duration::from_nanos(ns), word(at) as usize))
    }

    /// When the oldest waiting datagram is released.
    pub fn next_release(&self) -> Option<Instant> {
        self.front().map(|(_, t, _)| t)
    }

    /// Copies the oldest datagram into `out` if it is released at or before `now`; returns its
    /// release time and length (cut to `out`'s length).
    pub fn pop_due(&mut self, now: Instant, out: &mut [u8]) -> Option<(Instant, usize)> {
        let (at, release, len) = self.front()?;
        if release > now {
            return None;
        }
        let n = len.min(out.len());
        out[..n].copy_from_slice(&self.ring[at + HDR..at + HDR + n]);
        self.head = at + padded(len);
        self.count -= 1;
        if self.count == 0 {
            self.head = 0;
            self.tail = 0;
        }
        Some((release, n))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    fn cfg(rate_bps: u64) -> DownlinkConfig {
        DownlinkConfig {
            rate_bps,
            burst: 16 * 1024,
            queue: Duration::from_millis(200),
        }
    }

    /// Offers `size`-byte datagrams every `gap` for `secs`, each numbered in its first 4
    /// bytes, and drains the downlink every 100 µs; returns (number, offered, released).
    fn drive(
        d: &mut Downlink,
        t0: Instant,
        size: usize,
        gap: Duration,
        secs: f64,
    ) -> Vec<(u32, Instant, Instant)> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        let mut buf = [0u8; 2048];
        let step = Duration::from_micros(100);
        let end = t0 + Duration::from_secs_f64(secs);
        let mut now = t0;
        let mut next = t0;
        let mut k = 0u32;
        while now < end + Duration::from_secs(1) {
            if now < end && now >= next {
                let mut p = vec![0u8; size];
                p[..4].copy_from_slice(&k.to_be_bytes());
                sent.push(now);
                if d.admit(now, &p) == Admit::Now {
                    out.push((k, now, now));
                }
                k += 1;
                next += gap;
            }
            while let Some((at, n)) = d.pop_due(now, &mut buf) {
                assert_eq!(n, size);
                let i = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                assert!(at <= now);
                out.push((i, sent[i as usize], at));
            }
            now += step;
        }
        out
    }

    #[test]
    fn traffic_below_the_rate_passes_at_once_and_in_order() {
        let t0 = Instant::now();
        let mut d = Downlink::new(cfg(2_000_000), t0);
        // 1 Mbit/s of 1000-byte datagrams.
        let out = drive(&mut d, t0, 1000, Duration::from_millis(8), 3.0);
        assert_eq!(out.len(), 375);
        assert!(out.iter().all(|(_, s, r)| s == r));
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(d.stats().drops, 0);
    }

    #[test]
    fn twice_the_rate_is_held_to_the_rate_with_tail_drops_and_bounded_delay() {
        let t0 = Instant::now();
        let mut d = Downlink::new(cfg(600_000), t0);
        // 1.2 Mbit/s offered: 1200-byte datagrams every 8 ms, for 10 s.
        let out = drive(&mut d, t0, 1200, Duration::from_millis(8), 10.0);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "order kept");
        let (first, last) = (out[0].2, out[out.len() - 1].2);
        let bps = (out.len() - 1) as f64 * 1200.0 * 8.0 / (last - first).as_secs_f64();
        assert!((bps - 600_000.0).abs() / 600_000.0 < 0.03, "{bps} bit/s");
        let s = d.stats();
        assert_eq!(s.datagrams, 1250);
        assert_eq!(s.drops as usize + out.len(), 1250);
        assert!(s.drops > 550, "{s:?}");
        let worst = out.iter().map(|(_, s, r)| *r - *s).max().unwrap();
        assert!(worst <= Duration::from_millis(201), "{worst:?}");
        assert!(
            worst >= Duration::from_millis(150),
            "the queue filled: {worst:?}"
        );
    }

    #[test]
    fn without_a_bucket_every_datagram_arrives_after_its_serialization() {
        let t0 = Instant::now();
        let mut d = Downlink::new(
            DownlinkConfig {
                rate_bps: 600_000,
                burst: 0,
                queue: Duration::from_millis(200),
            },
            t0,
        );
        let mut buf = [0u8; 2048];
        // Three 1200-byte datagrams at once: 16 ms each on the wire.
        for _ in 0..3 {
            assert_eq!(d.admit(t0, &[7u8; 1200]), Admit::Queued);
        }
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(d.next_release(), Some(ms(16)));
        assert_eq!(d.pop_due(ms(15), &mut buf), None);
        assert_eq!(d.pop_due(ms(16), &mut buf), Some((ms(16), 1200)));
        assert_eq!(d.pop_due(ms(50), &mut buf), Some((ms(32), 1200)));
        assert_eq!(d.pop_due(ms(50), &mut buf), Some((ms(48), 1200)));
        assert_eq!(d.pop_due(ms(50), &mut buf), None);
        // A padding probe of five small packets is spread at the rate too.
        let mut last = ms(100);
        for _ in 0..5 {
            d.admit(ms(100), &[0u8; 250]);
        }
        while let Some((at, _)) = d.pop_due(ms(200), &mut buf) {
            assert!(at - last >= Duration::from_micros(3300), "{:?}", at - last);
            last = at;
        }
        let spread = last - ms(100);
        assert!(spread.abs_diff(Duration::from_micros(16_667)) < Duration::from_micros(5));
    }

    #[test]
    fn small_and_large_datagrams_share_the_ring_across_its_wrap() {
        let t0 = Instant::now();
        let mut d = Downlink::new(
            DownlinkConfig {
                rate_bps: 100_000,
                burst: 1500,
                queue: Duration::from_millis(500),
            },
            t0,
        );
        let mut buf = [0u8; 2048];
        let mut now = t0;
        let mut expect = std::collections::VecDeque::new();
        let mut got = 0;
        // Sizes cycling through 60..1460 bytes, offered faster than the rate for 20 s: the
        // ring wraps many times with records of every size.
        for k in 0..20_000u32 {
            let size = 60 + (k as usize * 397) % 1400;
            let mut p = vec![(k % 251) as u8; size];
            p[..4].copy_from_slice(&k.to_be_bytes());
            match d.admit(now, &p) {
                Admit::Now => got += 1,
                Admit::Queued => expect.push_back((k, size)),
                Admit::Dropped => {}
            }
            now += Duration::from_millis(1);
            while let Some((_, n)) = d.pop_due(now, &mut buf) {
                let (k, size) = expect.pop_front().unwrap();
                assert_eq!(n, size);
                assert_eq!(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]), k);
                assert!(buf[4..n].iter().all(|&b| b == (k % 251) as u8));
                got += 1;
            }
        }
        assert!(got > 200 && d.stats().drops > 10_000, "{:?}", d.stats());
        assert!(d.queued() == expect.len());
    }
}
