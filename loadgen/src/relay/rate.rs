//! The rate limit of an impaired link: a token bucket in its GCRA form (ITU-T I.371 virtual
//! scheduling) in front of a FIFO queue bounded in waiting time. A packet leaves as soon as the
//! bucket has paid for it: at once while the bucket holds its size in tokens, otherwise when
//! the rate has earned them (with an empty bucket, when its last bit is on the wire). One that
//! would wait longer than the queue allows is dropped at the tail, as a router's drop-tail
//! queue does. Sans-IO, fixed state.

use std::time::{Duration, Instant};

/// A rate limit of `rate_bps` with a bucket of `burst` bytes and a queue of `queue` of waiting
/// time.
#[derive(Debug, Clone, Copy)]
pub struct RateLimiter {
    rate_bps: u64,
    /// Time the bucket's depth is worth at the rate.
    tau: Duration,
    queue: Duration,
    /// Theoretical arrival time: when the bucket would be full again.
    tat: Option<Instant>,
}

impl RateLimiter {
    /// A limiter; a rate of 0 is taken as 1 bit/s.
    pub fn new(rate_bps: u64, burst: usize, queue: Duration) -> Self {
        let rate_bps = rate_bps.max(1);
        RateLimiter {
            rate_bps,
            tau: Duration::from_secs_f64(burst as f64 * 8.0 / rate_bps as f64),
            queue,
            tat: None,
        }
    }

    /// The rate in bits/s.
    pub fn rate_bps(&self) -> u64 {
        self.rate_bps
    }

    /// The longest wait in the queue.
    pub fn queue(&self) -> Duration {
        self.queue
    }

    /// When a packet of `len` bytes that arrives at `now` leaves (`now` when the bucket holds
    /// enough tokens), or `None` when it would wait longer than the queue allows: dropped.
    /// Departures are never earlier than the previous one's.
    pub fn admit(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let cost = Duration::from_secs_f64(len as f64 * 8.0 / self.rate_bps as f64);
        let tat = self.tat.unwrap_or(now).max(now);
        // Earliest conforming time: the bucket holds enough tokens for this packet.
        let depart = (tat + cost).checked_sub(self.tau).unwrap_or(now).max(now);
        if depart - now > self.queue {
            return None;
        }
        self.tat = Some(tat + cost);
        Some(depart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_passes_at_once_and_the_rest_is_paced_at_the_rate() {
        let t0 = Instant::now();
        // 800 kbit/s = 100 bytes per ms; a bucket of 1000 bytes.
        let mut r = RateLimiter::new(800_000, 1000, Duration::from_millis(50));
        for _ in 0..10 {
            assert_eq!(r.admit(t0, 100), Some(t0));
        }
        for k in 1..=10u64 {
            assert_eq!(r.admit(t0, 100), Some(t0 + Duration::from_millis(k)));
        }
    }

    #[test]
    fn a_packet_that_would_wait_past_the_queue_is_dropped_and_costs_nothing() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(800_000, 100, Duration::from_millis(10));
        let mut last = t0;
        let mut dropped = 0;
        for _ in 0..30 {
            match r.admit(t0, 100) {
                Some(d) => {
                    assert!(d >= last && d - t0 <= Duration::from_millis(10));
                    last = d;
                }
                None => dropped += 1,
            }
        }
        assert_eq!(dropped, 19);
        // Once the queue has drained, packets go through again.
        assert_eq!(
            r.admit(t0 + Duration::from_millis(12), 100),
            Some(t0 + Duration::from_millis(12))
        );
    }
}
