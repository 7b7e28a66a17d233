//! Send-side statistics of one outgoing RTP stream: the packet and octet counts and RTP/NTP pair of
//! its sender reports, and the round-trip time and loss learned from the receiver's report blocks
//! (RFC 3550 §6.4).

use std::time::{Duration, Instant};

use crate::stream::ntp::{compact_ntp, compact_to_duration};
use crate::stream::recv_stats::ReceptionReport;

/// How many of our recent sender reports are remembered to match LSR fields against.
const SR_HISTORY: usize = 8;

/// The smallest round-trip time reported; a computed value at or below zero (clock granularity,
/// a receiver that over-reports DLSR) comes out as this.
const MIN_RTT: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy)]
struct SentSr {
    compact: u32,
    at: Instant,
}

/// What the remote receiver last told us about this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteReception {
    /// Loss fraction of the last interval, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost.
    pub cumulative_lost: i32,
    /// Interarrival jitter in RTP units.
    pub jitter: u32,
    /// When the report arrived.
    pub at: Instant,
}

/// Statistics of one outgoing RTP stream.
#[derive(Debug, Clone, Default)]
pub struct SendStats {
    packets: u64,
    octets: u64,
    /// Highest RTP timestamp sent and when it was sent, to extrapolate the SR timestamp.
    last_ts: Option<(u32, Instant)>,
    srs: [Option<SentSr>; SR_HISTORY],
    next_sr: usize,
    rtt: Option<Duration>,
    remote: Option<RemoteReception>,
}

