//! RTP depacketizer for recording, sans-IO: puts one track's packets back in sequence order in a
//! small window and reassembles codec frames from them: VP8 (RFC 7741), VP9 (RFC 9628) and
//! Opus (RFC 7587). A frame with a packet missing is dropped, and video then waits for a
//! keyframe.
//!
//! A VP9 picture sent as several spatial-layer frames (same timestamp, one B..E run per layer)
//! comes out as one VP9 superframe: the layer frames followed by a superframe index (VP9
//! bitstream specification, Annex B), the form libvpx's own encoder output takes and that
//! libvpx and ffmpeg decode as one picture. A picture of one layer frame comes out as it is.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sfu::wire::codec::{CodecError, Vp8Descriptor, Vp9Descriptor};
use sfu::wire::seq::seq_diff;
use sfu::{Codec, MediaKind, SeqNo};

use super::{frame_header, vp9_superframe};

/// Consecutive packets behind the window after which the stream is taken to have restarted.
const RESYNC_AFTER_LATE: u32 = 64;

/// How long packets wait and how much the depacketizer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepacketizerConfig {
    /// Packets held beyond a missing one (the reorder window). A packet this far ahead of the
    /// oldest missing one makes the depacketizer give up on it.
    pub capacity: usize,
    /// How long a missing packet is waited for (retransmission, reordering), counted from the
    /// arrival of the first packet after it.
    pub max_wait: Duration,
    /// Largest frame kept; larger ones are dropped.
    pub max_frame_bytes: usize,
    /// How long after the first packet nothing is taken out of the window, so that packets
    /// sent before it but arriving after it (reordered) still count.
    pub start_hold: Duration,
}

impl DepacketizerConfig {
    /// Defaults for a codec: 512 packets for video (a large keyframe spans hundreds), 64 for
    /// audio; 300 ms of wait; frames up to 4 MiB; 100 ms of hold at the start.
    pub fn for_codec(codec: Codec) -> DepacketizerConfig {
        DepacketizerConfig {
            capacity: match codec.kind() {
                MediaKind::Video => 512,
                MediaKind::Audio => 64,
            },
            max_wait: Duration::from_millis(300),
            max_frame_bytes: 4 << 20,
            start_hold: Duration::from_millis(100),
        }
    }
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    #[error("{0:?} cannot be recorded (VP8, VP9 and Opus can)")]
    UnsupportedCodec(Codec),
    #[error("malformed payload: {0}")]
    Malformed(#[from] CodecError),
}

/// What was dropped and why; packets and frames are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DepacketizerStats {
    /// Packets taken into the window.
    pub packets: u64,
    /// Frames handed out.
    pub frames: u64,
    /// Packets whose payload descriptor did not parse or that carried no codec data after it.
    pub malformed: u64,
    /// Packets already held.
    pub duplicate: u64,
    /// Packets behind the window: already used, or given up on before they came.
    pub late: u64,
    /// Sequence numbers given up on (not there within `max_wait`, or pushed out of the window).
    pub lost: u64,
    /// Times the stream jumped back so far that the depacketizer started over.
    pub resyncs: u64,
    /// Frames dropped because one of their packets was missing or malformed.
    pub incomplete_frames: u64,
    /// Complete video frames dropped while waiting for a keyframe after a loss.
    pub awaiting_keyframe: u64,
    /// Frames dropped for being larger than `max_frame_bytes`, or for holding more spatial
    /// layers than a VP9 superframe can list.
    pub oversized_frames: u64,
}

/// One reassembled frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub rtp_timestamp: u32,
    /// A keyframe: decoding can start here (always true for Opus).
    pub keyframe: bool,
    /// The codec frame: a VP8 frame, a VP9 frame or superframe, an Opus packet.
    pub data: Vec<u8>,
}

/// What a packet tells about its place in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PacketInfo {
    /// First packet of a frame (VP8) or of a layer frame (VP9 B bit).
    begins_layer: bool,
    /// Last packet of a layer frame (VP9 E bit; Opus packets are whole frames).
    ends_layer: bool,
    /// The base spatial layer: a packet that begins a layer here begins the picture.
    base_layer: bool,
    /// The start of a keyframe.
    key: bool,
    /// No codec data: an RTP padding packet.
    padding: bool,
    malformed: bool,
}

