//! A publisher: paces VP8-like frames and Opus-like packets out of [`crate::media`] sources into
//! RTP (RFC 3550) with mid, transport-wide sequence number and audio level extensions (RFC 8285),
//! keeps every video packet in a ring and answers NACKs with RTX (RFC 4588), answers PLI and FIR
//! (RFC 4585, RFC 5104) with a keyframe, and sends sender reports with a CNAME.

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
/// RTP header plus the largest extension block this publisher writes.
const MAX_HEADER: usize = 12 + 4 + 12;

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
    video: Option<VideoTx>,
    audio: Option<AudioTx>,
    twcc_seq: u16,
    rtx_queue: [u16; RTX_QUEUE],
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
        let video = match (cfg.video, cfg.plan.video.clone()) {
            (Some(v), Some(plan)) => Some(VideoTx {
                src: VideoSource::new(v, now, cfg.seed),
                ssrc: plan.ssrc.unwrap_or(cfg.seed as u32 | 1),
                plan,
                seq: (cfg.seed >> 16) as u16,
                rtx_seq: (cfg.seed >> 32) as u16,
                tag: 0,
                picture_id: (cfg.seed >> 48) as u16 & 0x7fff,
                frame: None,
                ring: SentRing::new(cfg.ring_slots),
                packets: 0,
                octets: 0,
                start: now,
            }),
            _ => None,
        };
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
            rtx_queue: [0; RTX_QUEUE],
            rtx_head: 0,
            rtx_len: 0,
            next_report: now + REPORT_INTERVAL,
            cname: cfg.cname,
        }
    }

    /// The video SSRC, if video is sent.
    pub fn video_ssrc(&self) -> Option<u32> {
        self.video.as_ref().map(|v| v.ssrc)
    }

    /// When [`poll_transmit`](Self::poll_transmit) next has something to send.
    /// Packets already waiting (a frame half sent, retransmissions) are due at once: the
    /// instant returned is then in the past.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_report;
        if let Some(v) = &self.video {
            if v.frame.is_some() || self.rtx_len > 0 {
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
            let seq = self.rtx_queue[self.rtx_head];
            self.rtx_head = (self.rtx_head + 1) % RTX_QUEUE;
            self.rtx_len -= 1;
            let v = self.video.as_mut()?;
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
        let Publisher {
            clock,
            video,
            twcc_seq,
            ..
        } = self;
        let v = video.as_mut()?;
        if v.frame.is_none() {
            let skipped = v.src.frames_skipped();
            let frame = v.src.poll_frame(now);
            m.frames_skipped += v.src.frames_skipped() - skipped;
            let frame = frame?;
            m.video_frames += 1;
            m.keyframes += u64::from(frame.keyframe);
            v.picture_id = (v.picture_id + 1) & 0x7fff;
            let max_chunk = MAX_RTP - MAX_HEADER - DESCRIPTOR_LEN;
            v.frame = Some((frame, FramePacketizer::new(frame.size, max_chunk)));
        }
        let (frame, packetizer) = v.frame.as_mut()?;
        let frame = *frame;
        let chunk = packetizer.next_chunk()?;
        if packetizer.is_done() {
            v.frame = None;
        }
        let twcc = take_twcc(twcc_seq);
        let mut exts: [(u8, &[u8]); 2] = [(0, &[]), (0, &[])];
        let mut n_ext = 0;
        if let Some(id) = v.plan.ext.mid {
            exts[n_ext] = (id, v.plan.mid.as_bytes());
            n_ext += 1;
        }
        if let Some(id) = v.plan.ext.transport_cc {
            exts[n_ext] = (id, &twcc);
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
        let tag = Tag {
            send_ns: clock.ns(now),
            seq: v.tag,
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
        let tag = Tag {
            send_ns: clock.ns(now),
            seq: a.tag,
        };
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
        if let Some(v) = &self.video {
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
            first_ssrc = Some(v.ssrc);
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
        let video_ssrc = self.video.as_ref().map(|v| v.ssrc);
        for p in rtcp::iter(pkt) {
            let Ok(p) = p else {
                m.undecodable += 1;
                break;
            };
            match p {
                RtcpPacket::Nack(n) if Some(n.media.0) == video_ssrc => {
                    m.nacks_received += 1;
                    for seq in n.lost() {
                        m.nacked_packets += 1;
                        self.queue_rtx(seq.0, m);
                    }
                }
                RtcpPacket::Pli { media, .. } if Some(media.0) == video_ssrc => {
                    m.plis_received += 1;
                    if let Some(v) = self.video.as_mut() {
                        v.src.request_keyframe();
                    }
                }
                RtcpPacket::Fir(_) => {
                    m.firs_received += 1;
                    if let Some(v) = self.video.as_mut() {
                        v.src.request_keyframe();
                    }
                }
                RtcpPacket::TransportCc(_) => m.twcc_feedback_received += 1,
                _ => {}
            }
        }
    }

    fn queue_rtx(&mut self, seq: u16, m: &mut Counters) {
        if self.rtx_len == RTX_QUEUE {
            m.rtx_unavailable += 1;
            return;
        }
        let tail = (self.rtx_head + self.rtx_len) % RTX_QUEUE;
        self.rtx_queue[tail] = seq;
        self.rtx_len += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
pub(crate) mod tests;
