//! Dynacast in the shard: which simulcast encodings of a local publisher's track any viewer
//! needs. Each viewer section's allocation says which encodings it needs (`SectionAlloc::demand`,
//! by spatial rank); a shard with viewers of another shard's track sends the union of its
//! viewers' needs to the publisher's shard ([`ShardMsg::LayerDemand`]) when it changes; the
//! publisher's shard combines its own viewers' needs with those reports, and emits
//! [`Event::LayerDemand`] when the set of encodings to keep on changes (on at once, off after
//! [`crate::alloc::DEMAND_OFF_DELAY`] without demand; everything on while nobody watches).

use std::time::Instant;

use crate::alloc::DemandTracker;
use crate::control::{Event, MAX_SIMULCAST_LAYERS};
use crate::{Mid, ShardId, StreamKey, TrackId};

use super::ShardCore;
use super::shard_msg::ShardMsg;
use super::track::{Origin, Track};

/// The demand for one local simulcast track (on the publisher's shard).
#[derive(Debug)]
pub(super) struct DemandEntry {
    stream: StreamKey,
    mid: Mid,
    tracker: DemandTracker,
    /// What other shards' viewers need (bits by rank); a shard whose viewers need nothing is
    /// removed.
    remote: Vec<(ShardId, u8)>,
}

/// What this shard last told the owner of a mirrored simulcast track.
#[derive(Debug)]
pub(super) struct MirrorDemand {
    owner: ShardId,
    sent: Option<u8>,
}

impl ShardCore {
    /// Starts tracking the demand for a local simulcast track of `count` encodings.
    pub(super) fn register_demand(
        &mut self,
        now: Instant,
        track: TrackId,
        stream: StreamKey,
        mid: &Mid,
        count: u8,
    ) {
        self.demand.insert(
            track,
            DemandEntry {
                stream,
                mid: mid.clone(),
                tracker: DemandTracker::new(count, now),
                remote: Vec::new(),
            },
        );
    }

    /// Starts tracking what this shard tells `owner` about its viewers of `track`.
    pub(super) fn register_mirror_demand(&mut self, track: TrackId, owner: ShardId) {
        self.mirror_demand
            .entry(track)
            .or_insert(MirrorDemand { owner, sent: None });
        self.mark_demand(track);
    }

    /// The demand for simulcast track `track` may have changed: recompute it at the next tick.
    pub(super) fn mark_demand(&mut self, track: TrackId) {
        if !self.demand_dirty.contains(&track) {
            self.demand_dirty.push(track);
        }
    }

    /// An encoding of a simulcast track was removed; once every encoding is gone, so is its
    /// demand state.
    pub(super) fn forget_demand_track(&mut self, track: &Track) {
        let id = track.id;
        let any_left =
            (0..MAX_SIMULCAST_LAYERS as u8).any(|s| self.tracks_by_id.contains_key(&(id, s)));
        if any_left {
            self.mark_demand(id);
            return;
        }
        match track.origin {
            Origin::Local { .. } => {
                self.demand.remove(&id);
            }
            Origin::Remote { .. } => {
                self.mirror_demand.remove(&id);
            }
        }
        self.demand_dirty.retain(|&t| t != id);
    }

    /// Whether an encoding of rank `rank` of local simulcast track `track` is needed by shard
    /// `to`'s viewers: false only once that shard reported needs that leave it out (until it
    /// reports, and while it reports no viewers, everything crosses).
    #[inline]
    pub(super) fn shard_needs(&self, track: TrackId, rank: u8, to: ShardId) -> bool {
        self.demand
            .get(&track)
            .and_then(|e| e.remote.iter().find(|(s, _)| *s == to))
            .is_none_or(|&(_, ranks)| ranks & (1 << rank) != 0)
    }

    /// Another shard reports what its viewers of local track `track` need.
    pub(super) fn on_remote_demand(
        &mut self,
        now: Instant,
        from: ShardId,
        track: TrackId,
        ranks: u8,
    ) {
        let _ = now;
        let Some(entry) = self.demand.get_mut(&track) else {
            return;
        };
        match entry.remote.iter_mut().find(|(s, _)| *s == from) {
            Some(e) if ranks != 0 => e.1 = ranks,
            Some(_) => entry.remote.retain(|(s, _)| *s != from),
            None if ranks != 0 => entry.remote.push((from, ranks)),
            None => {}
        }
        self.mark_demand(track);
    }

