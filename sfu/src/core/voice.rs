//! Voice groups on a shard ([`VoiceCommand::SetGroup`]): a speech meter per published audio
//! track in a group, fed the RFC 6464 level of each packet on the ingress path, and each group's
//! active speaker, chosen every 100 ms and reported with [`Event::ActiveSpeaker`] when it
//! changes. The packet path reads one extension and updates fixed-size state; nothing allocates.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use slab::Slab;

use crate::control::{Event, VoiceCommand, VoiceGroup, VoiceTrackStats};
use crate::voice::{AudioLevel, Candidate, SpeakerSelector, SpeechMeter, SpeechState};
use crate::wire::rtp::RtpHeader;
use crate::{MediaKind, TrackId};

use super::ShardCore;
use super::track::Origin;

/// How often the groups' speakers are chosen.
const EVALUATE_EVERY: Duration = Duration::from_millis(100);

/// Why a voice command could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoiceError {
    #[error("track {0:?} is video; only audio tracks join voice groups")]
    NotAudio(TrackId),
    #[error("track {0:?} is already in another voice group")]
    OtherGroup(TrackId),
    #[error("the session has no mix stream with mid {0:?}")]
    NoMixStream(String),
    #[error("{0}")]
    Mix(String),
}

/// A track in a voice group.
#[derive(Debug)]
struct Member {
    track: TrackId,
    group: VoiceGroup,
    meter: SpeechMeter,
    /// The track on this shard, once published.
    tidx: Option<usize>,
    /// The meter's state at the last evaluation.
    state: SpeechState,
}

/// One group's tracks and speaker.
#[derive(Debug, Default)]
struct GroupEntry {
    members: Vec<usize>,
    selector: SpeakerSelector,
}

/// The voice state of a shard.
#[derive(Debug, Default)]
pub(super) struct VoiceState {
    members: Slab<Member>,
    by_track: FxHashMap<TrackId, usize>,
    groups: FxHashMap<VoiceGroup, GroupEntry>,
    next_eval: Option<Instant>,
    /// The mixes of this shard's groups.
    pub(super) mix: super::voice_mix::MixState,
}

impl ShardCore {
    /// Applies a [`VoiceCommand`]; a failure becomes [`Event::CommandFailed`] without a session.
    pub(super) fn handle_voice_command(&mut self, now: Instant, cmd: VoiceCommand) {
        let result = match cmd {
            VoiceCommand::SetGroup { track, group } => self.set_voice_group(now, track, group),
            VoiceCommand::MixInput { group, track, add } => self.set_mix_input(group, track, add),
            VoiceCommand::AddMixListener {
                group,
                session,
                extmap,
                spec,
                exclude,
            } => self.add_mix_listener(now, group, session, &extmap, &spec, &exclude),
            VoiceCommand::RemoveMixListener { session, mid } => {
                self.remove_mix_listener(session, &mid)
            }
        };
        if let Err(e) = result {
            tracing::warn!(shard = %self.shard, error = %e, "voice command refused");
            self.events.push_back(Event::CommandFailed {
                id: None,
                shard: self.shard,
                error: e.to_string(),
            });
        }
    }

    fn set_voice_group(
        &mut self,
        now: Instant,
        track: TrackId,
        group: Option<VoiceGroup>,
    ) -> Result<(), VoiceError> {
        let local = self.local_track(track);
        if let Some(t) = local
            && self.tracks[t].kind != MediaKind::Audio
        {
            return Err(VoiceError::NotAudio(track));
        }
        if let Some(&m) = self.voice.by_track.get(&track) {
            if Some(self.voice.members[m].group) == group {
                return Ok(());
            }
            if group.is_some() {
                return Err(VoiceError::OtherGroup(track));
            }
            self.leave_voice_group(now, m);
            return Ok(());
        }
        let Some(group) = group else {
            return Ok(());
        };
        let v = &mut self.voice;
        let m = v.members.insert(Member {
            track,
            group,
            meter: SpeechMeter::default(),
            tidx: local,
            state: SpeechState::SILENT,
        });
        v.by_track.insert(track, m);
        v.groups.entry(group).or_default().members.push(m);
        if let Some(t) = local {
            self.tracks[t].voice = Some(m);
        }
        v.next_eval.get_or_insert(now);
        Ok(())
    }

