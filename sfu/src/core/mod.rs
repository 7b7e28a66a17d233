//! The sans-IO shard core: sessions, tracks and subscriptions of one shard, driven by `handle_*`
//! and drained by `poll_*` (DESIGN.md "The sans-IO core"). It never touches a socket or a clock.

mod allocation;
mod commands;
pub mod config;
mod control_queue;
mod cross_shard;
mod dynacast;
mod egress;
pub mod ext;
mod feedback;
mod ingress;
mod layer_rate;
mod paced;
mod payload_edit;
mod session;
mod session_tracks;
mod shard_msg;
mod subscription;
mod track;
mod viewer_bwe;
mod viewer_stats;
mod voice;
mod voice_mix;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rustc_hash::FxHashMap;
use slab::Slab;

pub use config::CoreConfig;
pub use session_tracks::{TrackError, merge_extmap};
pub use shard_msg::{CROSS_SHARD_MTU, MediaPacket, ShardMsg};
pub use voice::VoiceError;

use crate::control::Event;
use crate::dtls::DtlsCert;
use crate::metrics::{CoreCounters, DropReason, Population};
use crate::shard::mesh::MeshPort;
use crate::{SessionId, ShardId, StreamKey, TrackId};

use control_queue::ControlQueue;
use session::Session;
use subscription::Subscription;
use track::Track;

/// Most packets of one track fanned out together (see `egress::run_fanout`).
const MAX_RUN: usize = 16;

/// Consecutive packets of one track waiting to be fanned out to its subscribers.
#[derive(Debug, Clone, Copy)]
struct FanoutJob {
    track: usize,
    /// Extended sequence number of the run's first packet.
    first_ext: u64,
    /// Packets in the run (`first_ext ..first_ext + count`), at most [`MAX_RUN`].
    count: u16,
    /// Next subscriber (position in the track's list) to serve.
    next: usize,
}

/// What a shard knows about one stream.
#[derive(Debug, Default)]
struct StreamEntry {
    /// Source tracks on this shard: the local publisher's, or mirrors.
    tracks: Vec<usize>,
    /// Viewers' media sections on this shard.
    subs: Vec<usize>,
    /// Other shards the local publisher's packets go to.
    links: Vec<ShardId>,
}

impl StreamEntry {
    fn is_empty(&self) -> bool {
        self.tracks.is_empty() && self.subs.is_empty() && self.links.is_empty()
    }
}

/// The protocol state of one shard.
pub struct ShardCore {
    shard: ShardId,
    cfg: CoreConfig,
    cert: Arc<DtlsCert>,
    sessions: Slab<Session>,
    tracks: Slab<Track>,
    subs: Slab<Subscription>,
    by_id: FxHashMap<SessionId, usize>,
    by_ufrag: FxHashMap<Vec<u8>, usize>,
    by_addr: FxHashMap<std::net::SocketAddr, usize>,
    /// Tracks by id and simulcast slot (0 when not simulcast).
    tracks_by_id: FxHashMap<(TrackId, u8), usize>,
    streams: FxHashMap<StreamKey, StreamEntry>,
    control: ControlQueue,
    fanout: VecDeque<FanoutJob>,
    mesh: Option<MeshPort>,
    events: VecDeque<Event>,
    counters: CoreCounters,
    next_tick: Instant,
    rng: u64,
    shutting_down: bool,
    /// Scratch for building packets before they are copied into a slot.
    scratch: Box<[u8; crate::io::SLOT_SIZE]>,
    nack_scratch: Box<[crate::SeqNo; 256]>,
    /// Viewer sessions whose pacer has something to send: held-back video, probe clusters or
    /// trial padding (see `viewer_bwe`).
    pacing: Vec<usize>,
    /// When the next of them is due.
    pacing_wake: Option<Instant>,
    /// Dynacast: the demand for local simulcast tracks, what was told the owners of mirrored
    /// ones, the tracks whose demand may have changed, and when an encoding may turn off.
    demand: FxHashMap<TrackId, dynacast::DemandEntry>,
    mirror_demand: FxHashMap<TrackId, dynacast::MirrorDemand>,
    demand_dirty: Vec<TrackId>,
    demand_wake: Option<Instant>,
    /// Voice groups: speech meters, active speakers and mixes (see `voice`).
    voice: voice::VoiceState,
    /// Wall-clock NTP time of the core's instants, for the sender reports of the streams it
    /// makes itself (the voice mix); forwarded streams take the publisher's.
    ntp: crate::stream::NtpClock,
}

