//! The Opus mix of voice groups on a shard ([`VoiceCommand::MixInput`],
//! [`VoiceCommand::AddMixListener`]): a [`Mixer`] per group with listeners here, fed the Opus
//! payloads of the group's tracks on this shard (published here, or mirrored from the shard that
//! publishes them), ticking every 20 ms on the core's timer; each listener's session receives its
//! output as one RTP stream with its own SSRC, continuous sequence numbers and timestamps, the
//! mix's RFC 6464 level, SRTP, and a sender report every report interval (RFC 3550 §6.4.1, on
//! the core's NTP clock); the listener's receiver reports about it give its loss, jitter and
//! round-trip time. A packet and a tick allocate nothing.
//!
//! [`VoiceCommand::MixInput`]: crate::control::VoiceCommand::MixInput
//! [`VoiceCommand::AddMixListener`]: crate::control::VoiceCommand::AddMixListener

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use slab::Slab;

use crate::control::{ExtMap, SubscribeSpec, TrackDirection, TrackStats, VoiceGroup};
use crate::metrics::DropReason;
use crate::stream::SendStats;
use crate::voice::mixer::{FRAME, SAMPLE_RATE};
use crate::voice::{Mixer, MixerConfig};
use crate::wire::rtcp::{self, SenderInfo};
use crate::wire::rtp::{self, RtpFields, RtpHeader};
use crate::{Codec, MediaKind, Mid, PayloadType, SeqNo, SessionId, Ssrc, TrackId};

use super::ShardCore;
use super::shard_msg::MediaPacket;
use super::voice::VoiceError;

/// The mix's tick.
pub const MIX_INTERVAL: Duration = Duration::from_millis(20);
/// Ticks run at once to catch up after a late wake-up; further behind, ticks are skipped.
const MAX_CATCH_UP: u32 = 5;

/// One session receiving a mix.
#[derive(Debug)]
struct Listener {
    group: VoiceGroup,
    /// Index into the core's sessions.
    session: usize,
    mid: Mid,
    ssrc: Ssrc,
    pt: PayloadType,
    /// The listener's audio-level extension id, when negotiated.
    audio_level: Option<u8>,
    /// The mixer output it receives.
    output: usize,
    seq: u16,
    ts: u32,
    /// What was sent, the sender reports, and what the listener reported back.
    send: SendStats,
    /// When the next sender report is due.
    next_report: Instant,
}

/// The mix of one group on this shard.
#[derive(Debug)]
struct MixGroup {
    mixer: Box<Mixer>,
    listeners: Vec<usize>,
}

/// The mixes of a shard.
#[derive(Debug, Default)]
pub(super) struct MixState {
    groups: FxHashMap<VoiceGroup, MixGroup>,
    /// Input track → the group whose mix it feeds.
    inputs: FxHashMap<TrackId, VoiceGroup>,
    listeners: Slab<Listener>,
    next_tick: Option<Instant>,
}

impl MixState {
    fn group(&mut self, group: VoiceGroup) -> &mut MixGroup {
        self.groups.entry(group).or_insert_with(|| MixGroup {
            mixer: Box::new(Mixer::new(MixerConfig::default())),
            listeners: Vec::new(),
        })
    }

    /// Drops a group's mixer when it has neither inputs nor listeners.
    fn tidy(&mut self, group: VoiceGroup) {
        if self
            .groups
            .get(&group)
            .is_some_and(|g| g.listeners.is_empty() && g.mixer.input_count() == 0)
        {
            self.groups.remove(&group);
        }
    }
}

