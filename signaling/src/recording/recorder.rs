//! Recording of a channel's tracks into one WebM file, sans-IO but for the `Write + Seek` sink:
//! RTP packets (RFC 3550) of up to one video (VP8, VP9) and one audio (Opus) track go in with
//! their arrival time; frames are reassembled, put on one time line and muxed.
//!
//! The tracks share no clock (no RTCP sender reports reach the recorder), so each track's time
//! line is anchored at the arrival of its first packet: a frame's time is that arrival's offset
//! from the recording's first packet plus the frame's RTP time since the track's first packet
//! (90 kHz for video, 48 kHz for Opus).

use std::io::{Seek, Write};
use std::time::Instant;

use sfu::wire::rtp::{RtpError, RtpHeader};
use sfu::{Codec, MediaKind};

use super::depacketizer::{DepacketizeError, Depacketizer, DepacketizerConfig, DepacketizerStats};
use super::frame_header;
use super::interleave::{Interleaver, Pending};
use super::webm::{TrackConfig, VideoCodec, WebmError, WebmSummary, WebmWriter};

/// Longest a frame is held for the other track to catch up before it is written (ms).
pub const INTERLEAVE_MS: u64 = 500;

/// One track to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackSpec {
    /// VP8, VP9 or Opus.
    pub codec: Codec,
    /// Opus channels as the session negotiated them (1 or 2; ignored for video).
    pub channels: u8,
    /// The video size when known beforehand; otherwise it is read from the first keyframe.
    pub size: Option<(u32, u32)>,
}

impl TrackSpec {
    /// A VP8 or VP9 track whose size the first keyframe gives.
    pub fn video(codec: Codec) -> TrackSpec {
        TrackSpec {
            codec,
            channels: 0,
            size: None,
        }
    }

    /// An Opus track.
    pub fn opus(channels: u8) -> TrackSpec {
        TrackSpec {
            codec: Codec::Opus,
            channels,
            size: None,
        }
    }
}

