//! WebM muxer: the Matroska subset of the WebM container guidelines (RFC 9559 elements, RFC 7845
//! §5.1 OpusHead) written to any `Write + Seek` sink. Element sizes, Duration, the SeekHead's
//! Cues entry and the video size are patched in place, so an unfinished file stays playable.

use std::io::{self, Seek, SeekFrom, Write};

use super::ebml::{self, id};

/// Longest a cluster spans, in ms: a new cluster starts at each video keyframe and at the latest
/// this long after the cluster's first block (well below the 32767 ms that a block's signed
/// 16-bit relative timestamp can reach).
pub const MAX_CLUSTER_MS: u64 = 5_000;

/// Opus pre-skip written in the OpusHead, in 48 kHz samples. A recording joins a live stream
/// whose encoder started long before, so no priming samples are there to skip.
pub const OPUS_PRE_SKIP: u16 = 0;

/// SeekPreRoll of an Opus track, in ns (the WebM guidelines ask for 80 ms).
pub const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

/// Bytes kept at the start of the segment for the SeekHead (rewritten at finish with the Cues'
/// position) and the Void after it.
const SEEK_REGION: usize = 128;
/// Bytes of the Duration element (2-byte ID, 1-byte size, 8-byte float), held by a Void until
/// finish.
const DURATION_LEN: usize = 11;
/// Bytes of a video size value, so that any VP8 or VP9 size can be patched in place.
const PIXEL_LEN: usize = 4;

/// Video codecs a WebM track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
}

/// What one track of the file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackConfig {
    /// A video track; the picture size when already known (else it is written as 0 and
    /// [`WebmWriter::set_video_size`] fills it in later).
    Video {
        codec: VideoCodec,
        size: Option<(u32, u32)>,
    },
    /// An Opus track at 48 kHz with 1 or 2 channels.
    Opus { channels: u8 },
}

impl TrackConfig {
    fn is_video(&self) -> bool {
        matches!(self, TrackConfig::Video { .. })
    }
}

