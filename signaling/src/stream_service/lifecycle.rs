//! How streams and their sessions end, from every direction: the media plane's session events
//! (connected, closed by consent or connect timeout, DTLS failure), API calls, viewers whose
//! answer never came, and bus events (`voice.session.ended`, `channel.deleted`, and
//! `stream.stopped` of a stream this node serves but another node stopped).

use std::sync::Arc;
use std::time::Duration;

use sfu::SessionId;
use sfu::control::{CloseReason, Command, Event};
use uuid::Uuid;

use super::{SessionRole, SessionState, StreamService};
use crate::events::payload::{
    self, ChannelDeleted, QualityChanged, QualityNotice, StreamStopped, ViewerEvent,
    VoiceSessionEnded,
};
use crate::events::{BusError, subjects};
use crate::store::{StoreError, StreamRecord};

/// How often offers without an answer are looked for.
const EXPIRY_TICK: Duration = Duration::from_secs(1);

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

impl StreamService {
    /// Applies a media-plane event. Call after [`crate::handle_event`] has updated the registry.
    pub fn on_media_event(self: &Arc<Self>, ev: &Event) {
        match ev {
            Event::SessionConnected { id, .. } => {
                let joined = {
                    let Ok(mut local) = self.local.lock() else {
                        return;
                    };
                    match local.sessions.get_mut(id) {
                        Some(s) => match &mut s.state {
                            SessionState::Running { connected, .. } if !*connected => {
                                *connected = true;
                                (s.role == SessionRole::Viewer).then(|| s.clone())
                            }
                            _ => None,
                        },
                        None => None,
                    }
                };
                if let Some(s) = joined {
                    let svc = Arc::clone(self);
                    tokio::spawn(async move {
                        let count = svc.store.viewer_count(s.stream_id).await.unwrap_or(0);
                        tracing::info!(stream = %s.stream_id, session = %s.uuid, viewers = count, "viewer joined");
                        svc.emit(
                            subjects::STREAM_VIEWER_JOINED,
                            &ViewerEvent {
                                stream_id: s.stream_id,
                                channel_id: s.channel_id,
                                session_id: s.uuid,
                                user_id: s.user_id.clone(),
                                viewer_count: count,
                                reason: None,
                                timestamp: payload::now_rfc3339(),
                            },
                        )
                        .await;
                    });
                }
            }
            Event::SessionClosed { id, reason, .. } => {
                self.spawn_closed(*id, reason_name(reason));
            }
            Event::CommandFailed { id: Some(id), .. } => self.spawn_closed(*id, "failed"),
            Event::CommandFailed { id: None, .. } => {}
            // Layer order and estimates are media-plane bookkeeping (the registry keeps them);
            // the stream service has nothing to record.
            Event::LayerOrder { .. } | Event::ViewerEstimate { .. } => {}
            Event::QualityDegraded {
                id,
                degraded,
                allocated,
                wanted,
                ..
            } => self.spawn_quality_notice(*id, *degraded, *allocated, *wanted),
            // Allocation reports and layer demand are kept by the registry.
            Event::ViewerStats { .. } | Event::LayerDemand { .. } | Event::ActiveSpeaker { .. } => {
            }
        }
    }

    /// Publishes `media.quality.degraded` or `media.quality.restored` for any viewer session of
    /// this process: stream-service viewers by their uuids, WHEP viewers by session id and
    /// stream name.
    fn spawn_quality_notice(
        self: &Arc<Self>,
        id: SessionId,
        degraded: bool,
        allocated: sfu::Bitrate,
        wanted: sfu::Bitrate,
    ) {
        let local = self.local.lock().ok().and_then(|l| {
            l.sessions
                .get(&id)
                .map(|s| (s.uuid.to_string(), s.stream_id.to_string()))
        });
        let Ok(reg) = self.app.registry.lock() else {
            return;
        };
        let rec = reg.session(id);
        if local.is_none()
            && rec.is_some_and(|r| crate::media_server::is_registry_stream(&r.stream))
        {
            // A media server transport: the media server publishes its notice, with its ids.
            return;
        }
        let Some((session_id, stream)) =
            local.or_else(|| rec.map(|r| (id.to_string(), r.stream.clone())))
        else {
            return;
        };
        let notice = QualityNotice {
            session_id,
            stream,
            allocated_bps: allocated.0,
            wanted_bps: wanted.0,
            estimate_bps: rec
                .and_then(|r| r.stats.as_ref())
                .and_then(|s| s.estimate)
                .or_else(|| rec.and_then(|r| r.bwe.map(|b| b.target)))
                .map(|b| b.0),
            timestamp: payload::now_rfc3339(),
        };
        drop(reg);
        let subject = if degraded {
            subjects::MEDIA_QUALITY_DEGRADED
        } else {
            subjects::MEDIA_QUALITY_RESTORED
        };
        tracing::info!(subject, session = %notice.session_id, stream = %notice.stream, allocated_bps = notice.allocated_bps, wanted_bps = notice.wanted_bps, "viewer quality notice");
        let svc = Arc::clone(self);
        tokio::spawn(async move { svc.emit(subject, &notice).await });
    }

