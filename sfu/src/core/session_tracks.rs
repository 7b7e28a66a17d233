//! Tracks added to and removed from a running session ([`TrackCommand`]): ORTC-style signaling
//! (mediasoup's transport / producer / consumer model, the media server's `/sessions` API)
//! connects a transport first and produces or consumes media on it later, so a session's publish
//! and subscribe specs change while its ICE, DTLS and SRTP keep running.

use std::time::Instant;

use crate::bwe::{RembConfig, RembEstimator, TwccReceiver};
use crate::control::{
    Event, ExtMap, LayerOrder, PublishSpec, SessionTrackStats, SubscribeSpec, TrackCommand,
    TrackDirection, TrackStats,
};
use crate::{MediaKind, Mid, SessionId, TrackId};

use super::session::InboundSsrc;
use super::subscription::{MAX_LAYERS, Subscription};
use super::track::{LayerIdentity, Track};
use super::viewer_bwe::ViewerBwe;
use super::{ShardCore, ext};

/// Why a track change could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error("no session {0} on this shard")]
    NoSession(SessionId),
    #[error("header extension {name} has id {have} on session {session}, the new track uses {got}")]
    ExtensionConflict {
        session: SessionId,
        name: &'static str,
        have: u8,
        got: u8,
    },
    #[error("header extension id {0} would name two extensions on one session")]
    ExtensionIdReused(u8),
    #[error("mid {0:?} is already used by a media section of the session")]
    MidInUse(String),
    #[error("track {0:?} is already published on this shard")]
    DuplicateTrack(TrackId),
    #[error("the session already views this stream's {0:?} source")]
    DuplicateView(MediaKind),
    #[error("the session publishes no track {0:?}")]
    NoTrack(TrackId),
    #[error("the session has no viewing media section with mid {0:?}")]
    NoMediaSection(String),
}

