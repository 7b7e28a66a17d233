//! Control-path handling: sessions added and removed, tracks bound to viewers, shards linked.

use std::time::Instant;

use crate::control::{CloseReason, Command, Event, SessionSpec};
use crate::dtls::{DtlsConn, DtlsRole};
use crate::ice::IceLite;
use crate::{MediaKind, ShardId, Ssrc, StreamKey};

use super::session::Session;
use super::shard_msg::ShardMsg;
use super::subscription::Subscription;
use super::track::{Origin, Track};
use super::{ShardCore, ext};

/// Why a command could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("shard is full ({0} sessions)")]
    Full(usize),
    #[error("session {0} already exists")]
    Duplicate(crate::SessionId),
    #[error("ICE ufrag already in use on this shard")]
    UfragInUse,
    #[error("DTLS setup failed: {0}")]
    Dtls(String),
    #[error("shard is shutting down")]
    ShuttingDown,
}

impl ShardCore {
    /// Applies a command from signaling.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::AddSession(spec) => {
                let id = spec.id;
                if let Err(e) = self.add_session(now, *spec) {
                    tracing::warn!(shard = %self.shard, session = %id, error = %e, "session refused");
                    self.events.push_back(Event::CommandFailed {
                        id: Some(id),
                        shard: self.shard,
                        error: e.to_string(),
                    });
                }
            }
            Command::RemoveSession(id) => {
                if let Some(&idx) = self.by_id.get(&id) {
                    self.close_session(now, idx, CloseReason::Removed);
                }
            }
            Command::LinkShard {
                stream,
                shard,
                linked,
            } => self.link_shard(stream, shard, linked),
            Command::SetDesiredMax { session, max } => self.set_desired_max(now, session, max),
            Command::Shutdown => {
                self.shutting_down = true;
                let all: Vec<usize> = self.sessions.iter().map(|(i, _)| i).collect();
                for idx in all {
                    self.close_session(now, idx, CloseReason::Shutdown);
                }
            }
        }
    }

    /// Starts a negotiated session.
    pub fn add_session(&mut self, now: Instant, spec: SessionSpec) -> Result<(), CommandError> {
        if self.shutting_down {
            return Err(CommandError::ShuttingDown);
        }
        if self.sessions.len() >= self.cfg.max_sessions {
            return Err(CommandError::Full(self.cfg.max_sessions));
        }
        if self.by_id.contains_key(&spec.id) {
            return Err(CommandError::Duplicate(spec.id));
        }
        if self.by_ufrag.contains_key(spec.local_ice.ufrag.as_bytes()) {
            return Err(CommandError::UfragInUse);
        }
        let dtls = DtlsConn::new(
            DtlsRole::Server,
            self.cert.clone(),
            spec.remote_fingerprint.clone(),
            now,
        )
        .map_err(|e| CommandError::Dtls(e.to_string()))?;
        let ice = IceLite::new(spec.local_ice.clone(), &spec.remote_ice, self.cfg.ice, now);
        let rtcp_ssrc = Ssrc(self.next_random() as u32);
        let idx = self
            .sessions
            .insert(Session::new(&spec, ice, dtls, rtcp_ssrc, now));
        self.by_id.insert(spec.id, idx);
        self.by_ufrag
            .insert(spec.local_ice.ufrag.as_bytes().to_vec(), idx);

        let ingress = ext::ingress_map(&spec.extmap);
        let mut ordinals = [0u8; 2];
        for p in &spec.publish {
            let k = kind_index(p.kind);
            let track = Track::local(p, ordinals[k], idx, ingress, &self.cfg, now);
            ordinals[k] += 1;
            let tidx = self.tracks.insert(track);
            self.tracks_by_id.insert(p.track, tidx);
            self.sessions[idx].tracks.push(tidx);
            if let Some(ssrc) = p.ssrc {
                self.sessions[idx].learn_ssrc(super::session::InboundSsrc {
                    ssrc,
                    track: tidx,
                    rtx: false,
                });
            }
            if let Some(rtx) = p.rtx_ssrc {
                self.sessions[idx].learn_ssrc(super::session::InboundSsrc {
                    ssrc: rtx,
                    track: tidx,
                    rtx: true,
                });
            }
            self.attach_track(p.stream, tidx);
        }
        let egress = ext::egress_map(&spec.extmap);
        let mut ordinals = [0u8; 2];
        for s in &spec.subscribe {
            let k = kind_index(s.kind);
            let seed = self.next_random();
            let sub = Subscription::new(s, ordinals[k], idx, egress, &self.cfg, now, seed);
            ordinals[k] += 1;
            let sidx = self.subs.insert(sub);
            self.sessions[idx].subs.push(sidx);
            self.attach_subscription(s.stream, sidx);
        }
        tracing::debug!(shard = %self.shard, session = %spec.id, publish = spec.publish.len(), subscribe = spec.subscribe.len(), "session added");
        Ok(())
    }

    /// Closes a session, releases everything it holds, and tells signaling.
    pub(super) fn close_session(&mut self, now: Instant, idx: usize, reason: CloseReason) {
        let Some(mut session) = self.sessions.try_remove(idx) else {
            return;
        };
        let _ = now;
        session.dtls.close();
        if let Some(dest) = session.dest.or(session.dtls_peer) {
            while let Some(n) = session.dtls.poll_transmit(&mut self.scratch[..]) {
                let bytes = &self.scratch[..n];
                self.control.push_with(dest, |slot| {
                    slot[..bytes.len()].copy_from_slice(bytes);
                    Some(bytes.len())
                });
            }
        }
        self.by_id.remove(&session.id);
        self.probing.retain(|&i| i != idx);
        self.by_ufrag.remove(session.ice.local_ufrag().as_bytes());
        for addr in session.ice.validated() {
            if self.by_addr.get(&addr) == Some(&idx) {
                self.by_addr.remove(&addr);
            }
        }
        for &tidx in &session.tracks {
            self.remove_track(tidx);
        }
        for &sidx in &session.subs {
            self.remove_subscription(sidx);
        }
        tracing::debug!(shard = %self.shard, session = %session.id, ?reason, "session closed");
        self.events.push_back(Event::SessionClosed {
            id: session.id,
            shard: self.shard,
            reason,
        });
    }

    /// Makes a track a source of its stream and binds the viewers waiting for it.
    pub(super) fn attach_track(&mut self, stream: StreamKey, tidx: usize) {
        let entry = self.streams.entry(stream).or_default();
        entry.tracks.push(tidx);
        let (kind, ordinal) = (self.tracks[tidx].kind, self.tracks[tidx].ordinal);
        let waiting: Vec<usize> = entry
            .subs
            .iter()
            .copied()
            .filter(|&s| {
                self.subs[s].kind == kind
                    && self.subs[s].ordinal == ordinal
                    && self.subs[s].source.is_none()
            })
            .collect();
        for sidx in waiting {
            self.subs[sidx].bind(tidx);
            self.tracks[tidx].subscribers.push(sidx);
        }
    }

    fn attach_subscription(&mut self, stream: StreamKey, sidx: usize) {
        let entry = self.streams.entry(stream).or_default();
        entry.subs.push(sidx);
        let (kind, ordinal) = (self.subs[sidx].kind, self.subs[sidx].ordinal);
        let source = entry
            .tracks
            .iter()
            .copied()
            .find(|&t| self.tracks[t].kind == kind && self.tracks[t].ordinal == ordinal);
        if let Some(tidx) = source {
            self.subs[sidx].bind(tidx);
            self.tracks[tidx].subscribers.push(sidx);
        }
    }

    /// Removes a source track; its viewers wait for the next publisher.
    pub(super) fn remove_track(&mut self, tidx: usize) {
        let Some(track) = self.tracks.try_remove(tidx) else {
            return;
        };
        if self.tracks_by_id.get(&track.id) == Some(&tidx) {
            self.tracks_by_id.remove(&track.id);
        }
        for &sidx in &track.subscribers {
            if let Some(sub) = self.subs.get_mut(sidx) {
                sub.unbind();
            }
        }
        self.fanout.retain(|j| j.track != tidx);
        let Some(entry) = self.streams.get_mut(&track.stream) else {
            return;
        };
        entry.tracks.retain(|&t| t != tidx);
        let empty = entry.is_empty();
        if matches!(track.origin, Origin::Local { .. })
            && let (Some(entry), Some(mesh)) = (self.streams.get(&track.stream), self.mesh.as_mut())
        {
            for &shard in &entry.links {
                let msg = ShardMsg::TrackEnded {
                    stream: track.stream,
                    track: track.id,
                };
                match mesh.send(shard, msg) {
                    Ok(()) => self.counters.cross_shard_out += 1,
                    Err(_) => self
                        .counters
                        .drop(crate::metrics::DropReason::CrossShardQueueFull),
                }
            }
        }
        if empty {
            self.streams.remove(&track.stream);
        }
    }

    fn remove_subscription(&mut self, sidx: usize) {
        let Some(sub) = self.subs.try_remove(sidx) else {
            return;
        };
        if let Some(t) = sub.source.and_then(|t| self.tracks.get_mut(t)) {
            t.subscribers.retain(|&s| s != sidx);
        }
        if let Some(entry) = self.streams.get_mut(&sub.stream) {
            entry.subs.retain(|&s| s != sidx);
            // A mirror with no viewers left stays until its publisher ends; it costs one cache.
            if entry.is_empty() {
                self.streams.remove(&sub.stream);
            }
        }
    }

    fn link_shard(&mut self, stream: StreamKey, shard: ShardId, linked: bool) {
        if shard == self.shard {
            return;
        }
        let entry = self.streams.entry(stream).or_default();
        if linked {
            if !entry.links.contains(&shard) {
                entry.links.push(shard);
            }
        } else {
            entry.links.retain(|&s| s != shard);
            if entry.is_empty() {
                self.streams.remove(&stream);
            }
        }
    }

    /// Queues a message for another shard, counting a full queue.
    pub(super) fn send_to_shard(&mut self, to: ShardId, msg: ShardMsg) -> bool {
        let Some(mesh) = self.mesh.as_mut() else {
            return false;
        };
        match mesh.send(to, msg) {
            Ok(()) => {
                self.counters.cross_shard_out += 1;
                true
            }
            Err(_) => {
                self.counters
                    .drop(crate::metrics::DropReason::CrossShardQueueFull);
                false
            }
        }
    }
}

pub(super) fn kind_index(k: MediaKind) -> usize {
    match k {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}
