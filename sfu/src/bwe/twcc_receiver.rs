//! Receive side of transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-
//! extensions-01 §3): records the arrival time of every transport-wide sequence number a
//! publisher sends and reports them back in periodic transport-cc feedback packets.
//!
//! Sans-IO: time comes in as `now`; feedback goes out through [`TwccReceiver::poll_feedback`]
//! when [`TwccReceiver::poll_timeout`] says it is due. Memory is a fixed ring allocated once.

use crate::types::{SeqNo, Ssrc};
use crate::wire::rtcp::twcc::{
    DELTA_UNIT_US, REFERENCE_UNIT_US, TwccHeader, TwccSizer, write_twcc_iter,
};
use std::time::{Duration, Instant};

/// Tuning of a [`TwccReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccReceiverConfig {
    /// Time between feedback packets while packets arrive.
    pub interval: Duration,
    /// Largest feedback packet written; what does not fit goes into the next one.
    pub max_feedback_len: usize,
    /// Sequence numbers remembered (rounded up to a power of two): late packets older than
    /// this behind the newest are ignored, and unreported packets that fall out of it are lost
    /// to feedback.
    pub history: usize,
}

impl Default for TwccReceiverConfig {
    fn default() -> Self {
        TwccReceiverConfig {
            interval: Duration::from_millis(50),
            max_feedback_len: 1200,
            history: 2048,
        }
    }
}

/// Arrival record of one sequence number.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Extended sequence number this slot holds, `u64::MAX` when empty.
    seq: u64,
    /// Arrival time in microseconds since the first packet.
    arrival_us: i64,
}

const EMPTY: Slot = Slot {
    seq: u64::MAX,
    arrival_us: 0,
};
/// Offset of the first extended sequence number, so that packets reordered before the first
/// one do not underflow.
const EXT_BASE: u64 = 1 << 32;

/// Records transport-wide sequence number arrivals and writes transport-cc feedback.
pub struct TwccReceiver {
    config: TwccReceiverConfig,
    slots: Box<[Slot]>,
    mask: u64,
    /// Arrival of the first packet: time zero of the reference clock.
    epoch: Option<Instant>,
    /// Highest extended sequence number received.
    highest: Option<u64>,
    /// First extended sequence number not yet reported.
    window_start: u64,
    /// When the oldest unreported packet arrived.
    pending_since: Option<Instant>,
    /// When the last feedback was written.
    last_sent: Option<Instant>,
    /// The last feedback could not cover everything: the next one is due at once.
    backlog: bool,
    fb_pkt_count: u8,
}

impl std::fmt::Debug for TwccReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ring is left out: thousands of slots say little in a log line.
        f.debug_struct("TwccReceiver")
            .field("config", &self.config)
            .field("highest", &self.highest)
            .field("window_start", &self.window_start)
            .field("pending_since", &self.pending_since)
            .field("last_sent", &self.last_sent)
            .field("fb_pkt_count", &self.fb_pkt_count)
            .finish_non_exhaustive()
    }
}

impl Default for TwccReceiver {
    fn default() -> Self {
        Self::new(TwccReceiverConfig::default())
    }
}

impl TwccReceiver {
    /// A receiver with its ring allocated.
    pub fn new(config: TwccReceiverConfig) -> Self {
        let n = config.history.clamp(16, 1 << 15).next_power_of_two();
        TwccReceiver {
            config,
            slots: vec![EMPTY; n].into_boxed_slice(),
            mask: n as u64 - 1,
            epoch: None,
            highest: None,
            window_start: 0,
            pending_since: None,
            last_sent: None,
            backlog: false,
            fb_pkt_count: 0,
        }
    }

    fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Records the arrival at `now` of the packet carrying `transport_seq`. Duplicates keep the
    /// first arrival; a late packet whose number was already reported is reported again with
    /// the next feedback (as libwebrtc does); packets older than the history are ignored.
    pub fn on_packet(&mut self, now: Instant, transport_seq: u16) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival_us =
            i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX / 2);
        let ext = match self.highest {
            None => EXT_BASE + u64::from(transport_seq),
            Some(h) => {
                let diff = i64::from(transport_seq.wrapping_sub(h as u16) as i16);
                h.saturating_add_signed(diff)
            }
        };
        let cap = self.capacity();
        match self.highest {
            None => {
                self.highest = Some(ext);
                self.window_start = ext;
            }
            Some(h) if ext > h => {
                self.highest = Some(ext);
                if ext - self.window_start >= cap {
                    // A jump beyond the history: what was not reported before it is given up.
                    self.window_start = ext + 1 - cap;
                }
            }
            Some(h) if h - ext >= cap => return,
            Some(_) => {}
        }
        let slot = &mut self.slots[(ext & self.mask) as usize];
        if slot.seq == ext {
            return;
        }
        *slot = Slot {
            seq: ext,
            arrival_us,
        };
        if ext < self.window_start {
            self.window_start = ext;
        }
        if self.pending_since.is_none() {
            self.pending_since = Some(now);
        }
    }

    fn arrival(&self, ext: u64) -> Option<i64> {
        let s = self.slots[(ext & self.mask) as usize];
        (s.seq == ext).then_some(s.arrival_us)
    }

    /// When the next feedback is due: `interval` after the previous one, or at once after an
    /// idle period or when the previous one could not hold everything. `None` while nothing
    /// is waiting to be reported.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending_since?;
        Some(match self.last_sent {
            Some(last) if self.backlog => last,
            Some(last) => pending.max(last + self.config.interval),
            None => pending,
        })
    }

    /// Writes the next feedback packet into `out` when one is due at `now`; returns its
    /// length. Call again while it returns `Some`: a backlog larger than one packet goes out
    /// in several. `out` should hold `max_feedback_len` bytes; a smaller buffer limits the
    /// packet size, and one too small for a single status (24 bytes) gets nothing.
    pub fn poll_feedback(
        &mut self,
        now: Instant,
        sender_ssrc: Ssrc,
        media_ssrc: Ssrc,
        out: &mut [u8],
    ) -> Option<usize> {
        if now < self.poll_timeout()? {
            return None;
        }
        let highest = self.highest?;
        let start = self.window_start;
        // The reference time is the first received packet's arrival, in 64 ms units.
        let first_rx = (start..=highest).find_map(|s| self.arrival(s))?;
        let reference = first_rx.div_euclid(REFERENCE_UNIT_US);
        let base_ticks = reference * (REFERENCE_UNIT_US / DELTA_UNIT_US);

        let limit = self.config.max_feedback_len.min(out.len());
        let mut sizer = TwccSizer::new();
        let mut statuses = Statuses {
            rx: self,
            next: start,
            end: highest + 1,
            prev: base_ticks,
        };
        let mut count = 0u64;
        let mut last_received = None;
        let walk = statuses.clone();
        for status in walk {
            let mut trial = sizer;
            if trial.push(status).is_err() || trial.len() > limit {
                break;
            }
            sizer = trial;
            count += 1;
            if status.is_some() {
                last_received = Some(count);
            }
        }
        // End on a received packet: trailing gaps may still fill in.
        let count = last_received?;
        statuses.end = start + count;
        let hdr = TwccHeader {
            sender: sender_ssrc,
            media: media_ssrc,
            base_seq: SeqNo(start as u16),
            reference_time: (reference as u32) & 0x00ff_ffff,
            fb_pkt_count: self.fb_pkt_count,
        };
        let len = write_twcc_iter(out, &hdr, statuses).ok()?;
        self.fb_pkt_count = self.fb_pkt_count.wrapping_add(1);
        self.window_start = start + count;
        self.last_sent = Some(now);
        self.backlog = self.window_start <= highest;
        self.pending_since = if self.backlog { Some(now) } else { None };
        Some(len)
    }
}

/// The packet statuses of a range of sequence numbers, with receive deltas in microseconds
/// computed on the 250 µs grid so that rounding never accumulates.
#[derive(Debug, Clone)]
struct Statuses<'a> {
    rx: &'a TwccReceiver,
    next: u64,
    end: u64,
    /// Arrival of the previous received packet, in 250 µs ticks.
    prev: i64,
}

impl Iterator for Statuses<'_> {
    type Item = Option<i64>;

    fn next(&mut self) -> Option<Option<i64>> {
        if self.next >= self.end {
            return None;
        }
        let s = self.next;
        self.next += 1;
        Some(self.rx.arrival(s).map(|us| {
            let ticks = us.div_euclid(DELTA_UNIT_US);
            let delta = ticks - self.prev;
            self.prev = ticks;
            delta * DELTA_UNIT_US
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
