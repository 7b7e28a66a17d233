//! The media sessions of this node and what they hold: a send and a receive transport (each one
//! shard session, started when the client connects it), producers on the send transport,
//! consumers on the receive transport, and the cross-shard links consumers need. Every change
//! returns the shard commands that carry it out, in the order they must be sent.

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sfu::control::{
    Command, ExtMap, IceParams, SessionSpec, SubscribeSpec, TrackCommand, VoiceCommand, VoiceGroup,
};
use sfu::dtls::Fingerprint;
use sfu::{MediaKind, SessionId, ShardId, StreamKey, TrackId};
use uuid::Uuid;

use super::presets::{AudioQuality, VideoQuality};
use super::produce::Produced;
use super::rtp_types::RtpParameters;
use crate::sdp::Candidate;

/// Shard commands, in the order they must be sent.
pub type Commands = Vec<(ShardId, Command)>;

/// Consumers, as (their session, their id).
pub type ConsumerRefs = Vec<(Uuid, Uuid)>;

/// The seed's session `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionType {
    /// A voice-channel session: publishes audio only.
    Audio,
    /// A video (camera or stream) session: publishes audio and video.
    Video,
}

impl SessionType {
    pub fn name(self) -> &'static str {
        match self {
            SessionType::Audio => "audio",
            SessionType::Video => "video",
        }
    }
}

/// Which way a transport carries media (seen from the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The client produces on it.
    Send,
    /// The client consumes on it.
    Recv,
}

/// Where a transport is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportState {
    /// Offered to the client; the shard does not know it yet.
    New,
    /// The client sent its DTLS parameters; the shard runs the session.
    Connecting,
    /// The shard reported ICE and DTLS done.
    Connected,
    /// The shard session ended (the client closed it, consent lapsed, DTLS failed); it cannot
    /// be connected again.
    Closed,
}

/// One transport: one shard session.
#[derive(Debug, Clone)]
pub struct Transport {
    pub id: Uuid,
    pub shard_session: SessionId,
    pub shard: ShardId,
    pub ice: IceParams,
    pub candidates: Vec<Candidate>,
    pub state: TransportState,
}

impl Transport {
    /// Checks that a request may use this transport (`send`/`receive` `role`, for `purpose`):
    /// the transport it names, if any, is this one (`422`), and it has not closed (`409`).
    pub fn usable(
        &self,
        named: Option<Uuid>,
        role: &str,
        purpose: &str,
    ) -> Result<(), crate::problem::Problem> {
        use crate::problem::Problem;
        if let Some(t) = named
            && t != self.id
        {
            return Err(Problem::unprocessable(format!(
                "transport {t} is not this session's {role} transport {}",
                self.id
            )));
        }
        if self.state == TransportState::Closed {
            return Err(Problem::conflict(format!(
                "the {role} transport has closed: create a new session to {purpose}"
            )));
        }
        Ok(())
    }
}

impl Transport {
    /// Whether the shard has (or is about to have) its session.
    pub fn is_running(&self) -> bool {
        matches!(
            self.state,
            TransportState::Connecting | TransportState::Connected
        )
    }
}

/// A published track.
#[derive(Debug, Clone)]
pub struct Producer {
    pub id: Uuid,
    pub produced: Produced,
    pub created: Instant,
}

impl Producer {
    pub fn kind(&self) -> MediaKind {
        self.produced.spec.kind
    }
    pub fn track(&self) -> TrackId {
        self.produced.spec.track
    }
}

/// A track this session receives.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub id: Uuid,
    /// The producer (track) it receives, and the shard of that producer's send transport.
    pub producer: Uuid,
    pub producer_shard: ShardId,
    pub spec: SubscribeSpec,
    pub extmap: ExtMap,
    pub rtp_parameters: RtpParameters,
    pub created: Instant,
}

impl Consumer {
    pub fn kind(&self) -> MediaKind {
        self.spec.kind
    }
}

