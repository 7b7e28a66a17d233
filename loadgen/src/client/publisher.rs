//! A publisher: paces VP8-like frames and Opus-like packets out of [`crate::media`] sources into
//! RTP (RFC 3550) with mid, transport-wide sequence number and audio level extensions (RFC 8285),
//! keeps every video packet in a ring and answers NACKs with RTX (RFC 4588), answers PLI and FIR
//! (RFC 4585, RFC 5104) with a keyframe, and sends sender reports with a CNAME. With simulcast
//! (RFC 8853) the video is several encodings of the same frames, each on its own SSRC with its
//! rid in the RTP stream id extension (RFC 8852), at a quarter of the next one's bit rate.

use std::time::{Instant, SystemTime};

use sfu::stream::ntp::NtpClock;
use sfu::wire::rtcp::{self, RtcpPacket, SenderInfo};
use sfu::wire::rtp::{self, RtpFields, RtpHeader};
use sfu::{PayloadType, SeqNo, Ssrc};

use super::{Outgoing, REPORT_INTERVAL};
use crate::media::audio::{AUDIO_CLOCK, write_opus_payload};
use crate::media::video::{DESCRIPTOR_LEN, VIDEO_CLOCK, write_vp8_payload};
use crate::media::{
    AudioConfig, AudioSource, Clock, Frame, FramePacketizer, MAX_RTP, SentRing, Tag, VideoConfig,
    VideoSource,
};
use crate::sdp::{MediaPlan, TrackPlan};
use crate::stats::Counters;

/// Retransmissions waiting to be sent, at most.
const RTX_QUEUE: usize = 256;
/// RTP header plus the largest extension block this publisher writes (mid, transport-wide
/// sequence number and a rid of up to 8 bytes).
const MAX_HEADER: usize = 12 + 4 + 24;

/// What a publisher sends.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub video: Option<VideoConfig>,
    pub audio: Option<AudioConfig>,
    /// Negotiated payload types, SSRCs and extension ids.
    pub plan: MediaPlan,
    pub cname: String,
    /// Seeds the frame-size variation.
    pub seed: u64,
    /// Video packets kept for retransmission.
    pub ring_slots: usize,
}

#[derive(Debug)]
struct VideoTx {
    /// The simulcast encoding's rid (empty: not simulcast).
    rid: String,
    src: VideoSource,
    plan: TrackPlan,
    ssrc: u32,
    seq: u16,
    rtx_seq: u16,
    tag: u64,
    picture_id: u16,
    frame: Option<(Frame, FramePacketizer)>,
    ring: SentRing,
    packets: u32,
    octets: u32,
    start: Instant,
}

#[derive(Debug)]
struct AudioTx {
    src: AudioSource,
    plan: TrackPlan,
    ssrc: u32,
    seq: u16,
    tag: u64,
    packets: u32,
    octets: u32,
    start: Instant,
}

/// One publisher's media state.
#[derive(Debug)]
pub struct Publisher {
    clock: Clock,
    ntp: NtpClock,
    /// One encoding, or several (simulcast), lowest first.
    video: Vec<VideoTx>,
    audio: Option<AudioTx>,
    twcc_seq: u16,
    /// (encoding, sequence number) of each queued retransmission.
    rtx_queue: [(u8, u16); RTX_QUEUE],
    rtx_head: usize,
    rtx_len: usize,
    next_report: Instant,
    cname: String,
}

/// The next transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01
/// §2: one counter across every stream of the connection).
fn take_twcc(seq: &mut u16) -> [u8; 2] {
    let s = *seq;
    *seq = s.wrapping_add(1);
    s.to_be_bytes()
}

