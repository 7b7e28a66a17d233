//! VP8-like video: a frame schedule at a fixed rate with a keyframe every interval and on
//! request, frame sizes that meet a target bitrate over a group of pictures (keyframes several
//! times larger, every frame varied a little), split into packets of equal size that fit the
//! datagram cap, each payload an RFC 7741 descriptor (15-bit picture ID) and, on the first
//! packet of a frame, a VP8 payload header (§4.3) with the keyframe bit.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tag::{TAG_LEN, Tag};

/// VP8 descriptor length as written: X, I and a 15-bit picture ID.
pub const DESCRIPTOR_LEN: usize = 4;
/// VP8 payload header length of an interframe (§4.3: 3 bytes) and of a keyframe (3 + start
/// code and dimensions: 10 bytes).
const INTERFRAME_HEADER: usize = 3;
const KEYFRAME_HEADER: usize = 10;
/// Smallest frame: room for the payload header and a tag in its first packet.
const MIN_FRAME: usize = KEYFRAME_HEADER + TAG_LEN + 16;
/// RTP clock rate of video.
pub const VIDEO_CLOCK: u32 = 90_000;

/// Shape of the video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoConfig {
    /// Target bitrate of the encoded frames (bits/s), the VP8 payload header included.
    pub bitrate_bps: u64,
    pub fps: u32,
    /// Time between periodic keyframes.
    pub keyframe_interval: Duration,
    /// Size of a keyframe relative to an interframe.
    pub keyframe_factor: f64,
    /// Each frame's size varies uniformly by ± this fraction.
    pub size_jitter: f64,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            bitrate_bps: 1_000_000,
            fps: 30,
            keyframe_interval: Duration::from_secs(3),
            keyframe_factor: 5.0,
            size_jitter: 0.2,
        }
    }
}

impl VideoConfig {
    /// Frames between periodic keyframes (at least 1).
    pub fn gop_frames(&self) -> u64 {
        ((self.keyframe_interval.as_secs_f64() * f64::from(self.fps)).round() as u64).max(1)
    }

    /// Mean interframe size in bytes: the bytes of a group of pictures (one keyframe, the rest
    /// interframes) at the target bitrate, shared out.
    pub fn interframe_size(&self) -> f64 {
        let g = self.gop_frames() as f64;
        let gop_bytes = self.bitrate_bps as f64 / 8.0 * g / f64::from(self.fps.max(1));
        gop_bytes / (g - 1.0 + self.keyframe_factor)
    }
}

/// One encoded frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Frame number from 0.
    pub index: u64,
    pub keyframe: bool,
    /// Encoded size in bytes (VP8 payload header included, descriptors excluded).
    pub size: usize,
    /// RTP timestamp (90 kHz, from 0).
    pub rtp_ts: u32,
    /// When it was due.
    pub due: Instant,
}

/// The frame schedule of one publisher.
#[derive(Debug)]
pub struct VideoSource {
    cfg: VideoConfig,
    start: Instant,
    next_index: u64,
    since_key: u64,
    force_key: bool,
    rng: StdRng,
    frames_skipped: u64,
    keyframes: u64,
}

/// A late loop catches up at most this many frames; older ones are skipped.
const MAX_CATCH_UP: u64 = 5;

