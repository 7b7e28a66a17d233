//! A sliding-window rate limit per key (chat messages per user and stream): at most `limit`
//! events in any `window`. Time is an input.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How many keys may accumulate before idle ones are swept.
const SWEEP_AT: usize = 4096;

/// Per-key sliding windows.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: usize,
    window: Duration,
    hits: HashMap<K, VecDeque<Instant>>,
}

/// The limit is reached; the next event is allowed after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `limit` events per `window` (a limit of 0 allows nothing).
    pub fn new(limit: usize, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            hits: HashMap::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts an event for `key` at `now` if the limit allows it.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Limited> {
        if self.hits.len() >= SWEEP_AT {
            let window = self.window;
            self.hits
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = self.hits.entry(key.clone()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.limit {
            let retry_after = q
                .front()
                .map(|t| self.window.saturating_sub(now.duration_since(*t)))
                .unwrap_or(self.window);
            return Err(Limited { retry_after });
        }
        q.push_back(now);
        Ok(())
    }

    /// Gives back the latest event of `key` (it was not carried out).
    pub fn refund(&mut self, key: &K) {
        if let Some(q) = self.hits.get_mut(key) {
            q.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_ten_seconds_then_refused_until_the_oldest_ages_out() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(5, Duration::from_secs(10));
        let k = "alice".to_string();
        for i in 0..5 {
            assert_eq!(rl.check(&k, t0 + Duration::from_secs(i)), Ok(()));
        }
        let refused = rl.check(&k, t0 + Duration::from_secs(6));
        assert_eq!(
            refused,
            Err(Limited {
                retry_after: Duration::from_secs(4)
            })
        );
        // Refused events do not count: at 10 s the first ages out and one more is allowed.
        assert_eq!(rl.check(&k, t0 + Duration::from_secs(10)), Ok(()));
        assert!(rl.check(&k, t0 + Duration::from_millis(10_500)).is_err());
        assert_eq!(rl.check(&k, t0 + Duration::from_secs(11)), Ok(()));
    }

    #[test]
    fn keys_are_independent_and_refunds_give_a_slot_back() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(1, Duration::from_secs(10));
        let (a, b) = ("a".to_string(), "b".to_string());
        assert!(rl.check(&a, t0).is_ok());
        assert!(rl.check(&b, t0).is_ok());
        assert!(rl.check(&a, t0).is_err());
        rl.refund(&a);
        assert!(rl.check(&a, t0).is_ok());
    }

    #[test]
    fn a_zero_limit_allows_nothing() {
        let mut rl = RateLimiter::new(0, Duration::from_secs(1));
        assert!(rl.check(&1u8, Instant::now()).is_err());
    }
}
