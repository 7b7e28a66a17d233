//! Channel recording (seed 002 "Recording"): the recordings of this node and their parts (the
//! HTTP endpoints are in `recording_api.rs`).
//!
//! A recording keeps one WebM file per participant and track set ("part"): each media session of
//! the channel that publishes gets a recorder (a process-local viewer of its first audio and
//! first video producer, see [`crate::recording::participant`]) on the shard of its send
//! transport. When the session's producers change, its part ends and a new one begins; when it
//! leaves, its part ends. Stopping the recording ends every part and uploads the files to the
//! recording storage (`RECORDING_STORAGE`: MinIO or any S3-compatible store, or a directory).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use sfu::control::{Command, QualityCap};
use sfu::dtls::DtlsCert;
use sfu::{Bitrate, MediaKind, SessionId, ShardId};
use uuid::Uuid;

use super::MediaServer;
use crate::events::payload::now_rfc3339;
use crate::problem::Problem;
use crate::recording::part::{PartSink, PartSummary, PartTrack};
use crate::recording::participant::{self, RecordedTrack, Recorder};
use crate::recording::storage::RecordingStorage;
use crate::session_spec;
use crate::stream_service::ApiError;

/// A producer newer than this is not recorded yet: a client that publishes audio and then video
/// gets one part with both.
const SETTLE: Duration = Duration::from_millis(1000);
/// How often the parts are matched to the channels' producers.
pub(super) const RECONCILE: Duration = Duration::from_millis(250);
/// A participant whose recorder ended on its own (its connection to the shard failed) is
/// recorded again after this long.
const RETRY: Duration = Duration::from_secs(5);
/// How long a presigned download URL is valid.
const URL_TTL: Duration = Duration::from_secs(3600);

/// What recording needs: where files go while recording, where they are stored, and the
/// recorders' DTLS certificate.
#[derive(Debug)]
pub struct RecordingEnv {
    pub storage: RecordingStorage,
    pub dir: PathBuf,
    pub cert: Arc<DtlsCert>,
}

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Recording,
    /// Stopped; the files are being stored.
    Stopping,
    /// Every file is in the storage.
    Stored,
    /// Stopped, but some file could not be stored (see the file's `error`); the local copy stays.
    Failed,
}

/// One finished file.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedFile {
    pub session_id: Uuid,
    pub user_id: String,
    /// The part's number within the recording.
    pub part: u32,
    /// `audio`, `video`, or both.
    pub tracks: Vec<String>,
    /// The object's key in the storage.
    pub key: String,
    pub size: u64,
    pub duration_ms: u64,
    /// Milliseconds from the recording's start to the part's first frame.
    pub offset_ms: u64,
    /// Whether the file is in the storage.
    pub stored: bool,
    /// A download URL (presigned, valid for an hour) once stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub path: PathBuf,
}

/// A part being recorded.
struct ActivePart {
    producers: Vec<Uuid>,
    user_id: String,
    part: u32,
    shard: ShardId,
    shard_session: SessionId,
    offset_ms: u64,
    kinds: Vec<String>,
    path: PathBuf,
    recorder: Recorder<PartSink>,
}

/// One channel recording.
struct ChannelRecording {
    id: Uuid,
    channel_id: Uuid,
    user_id: String,
    format: String,
    audio_bitrate: u32,
    video_bitrate: u32,
    started: Instant,
    started_at: String,
    stopped_at: Option<String>,
    duration_ms: Option<u64>,
    status: Status,
    active: HashMap<Uuid, ActivePart>,
    files: Vec<RecordedFile>,
    next_part: u32,
    /// Participants not to record again before then (their recorder failed).
    retry: HashMap<Uuid, Instant>,
}

/// The recordings of this node.
#[derive(Default)]
pub struct Recordings {
    by_channel: HashMap<Uuid, Uuid>,
    all: HashMap<Uuid, ChannelRecording>,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("recording", &self.by_channel.len())
            .field("known", &self.all.len())
            .finish()
    }
}

/// The JSON of a recording.
#[derive(Serialize)]
struct RecordingBody<'a> {
    recording_id: Uuid,
    channel_id: Uuid,
    status: Status,
    format: &'a str,
    audio_bitrate: u32,
    video_bitrate: u32,
    started_by: &'a str,
    started_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    /// Participants being recorded now.
    recording_sessions: Vec<Uuid>,
    files: &'a [RecordedFile],
}