#[derive(Debug, Default)]
struct Slot {
    /// Extended sequence number; the slot holds this packet when `present`.
    seq: u64,
    present: bool,
    arrival: Option<Instant>,
    timestamp: u32,
    marker: bool,
    info: PacketInfo,
    payload: Vec<u8>,
}

/// The frame being put together.
#[derive(Debug)]
struct Assembly {
    timestamp: u32,
    key: bool,
    /// A packet of it was missing or malformed.
    broken: bool,
    oversized: bool,
    data: Vec<u8>,
    /// Where each spatial-layer frame starts in `data` (VP9).
    layer_starts: [usize; vp9_superframe::MAX_FRAMES],
    layers: usize,
    /// The last packet appended ended a layer frame.
    layer_ended: bool,
}

/// What the last packet taken out of the window was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// It ended a frame (marker) or was padding: the next packet begins a picture.
    Boundary,
    /// It was inside the frame with this timestamp.
    Within(u32),
    /// It was lost or malformed (or nothing came yet): what follows is uncertain.
    Unknown,
}

/// Reorders one track's RTP packets and reassembles frames. Packets go in with [`push`], time
/// with [`handle_timeout`]; frames come out of [`poll_frame`]. The window opens at the first
/// packet pushed, or at an earlier one that arrives within the start hold; packets sent before
/// that count as late.
///
/// [`push`]: Depacketizer::push
/// [`handle_timeout`]: Depacketizer::handle_timeout
/// [`poll_frame`]: Depacketizer::poll_frame
#[derive(Debug)]
pub struct Depacketizer {
    codec: Codec,
    cfg: DepacketizerConfig,
    slots: Vec<Slot>,
    /// Oldest sequence number not yet taken out (extended); `None` before the first packet.
    head: Option<u64>,
    /// Highest extended sequence number seen.
    highest: u64,
    /// Until then, nothing is taken out and the window may still open further back.
    hold_until: Option<Instant>,
    late_streak: u32,
    prev: Prev,
    cur: Option<Assembly>,
    /// Timestamp of a frame whose remaining packets are being dropped (counted once).
    dropping: Option<u32>,
    need_keyframe: bool,
    out: VecDeque<Frame>,
    spare: Vec<Vec<u8>>,
    stats: DepacketizerStats,
}

impl Depacketizer {
    /// A depacketizer for VP8, VP9 or Opus.
    pub fn new(codec: Codec, cfg: DepacketizerConfig) -> Result<Self, DepacketizeError> {
        if !matches!(codec, Codec::Vp8 | Codec::Vp9 | Codec::Opus) {
            return Err(DepacketizeError::UnsupportedCodec(codec));
        }
        let capacity = cfg.capacity.max(1);
        Ok(Depacketizer {
            codec,
            cfg: DepacketizerConfig { capacity, ..cfg },
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            head: None,
            highest: 0,
            hold_until: None,
            late_streak: 0,
            prev: Prev::Unknown,
            cur: None,
            dropping: None,
            need_keyframe: codec.kind() == MediaKind::Video,
            out: VecDeque::new(),
            spare: Vec::new(),
            stats: DepacketizerStats::default(),
        })
    }

    /// The codec this depacketizer reassembles.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// True while video frames are being dropped until a keyframe comes (from the start, and
    /// after any loss): the time to ask the sender for one.
    pub fn needs_keyframe(&self) -> bool {
        self.need_keyframe
    }

    /// What was taken in, handed out and dropped so far.
    pub fn stats(&self) -> &DepacketizerStats {
        &self.stats
    }

