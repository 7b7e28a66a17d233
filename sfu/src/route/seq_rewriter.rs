//! Per-subscriber rewriting of one outgoing RTP stream's sequence numbers and timestamps
//! (RFC 3550 §5.1, RFC 7667 §3.7 "selective forwarding middlebox"): packets the SFU chooses not
//! to forward leave no gap, reordering keeps each packet's number, NACKs translate back to the
//! publisher's numbering, and a source switch continues the output without a jump.

use crate::types::{ExtSeq, SeqNo};

/// How many recent input and output numbers are remembered for reordering and NACK translation.
pub const REWRITE_WINDOW: usize = 1024;

const W: u64 = REWRITE_WINDOW as u64;
// Ring indices of extended and wire numbers agree only if the window divides 2^16.
const _: () = assert!(65_536 % REWRITE_WINDOW == 0);
/// In the input ring: the packet was dropped on purpose and has no output number.
const DROPPED: u32 = 1 << 16;
/// In the input ring: the packet was forwarded (as opposed to only reserved for a missing one).
const SEEN: u32 = 1 << 17;
/// In the output ring: the number was reserved for a packet that was then dropped late.
const HOLE: u32 = 1 << 16;

/// What [`SeqRewriter::drop_packet`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropOutcome {
    /// The packet consumed no output number: the subscriber's sequence stays continuous.
    Absorbed,
    /// The packet arrived after later ones had been numbered, so its output number was already
    /// reserved; that number stays a gap unless the caller fills it (for example with padding).
    Hole(SeqNo),
    /// Nothing to do: not started, before the anchor, older than the window, or forwarded before.
    Ignored,
}

/// Counters of a [`SeqRewriter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteStats {
    /// Packets given an output number (duplicates count again).
    pub forwarded: u64,
    /// Packets dropped without using an output number.
    pub absorbed: u64,
    /// Late drops that left a gap.
    pub holes: u64,
    /// Input numbers skipped without output numbers by a jump larger than the window.
    pub compressed: u64,
}

/// Maps one input stream (publisher numbering, extended) to one subscriber's output numbering.
///
/// Output numbers are kept extended internally (starting at one roll-over so nothing underflows)
/// and written as 16 bits; timestamps are shifted by a 32-bit offset, so both wrap freely.
#[derive(Clone)]
pub struct SeqRewriter {
    out_seq_start: SeqNo,
    out_ts_start: u32,
    started: bool,
    /// Input numbers below this are not forwarded (packets from before the start or switch).
    in_anchor: u64,
    /// The next new input number: everything below it was forwarded, dropped or reserved.
    in_next: u64,
    /// Output numbers below this belong to an earlier source.
    out_anchor: u64,
    /// `out = in + delta` (wrapping) for the next new input number.
    delta: u64,
    ts_offset: u32,
    /// Output timestamp of the newest forwarded packet.
    last_out_ts: u32,
    /// Per input number: output wire number in the low 16 bits, plus `DROPPED`/`SEEN`.
    in_ring: Box<[u32]>,
    /// Per output number: input wire number in the low 16 bits, plus `HOLE`.
    out_ring: Box<[u32]>,
    stats: RewriteStats,
}

