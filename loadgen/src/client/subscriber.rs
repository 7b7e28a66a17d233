//! A subscriber: takes decrypted RTP of the SSRCs the answer announced (turning RTX back into
//! the original, RFC 4588), checks sequence continuity, measures latency from the payload's tag,
//! asks for missing video packets with NACKs and for a keyframe with PLI when recovery fails
//! (RFC 4585), sends receiver reports with a CNAME every second (RFC 3550) and, when
//! transport-cc was negotiated, transport-wide feedback every 50 ms
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01), as a browser does. It also follows
//! the simulcast layer named in each payload's tag, which frames could be rendered and the
//! freezes between them.

use std::time::{Duration, Instant};

use sfu::bwe::{TwccReceiver, TwccReceiverConfig};
use sfu::stream::{NackGenerator, RecvStats, SeqUnwrapper};
use sfu::wire::codec::vp8;
use sfu::wire::rtcp::{self, ReportBlock, RtcpPacket};
use sfu::wire::rtp::{self, RtpHeader, parse_transport_cc_seq};
use sfu::{PayloadType, SeqNo, Ssrc};

use super::{Outgoing, REPORT_INTERVAL};
use crate::media::{Clock, Tag};
use crate::recv::{
    Arrival, Continuity, ContinuityStats, FrameAssembler, FramePacket, FrameStats, FreezeDetector,
    FreezeStats, LayerStats, LayerTracker,
};
use crate::sdp::{MediaPlan, TrackPlan};
use crate::stats::{Counters, Histogram};

/// Sequence numbers one NACK carries at most.
const NACK_BATCH: usize = 64;
/// Keyframe requests no more often than this.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Round trip assumed for NACK retries (loopback and LAN runs).
const ASSUMED_RTT: Duration = Duration::from_millis(20);
/// Transport-wide sequence numbers remembered for feedback (a second of 1000 packets/s).
const TWCC_HISTORY: usize = 1024;

/// What a subscriber expects.
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    pub plan: MediaPlan,
    /// SSRC of this receiver's RTCP.
    pub rtcp_ssrc: u32,
    pub cname: String,
}

/// What a received RTP packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpOutcome {
    /// The first media packet of this subscriber.
    FirstMedia,
    /// Any later media packet (duplicates included).
    Media,
    /// A padding-only packet (a bandwidth probe): no media.
    Padding,
    /// Not on an announced SSRC or payload type, or not parsable.
    Unknown,
}

/// What a subscriber's video looked like: layers, rendered frames and freezes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoExperience {
    pub layers: LayerStats,
    pub frames: FrameStats,
    pub freezes: FreezeStats,
}

impl VideoExperience {
    /// What happened since `base` (an earlier copy).
    pub fn since(&self, base: &VideoExperience) -> VideoExperience {
        VideoExperience {
            layers: self.layers.since(&base.layers),
            frames: self.frames.since(&base.frames),
            freezes: self.freezes.since(&base.freezes),
        }
    }
}

/// The video's render model: frames assembled, freezes between the rendered ones, layers.
#[derive(Debug)]
struct VideoView {
    frames: FrameAssembler,
    freezes: FreezeDetector,
    layers: LayerTracker,
    /// At the start of the measurement window.
    baseline: VideoExperience,
}

impl VideoView {
    /// Up to `now`; with `ongoing`, a freeze still going on counts.
    fn experience(&self, now: Instant, ongoing: bool) -> VideoExperience {
        VideoExperience {
            layers: self.layers.stats(now),
            frames: self.frames.stats(),
            freezes: if ongoing {
                self.freezes.stats_at(now)
            } else {
                self.freezes.stats()
            },
        }
    }
}

#[derive(Debug)]
struct RecvTrack {
    plan: TrackPlan,
    ssrc: Option<u32>,
    video: bool,
    unwrapper: SeqUnwrapper,
    continuity: Continuity,
    nack: Option<NackGenerator>,
    stats: RecvStats,
    given_up: u64,
    /// Continuity at the start of the measurement window.
    baseline: ContinuityStats,
    /// Video only.
    view: Option<Box<VideoView>>,
}