    /// The next reassembled frame, in sequence order.
    pub fn poll_frame(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    /// Gives a frame's buffer back for reuse.
    pub fn recycle(&mut self, mut data: Vec<u8>) {
        if self.spare.len() < 32 {
            data.clear();
            self.spare.push(data);
        }
    }

    /// Takes in one RTP packet's fields and payload (padding removed) that arrived at `now`.
    /// Packets that are late or duplicate are counted and ignored; a malformed payload is
    /// counted, breaks the frame it belongs to and is returned as an error.
    pub fn push(
        &mut self,
        now: Instant,
        seq: SeqNo,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), DepacketizeError> {
        let result = self.insert(now, seq, rtp_timestamp, marker, payload);
        self.drain(Some(now));
        result
    }

    /// Puts a packet into the window (or counts why not).
    fn insert(
        &mut self,
        now: Instant,
        seq: SeqNo,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), DepacketizeError> {
        let ext = match self.head {
            None => {
                // Start far from zero so that sequence numbers can go back from here.
                let first = (1u64 << 32) + u64::from(seq.0);
                self.head = Some(first);
                self.highest = first;
                self.hold_until =
                    (!self.cfg.start_hold.is_zero()).then(|| now + self.cfg.start_hold);
                first
            }
            Some(_) => {
                let e = self.highest as i64 + i64::from(seq_diff(self.highest_wire(), seq));
                e as u64
            }
        };
        let mut head = self.head.unwrap_or(ext);
        let cap = self.cfg.capacity as u64;
        if ext < head && self.hold_until.is_some() && ext + cap > self.highest {
            // Reordered at the start: nothing was taken out yet, so the window opens earlier.
            head = ext;
            self.head = Some(ext);
        }
        if ext < head {
            self.stats.late += 1;
            self.late_streak += 1;
            if self.late_streak >= RESYNC_AFTER_LATE {
                self.resync();
                self.stats.resyncs += 1;
                return self.insert(now, seq, rtp_timestamp, marker, payload);
            }
            return Ok(());
        }
        self.late_streak = 0;
        if ext >= head + cap {
            self.advance_to(ext + 1 - cap);
        }
        let idx = (ext % cap) as usize;
        if self.slots[idx].present && self.slots[idx].seq == ext {
            self.stats.duplicate += 1;
            return Ok(());
        }
        let parsed = parse(self.codec, payload);
        let slot = &mut self.slots[idx];
        slot.seq = ext;
        slot.present = true;
        slot.arrival = Some(now);
        slot.timestamp = rtp_timestamp;
        slot.marker = marker;
        slot.payload.clear();
        let result = match parsed {
            Ok((info, body)) => {
                slot.info = info;
                slot.payload.extend_from_slice(body);
                Ok(())
            }
            Err(e) => {
                slot.info = PacketInfo {
                    malformed: true,
                    ..Default::default()
                };
                self.stats.malformed += 1;
                Err(DepacketizeError::Malformed(e))
            }
        };
        self.stats.packets += 1;
        self.highest = self.highest.max(ext);
        result
    }

    /// Gives up on missing packets whose wait is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drain(Some(now));
    }