impl ShardCore {
    /// Makes `track` an input of `group`'s mix here (or stops it).
    pub(super) fn set_mix_input(
        &mut self,
        group: VoiceGroup,
        track: TrackId,
        add: bool,
    ) -> Result<(), VoiceError> {
        let mix = &mut self.voice.mix;
        match (add, mix.inputs.get(&track).copied()) {
            (true, Some(g)) if g == group => Ok(()),
            (true, Some(_)) => Err(VoiceError::OtherGroup(track)),
            (true, None) => {
                mix.group(group)
                    .mixer
                    .add_input(track)
                    .map_err(|e| VoiceError::Mix(e.to_string()))?;
                mix.inputs.insert(track, group);
                Ok(())
            }
            (false, Some(g)) => {
                mix.inputs.remove(&track);
                if let Some(m) = mix.groups.get_mut(&g) {
                    m.mixer.remove_input(track);
                }
                mix.tidy(g);
                Ok(())
            }
            (false, None) => Ok(()),
        }
    }

    /// Starts sending session `session` the mix of `group` without `exclude`; for a stream it
    /// already sends (same mid), changes what it leaves out.
    pub(super) fn add_mix_listener(
        &mut self,
        now: Instant,
        group: VoiceGroup,
        session: SessionId,
        extmap: &ExtMap,
        spec: &SubscribeSpec,
        exclude: &[TrackId],
    ) -> Result<(), VoiceError> {
        let &idx = self
            .by_id
            .get(&session)
            .ok_or_else(|| VoiceError::Mix(format!("no session {session} on this shard")))?;
        if let Some(l) = self
            .voice
            .mix
            .listeners
            .iter()
            .find(|(_, l)| l.session == idx && l.mid == spec.mid && l.group == group)
            .map(|(i, _)| i)
        {
            // Again for the same stream: its exclusions change, its numbering goes on.
            let mix = &mut self.voice.mix;
            let g = mix.group(group);
            let output = g
                .mixer
                .add_output(exclude)
                .map_err(|e| VoiceError::Mix(e.to_string()))?;
            let old = std::mem::replace(&mut mix.listeners[l].output, output);
            let _ = mix.group(group).mixer.remove_output(old);
            return Ok(());
        }
        let s = &self.sessions[idx];
        let mid_taken = s.tracks.iter().any(|&t| self.tracks[t].mid == spec.mid)
            || s.subs.iter().any(|&x| self.subs[x].mid == spec.mid)
            || self
                .voice
                .mix
                .listeners
                .iter()
                .any(|(_, l)| l.session == idx && l.mid == spec.mid);
        if mid_taken {
            return Err(VoiceError::Mix(format!(
                "mid {:?} is already used by a media section of the session",
                spec.mid.0
            )));
        }
        super::merge_extmap(session, &s.extmap, extmap)
            .map_err(|e| VoiceError::Mix(e.to_string()))?;
        let pt = spec
            .codecs
            .iter()
            .find(|c| c.codec == Codec::Opus)
            .map(|c| c.pt)
            .ok_or_else(|| VoiceError::Mix("the listener does not accept Opus".into()))?;
        let seed = self.next_random();
        let mix = &mut self.voice.mix;
        let output = mix
            .group(group)
            .mixer
            .add_output(exclude)
            .map_err(|e| VoiceError::Mix(e.to_string()))?;
        let l = mix.listeners.insert(Listener {
            group,
            session: idx,
            mid: spec.mid.clone(),
            ssrc: spec.ssrc,
            pt,
            audio_level: extmap.audio_level,
            output,
            seq: (seed >> 16) as u16,
            ts: (seed >> 32) as u32,
            send: SendStats::new(),
            next_report: now + self.cfg.report_interval,
        });
        mix.group(group).listeners.push(l);
        mix.next_tick.get_or_insert(now + MIX_INTERVAL);
        tracing::debug!(shard = %self.shard, %session, mid = %spec.mid.0, ?group, "mix listener added");
        Ok(())
    }