impl ChannelRecording {
    fn body(&self) -> RecordingBody<'_> {
        let mut sessions: Vec<Uuid> = self.active.keys().copied().collect();
        sessions.sort();
        RecordingBody {
            recording_id: self.id,
            channel_id: self.channel_id,
            status: self.status,
            format: &self.format,
            audio_bitrate: self.audio_bitrate,
            video_bitrate: self.video_bitrate,
            started_by: &self.user_id,
            started_at: &self.started_at,
            stopped_at: self.stopped_at.as_deref(),
            duration_ms: self.duration_ms,
            recording_sessions: sessions,
            files: &self.files,
        }
    }
}

impl MediaServer {
    pub(super) fn recording_env(&self) -> Result<&RecordingEnv, ApiError> {
        self.recording.as_ref().ok_or_else(|| {
            Problem::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "recording is disabled on this server: set ENABLE_RECORDING=true (and RECORDING_STORAGE)",
            )
            .into()
        })
    }

    /// Registers a new recording of `channel`; `409` while one runs there.
    pub(super) fn begin_recording(
        &self,
        channel: Uuid,
        user: &str,
        audio_bitrate: u32,
        video_bitrate: u32,
    ) -> Result<Uuid, ApiError> {
        let id = Uuid::new_v4();
        let mut recs = self.recordings()?;
        if let Some(other) = recs.by_channel.get(&channel) {
            return Err(ApiError::from(Problem::conflict(format!(
                "channel {channel} is already being recorded (recording {other}): stop it first"
            )))
            .with("recording_id", serde_json::json!(other)));
        }
        recs.by_channel.insert(channel, id);
        recs.all.insert(
            id,
            ChannelRecording {
                id,
                channel_id: channel,
                user_id: user.to_string(),
                format: "webm".into(),
                audio_bitrate,
                video_bitrate,
                started: Instant::now(),
                started_at: now_rfc3339(),
                stopped_at: None,
                duration_ms: None,
                status: Status::Recording,
                active: HashMap::new(),
                files: Vec::new(),
                next_part: 0,
                retry: HashMap::new(),
            },
        );
        Ok(id)
    }

    /// The running recording of `channel`, if any.
    pub(super) fn recording_of(&self, channel: Uuid) -> Result<Option<Uuid>, ApiError> {
        Ok(self.recordings()?.by_channel.get(&channel).copied())
    }

    /// The channel's recordings on this node, newest first.
    pub(super) fn recordings_of(&self, channel: Uuid) -> Result<Vec<Uuid>, ApiError> {
        let mut ids: Vec<(Instant, Uuid)> = self
            .recordings()?
            .all
            .values()
            .filter(|r| r.channel_id == channel)
            .map(|r| (r.started, r.id))
            .collect();
        ids.sort_by_key(|r| std::cmp::Reverse(r.0));
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    fn recordings(&self) -> Result<std::sync::MutexGuard<'_, Recordings>, ApiError> {
        self.recordings
            .lock()
            .map_err(|_| Problem::internal("recordings lock poisoned").into())
    }

    /// Matches the parts of every running recording to its channel's producers: starts a part
    /// for a publishing session without one, ends the part of a session that left or whose
    /// producers changed (and starts its next). Parts are stopped off the async runtime.
    pub(super) async fn reconcile_recordings(self: &Arc<Self>) {
        let Some(env) = self.recording.as_ref() else {
            return;
        };
        // One at a time, and never beside a stop: the parts a reconciliation ends are in its
        // hands until it files them.
        let _turn = self.recording_turn.lock().await;
        let channels: Vec<(Uuid, Uuid)> = match self.recordings.lock() {
            Ok(r) => r.by_channel.iter().map(|(c, r)| (*c, *r)).collect(),
            Err(_) => return,
        };
        for (channel, rec_id) in channels {
            let wanted = self.recorded_tracks(channel);
            let mut ended = Vec::new();
            let mut starts = Vec::new();
            if let Ok(mut recs) = self.recordings.lock()
                && let Some(rec) = recs.all.get_mut(&rec_id)
            {
                let gone: Vec<Uuid> = rec
                    .active
                    .iter()
                    .filter(|(s, p)| {
                        wanted
                            .get(s)
                            .is_none_or(|w| w.producers != p.producers || p.recorder.is_finished())
                    })
                    .map(|(s, _)| *s)
                    .collect();
                for s in gone {
                    if let Some(p) = rec.active.remove(&s) {
                        if p.recorder.is_finished() {
                            rec.retry.insert(s, Instant::now() + RETRY);
                        }
                        ended.push((s, p));
                    }
                }
                rec.retry.retain(|_, t| *t > Instant::now());
                for (s, w) in &wanted {
                    if !rec.active.contains_key(s) && w.settled && !rec.retry.contains_key(s) {
                        starts.push((*s, w.clone()));
                    }
                }
            }
            if !ended.is_empty() {
                let files = self.end_parts(rec_id, channel, ended).await;
                if let Ok(mut recs) = self.recordings.lock()
                    && let Some(rec) = recs.all.get_mut(&rec_id)
                {
                    rec.files.extend(files);
                }
            }
            for (session, w) in starts {
                let started = self.start_part(env, rec_id, session, &w);
                if let Err(e) = started {
                    tracing::warn!(recording = %rec_id, %session, error = %e, "participant not recorded");
                }
            }
        }
    }

    /// Per publishing session of the channel: its first audio and first video producer.
    fn recorded_tracks(&self, channel: Uuid) -> HashMap<Uuid, Wanted> {
        let mut out = HashMap::new();
        let Ok(local) = self.local.lock() else {
            return out;
        };
        for s in local.sessions.values().filter(|s| s.channel_id == channel) {
            if !s.send.is_running() {
                continue;
            }
            let mut w = Wanted {
                user_id: s.user_id.clone(),
                shard: s.send.shard,
                producers: Vec::new(),
                tracks: Vec::new(),
                settled: true,
            };
            for kind in [MediaKind::Audio, MediaKind::Video] {
                let Some(p) = s
                    .producers
                    .iter()
                    .filter(|p| p.kind() == kind)
                    .min_by_key(|p| p.created)
                else {
                    continue;
                };
                let Some(codec) = p
                    .produced
                    .spec
                    .codecs
                    .iter()
                    .find(|c| c.codec == p.produced.codec)
                else {
                    continue;
                };
                if !PartSink::supports(codec.codec) {
                    continue;
                }
                w.settled &= p.created.elapsed() >= SETTLE;
                w.producers.push(p.id);
                w.tracks.push(RecordedTrack {
                    stream: p.produced.spec.stream,
                    kind,
                    codec: codec.clone(),
                });
            }
            if !w.producers.is_empty() {
                out.insert(s.id, w);
            }
        }
        out
    }

    fn start_part(
        &self,
        env: &RecordingEnv,
        rec_id: Uuid,
        session: Uuid,
        w: &Wanted,
    ) -> Result<(), String> {
        let media = &self.app.media;
        let server = media
            .local_addr(w.shard)
            .ok_or_else(|| format!("no shard {}", w.shard.0))?;
        let (part, video_bitrate, offset_ms) = {
            let mut recs = self.recordings.lock().map_err(|_| "lock poisoned")?;
            let rec = recs.all.get_mut(&rec_id).ok_or("recording gone")?;
            rec.next_part += 1;
            (
                rec.next_part,
                rec.video_bitrate,
                rec.started.elapsed().as_millis() as u64,
            )
        };
        let dir = env.dir.join(rec_id.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{session}-{part}.webm"));
        let kinds: Vec<PartTrack> = w
            .tracks
            .iter()
            .map(|t| PartTrack {
                kind: t.kind,
                codec: t.codec.codec,
                clock_rate: t.codec.clock_rate,
                channels: t.codec.channels,
            })
            .collect();
        let sink = PartSink::create(&path, &kinds).map_err(|e| e.to_string())?;
        let id = SessionId(session_spec::random_id());
        let plan = participant::plan(
            id,
            server,
            media.fingerprint.clone(),
            Arc::clone(&env.cert),
            &w.tracks,
        );
        media.send(w.shard, Command::AddSession(Box::new(plan.spec.clone())));
        media.send(
            w.shard,
            Command::SetQuality {
                session: id,
                cap: QualityCap {
                    max_video: Some(Bitrate(u64::from(video_bitrate))),
                    max_height: None,
                },
            },
        );
        let recorder = match Recorder::spawn(plan, sink, format!("rec-{part}")) {
            Ok(r) => r,
            Err(e) => {
                media.send(w.shard, Command::RemoveSession(id));
                return Err(e.to_string());
            }
        };
        let names = w
            .tracks
            .iter()
            .map(|t| match t.kind {
                MediaKind::Audio => "audio".to_string(),
                MediaKind::Video => "video".to_string(),
            })
            .collect();
        tracing::info!(recording = %rec_id, %session, part, path = %path.display(), "recording a participant");
        let mut recs = self.recordings.lock().map_err(|_| "lock poisoned")?;
        let Some(rec) = recs
            .all
            .get_mut(&rec_id)
            .filter(|r| r.status == Status::Recording)
        else {
            // Stopped meanwhile: this part ends at once.
            drop(recs);
            let (sink, _, _) = recorder.stop();
            media.send(w.shard, Command::RemoveSession(id));
            let _ = sink.finish();
            return Ok(());
        };
        rec.active.insert(
            session,
            ActivePart {
                producers: w.producers.clone(),
                user_id: w.user_id.clone(),
                part,
                shard: w.shard,
                shard_session: id,
                offset_ms,
                kinds: names,
                path,
                recorder,
            },
        );
        Ok(())
    }

    /// Stops parts (their threads, their shard sessions) and finishes their files.
    async fn end_parts(
        self: &Arc<Self>,
        rec_id: Uuid,
        channel: Uuid,
        parts: Vec<(Uuid, ActivePart)>,
    ) -> Vec<RecordedFile> {
        let ms = Arc::clone(self);
        let done = tokio::task::spawn_blocking(move || {
            parts
                .into_iter()
                .filter_map(|(session, p)| {
                    let (sink, stats, err) = p.recorder.stop();
                    ms.app.media.send(p.shard, Command::RemoveSession(p.shard_session));
                    if let Some(e) = &err {
                        tracing::warn!(recording = %rec_id, %session, error = %e, "recorder ended early");
                    }
                    let key = format!("{channel}/{rec_id}/{session}-{}.webm", p.part);
                    let mut file = RecordedFile {
                        session_id: session,
                        user_id: p.user_id,
                        part: p.part,
                        tracks: p.kinds,
                        key,
                        size: 0,
                        duration_ms: 0,
                        offset_ms: p.offset_ms,
                        stored: false,
                        url: None,
                        error: None,
                        path: p.path,
                    };
                    let mut clamped = 0;
                    match sink.finish() {
                        Ok(PartSummary {
                            bytes,
                            duration_ms,
                            recording,
                        }) => {
                            if recording.webm.tracks.iter().all(|t| t.frames == 0) {
                                // Nothing arrived (the recorder never connected, or the
                                // participant left at once): no file.
                                tracing::info!(recording = %rec_id, %session, part = file.part, packets = stats.packets, "participant part had no frames: dropped");
                                let _ = std::fs::remove_file(&file.path);
                                return None;
                            }
                            file.size = bytes;
                            file.duration_ms = duration_ms;
                            clamped = recording.webm.clamped_frames;
                        }
                        Err(e) => file.error = Some(format!("writing the file: {e}")),
                    }
                    tracing::info!(recording = %rec_id, %session, part = file.part, packets = stats.packets, keyframe_requests = stats.keyframe_requests, size = file.size, duration_ms = file.duration_ms, clamped, "participant part finished");
                    Some(file)
                })
                .collect::<Vec<_>>()
        })
        .await;
        done.unwrap_or_else(|e| {
            tracing::error!(error = %e, "finishing recorded parts failed");
            Vec::new()
        })
    }

    /// Ends a recording: every part, then stores the files. The recording stays known (for
    /// `GET /recordings/{id}`) with its files.
    pub(super) async fn stop_recording(self: &Arc<Self>, rec_id: Uuid) -> Result<(), ApiError> {
        let env = self.recording_env()?;
        let _turn = self.recording_turn.lock().await;
        let parts = {
            let mut recs = self.recordings()?;
            let rec = recs
                .all
                .get_mut(&rec_id)
                .ok_or_else(|| Problem::not_found(format!("no recording {rec_id}")))?;
            rec.status = Status::Stopping;
            rec.stopped_at = Some(now_rfc3339());
            rec.duration_ms = Some(rec.started.elapsed().as_millis() as u64);
            let channel = rec.channel_id;
            let parts: Vec<(Uuid, ActivePart)> = rec.active.drain().collect();
            recs.by_channel.remove(&channel);
            (channel, parts)
        };
        let (channel, parts) = parts;
        let files = self.end_parts(rec_id, channel, parts).await;
        let mut pending = {
            let mut recs = self.recordings()?;
            let rec = recs
                .all
                .get_mut(&rec_id)
                .ok_or_else(|| Problem::internal("recording vanished"))?;
            rec.files.extend(files);
            rec.files.clone()
        };
        if let Err(e) = env.storage.ensure_bucket().await {
            tracing::warn!(error = %e, "recording storage unavailable");
        }
        for f in pending
            .iter_mut()
            .filter(|f| !f.stored && (f.error.is_none() || f.size > 0))
        {
            match env.storage.put_file(&f.key, &f.path).await {
                Ok(_) => {
                    f.stored = true;
                    f.error = None;
                    let _ = tokio::fs::remove_file(&f.path).await;
                }
                Err(e) => {
                    tracing::warn!(recording = %rec_id, key = %f.key, error = %e, "recorded file not stored");
                    f.error = Some(format!("storing the file: {e}"));
                }
            }
        }
        let mut recs = self.recordings()?;
        if let Some(rec) = recs.all.get_mut(&rec_id) {
            rec.status = if pending.iter().all(|f| f.stored) {
                Status::Stored
            } else {
                Status::Failed
            };
            rec.files = pending;
            tracing::info!(recording = %rec_id, channel = %rec.channel_id, status = ?rec.status, files = rec.files.len(), "recording stopped");
        }
        Ok(())
    }

    /// A recording's JSON, with fresh download URLs for its stored files.
    pub(super) fn recording_json(&self, rec_id: Uuid) -> Result<serde_json::Value, ApiError> {
        let env = self.recording_env()?;
        let recs = self.recordings()?;
        let rec = recs
            .all
            .get(&rec_id)
            .ok_or_else(|| Problem::not_found(format!("no recording {rec_id}")))?;
        let mut v =
            serde_json::to_value(rec.body()).map_err(|e| Problem::internal(e.to_string()))?;
        if let Some(files) = v.get_mut("files").and_then(|f| f.as_array_mut()) {
            for (f, src) in files.iter_mut().zip(&rec.files) {
                if src.stored
                    && let Ok(url) = env.storage.presigned_get(&src.key, URL_TTL)
                {
                    f["url"] = serde_json::Value::String(url);
                }
            }
        }
        Ok(v)
    }

    /// Ends every recording (at shutdown): files are finished so that they play, and stored
    /// when the storage answers.
    pub async fn stop_recordings(self: &Arc<Self>) {
        let ids: Vec<Uuid> = match self.recordings.lock() {
            Ok(r) => r.by_channel.values().copied().collect(),
            Err(_) => return,
        };
        for id in ids {
            let _ = self.stop_recording(id).await;
        }
    }
}