impl RecvTrack {
    fn new(plan: TrackPlan, video: bool) -> Self {
        RecvTrack {
            ssrc: plan.ssrc,
            stats: RecvStats::new(plan.clock_rate.max(1)),
            nack: video.then(NackGenerator::new),
            plan,
            video,
            unwrapper: SeqUnwrapper::new(),
            continuity: Continuity::new(),
            given_up: 0,
            baseline: ContinuityStats::default(),
            view: video.then(|| {
                Box::new(VideoView {
                    frames: FrameAssembler::new(),
                    freezes: FreezeDetector::new(),
                    layers: LayerTracker::new(),
                    baseline: VideoExperience::default(),
                })
            }),
        }
    }

    fn matches(&self, hdr: &RtpHeader) -> bool {
        match self.ssrc {
            Some(s) => hdr.ssrc.0 == s,
            None => hdr.payload_type.0 == self.plan.pt,
        }
    }
}

/// One subscriber's receive state.
#[derive(Debug)]
pub struct Subscriber {
    clock: Clock,
    video: Option<RecvTrack>,
    audio: Option<RecvTrack>,
    rtcp_ssrc: u32,
    cname: String,
    next_report: Instant,
    last_pli: Option<Instant>,
    pli_wanted: bool,
    first_media: Option<Instant>,
    nack_scratch: [SeqNo; NACK_BATCH],
    /// Transport-wide feedback, when the answer has the transport-cc extension.
    twcc: Option<(u8, Box<TwccReceiver>)>,
}

impl Subscriber {
    /// A subscriber whose transport connected at `now`.
    pub fn new(cfg: SubscriberConfig, clock: Clock, now: Instant) -> Self {
        let twcc_id = [cfg.plan.video.as_ref(), cfg.plan.audio.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|t| t.ext.transport_cc);
        let twcc = twcc_id.map(|id| {
            // Feedback stays within the datagram cap with its SRTCP trailer.
            let config = TwccReceiverConfig {
                history: TWCC_HISTORY,
                max_feedback_len: 1100,
                ..TwccReceiverConfig::default()
            };
            (id, Box::new(TwccReceiver::new(config)))
        });
        Subscriber {
            twcc,
            clock,
            video: cfg.plan.video.map(|p| RecvTrack::new(p, true)),
            audio: cfg.plan.audio.map(|p| RecvTrack::new(p, false)),
            rtcp_ssrc: cfg.rtcp_ssrc,
            cname: cfg.cname,
            next_report: now + REPORT_INTERVAL,
            last_pli: None,
            pli_wanted: false,
            first_media: None,
            nack_scratch: [SeqNo(0); NACK_BATCH],
        }
    }

    /// When the first media packet arrived.
    pub fn first_media(&self) -> Option<Instant> {
        self.first_media
    }

    /// Continuity of video and audio since the measurement window began (the whole run
    /// unless [`start_window`](Self::start_window) was called).
    pub fn continuity(&self) -> (Option<ContinuityStats>, Option<ContinuityStats>) {
        let of = |t: &RecvTrack| t.continuity.stats().since(&t.baseline);
        (self.video.as_ref().map(of), self.audio.as_ref().map(of))
    }

    /// The video's layers, rendered frames and freezes since the measurement window began, up
    /// to `now`, a freeze still going on included (`None` without video).
    pub fn video_experience(&self, now: Instant) -> Option<VideoExperience> {
        let v = self.video.as_ref()?.view.as_ref()?;
        Some(v.experience(now, true).since(&v.baseline))
    }

    /// Whether the answer negotiated transport-wide feedback.
    pub fn sends_twcc(&self) -> bool {
        self.twcc.is_some()
    }

    /// Whether any video (or audio) packet arrived during the whole run.
    pub fn received_any(&self) -> (bool, bool) {
        let any = |t: &Option<RecvTrack>| {
            t.as_ref()
                .is_some_and(|t| t.continuity.stats().received > 0)
        };
        (any(&self.video), any(&self.audio))
    }