/// A media session (`POST /sessions`).
#[derive(Debug, Clone)]
pub struct MediaSession {
    pub id: Uuid,
    pub kind: SessionType,
    pub channel_id: Uuid,
    pub user_id: String,
    pub created: Instant,
    pub created_at: String,
    pub audio: AudioQuality,
    pub video: Option<VideoQuality>,
    pub send: Transport,
    pub recv: Transport,
    pub producers: Vec<Producer>,
    pub consumers: Vec<Consumer>,
    /// The next mid for a consumer (mids of the receive transport).
    pub next_mid: u32,
    /// Bytes of each track at the last stats request (for its bit rate).
    pub rate_marks: HashMap<(Direction, String), (Instant, u64)>,
    /// The channel's mix, when the session takes it.
    pub mix: Option<super::mix::MixConsumer>,
}

impl MediaSession {
    pub fn transport(&self, d: Direction) -> &Transport {
        match d {
            Direction::Send => &self.send,
            Direction::Recv => &self.recv,
        }
    }
    pub fn transport_mut(&mut self, d: Direction) -> &mut Transport {
        match d {
            Direction::Send => &mut self.send,
            Direction::Recv => &mut self.recv,
        }
    }
    /// The transport with this id.
    pub fn transport_by_id(&self, id: Uuid) -> Option<Direction> {
        [Direction::Send, Direction::Recv]
            .into_iter()
            .find(|&d| self.transport(d).id == id)
    }
    /// Whether either transport completed ICE and DTLS.
    pub fn any_connected(&self) -> bool {
        self.send.state == TransportState::Connected || self.recv.state == TransportState::Connected
    }
}

/// Why a transport cannot be connected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("no session {0}")]
    NoSession(Uuid),
    #[error("the {0:?} transport is already connected")]
    AlreadyConnected(Direction),
    #[error("the {0:?} transport has closed; create a new session")]
    Closed(Direction),
}

fn add_publish(t: &Transport, p: &Producer) -> (ShardId, Command) {
    (
        t.shard,
        Command::Tracks(TrackCommand::AddPublish {
            session: t.shard_session,
            extmap: p.produced.extmap,
            spec: p.produced.spec.clone(),
        }),
    )
}

/// The voice group of a channel: every audio producer of the channel is in it.
pub fn voice_group(channel: Uuid) -> VoiceGroup {
    VoiceGroup(channel.as_u128())
}

/// The channel of a voice group.
pub fn channel_of(group: VoiceGroup) -> Uuid {
    Uuid::from_u128(group.0)
}

/// Puts an audio producer into (or takes it out of) its channel's voice group on the shard of
/// its send transport; None for video.
fn voice_membership(
    t: &Transport,
    p: &Producer,
    channel: Uuid,
    join: bool,
) -> Option<(ShardId, Command)> {
    (p.kind() == MediaKind::Audio).then(|| {
        (
            t.shard,
            Command::Voice(VoiceCommand::SetGroup {
                track: p.track(),
                group: join.then(|| voice_group(channel)),
            }),
        )
    })
}

fn add_subscribe(t: &Transport, c: &Consumer) -> (ShardId, Command) {
    (
        t.shard,
        Command::Tracks(TrackCommand::AddSubscribe {
            session: t.shard_session,
            extmap: c.extmap,
            spec: c.spec.clone(),
        }),
    )
}

/// What is kept of a closed session for a while.
#[derive(Debug, Clone)]
pub struct ClosedSession {
    pub user_id: String,
    pub reason: String,
    pub duration: u64,
    pub at: Instant,
}

fn other(d: Direction) -> Direction {
    match d {
        Direction::Send => Direction::Recv,
        Direction::Recv => Direction::Send,
    }
}

/// The media sessions of this node.
#[derive(Debug)]
pub struct Local {
    pub sessions: HashMap<Uuid, MediaSession>,
    /// Transport (shard session) → its media session.
    pub by_shard_session: HashMap<SessionId, Uuid>,
    /// Producer → its session.
    pub producers: HashMap<Uuid, Uuid>,
    /// Sessions closed lately, so that a `DELETE` arriving after the server closed the session
    /// (the client closed its transports first) still succeeds.
    pub closed: HashMap<Uuid, ClosedSession>,
    /// Consumers per (producer's stream, consumer's shard) where the shards differ.
    links: HashMap<(StreamKey, ShardId), usize>,
    next_key: u64,
    /// The active speaker of each channel.
    pub speakers: super::speakers::Speakers,
    /// Mix listeners per (channel, shard of their receive transport).
    pub mix_shards: HashMap<(Uuid, ShardId), usize>,
}

