//! The load generator's one clock: nanoseconds since the run started, shared by every thread so
//! that a send time written by a publisher can be subtracted from a subscriber's receive time.

use std::time::{Duration, Instant};

/// Converts instants to nanoseconds since an epoch (the process's start of run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose zero is `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Clock { epoch }
    }

    /// The zero instant.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Nanoseconds from the epoch to `t` (0 for instants before it).
    pub fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The instant `ns` nanoseconds after the epoch.
    pub fn at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }
}