    fn spawn_closed(self: &Arc<Self>, id: SessionId, reason: &'static str) {
        let role = self
            .local
            .lock()
            .ok()
            .and_then(|l| l.sessions.get(&id).map(|s| (s.role, s.stream_id)));
        let Some((role, stream)) = role else {
            return;
        };
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            match role {
                SessionRole::Viewer => svc.end_viewer(id, reason, true).await,
                SessionRole::Sharer => {
                    tracing::info!(%stream, reason, "sharer's media session closed: stopping the stream");
                    if let Err(e) = svc.stop_stream(stream, "publisher_left").await {
                        tracing::error!(%stream, error = %e, "cannot stop the stream in the store");
                    }
                }
            }
        });
    }

    /// Takes a session out of the registry (and off its shard when it runs there).
    fn release(&self, id: SessionId, running: bool) {
        let Ok(mut reg) = self.app.registry.lock() else {
            return;
        };
        if let Some((rec, commands)) = reg.remove(id) {
            if running {
                self.app.media.send(rec.shard, Command::RemoveSession(id));
            }
            for (to, cmd) in commands {
                self.app.media.send(to, cmd);
            }
        }
    }

    /// Ends a viewer session: off the shard, out of the store; `stream.viewer.left` when it had
    /// joined (`emit_left`).
    pub(crate) async fn end_viewer(&self, id: SessionId, reason: &str, emit_left: bool) {
        let Some(s) = self.local.lock().ok().and_then(|mut l| l.remove(id)) else {
            return;
        };
        let joined = match s.state {
            SessionState::Offered { .. } => {
                self.release(id, false);
                false
            }
            SessionState::Running { connected, .. } => {
                self.release(id, true);
                connected
            }
        };
        let count = match self.store.remove_viewer(s.stream_id, s.uuid).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(stream = %s.stream_id, session = %s.uuid, error = %e, "viewer not removed from the store");
                0
            }
        };
        tracing::info!(stream = %s.stream_id, session = %s.uuid, reason, joined, "viewer left");
        if joined && emit_left {
            self.emit(
                subjects::STREAM_VIEWER_LEFT,
                &ViewerEvent {
                    stream_id: s.stream_id,
                    channel_id: s.channel_id,
                    session_id: s.uuid,
                    user_id: s.user_id.clone(),
                    viewer_count: count,
                    reason: Some(reason.to_string()),
                    timestamp: payload::now_rfc3339(),
                },
            )
            .await;
        }
    }

    /// Ends every local session of a stream; joined viewers get `stream.viewer.left`.
    async fn teardown_local(&self, stream: Uuid) {
        let sessions: Vec<_> = match self.local.lock() {
            Ok(mut l) => {
                l.owned.remove(&stream);
                l.caps.remove(&stream);
                l.of_stream(stream)
                    .into_iter()
                    .filter_map(|id| l.remove(id).map(|s| (id, s)))
                    .collect()
            }
            Err(_) => return,
        };
        for (id, s) in sessions {
            let (running, connected) = match s.state {
                SessionState::Offered { .. } => (false, false),
                SessionState::Running { connected, .. } => (true, connected),
            };
            self.release(id, running);
            if s.role == SessionRole::Viewer && connected {
                self.emit(
                    subjects::STREAM_VIEWER_LEFT,
                    &ViewerEvent {
                        stream_id: s.stream_id,
                        channel_id: s.channel_id,
                        session_id: s.uuid,
                        user_id: s.user_id.clone(),
                        viewer_count: 0,
                        reason: Some("stream_stopped".into()),
                        timestamp: payload::now_rfc3339(),
                    },
                )
                .await;
            }
        }
    }

    /// Stops a stream: out of the store, its media sessions closed, `stream.stopped` published.
    /// Returns the record when this call removed it.
    pub(crate) async fn stop_stream(
        &self,
        stream: Uuid,
        reason: &str,
    ) -> Result<Option<StreamRecord>, StoreError> {
        let rec = self.store.remove_stream(stream).await?;
        self.teardown_local(stream).await;
        if let Some(rec) = &rec {
            tracing::info!(%stream, reason, "stream stopped");
            self.emit(
                subjects::STREAM_STOPPED,
                &StreamStopped {
                    stream_id: rec.stream_id,
                    channel_id: rec.channel_id,
                    user_id: rec.user_id.clone(),
                    reason: reason.to_string(),
                    node_id: rec.node_id.clone(),
                    timestamp: payload::now_rfc3339(),
                },
            )
            .await;
        }
        Ok(rec)
    }

    /// Stops the streams among `recs` that this node serves, and those whose node is gone.
    async fn stop_own(&self, recs: Vec<StreamRecord>, reason: &str) {
        for rec in recs {
            if rec.node_id != self.node_id && !self.orphaned(&rec).await {
                continue;
            }
            if let Err(e) = self.stop_stream(rec.stream_id, reason).await {
                tracing::error!(stream = %rec.stream_id, reason, error = %e, "cannot stop stream");
            }
        }
    }

    /// Whether `rec` belongs to another node whose heartbeat has expired (a node that died
    /// without shutting down). A store error counts as "not known to be orphaned".
    pub(crate) async fn orphaned(&self, rec: &StreamRecord) -> bool {
        rec.node_id != self.node_id
            && matches!(self.store.node_alive(rec.node_id.clone()).await, Ok(false))
    }

    /// Removes the orphaned streams among `recs` (`stream.stopped`, reason `node_lost`);
    /// returns how many.
    pub(crate) async fn reap_orphans(&self, recs: Vec<StreamRecord>) -> usize {
        let mut n = 0;
        for rec in recs {
            if self.orphaned(&rec).await
                && matches!(
                    self.stop_stream(rec.stream_id, "node_lost").await,
                    Ok(Some(_))
                )
            {
                tracing::warn!(stream = %rec.stream_id, node = %rec.node_id, "removed a stream of a node that is gone");
                n += 1;
            }
        }
        n
    }

    async fn on_bus_message(&self, subject: &str, payload: &[u8]) {
        match subject {
            subjects::VOICE_SESSION_ENDED => {
                let Ok(ev) = serde_json::from_slice::<VoiceSessionEnded>(payload) else {
                    tracing::warn!(subject, "ignoring a payload without user_id");
                    return;
                };
                match self.store.user_streams(ev.user_id.clone()).await {
                    Ok(recs) => {
                        let recs = recs
                            .into_iter()
                            .filter(|r| ev.channel_id.is_none_or(|c| c == r.channel_id))
                            .collect();
                        self.stop_own(recs, "voice_session_ended").await
                    }
                    Err(e) => {
                        tracing::error!(subject, error = %e, "cannot look up the user's streams")
                    }
                }
            }
            subjects::CHANNEL_DELETED => {
                let Ok(ev) = serde_json::from_slice::<ChannelDeleted>(payload) else {
                    tracing::warn!(subject, "ignoring a payload without a channel_id uuid");
                    return;
                };
                match self.store.channel_streams(ev.channel_id).await {
                    Ok(recs) => self.stop_own(recs, "channel_deleted").await,
                    Err(e) => {
                        tracing::error!(subject, error = %e, "cannot look up the channel's streams")
                    }
                }
            }
            subjects::STREAM_QUALITY_CHANGED => {
                // Another node changed the quality of a stream whose media runs here (this
                // node's own changes are applied already and change nothing here).
                if let Ok(ev) = serde_json::from_slice::<QualityChanged>(payload) {
                    let q = crate::store::Quality {
                        resolution: ev.resolution,
                        framerate: ev.framerate,
                        bitrate: ev.bitrate,
                        preset: ev.preset,
                        max_bitrate_kbps: ev.max_bitrate_kbps,
                        preferred_layer: ev.preferred_layer,
                    };
                    self.apply_quality(ev.stream_id, &q);
                }
            }
            subjects::STREAM_STOPPED => {
                // Another node stopped a stream whose media runs here: close it here too.
                if let Ok(ev) = serde_json::from_slice::<StreamStopped>(payload)
                    && ev.node_id == self.node_id
                {
                    self.teardown_local(ev.stream_id).await;
                }
            }
            _ => {}
        }
    }
}

