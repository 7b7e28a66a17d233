//! Throttled keyframe requests toward one publisher's video stream: PLI (RFC 4585 §6.3.1) or FIR
//! (RFC 5104 §4.3.1). Requests arriving faster than the throttle interval are merged into one, and
//! a request that brings no keyframe is repeated a few times.

use std::time::{Duration, Instant};

/// Default minimum time between two requests sent.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);
/// Default number of repeats of a request that brought no keyframe.
pub const DEFAULT_MAX_RETRIES: u8 = 3;

/// Decides when to send keyframe requests to one publisher.
#[derive(Debug, Clone)]
pub struct KeyframeRequester {
    interval: Duration,
    max_retries: u8,
    last_sent: Option<Instant>,
    /// A keyframe is wanted and has not arrived yet.
    wanted: bool,
    /// Sends left for the current want (first send plus retries).
    sends_left: u8,
    fir_seq: u8,
    sent: u64,
}

impl Default for KeyframeRequester {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyframeRequester {
    /// A requester with the default 500 ms throttle and 3 retries.
    pub fn new() -> Self {
        Self::with_interval(DEFAULT_INTERVAL)
    }

    /// A requester sending at most one request per `interval`.
    pub fn with_interval(interval: Duration) -> Self {
        Self {
            interval,
            max_retries: DEFAULT_MAX_RETRIES,
            last_sent: None,
            wanted: false,
            sends_left: 0,
            fir_seq: 0,
            sent: 0,
        }
    }

    /// Sets how many times an unanswered request is repeated (one interval apart).
    pub fn set_max_retries(&mut self, retries: u8) {
        self.max_retries = retries;
    }

    /// Asks for a keyframe. Returns true when a request should be sent now; otherwise the request
    /// is remembered and [`poll`](Self::poll) fires it once the throttle interval has passed.
    pub fn request(&mut self, now: Instant) -> bool {
        self.wanted = true;
        self.sends_left = self.max_retries.saturating_add(1);
        self.poll(now)
    }

    /// Whether a remembered or unanswered request is due now; if so it counts as sent.
    pub fn poll(&mut self, now: Instant) -> bool {
        if !self.wanted || self.sends_left == 0 {
            return false;
        }
        if self.last_sent.is_some_and(|t| now < t + self.interval) {
            return false;
        }
        self.last_sent = Some(now);
        self.sends_left -= 1;
        self.sent += 1;
        true
    }

    /// When [`poll`](Self::poll) will next return true, if a request is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.wanted || self.sends_left == 0 {
            return None;
        }
        // An outstanding request always has a send behind it: `request` sends at once when
        // nothing was sent before.
        self.last_sent.map(|t| t + self.interval)
    }

    /// A keyframe arrived: nothing is outstanding any more.
    pub fn on_keyframe(&mut self, _now: Instant) {
        self.wanted = false;
        self.sends_left = 0;
    }

    /// Whether a keyframe is wanted and has not arrived.
    pub fn is_waiting(&self) -> bool {
        self.wanted
    }

    /// The sequence number for the next FIR entry (RFC 5104 §4.3.1.1: incremented per new request).
    pub fn next_fir_seq(&mut self) -> u8 {
        self.fir_seq = self.fir_seq.wrapping_add(1);
        self.fir_seq
    }

    /// Requests sent since creation.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_request_is_sent_at_once() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::new();
        assert!(k.request(t0));
        assert_eq!(k.sent(), 1);
    }

    #[test]
    fn requests_within_interval_are_merged() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::new();
        assert!(k.request(t0));
        assert!(!k.request(t0 + ms(100)));
        assert!(!k.request(t0 + ms(200)));
        assert_eq!(k.poll_timeout(), Some(t0 + ms(500)));
        assert!(!k.poll(t0 + ms(499)));
        assert!(k.poll(t0 + ms(500)));
        assert_eq!(k.sent(), 2);
    }

    #[test]
    fn keyframe_cancels_pending_request() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::new();
        assert!(k.request(t0));
        assert!(!k.request(t0 + ms(100)));
        k.on_keyframe(t0 + ms(150));
        assert_eq!(k.poll_timeout(), None);
        assert!(!k.poll(t0 + ms(600)));
        assert!(!k.is_waiting());
    }

    #[test]
    fn unanswered_request_is_repeated_then_stops() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::new();
        assert!(k.request(t0));
        let mut fired = Vec::new();
        while let Some(t) = k.poll_timeout() {
            assert!(k.poll(t));
            fired.push(t - t0);
        }
        assert_eq!(fired, vec![ms(500), ms(1000), ms(1500)]);
        assert!(k.is_waiting());
        // A new request starts a new round, throttled as before.
        assert!(!k.request(t0 + ms(1600)));
        assert!(k.poll(t0 + ms(2000)));
    }

    #[test]
    fn request_after_interval_is_sent_at_once() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::new();
        assert!(k.request(t0));
        k.on_keyframe(t0 + ms(40));
        assert!(k.request(t0 + ms(700)));
    }

    #[test]
    fn interval_is_configurable() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::with_interval(ms(200));
        assert!(k.request(t0));
        assert!(!k.request(t0 + ms(199)));
        assert!(k.poll(t0 + ms(200)));
    }

    #[test]
    fn fir_sequence_increments_and_wraps() {
        let mut k = KeyframeRequester::new();
        assert_eq!(k.next_fir_seq(), 1);
        assert_eq!(k.next_fir_seq(), 2);
        for _ in 0..253 {
            k.next_fir_seq();
        }
        assert_eq!(k.next_fir_seq(), 0);
    }
}
