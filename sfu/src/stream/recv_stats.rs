//! Receive-side statistics of one incoming RTP stream and the reception report block built from
//! them (RFC 3550 §6.4.1, appendix A.3 for loss, A.8 for interarrival jitter).

use std::time::{Duration, Instant};

use crate::stream::ntp::{compact_ntp, duration_to_compact};
use crate::types::ExtSeq;

/// Bounds of the 24-bit signed cumulative-loss field.
const CUMULATIVE_LOST_MIN: i64 = -0x80_0000;
const CUMULATIVE_LOST_MAX: i64 = 0x7f_ffff;

/// One reception report block (RFC 3550 §6.4.1), in host order, ready to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceptionReport {
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Packets expected minus packets received since the start, clamped to 24 bits signed.
    pub cumulative_lost: i32,
    /// Highest sequence number received, with the count of wraps since the first packet in the
    /// upper 16 bits.
    pub ext_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last sender report received, or 0.
    pub last_sr: u32,
    /// Time since that sender report in 1/65536 s, or 0 when none was received.
    pub delay_since_last_sr: u32,
}

/// Statistics of one incoming RTP stream.
#[derive(Debug, Clone)]
pub struct RecvStats {
    clock_rate: u32,
    /// Lowest and highest extended sequence numbers received (meaningful once `started`).
    base_seq: u64,
    max_seq: u64,
    /// Extended number of the first cycle, subtracted so reports count wraps from zero.
    cycle_base: u64,
    started: bool,
    received: u64,
    bytes: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Reference point for turning arrival instants into RTP timestamp units.
    epoch: Option<Instant>,
    /// Relative transit time of the last in-order packet (A.8), in RTP units.
    last_transit: u32,
    last_rtp_ts: u32,
    /// Jitter scaled by 16, as in the integer form of A.8.
    jitter_q4: u32,
    last_sr: u32,
    last_sr_at: Option<Instant>,
}