/// Stream keys of producers have the top bit set, so they never meet the registry's (counted
/// from 1 for WHIP/WHEP and stream-service streams).
pub const PRODUCER_KEY_BASE: u64 = 1 << 63;

impl Default for Local {
    fn default() -> Self {
        Local {
            sessions: HashMap::new(),
            by_shard_session: HashMap::new(),
            producers: HashMap::new(),
            closed: HashMap::new(),
            links: HashMap::new(),
            next_key: PRODUCER_KEY_BASE,
            speakers: super::speakers::Speakers::default(),
            mix_shards: HashMap::new(),
        }
    }
}

impl Local {
    /// A fresh stream key for a producer.
    pub fn next_stream_key(&mut self) -> StreamKey {
        self.next_key += 1;
        StreamKey(self.next_key)
    }

    pub fn insert(&mut self, s: MediaSession) {
        self.by_shard_session.insert(s.send.shard_session, s.id);
        self.by_shard_session.insert(s.recv.shard_session, s.id);
        self.sessions.insert(s.id, s);
    }

    /// Sessions of `user` (in `channel`, when given).
    pub fn of_user(&self, user: &str, channel: Option<Uuid>) -> Vec<Uuid> {
        self.sessions
            .values()
            .filter(|s| s.user_id == user && channel.is_none_or(|c| c == s.channel_id))
            .map(|s| s.id)
            .collect()
    }

    /// The producer publishing shard track `track` in `channel`, as (session, producer).
    pub fn producer_of_track(
        &self,
        channel: Uuid,
        track: TrackId,
    ) -> Option<(&MediaSession, &Producer)> {
        self.sessions
            .values()
            .filter(|s| s.channel_id == channel)
            .find_map(|s| {
                s.producers
                    .iter()
                    .find(|p| p.track() == track)
                    .map(|p| (s, p))
            })
    }

    /// The transport a shard session is, as (media session, direction).
    pub fn transport_of(&self, id: SessionId) -> Option<(Uuid, Direction)> {
        let sid = *self.by_shard_session.get(&id)?;
        let s = self.sessions.get(&sid)?;
        let d = if s.send.shard_session == id {
            Direction::Send
        } else {
            Direction::Recv
        };
        Some((sid, d))
    }

