//! Event counters of a worker thread, summed across threads for the live display and the
//! report. Plain integers: each worker owns its copy.

use serde::Serialize;

use crate::recv::ContinuityStats;

/// Counters of one worker (or the sum of several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    // Joins.
    pub publisher_joins_ok: u64,
    pub subscriber_joins_ok: u64,
    pub publisher_joins_failed: u64,
    pub subscriber_joins_failed: u64,
    /// Sessions that completed ICE and DTLS.
    pub publishers_connected: u64,
    pub subscribers_connected: u64,
    /// Subscribers that received their first media packet.
    pub subscribers_receiving: u64,
    /// Sessions that failed after joining (DTLS error, no connection in time).
    pub sessions_failed: u64,

    // Datagrams, both roles.
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub datagrams_received: u64,
    pub bytes_received: u64,
    /// Sends the kernel refused (ENOBUFS, EAGAIN, ECONNREFUSED).
    pub send_errors: u64,
    /// Datagrams that failed SRTP/SRTCP authentication or could not be parsed.
    pub undecodable: u64,

    // Publishers.
    pub rtp_sent: u64,
    pub video_frames: u64,
    pub keyframes: u64,
    pub frames_skipped: u64,
    pub nacks_received: u64,
    pub nacked_packets: u64,
    pub rtx_sent: u64,
    /// NACKed packets no longer in the sent ring.
    pub rtx_unavailable: u64,
    pub plis_received: u64,
    pub firs_received: u64,
    pub twcc_feedback_received: u64,
    pub sender_reports_sent: u64,

    // Subscribers.
    pub rtp_received: u64,
    pub video_packets_received: u64,
    pub audio_packets_received: u64,
    pub rtx_received: u64,
    /// Packets without a measurement tag (not from this load generator).
    pub untagged: u64,
    /// Packets on an SSRC or payload type the answer did not announce.
    pub unknown_stream: u64,
    pub nacks_sent: u64,
    pub nack_requests_sent: u64,
    pub plis_sent: u64,
    pub receiver_reports_sent: u64,
    pub sender_reports_received: u64,
    /// Transport-wide congestion control feedback packets sent.
    pub twcc_feedback_sent: u64,
    /// Padding-only packets received (the server's bandwidth probes).
    pub padding_received: u64,

    // Capacity classes (`--subscriber-classes`): the per-viewer downlink rate limits.
    /// Datagrams that entered a viewer's rate-limited downlink.
    pub downlink_datagrams: u64,
    /// Of those, dropped because the downlink's queue was full.
    pub downlink_drops: u64,
}

macro_rules! add_fields {
    ($a:ident, $b:ident, $($f:ident),*) => { $( $a.$f += $b.$f; )* };
}

macro_rules! sub_fields {
    ($a:ident, $b:ident, $($f:ident),*) => { $( $a.$f = $a.$f.saturating_sub($b.$f); )* };
}

impl Counters {
    /// Traffic since `base` (a copy taken at the start of a measurement window): every event
    /// counter minus its value then; joins and the connected gauges stay whole-run values.
    pub fn since(&self, base: &Counters) -> Counters {
        let mut d = *self;
        sub_fields!(
            d,
            base,
            datagrams_sent,
            bytes_sent,
            datagrams_received,
            bytes_received,
            send_errors,
            undecodable,
            rtp_sent,
            video_frames,
            keyframes,
            frames_skipped,
            nacks_received,
            nacked_packets,
            rtx_sent,
            rtx_unavailable,
            plis_received,
            firs_received,
            twcc_feedback_received,
            sender_reports_sent,
            rtp_received,
            video_packets_received,
            audio_packets_received,
            rtx_received,
            untagged,
            unknown_stream,
            nacks_sent,
            nack_requests_sent,
            plis_sent,
            receiver_reports_sent,
            sender_reports_received,
            twcc_feedback_sent,
            padding_received,
            downlink_datagrams,
            downlink_drops
        );
        d
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counters) {
        add_fields!(
            self,
            o,
            publisher_joins_ok,
            subscriber_joins_ok,
            publisher_joins_failed,
            subscriber_joins_failed,
            publishers_connected,
            subscribers_connected,
            subscribers_receiving,
            sessions_failed,
            datagrams_sent,
            bytes_sent,
            datagrams_received,
            bytes_received,
            send_errors,
            undecodable,
            rtp_sent,
            video_frames,
            keyframes,
            frames_skipped,
            nacks_received,
            nacked_packets,
            rtx_sent,
            rtx_unavailable,
            plis_received,
            firs_received,
            twcc_feedback_received,
            sender_reports_sent,
            rtp_received,
            video_packets_received,
            audio_packets_received,
            rtx_received,
            untagged,
            unknown_stream,
            nacks_sent,
            nack_requests_sent,
            plis_sent,
            receiver_reports_sent,
            sender_reports_received,
            twcc_feedback_sent,
            padding_received,
            downlink_datagrams,
            downlink_drops
        );
    }

    /// Joins that succeeded, both roles.
    pub fn joins_ok(&self) -> u64 {
        self.publisher_joins_ok + self.subscriber_joins_ok
    }

    /// Joins that failed (signaling, or no media connection), both roles.
    pub fn joins_failed(&self) -> u64 {
        self.publisher_joins_failed + self.subscriber_joins_failed
    }
}

/// Loss and ordering of everything subscribers received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReceiveQuality {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub recovered: u64,
    pub gaps: u64,
}

impl ReceiveQuality {
    /// Adds one stream's continuity (a whole-run or a windowed one).
    pub fn add_stream(&mut self, s: &ContinuityStats) {
        self.expected += s.expected;
        self.received += s.received;
        self.lost += s.lost();
        self.duplicates += s.duplicates;
        self.reordered += s.reordered;
        self.recovered += s.recovered;
        self.gaps += s.gaps;
    }

    /// Adds another total.
    pub fn add(&mut self, o: &ReceiveQuality) {
        self.expected += o.expected;
        self.received += o.received;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.recovered += o.recovered;
        self.gaps += o.gaps;
    }

    /// Lost over expected (0 when nothing was expected).
    pub fn loss_ratio(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_subtracts_traffic_but_keeps_joins_and_gauges() {
        let base = Counters {
            publisher_joins_ok: 1,
            publishers_connected: 1,
            rtp_sent: 100,
            bytes_sent: 1000,
            ..Counters::default()
        };
        let now = Counters {
            publisher_joins_ok: 2,
            publishers_connected: 2,
            rtp_sent: 350,
            bytes_sent: 4000,
            ..Counters::default()
        };
        let d = now.since(&base);
        assert_eq!((d.rtp_sent, d.bytes_sent), (250, 3000));
        assert_eq!((d.publisher_joins_ok, d.publishers_connected), (2, 2));
    }
}