    /// Starts the measurement window at `now`: later [`continuity`](Self::continuity) and
    /// [`video_experience`](Self::video_experience) count from here.
    pub fn start_window(&mut self, now: Instant) {
        for t in [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
        {
            t.baseline = t.continuity.stats();
            if let Some(v) = t.view.as_mut() {
                v.freezes.start_window();
                v.baseline = v.experience(now, false);
            }
        }
    }

    /// Handles a decrypted RTP packet in `buf` (which may be rewritten in place: RTX is turned
    /// back into the original). Latency goes into `latency` (nanoseconds).
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        m: &mut Counters,
        latency: &mut Histogram,
    ) -> RtpOutcome {
        let Ok(mut hdr) = RtpHeader::parse(buf) else {
            m.undecodable += 1;
            return RtpOutcome::Unknown;
        };
        // Every packet the server stamped is acknowledged, whatever it carries.
        if let Some((id, twcc)) = self.twcc.as_mut()
            && let Some(Ok(seq)) = hdr.extension(buf, *id).map(parse_transport_cc_seq)
        {
            twcc.on_packet(now, seq.0);
        }
        if hdr.payload_len == 0 {
            m.padding_received += 1;
            return RtpOutcome::Padding;
        }
        let mut buf = buf;
        let mut retransmission = false;
        if let Some(v) = self.video.as_mut() {
            let is_rtx = match v.plan.rtx_ssrc {
                Some(r) => hdr.ssrc.0 == r,
                None => v.plan.rtx_pt == Some(hdr.payload_type.0),
            };
            if is_rtx {
                let Some(ssrc) = v.ssrc else {
                    m.unknown_stream += 1;
                    return RtpOutcome::Unknown;
                };
                let Ok(n) = rtp::unwrap_rtx(buf, &hdr, Ssrc(ssrc), PayloadType(v.plan.pt)) else {
                    m.undecodable += 1;
                    return RtpOutcome::Unknown;
                };
                buf = &mut buf[..n];
                let Ok(h) = RtpHeader::parse(buf) else {
                    m.undecodable += 1;
                    return RtpOutcome::Unknown;
                };
                hdr = h;
                retransmission = true;
                m.rtx_received += 1;
            }
        }
        let track = match (self.video.as_mut(), self.audio.as_mut()) {
            (Some(v), _) if v.matches(&hdr) => v,
            (_, Some(a)) if a.matches(&hdr) => a,
            _ => {
                m.unknown_stream += 1;
                return RtpOutcome::Unknown;
            }
        };
        if track.ssrc.is_none() {
            track.ssrc = Some(hdr.ssrc.0);
        }
        m.rtp_received += 1;
        if track.video {
            m.video_packets_received += 1;
        } else {
            m.audio_packets_received += 1;
        }
        let ext = track.unwrapper.unwrap(hdr.seq);
        let arrival = track.continuity.on_packet(ext.0, retransmission);
        if arrival != Arrival::Duplicate {
            if let Some(n) = track.nack.as_mut() {
                n.on_packet(now, ext, retransmission);
            }
            track.stats.on_packet(now, ext, hdr.timestamp);
            track.stats.on_bytes(hdr.payload_len);
            let payload = hdr.payload(buf);
            let tag = Tag::read_tail(payload);
            match tag {
                Some(tag) => {
                    let now_ns = self.clock.ns(now);
                    latency.record(now_ns.saturating_sub(tag.send_ns));
                }
                None => m.untagged += 1,
            }
            if let Some(v) = track.view.as_mut()
                && arrival != Arrival::TooOld
            {
                if let Some(layer) = tag.and_then(|t| t.layer) {
                    let in_order = arrival == Arrival::InOrder && !retransmission;
                    v.layers.on_packet(now, layer, hdr.payload_len, in_order);
                }
                let start = vp8::is_frame_start(payload);
                let rendered = v.frames.on_packet(FramePacket {
                    seq: ext.0,
                    timestamp: hdr.timestamp,
                    marker: hdr.marker,
                    start,
                    keyframe: start && vp8::is_keyframe_start(payload),
                });
                for _ in 0..rendered {
                    v.freezes.on_frame(now);
                }
            }
        }
        if self.first_media.is_none() {
            self.first_media = Some(now);
            return RtpOutcome::FirstMedia;
        }
        RtpOutcome::Media
    }