    /// When [`Depacketizer::handle_timeout`] next has something to do: the end of the wait for
    /// the oldest missing packet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.hold_until.is_some() {
            return self.hold_until;
        }
        let head = self.head?;
        if self.slot_holds(head) || self.highest < head {
            return None;
        }
        self.next_arrival(head).map(|t| t + self.cfg.max_wait)
    }

    /// The stream ended: gives up on every missing packet, hands out what is complete and drops
    /// the frame still open.
    pub fn flush(&mut self) {
        self.drain(None);
        if let Some(a) = self.cur.take() {
            self.finish(a, false);
        }
    }

    fn highest_wire(&self) -> SeqNo {
        SeqNo(self.highest as u16)
    }

    fn slot_holds(&self, seq: u64) -> bool {
        let s = &self.slots[(seq % self.cfg.capacity as u64) as usize];
        s.present && s.seq == seq
    }

    /// Arrival of the first packet held after `seq`.
    fn next_arrival(&self, seq: u64) -> Option<Instant> {
        (seq + 1..=self.highest)
            .find(|&s| self.slot_holds(s))
            .and_then(|s| self.slots[(s % self.cfg.capacity as u64) as usize].arrival)
    }

    /// Takes packets out of the window in order while they are there, giving up on missing
    /// ones once their wait is over (always, when `now` is `None`).
    fn drain(&mut self, now: Option<Instant>) {
        if let Some(hold) = self.hold_until {
            if now.is_some_and(|n| n < hold) {
                return;
            }
            self.hold_until = None;
        }
        while let Some(head) = self.head {
            if self.slot_holds(head) {
                self.take(head);
                continue;
            }
            if self.highest < head {
                break;
            }
            let expired = match (now, self.next_arrival(head)) {
                (None, _) | (_, None) => true,
                (Some(now), Some(t)) => now.saturating_duration_since(t) >= self.cfg.max_wait,
            };
            if !expired {
                break;
            }
            self.give_up(head);
        }
    }

    /// Takes packets out (or gives up on them) until the head reaches `target`.
    fn advance_to(&mut self, target: u64) {
        let Some(mut head) = self.head else { return };
        self.hold_until = None;
        let cap = self.cfg.capacity as u64;
        // Beyond one window nothing is held: count the rest as lost in one step.
        let stepwise_end = target.min(head + cap);
        while head < stepwise_end {
            if self.slot_holds(head) {
                self.take(head);
            } else {
                self.give_up(head);
            }
            head = self.head.unwrap_or(stepwise_end);
        }
        if head < target {
            self.stats.lost += target - head;
            self.on_loss();
            self.head = Some(target);
        }
    }

    fn resync(&mut self) {
        for s in &mut self.slots {
            s.present = false;
        }
        if let Some(a) = self.cur.take() {
            self.finish(a, false);
        }
        self.head = None;
        self.hold_until = None;
        self.late_streak = 0;
        self.prev = Prev::Unknown;
        self.dropping = None;
        self.on_loss();
    }

    fn give_up(&mut self, seq: u64) {
        self.stats.lost += 1;
        self.on_loss();
        self.head = Some(seq + 1);
    }

    /// A packet that never came or could not be read: the open frame is broken, and for video
    /// the next frames may refer to what was lost.
    fn on_loss(&mut self) {
        if let Some(a) = &mut self.cur {
            a.broken = true;
        }
        self.prev = Prev::Unknown;
        if self.codec.kind() == MediaKind::Video {
            self.need_keyframe = true;
        }
    }

    /// Takes the packet at the head out of the window into the frame being assembled.
    fn take(&mut self, seq: u64) {
        self.head = Some(seq + 1);
        let idx = (seq % self.cfg.capacity as u64) as usize;
        self.slots[idx].present = false;
        let (ts, marker, info) = {
            let s = &self.slots[idx];
            (s.timestamp, s.marker, s.info)
        };
        // A packet of another timestamp ends the open frame: nothing is missing between them,
        // so it is complete even without a marker.
        if let Some(a) = self.cur.take_if(|a| a.timestamp != ts) {
            self.finish(a, true);
        }
        if info.malformed {
            self.on_loss();
            return;
        }
        if info.padding {
            if self.cur.is_none() {
                self.prev = Prev::Boundary;
            }
            return;
        }
        if self.cur.is_none() {
            let starts = info.begins_layer
                && (info.base_layer
                    || match self.prev {
                        Prev::Boundary => true,
                        Prev::Within(t) => t != ts,
                        Prev::Unknown => false,
                    });
            if !starts {
                // The rest of a frame whose first packets are gone.
                if self.dropping != Some(ts) {
                    self.dropping = Some(ts);
                    self.stats.incomplete_frames += 1;
                }
                self.on_loss();
                self.prev = Prev::Unknown;
                return;
            }
            let mut data = self.spare.pop().unwrap_or_default();
            data.clear();
            self.cur = Some(Assembly {
                timestamp: ts,
                key: info.key,
                broken: false,
                oversized: false,
                data,
                layer_starts: [0; vp9_superframe::MAX_FRAMES],
                layers: 0,
                layer_ended: false,
            });
        }
        let max = self.cfg.max_frame_bytes;
        let codec = self.codec;
        if let Some(a) = &mut self.cur
            && !a.broken
            && !a.oversized
        {
            let payload = &self.slots[idx].payload;
            if codec == Codec::Vp9 && info.begins_layer {
                if a.layers == vp9_superframe::MAX_FRAMES {
                    a.oversized = true;
                } else {
                    a.layer_starts[a.layers] = a.data.len();
                    a.layers += 1;
                }
            }
            if a.data.len() + payload.len() > max {
                a.oversized = true;
            } else if !a.oversized {
                a.data.extend_from_slice(payload);
            }
            a.layer_ended = info.ends_layer;
        }
        let ends = marker || self.codec == Codec::Opus;
        if ends && let Some(a) = self.cur.take() {
            self.finish(a, true);
        }
        self.prev = if ends {
            Prev::Boundary
        } else {
            Prev::Within(ts)
        };
    }

    /// Hands out a finished frame, or drops and counts it.
    fn finish(&mut self, mut a: Assembly, ended: bool) {
        let video = self.codec.kind() == MediaKind::Video;
        let complete = ended && !a.broken;
        if a.oversized {
            self.stats.oversized_frames += 1;
            self.need_keyframe |= video;
        } else if !complete {
            self.stats.incomplete_frames += 1;
            self.need_keyframe |= video;
        } else if self.need_keyframe && video && !a.key {
            self.stats.awaiting_keyframe += 1;
        } else if self.codec == Codec::Vp9 && a.layers > 1 && !superframe(&mut a) {
            self.stats.oversized_frames += 1;
            self.need_keyframe = true;
        } else {
            if a.key && video {
                self.need_keyframe = false;
            }
            self.stats.frames += 1;
            self.out.push_back(Frame {
                rtp_timestamp: a.timestamp,
                keyframe: a.key,
                data: a.data,
            });
            return;
        }
        self.recycle(a.data);
    }
}

