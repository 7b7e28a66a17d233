//! A min-heap of (deadline, client) entries with lazy deletion: a client is rescheduled by
//! pushing an earlier entry; entries that no longer match the client's scheduled deadline are
//! skipped when popped. Capacity is reserved up front, so steady state does not allocate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Deadlines of many clients.
#[derive(Debug, Default)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl TimerHeap {
    /// A heap with room for `capacity` entries before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        TimerHeap {
            heap: BinaryHeap::with_capacity(capacity),
        }
    }

    /// Adds an entry.
    pub fn push(&mut self, at: Instant, client: u32) {
        self.heap.push(Reverse((at, client)));
    }

    /// The earliest deadline.
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32)> {
        match self.heap.peek() {
            Some(Reverse((t, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries held (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_come_out_in_deadline_order_once_due() {
        let t0 = Instant::now();
        let mut h = TimerHeap::with_capacity(8);
        h.push(t0 + Duration::from_millis(30), 3);
        h.push(t0 + Duration::from_millis(10), 1);
        h.push(t0 + Duration::from_millis(20), 2);
        assert_eq!(h.peek(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(h.pop_due(t0), None);
        let now = t0 + Duration::from_millis(25);
        assert_eq!(h.pop_due(now).map(|e| e.1), Some(1));
        assert_eq!(h.pop_due(now).map(|e| e.1), Some(2));
        assert_eq!(h.pop_due(now), None);
        assert_eq!(h.len(), 1);
    }
}