    /// Takes member `m` out of its group; a group left without members reports that nobody
    /// speaks (if someone did) and goes.
    fn leave_voice_group(&mut self, now: Instant, m: usize) {
        let member = self.voice.members.remove(m);
        self.voice.by_track.remove(&member.track);
        if let Some(t) = member.tidx
            && let Some(track) = self.tracks.get_mut(t)
        {
            track.voice = None;
        }
        let Some(g) = self.voice.groups.get_mut(&member.group) else {
            return;
        };
        g.members.retain(|&x| x != m);
        if g.members.is_empty() {
            let had_speaker = g.selector.current().is_some();
            self.voice.groups.remove(&member.group);
            if had_speaker {
                self.events.push_back(Event::ActiveSpeaker {
                    group: member.group,
                    shard: self.shard,
                    track: None,
                    level: -127,
                });
            }
        } else {
            // The others are evaluated at once, without this one.
            self.voice.next_eval = Some(now);
        }
    }

    /// The local (published here) track with this id, not simulcast.
    fn local_track(&self, track: TrackId) -> Option<usize> {
        let &t = self.tracks_by_id.get(&(track, 0))?;
        matches!(self.tracks[t].origin, Origin::Local { .. }).then_some(t)
    }

    /// A track was added to this shard: binds it to its voice group when it has one.
    pub(super) fn voice_track_attached(&mut self, tidx: usize) {
        let t = &self.tracks[tidx];
        if t.kind != MediaKind::Audio || !matches!(t.origin, Origin::Local { .. }) {
            return;
        }
        if let Some(&m) = self.voice.by_track.get(&t.id) {
            self.voice.members[m].tidx = Some(tidx);
            self.voice.members[m].meter.reset();
            self.tracks[tidx].voice = Some(m);
        }
    }

    /// A track left this shard: its voice membership stays (it may be published again), its
    /// meter forgets what it heard.
    pub(super) fn voice_track_removed(&mut self, tidx: usize, track: TrackId) {
        if let Some(&m) = self.voice.by_track.get(&track)
            && self.voice.members[m].tidx == Some(tidx)
        {
            let member = &mut self.voice.members[m];
            member.tidx = None;
            member.meter.reset();
        }
    }

    /// Ingress: a published audio packet (as cached, canonical extension ids) of track `tidx`.
    #[inline]
    pub(super) fn voice_on_packet(
        &mut self,
        now: Instant,
        tidx: usize,
        hdr: &RtpHeader,
        pkt: &[u8],
    ) {
        let track = &self.tracks[tidx];
        let Some(m) = track.voice else {
            return;
        };
        let Some(level) = hdr
            .extension(pkt, super::ext::AUDIO_LEVEL)
            .and_then(|d| AudioLevel::parse(d).ok())
        else {
            return;
        };
        let clock_rate = track.clock_rate;
        if let Some(member) = self.voice.members.get_mut(m) {
            member.meter.observe(now, hdr.timestamp, clock_rate, level);
        }
    }

    /// Chooses every group's speaker when due (called on the core's tick).
    pub(super) fn voice_tick(&mut self, now: Instant) {
        self.mix_tick(now);
        let Some(due) = self.voice.next_eval else {
            return;
        };
        if now < due {
            return;
        }
        if self.voice.members.is_empty() {
            self.voice.next_eval = None;
            return;
        }
        self.voice.next_eval = Some(now + EVALUATE_EVERY);
        let VoiceState {
            members, groups, ..
        } = &mut self.voice;
        for (_, m) in members.iter_mut() {
            m.state = if m.tidx.is_some() {
                m.meter.poll(now)
            } else {
                SpeechState::SILENT
            };
        }
        for (&group, g) in groups.iter_mut() {
            let candidates = g.members.iter().filter_map(|&m| {
                let m = members.get(m)?;
                m.tidx?;
                Some(Candidate {
                    track: m.track,
                    speaking: m.state.speaking,
                    score: m.state.score,
                    level: m.state.level,
                })
            });
            if let Some(change) = g.selector.update(now, candidates) {
                self.events.push_back(Event::ActiveSpeaker {
                    group,
                    shard: self.shard,
                    track: change.track,
                    level: change.level,
                });
            }
        }
    }

    /// The voice figures of a local track, when it is in a group.
    pub(super) fn voice_track_stats(&self, tidx: usize) -> Option<VoiceTrackStats> {
        let track = self.tracks.get(tidx)?;
        let member = self.voice.members.get(track.voice?)?;
        let active = self
            .voice
            .groups
            .get(&member.group)
            .is_some_and(|g| g.selector.current() == Some(member.track));
        Some(VoiceTrackStats {
            group: member.group,
            level: member.state.level,
            speaking: member.state.speaking,
            active,
        })
    }
}