    /// Handles a decrypted RTCP compound (sender reports feed the LSR of receiver reports).
    pub fn handle_rtcp(&mut self, now: Instant, pkt: &[u8], m: &mut Counters) {
        for p in rtcp::iter(pkt) {
            let Ok(p) = p else {
                m.undecodable += 1;
                break;
            };
            if let RtcpPacket::SenderReport(sr) = p {
                m.sender_reports_received += 1;
                for t in [self.video.as_mut(), self.audio.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    if t.ssrc == Some(sr.ssrc.0) {
                        t.stats.on_sender_report(now, sr.ntp);
                    }
                }
            }
        }
    }

    /// When [`poll_transmit`](Self::poll_transmit) next has something to send.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_report;
        if let Some(d) = self.twcc.as_ref().and_then(|(_, tw)| tw.poll_timeout()) {
            t = t.min(d);
        }
        if let Some(d) = self
            .video
            .as_ref()
            .and_then(|v| v.nack.as_ref())
            .and_then(NackGenerator::poll_timeout)
        {
            t = t.min(d);
        }
        if self.pli_wanted
            && let Some(last) = self.last_pli
        {
            t = t.min(last + PLI_INTERVAL);
        }
        t
    }

    /// Writes the next RTCP packet due at `now` into `out`: transport-wide feedback, NACKs,
    /// then a PLI, then the periodic receiver report.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        m: &mut Counters,
    ) -> Option<Outgoing> {
        let sender = Ssrc(self.rtcp_ssrc);
        if let Some((_, twcc)) = self.twcc.as_mut() {
            let media = self
                .video
                .as_ref()
                .or(self.audio.as_ref())
                .and_then(|t| t.ssrc)
                .unwrap_or(0);
            if let Some(n) = twcc.poll_feedback(now, sender, Ssrc(media), out) {
                m.twcc_feedback_sent += 1;
                return Some(Outgoing::Rtcp(n));
            }
        }
        if let Some(v) = self.video.as_mut()
            && let (Some(ssrc), Some(nack)) = (v.ssrc, v.nack.as_mut())
        {
            let n = nack.poll_nacks(now, ASSUMED_RTT, &mut self.nack_scratch);
            let given_up = nack.stats().given_up;
            if given_up > v.given_up || nack.take_keyframe_request() {
                v.given_up = given_up;
                self.pli_wanted = true;
            }
            if n > 0 {
                // Oldest first, as RFC 4585 pairs want them.
                let lost = &self.nack_scratch[..n];
                if let Ok(len) = rtcp::write_nack(out, sender, Ssrc(ssrc), lost) {
                    m.nacks_sent += 1;
                    m.nack_requests_sent += n as u64;
                    return Some(Outgoing::Rtcp(len));
                }
            }
        }
        if self.pli_wanted
            && self.last_pli.is_none_or(|t| now >= t + PLI_INTERVAL)
            && let Some(ssrc) = self.video.as_ref().and_then(|v| v.ssrc)
        {
            self.pli_wanted = false;
            self.last_pli = Some(now);
            if let Ok(len) = rtcp::write_pli(out, sender, Ssrc(ssrc)) {
                m.plis_sent += 1;
                return Some(Outgoing::Rtcp(len));
            }
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_INTERVAL;
            let mut blocks = [ReportBlock::default(); 2];
            let mut nb = 0;
            for t in [self.video.as_mut(), self.audio.as_mut()]
                .into_iter()
                .flatten()
            {
                if let (Some(ssrc), true) = (t.ssrc, t.stats.has_packets()) {
                    let r = t.stats.report(now);
                    blocks[nb] = ReportBlock {
                        ssrc: Ssrc(ssrc),
                        fraction_lost: r.fraction_lost,
                        cumulative_lost: r.cumulative_lost,
                        ext_highest_seq: r.ext_highest_seq,
                        jitter: r.jitter,
                        last_sr: r.last_sr,
                        delay_since_last_sr: r.delay_since_last_sr,
                    };
                    nb += 1;
                }
            }
            let mut n = rtcp::write_rr(out, sender, &blocks[..nb]).ok()?;
            n += rtcp::write_sdes_cname(&mut out[n..], sender, &self.cname).ok()?;
            m.receiver_reports_sent += 1;
            return Some(Outgoing::Rtcp(n));
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