impl Publisher {
    /// A publisher whose media starts at `now` (the moment its transport connected).
    pub fn new(cfg: PublisherConfig, clock: Clock, now: Instant, wall: SystemTime) -> Self {
        let mut video = Vec::new();
        if let (Some(v), Some(plan)) = (cfg.video, cfg.plan.video.clone()) {
            let rids: Vec<String> = if plan.rids.len() > 1 {
                plan.rids.clone()
            } else {
                vec![String::new()]
            };
            let n = rids.len();
            for (i, rid) in rids.into_iter().enumerate() {
                // Each encoding a quarter of the next one's rate; distinct SSRCs and numbering.
                let k = i as u64;
                let shift = 2 * (n - 1 - i) as u32;
                let seed = cfg.seed.rotate_left(7 * i as u32) ^ k;
                let base = plan.ssrc.unwrap_or(cfg.seed as u32 | 1);
                let (ssrc, rtx_ssrc) = if n > 1 {
                    let s = base.wrapping_add(0x1000_0001u32.wrapping_mul(i as u32 + 1)) | 1;
                    (s, plan.rtx_ssrc.map(|_| s.wrapping_add(0x0800_0000)))
                } else {
                    (base, plan.rtx_ssrc)
                };
                let config = VideoConfig {
                    bitrate_bps: (v.bitrate_bps >> shift).max(10_000),
                    ..v
                };
                let mut tplan = plan.clone();
                tplan.rtx_ssrc = rtx_ssrc;
                video.push(VideoTx {
                    rid,
                    src: VideoSource::new(config, now, seed),
                    ssrc,
                    plan: tplan,
                    seq: (seed >> 16) as u16,
                    rtx_seq: (seed >> 32) as u16,
                    tag: 0,
                    picture_id: (seed >> 48) as u16 & 0x7fff,
                    frame: None,
                    ring: SentRing::new(cfg.ring_slots),
                    packets: 0,
                    octets: 0,
                    start: now,
                });
            }
        }
        let audio = match (cfg.audio, cfg.plan.audio.clone()) {
            (Some(a), Some(plan)) => Some(AudioTx {
                src: AudioSource::new(a, now),
                ssrc: plan.ssrc.unwrap_or((cfg.seed as u32) ^ 0x5555_5555),
                plan,
                seq: (cfg.seed >> 24) as u16,
                tag: 0,
                packets: 0,
                octets: 0,
                start: now,
            }),
            _ => None,
        };
        Publisher {
            clock,
            ntp: NtpClock::new(now, wall),
            video,
            audio,
            twcc_seq: 0,
            rtx_queue: [(0, 0); RTX_QUEUE],
            rtx_head: 0,
            rtx_len: 0,
            next_report: now + REPORT_INTERVAL,
            cname: cfg.cname,
        }
    }

    /// The video SSRC (the lowest encoding's with simulcast), if video is sent.
    pub fn video_ssrc(&self) -> Option<u32> {
        self.video.first().map(|v| v.ssrc)
    }