impl VideoSource {
    /// A source whose first frame (a keyframe) is due at `start`.
    pub fn new(cfg: VideoConfig, start: Instant, seed: u64) -> Self {
        VideoSource {
            cfg,
            start,
            next_index: 0,
            since_key: 0,
            force_key: true,
            rng: StdRng::seed_from_u64(seed),
            frames_skipped: 0,
            keyframes: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VideoConfig {
        &self.cfg
    }

    fn due_of(&self, index: u64) -> Instant {
        let fps = u64::from(self.cfg.fps.max(1));
        self.start + Duration::from_nanos(index * 1_000_000_000 / fps)
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Instant {
        self.due_of(self.next_index)
    }

    /// Makes the next frame a keyframe (a PLI or FIR arrived).
    pub fn request_keyframe(&mut self) {
        self.force_key = true;
    }

    /// Frames skipped because the caller fell behind by more than a few frames.
    pub fn frames_skipped(&self) -> u64 {
        self.frames_skipped
    }

    /// Keyframes produced.
    pub fn keyframes(&self) -> u64 {
        self.keyframes
    }

    /// The next frame if it is due at `now`.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame> {
        if now < self.next_due() {
            return None;
        }
        let fps = u64::from(self.cfg.fps.max(1));
        let behind = (now.saturating_duration_since(self.next_due()).as_nanos() as u64) * fps
            / 1_000_000_000;
        if behind > MAX_CATCH_UP {
            let skip = behind - MAX_CATCH_UP;
            self.next_index += skip;
            self.since_key += skip;
            self.frames_skipped += skip;
        }
        let index = self.next_index;
        self.next_index += 1;
        let keyframe = self.force_key || self.since_key >= self.cfg.gop_frames();
        if keyframe {
            self.force_key = false;
            self.since_key = 1;
            self.keyframes += 1;
        } else {
            self.since_key += 1;
        }
        let mean = self.cfg.interframe_size()
            * if keyframe {
                self.cfg.keyframe_factor
            } else {
                1.0
            };
        let j = self.cfg.size_jitter.clamp(0.0, 0.9);
        let factor = if j > 0.0 {
            self.rng.random_range(1.0 - j..1.0 + j)
        } else {
            1.0
        };
        let size = ((mean * factor) as usize).max(MIN_FRAME);
        let rtp_ts = (index * u64::from(VIDEO_CLOCK) / fps) as u32;
        Some(Frame {
            index,
            keyframe,
            size,
            rtp_ts,
            due: self.due_of(index),
        })
    }
}

/// One packet's share of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes of the frame in this packet.
    pub len: usize,
    pub first: bool,
    pub last: bool,
}

/// Splits a frame into packets of (nearly) equal size, none carrying more than `max_chunk`
/// frame bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FramePacketizer {
    packets: usize,
    next: usize,
    base: usize,
    extra: usize,
}

impl FramePacketizer {
    /// A packetizer for `frame_size` bytes; `max_chunk` is at least [`TAG_LEN`] + 11.
    pub fn new(frame_size: usize, max_chunk: usize) -> Self {
        let max_chunk = max_chunk.max(KEYFRAME_HEADER + TAG_LEN + 1);
        let packets = frame_size.div_ceil(max_chunk).max(1);
        FramePacketizer {
            packets,
            next: 0,
            base: frame_size / packets,
            extra: frame_size % packets,
        }
    }

    /// Number of packets of the frame.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Whether every chunk was handed out.
    pub fn is_done(&self) -> bool {
        self.next >= self.packets
    }

    /// The next chunk.
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        if self.is_done() {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(Chunk {
            len: self.base + usize::from(i < self.extra),
            first: i == 0,
            last: i + 1 == self.packets,
        })
    }
}

/// Writes the VP8 payload of one packet into `out`: descriptor (S on the first packet, picture
/// ID), the payload header on the first packet, filler, and `tag` in the last bytes. Returns the
/// payload length (descriptor + chunk), or `None` when `out` is too small.
pub fn write_vp8_payload(
    out: &mut [u8],
    chunk: Chunk,
    keyframe: bool,
    picture_id: u16,
    frame_size: usize,
    tag: Tag,
) -> Option<usize> {
    let len = DESCRIPTOR_LEN + chunk.len;
    let p = out.get_mut(..len)?;
    p[0] = 0x80 | if chunk.first { 0x10 } else { 0 }; // X, S, PID 0
    p[1] = 0x80; // I: picture ID present
    let pid = picture_id & 0x7fff;
    p[2] = 0x80 | (pid >> 8) as u8; // M: 15-bit picture ID
    p[3] = pid as u8;
    let body = &mut p[DESCRIPTOR_LEN..];
    body.fill(0x5a);
    if chunk.first {
        // §4.3 / RFC 6386 §9.1: size0 (3 bits), show_frame, version (3 bits), P (inverse key
        // frame flag), then size1, size2 (first partition size, here a fixed share).
        let part = (frame_size / 4) as u32;
        let need = if keyframe {
            KEYFRAME_HEADER
        } else {
            INTERFRAME_HEADER
        };
        if body.len() >= need + TAG_LEN {
            body[0] = (((part & 0x7) as u8) << 5) | 0x10 | u8::from(!keyframe);
            body[1] = (part >> 3) as u8;
            body[2] = (part >> 11) as u8;
            if keyframe {
                body[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
                body[6..8].copy_from_slice(&640u16.to_le_bytes());
                body[8..10].copy_from_slice(&360u16.to_le_bytes());
            }
        }
    }
    tag.write_tail(body);
    Some(len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