/// The extensions of an [`ExtMap`], by name (for merging and error messages).
fn ext_fields(m: &mut ExtMap) -> [(&'static str, &mut Option<u8>); 7] {
    [
        ("mid", &mut m.mid),
        ("rid", &mut m.rid),
        ("repaired-rid", &mut m.repaired_rid),
        ("abs-send-time", &mut m.abs_send_time),
        ("transport-cc", &mut m.transport_cc),
        ("audio-level", &mut m.audio_level),
        ("dependency-descriptor", &mut m.dependency_descriptor),
    ]
}

/// `have` with the ids of `add` filled in. An extension both name must have the same id, and no
/// id may name two extensions.
pub fn merge_extmap(session: SessionId, have: &ExtMap, add: &ExtMap) -> Result<ExtMap, TrackError> {
    let mut out = *have;
    let mut add = *add;
    for ((name, slot), (_, new)) in ext_fields(&mut out).into_iter().zip(ext_fields(&mut add)) {
        match (*slot, *new) {
            (Some(h), Some(g)) if h != g => {
                return Err(TrackError::ExtensionConflict {
                    session,
                    name,
                    have: h,
                    got: g,
                });
            }
            (None, Some(g)) => *slot = Some(g),
            _ => {}
        }
    }
    let mut seen = [false; 256];
    for (_, id) in ext_fields(&mut out) {
        if let Some(id) = *id {
            if seen[usize::from(id)] {
                return Err(TrackError::ExtensionIdReused(id));
            }
            seen[usize::from(id)] = true;
        }
    }
    Ok(out)
}

impl ShardCore {
    /// Applies a [`TrackCommand`]; a failure is reported as [`Event::CommandFailed`] without a
    /// session id, so signaling does not take it for the end of the session.
    pub fn handle_track_command(&mut self, now: Instant, cmd: TrackCommand) {
        let result = match cmd {
            TrackCommand::AddPublish {
                session,
                extmap,
                spec,
            } => self.add_publish(now, session, &extmap, &spec),
            TrackCommand::RemovePublish { session, track } => self.remove_publish(session, track),
            TrackCommand::AddSubscribe {
                session,
                extmap,
                spec,
            } => self.add_subscribe(now, session, &extmap, &spec),
            TrackCommand::RemoveSubscribe { session, mid } => self.remove_subscribe(session, &mid),
            TrackCommand::Stats { session, reply } => {
                // The asker may have given up waiting; nothing else to do then.
                let _ = reply.send(self.session_track_stats(session));
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(shard = %self.shard, error = %e, "track command refused");
            self.events.push_back(Event::CommandFailed {
                id: None,
                shard: self.shard,
                error: e.to_string(),
            });
        }
    }

    fn session_index(&self, id: SessionId) -> Result<usize, TrackError> {
        self.by_id
            .get(&id)
            .copied()
            .ok_or(TrackError::NoSession(id))
    }

    fn mid_in_use(&self, idx: usize, mid: &Mid) -> bool {
        let s = &self.sessions[idx];
        s.tracks.iter().any(|&t| self.tracks[t].mid == *mid)
            || s.subs.iter().any(|&x| self.subs[x].mid == *mid)
    }

    /// Merges `add` into the session's extension ids and brings everything that depends on them
    /// up to date: every track's and viewing section's id maps, and which estimators run.
    fn apply_extmap(&mut self, now: Instant, idx: usize, add: &ExtMap) -> Result<(), TrackError> {
        let id = self.sessions[idx].id;
        let merged = merge_extmap(id, &self.sessions[idx].extmap, add)?;
        let session = &mut self.sessions[idx];
        if merged == session.extmap {
            return Ok(());
        }
        session.extmap = merged;
        if merged.transport_cc.is_some() && session.twcc.is_none() {
            session.twcc = Some(TwccReceiver::default());
        }
        let remb = merged.abs_send_time.is_some() && merged.transport_cc.is_none();
        if !remb {
            session.remb = None;
        } else if session.remb.is_none() {
            session.remb = Some(Box::new(RembEstimator::new(RembConfig::default())));
        }
        if let (Some(tcc), true, None) = (
            merged.transport_cc,
            !session.subs.is_empty(),
            session.viewer_bwe.as_ref(),
        ) {
            session.viewer_bwe = Some(ViewerBwe::new(tcc, now));
        }
        let ingress = ext::ingress_map(&merged);
        let (egress, egress_av1) = (ext::egress_map(&merged), ext::egress_map_av1(&merged));
        let (tracks, subs) = (session.tracks.clone(), session.subs.clone());
        for t in tracks {
            self.tracks[t].ext_to_canonical = ingress;
        }
        for s in subs {
            self.subs[s].ext_map = egress;
            self.subs[s].ext_map_av1 = egress_av1;
        }
        Ok(())
    }

    /// Starts receiving a published track on a running session.
    fn add_publish(
        &mut self,
        now: Instant,
        session: SessionId,
        extmap: &ExtMap,
        p: &PublishSpec,
    ) -> Result<(), TrackError> {
        let idx = self.session_index(session)?;
        if self.mid_in_use(idx, &p.mid) {
            return Err(TrackError::MidInUse(p.mid.0.clone()));
        }
        if self.tracks_by_id.keys().any(|(t, _)| *t == p.track) {
            return Err(TrackError::DuplicateTrack(p.track));
        }
        self.apply_extmap(now, idx, extmap)?;
        let ingress = ext::ingress_map(&self.sessions[idx].extmap);
        // Binds to the viewers' section of the same position among the stream's tracks of this
        // kind, as in `add_session`.
        let mut ids: Vec<TrackId> = self.sessions[idx]
            .tracks
            .iter()
            .map(|&t| &self.tracks[t])
            .filter(|t| t.stream == p.stream && t.kind == p.kind)
            .map(|t| t.id)
            .collect();
        ids.sort();
        ids.dedup();
        let ordinal = ids.len() as u8;
        if p.kind == MediaKind::Video && p.layers.len() > 1 {
            let count = p.layers.len().min(MAX_LAYERS);
            for (slot, rid) in p.layers.iter().take(count).enumerate() {
                let layer = LayerIdentity {
                    slot: slot as u8,
                    rank: slot as u8,
                    count: count as u8,
                    rid: Some(rid.clone()),
                    order_pending: p.layer_order == LayerOrder::Measured,
                };
                let track = Track::local(p, layer, ordinal, idx, ingress, &self.cfg, now);
                let tidx = self.tracks.insert(track);
                self.tracks_by_id.insert((p.track, slot as u8), tidx);
                self.sessions[idx].tracks.push(tidx);
                self.attach_track(p.stream, tidx);
            }
        } else {
            let track = Track::local(
                p,
                LayerIdentity::single(),
                ordinal,
                idx,
                ingress,
                &self.cfg,
                now,
            );
            let tidx = self.tracks.insert(track);
            self.tracks_by_id.insert((p.track, 0), tidx);
            self.sessions[idx].tracks.push(tidx);
            for (ssrc, rtx) in [(p.ssrc, false), (p.rtx_ssrc, true)] {
                if let Some(ssrc) = ssrc {
                    self.sessions[idx].learn_ssrc(InboundSsrc {
                        ssrc,
                        track: tidx,
                        rtx,
                    });
                }
            }
            self.attach_track(p.stream, tidx);
        }
        tracing::debug!(shard = %self.shard, %session, track = ?p.track, mid = %p.mid.0, "track published on a running session");
        Ok(())
    }

    /// Stops receiving a published track; the SSRCs it had are forgotten.
    fn remove_publish(&mut self, session: SessionId, track: TrackId) -> Result<(), TrackError> {
        let idx = self.session_index(session)?;
        let gone: Vec<usize> = self.sessions[idx]
            .tracks
            .iter()
            .copied()
            .filter(|&t| self.tracks[t].id == track)
            .collect();
        if gone.is_empty() {
            return Err(TrackError::NoTrack(track));
        }
        let s = &mut self.sessions[idx];
        s.tracks.retain(|t| !gone.contains(t));
        s.inbound.retain(|i| !gone.contains(&i.track));
        for tidx in gone {
            self.remove_track(tidx);
        }
        Ok(())
    }

    /// Starts sending a viewing media section on a running session.
    fn add_subscribe(
        &mut self,
        now: Instant,
        session: SessionId,
        extmap: &ExtMap,
        s: &SubscribeSpec,
    ) -> Result<(), TrackError> {
        let idx = self.session_index(session)?;
        if self.mid_in_use(idx, &s.mid) {
            return Err(TrackError::MidInUse(s.mid.0.clone()));
        }
        let ordinal = self.sessions[idx]
            .subs
            .iter()
            .filter(|&&x| self.subs[x].stream == s.stream && self.subs[x].kind == s.kind)
            .count();
        if ordinal > 0 {
            // A second section of the same kind would wait for the stream's second source of
            // that kind, which a single-track stream never has.
            return Err(TrackError::DuplicateView(s.kind));
        }
        // The subscription must exist before the estimator is set up for it.
        let seed = self.next_random();
        let egress = ext::egress_map(&self.sessions[idx].extmap);
        let sub = Subscription::new(s, 0, idx, egress, &self.cfg, now, seed);
        let sidx = self.subs.insert(sub);
        self.sessions[idx].subs.push(sidx);
        if let Err(e) = self.apply_extmap(now, idx, extmap) {
            self.sessions[idx].subs.retain(|&x| x != sidx);
            self.subs.remove(sidx);
            return Err(e);
        }
        let session_ext = self.sessions[idx].extmap;
        self.subs[sidx].ext_map = ext::egress_map(&session_ext);
        self.subs[sidx].ext_map_av1 = ext::egress_map_av1(&session_ext);
        if let (Some(tcc), None) = (
            session_ext.transport_cc,
            self.sessions[idx].viewer_bwe.as_ref(),
        ) {
            self.sessions[idx].viewer_bwe = Some(ViewerBwe::new(tcc, now));
        }
        self.attach_subscription(s.stream, sidx);
        tracing::debug!(shard = %self.shard, %session, mid = %s.mid.0, "viewing section added to a running session");
        Ok(())
    }

    /// Stops a viewing media section.
    fn remove_subscribe(&mut self, session: SessionId, mid: &Mid) -> Result<(), TrackError> {
        let idx = self.session_index(session)?;
        let sidx = self.sessions[idx]
            .subs
            .iter()
            .copied()
            .find(|&x| self.subs[x].mid == *mid)
            .ok_or_else(|| TrackError::NoMediaSection(mid.0.clone()))?;
        self.sessions[idx].subs.retain(|&x| x != sidx);
        self.remove_subscription(sidx);
        Ok(())
    }

    /// The figures of every track of a session.
    pub fn session_track_stats(&self, session: SessionId) -> SessionTrackStats {
        let Some(&idx) = self.by_id.get(&session) else {
            return SessionTrackStats {
                session,
                found: false,
                tracks: Vec::new(),
            };
        };
        let s = &self.sessions[idx];
        let mut tracks: Vec<TrackStats> = Vec::new();
        for &t in &s.tracks {
            let tr = &self.tracks[t];
            let lost = tr.recv.expected() as i64 - tr.recv.packets_received() as i64;
            // Simulcast encodings of one track add up.
            if let Some(e) = tracks.iter_mut().find(|e| e.track == Some(tr.id)) {
                e.packets += tr.recv.packets_received();
                e.bytes += tr.recv.bytes_received();
                e.packets_lost += lost.max(0);
                e.jitter = e.jitter.max(tr.recv.jitter());
                continue;
            }
            tracks.push(TrackStats {
                direction: TrackDirection::Publish,
                track: Some(tr.id),
                mid: tr.mid.clone(),
                kind: tr.kind,
                clock_rate: tr.clock_rate,
                packets: tr.recv.packets_received(),
                bytes: tr.recv.bytes_received(),
                packets_lost: lost.max(0),
                jitter: tr.recv.jitter(),
                voice: self.voice_track_stats(t),
            });
        }
        for &x in &s.subs {
            let sub = &self.subs[x];
            let source = sub
                .source
                .or_else(|| sub.layers.iter().flatten().next().copied());
            let (track, clock_rate) = match source.and_then(|t| self.tracks.get(t)) {
                Some(t) => (Some(t.id), t.clock_rate),
                None => (
                    sub.group,
                    match sub.kind {
                        MediaKind::Audio => 48_000,
                        MediaKind::Video => 90_000,
                    },
                ),
            };
            let remote = sub.send.remote();
            tracks.push(TrackStats {
                direction: TrackDirection::Subscribe,
                track,
                mid: sub.mid.clone(),
                kind: sub.kind,
                clock_rate,
                packets: sub.send.packets_sent(),
                bytes: sub.send.octets_sent(),
                packets_lost: remote.map_or(0, |r| i64::from(r.cumulative_lost)),
                jitter: remote.map_or(0, |r| r.jitter),
                voice: None,
            });
        }
        self.mix_track_stats(idx, &mut tracks);
        SessionTrackStats {
            session,
            found: true,
            tracks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_ids_merge_and_conflicts_are_refused() {
        let s = SessionId(1);
        let have = ExtMap {
            mid: Some(4),
            transport_cc: Some(3),
            ..ExtMap::default()
        };
        let add = ExtMap {
            mid: Some(4),
            audio_level: Some(1),
            ..ExtMap::default()
        };
        let m = merge_extmap(s, &have, &add).expect("compatible");
        assert_eq!(
            (m.mid, m.transport_cc, m.audio_level),
            (Some(4), Some(3), Some(1))
        );
        let other_mid = ExtMap {
            mid: Some(9),
            ..ExtMap::default()
        };
        assert!(matches!(
            merge_extmap(s, &have, &other_mid),
            Err(TrackError::ExtensionConflict { name: "mid", .. })
        ));
        let reused = ExtMap {
            audio_level: Some(3),
            ..ExtMap::default()
        };
        assert_eq!(
            merge_extmap(s, &have, &reused),
            Err(TrackError::ExtensionIdReused(3))
        );
    }
}