    /// Starts a transport on its shard with the peer's certificate fingerprint, with the
    /// tracks that were added before it connected.
    pub fn connect(
        &mut self,
        session: Uuid,
        d: Direction,
        remote_fingerprint: Fingerprint,
    ) -> Result<Commands, ConnectError> {
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ConnectError::NoSession(session))?;
        let t = s.transport_mut(d);
        match t.state {
            TransportState::New => {}
            TransportState::Closed => return Err(ConnectError::Closed(d)),
            _ => return Err(ConnectError::AlreadyConnected(d)),
        }
        t.state = TransportState::Connecting;
        let t = s.transport(d).clone();
        let spec = SessionSpec {
            id: t.shard_session,
            local_ice: t.ice.clone(),
            // The client's ufrag is never signalled; the shard learns it from the first check.
            remote_ice: IceParams {
                ufrag: String::new(),
                pwd: String::new(),
            },
            remote_fingerprint,
            extmap: ExtMap::default(),
            publish: Vec::new(),
            subscribe: Vec::new(),
        };
        let mut out = vec![(t.shard, Command::AddSession(Box::new(spec)))];
        // The session's video preset caps what its consumers receive.
        if d == Direction::Recv
            && let Some(cap) = s.video.and_then(super::presets::video_cap)
        {
            out.push((
                t.shard,
                Command::SetQuality {
                    session: t.shard_session,
                    cap,
                },
            ));
        }
        match d {
            Direction::Send => {
                for p in &s.producers {
                    out.push(add_publish(&t, p));
                    out.extend(voice_membership(&t, p, s.channel_id, true));
                }
            }
            Direction::Recv => {
                out.extend(s.consumers.iter().map(|c| add_subscribe(&t, c)));
                out.extend(super::mix::add_listener(s));
            }
        }
        Ok(out)
    }

    /// Adds a producer to a session's send transport.
    pub fn add_producer(&mut self, session: Uuid, p: Producer) -> Commands {
        let Some(s) = self.sessions.get_mut(&session) else {
            return Vec::new();
        };
        let out = if s.send.is_running() {
            let mut out = vec![add_publish(&s.send, &p)];
            out.extend(voice_membership(&s.send, &p, s.channel_id, true));
            out
        } else {
            Vec::new()
        };
        self.producers.insert(p.id, session);
        let audio = (p.kind() == MediaKind::Audio).then(|| p.track());
        s.producers.push(p);
        let mut out = out;
        if let Some(track) = audio {
            out.extend(self.mix_producer_added(session, track));
        }
        out
    }

    /// Adds a consumer to a session's receive transport, linking the producer's shard to it.
    pub fn add_consumer(&mut self, session: Uuid, c: Consumer) -> Commands {
        let Some(s) = self.sessions.get_mut(&session) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let here = s.recv.shard;
        if c.producer_shard != here {
            let n = self.links.entry((c.spec.stream, here)).or_insert(0);
            *n += 1;
            if *n == 1 {
                out.push((
                    c.producer_shard,
                    Command::LinkShard {
                        stream: c.spec.stream,
                        shard: here,
                        linked: true,
                    },
                ));
            }
        }
        if s.recv.is_running() {
            out.push(add_subscribe(&s.recv, &c));
        }
        s.consumers.push(c);
        out
    }

    /// Counts one more user of `stream`'s packets on shard `to` (published on `from`); the
    /// first one links the shards.
    pub(super) fn link(
        &mut self,
        stream: StreamKey,
        from: ShardId,
        to: ShardId,
        out: &mut Commands,
    ) {
        if from == to {
            return;
        }
        let n = self.links.entry((stream, to)).or_insert(0);
        *n += 1;
        if *n == 1 {
            out.push((
                from,
                Command::LinkShard {
                    stream,
                    shard: to,
                    linked: true,
                },
            ));
        }
    }

    /// Counts one user of `stream`'s packets on `to` less; the last one unlinks the shards.
    pub(super) fn unlink_stream(
        &mut self,
        stream: StreamKey,
        from: ShardId,
        to: ShardId,
        out: &mut Commands,
    ) {
        if from == to {
            return;
        }
        let key = (stream, to);
        if let Some(n) = self.links.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.links.remove(&key);
                out.push((
                    from,
                    Command::LinkShard {
                        stream,
                        shard: to,
                        linked: false,
                    },
                ));
            }
        }
    }

    fn unlink(&mut self, c: &Consumer, here: ShardId, out: &mut Commands) {
        if c.producer_shard == here {
            return;
        }
        let key = (c.spec.stream, here);
        if let Some(n) = self.links.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.links.remove(&key);
                out.push((
                    c.producer_shard,
                    Command::LinkShard {
                        stream: c.spec.stream,
                        shard: here,
                        linked: false,
                    },
                ));
            }
        }
    }

    /// Removes a consumer.
    pub fn remove_consumer(
        &mut self,
        session: Uuid,
        consumer: Uuid,
    ) -> Option<(Consumer, Commands)> {
        let s = self.sessions.get_mut(&session)?;
        let pos = s.consumers.iter().position(|c| c.id == consumer)?;
        let c = s.consumers.remove(pos);
        let recv = s.recv.clone();
        let mut out = Vec::new();
        if recv.is_running() {
            out.push((
                recv.shard,
                Command::Tracks(TrackCommand::RemoveSubscribe {
                    session: recv.shard_session,
                    mid: c.spec.mid.clone(),
                }),
            ));
        }
        self.unlink(&c, recv.shard, &mut out);
        Some((c, out))
    }

    /// Removes a producer and every consumer of it (in any session of this node). Returns the
    /// producer, the commands, and the removed consumers as (session, consumer).
    pub fn remove_producer(
        &mut self,
        session: Uuid,
        producer: Uuid,
    ) -> Option<(Producer, Commands, ConsumerRefs)> {
        let s = self.sessions.get(&session)?;
        let pos = s.producers.iter().position(|p| p.id == producer)?;
        let consumers: Vec<(Uuid, Uuid)> = self
            .sessions
            .values()
            .flat_map(|o| {
                o.consumers
                    .iter()
                    .filter(|c| c.producer == producer)
                    .map(|c| (o.id, c.id))
            })
            .collect();
        let mut out = Vec::new();
        for &(sid, cid) in &consumers {
            if let Some((_, cmds)) = self.remove_consumer(sid, cid) {
                out.extend(cmds);
            }
        }
        self.producers.remove(&producer);
        let s = self.sessions.get_mut(&session)?;
        let p = s.producers.remove(pos);
        if s.send.is_running() {
            out.push((
                s.send.shard,
                Command::Tracks(TrackCommand::RemovePublish {
                    session: s.send.shard_session,
                    track: p.track(),
                }),
            ));
        }
        // The shard keeps a membership past its track's end (the track may come back), so it
        // is always taken back, whether the transport still runs or not.
        if s.send.state != TransportState::New {
            out.extend(voice_membership(&s.send, &p, s.channel_id, false));
        }
        if p.kind() == MediaKind::Audio {
            let (channel, from) = (s.channel_id, s.send.shard);
            out.extend(self.mix_producer_removed(channel, p.track(), p.produced.spec.stream, from));
        }
        Some((p, out, consumers))
    }

    /// A transport's shard session ended: its tracks end with it (a send transport's producers
    /// and their consumers everywhere; a receive transport's consumers). Returns the commands,
    /// the producers removed, and whether the session has no running transport left (it ends
    /// then too).
    pub fn end_transport(
        &mut self,
        session: Uuid,
        d: Direction,
    ) -> Option<(Commands, Vec<Producer>, bool)> {
        let s = self.sessions.get_mut(&session)?;
        s.transport_mut(d).state = TransportState::Closed;
        let done = !s.transport(other(d)).is_running();
        let (producers, consumers): (Vec<Uuid>, Vec<Uuid>) = match d {
            Direction::Send => (s.producers.iter().map(|p| p.id).collect(), Vec::new()),
            Direction::Recv => (Vec::new(), s.consumers.iter().map(|c| c.id).collect()),
        };
        let mut out = Vec::new();
        let mut removed = Vec::new();
        // The ended shard session needs no removals, only the links and other sessions do
        // (commands toward a closed transport are not produced: it no longer runs).
        for c in consumers {
            if let Some((_, cmds)) = self.remove_consumer(session, c) {
                out.extend(cmds);
            }
        }
        if d == Direction::Recv
            && let Some((_, cmds)) = self.remove_mix(session)
        {
            out.extend(cmds);
        }
        for p in producers {
            if let Some((p, cmds, _)) = self.remove_producer(session, p) {
                out.extend(cmds);
                removed.push(p);
            }
        }
        Some((out, removed, done))
    }

    /// Removes a session with its producers (and their consumers elsewhere) and consumers, and
    /// its shard sessions. Returns the session as it was (with its producers), the commands,
    /// and the consumers removed from other sessions.
    pub fn remove_session(
        &mut self,
        session: Uuid,
    ) -> Option<(MediaSession, Commands, ConsumerRefs)> {
        let snapshot = self.sessions.get(&session)?.clone();
        let mut out = Vec::new();
        let mut elsewhere = Vec::new();
        for c in &snapshot.consumers {
            if let Some((_, cmds)) = self.remove_consumer(session, c.id) {
                // The shard session goes as a whole below; only the links matter.
                out.extend(
                    cmds.into_iter()
                        .filter(|(_, c)| matches!(c, Command::LinkShard { .. })),
                );
            }
        }
        if let Some((_, cmds)) = self.remove_mix(session) {
            // The shard session goes as a whole below; the mixer's inputs and links matter.
            out.extend(cmds.into_iter().filter(|(_, c)| {
                !matches!(c, Command::Voice(VoiceCommand::RemoveMixListener { .. }))
            }));
        }
        for p in &snapshot.producers {
            if let Some((_, cmds, gone)) = self.remove_producer(session, p.id) {
                out.extend(cmds.into_iter().filter(|(_, c)| {
                    !matches!(c, Command::Tracks(TrackCommand::RemovePublish { .. }))
                }));
                elsewhere.extend(gone.into_iter().filter(|(s, _)| *s != session));
            }
        }
        let s = self.sessions.remove(&session)?;
        for t in [&s.send, &s.recv] {
            self.by_shard_session.remove(&t.shard_session);
            if t.is_running() {
                out.push((t.shard, Command::RemoveSession(t.shard_session)));
            }
        }
        Some((snapshot, out, elsewhere))
    }
}

#[cfg(test)]
mod tests;
