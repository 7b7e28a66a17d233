//! Control-path handling: sessions added and removed, tracks bound to viewers, shards linked.

use std::time::Instant;

use crate::control::{CloseReason, Command, Event, LayerOrder, LayerSelection, SessionSpec};
use crate::dtls::{DtlsConn, DtlsRole};
use crate::ice::IceLite;
use crate::{MediaKind, Mid, SessionId, ShardId, Ssrc, StreamKey};

use slab::Slab;

use super::session::Session;
use super::shard_msg::ShardMsg;
use super::subscription::{MAX_LAYERS, Subscription};
use super::track::{LayerIdentity, Origin, Track};
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
    #[error("no session {0} on this shard")]
    NoSession(SessionId),
    #[error("the session has no such viewing media section")]
    NoMediaSection,
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
            Command::SetLayers {
                session,
                mid,
                selection,
            } => {
                if let Err(e) = self.set_layers(now, session, mid.as_ref(), &selection) {
                    self.events.push_back(Event::CommandFailed {
                        id: Some(session),
                        shard: self.shard,
                        error: e.to_string(),
                    });
                }
            }
            Command::SetDesiredMax { session, max } => self.set_desired_max(now, session, max),
            Command::SetQuality { session, cap } => self.set_quality(now, session, cap),
            Command::Tracks(cmd) => self.handle_track_command(now, cmd),
            Command::Voice(cmd) => self.handle_voice_command(now, cmd),
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
            let simulcast = p.kind == MediaKind::Video && p.layers.len() > 1;
            if simulcast {
                let count = p.layers.len().min(MAX_LAYERS);
                for (slot, rid) in p.layers.iter().take(count).enumerate() {
                    let layer = LayerIdentity {
                        slot: slot as u8,
                        rank: slot as u8,
                        count: count as u8,
                        rid: Some(rid.clone()),
                        order_pending: p.layer_order == LayerOrder::Measured,
                    };
                    let track = Track::local(p, layer, ordinals[k], idx, ingress, &self.cfg, now);
                    let tidx = self.tracks.insert(track);
                    self.tracks_by_id.insert((p.track, slot as u8), tidx);
                    self.sessions[idx].tracks.push(tidx);
                    self.attach_track(p.stream, tidx);
                }
                self.register_demand(now, p.track, p.stream, &p.mid, count as u8);
                ordinals[k] += 1;
                continue;
            }
            let track = Track::local(
                p,
                LayerIdentity::single(),
                ordinals[k],
                idx,
                ingress,
                &self.cfg,
                now,
            );
            ordinals[k] += 1;
            let tidx = self.tracks.insert(track);
            self.tracks_by_id.insert((p.track, 0), tidx);
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
        let egress_av1 = ext::egress_map_av1(&spec.extmap);
        for (i, s) in spec.subscribe.iter().enumerate() {
            // Position among this session's sections of the same kind and stream (a session
            // may view several streams).
            let ordinal = spec.subscribe[..i]
                .iter()
                .filter(|o| o.kind == s.kind && o.stream == s.stream)
                .count() as u8;
            let seed = self.next_random();
            let mut sub = Subscription::new(s, ordinal, idx, egress, &self.cfg, now, seed);
            sub.ext_map_av1 = egress_av1;
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
        self.pacing.retain(|&i| i != idx);
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
        self.mix_session_closed(idx);
        tracing::debug!(shard = %self.shard, session = %session.id, ?reason, "session closed");
        self.events.push_back(Event::SessionClosed {
            id: session.id,
            shard: self.shard,
            reason,
        });
    }

    /// Makes a track a source of its stream and binds the viewers waiting for it.
    pub(super) fn attach_track(&mut self, stream: StreamKey, tidx: usize) {
        self.voice_track_attached(tidx);
        let entry = self.streams.entry(stream).or_default();
        entry.tracks.push(tidx);
        let t = &self.tracks[tidx];
        let (kind, ordinal, id) = (t.kind, t.ordinal, t.id);
        let simulcast = t.layer.is_simulcast();
        let rank = t.layer.rank;
        let waiting: Vec<usize> = entry
            .subs
            .iter()
            .copied()
            .filter(|&s| {
                let sub = &self.subs[s];
                sub.kind == kind
                    && sub.ordinal == ordinal
                    && if simulcast {
                        sub.group == Some(id) || (sub.group.is_none() && sub.source.is_none())
                    } else {
                        sub.source.is_none() && sub.group.is_none()
                    }
            })
            .collect();
        for sidx in waiting {
            if simulcast {
                self.subs[sidx].bind_layer(tidx, id, rank);
            } else {
                self.subs[sidx].bind(tidx);
            }
            self.tracks[tidx].subscribers.push(sidx);
            self.reallocate_viewer_of(sidx);
        }
        if simulcast {
            self.mark_demand(id);
        }
    }

    /// Rebuilds the rank tables of the viewers of a simulcast track after its ranks changed.
    pub(super) fn relink_layers(&mut self, tidx: usize) {
        let Some(track) = self.tracks.get(tidx) else {
            return;
        };
        // Demand is reported by rank.
        let id = track.id;
        if !self.demand_dirty.contains(&id) {
            self.demand_dirty.push(id);
        }
        for &sidx in &track.subscribers {
            let Some(sub) = self.subs.get_mut(sidx) else {
                continue;
            };
            let bound = sub.layers;
            sub.layers = [None; MAX_LAYERS];
            for t in bound.into_iter().flatten() {
                if let Some(r) = self.tracks.get(t).map(|t| usize::from(t.layer.rank))
                    && r < MAX_LAYERS
                {
                    sub.layers[r] = Some(t);
                }
            }
        }
    }

    /// Stores a viewer's layer selection, the bound of its allocation, and allocates with it
    /// (a switch asks for the keyframe it needs).
    fn set_layers(
        &mut self,
        now: Instant,
        session: SessionId,
        mid: Option<&Mid>,
        selection: &LayerSelection,
    ) -> Result<(), CommandError> {
        let &idx = self
            .by_id
            .get(&session)
            .ok_or(CommandError::NoSession(session))?;
        let sidx = self.sessions[idx]
            .subs
            .iter()
            .copied()
            .find(|&s| match mid {
                Some(m) => self.subs[s].mid == *m,
                None => self.subs[s].kind == MediaKind::Video,
            })
            .ok_or(CommandError::NoMediaSection)?;
        // The allocator chooses within the viewer's selection and applies it.
        self.subs[sidx].alloc.explicit = *selection;
        self.run_allocation(now, idx);
        Ok(())
    }

    /// For a viewer of a simulcast source: the encoding it should receive now.
    pub(super) fn wanted_layer_track(&self, now: Instant, sidx: usize) -> Option<usize> {
        wanted_layer(&self.subs, &self.tracks, now, sidx)
    }

    pub(super) fn attach_subscription(&mut self, stream: StreamKey, sidx: usize) {
        let entry = self.streams.entry(stream).or_default();
        entry.subs.push(sidx);
        let (kind, ordinal) = (self.subs[sidx].kind, self.subs[sidx].ordinal);
        let sources: Vec<usize> = entry
            .tracks
            .iter()
            .copied()
            .filter(|&t| self.tracks[t].kind == kind && self.tracks[t].ordinal == ordinal)
            .collect();
        let Some(&first) = sources.first() else {
            return;
        };
        self.reallocate_viewer_of(sidx);
        if !self.tracks[first].layer.is_simulcast() {
            self.subs[sidx].bind(first);
            self.tracks[first].subscribers.push(sidx);
            return;
        }
        let id = self.tracks[first].id;
        self.mark_demand(id);
        for t in sources {
            if self.tracks[t].id == id {
                let rank = self.tracks[t].layer.rank;
                self.subs[sidx].bind_layer(t, id, rank);
                self.tracks[t].subscribers.push(sidx);
            }
        }
    }

    /// Removes a source track; its viewers wait for the next publisher.
    pub(super) fn remove_track(&mut self, tidx: usize) {
        let Some(track) = self.tracks.try_remove(tidx) else {
            return;
        };
        let key = (track.id, track.layer.slot);
        if self.tracks_by_id.get(&key) == Some(&tidx) {
            self.tracks_by_id.remove(&key);
        }
        self.voice_track_removed(tidx, track.id);
        for &sidx in &track.subscribers {
            if let Some(sub) = self.subs.get_mut(sidx) {
                if track.layer.is_simulcast() {
                    sub.unbind_layer(tidx);
                } else {
                    sub.unbind();
                }
            }
            self.reallocate_viewer_of(sidx);
        }
        if track.layer.is_simulcast() {
            self.forget_demand_track(&track);
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

    pub(super) fn remove_subscription(&mut self, sidx: usize) {
        let Some(sub) = self.subs.try_remove(sidx) else {
            return;
        };
        for t in sub
            .source
            .into_iter()
            .chain(sub.layers.into_iter().flatten())
        {
            if let Some(t) = self.tracks.get_mut(t) {
                t.subscribers.retain(|&s| s != sidx);
            }
        }
        if let Some(g) = sub.group {
            self.mark_demand(g);
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

/// For a viewer of a simulcast source: the encoding it should receive now (its target, capped,
/// lowered to the highest encoding that is sending). None when the source is not simulcast.
pub(super) fn wanted_layer(
    subs: &Slab<Subscription>,
    tracks: &Slab<Track>,
    now: Instant,
    sidx: usize,
) -> Option<usize> {
    let sub = subs.get(sidx)?;
    sub.group?;
    let active = |r: u8| {
        sub.layers[usize::from(r)]
            .and_then(|t| tracks.get(t))
            .and_then(|t| t.last_arrival)
            .is_some_and(|a| now.saturating_duration_since(a) < LAYER_IDLE)
    };
    let rank = crate::route::layer_selector::wanted_encoding(
        sub.selector.spatial(),
        sub.layer_count(),
        active,
    );
    sub.layers[usize::from(rank)]
}

/// An encoding that sent nothing for this long is passed over for the next one down.
const LAYER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) fn kind_index(k: MediaKind) -> usize {
    match k {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}
