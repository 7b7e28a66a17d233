//! Sequence continuity of one received RTP stream, by extended sequence number (RFC 3550 A.1
//! unwrapping is the caller's): which packets arrived once, twice, late or through a
//! retransmission, and how many never came. A fixed bitmap of the last [`WINDOW`] numbers; no
//! allocation.

/// Sequence numbers remembered behind the newest one.
pub const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The newest packet so far (possibly after a gap).
    InOrder,
    /// Older than the newest, not seen before, not a retransmission: reordered.
    Reordered,
    /// Older than the newest, not seen before, carried by a retransmission: recovered.
    Recovered,
    /// Seen before.
    Duplicate,
    /// Too old to tell (behind the window); counted as received.
    TooOld,
}

/// Counters of a [`Continuity`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContinuityStats {
    /// Distinct packets received.
    pub received: u64,
    /// Packets expected: from the first to the newest sequence number.
    pub expected: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub recovered: u64,
    /// Numbers skipped when the newest advanced (each gap counted once, before any recovery).
    pub gaps: u64,
    pub too_old: u64,
}

impl ContinuityStats {
    /// Packets never received: expected minus received (0 when duplicates of old packets make
    /// it negative).
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    /// What happened since `base` (an earlier copy of these counters).
    pub fn since(&self, base: &ContinuityStats) -> ContinuityStats {
        ContinuityStats {
            received: self.received.saturating_sub(base.received),
            expected: self.expected.saturating_sub(base.expected),
            duplicates: self.duplicates.saturating_sub(base.duplicates),
            reordered: self.reordered.saturating_sub(base.reordered),
            recovered: self.recovered.saturating_sub(base.recovered),
            gaps: self.gaps.saturating_sub(base.gaps),
            too_old: self.too_old.saturating_sub(base.too_old),
        }
    }

    /// Adds another stream's counters.
    pub fn add(&mut self, o: &ContinuityStats) {
        self.received += o.received;
        self.expected += o.expected;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.recovered += o.recovered;
        self.gaps += o.gaps;
        self.too_old += o.too_old;
    }
}

/// Continuity of one stream.
#[derive(Debug, Clone)]
pub struct Continuity {
    seen: [u64; WORDS],
    first: Option<u64>,
    newest: u64,
    stats: ContinuityStats,
}

impl Default for Continuity {
    fn default() -> Self {
        Self::new()
    }
}

impl Continuity {
    /// Nothing received yet.
    pub fn new() -> Self {
        Continuity {
            seen: [0; WORDS],
            first: None,
            newest: 0,
            stats: ContinuityStats::default(),
        }
    }

    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn is_seen(&self, seq: u64) -> bool {
        let (w, b) = Self::bit(seq);
        self.seen[w] & b != 0
    }

    fn mark(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        self.seen[w] |= b;
    }

    fn clear(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        self.seen[w] &= !b;
    }