    /// The SSRCs of the video encodings, lowest first.
    pub fn video_ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.video.iter().map(|v| v.ssrc)
    }

    /// When [`poll_transmit`](Self::poll_transmit) next has something to send.
    /// Packets already waiting (a frame half sent, retransmissions) are due at once: the
    /// instant returned is then in the past.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_report;
        if !self.video.is_empty() && self.rtx_len > 0 {
            return self.clock.epoch();
        }
        for v in &self.video {
            if v.frame.is_some() {
                return self.clock.epoch();
            }
            t = t.min(v.src.next_due());
        }
        if let Some(a) = &self.audio {
            t = t.min(a.src.next_due());
        }
        t
    }

    /// Writes the next packet due at `now` into `out` (at least [`MAX_RTP`] bytes), in order:
    /// retransmissions, the current frame's packets, a new frame, audio, reports.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        m: &mut Counters,
    ) -> Option<Outgoing> {
        if let Some(n) = self.next_rtx(out, m) {
            return Some(Outgoing::Rtp(n));
        }
        if let Some(n) = self.next_video(now, out, m) {
            return Some(Outgoing::Rtp(n));
        }
        if let Some(n) = self.next_audio(now, out, m) {
            return Some(Outgoing::Rtp(n));
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_INTERVAL;
            if let Some(n) = self.write_reports(now, out) {
                m.sender_reports_sent += 1;
                return Some(Outgoing::Rtcp(n));
            }
        }
        None
    }

    fn next_rtx(&mut self, out: &mut [u8], m: &mut Counters) -> Option<usize> {
        while self.rtx_len > 0 {
            let (layer, seq) = self.rtx_queue[self.rtx_head];
            self.rtx_head = (self.rtx_head + 1) % RTX_QUEUE;
            self.rtx_len -= 1;
            let Some(v) = self.video.get_mut(usize::from(layer)) else {
                continue;
            };
            let (Some(rtx_pt), Some(rtx_ssrc)) = (v.plan.rtx_pt, v.plan.rtx_ssrc) else {
                m.rtx_unavailable += 1;
                continue;
            };
            let Some(orig) = v.ring.get(seq) else {
                m.rtx_unavailable += 1;
                continue;
            };
            let Ok(hdr) = RtpHeader::parse(orig) else {
                continue;
            };
            let rtx_seq = SeqNo(v.rtx_seq);
            match rtp::write_rtx(
                orig,
                &hdr,
                out,
                Ssrc(rtx_ssrc),
                PayloadType(rtx_pt),
                rtx_seq,
            ) {
                Ok(n) => {
                    // A simulcast encoding's retransmission names it by repaired rid (RFC 8852).
                    if let (Some(rid), Some(repaired)) = (v.plan.ext.rid, v.plan.ext.repaired_rid)
                        && !v.rid.is_empty()
                        && let Ok(h) = RtpHeader::parse(&out[..n])
                    {
                        let mut map = [0u8; 256];
                        for (i, m) in map.iter_mut().enumerate() {
                            *m = i as u8;
                        }
                        map[usize::from(rid)] = repaired;
                        rtp::remap_extensions(&mut out[..n], &h, &map);
                    }
                    v.rtx_seq = v.rtx_seq.wrapping_add(1);
                    m.rtx_sent += 1;
                    m.rtp_sent += 1;
                    return Some(n);
                }
                Err(_) => m.rtx_unavailable += 1,
            }
        }
        None
    }

    fn next_video(&mut self, now: Instant, out: &mut [u8], m: &mut Counters) -> Option<usize> {
        // A frame under way first, then a new frame of the lowest encoding that has one due.
        let i = match self.video.iter().position(|v| v.frame.is_some()) {
            Some(i) => i,
            None => {
                let mut started = None;
                for (i, v) in self.video.iter_mut().enumerate() {
                    let skipped = v.src.frames_skipped();
                    let frame = v.src.poll_frame(now);
                    m.frames_skipped += v.src.frames_skipped() - skipped;
                    if let Some(frame) = frame {
                        m.video_frames += 1;
                        m.keyframes += u64::from(frame.keyframe);
                        v.picture_id = (v.picture_id + 1) & 0x7fff;
                        let max_chunk = MAX_RTP - MAX_HEADER - DESCRIPTOR_LEN;
                        v.frame = Some((frame, FramePacketizer::new(frame.size, max_chunk)));
                        started = Some(i);
                        break;
                    }
                }
                started?
            }
        };
        let Publisher {
            clock,
            video,
            twcc_seq,
            ..
        } = self;
        let v = video.get_mut(i)?;
        let (frame, packetizer) = v.frame.as_mut()?;
        let frame = *frame;
        let chunk = packetizer.next_chunk()?;
        if packetizer.is_done() {
            v.frame = None;
        }
        let twcc = take_twcc(twcc_seq);
        let mut exts: [(u8, &[u8]); 3] = [(0, &[]), (0, &[]), (0, &[])];
        let mut n_ext = 0;
        if let Some(id) = v.plan.ext.mid {
            exts[n_ext] = (id, v.plan.mid.as_bytes());
            n_ext += 1;
        }
        if let Some(id) = v.plan.ext.transport_cc {
            exts[n_ext] = (id, &twcc);
            n_ext += 1;
        }
        if let Some(id) = v.plan.ext.rid.filter(|_| !v.rid.is_empty()) {
            exts[n_ext] = (id, v.rid.as_bytes());
            n_ext += 1;
        }
        let fields = RtpFields {
            marker: chunk.last,
            payload_type: PayloadType(v.plan.pt),
            seq: SeqNo(v.seq),
            timestamp: frame.rtp_ts.wrapping_add(v.ssrc),
            ssrc: Ssrc(v.ssrc),
            extensions: &exts[..n_ext],
        };
        let h = rtp::write_rtp(out, &fields, &[]).ok()?;
        // A simulcast encoding names its rank (lowest first) in the tag.
        let tag = Tag {
            send_ns: clock.ns(now),
            seq: v.tag,
            layer: (!v.rid.is_empty()).then_some(i as u8),
        };
        let p = write_vp8_payload(
            &mut out[h..],
            chunk,
            frame.keyframe,
            v.picture_id,
            frame.size,
            tag,
        )?;
        let len = h + p;
        v.ring.store(v.seq, &out[..len]);
        v.seq = v.seq.wrapping_add(1);
        v.tag += 1;
        v.packets = v.packets.wrapping_add(1);
        v.octets = v.octets.wrapping_add(p as u32);
        m.rtp_sent += 1;
        Some(len)
    }

    fn next_audio(&mut self, now: Instant, out: &mut [u8], m: &mut Counters) -> Option<usize> {
        let Publisher {
            clock,
            audio,
            twcc_seq,
            ..
        } = self;
        let a = audio.as_mut()?;
        let pkt = a.src.poll_packet(now)?;
        let twcc = take_twcc(twcc_seq);
        let level = [0x80 | 30u8]; // voice activity, -30 dBov (RFC 6464)
        let mut exts: [(u8, &[u8]); 3] = [(0, &[]), (0, &[]), (0, &[])];
        let mut n_ext = 0;
        if let Some(id) = a.plan.ext.mid {
            exts[n_ext] = (id, a.plan.mid.as_bytes());
            n_ext += 1;
        }
        if let Some(id) = a.plan.ext.audio_level {
            exts[n_ext] = (id, &level);
            n_ext += 1;
        }
        if let Some(id) = a.plan.ext.transport_cc {
            exts[n_ext] = (id, &twcc);
            n_ext += 1;
        }
        let fields = RtpFields {
            marker: pkt.index == 0,
            payload_type: PayloadType(a.plan.pt),
            seq: SeqNo(a.seq),
            timestamp: pkt.rtp_ts.wrapping_add(a.ssrc),
            ssrc: Ssrc(a.ssrc),
            extensions: &exts[..n_ext],
        };
        let h = rtp::write_rtp(out, &fields, &[]).ok()?;
        let tag = Tag::new(clock.ns(now), a.tag);
        let p = write_opus_payload(&mut out[h..], pkt.payload_len, tag)?;
        a.seq = a.seq.wrapping_add(1);
        a.tag += 1;
        a.packets = a.packets.wrapping_add(1);
        a.octets = a.octets.wrapping_add(p as u32);
        m.rtp_sent += 1;
        Some(h + p)
    }

    /// A compound of one SR per sending SSRC and an SDES CNAME.
    fn write_reports(&self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let ntp = self.ntp.ntp(now);
        let mut n = 0;
        let mut first_ssrc = None;
        for v in &self.video {
            let elapsed = now.saturating_duration_since(v.start);
            let ts = (elapsed.as_nanos() as u64 * u64::from(VIDEO_CLOCK) / 1_000_000_000) as u32;
            let info = SenderInfo {
                ssrc: Ssrc(v.ssrc),
                ntp,
                rtp_timestamp: ts.wrapping_add(v.ssrc),
                packet_count: v.packets,
                octet_count: v.octets,
            };
            n += rtcp::write_sr(&mut out[n..], &info, &[]).ok()?;
            first_ssrc = first_ssrc.or(Some(v.ssrc));
        }
        if let Some(a) = &self.audio {
            let elapsed = now.saturating_duration_since(a.start);
            let ts = (elapsed.as_nanos() as u64 * u64::from(AUDIO_CLOCK) / 1_000_000_000) as u32;
            let info = SenderInfo {
                ssrc: Ssrc(a.ssrc),
                ntp,
                rtp_timestamp: ts.wrapping_add(a.ssrc),
                packet_count: a.packets,
                octet_count: a.octets,
            };
            n += rtcp::write_sr(&mut out[n..], &info, &[]).ok()?;
            first_ssrc = first_ssrc.or(Some(a.ssrc));
        }
        let ssrc = first_ssrc?;
        n += rtcp::write_sdes_cname(&mut out[n..], Ssrc(ssrc), &self.cname).ok()?;
        Some(n)
    }

    /// Handles a decrypted RTCP compound from the server: NACKs queue retransmissions, PLI and
    /// FIR ask for a keyframe; transport-wide feedback is counted.
    pub fn handle_rtcp(&mut self, pkt: &[u8], m: &mut Counters) {
        for p in rtcp::iter(pkt) {
            let Ok(p) = p else {
                m.undecodable += 1;
                break;
            };
            match p {
                RtcpPacket::Nack(n) => {
                    let Some(layer) = self.layer_of(n.media.0) else {
                        continue;
                    };
                    m.nacks_received += 1;
                    for seq in n.lost() {
                        m.nacked_packets += 1;
                        self.queue_rtx(layer, seq.0, m);
                    }
                }
                RtcpPacket::Pli { media, .. } => {
                    if let Some(layer) = self.layer_of(media.0) {
                        m.plis_received += 1;
                        self.video[usize::from(layer)].src.request_keyframe();
                    }
                }
                RtcpPacket::Fir(_) => {
                    m.firs_received += 1;
                    for v in &mut self.video {
                        v.src.request_keyframe();
                    }
                }
                RtcpPacket::TransportCc(_) => m.twcc_feedback_received += 1,
                _ => {}
            }
        }
    }

    /// The video encoding sent with `ssrc`.
    fn layer_of(&self, ssrc: u32) -> Option<u8> {
        self.video
            .iter()
            .position(|v| v.ssrc == ssrc)
            .map(|i| i as u8)
    }

    fn queue_rtx(&mut self, layer: u8, seq: u16, m: &mut Counters) {
        if self.rtx_len == RTX_QUEUE {
            m.rtx_unavailable += 1;
            return;
        }
        let tail = (self.rtx_head + self.rtx_len) % RTX_QUEUE;
        self.rtx_queue[tail] = (layer, seq);
        self.rtx_len += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
pub(crate) mod tests;