impl SendStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a packet sent at `now` with RTP timestamp `rtp_ts` and `payload_len` payload
    /// octets (RFC 3550 §6.4.1: header and padding are not counted).
    pub fn on_packet(&mut self, now: Instant, rtp_ts: u32, payload_len: usize) {
        self.packets += 1;
        self.octets += payload_len as u64;
        let newer = match self.last_ts {
            None => true,
            // A retransmission on the same SSRC carries an older timestamp; keep the newest.
            Some((ts, _)) => (rtp_ts.wrapping_sub(ts) as i32) >= 0,
        };
        if newer {
            self.last_ts = Some((rtp_ts, now));
        }
    }

    /// Packets sent since the start.
    pub fn packets_sent(&self) -> u64 {
        self.packets
    }

    /// Payload octets sent since the start.
    pub fn octets_sent(&self) -> u64 {
        self.octets
    }

    /// The sender's packet count field of an SR (wraps at 2^32, RFC 3550 §6.4.1).
    pub fn sr_packet_count(&self) -> u32 {
        self.packets as u32
    }

    /// The sender's octet count field of an SR (wraps at 2^32).
    pub fn sr_octet_count(&self) -> u32 {
        self.octets as u32
    }

    /// The RTP timestamp corresponding to `now`, extrapolated from the newest packet sent, for the
    /// RTP timestamp field of an SR. `None` before the first packet.
    pub fn rtp_ts_at(&self, now: Instant, clock_rate: u32) -> Option<u32> {
        let (ts, at) = self.last_ts?;
        let ticks = match now.checked_duration_since(at) {
            Some(d) => (d.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32,
            None => {
                let d = at.duration_since(now);
                ((d.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32).wrapping_neg()
            }
        };
        Some(ts.wrapping_add(ticks))
    }

    /// Remembers that an SR with the 64-bit NTP timestamp `ntp` was sent at `now`.
    pub fn on_sender_report_sent(&mut self, now: Instant, ntp: u64) {
        self.srs[self.next_sr] = Some(SentSr {
            compact: compact_ntp(ntp),
            at: now,
        });
        self.next_sr = (self.next_sr + 1) % SR_HISTORY;
    }

    /// Takes a report block about this stream received at `now`. Returns the round-trip time
    /// when `last_sr` names one of our recent SRs: the time since we sent it, less the delay
    /// the receiver held it (`dlsr`, 1/65536 s).
    pub fn on_receiver_report(
        &mut self,
        now: Instant,
        last_sr: u32,
        dlsr: u32,
        fraction_lost: u8,
        cumulative_lost: i32,
        jitter: u32,
    ) -> Option<Duration> {
        self.remote = Some(RemoteReception {
            fraction_lost,
            cumulative_lost,
            jitter,
            at: now,
        });
        if last_sr == 0 {
            return None;
        }
        let sent = self.srs.iter().flatten().find(|s| s.compact == last_sr)?;
        let elapsed = now.checked_duration_since(sent.at)?;
        let rtt = elapsed
            .checked_sub(compact_to_duration(dlsr))
            .unwrap_or(MIN_RTT)
            .max(MIN_RTT);
        self.rtt = Some(rtt);
        Some(rtt)
    }

    /// [`on_receiver_report`](Self::on_receiver_report) taking an RTCP report block.
    pub fn on_report_block(
        &mut self,
        now: Instant,
        b: &crate::wire::rtcp::ReportBlock,
    ) -> Option<Duration> {
        self.on_receiver_report(
            now,
            b.last_sr,
            b.delay_since_last_sr,
            b.fraction_lost,
            b.cumulative_lost,
            b.jitter,
        )
    }

    /// [`on_receiver_report`](Self::on_receiver_report) taking a parsed block.
    pub fn on_reception_report(&mut self, now: Instant, r: &ReceptionReport) -> Option<Duration> {
        self.on_receiver_report(
            now,
            r.last_sr,
            r.delay_since_last_sr,
            r.fraction_lost,
            r.cumulative_lost,
            r.jitter,
        )
    }

    /// The last round-trip time measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The last report from the receiver.
    pub fn remote(&self) -> Option<RemoteReception> {
        self.remote
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::ntp::{NtpClock, duration_to_compact};
    use std::time::UNIX_EPOCH;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn clock(t0: Instant) -> NtpClock {
        NtpClock::new(t0, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    #[test]
    fn counts_packets_and_payload_octets() {
        let t0 = Instant::now();
        let mut s = SendStats::new();
        for i in 0..10u32 {
            s.on_packet(t0, i * 900, 1000);
        }
        assert_eq!(s.packets_sent(), 10);
        assert_eq!(s.octets_sent(), 10_000);
        assert_eq!(s.sr_packet_count(), 10);
    }

    #[test]
    fn rtt_is_elapsed_minus_receiver_delay() {
        let t0 = Instant::now();
        let ntp = clock(t0);
        let mut s = SendStats::new();
        let sr_ntp = ntp.ntp(t0 + ms(100));
        s.on_sender_report_sent(t0 + ms(100), sr_ntp);
        // The receiver holds the SR for 300 ms; the network adds 40 ms each way.
        let rtt = s.on_receiver_report(
            t0 + ms(100 + 40 + 300 + 40),
            compact_ntp(sr_ntp),
            duration_to_compact(ms(300)),
            0,
            0,
            0,
        );
        let rtt = rtt.expect("the LSR names the SR sent above");
        assert!(rtt >= ms(79) && rtt <= ms(81), "rtt {rtt:?}");
        assert_eq!(s.rtt(), Some(rtt));
    }

    #[test]
    fn rtt_matches_an_older_sr_in_history() {
        let t0 = Instant::now();
        let ntp = clock(t0);
        let mut s = SendStats::new();
        let first = ntp.ntp(t0);
        s.on_sender_report_sent(t0, first);
        for i in 1..5u64 {
            s.on_sender_report_sent(t0 + ms(i * 1000), ntp.ntp(t0 + ms(i * 1000)));
        }
        let rtt = s.on_receiver_report(
            t0 + ms(5000),
            compact_ntp(first),
            duration_to_compact(ms(4950)),
            0,
            0,
            0,
        );
        let rtt = rtt.expect("first SR still in history");
        assert!(rtt >= ms(49) && rtt <= ms(51), "rtt {rtt:?}");
    }

    #[test]
    fn unknown_or_zero_lsr_gives_no_rtt_but_keeps_loss() {
        let t0 = Instant::now();
        let mut s = SendStats::new();
        s.on_sender_report_sent(t0, clock(t0).ntp(t0));
        assert_eq!(s.on_receiver_report(t0 + ms(10), 0, 0, 12, 3, 40), None);
        assert_eq!(
            s.on_receiver_report(t0 + ms(10), 0xdead, 0, 12, 3, 40),
            None
        );
        let r = s.remote().expect("a report was taken");
        assert_eq!((r.fraction_lost, r.cumulative_lost, r.jitter), (12, 3, 40));
    }

    #[test]
    fn sr_forgotten_after_history_fills() {
        let t0 = Instant::now();
        let ntp = clock(t0);
        let mut s = SendStats::new();
        let first = ntp.ntp(t0);
        s.on_sender_report_sent(t0, first);
        for i in 1..=SR_HISTORY as u64 {
            s.on_sender_report_sent(t0 + ms(i * 1000), ntp.ntp(t0 + ms(i * 1000)));
        }
        assert_eq!(
            s.on_receiver_report(t0 + ms(20_000), compact_ntp(first), 0, 0, 0, 0),
            None
        );
    }

    #[test]
    fn overlong_dlsr_clamps_rtt_to_minimum() {
        let t0 = Instant::now();
        let ntp = clock(t0);
        let mut s = SendStats::new();
        let sr = ntp.ntp(t0);
        s.on_sender_report_sent(t0, sr);
        let rtt = s.on_receiver_report(
            t0 + ms(10),
            compact_ntp(sr),
            duration_to_compact(ms(50)),
            0,
            0,
            0,
        );
        assert_eq!(rtt, Some(MIN_RTT));
    }

    #[test]
    fn sr_timestamp_extrapolates_from_newest_packet() {
        let t0 = Instant::now();
        let mut s = SendStats::new();
        assert_eq!(s.rtp_ts_at(t0, 90_000), None);
        s.on_packet(t0, u32::MAX - 899, 100);
        // An older timestamp (a retransmission) does not move the reference.
        s.on_packet(t0 + ms(5), u32::MAX - 5000, 100);
        assert_eq!(s.rtp_ts_at(t0 + ms(20), 90_000), Some(900));
    }
}