    /// Stops a session's mix stream.
    pub(super) fn remove_mix_listener(
        &mut self,
        session: SessionId,
        mid: &Mid,
    ) -> Result<(), VoiceError> {
        let idx = self.by_id.get(&session).copied();
        let l = self
            .voice
            .mix
            .listeners
            .iter()
            .find(|(_, l)| Some(l.session) == idx && l.mid == *mid)
            .map(|(i, _)| i)
            .ok_or_else(|| VoiceError::NoMixStream(mid.0.clone()))?;
        self.drop_mix_listener(l);
        Ok(())
    }

    fn drop_mix_listener(&mut self, l: usize) {
        let mix = &mut self.voice.mix;
        let listener = mix.listeners.remove(l);
        if let Some(g) = mix.groups.get_mut(&listener.group) {
            g.listeners.retain(|&x| x != l);
            // The output exists: the listener held it.
            let _ = g.mixer.remove_output(listener.output);
        }
        mix.tidy(listener.group);
        if mix.listeners.is_empty() {
            mix.next_tick = None;
        }
    }

    /// A session closed: its mix streams end.
    pub(super) fn mix_session_closed(&mut self, idx: usize) {
        let gone: Vec<usize> = self
            .voice
            .mix
            .listeners
            .iter()
            .filter(|(_, l)| l.session == idx)
            .map(|(i, _)| i)
            .collect();
        for l in gone {
            self.drop_mix_listener(l);
        }
    }

    /// Ingress: an audio packet of `track` (local, as cached); its payload joins the track's mix.
    #[inline]
    pub(super) fn mix_on_packet(&mut self, track: TrackId, hdr: &RtpHeader, pkt: &[u8]) {
        let mix = &mut self.voice.mix;
        if mix.inputs.is_empty() {
            return;
        }
        let Some(g) = mix.inputs.get(&track) else {
            return;
        };
        if let Some(m) = mix.groups.get_mut(g) {
            m.mixer.push(track, hdr.timestamp, hdr.payload(pkt));
        }
    }

    /// A packet mirrored from another shard: an audio one joins its track's mix here.
    #[inline]
    pub(super) fn mix_on_mirrored(&mut self, pkt: &MediaPacket) {
        if pkt.kind != MediaKind::Audio || self.voice.mix.inputs.is_empty() {
            return;
        }
        let data = &pkt.data[..usize::from(pkt.len)];
        if let Ok(hdr) = RtpHeader::parse(data) {
            self.mix_on_packet(pkt.track, &hdr, data);
        }
    }

    /// Runs the mixes' 20 ms ticks that are due and sends their packets.
    pub(super) fn mix_tick(&mut self, now: Instant) {
        let Some(mut due) = self.voice.mix.next_tick else {
            return;
        };
        let mut ran = 0;
        while now >= due && ran < MAX_CATCH_UP {
            self.mix_once(now);
            due += MIX_INTERVAL;
            ran += 1;
        }
        if now >= due {
            due = now + MIX_INTERVAL;
        }
        self.voice.mix.next_tick = Some(due);
        self.mix_sender_reports(now);
    }

    /// Sends each listener whose report is due a sender report about its mix stream.
    fn mix_sender_reports(&mut self, now: Instant) {
        let ShardCore {
            voice,
            sessions,
            control,
            counters,
            ntp,
            cfg,
            ..
        } = self;
        for (_, l) in voice.mix.listeners.iter_mut() {
            if now < l.next_report {
                continue;
            }
            // Nothing sent yet: no timestamp to report; asked again next tick.
            let Some(rtp_timestamp) = l.send.rtp_ts_at(now, SAMPLE_RATE) else {
                continue;
            };
            l.next_report = now + cfg.report_interval;
            let Some(s) = sessions.get_mut(l.session) else {
                continue;
            };
            let (Some(dest), Some(srtp)) = (s.dest, s.srtp.as_mut()) else {
                continue;
            };
            let info = SenderInfo {
                ssrc: l.ssrc,
                ntp: ntp.ntp(now),
                rtp_timestamp,
                packet_count: l.send.sr_packet_count(),
                octet_count: l.send.sr_octet_count(),
            };
            if control.push_with(dest, |slot| {
                let k = rtcp::write_sr(slot, &info, &[]).ok()?;
                srtp.tx.protect_rtcp(slot, k).ok()
            }) {
                l.send.on_sender_report_sent(now, info.ntp);
                counters.rtcp_out += 1;
            } else {
                counters.drop(DropReason::TxQueueFull);
            }
        }
    }

