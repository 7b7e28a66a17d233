//! How media sessions and tracks end, from every direction: `DELETE`, the media plane (a
//! transport's ICE consent lost, DTLS failed or closed, a shard refusing it), sessions that never
//! connect a transport, the bus (`voice.session.ended` closes that user's sessions,
//! `stream.stopped` the stream owner's video sessions in that channel), and shutdown. Each
//! close publishes `media.track.removed` for its published tracks and `media.session.closed`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sfu::control::{CloseReason, Event};
use uuid::Uuid;

use super::MediaServer;
use super::payload::{MEDIA_SPEAKER_ACTIVE, SessionClosed, SpeakerActive, TrackEvent};
use super::router_caps::kind_name;
use super::session::{ClosedSession, MediaSession, SessionType, TransportState};
use super::store::{SessionRecord, TrackRecord};
use crate::events::payload::{StreamStopped, VoiceSessionEnded, now_rfc3339};
use crate::events::{BusError, subjects};

/// How often sessions without a connected transport are looked for.
const SWEEP: Duration = Duration::from_secs(1);

/// How long a closed session is remembered (for a late `DELETE`).
const REMEMBER_CLOSED: Duration = Duration::from_secs(600);

/// Longest shutdown spends closing sessions.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(3);

fn reason_name(r: &CloseReason) -> &'static str {
    match r {
        CloseReason::ConsentExpired => "consent_expired",
        CloseReason::ConnectTimeout => "connect_timeout",
        CloseReason::DtlsFailed(_) => "dtls_failed",
        CloseReason::DtlsClosed => "dtls_closed",
        CloseReason::Removed => "removed",
        CloseReason::Shutdown => "shutdown",
    }
}

impl MediaServer {
    fn record_of(&self, s: &MediaSession) -> SessionRecord {
        SessionRecord {
            session_id: s.id,
            kind: s.kind.name().into(),
            channel_id: s.channel_id,
            user_id: s.user_id.clone(),
            node_id: self.node_id.clone(),
            node_url: self.node_url.clone(),
            created_at: s.created_at.clone(),
        }
    }

    /// Takes a transport's place out of the registry (its shard's load).
    fn release(&self, s: &MediaSession) {
        if let Ok(mut reg) = self.app.registry.lock() {
            for t in [&s.send, &s.recv] {
                if let Some((_, cmds)) = reg.remove(t.shard_session) {
                    self.send(cmds);
                }
            }
        }
    }

    /// Closes a session: its shard sessions, its tracks (and their consumers elsewhere), its
    /// record; publishes the events. Returns the session as it was, or None when it was gone.
    pub(crate) async fn close_session(&self, id: Uuid, reason: &str) -> Option<MediaSession> {
        let (s, _elsewhere) = {
            let mut local = self.local.lock().ok()?;
            let (s, cmds, elsewhere) = local.remove_session(id)?;
            self.send(cmds);
            (s, elsewhere)
        };
        let duration = s.created.elapsed().as_secs();
        if let Ok(mut local) = self.local.lock() {
            local.closed.insert(
                id,
                ClosedSession {
                    user_id: s.user_id.clone(),
                    reason: reason.to_string(),
                    duration,
                    at: Instant::now(),
                },
            );
        }
        self.release(&s);
        if let Err(e) = self.store.remove_session(self.record_of(&s)).await {
            tracing::warn!(session = %id, error = %e, "media session left in the store");
        }
        for p in &s.producers {
            self.emit(
                subjects::MEDIA_TRACK_REMOVED,
                &TrackEvent {
                    session_id: s.id,
                    track_id: p.id,
                    kind: kind_name(p.kind()).into(),
                    channel_id: s.channel_id,
                    user_id: s.user_id.clone(),
                    reason: Some(reason.into()),
                    timestamp: now_rfc3339(),
                },
            )
            .await;
        }
        tracing::info!(session = %id, reason, duration, "media session closed");
        self.emit(
            subjects::MEDIA_SESSION_CLOSED,
            &SessionClosed {
                session_id: s.id,
                kind: s.kind.name().into(),
                channel_id: s.channel_id,
                user_id: s.user_id.clone(),
                reason: reason.into(),
                duration,
                node_id: self.node_id.clone(),
                timestamp: now_rfc3339(),
            },
        )
        .await;
        Some(s)
    }

    /// Unpublishes a track of a session (its consumers everywhere end with it).
    pub(crate) async fn unpublish(&self, session: Uuid, track: Uuid, reason: &str) {
        let removed = {
            let Ok(mut local) = self.local.lock() else {
                return;
            };
            let Some((p, cmds, _)) = local.remove_producer(session, track) else {
                return;
            };
            self.send(cmds);
            local
                .sessions
                .get(&session)
                .map(|s| (p, s.channel_id, s.user_id.clone()))
        };
        if let Some((p, channel_id, user_id)) = removed {
            self.track_removed(session, &p, channel_id, user_id, reason)
                .await;
        }
    }

