//! The NACK responder's guard against resending one packet too often (RFC 4585 §6.2.1 leaves the
//! policy to the sender): a packet already resent is resent again only after about one round trip,
//! bounded below and above. Fixed size, indexed by extended sequence number like the packet cache.

use std::time::{Duration, Instant};

use crate::types::ExtSeq;

/// Default lower bound of the interval between two resends of one packet.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Default upper bound of that interval.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_millis(100);

const EMPTY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    at: Option<Instant>,
}

const EMPTY_ENTRY: Entry = Entry {
    seq: EMPTY,
    at: None,
};

/// Remembers when each recent packet was last resent.
#[derive(Debug, Clone)]
pub struct RetransmitLimiter {
    entries: Box<[Entry]>,
    min_interval: Duration,
    max_interval: Duration,
    allowed: u64,
    suppressed: u64,
}

impl RetransmitLimiter {
    /// A limiter over `slots` sequence numbers (use the packet cache's slot count) with the
    /// default bounds; all memory is allocated here.
    pub fn new(slots: usize) -> Self {
        Self::with_bounds(slots, DEFAULT_MIN_INTERVAL, DEFAULT_MAX_INTERVAL)
    }

    /// A limiter whose resend interval is the RTT clamped to `[min_interval, max_interval]`.
    pub fn with_bounds(slots: usize, min_interval: Duration, max_interval: Duration) -> Self {
        Self {
            entries: vec![EMPTY_ENTRY; slots.max(1)].into_boxed_slice(),
            min_interval,
            max_interval: max_interval.max(min_interval),
            allowed: 0,
            suppressed: 0,
        }
    }

    /// Whether `seq` may be resent now; if so, the resend is recorded. A packet not resent before
    /// is always allowed; one resent before only after `rtt` clamped to the bounds has passed.
    pub fn allow(&mut self, now: Instant, seq: ExtSeq, rtt: Duration) -> bool {
        let interval = rtt.clamp(self.min_interval, self.max_interval);
        let idx = (seq.0 % self.entries.len() as u64) as usize;
        let e = &mut self.entries[idx];
        if e.seq == seq.0
            && let Some(at) = e.at
            && now.saturating_duration_since(at) < interval
        {
            self.suppressed += 1;
            return false;
        }
        *e = Entry {
            seq: seq.0,
            at: Some(now),
        };
        self.allowed += 1;
        true
    }

    /// Resends allowed since creation.
    pub fn allowed(&self) -> u64 {
        self.allowed
    }

    /// Resends refused since creation.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Forgets every recorded resend.
    pub fn clear(&mut self) {
        self.entries.fill(EMPTY_ENTRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_resend_is_allowed() {
        let mut l = RetransmitLimiter::new(1024);
        assert!(l.allow(Instant::now(), ExtSeq(5), ms(50)));
        assert_eq!(l.allowed(), 1);
    }

    #[test]
    fn second_resend_waits_one_rtt() {
        let t0 = Instant::now();
        let mut l = RetransmitLimiter::new(1024);
        assert!(l.allow(t0, ExtSeq(5), ms(50)));
        assert!(!l.allow(t0 + ms(49), ExtSeq(5), ms(50)));
        assert!(l.allow(t0 + ms(50), ExtSeq(5), ms(50)));
        assert_eq!(l.suppressed(), 1);
    }

    #[test]
    fn long_rtt_is_capped_at_max_interval() {
        let t0 = Instant::now();
        let mut l = RetransmitLimiter::new(1024);
        assert!(l.allow(t0, ExtSeq(5), ms(400)));
        assert!(!l.allow(t0 + ms(99), ExtSeq(5), ms(400)));
        assert!(l.allow(t0 + ms(100), ExtSeq(5), ms(400)));
    }

    #[test]
    fn tiny_rtt_is_raised_to_min_interval() {
        let t0 = Instant::now();
        let mut l = RetransmitLimiter::new(1024);
        assert!(l.allow(t0, ExtSeq(5), ms(1)));
        assert!(!l.allow(t0 + ms(9), ExtSeq(5), ms(1)));
        assert!(l.allow(t0 + ms(10), ExtSeq(5), ms(1)));
    }

    #[test]
    fn other_packets_are_independent() {
        let t0 = Instant::now();
        let mut l = RetransmitLimiter::new(1024);
        assert!(l.allow(t0, ExtSeq(5), ms(50)));
        assert!(l.allow(t0, ExtSeq(6), ms(50)));
        // Same slot, a window later: a different packet.
        assert!(l.allow(t0, ExtSeq(5 + 1024), ms(50)));
    }
}
