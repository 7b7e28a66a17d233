//! Signaling's view of streams and sessions: who publishes where, which shards hold viewers, and
//! the cross-shard links that follow from it. Every change returns the commands the shards need.

use std::collections::HashMap;

use sfu::control::{Command, LayerOrder, LayerSelection, ViewerStats};
use sfu::{Bitrate, Mid, Rid, SessionId, ShardId, StreamKey, TrackId};

use crate::placement::Placer;
use crate::problem::Problem;

/// Which side of a stream a session is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Viewer,
}

/// A session known to signaling.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub stream: String,
    pub role: Role,
    pub shard: ShardId,
    pub etag: String,
    pub remote_ufrag: String,
    /// A viewer's video mids, in order (the k-th receives the publisher's k-th video track).
    pub video_mids: Vec<Mid>,
    /// A viewer's last layer selection per video mid.
    pub selections: Vec<(Mid, LayerSelection)>,
    /// The shard's latest send-side estimate toward this session (viewers with transport-cc).
    pub bwe: Option<sfu::control::ViewerBweStats>,
    /// A WHEP viewer's quality preset (`?quality=` or the layer extension's `quality`).
    pub quality: Option<&'static crate::quality::Preset>,
    /// The shard's latest allocation report for a viewer (once a second).
    pub stats: Option<ViewerStats>,
    /// The last degradation notice for a viewer: allocated and wanted video rates, when it was
    /// raised and not yet cleared.
    pub degraded: Option<(Bitrate, Bitrate)>,
    /// A publisher's simulcast encodings still needed by some viewer, per publisher video mid
    /// (dynacast); a mid without an entry needs every encoding.
    pub layer_demand: Vec<(Mid, Vec<Rid>)>,
}

/// Which simulcast encodings of one published video section viewers need (dynacast), lowest
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDemand {
    /// The publisher's mid.
    pub mid: Mid,
    pub active: Vec<Rid>,
    pub inactive: Vec<Rid>,
}

/// The encodings of one published video track, lowest first (empty: not simulcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedVideo {
    pub track: TrackId,
    pub mid: Mid,
    pub layers: Vec<Rid>,
    pub order: LayerOrder,
}

/// The video tracks a publisher's session spec sends, in order.
pub fn published_video(spec: &sfu::control::SessionSpec) -> Vec<PublishedVideo> {
    spec.publish
        .iter()
        .filter(|p| p.kind == sfu::MediaKind::Video)
        .map(|p| PublishedVideo {
            track: p.track,
            mid: p.mid.clone(),
            layers: p.layers.clone(),
            order: p.layer_order,
        })
        .collect()
}

#[derive(Debug)]
struct StreamRecord {
    key: StreamKey,
    publisher: Option<(SessionId, ShardId)>,
    viewers: Vec<usize>,
    /// Shards the publisher's shard forwards to.
    linked: Vec<bool>,
    /// The publisher's video tracks, in order.
    video: Vec<PublishedVideo>,
}

impl StreamRecord {
    fn home(&self) -> Option<ShardId> {
        if let Some((_, s)) = self.publisher {
            return Some(s);
        }
        self.viewers
            .iter()
            .enumerate()
            .max_by_key(|(i, v)| (**v, usize::MAX - *i))
            .filter(|(_, v)| **v > 0)
            .map(|(i, _)| ShardId(i as u16))
    }
    fn is_empty(&self) -> bool {
        self.publisher.is_none() && self.viewers.iter().all(|&v| v == 0)
    }
}

/// A session admitted by the registry; the caller sends `commands` after `AddSession`.
#[derive(Debug)]
pub struct Admission {
    pub shard: ShardId,
    pub key: StreamKey,
    pub commands: Vec<(ShardId, Command)>,
}

/// Streams, sessions and shard loads.
#[derive(Debug)]
pub struct Registry {
    placer: Placer,
    streams: HashMap<String, StreamRecord>,
    sessions: HashMap<SessionId, SessionRecord>,
    loads: Vec<usize>,
    next_key: u64,
    /// Bumped whenever what [`Registry::layer_demand`] answers may have changed.
    layers_changed: tokio::sync::watch::Sender<u64>,
}