impl RecvStats {
    /// Statistics for a stream whose RTP clock runs at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            base_seq: 0,
            max_seq: 0,
            cycle_base: 0,
            started: false,
            received: 0,
            bytes: 0,
            expected_prior: 0,
            received_prior: 0,
            epoch: None,
            last_transit: 0,
            last_rtp_ts: 0,
            jitter_q4: 0,
            last_sr: 0,
            last_sr_at: None,
        }
    }

    /// Records a packet arriving at `now` with extended sequence number `ext_seq` and RTP
    /// timestamp `rtp_ts`.
    ///
    /// Jitter is updated only by packets that advance the highest sequence number and carry a new
    /// RTP timestamp (as libwebrtc does): packets of one video frame share a timestamp but are
    /// paced out over time, which is spread that the sender put there, not the network.
    pub fn on_packet(&mut self, now: Instant, ext_seq: ExtSeq, rtp_ts: u32) {
        let seq = ext_seq.0;
        self.received += 1;
        if !self.started {
            self.started = true;
            self.base_seq = seq;
            self.max_seq = seq;
            self.cycle_base = seq & !0xffff;
            self.epoch = Some(now);
            self.last_transit = self.arrival_units(now).wrapping_sub(rtp_ts);
            self.last_rtp_ts = rtp_ts;
            return;
        }
        if seq < self.base_seq {
            self.base_seq = seq;
        }
        if seq > self.max_seq {
            self.max_seq = seq;
            if rtp_ts != self.last_rtp_ts {
                let transit = self.arrival_units(now).wrapping_sub(rtp_ts);
                let d = (transit.wrapping_sub(self.last_transit) as i32).unsigned_abs();
                self.last_transit = transit;
                self.last_rtp_ts = rtp_ts;
                // J += (|D| - J) / 16, kept as 16 * J in integers (RFC 3550 A.8).
                self.jitter_q4 = self
                    .jitter_q4
                    .wrapping_add(d)
                    .wrapping_sub((self.jitter_q4 + 8) >> 4);
            }
        }
    }

    /// Counts `len` bytes of a received packet (kept apart from [`on_packet`](Self::on_packet)
    /// so the caller chooses what it counts: whole datagram or payload).
    pub fn on_bytes(&mut self, len: usize) {
        self.bytes += len as u64;
    }

    /// Records a sender report for this stream carrying the 64-bit NTP timestamp `ntp`.
    pub fn on_sender_report(&mut self, now: Instant, ntp: u64) {
        self.last_sr = compact_ntp(ntp);
        self.last_sr_at = Some(now);
    }

    /// Builds a reception report block and starts a new loss interval.
    pub fn report(&mut self, now: Instant) -> ReceptionReport {
        let (last_sr, delay_since_last_sr) = match self.last_sr_at {
            Some(at) => (
                self.last_sr,
                duration_to_compact(now.saturating_duration_since(at)),
            ),
            None => (0, 0),
        };
        if !self.started {
            return ReceptionReport {
                last_sr,
                delay_since_last_sr,
                ..ReceptionReport::default()
            };
        }
        let expected = self.expected();
        let lost = expected as i64 - self.received as i64;
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // lost_interval <= expected_interval, so the quotient is at most 256; 256 would mean
            // "all lost" and is clamped into the 8-bit field.
            ((lost_interval as u64 * 256) / expected_interval).min(255) as u8
        };
        ReceptionReport {
            fraction_lost,
            cumulative_lost: lost.clamp(CUMULATIVE_LOST_MIN, CUMULATIVE_LOST_MAX) as i32,
            ext_highest_seq: (self.max_seq - self.cycle_base) as u32,
            jitter: self.jitter_q4 >> 4,
            last_sr,
            delay_since_last_sr,
        }
    }

    /// Whether any packet was received (a report block is only meaningful then).
    pub fn has_packets(&self) -> bool {
        self.started
    }

    /// Packets received, duplicates included (RFC 3550 A.3 counts them too).
    pub fn packets_received(&self) -> u64 {
        self.received
    }

    /// Bytes counted through [`on_bytes`](Self::on_bytes).
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// Packets expected from the lowest to the highest sequence number received.
    pub fn expected(&self) -> u64 {
        if self.started {
            self.max_seq - self.base_seq + 1
        } else {
            0
        }
    }

    /// Highest extended sequence number received, if any.
    pub fn highest_seq(&self) -> Option<ExtSeq> {
        self.started.then_some(ExtSeq(self.max_seq))
    }

    /// Current interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// The RTP clock rate this stream was created with.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// `now` in RTP timestamp units since the first packet, wrapping like an RTP timestamp.
    fn arrival_units(&self, now: Instant) -> u32 {
        let since = self
            .epoch
            .map_or(Duration::ZERO, |e| now.saturating_duration_since(e));
        // 64-bit arithmetic only (a 128-bit division costs more than the rest of the packet):
        // whole seconds times the rate wrap like the timestamp does, and the sub-second part
        // (< 10^9 ns times a rate < 2^32) cannot overflow.
        let rate = u64::from(self.clock_rate);
        let whole = since.as_secs().wrapping_mul(rate);
        let frac = u64::from(since.subsec_nanos()) * rate / 1_000_000_000;
        whole.wrapping_add(frac) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_loss_reports_zero() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        for i in 0..100u64 {
            s.on_packet(t0 + ms(i * 10), ExtSeq(65536 + i), (i * 900) as u32);
        }
        let r = s.report(t0 + ms(1000));
        assert_eq!(r.fraction_lost, 0);
        assert_eq!(r.cumulative_lost, 0);
        assert_eq!(r.ext_highest_seq, 99);
        assert_eq!(s.packets_received(), 100);
    }

    #[test]
    fn fraction_lost_covers_only_the_interval_since_last_report() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        // First interval: 100 expected, 25 lost.
        for i in 0..100u64 {
            if i % 4 != 1 {
                s.on_packet(t0, ExtSeq(65536 + i), 0);
            }
        }
        let r1 = s.report(t0);
        assert_eq!(r1.fraction_lost, 64);
        assert_eq!(r1.cumulative_lost, 25);
        // Second interval: 100 expected, none lost.
        for i in 100..200u64 {
            s.on_packet(t0, ExtSeq(65536 + i), 0);
        }
        let r2 = s.report(t0);
        assert_eq!(r2.fraction_lost, 0);
        assert_eq!(r2.cumulative_lost, 25);
    }

    #[test]
    fn duplicates_make_interval_loss_zero_not_negative() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(48_000);
        for i in 0..10u64 {
            s.on_packet(t0, ExtSeq(65536 + i), 0);
            s.on_packet(t0, ExtSeq(65536 + i), 0);
        }
        let r = s.report(t0);
        assert_eq!(r.fraction_lost, 0);
        assert_eq!(r.cumulative_lost, -10);
    }

    #[test]
    fn extended_highest_counts_wraps_from_zero() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        s.on_packet(t0, ExtSeq(65536 + 65535), 0);
        s.on_packet(t0, ExtSeq(2 * 65536 + 3), 0);
        let r = s.report(t0);
        assert_eq!(r.ext_highest_seq, 65536 + 3);
        assert_eq!(r.cumulative_lost, 3);
    }

    #[test]
    fn packet_older_than_first_extends_expected() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        s.on_packet(t0, ExtSeq(65536 + 10), 0);
        s.on_packet(t0, ExtSeq(65536 + 8), 0);
        assert_eq!(s.expected(), 3);
        assert_eq!(s.report(t0).cumulative_lost, 1);
    }

    #[test]
    fn steady_arrival_has_zero_jitter() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        for i in 0..200u64 {
            // 50 packets a second, 1800 ticks apart, arriving exactly on time.
            s.on_packet(t0 + ms(i * 20), ExtSeq(65536 + i), (i * 1800) as u32);
        }
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn alternating_delay_converges_to_its_swing() {
        // Every other packet 10 ms late: |D| is 10 ms = 900 ticks each time, so J -> 900.
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        for i in 0..1000u64 {
            let late = if i % 2 == 1 { ms(10) } else { ms(0) };
            s.on_packet(t0 + ms(i * 20) + late, ExtSeq(65536 + i), (i * 1800) as u32);
        }
        let j = s.jitter();
        assert!((880..=900).contains(&j), "jitter {j}");
    }

    #[test]
    fn jitter_survives_rtp_timestamp_wrap() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        let start = u32::MAX - 50 * 1800;
        for i in 0..100u64 {
            s.on_packet(
                t0 + ms(i * 20),
                ExtSeq(65536 + i),
                start.wrapping_add((i * 1800) as u32),
            );
        }
        assert!(s.jitter() <= 1, "jitter {}", s.jitter());
    }

    #[test]
    fn packets_of_one_frame_do_not_add_jitter() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        let mut seq = 65536u64;
        for f in 0..100u64 {
            for p in 0..5u64 {
                s.on_packet(t0 + ms(f * 33) + ms(p * 3), ExtSeq(seq), (f * 2970) as u32);
                seq += 1;
            }
        }
        assert!(s.jitter() <= 1, "jitter {}", s.jitter());
    }

    #[test]
    fn delay_since_last_sr_is_in_65536ths() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        s.on_packet(t0, ExtSeq(65536), 0);
        s.on_sender_report(t0, 0x1234_5678_9abc_def0);
        let r = s.report(t0 + ms(500));
        assert_eq!(r.last_sr, 0x5678_9abc);
        assert_eq!(r.delay_since_last_sr, 32768);
    }

    #[test]
    fn report_without_sender_report_has_zero_lsr() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        s.on_packet(t0, ExtSeq(65536), 0);
        let r = s.report(t0 + ms(500));
        assert_eq!((r.last_sr, r.delay_since_last_sr), (0, 0));
    }

    #[test]
    fn cumulative_loss_clamps_to_24_bits() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000);
        s.on_packet(t0, ExtSeq(65536), 0);
        s.on_packet(t0, ExtSeq(65536 + 20_000_000), 0);
        assert_eq!(s.report(t0).cumulative_lost, 0x7f_ffff);
    }

    #[test]
    fn bytes_are_counted() {
        let mut s = RecvStats::new(90_000);
        s.on_bytes(1200);
        s.on_bytes(300);
        assert_eq!(s.bytes_received(), 1500);
    }
}