/// What a publishing session should have recorded.
#[derive(Debug, Clone)]
struct Wanted {
    user_id: String,
    shard: ShardId,
    producers: Vec<Uuid>,
    tracks: Vec<RecordedTrack>,
    /// Every producer is older than [`SETTLE`].
    settled: bool,
}

/// Keeps the parts of running recordings in step with their channels.
pub(super) fn spawn_reconcile(ms: &Arc<MediaServer>) {
    if ms.recording.is_none() {
        return;
    }
    let ms = Arc::clone(ms);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECONCILE);
        loop {
            tick.tick().await;
            ms.reconcile_recordings().await;
        }
    });
}

/// The recorder's DTLS certificate and files' directory; the storage is checked at start.
pub(super) fn env_from_config(
    cfg: &super::MediaServerConfig,
    data_dir: &std::path::Path,
) -> Result<Option<RecordingEnv>, String> {
    if !cfg.enable_recording {
        return Ok(None);
    }
    // Without RECORDING_STORAGE, recordings stay on this machine (the embedded default, as
    // for every other backend): DATA_DIR/recordings.
    let storage = match cfg
        .recording_storage
        .as_deref()
        .filter(|v| !v.trim().is_empty())
    {
        Some(value) => RecordingStorage::from_env(value, &|k| std::env::var(k).ok())
            .map_err(|e| format!("RECORDING_STORAGE: {e}"))?,
        None => {
            let dir = std::path::absolute(data_dir.join("recordings"))
                .map_err(|e| format!("DATA_DIR/recordings: {e}"))?;
            let url = reqwest::Url::from_directory_path(&dir).map_err(|()| {
                format!(
                    "DATA_DIR/recordings: {} is not a directory path",
                    dir.display()
                )
            })?;
            RecordingStorage::from_env(url.as_str(), &|_| None)
                .map_err(|e| format!("DATA_DIR/recordings: {e}"))?
        }
    };
    let cert = DtlsCert::generate().map_err(|e| format!("recorder certificate: {e}"))?;
    Ok(Some(RecordingEnv {
        storage,
        dir: data_dir.join("recording-parts"),
        cert: Arc::new(cert),
    }))
}