    /// What this shard's viewers of simulcast track `id` need (bits by rank), and whether there
    /// are any.
    fn local_demand(&self, id: TrackId) -> (bool, u8) {
        let (mut viewers, mut ranks) = (false, 0u8);
        for slot in 0..MAX_SIMULCAST_LAYERS as u8 {
            let Some(t) = self
                .tracks_by_id
                .get(&(id, slot))
                .and_then(|&t| self.tracks.get(t))
            else {
                continue;
            };
            for &sidx in &t.subscribers {
                if let Some(sub) = self.subs.get(sidx) {
                    viewers = true;
                    ranks |= sub.alloc.demand;
                }
            }
        }
        (viewers, ranks)
    }

    /// The encodings (bits by slot) of local track `id` whose ranks are in `ranks`.
    fn slots_of_ranks(&self, id: TrackId, ranks: u8) -> u8 {
        let mut slots = 0u8;
        for slot in 0..MAX_SIMULCAST_LAYERS as u8 {
            if let Some(t) = self
                .tracks_by_id
                .get(&(id, slot))
                .and_then(|&t| self.tracks.get(t))
                && ranks & (1 << t.layer.rank) != 0
            {
                slots |= 1 << slot;
            }
        }
        slots
    }

    /// Sends changed demand to the owners of mirrored tracks and updates the demand of local
    /// tracks, emitting [`Event::LayerDemand`] on changes; runs on the core's tick.
    pub(super) fn dynacast_tick(&mut self, now: Instant) {
        let due = self.demand_wake.is_some_and(|t| t <= now);
        if self.demand_dirty.is_empty() && !due {
            return;
        }
        if due {
            // Time may turn encodings off: look at every local track.
            for &id in self.demand.keys() {
                if !self.demand_dirty.contains(&id) {
                    self.demand_dirty.push(id);
                }
            }
        }
        let mut retry = 0;
        let mut i = 0;
        while i < self.demand_dirty.len() {
            let id = self.demand_dirty[i];
            i += 1;
            let (viewers, ranks) = self.local_demand(id);
            if let Some(m) = self.mirror_demand.get(&id) {
                let owner = m.owner;
                let mask = if viewers { ranks } else { 0 };
                if m.sent != Some(mask) {
                    if self.send_to_shard(
                        owner,
                        ShardMsg::LayerDemand {
                            track: id,
                            ranks: mask,
                        },
                    ) {
                        if let Some(m) = self.mirror_demand.get_mut(&id) {
                            m.sent = Some(mask);
                        }
                    } else {
                        // The queue is full: try again at the next tick.
                        self.demand_dirty[retry] = id;
                        retry += 1;
                    }
                }
                continue;
            }
            let Some(entry) = self.demand.get(&id) else {
                continue;
            };
            let remote = entry.remote.iter().fold(0u8, |m, &(_, r)| m | r);
            let needed = (viewers || remote != 0).then(|| self.slots_of_ranks(id, ranks | remote));
            let Some(entry) = self.demand.get_mut(&id) else {
                continue;
            };
            if let Some(active) = entry.tracker.update(now, needed) {
                let (stream, mid) = (entry.stream, entry.mid.clone());
                let mut rids: Vec<(u8, crate::Rid)> = Vec::with_capacity(MAX_SIMULCAST_LAYERS);
                for slot in 0..MAX_SIMULCAST_LAYERS as u8 {
                    if active & (1 << slot) == 0 {
                        continue;
                    }
                    if let Some(t) = self
                        .tracks_by_id
                        .get(&(id, slot))
                        .and_then(|&t| self.tracks.get(t))
                        && let Some(rid) = t.layer.rid.clone()
                    {
                        rids.push((t.layer.rank, rid));
                    }
                }
                rids.sort_unstable_by_key(|(rank, _)| *rank);
                tracing::debug!(shard = %self.shard, track = ?id, ?rids, "layer demand changed");
                self.events.push_back(Event::LayerDemand {
                    stream,
                    track: id,
                    mid,
                    active: rids.into_iter().map(|(_, r)| r).collect(),
                });
            }
        }
        self.demand_dirty.truncate(retry);
        self.demand_wake = self
            .demand
            .values()
            .filter_map(|e| e.tracker.poll_timeout())
            .min();
    }
}
