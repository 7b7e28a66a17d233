//! The channel mix (`POST /sessions/{id}/subscribe` with `{"mix": true}`): one Opus stream with
//! every audio producer of the channel except the listener's own. The mixer runs on the shard of
//! each listener's receive transport (a channel's transports share one while it fits); every
//! audio producer of the channel is an input there (its packets linked across from another shard
//! when it publishes elsewhere). This file keeps those routes as listeners and producers come
//! and go, and returns the shard commands.

use std::time::Instant;

use sfu::control::{Command, ExtMap, SubscribeSpec, VoiceCommand};
use sfu::{MediaKind, ShardId, StreamKey, TrackId};
use uuid::Uuid;

use super::rtp_types::RtpParameters;
use super::session::{Commands, Local, MediaSession, voice_group};

/// A session's subscription to its channel's mix.
#[derive(Debug, Clone)]
pub struct MixConsumer {
    pub id: Uuid,
    pub spec: SubscribeSpec,
    pub extmap: ExtMap,
    pub rtp_parameters: RtpParameters,
    pub created: Instant,
}

/// The audio producers of `channel` as (track, stream, shard of their send transport).
fn channel_audio(local: &Local, channel: Uuid) -> Vec<(TrackId, StreamKey, ShardId)> {
    local
        .sessions
        .values()
        .filter(|s| s.channel_id == channel)
        .flat_map(|s| {
            s.producers
                .iter()
                .filter(|p| p.kind() == MediaKind::Audio)
                .map(|p| (p.track(), p.produced.spec.stream, s.send.shard))
        })
        .collect()
}

/// The tracks a session publishes into its own mix (left out of what it hears).
fn own_audio(s: &MediaSession) -> Vec<TrackId> {
    s.producers
        .iter()
        .filter(|p| p.kind() == MediaKind::Audio)
        .map(|p| p.track())
        .collect()
}

/// The command that (re)starts a session's mix stream on its receive transport's shard.
pub fn add_listener(s: &MediaSession) -> Option<(ShardId, Command)> {
    let m = s.mix.as_ref()?;
    Some((
        s.recv.shard,
        Command::Voice(VoiceCommand::AddMixListener {
            group: voice_group(s.channel_id),
            session: s.recv.shard_session,
            extmap: m.extmap,
            spec: m.spec.clone(),
            exclude: own_audio(s),
        }),
    ))
}

fn input(shard: ShardId, channel: Uuid, track: TrackId, add: bool) -> (ShardId, Command) {
    (
        shard,
        Command::Voice(VoiceCommand::MixInput {
            group: voice_group(channel),
            track,
            add,
        }),
    )
}

impl Local {
    /// Subscribes a session to its channel's mix.
    pub fn add_mix(&mut self, session: Uuid, mix: MixConsumer) -> Commands {
        let Some(s) = self.sessions.get(&session) else {
            return Vec::new();
        };
        let (channel, shard) = (s.channel_id, s.recv.shard);
        let mut out = Vec::new();
        let n = self.mix_shards.entry((channel, shard)).or_insert(0);
        *n += 1;
        if *n == 1 {
            // The first listener here: every audio producer of the channel feeds this mixer.
            for (track, stream, from) in channel_audio(self, channel) {
                self.link(stream, from, shard, &mut out);
                out.push(input(shard, channel, track, true));
            }
        }
        let Some(s) = self.sessions.get_mut(&session) else {
            return out;
        };
        s.mix = Some(mix);
        if s.recv.is_running() {
            out.extend(add_listener(s));
        }
        out
    }

    /// Ends a session's mix subscription.
    pub fn remove_mix(&mut self, session: Uuid) -> Option<(MixConsumer, Commands)> {
        let s = self.sessions.get_mut(&session)?;
        let mix = s.mix.take()?;
        let (channel, recv) = (s.channel_id, s.recv.clone());
        let mut out = Vec::new();
        if recv.is_running() {
            out.push((
                recv.shard,
                Command::Voice(VoiceCommand::RemoveMixListener {
                    session: recv.shard_session,
                    mid: mix.spec.mid.clone(),
                }),
            ));
        }
        let key = (channel, recv.shard);
        if let Some(n) = self.mix_shards.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.mix_shards.remove(&key);
                for (track, stream, from) in channel_audio(self, channel) {
                    out.push(input(recv.shard, channel, track, false));
                    self.unlink_stream(stream, from, recv.shard, &mut out);
                }
            }
        }
        Some((mix, out))
    }

    /// An audio producer was added to `session`: it feeds every mixer of its channel, and the
    /// session's own mix stream leaves it out.
    pub fn mix_producer_added(&mut self, session: Uuid, track: TrackId) -> Commands {
        let Some(s) = self.sessions.get(&session) else {
            return Vec::new();
        };
        let (channel, from) = (s.channel_id, s.send.shard);
        let Some(stream) = s
            .producers
            .iter()
            .find(|p| p.track() == track && p.kind() == MediaKind::Audio)
            .map(|p| p.produced.spec.stream)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let shards: Vec<ShardId> = self
            .mix_shards
            .keys()
            .filter(|(c, _)| *c == channel)
            .map(|&(_, sh)| sh)
            .collect();
        for shard in shards {
            self.link(stream, from, shard, &mut out);
            out.push(input(shard, channel, track, true));
        }
        if let Some(s) = self.sessions.get(&session)
            && s.recv.is_running()
        {
            // Sent again, the listener's exclusions change in place.
            out.extend(add_listener(s));
        }
        out
    }

    /// An audio producer of `channel` (published on `from`) went: its mixers stop taking it.
    pub fn mix_producer_removed(
        &mut self,
        channel: Uuid,
        track: TrackId,
        stream: StreamKey,
        from: ShardId,
    ) -> Commands {
        let mut out = Vec::new();
        let shards: Vec<ShardId> = self
            .mix_shards
            .keys()
            .filter(|(c, _)| *c == channel)
            .map(|&(_, sh)| sh)
            .collect();
        for shard in shards {
            out.push(input(shard, channel, track, false));
            self.unlink_stream(stream, from, shard, &mut out);
        }
        out
    }
}