impl std::fmt::Debug for ShardCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardCore")
            .field("shard", &self.shard)
            .field("sessions", &self.sessions.len())
            .field("tracks", &self.tracks.len())
            .field("subs", &self.subs.len())
            .finish()
    }
}

impl ShardCore {
    /// A core for shard `shard`. `now` and `wall_clock` are the same moment on the monotonic and
    /// the wall clock; `mesh` connects it to the other shards (None for a single shard).
    pub fn new(
        shard: ShardId,
        cfg: CoreConfig,
        cert: Arc<DtlsCert>,
        mesh: Option<MeshPort>,
        now: Instant,
        wall_clock: SystemTime,
    ) -> Self {
        let seed = wall_clock
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ ((shard.0 as u64) << 48);
        ShardCore {
            shard,
            control: ControlQueue::new(cfg.control_queue_slots),
            fanout: VecDeque::with_capacity(cfg.fanout_queue_packets),
            cfg,
            cert,
            sessions: Slab::new(),
            tracks: Slab::new(),
            subs: Slab::new(),
            by_id: FxHashMap::default(),
            by_ufrag: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            tracks_by_id: FxHashMap::default(),
            streams: FxHashMap::default(),
            mesh,
            events: VecDeque::new(),
            counters: CoreCounters::default(),
            next_tick: now,
            rng: seed | 1,
            shutting_down: false,
            scratch: Box::new([0u8; crate::io::SLOT_SIZE]),
            nack_scratch: Box::new([crate::SeqNo(0); 256]),
            pacing: Vec::with_capacity(64),
            pacing_wake: None,
            demand: FxHashMap::default(),
            mirror_demand: FxHashMap::default(),
            demand_dirty: Vec::with_capacity(64),
            demand_wake: None,
            voice: voice::VoiceState::default(),
            ntp: crate::stream::NtpClock::new(now, wall_clock),
        }
    }

    pub fn shard(&self) -> ShardId {
        self.shard
    }

    pub fn counters(&self) -> &CoreCounters {
        &self.counters
    }

    /// Sessions, publishing sessions and viewing sessions on this shard.
    pub fn population(&self) -> Population {
        let mut p = Population {
            sessions: self.sessions.len() as u64,
            ..Population::default()
        };
        for (_, s) in &self.sessions {
            if !s.tracks.is_empty() {
                p.publishers += 1;
            }
            if !s.subs.is_empty() {
                p.viewers += 1;
            }
        }
        p
    }

    /// The next event for signaling.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next run; None when the shard is idle.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.sessions.is_empty() && self.tracks.is_empty() {
            None
        } else {
            Some(
                self.pacing_wake
                    .map_or(self.next_tick, |p| p.min(self.next_tick)),
            )
        }
    }

    /// Whether `poll_transmit` has datagrams to give.
    pub fn has_pending_transmit(&self) -> bool {
        !self.control.is_empty() || !self.fanout.is_empty()
    }

    /// The shard has shut down and every session is closed.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down && self.sessions.is_empty()
    }

    /// Wakes the shards this one queued messages for (the loop calls it once per iteration).
    pub fn wake_peers(&mut self) {
        if let Some(m) = self.mesh.as_mut() {
            m.wake_peers();
        }
    }

    /// Drains the messages other shards queued for this one.
    pub fn poll_mesh(&mut self, now: Instant, max: usize) -> usize {
        let Some(mut mesh) = self.mesh.take() else {
            return 0;
        };
        let n = mesh.recv(max, |from, msg| self.handle_shard_msg(now, from, msg));
        self.mesh = Some(mesh);
        n
    }

    #[inline]
    fn drop_packet(&mut self, reason: DropReason) {
        self.counters.drop(reason);
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: unpredictability is not needed, only distinct SSRCs and offsets.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