/// Subscribes to the events the service acts on, starts the node's heartbeat in the store and
/// the expiry of unanswered offers.
pub(super) async fn spawn_background(svc: &Arc<StreamService>) -> Result<(), BusError> {
    let ttl = svc.node_ttl();
    if let Err(e) = svc.store.heartbeat(svc.node_id.clone(), ttl).await {
        tracing::warn!(error = %e, "first heartbeat not stored; retrying in the background");
    }
    let beat = Arc::clone(svc);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ttl / 3);
        let mut failing = false;
        loop {
            tick.tick().await;
            match beat.store.heartbeat(beat.node_id.clone(), ttl).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("heartbeat stored again: the state store is back");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "heartbeat not stored");
                }
                Err(_) => {}
            }
        }
    });
    for subject in [
        subjects::VOICE_SESSION_ENDED,
        subjects::CHANNEL_DELETED,
        subjects::STREAM_STOPPED,
        subjects::STREAM_QUALITY_CHANGED,
    ] {
        let mut sub = svc.bus.subscribe(subject.to_string()).await?;
        let svc = Arc::clone(svc);
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                svc.on_bus_message(&m.subject, &m.payload).await;
            }
        });
    }
    let svc = Arc::clone(svc);
    tokio::spawn(async move {
        let timeout = Duration::from_secs(svc.cfg.watch_answer_timeout.max(1));
        let mut tick = tokio::time::interval(EXPIRY_TICK);
        loop {
            tick.tick().await;
            let expired: Vec<SessionId> = match svc.local.lock() {
                Ok(l) => l
                    .sessions
                    .iter()
                    .filter(|(_, s)| {
                        matches!(s.state, SessionState::Offered { since, .. } if since.elapsed() > timeout)
                    })
                    .map(|(id, _)| *id)
                    .collect(),
                Err(_) => return,
            };
            for id in expired {
                svc.end_viewer(id, "answer_timeout", false).await;
            }
        }
    });
    Ok(())
}