impl Registry {
    pub fn new(shards: usize, placer: Placer) -> Self {
        Registry {
            placer,
            streams: HashMap::new(),
            sessions: HashMap::new(),
            loads: vec![0; shards],
            next_key: 1,
            layers_changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes whenever a publisher's layer demand may have changed (a new demand, a new
    /// publisher, a learned layer order, a session gone).
    pub fn layers_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.layers_changed.subscribe()
    }

    fn bump_layers(&self) {
        self.layers_changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Records a viewer's allocation report (ignored for an unknown session).
    pub fn set_stats(&mut self, id: SessionId, stats: ViewerStats) {
        if let Some(r) = self.sessions.get_mut(&id) {
            r.stats = Some(stats);
        }
    }

    /// Records a viewer's degradation notice; `false` when the session is unknown.
    pub fn set_degraded(
        &mut self,
        id: SessionId,
        degraded: bool,
        allocated: Bitrate,
        wanted: Bitrate,
    ) -> bool {
        let Some(r) = self.sessions.get_mut(&id) else {
            return false;
        };
        r.degraded = degraded.then_some((allocated, wanted));
        if let Some(s) = r.stats.as_mut() {
            s.degraded = degraded;
        }
        true
    }

    /// Records a viewer's quality preset.
    pub fn set_quality(&mut self, id: SessionId, preset: Option<&'static crate::quality::Preset>) {
        if let Some(r) = self.sessions.get_mut(&id) {
            r.quality = preset;
        }
    }

    /// Every viewer session.
    pub fn viewers(&self) -> impl Iterator<Item = &SessionRecord> {
        self.sessions.values().filter(|r| r.role == Role::Viewer)
    }

    /// Records which encodings of a published track viewers need (dynacast). Returns whether
    /// anything changed (an unknown stream or a stream without a publisher changes nothing).
    pub fn set_layer_demand(
        &mut self,
        key: StreamKey,
        track: TrackId,
        mid: Mid,
        active: Vec<Rid>,
    ) -> bool {
        let Some(publisher) = self
            .streams
            .values()
            .find(|s| s.key == key)
            .filter(|s| s.video.iter().any(|v| v.track == track))
            .and_then(|s| s.publisher)
            .map(|(id, _)| id)
        else {
            return false;
        };
        let Some(rec) = self.sessions.get_mut(&publisher) else {
            return false;
        };
        match rec.layer_demand.iter_mut().find(|(m, _)| *m == mid) {
            Some((_, a)) if *a == active => return false,
            Some((_, a)) => *a = active,
            None => rec.layer_demand.push((mid, active)),
        }
        self.bump_layers();
        true
    }

    /// What viewers need of each simulcast video section a publisher sends (sections with at
    /// least two encodings), in the publisher's order. `None` for an unknown session or one that
    /// is not the publisher of its stream.
    pub fn layer_demand(&self, publisher: SessionId) -> Option<Vec<SectionDemand>> {
        let rec = self.sessions.get(&publisher)?;
        let stream = self.streams.get(&rec.stream)?;
        if rec.role != Role::Publisher || stream.publisher.map(|(id, _)| id) != Some(publisher) {
            return None;
        }
        Some(
            stream
                .video
                .iter()
                .filter(|v| v.layers.len() >= 2)
                .map(|v| {
                    let wanted = rec
                        .layer_demand
                        .iter()
                        .find(|(m, _)| *m == v.mid)
                        .map(|(_, a)| a);
                    let (active, inactive) = v
                        .layers
                        .iter()
                        .cloned()
                        .partition(|r| wanted.is_none_or(|a| a.contains(r)));
                    SectionDemand {
                        mid: v.mid.clone(),
                        active,
                        inactive,
                    }
                })
                .collect(),
        )
    }

    pub fn session(&self, id: SessionId) -> Option<&SessionRecord> {
        self.sessions.get(&id)
    }

    /// Records a shard's estimate toward a session (ignored for an unknown session).
    pub fn set_bwe(&mut self, id: SessionId, stats: sfu::control::ViewerBweStats) {
        if let Some(r) = self.sessions.get_mut(&id) {
            r.bwe = Some(stats);
        }
    }

    /// The latest estimates of every session that has one.
    pub fn bwe_estimates(&self) -> impl Iterator<Item = &sfu::control::ViewerBweStats> {
        self.sessions.values().filter_map(|r| r.bwe.as_ref())
    }

    pub fn loads(&self) -> &[usize] {
        &self.loads
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions by role.
    pub fn counts(&self) -> (usize, usize) {
        let p = self
            .sessions
            .values()
            .filter(|s| s.role == Role::Publisher)
            .count();
        (p, self.sessions.len() - p)
    }

    /// Whether `stream` has a publisher.
    pub fn has_publisher(&self, stream: &str) -> bool {
        self.streams
            .get(stream)
            .is_some_and(|s| s.publisher.is_some())
    }

    /// Places a new session of `role` on `stream` and records it.
    pub fn admit(
        &mut self,
        id: SessionId,
        stream: &str,
        role: Role,
        etag: String,
        remote_ufrag: String,
    ) -> Result<Admission, Problem> {
        let n = self.loads.len();
        if role == Role::Publisher && self.has_publisher(stream) {
            return Err(Problem::conflict(format!(
                "stream {stream:?} already has a publisher"
            )));
        }
        let home = self.streams.get(stream).and_then(StreamRecord::home);
        let shard = self
            .placer
            .choose(&self.loads, home)
            .ok_or_else(|| Problem::unavailable("every media shard is at its session limit", 5))?;
        let key = match self.streams.get(stream) {
            Some(s) => s.key,
            None => {
                let key = StreamKey(self.next_key);
                self.next_key += 1;
                self.streams.insert(
                    stream.to_string(),
                    StreamRecord {
                        key,
                        publisher: None,
                        viewers: vec![0; n],
                        linked: vec![false; n],
                        video: Vec::new(),
                    },
                );
                key
            }
        };
        // The entry exists: it was found or inserted just above.
        let rec = self.streams.get_mut(stream).expect("stream record exists");
        let mut commands = Vec::new();
        match role {
            Role::Publisher => {
                rec.publisher = Some((id, shard));
                for (s, &v) in rec.viewers.iter().enumerate() {
                    if v > 0 && s != shard.0 as usize {
                        rec.linked[s] = true;
                        commands.push((
                            shard,
                            Command::LinkShard {
                                stream: key,
                                shard: ShardId(s as u16),
                                linked: true,
                            },
                        ));
                    }
                }
            }
            Role::Viewer => {
                rec.viewers[shard.0 as usize] += 1;
                if let Some((_, p)) = rec.publisher
                    && p != shard
                    && !rec.linked[shard.0 as usize]
                {
                    rec.linked[shard.0 as usize] = true;
                    commands.push((
                        p,
                        Command::LinkShard {
                            stream: key,
                            shard,
                            linked: true,
                        },
                    ));
                }
            }
        }
        self.loads[shard.0 as usize] += 1;
        self.sessions.insert(
            id,
            SessionRecord {
                stream: stream.to_string(),
                role,
                shard,
                etag,
                remote_ufrag,
                video_mids: Vec::new(),
                selections: Vec::new(),
                bwe: None,
                quality: None,
                stats: None,
                degraded: None,
                layer_demand: Vec::new(),
            },
        );
        Ok(Admission {
            shard,
            key,
            commands,
        })
    }

    /// Forgets a session (ended by the client, by signaling, or by its shard) and returns the
    /// link changes that follow.
    pub fn remove(&mut self, id: SessionId) -> Option<(SessionRecord, Vec<(ShardId, Command)>)> {
        let rec = self.sessions.remove(&id)?;
        self.loads[rec.shard.0 as usize] = self.loads[rec.shard.0 as usize].saturating_sub(1);
        let mut commands = Vec::new();
        if let Some(stream) = self.streams.get_mut(&rec.stream) {
            match rec.role {
                Role::Publisher => {
                    stream.video.clear();
                    if let Some((_, p)) = stream.publisher.take() {
                        for (s, l) in stream.linked.iter_mut().enumerate() {
                            if std::mem::take(l) {
                                commands.push((
                                    p,
                                    Command::LinkShard {
                                        stream: stream.key,
                                        shard: ShardId(s as u16),
                                        linked: false,
                                    },
                                ));
                            }
                        }
                    }
                }
                Role::Viewer => {
                    let v = &mut stream.viewers[rec.shard.0 as usize];
                    *v = v.saturating_sub(1);
                    if *v == 0
                        && let Some((_, p)) = stream.publisher
                        && std::mem::take(&mut stream.linked[rec.shard.0 as usize])
                    {
                        commands.push((
                            p,
                            Command::LinkShard {
                                stream: stream.key,
                                shard: rec.shard,
                                linked: false,
                            },
                        ));
                    }
                }
            }
            if stream.is_empty() {
                self.streams.remove(&rec.stream);
            }
        }
        if rec.role == Role::Publisher {
            self.bump_layers();
        }
        Some((rec, commands))
    }

    /// Records the video tracks a stream's publisher sends.
    pub fn set_published_video(&mut self, stream: &str, video: Vec<PublishedVideo>) {
        if let Some(s) = self.streams.get_mut(stream) {
            s.video = video;
            self.bump_layers();
        }
    }

    /// Records a viewer's video mids.
    pub fn set_video_mids(&mut self, id: SessionId, mids: Vec<Mid>) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.video_mids = mids;
        }
    }

    /// Records a viewer's layer selection for one of its mids.
    pub fn set_selection(&mut self, id: SessionId, mid: &Mid, selection: LayerSelection) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.selections.retain(|(m, _)| m != mid);
            s.selections.push((mid.clone(), selection));
        }
    }

    /// A stream's key and its publisher's video tracks (empty without a publisher).
    pub fn published(&self, stream: &str) -> Option<(StreamKey, &[PublishedVideo])> {
        self.streams
            .get(stream)
            .map(|s| (s.key, s.video.as_slice()))
    }

    /// The publisher's video track a viewer's video mid receives, if the stream has a publisher.
    pub fn published_video_for(&self, viewer: SessionId, mid: &Mid) -> Option<&PublishedVideo> {
        let rec = self.sessions.get(&viewer)?;
        let ordinal = rec.video_mids.iter().position(|m| m == mid)?;
        self.streams.get(&rec.stream)?.video.get(ordinal)
    }

    /// The media plane learned the order of a track's encodings from their bit rates.
    pub fn set_layer_order(&mut self, key: StreamKey, track: TrackId, layers: Vec<Rid>) {
        for s in self.streams.values_mut().filter(|s| s.key == key) {
            for v in s.video.iter_mut().filter(|v| v.track == track) {
                v.layers = layers.clone();
                v.order = LayerOrder::Named;
            }
        }
        self.bump_layers();
    }

    /// Every session id (for shutdown).
    pub fn session_ids(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Placement;

    fn reg(shards: usize, policy: Placement) -> Registry {
        Registry::new(
            shards,
            Placer {
                policy,
                max_per_shard: 100,
            },
        )
    }

    fn links(cmds: &[(ShardId, Command)]) -> Vec<(u16, u16, bool)> {
        cmds.iter()
            .filter_map(|(to, c)| match c {
                Command::LinkShard { shard, linked, .. } => Some((to.0, shard.0, *linked)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn second_publisher_is_a_conflict() {
        let mut r = reg(1, Placement::Stream);
        r.admit(SessionId(1), "s", Role::Publisher, "e".into(), "u".into())
            .unwrap();
        let e = r
            .admit(SessionId(2), "s", Role::Publisher, "e".into(), "u".into())
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 409);
        r.remove(SessionId(1));
        assert!(
            r.admit(SessionId(3), "s", Role::Publisher, "e".into(), "u".into())
                .is_ok()
        );
    }

    #[test]
    fn viewers_on_other_shards_are_linked_once_and_unlinked_when_gone() {
        let mut r = reg(2, Placement::Spread);
        let p = r
            .admit(SessionId(1), "s", Role::Publisher, "e".into(), "u".into())
            .unwrap();
        assert_eq!(p.shard, ShardId(0));
        let v1 = r
            .admit(SessionId(2), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        assert_eq!(v1.shard, ShardId(1));
        assert_eq!(links(&v1.commands), vec![(0, 1, true)]);
        // Spread: next viewer goes to shard 0 (loads 1/1 → lowest index), then shard 1 again.
        let v2 = r
            .admit(SessionId(3), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        assert_eq!(v2.shard, ShardId(0));
        let v3 = r
            .admit(SessionId(4), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        assert_eq!(v3.shard, ShardId(1));
        assert!(links(&v3.commands).is_empty(), "already linked");
        assert!(
            links(&r.remove(SessionId(2)).unwrap().1).is_empty(),
            "another viewer remains on shard 1"
        );
        assert_eq!(
            links(&r.remove(SessionId(4)).unwrap().1),
            vec![(0, 1, false)]
        );
    }

    #[test]
    fn publisher_arriving_after_viewers_links_their_shards() {
        let mut r = reg(2, Placement::Spread);
        r.admit(SessionId(1), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        r.admit(SessionId(2), "t", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        let p = r
            .admit(SessionId(3), "s", Role::Publisher, "e".into(), "u".into())
            .unwrap();
        assert_eq!(
            p.shard,
            ShardId(0),
            "the stream's home is where its viewer is"
        );
        assert!(links(&p.commands).is_empty());
        let mut r = reg(2, Placement::Spread);
        r.admit(SessionId(1), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        let p = r
            .admit(SessionId(2), "s", Role::Publisher, "e".into(), "u".into())
            .unwrap();
        assert_eq!(p.shard, ShardId(1));
        assert_eq!(links(&p.commands), vec![(1, 0, true)]);
    }

    #[test]
    fn a_viewer_finds_its_sources_layers_and_learns_a_measured_order() {
        let mut r = reg(1, Placement::Stream);
        let p = r
            .admit(SessionId(1), "s", Role::Publisher, "e".into(), "u".into())
            .unwrap();
        let rids = |v: &[&str]| v.iter().map(|x| Rid((*x).into())).collect::<Vec<_>>();
        r.set_published_video(
            "s",
            vec![PublishedVideo {
                track: TrackId(7),
                mid: Mid("1".into()),
                layers: rids(&["a", "b", "c"]),
                order: LayerOrder::Measured,
            }],
        );
        r.admit(SessionId(2), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        r.set_video_mids(SessionId(2), vec![Mid("v".into())]);
        let src = r
            .published_video_for(SessionId(2), &Mid("v".into()))
            .unwrap();
        assert_eq!(src.order, LayerOrder::Measured);
        assert!(
            r.published_video_for(SessionId(2), &Mid("x".into()))
                .is_none()
        );
        r.set_layer_order(p.key, TrackId(7), rids(&["c", "b", "a"]));
        let src = r
            .published_video_for(SessionId(2), &Mid("v".into()))
            .unwrap();
        assert_eq!(
            (src.layers.clone(), src.order),
            (rids(&["c", "b", "a"]), LayerOrder::Named)
        );
        // The publisher leaves: nothing to select from until the next one.
        r.remove(SessionId(1));
        assert!(
            r.published_video_for(SessionId(2), &Mid("v".into()))
                .is_none()
        );
    }

    #[test]
    fn layer_demand_is_kept_per_publisher_mid_and_watchers_hear_of_changes() {
        let mut r = reg(1, Placement::Stream);
        let p = r
            .admit(SessionId(1), "s", Role::Publisher, "e".into(), "u".into())
            .unwrap();
        let rids = |v: &[&str]| v.iter().map(|x| Rid((*x).into())).collect::<Vec<_>>();
        r.set_published_video(
            "s",
            vec![
                PublishedVideo {
                    track: TrackId(7),
                    mid: Mid("1".into()),
                    layers: rids(&["q", "h", "f"]),
                    order: LayerOrder::Named,
                },
                PublishedVideo {
                    track: TrackId(8),
                    mid: Mid("2".into()),
                    layers: Vec::new(),
                    order: LayerOrder::Named,
                },
            ],
        );
        let mut watch = r.layers_watch();
        watch.borrow_and_update();
        // Until the media plane says otherwise, every encoding is needed; sections without
        // simulcast are not listed.
        let all = r.layer_demand(SessionId(1)).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (
                all[0].mid.0.as_str(),
                all[0].active.clone(),
                all[0].inactive.clone()
            ),
            ("1", rids(&["q", "h", "f"]), vec![])
        );
        assert!(r.set_layer_demand(p.key, TrackId(7), Mid("1".into()), rids(&["q"])));
        assert!(watch.has_changed().unwrap());
        watch.borrow_and_update();
        let low = &r.layer_demand(SessionId(1)).unwrap()[0];
        assert_eq!(
            (low.active.clone(), low.inactive.clone()),
            (rids(&["q"]), rids(&["h", "f"]))
        );
        // The same demand again, another stream's track, an unknown stream: no change.
        assert!(!r.set_layer_demand(p.key, TrackId(7), Mid("1".into()), rids(&["q"])));
        assert!(!r.set_layer_demand(p.key, TrackId(99), Mid("1".into()), vec![]));
        assert!(!r.set_layer_demand(StreamKey(999), TrackId(7), Mid("1".into()), vec![]));
        assert!(!watch.has_changed().unwrap());
        // Nothing needed at all (no viewer): every encoding inactive.
        assert!(r.set_layer_demand(p.key, TrackId(7), Mid("1".into()), vec![]));
        assert_eq!(r.layer_demand(SessionId(1)).unwrap()[0].active, vec![]);
        // Viewers and unknown sessions have no layers resource; a publisher leaving ends it.
        r.admit(SessionId(2), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        assert!(r.layer_demand(SessionId(2)).is_none());
        assert!(r.layer_demand(SessionId(3)).is_none());
        watch.borrow_and_update();
        r.remove(SessionId(1));
        assert!(watch.has_changed().unwrap());
        assert!(r.layer_demand(SessionId(1)).is_none());
    }

    #[test]
    fn viewer_reports_and_degradation_notices_are_kept_per_session() {
        let mut r = reg(1, Placement::Stream);
        r.admit(SessionId(2), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        let stats = ViewerStats {
            estimate: Some(Bitrate(500_000)),
            rtt: None,
            allocated: Bitrate(300_000),
            desired: Bitrate(2_000_000),
            cap: Default::default(),
            degraded: false,
            tracks: Vec::new(),
        };
        r.set_stats(SessionId(2), stats.clone());
        r.set_stats(SessionId(9), stats.clone());
        assert!(r.set_degraded(SessionId(2), true, Bitrate(300_000), Bitrate(2_000_000)));
        assert!(!r.set_degraded(SessionId(9), true, Bitrate(1), Bitrate(2)));
        let rec = r.session(SessionId(2)).unwrap();
        assert_eq!(rec.degraded, Some((Bitrate(300_000), Bitrate(2_000_000))));
        assert!(rec.stats.as_ref().unwrap().degraded);
        assert_eq!(r.viewers().count(), 1);
        r.set_degraded(SessionId(2), false, Bitrate(2_000_000), Bitrate(2_000_000));
        assert_eq!(r.session(SessionId(2)).unwrap().degraded, None);
        r.set_quality(SessionId(2), crate::quality::find("low"));
        assert_eq!(
            r.session(SessionId(2)).unwrap().quality.map(|p| p.name),
            Some("low")
        );
    }

    #[test]
    fn full_shards_refuse_with_503() {
        let mut r = Registry::new(
            1,
            Placer {
                policy: Placement::Stream,
                max_per_shard: 1,
            },
        );
        r.admit(SessionId(1), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap();
        let e = r
            .admit(SessionId(2), "s", Role::Viewer, "e".into(), "u".into())
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 503);
        assert_eq!(e.retry_after, Some(5));
    }
}