    /// Forgets a removed producer in the store and publishes `media.track.removed`.
    async fn track_removed(
        &self,
        session: Uuid,
        p: &super::session::Producer,
        channel_id: Uuid,
        user_id: String,
        reason: &str,
    ) {
        let track = p.id;
        let kind = kind_name(p.kind()).to_string();
        let rec = TrackRecord {
            track_id: p.id,
            session_id: session,
            channel_id,
            kind: kind.clone(),
            node_id: self.node_id.clone(),
            node_url: self.node_url.clone(),
        };
        if let Err(e) = self.store.remove_track(rec).await {
            tracing::warn!(%track, error = %e, "track left in the store");
        }
        tracing::info!(%session, %track, reason, "track unpublished");
        self.emit(
            subjects::MEDIA_TRACK_REMOVED,
            &TrackEvent {
                session_id: session,
                track_id: p.id,
                kind,
                channel_id,
                user_id,
                reason: Some(reason.into()),
                timestamp: now_rfc3339(),
            },
        )
        .await;
    }

    /// `media.quality.degraded` / `media.quality.restored` for a session's receive transport,
    /// with the media session's uuid and its channel.
    fn on_quality(
        self: &Arc<Self>,
        id: sfu::SessionId,
        degraded: bool,
        allocated: sfu::Bitrate,
        wanted: sfu::Bitrate,
    ) {
        let Some((session, channel)) = self.local.lock().ok().and_then(|l| {
            let (session, _) = l.transport_of(id)?;
            Some((session, l.sessions.get(&session)?.channel_id))
        }) else {
            return;
        };
        let estimate = self.app.registry.lock().ok().and_then(|reg| {
            let r = reg.session(id)?;
            r.stats
                .as_ref()
                .and_then(|s| s.estimate)
                .or_else(|| r.bwe.map(|b| b.target))
                .map(|b| b.0)
        });
        let notice = crate::events::payload::QualityNotice {
            session_id: session.to_string(),
            stream: channel.to_string(),
            allocated_bps: allocated.0,
            wanted_bps: wanted.0,
            estimate_bps: estimate,
            timestamp: crate::events::payload::now_rfc3339(),
        };
        let subject = if degraded {
            crate::events::subjects::MEDIA_QUALITY_DEGRADED
        } else {
            crate::events::subjects::MEDIA_QUALITY_RESTORED
        };
        tracing::info!(subject, %session, %channel, allocated_bps = allocated.0, wanted_bps = wanted.0, "media session quality notice");
        let ms = Arc::clone(self);
        tokio::spawn(async move { ms.emit(subject, &notice).await });
    }

    /// Applies a media-plane event to the transports of this server. Call after
    /// [`crate::handle_event`] has updated the registry.
    pub fn on_media_event(self: &Arc<Self>, ev: &Event) {
        let (id, reason) = match ev {
            Event::SessionConnected { id, .. } => {
                if let Ok(mut local) = self.local.lock()
                    && let Some((sid, d)) = local.transport_of(*id)
                    && let Some(s) = local.sessions.get_mut(&sid)
                {
                    s.transport_mut(d).state = TransportState::Connected;
                    tracing::info!(session = %sid, direction = ?d, "transport connected");
                }
                return;
            }
            Event::SessionClosed { id, reason, .. } => (*id, reason_name(reason)),
            Event::CommandFailed { id: Some(id), .. } => (*id, "failed"),
            Event::CommandFailed {
                id: None, error, ..
            } => {
                tracing::debug!(%error, "a shard refused a command");
                return;
            }
            Event::LayerOrder { .. }
            | Event::ViewerEstimate { .. }
            | Event::ViewerStats { .. }
            | Event::LayerDemand { .. } => return,
            Event::QualityDegraded {
                id,
                degraded,
                allocated,
                wanted,
                ..
            } => return self.on_quality(*id, *degraded, *allocated, *wanted),
            Event::ActiveSpeaker { .. } => return self.on_active_speaker(ev),
        };
        // A transport ended that this server did not end: its tracks end with it, and the
        // session when it has no other transport running.
        let ended = self.local.lock().ok().and_then(|mut l| {
            let (session, d) = l.transport_of(id)?;
            let (cmds, producers, done) = l.end_transport(session, d)?;
            self.send(cmds);
            let s = l.sessions.get(&session)?;
            Some((session, d, producers, done, s.channel_id, s.user_id.clone()))
        });
        let Some((session, d, producers, done, channel_id, user_id)) = ended else {
            return;
        };
        tracing::info!(%session, direction = ?d, reason, "transport ended");
        let ms = Arc::clone(self);
        tokio::spawn(async move {
            for p in &producers {
                ms.track_removed(session, p, channel_id, user_id.clone(), reason)
                    .await;
            }
            if done {
                ms.close_session(session, reason).await;
            }
        });
    }