/// Turns the spatial-layer frames of a VP9 picture into one superframe: the layer frames (and
/// the frames of any superframe among them) followed by an index. False when they are more than
/// an index can list.
fn superframe(a: &mut Assembly) -> bool {
    let mut sizes = [0usize; vp9_superframe::MAX_FRAMES];
    let mut count = 0;
    let mut nested = false;
    for l in 0..a.layers {
        let end = if l + 1 < a.layers {
            a.layer_starts[l + 1]
        } else {
            a.data.len()
        };
        let layer = &a.data[a.layer_starts[l]..end];
        nested |= vp9_superframe::index(layer).is_some();
        for f in vp9_superframe::frames(layer) {
            if count == vp9_superframe::MAX_FRAMES {
                return false;
            }
            sizes[count] = f.len();
            count += 1;
        }
    }
    if nested {
        // Copy the inner frames out without their indexes.
        let mut flat = Vec::with_capacity(a.data.len() + 2 + 4 * count);
        for l in 0..a.layers {
            let end = if l + 1 < a.layers {
                a.layer_starts[l + 1]
            } else {
                a.data.len()
            };
            for f in vp9_superframe::frames(&a.data[a.layer_starts[l]..end]) {
                flat.extend_from_slice(f);
            }
        }
        a.data = flat;
    }
    vp9_superframe::put_index(&mut a.data, &sizes[..count])
}

/// Reads a payload's descriptor: what the packet is and the codec data after it.
fn parse(codec: Codec, payload: &[u8]) -> Result<(PacketInfo, &[u8]), CodecError> {
    if payload.is_empty() {
        return Ok((
            PacketInfo {
                padding: true,
                ..Default::default()
            },
            payload,
        ));
    }
    match codec {
        Codec::Vp8 => {
            let d = Vp8Descriptor::parse(payload)?;
            let body = payload.get(d.header_len..).unwrap_or_default();
            let &first = body.first().ok_or(CodecError::Truncated)?;
            let start = d.is_frame_start();
            Ok((
                PacketInfo {
                    begins_layer: start,
                    base_layer: true,
                    key: start && first & 0x01 == 0,
                    ..Default::default()
                },
                body,
            ))
        }
        Codec::Vp9 => {
            let d = Vp9Descriptor::parse(payload)?;
            let body = payload.get(d.header_len..).unwrap_or_default();
            if body.is_empty() {
                return Err(CodecError::Truncated);
            }
            let base = d.spatial_layer() == 0;
            // The descriptor's P bit and the frame's own header must both say so (some
            // packetizers leave P clear on every frame).
            let key =
                d.start_of_frame && base && !d.inter_picture && frame_header::vp9_is_keyframe(body);
            Ok((
                PacketInfo {
                    begins_layer: d.start_of_frame,
                    ends_layer: d.end_of_frame,
                    base_layer: base,
                    key,
                    ..Default::default()
                },
                body,
            ))
        }
        _ => Ok((
            PacketInfo {
                begins_layer: true,
                ends_layer: true,
                base_layer: true,
                key: true,
                ..Default::default()
            },
            payload,
        )),
    }
}

#[cfg(test)]
#[path = "depacketizer_tests.rs"]
mod tests;