impl std::fmt::Debug for SeqRewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeqRewriter")
            .field("started", &self.started)
            .field("in_anchor", &self.in_anchor)
            .field("in_next", &self.in_next)
            .field("out_next", &self.out_next())
            .field("ts_offset", &self.ts_offset)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SeqRewriter {
    /// A rewriter whose first forwarded packet will carry `out_seq_start` and `out_ts_start`.
    /// All memory is allocated here.
    pub fn new(out_seq_start: SeqNo, out_ts_start: u32) -> Self {
        Self {
            out_seq_start,
            out_ts_start,
            started: false,
            in_anchor: 0,
            in_next: 0,
            out_anchor: 0,
            delta: 0,
            ts_offset: 0,
            last_out_ts: out_ts_start,
            in_ring: vec![0; REWRITE_WINDOW].into_boxed_slice(),
            out_ring: vec![0; REWRITE_WINDOW].into_boxed_slice(),
            stats: RewriteStats::default(),
        }
    }

    /// Anchors the mapping at the first packet to forward (a keyframe start): `in_seq` will come
    /// out as `out_seq_start` with `out_ts_start`. On a rewriter already started this is a
    /// [`rebase`](Self::rebase) with a one-tick timestamp gap.
    pub fn start(&mut self, in_seq: ExtSeq, in_ts: u32) {
        if self.started {
            self.rebase(in_seq, in_ts, 1);
            return;
        }
        self.started = true;
        let out = (1u64 << 16) | u64::from(self.out_seq_start.0);
        self.anchor(in_seq.0, out);
        self.ts_offset = self.out_ts_start.wrapping_sub(in_ts);
        self.last_out_ts = self.out_ts_start;
    }

    /// Continues the output after a source switch: `in_seq` (from the new source) will come out
    /// right after the last output number, with timestamp `ts_gap` after the last forwarded one.
    /// Output numbers from before the switch no longer translate back. Before any start this is
    /// [`start`](Self::start).
    pub fn rebase(&mut self, in_seq: ExtSeq, in_ts: u32, ts_gap: u32) {
        if !self.started {
            self.start(in_seq, in_ts);
            return;
        }
        let out = self.out_next();
        self.anchor(in_seq.0, out);
        let out_ts = self.last_out_ts.wrapping_add(ts_gap);
        self.ts_offset = out_ts.wrapping_sub(in_ts);
    }

    /// The output number and timestamp for a packet to forward; `None` before the start, for
    /// packets older than the anchor or than the window, and for packets dropped before. A
    /// reordered packet gets the number reserved for it; a duplicate gets the same number again.
    pub fn forward(&mut self, in_seq: ExtSeq, in_ts: u32) -> Option<(SeqNo, u32)> {
        if !self.started || in_seq.0 < self.in_anchor {
            return None;
        }
        let s = in_seq.0;
        let out_ts = in_ts.wrapping_add(self.ts_offset);
        if s >= self.in_next {
            self.advance_to(s);
            let out = s.wrapping_add(self.delta);
            self.in_ring[ring(s)] = u32::from(out as u16) | SEEN;
            self.out_ring[ring(out)] = u32::from(s as u16);
            self.in_next = s + 1;
            self.last_out_ts = out_ts;
            self.stats.forwarded += 1;
            return Some((SeqNo(out as u16), out_ts));
        }
        if self.in_next - s > W {
            return None;
        }
        let e = &mut self.in_ring[ring(s)];
        if *e & DROPPED != 0 {
            return None;
        }
        *e |= SEEN;
        self.stats.forwarded += 1;
        Some((SeqNo(*e as u16), out_ts))
    }

    /// Records that the packet `in_seq` is deliberately not forwarded, so that it takes no output
    /// number and the subscriber sees no gap (a gap would make it send NACKs).
    pub fn drop_packet(&mut self, in_seq: ExtSeq) -> DropOutcome {
        if !self.started || in_seq.0 < self.in_anchor {
            return DropOutcome::Ignored;
        }
        let s = in_seq.0;
        if s >= self.in_next {
            self.advance_to(s);
            self.in_ring[ring(s)] = DROPPED;
            self.in_next = s + 1;
            self.delta = self.delta.wrapping_sub(1);
            self.stats.absorbed += 1;
            return DropOutcome::Absorbed;
        }
        if self.in_next - s > W {
            return DropOutcome::Ignored;
        }
        let e = &mut self.in_ring[ring(s)];
        if *e & DROPPED != 0 {
            return DropOutcome::Absorbed;
        }
        if *e & SEEN != 0 {
            return DropOutcome::Ignored;
        }
        let out = SeqNo(*e as u16);
        *e = DROPPED;
        // The window divides 2^16, so the wire number indexes the ring like the extended one.
        self.out_ring[ring(u64::from(out.0))] |= HOLE;
        self.stats.holes += 1;
        DropOutcome::Hole(out)
    }

    /// The publisher's number for an output number the subscriber NACKed, if it is one of the
    /// last [`REWRITE_WINDOW`] output numbers of the current source and stands for a packet that
    /// was forwarded or is missing upstream (not for a late drop's hole).
    pub fn reverse(&self, out_seq: SeqNo) -> Option<ExtSeq> {
        if !self.started {
            return None;
        }
        let out_next = self.out_next();
        let d = u64::from((out_next as u16).wrapping_sub(out_seq.0));
        if d == 0 || d > W {
            return None;
        }
        // Every output number from the anchor up is written to the ring when it is assigned,
        // so an entry within the window is the one for this number.
        let o = out_next - d;
        if o < self.out_anchor {
            return None;
        }
        let entry = self.out_ring[ring(o)];
        if entry & HOLE != 0 {
            return None;
        }
        // Output numbers advance no faster than input numbers, so the input is at least `d`
        // back; half the 16-bit space is as far back as its wire number can be placed.
        let di = u64::from((self.in_next as u16).wrapping_sub(entry as u16));
        if di < d || di > 1 << 15 {
            return None;
        }
        let i = self.in_next.checked_sub(di)?;
        (i >= self.in_anchor).then_some(ExtSeq(i))
    }

    /// The subscriber's timestamp for a source timestamp under the current mapping (for
    /// retransmissions and sender reports).
    pub fn map_timestamp(&self, in_ts: u32) -> u32 {
        in_ts.wrapping_add(self.ts_offset)
    }

    /// Whether [`start`](Self::start) was called.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The output number the next new packet will get.
    pub fn next_out_seq(&self) -> SeqNo {
        if self.started {
            SeqNo(self.out_next() as u16)
        } else {
            self.out_seq_start
        }
    }

    /// The output timestamp of the newest forwarded packet (the start timestamp before any).
    pub fn last_out_ts(&self) -> u32 {
        self.last_out_ts
    }

    /// Counters since creation.
    pub fn stats(&self) -> RewriteStats {
        self.stats
    }

    fn out_next(&self) -> u64 {
        self.in_next.wrapping_add(self.delta)
    }

    /// Sets the mapping so that input `s` is next and comes out as `out`.
    fn anchor(&mut self, s: u64, out: u64) {
        self.in_anchor = s;
        self.in_next = s;
        self.out_anchor = out;
        self.delta = out.wrapping_sub(s);
    }

    /// Reserves output numbers for the input numbers from `in_next` up to (not including) `s`,
    /// which are missing. A gap wider than the window is narrowed to the window: the older
    /// numbers take no output numbers, so the subscriber never sees a jump its unwrapping or
    /// NACK window could not follow.
    fn advance_to(&mut self, s: u64) {
        if s - self.in_next > W {
            let skip = s - W - self.in_next;
            self.delta = self.delta.wrapping_sub(skip);
            self.in_next += skip;
            self.stats.compressed += skip;
        }
        for g in self.in_next..s {
            let out = g.wrapping_add(self.delta);
            self.in_ring[ring(g)] = u32::from(out as u16);
            self.out_ring[ring(out)] = u32::from(g as u16);
        }
    }
}

fn ring(n: u64) -> usize {
    (n % W) as usize
}

#[cfg(test)]
mod tests;