    /// Records the packet with extended sequence number `seq`; `retransmission` when it came
    /// as RTX (or otherwise marked as a resend).
    pub fn on_packet(&mut self, seq: u64, retransmission: bool) -> Arrival {
        let Some(first) = self.first else {
            self.first = Some(seq);
            self.newest = seq;
            self.mark(seq);
            self.stats.received = 1;
            self.stats.expected = 1;
            return Arrival::InOrder;
        };
        if seq > self.newest {
            let skipped = seq - self.newest - 1;
            self.stats.gaps += skipped;
            if seq - self.newest >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for s in self.newest + 1..seq {
                    self.clear(s);
                }
            }
            self.newest = seq;
            self.mark(seq);
            self.stats.received += 1;
            self.stats.expected = seq - first.min(seq) + 1;
            return Arrival::InOrder;
        }
        if self.newest - seq >= WINDOW {
            self.stats.too_old += 1;
            self.stats.received += 1;
            return Arrival::TooOld;
        }
        if self.is_seen(seq) && seq >= first {
            self.stats.duplicates += 1;
            return Arrival::Duplicate;
        }
        if seq < first {
            // Reordered across the very first packet: the stream began earlier.
            self.first = Some(seq);
            self.stats.expected = self.newest - seq + 1;
        }
        self.mark(seq);
        self.stats.received += 1;
        if retransmission {
            self.stats.recovered += 1;
            Arrival::Recovered
        } else {
            self.stats.reordered += 1;
            Arrival::Reordered
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ContinuityStats {
        self.stats
    }

    /// The newest sequence number, if any arrived.
    pub fn newest(&self) -> Option<u64> {
        self.first.map(|_| self.newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(c: &mut Continuity, seqs: &[u64]) -> Vec<Arrival> {
        seqs.iter().map(|&s| c.on_packet(s, false)).collect()
    }

    #[test]
    fn an_unbroken_stream_has_no_loss() {
        let mut c = Continuity::new();
        for s in 1000..2000 {
            assert_eq!(c.on_packet(s, false), Arrival::InOrder);
        }
        let st = c.stats();
        assert_eq!((st.received, st.expected, st.lost()), (1000, 1000, 0));
        assert_eq!(st.gaps + st.duplicates + st.reordered, 0);
    }

    #[test]
    fn injected_loss_is_counted_as_lost() {
        let mut c = Continuity::new();
        let mut dropped = 0;
        for s in 0..10_000u64 {
            if s % 50 == 7 {
                dropped += 1;
                continue;
            }
            c.on_packet(s, false);
        }
        let st = c.stats();
        assert_eq!(st.lost(), dropped);
        assert_eq!(st.gaps, dropped);
        assert_eq!(st.expected, 10_000);
    }

    #[test]
    fn reordering_is_counted_and_is_not_loss() {
        let mut c = Continuity::new();
        let a = feed(&mut c, &[1, 2, 4, 3, 5, 8, 6, 7, 9]);
        assert_eq!(a[3], Arrival::Reordered);
        assert_eq!(a[6], Arrival::Reordered);
        let st = c.stats();
        assert_eq!((st.reordered, st.lost(), st.gaps), (3, 0, 3));
    }

    #[test]
    fn duplicates_are_counted_once_and_do_not_hide_loss() {
        let mut c = Continuity::new();
        let a = feed(&mut c, &[1, 2, 2, 3, 5, 5, 3]);
        assert_eq!(a[2], Arrival::Duplicate);
        assert_eq!(a[5], Arrival::Duplicate);
        assert_eq!(a[6], Arrival::Duplicate);
        let st = c.stats();
        assert_eq!(
            (st.duplicates, st.received, st.expected, st.lost()),
            (3, 4, 5, 1)
        );
    }

    #[test]
    fn retransmissions_recover_gaps() {
        let mut c = Continuity::new();
        feed(&mut c, &[10, 11, 14, 15]);
        assert_eq!(c.stats().lost(), 2);
        assert_eq!(c.on_packet(12, true), Arrival::Recovered);
        assert_eq!(c.on_packet(13, true), Arrival::Recovered);
        assert_eq!(c.on_packet(13, true), Arrival::Duplicate);
        let st = c.stats();
        assert_eq!((st.recovered, st.lost(), st.gaps), (2, 0, 2));
    }

    #[test]
    fn a_packet_before_the_first_extends_the_stream() {
        let mut c = Continuity::new();
        feed(&mut c, &[101, 102, 100]);
        let st = c.stats();
        assert_eq!((st.expected, st.received, st.reordered), (3, 3, 1));
    }

    #[test]
    fn jumps_past_the_window_forget_old_state() {
        let mut c = Continuity::new();
        feed(&mut c, &[1, 2, 3]);
        assert_eq!(c.on_packet(3 + WINDOW + 10, false), Arrival::InOrder);
        assert_eq!(c.on_packet(3, false), Arrival::TooOld);
        assert_eq!(c.on_packet(3 + WINDOW + 5, false), Arrival::Reordered);
        assert_eq!(c.on_packet(3 + WINDOW + 5, false), Arrival::Duplicate);
    }

    #[test]
    fn mixed_loss_reorder_and_duplicates_add_up() {
        // 0..1000 with every 10th dropped, every 7th duplicated, pairs swapped every 13.
        let mut order: Vec<u64> = (0..1000).filter(|s| s % 10 != 3).collect();
        for i in (0..order.len() - 1).step_by(13) {
            order.swap(i, i + 1);
        }
        let mut with_dups = Vec::new();
        for (i, s) in order.iter().enumerate() {
            with_dups.push(*s);
            if i % 7 == 0 {
                with_dups.push(*s);
            }
        }
        let mut c = Continuity::new();
        feed(&mut c, &with_dups);
        let st = c.stats();
        assert_eq!(st.lost(), 100);
        assert_eq!(st.duplicates, order.len().div_ceil(7) as u64);
        assert_eq!(st.received, 900);
        assert!(st.reordered > 60, "{st:?}");
    }
}
