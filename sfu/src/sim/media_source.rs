//! A synthetic camera: VP8-like video (keyframes on an interval or on request, several packets
//! per frame at 30 frames/s) and Opus-like audio every 20 ms, written as plaintext RTP into the
//! caller's buffer without allocating.

use std::time::{Duration, Instant};

use super::codecs::{AUDIO_SSRC, PUB_EXT_AUDIO_LEVEL, PUB_EXT_MID, PUB_OPUS, PUB_VP8, VIDEO_SSRC};
use crate::wire::rtp::{self, RtpFields};
use crate::{PayloadType, SeqNo, Ssrc};

/// Time between video frames (30 frames/s).
pub const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);
/// Time between audio packets.
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// RTP timestamp step between video frames at 90 kHz.
pub const VIDEO_TS_STEP: u32 = 3000;
/// Payload bytes of an audio packet.
pub const AUDIO_PAYLOAD: usize = 160;

/// The state of one publisher's synthetic media.
#[derive(Debug, Clone)]
pub struct MediaSource {
    pub video_seq: u16,
    pub audio_seq: u16,
    pub rtx_seq: u16,
    /// Frames started so far (the next packet belongs to frame `frame` when `packet_in_frame`
    /// is 0, else to frame `frame - 1`).
    pub frame: u64,
    pub keyframe_interval: u64,
    /// The next frame is a keyframe (set when the publisher receives PLI or FIR).
    pub force_keyframe: bool,
    pub packets_per_frame: usize,
    /// Payload bytes of each video packet (at least 16).
    pub video_payload: usize,
    pub next_frame: Instant,
    pub next_audio: Instant,
    /// PLIs and FIRs received.
    pub plis: u64,
    /// NACK packets received.
    pub nacks: u64,
    /// While set, the harness generates no media for this source: a driver feeds the shard core
    /// itself (see `Harness::next_video_packet`).
    pub paused: bool,
    /// The audio-level extension byte (RFC 6464) of every audio packet.
    pub audio_level: u8,
    /// Audio payloads sent in turn (real Opus packets, say); empty: a fixed filler payload.
    pub audio_payloads: Vec<Vec<u8>>,
    /// Position of the next video packet within its frame.
    packet_in_frame: usize,
    /// Whether the frame being written is a keyframe.
    frame_is_key: bool,
}

impl MediaSource {
    /// A source whose first frame and first audio packet are due at `now`. The video sequence
    /// number starts just below the wrap, so that every run crosses it.
    pub fn new(now: Instant) -> Self {
        MediaSource {
            video_seq: 65_500,
            audio_seq: 1,
            rtx_seq: 100,
            frame: 0,
            keyframe_interval: 90,
            force_keyframe: false,
            packets_per_frame: 3,
            video_payload: 1000,
            next_frame: now,
            next_audio: now,
            plis: 0,
            nacks: 0,
            paused: false,
            audio_level: 0x85,
            audio_payloads: Vec::new(),
            packet_in_frame: 0,
            frame_is_key: false,
        }
    }

    /// Whether the next video packet starts a new frame.
    pub fn at_frame_start(&self) -> bool {
        self.packet_in_frame == 0
    }

    /// Writes the next video packet into `out` and returns its sequence number and length.
    /// The first packet of a frame carries the VP8 start bit and, on keyframes, the keyframe
    /// start code; the last one carries the marker. Bytes 8..16 of the payload hold the frame
    /// number. `out` needs room for the header (20 bytes) and the payload.
    pub fn write_video(&mut self, out: &mut [u8]) -> (u16, usize) {
        let i = self.packet_in_frame;
        if i == 0 {
            self.frame_is_key =
                self.frame.is_multiple_of(self.keyframe_interval) || self.force_keyframe;
            self.force_keyframe = false;
            self.frame += 1;
            self.next_frame += FRAME_INTERVAL;
        }
        let frame = self.frame - 1;
        let last = i + 1 == self.packets_per_frame;
        self.packet_in_frame = if last { 0 } else { i + 1 };
        let fields = RtpFields {
            marker: last,
            payload_type: PayloadType(PUB_VP8),
            seq: SeqNo(self.video_seq),
            timestamp: (frame as u32).wrapping_mul(VIDEO_TS_STEP),
            ssrc: Ssrc(VIDEO_SSRC),
            extensions: &[(PUB_EXT_MID, b"0")],
        };
        let seq = self.video_seq;
        self.video_seq = self.video_seq.wrapping_add(1);
        let head = write_header(out, &fields);
        let payload_len = self.video_payload.max(16);
        let payload = &mut out[head..head + payload_len];
        payload.fill(0);
        payload[0] = if i == 0 { 0x10 } else { 0x00 }; // VP8 descriptor: S bit on the first packet
        payload[1] = if self.frame_is_key { 0x00 } else { 0x01 }; // VP8 header: P=0 on keyframes
        if self.frame_is_key {
            payload[4..7].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        }
        payload[8..16].copy_from_slice(&frame.to_be_bytes());
        (seq, head + payload_len)
    }

    /// Writes the next audio packet into `out` and returns its length.
    pub fn write_audio(&mut self, out: &mut [u8]) -> usize {
        let fields = RtpFields {
            marker: false,
            payload_type: PayloadType(PUB_OPUS),
            seq: SeqNo(self.audio_seq),
            timestamp: u32::from(self.audio_seq).wrapping_mul(960),
            ssrc: Ssrc(AUDIO_SSRC),
            extensions: &[
                (PUB_EXT_MID, b"1"),
                (PUB_EXT_AUDIO_LEVEL, &[self.audio_level]),
            ],
        };
        let turn = usize::from(self.audio_seq);
        self.audio_seq = self.audio_seq.wrapping_add(1);
        self.next_audio += AUDIO_INTERVAL;
        let head = write_header(out, &fields);
        if self.audio_payloads.is_empty() {
            out[head..head + AUDIO_PAYLOAD].fill(0xfc);
            return head + AUDIO_PAYLOAD;
        }
        let p = &self.audio_payloads[turn % self.audio_payloads.len()];
        out[head..head + p.len()].copy_from_slice(p);
        head + p.len()
    }
}

/// Writes the header alone (an RTP packet with an empty payload) and returns its length.
fn write_header(out: &mut [u8], fields: &RtpFields) -> usize {
    // The fields are fixed and valid: one-byte extensions with ids 1..=14, so only a buffer
    // shorter than a header could fail, and callers pass slot-sized buffers.
    rtp::write_rtp(out, fields, &[]).expect("RTP header fits the caller's buffer")
}
