//! One part of a recording on disk: a WebM file (through [`super::recorder::Recorder`]) fed by
//! a participant recorder's packets ([`super::participant::RtpSink`]).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use sfu::{Codec, MediaKind};

use super::participant::RtpSink;
use super::recorder::{RecordError, Recorder, RecordingSummary, TrackSpec};

/// A track of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartTrack {
    pub kind: MediaKind,
    pub codec: Codec,
    pub clock_rate: u32,
    pub channels: u8,
}

/// Why a part could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("{path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("flushing the file: {0}")]
    Flush(std::io::Error),
}

/// What a finished part holds.
#[derive(Debug, Clone)]
pub struct PartSummary {
    pub bytes: u64,
    pub duration_ms: u64,
    pub recording: RecordingSummary,
}

/// A WebM file being written.
#[derive(Debug)]
pub struct PartSink {
    rec: Recorder<BufWriter<File>>,
    /// The first error that made the file unwritable; later packets are dropped.
    failed: Option<RecordError>,
    /// Packets dropped as malformed (they are counted by track in the summary, too).
    dropped: u64,
}

impl PartSink {
    /// Whether a codec can be recorded (WebM carries VP8, VP9 and Opus).
    pub fn supports(codec: Codec) -> bool {
        matches!(codec, Codec::Vp8 | Codec::Vp9 | Codec::Opus)
    }

    /// Creates the file at `path` for `tracks` (at most one video and one audio).
    pub fn create(path: &Path, tracks: &[PartTrack]) -> Result<Self, PartError> {
        let file = File::create(path).map_err(|source| PartError::Create {
            path: path.display().to_string(),
            source,
        })?;
        let specs: Vec<TrackSpec> = tracks
            .iter()
            .map(|t| match t.kind {
                MediaKind::Video => TrackSpec::video(t.codec),
                MediaKind::Audio => TrackSpec::opus(t.channels.max(1)),
            })
            .collect();
        let rec = Recorder::new(BufWriter::new(file), &specs)?;
        Ok(PartSink {
            rec,
            failed: None,
            dropped: 0,
        })
    }

    /// Finishes the file (what is complete is written, Duration and Cues with it).
    pub fn finish(self) -> Result<PartSummary, PartError> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        let (w, recording) = self.rec.finish()?;
        let file = w
            .into_inner()
            .map_err(|e| PartError::Flush(e.into_error()))?;
        file.sync_all().map_err(PartError::Flush)?;
        Ok(PartSummary {
            bytes: recording.webm.bytes,
            duration_ms: recording.webm.duration_ms,
            recording,
        })
    }

    fn check(&mut self, r: Result<(), RecordError>) {
        match r {
            Ok(()) => {}
            Err(e) if e.is_fatal() => {
                tracing::warn!(error = %e, "recorded file can no longer be written");
                self.failed = Some(e);
            }
            // One packet was counted and dropped.
            Err(_) => self.dropped += 1,
        }
    }
}

impl RtpSink for PartSink {
    fn on_rtp(&mut self, track: usize, now: Instant, packet: &[u8]) {
        if self.failed.is_none() {
            let r = self.rec.handle_rtp(track, now, packet);
            self.check(r);
        }
    }

    fn on_tick(&mut self, now: Instant) {
        if self.failed.is_none() && self.rec.poll_timeout().is_some_and(|t| t <= now) {
            let r = self.rec.handle_timeout(now);
            self.check(r);
        }
    }

    fn wants_keyframe(&self, track: usize) -> bool {
        self.failed.is_none() && self.rec.needs_keyframe(track)
    }
}