    /// A shard's active-speaker report: updates the channel's speaker and, when it changed,
    /// publishes `media.speaker.active`.
    fn on_active_speaker(self: &Arc<Self>, ev: &Event) {
        let Event::ActiveSpeaker {
            group,
            shard,
            track,
            level,
        } = *ev
        else {
            return;
        };
        let channel = super::session::channel_of(group);
        let payload = {
            let Ok(mut local) = self.local.lock() else {
                return;
            };
            let Some(change) = local.speakers.report(channel, shard, track, level) else {
                return;
            };
            let who = change.and_then(|(t, level)| {
                local
                    .producer_of_track(channel, t)
                    .map(|(s, p)| (s.id, s.user_id.clone(), p.id, level))
            });
            SpeakerActive {
                channel_id: channel,
                track_id: who.as_ref().map(|w| w.2),
                session_id: who.as_ref().map(|w| w.0),
                user_id: who.as_ref().map(|w| w.1.clone()),
                audio_level: who.as_ref().map(|w| w.3),
                node_id: self.node_id.clone(),
                timestamp: now_rfc3339(),
            }
        };
        tracing::debug!(%channel, track = ?payload.track_id, level = ?payload.audio_level, "active speaker");
        let ms = Arc::clone(self);
        tokio::spawn(async move {
            ms.emit(MEDIA_SPEAKER_ACTIVE, &payload).await;
        });
    }

    async fn on_bus_message(&self, subject: &str, payload: &[u8]) {
        let (sessions, reason) = match subject {
            subjects::VOICE_SESSION_ENDED => {
                let Ok(ev) = serde_json::from_slice::<VoiceSessionEnded>(payload) else {
                    tracing::warn!(subject, "ignoring a payload without user_id");
                    return;
                };
                let Ok(local) = self.local.lock() else { return };
                (
                    local.of_user(&ev.user_id, ev.channel_id),
                    "voice_session_ended",
                )
            }
            subjects::STREAM_STOPPED => {
                let Ok(ev) = serde_json::from_slice::<StreamStopped>(payload) else {
                    tracing::warn!(subject, "ignoring a payload without stream ids");
                    return;
                };
                let Ok(local) = self.local.lock() else { return };
                let video: Vec<Uuid> = local
                    .of_user(&ev.user_id, Some(ev.channel_id))
                    .into_iter()
                    .filter(|id| {
                        local
                            .sessions
                            .get(id)
                            .is_some_and(|s| s.kind == SessionType::Video)
                    })
                    .collect();
                (video, "stream_stopped")
            }
            _ => return,
        };
        for id in sessions {
            self.close_session(id, reason).await;
        }
    }

    /// Closes every session (reason `shutdown`), bounded to a few seconds.
    pub async fn shutdown(&self) {
        let ids: Vec<Uuid> = match self.local.lock() {
            Ok(l) => l.sessions.keys().copied().collect(),
            Err(_) => return,
        };
        let all = async {
            for id in ids {
                self.close_session(id, "shutdown").await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_LIMIT, all).await.is_err() {
            tracing::warn!("gave up closing media sessions at shutdown after {SHUTDOWN_LIMIT:?}");
        }
    }
}

/// Subscribes to the events the media server acts on and starts closing sessions that never
/// connect.
pub(super) async fn spawn_background(ms: &Arc<MediaServer>) -> Result<(), BusError> {
    for subject in [subjects::VOICE_SESSION_ENDED, subjects::STREAM_STOPPED] {
        let mut sub = ms.bus.subscribe(subject.to_string()).await?;
        let ms = Arc::clone(ms);
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                ms.on_bus_message(&m.subject, &m.payload).await;
            }
        });
    }
    let ms = Arc::clone(ms);
    tokio::spawn(async move {
        let timeout = Duration::from_secs(ms.cfg.session_connect_timeout.max(1));
        let mut tick = tokio::time::interval(SWEEP);
        loop {
            tick.tick().await;
            let idle: Vec<Uuid> = match ms.local.lock() {
                Ok(l) => l
                    .sessions
                    .values()
                    .filter(|s| !s.any_connected() && s.created.elapsed() > timeout)
                    .map(|s| s.id)
                    .collect(),
                Err(_) => return,
            };
            for id in idle {
                ms.close_session(id, "connect_timeout").await;
            }
            if let Ok(mut l) = ms.local.lock() {
                l.closed.retain(|_, c| c.at.elapsed() < REMEMBER_CLOSED);
            }
        }
    });
    Ok(())
}