/// Why the muxer could not go on.
#[derive(Debug, thiserror::Error)]
pub enum WebmError {
    #[error("writing the WebM file: {0}")]
    Io(#[from] io::Error),
    #[error("no track {0}")]
    UnknownTrack(usize),
    #[error("track {0} is not a video track")]
    NotVideo(usize),
    #[error("a WebM file holds 1 to 126 tracks, {0} given")]
    TrackCount(usize),
    #[error("Opus in WebM carries 1 or 2 channels here, {0} given")]
    Channels(u8),
    #[error("empty frame")]
    EmptyFrame,
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebmSummary {
    /// The Duration written: the last block's time plus its track's last frame interval, in ms.
    pub duration_ms: u64,
    /// Bytes of the whole file, from the EBML header to the end of the Cues.
    pub bytes: u64,
    pub clusters: u64,
    pub cues: u64,
    /// Frames written later than they were stamped, because an earlier-stamped frame of another
    /// track was already written after them.
    pub clamped_frames: u64,
    /// Per track, in the order given to [`WebmWriter::new`].
    pub tracks: Vec<TrackSummary>,
}

/// What one track of a finished file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackSummary {
    pub frames: u64,
    pub bytes: u64,
    /// Cue points on this track (clusters it opened with a keyframe).
    pub cues: u64,
    /// Time of the first and last block in ms (none without frames).
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
}

#[derive(Debug)]
struct TrackState {
    config: TrackConfig,
    /// Absolute offset of the TrackEntry and its length (to turn it into a Void when the track
    /// got no frame).
    entry_at: u64,
    entry_len: u64,
    /// Absolute offsets of the PixelWidth and PixelHeight values (video only).
    pixels_at: Option<(u64, u64)>,
    summary: TrackSummary,
    /// Interval between the last two frames, in ms.
    last_interval: u64,
}

#[derive(Debug)]
struct OpenCluster {
    /// Absolute offset of the cluster's 8-byte size.
    size_at: u64,
    timestamp: u64,
}

#[derive(Debug)]
struct Cue {
    time: u64,
    track: u64,
    /// Relative to the segment's data.
    cluster_position: u64,
}

/// Writes one WebM file. Frames go in through [`WebmWriter::write_frame`] in non-decreasing
/// time order across tracks (a frame stamped earlier than one already written is written at that
/// later time); [`WebmWriter::finish`] writes the Cues and patches sizes and Duration.
#[derive(Debug)]
pub struct WebmWriter<W: Write + Seek> {
    sink: W,
    /// Where the file starts in the sink.
    base: u64,
    /// Current end of the file (absolute).
    pos: u64,
    segment_size_at: u64,
    segment_data: u64,
    seek_region_at: u64,
    info_at: u64,
    tracks_at: u64,
    duration_at: u64,
    tracks: Vec<TrackState>,
    cluster: Option<OpenCluster>,
    clusters: u64,
    cues: Vec<Cue>,
    /// Time of the last block written, ms.
    last_ms: u64,
    video_written: bool,
    clamped: u64,
}

/// The OpusHead identification header (RFC 7845 §5.1) for mapping family 0.
pub fn opus_head(channels: u8) -> [u8; 19] {
    let mut h = [0u8; 19];
    h[..8].copy_from_slice(b"OpusHead");
    h[8] = 1;
    h[9] = channels;
    h[10..12].copy_from_slice(&OPUS_PRE_SKIP.to_le_bytes());
    h[12..16].copy_from_slice(&48_000u32.to_le_bytes());
    // Output gain 0, channel mapping family 0.
    h
}

impl<W: Write + Seek> WebmWriter<W> {
    /// Writes the EBML header, the segment start, SeekHead, Info and Tracks at the sink's
    /// current position. Track `i` of `tracks` gets track number `i + 1`.
    pub fn new(mut sink: W, tracks: &[TrackConfig]) -> Result<Self, WebmError> {
        if tracks.is_empty() || tracks.len() > 126 {
            return Err(WebmError::TrackCount(tracks.len()));
        }
        for t in tracks {
            if let TrackConfig::Opus { channels } = *t
                && !(1..=2).contains(&channels)
            {
                return Err(WebmError::Channels(channels));
            }
        }
        let base = sink.stream_position()?;
        let mut h = Vec::with_capacity(512);
        let e = ebml::start_master(&mut h, id::EBML);
        ebml::put_uint(&mut h, id::EBML_VERSION, 1);
        ebml::put_uint(&mut h, id::EBML_READ_VERSION, 1);
        ebml::put_uint(&mut h, id::EBML_MAX_ID_LENGTH, 4);
        ebml::put_uint(&mut h, id::EBML_MAX_SIZE_LENGTH, 8);
        ebml::put_bytes(&mut h, id::DOC_TYPE, b"webm");
        ebml::put_uint(&mut h, id::DOC_TYPE_VERSION, 4);
        ebml::put_uint(&mut h, id::DOC_TYPE_READ_VERSION, 2);
        ebml::end_master(&mut h, e);

        ebml::put_id(&mut h, id::SEGMENT);
        let segment_size_at = h.len();
        h.extend_from_slice(&ebml::UNKNOWN_SIZE);
        let segment_data = h.len();
        let seek_region_at = h.len();
        h.resize(h.len() + SEEK_REGION, 0);

        let info_at = h.len();
        let info = ebml::start_master(&mut h, id::INFO);
        ebml::put_uint(&mut h, id::TIMESTAMP_SCALE, 1_000_000);
        let duration_at = h.len();
        ebml::put_void(&mut h, DURATION_LEN);
        ebml::put_bytes(&mut h, id::MUXING_APP, b"ringcast");
        ebml::put_bytes(&mut h, id::WRITING_APP, b"ringcast");
        ebml::end_master(&mut h, info);

        let tracks_at = h.len();
        let all = ebml::start_master(&mut h, id::TRACKS);
        let abs = |o: usize| base + o as u64;
        let mut states = Vec::with_capacity(tracks.len());
        for (i, t) in tracks.iter().enumerate() {
            let number = i as u64 + 1;
            let entry_at = h.len();
            let te = ebml::start_master(&mut h, id::TRACK_ENTRY);
            ebml::put_uint(&mut h, id::TRACK_NUMBER, number);
            ebml::put_uint(&mut h, id::TRACK_UID, number);
            ebml::put_uint(&mut h, id::TRACK_TYPE, if t.is_video() { 1 } else { 2 });
            ebml::put_uint(&mut h, id::FLAG_LACING, 0);
            let mut pixels_at = None;
            match *t {
                TrackConfig::Video { codec, size } => {
                    let name: &[u8] = match codec {
                        VideoCodec::Vp8 => b"V_VP8",
                        VideoCodec::Vp9 => b"V_VP9",
                    };
                    ebml::put_bytes(&mut h, id::CODEC_ID, name);
                    let (w, hgt) = size.unwrap_or((0, 0));
                    let v = ebml::start_master(&mut h, id::VIDEO);
                    let w_at = ebml::put_uint_fixed(&mut h, id::PIXEL_WIDTH, w.into(), PIXEL_LEN);
                    let h_at =
                        ebml::put_uint_fixed(&mut h, id::PIXEL_HEIGHT, hgt.into(), PIXEL_LEN);
                    ebml::end_master(&mut h, v);
                    pixels_at = Some((abs(w_at), abs(h_at)));
                }
                TrackConfig::Opus { channels } => {
                    ebml::put_bytes(&mut h, id::CODEC_ID, b"A_OPUS");
                    ebml::put_bytes(&mut h, id::CODEC_PRIVATE, &opus_head(channels));
                    let delay_ns = u64::from(OPUS_PRE_SKIP) * 1_000_000_000 / 48_000;
                    ebml::put_uint(&mut h, id::CODEC_DELAY, delay_ns);
                    ebml::put_uint(&mut h, id::SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
                    let a = ebml::start_master(&mut h, id::AUDIO);
                    ebml::put_float(&mut h, id::SAMPLING_FREQUENCY, 48_000.0);
                    ebml::put_uint(&mut h, id::CHANNELS, channels.into());
                    ebml::end_master(&mut h, a);
                }
            }
            ebml::end_master(&mut h, te);
            states.push(TrackState {
                config: *t,
                entry_at: abs(entry_at),
                entry_len: (h.len() - entry_at) as u64,
                pixels_at,
                summary: TrackSummary::default(),
                last_interval: 0,
            });
        }
        ebml::end_master(&mut h, all);

        let seek = seek_region(&[
            (id::INFO, (info_at - segment_data) as u64),
            (id::TRACKS, (tracks_at - segment_data) as u64),
        ]);
        h[seek_region_at..seek_region_at + SEEK_REGION].copy_from_slice(&seek);
        sink.write_all(&h)?;
        Ok(WebmWriter {
            sink,
            base,
            pos: abs(h.len()),
            segment_size_at: abs(segment_size_at),
            segment_data: abs(segment_data),
            seek_region_at: abs(seek_region_at),
            info_at: abs(info_at),
            tracks_at: abs(tracks_at),
            duration_at: abs(duration_at),
            tracks: states,
            cluster: None,
            clusters: 0,
            cues: Vec::new(),
            last_ms: 0,
            video_written: false,
            clamped: 0,
        })
    }

    /// Sets the picture size of a video track (for instance from its first keyframe), in place
    /// in the header already written.
    pub fn set_video_size(
        &mut self,
        track: usize,
        width: u32,
        height: u32,
    ) -> Result<(), WebmError> {
        let t = self
            .tracks
            .get_mut(track)
            .ok_or(WebmError::UnknownTrack(track))?;
        let (Some((w_at, h_at)), TrackConfig::Video { size, .. }) = (t.pixels_at, &mut t.config)
        else {
            return Err(WebmError::NotVideo(track));
        };
        *size = Some((width, height));
        self.patch(w_at, &width.to_be_bytes())?;
        self.patch(h_at, &height.to_be_bytes())
    }

    /// The picture size of a video track as written in the header, if set.
    pub fn video_size(&self, track: usize) -> Option<(u32, u32)> {
        match self.tracks.get(track)?.config {
            TrackConfig::Video { size, .. } => size,
            TrackConfig::Opus { .. } => None,
        }
    }

    /// Bytes written so far (the open cluster included).
    pub fn bytes_written(&self) -> u64 {
        self.pos - self.base
    }

    /// Writes one frame of `track` at `time_ms` (from the recording's start) as a SimpleBlock.
    /// A video keyframe starts a new cluster (with a cue), as does a frame [`MAX_CLUSTER_MS`]
    /// or more after the cluster's start. Audio frames are all keyframes.
    pub fn write_frame(
        &mut self,
        track: usize,
        time_ms: u64,
        keyframe: bool,
        data: &[u8],
    ) -> Result<(), WebmError> {
        let video = self
            .tracks
            .get(track)
            .ok_or(WebmError::UnknownTrack(track))?
            .config
            .is_video();
        if data.is_empty() {
            return Err(WebmError::EmptyFrame);
        }
        // Blocks go out in time order, and each track's times strictly increase (players and
        // remuxers refuse two frames of one stream at the same time).
        let mut time = time_ms.max(self.last_ms);
        if let Some(prev) = self.tracks[track].summary.last_ms
            && time <= prev
        {
            time = prev + 1;
        }
        if time != time_ms {
            self.clamped += 1;
        }
        let key = keyframe || !video;
        let new_cluster = match &self.cluster {
            None => true,
            Some(c) => (video && key) || time - c.timestamp >= MAX_CLUSTER_MS,
        };
        if new_cluster {
            self.close_cluster()?;
            let cue = (video && key) || (!video && !self.video_written);
            self.open_cluster(time, cue.then_some(track as u64 + 1))?;
            self.tracks[track].summary.cues += u64::from(cue);
        }
        let timestamp = self.cluster.as_ref().map_or(time, |c| c.timestamp);
        // The cluster was opened at or before `time`, less than MAX_CLUSTER_MS earlier.
        let rel = (time - timestamp) as i16;
        let mut hdr = [0u8; 13];
        hdr[0] = 0xA3;
        let body = data.len() as u64 + 4;
        if body > ebml::MAX_SIZE {
            return Err(WebmError::Io(io::Error::other("frame too large for EBML")));
        }
        let sl = ebml::size_len(body);
        hdr[1..1 + sl].copy_from_slice(&ebml::size_fixed(body, sl)[..sl]);
        let mut n = 1 + sl;
        hdr[n] = 0x80 | (track as u8 + 1);
        hdr[n + 1..n + 3].copy_from_slice(&rel.to_be_bytes());
        hdr[n + 3] = if key { 0x80 } else { 0 };
        n += 4;
        self.sink.write_all(&hdr[..n])?;
        self.sink.write_all(data)?;
        self.pos += (n + data.len()) as u64;

        self.last_ms = time;
        self.video_written |= video;
        let t = &mut self.tracks[track];
        let s = &mut t.summary;
        if let Some(prev) = s.last_ms
            && time > prev
        {
            t.last_interval = time - prev;
        }
        s.frames += 1;
        s.bytes += data.len() as u64;
        s.first_ms.get_or_insert(time);
        s.last_ms = Some(time);
        Ok(())
    }

    fn open_cluster(&mut self, time: u64, cue_track: Option<u64>) -> Result<(), WebmError> {
        if let Some(track) = cue_track {
            self.cues.push(Cue {
                time,
                track,
                cluster_position: self.pos - self.segment_data,
            });
        }
        let mut h = Vec::with_capacity(24);
        ebml::put_id(&mut h, id::CLUSTER);
        let size_at = self.pos + h.len() as u64;
        h.extend_from_slice(&ebml::UNKNOWN_SIZE);
        ebml::put_uint(&mut h, id::TIMESTAMP, time);
        self.sink.write_all(&h)?;
        self.pos += h.len() as u64;
        self.cluster = Some(OpenCluster {
            size_at,
            timestamp: time,
        });
        self.clusters += 1;
        Ok(())
    }

    fn close_cluster(&mut self) -> Result<(), WebmError> {
        if let Some(c) = self.cluster.take() {
            let size = self.pos - c.size_at - 8;
            self.patch(c.size_at, &ebml::size_fixed(size, 8))?;
        }
        Ok(())
    }

    /// Overwrites bytes at `at` (absolute) and returns to the end of the file.
    fn patch(&mut self, at: u64, bytes: &[u8]) -> Result<(), WebmError> {
        self.sink.seek(SeekFrom::Start(at))?;
        self.sink.write_all(bytes)?;
        self.sink.seek(SeekFrom::Start(self.pos))?;
        Ok(())
    }

    /// Closes the last cluster, writes the Cues, patches the segment size, Duration and the
    /// SeekHead, turns the entries of tracks that got no frame into Void (unless no track got
    /// any), flushes and hands back the sink.
    pub fn finish(mut self) -> Result<(W, WebmSummary), WebmError> {
        self.close_cluster()?;
        let cues_at = if self.cues.is_empty() {
            None
        } else {
            let mut c = Vec::with_capacity(self.cues.len() * 24 + 12);
            let all = ebml::start_master(&mut c, id::CUES);
            for cue in &self.cues {
                let p = ebml::start_master(&mut c, id::CUE_POINT);
                ebml::put_uint(&mut c, id::CUE_TIME, cue.time);
                let tp = ebml::start_master(&mut c, id::CUE_TRACK_POSITIONS);
                ebml::put_uint(&mut c, id::CUE_TRACK, cue.track);
                ebml::put_uint(&mut c, id::CUE_CLUSTER_POSITION, cue.cluster_position);
                ebml::end_master(&mut c, tp);
                ebml::end_master(&mut c, p);
            }
            ebml::end_master(&mut c, all);
            let at = self.pos;
            self.sink.write_all(&c)?;
            self.pos += c.len() as u64;
            Some(at)
        };

        let segment_size = self.pos - self.segment_data;
        self.patch(self.segment_size_at, &ebml::size_fixed(segment_size, 8))?;

        let duration_ms = self
            .tracks
            .iter()
            .filter_map(|t| t.summary.last_ms.map(|l| l + t.last_interval))
            .max()
            .unwrap_or(0);
        let mut d = Vec::with_capacity(DURATION_LEN);
        ebml::put_float(&mut d, id::DURATION, duration_ms as f64);
        self.patch(self.duration_at, &d)?;

        let rel = |at: u64| at - self.segment_data;
        let mut entries = vec![
            (id::INFO, rel(self.info_at)),
            (id::TRACKS, rel(self.tracks_at)),
        ];
        if let Some(at) = cues_at {
            entries.push((id::CUES, rel(at)));
        }
        let seek = seek_region(&entries);
        self.patch(self.seek_region_at, &seek)?;

        if self.tracks.iter().any(|t| t.summary.frames > 0) {
            let empty: Vec<(u64, u64)> = self
                .tracks
                .iter()
                .filter(|t| t.summary.frames == 0)
                .map(|t| (t.entry_at, t.entry_len))
                .collect();
            for (at, len) in empty {
                // TrackEntry and Void both have 1-byte IDs; the entry's size takes 8 bytes.
                let mut v = [0u8; 9];
                v[0] = 0xEC;
                v[1..].copy_from_slice(&ebml::size_fixed(len - 9, 8));
                self.patch(at, &v)?;
            }
        }
        self.sink.flush()?;
        let summary = WebmSummary {
            duration_ms,
            bytes: self.pos - self.base,
            clusters: self.clusters,
            cues: self.cues.len() as u64,
            clamped_frames: self.clamped,
            tracks: self.tracks.iter().map(|t| t.summary).collect(),
        };
        Ok((self.sink, summary))
    }
}

/// A SeekHead with these (element ID, position) entries followed by a Void, exactly
/// [`SEEK_REGION`] bytes long.
fn seek_region(entries: &[(u32, u64)]) -> [u8; SEEK_REGION] {
    let mut b = Vec::with_capacity(SEEK_REGION);
    let sh = ebml::start_master(&mut b, id::SEEK_HEAD);
    for &(eid, pos) in entries {
        let s = ebml::start_master(&mut b, id::SEEK);
        ebml::put_bytes(&mut b, id::SEEK_ID, &eid.to_be_bytes());
        ebml::put_uint_fixed(&mut b, id::SEEK_POSITION, pos, 8);
        ebml::end_master(&mut b, s);
    }
    ebml::end_master(&mut b, sh);
    let rest = SEEK_REGION - b.len();
    ebml::put_void(&mut b, rest);
    let mut out = [0u8; SEEK_REGION];
    out.copy_from_slice(&b);
    out
}

#[cfg(test)]
#[path = "webm_tests.rs"]
mod tests;