/// Why a packet or the recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("no track {0}")]
    UnknownTrack(usize),
    #[error("a recording holds at most one VP8 or VP9 track and one Opus track")]
    Tracks,
    #[error("RTP: {0}")]
    Rtp(#[from] RtpError),
    #[error("payload: {0}")]
    Payload(#[from] DepacketizeError),
    #[error("WebM: {0}")]
    Webm(#[from] WebmError),
}

impl RecordError {
    /// True when the file can no longer be written (the sink failed); other errors concern one
    /// packet, which was counted and dropped.
    pub fn is_fatal(&self) -> bool {
        matches!(self, RecordError::Webm(_))
    }
}

/// What happened to one track's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackStats {
    /// Packets whose RTP header did not parse.
    pub malformed_rtp: u64,
    pub depacketizer: DepacketizerStats,
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub webm: WebmSummary,
    /// Per track, in the order given to [`Recorder::new`].
    pub tracks: Vec<TrackStats>,
}

/// Maps a track's RTP timestamps to ms on the recording's time line.
#[derive(Debug, Clone, Copy)]
struct TrackClock {
    /// Offset of the track's first packet from the recording's first packet (ms).
    offset_ms: u64,
    /// RTP timestamp of the track's first packet.
    anchor: u32,
    /// The last frame's timestamp and its value extended past 32-bit wrap-around.
    last: (u32, i64),
    rate: i64,
}

impl TrackClock {
    fn new(offset_ms: u64, anchor: u32, rate: u32) -> TrackClock {
        TrackClock {
            offset_ms,
            anchor,
            last: (anchor, i64::from(anchor)),
            rate: i64::from(rate),
        }
    }

    fn ms(&mut self, ts: u32) -> u64 {
        let ext = self.last.1 + i64::from(ts.wrapping_sub(self.last.0) as i32);
        self.last = (ts, ext);
        let since = (ext - i64::from(self.anchor)) * 1000 / self.rate;
        (self.offset_ms as i64 + since).max(0) as u64
    }
}

#[derive(Debug)]
struct Track {
    spec: TrackSpec,
    depack: Depacketizer,
    clock: Option<TrackClock>,
    malformed_rtp: u64,
}

/// Records up to one video and one audio track into a WebM file. Packets go in with
/// [`Recorder::handle_rtp`], time with [`Recorder::handle_timeout`]; [`Recorder::finish`]
/// completes the file.
#[derive(Debug)]
pub struct Recorder<W: Write + Seek> {
    muxer: WebmWriter<W>,
    tracks: Vec<Track>,
    interleaver: Interleaver,
    /// Arrival of the recording's first packet.
    start: Option<Instant>,
}

impl<W: Write + Seek> Recorder<W> {
    /// Starts a recording of these tracks into `sink` (the WebM header is written now). Track
    /// `i` is addressed as `i` in [`Recorder::handle_rtp`].
    pub fn new(sink: W, tracks: &[TrackSpec]) -> Result<Self, RecordError> {
        let videos = tracks
            .iter()
            .filter(|t| t.codec.kind() == MediaKind::Video)
            .count();
        if tracks.is_empty() || videos > 1 || tracks.len() - videos > 1 {
            return Err(RecordError::Tracks);
        }
        let mut configs = Vec::with_capacity(tracks.len());
        let mut states = Vec::with_capacity(tracks.len());
        for t in tracks {
            configs.push(match t.codec {
                Codec::Vp8 => TrackConfig::Video {
                    codec: VideoCodec::Vp8,
                    size: t.size,
                },
                Codec::Vp9 => TrackConfig::Video {
                    codec: VideoCodec::Vp9,
                    size: t.size,
                },
                Codec::Opus => TrackConfig::Opus {
                    channels: t.channels,
                },
                _ => return Err(RecordError::Tracks),
            });
            states.push(Track {
                spec: *t,
                depack: Depacketizer::new(t.codec, DepacketizerConfig::for_codec(t.codec))?,
                clock: None,
                malformed_rtp: 0,
            });
        }
        Ok(Recorder {
            muxer: WebmWriter::new(sink, &configs)?,
            interleaver: Interleaver::new(tracks.len(), INTERLEAVE_MS),
            tracks: states,
            start: None,
        })
    }

    /// Takes one RTP packet of `track` that arrived at `now`. Errors other than
    /// [`RecordError::is_fatal`] ones concern this packet only: it was counted and dropped.
    pub fn handle_rtp(
        &mut self,
        track: usize,
        now: Instant,
        packet: &[u8],
    ) -> Result<(), RecordError> {
        let t = self
            .tracks
            .get_mut(track)
            .ok_or(RecordError::UnknownTrack(track))?;
        let hdr = match RtpHeader::parse(packet) {
            Ok(h) => h,
            Err(e) => {
                t.malformed_rtp += 1;
                return Err(e.into());
            }
        };
        let start = *self.start.get_or_insert(now);
        if t.clock.is_none() {
            let offset = now.saturating_duration_since(start).as_millis() as u64;
            t.clock = Some(TrackClock::new(
                offset,
                hdr.timestamp,
                t.spec.codec.clock_rate(),
            ));
            self.interleaver.start(track, offset);
        }
        let pushed = t
            .depack
            .push(now, hdr.seq, hdr.timestamp, hdr.marker, hdr.payload(packet));
        self.pump(track)?;
        self.write_ready()?;
        pushed.map_err(RecordError::from)
    }

    /// Lets the depacketizers give up on packets whose wait is over, and writes what follows.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RecordError> {
        for i in 0..self.tracks.len() {
            self.tracks[i].depack.handle_timeout(now);
            self.pump(i)?;
        }
        self.write_ready()
    }

    /// When [`Recorder::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tracks
            .iter()
            .filter_map(|t| t.depack.poll_timeout())
            .min()
    }

    /// True while `track` (video) waits for a keyframe: the time to ask the publisher for one.
    pub fn needs_keyframe(&self, track: usize) -> bool {
        self.tracks
            .get(track)
            .is_some_and(|t| t.depack.needs_keyframe())
    }

    /// What happened to `track`'s packets so far.
    pub fn stats(&self, track: usize) -> Option<TrackStats> {
        self.tracks.get(track).map(Track::stats)
    }

    /// Bytes written to the sink so far.
    pub fn bytes_written(&self) -> u64 {
        self.muxer.bytes_written()
    }

    /// Ends the recording: what is complete is written, missing packets are given up on, and
    /// the file is finished. Hands back the sink.
    pub fn finish(mut self) -> Result<(W, RecordingSummary), RecordError> {
        for i in 0..self.tracks.len() {
            self.tracks[i].depack.flush();
            self.pump(i)?;
        }
        while let Some(p) = self.interleaver.pop_any() {
            self.write(p)?;
        }
        let tracks = self.tracks.iter().map(Track::stats).collect();
        let (sink, webm) = self.muxer.finish()?;
        Ok((sink, RecordingSummary { webm, tracks }))
    }

    /// Moves `track`'s reassembled frames onto the time line.
    fn pump(&mut self, track: usize) -> Result<(), RecordError> {
        let t = &mut self.tracks[track];
        while let Some(f) = t.depack.poll_frame() {
            // The clock is set by the track's first packet, before any frame.
            let Some(clock) = t.clock.as_mut() else {
                t.depack.recycle(f.data);
                continue;
            };
            let time_ms = clock.ms(f.rtp_timestamp);
            if f.keyframe && t.spec.codec.kind() == MediaKind::Video {
                let size = match t.spec.codec {
                    Codec::Vp8 => frame_header::vp8_keyframe_size(&f.data),
                    _ => frame_header::vp9_frame_size(&f.data),
                };
                if let Some((w, h)) = size
                    && self.muxer.video_size(track).is_none()
                {
                    self.muxer.set_video_size(track, w, h)?;
                }
            }
            self.interleaver.push(Pending {
                track,
                time_ms,
                keyframe: f.keyframe,
                data: f.data,
            });
        }
        Ok(())
    }

    fn write_ready(&mut self) -> Result<(), RecordError> {
        while let Some(p) = self.interleaver.pop() {
            self.write(p)?;
        }
        Ok(())
    }

    fn write(&mut self, p: Pending) -> Result<(), RecordError> {
        self.muxer
            .write_frame(p.track, p.time_ms, p.keyframe, &p.data)?;
        if let Some(t) = self.tracks.get_mut(p.track) {
            t.depack.recycle(p.data);
        }
        Ok(())
    }
}

impl Track {
    fn stats(&self) -> TrackStats {
        TrackStats {
            malformed_rtp: self.malformed_rtp,
            depacketizer: *self.depack.stats(),
        }
    }
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