    /// A report block from session `idx` about one of its mix streams (by SSRC; a block about
    /// none is ignored). A round-trip time it yields becomes the session's.
    pub(super) fn mix_report_block(&mut self, now: Instant, idx: usize, block: &rtcp::ReportBlock) {
        let Some((_, l)) = self
            .voice
            .mix
            .listeners
            .iter_mut()
            .find(|(_, l)| l.session == idx && l.ssrc == block.ssrc)
        else {
            return;
        };
        let rtt = l.send.on_report_block(now, block);
        if let Some(rtt) = rtt
            && let Some(s) = self.sessions.get_mut(idx)
        {
            s.rtt = rtt;
        }
    }

    fn mix_once(&mut self, now: Instant) {
        let ShardCore {
            voice,
            sessions,
            control,
            counters,
            ..
        } = self;
        let mix = &mut voice.mix;
        for (_, g) in mix.groups.iter_mut() {
            if g.listeners.is_empty() {
                continue;
            }
            g.mixer.tick();
            for &l in &g.listeners {
                let Some(listener) = mix.listeners.get_mut(l) else {
                    continue;
                };
                let (seq, ts) = (listener.seq, listener.ts);
                // Timestamps and sequence numbers run on whether or not this packet goes out.
                listener.seq = listener.seq.wrapping_add(1);
                listener.ts = listener.ts.wrapping_add(FRAME as u32);
                let Some((payload, level)) = g.mixer.output(listener.output) else {
                    continue;
                };
                if payload.is_empty() {
                    continue;
                }
                let Some(s) = sessions.get_mut(listener.session) else {
                    continue;
                };
                let (Some(dest), Some(srtp)) = (s.dest, s.srtp.as_mut()) else {
                    continue;
                };
                // RFC 6464: the level of the mix, voice flag while it is not near silence.
                let level_byte = [if level <= 60 { 0x80 | level } else { level }];
                let ext: [(u8, &[u8]); 1];
                let extensions: &[(u8, &[u8])] = match listener.audio_level {
                    Some(id) => {
                        ext = [(id, &level_byte)];
                        &ext
                    }
                    None => &[],
                };
                let fields = RtpFields {
                    marker: false,
                    payload_type: listener.pt,
                    seq: SeqNo(seq),
                    timestamp: ts,
                    ssrc: listener.ssrc,
                    extensions,
                };
                let queued = control.push_with(dest, |slot| {
                    let n = rtp::write_rtp(slot, &fields, payload).ok()?;
                    srtp.tx.protect_rtp(slot, n).ok()
                });
                if queued {
                    listener.send.on_packet(now, ts, payload.len());
                    counters.rtp_out += 1;
                } else {
                    counters.drop(DropReason::TxQueueFull);
                }
            }
        }
    }

    /// The figures of a session's mix streams (appended to its track figures).
    pub(super) fn mix_track_stats(&self, idx: usize, out: &mut Vec<TrackStats>) {
        for (_, l) in self.voice.mix.listeners.iter() {
            if l.session != idx {
                continue;
            }
            let remote = l.send.remote();
            out.push(TrackStats {
                direction: TrackDirection::Subscribe,
                track: None,
                mid: l.mid.clone(),
                kind: MediaKind::Audio,
                clock_rate: SAMPLE_RATE,
                packets: l.send.packets_sent(),
                bytes: l.send.octets_sent(),
                packets_lost: remote.map_or(0, |r| i64::from(r.cumulative_lost)),
                jitter: remote.map_or(0, |r| r.jitter),
                voice: None,
            });
        }
    }
}
