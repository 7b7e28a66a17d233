//! The cross-shard half of forwarding (DESIGN.md "Between shards"): a local publisher's packet
//! crosses once to each shard with viewers of its stream, where a mirror track fans it out; sender
//! reports, track ends and keyframe requests travel the same queues.

use std::time::Instant;

use crate::metrics::DropReason;
use crate::wire::rtp::RtpHeader;
use crate::{Codec, ExtSeq, ShardId};

use super::ShardCore;
use super::shard_msg::{CROSS_SHARD_MTU, MediaPacket, ShardMsg};
use super::track::{Origin, SenderReportInfo, Track};

impl ShardCore {
    /// Sends a local publisher's packet once to every other shard with viewers of its stream.
    pub(super) fn cross_shard_forward(
        &mut self,
        now: Instant,
        tidx: usize,
        ext: ExtSeq,
        codec: Codec,
        keyframe: bool,
        buf: &[u8],
    ) {
        let track = &self.tracks[tidx];
        let Some(entry) = self.streams.get(&track.stream) else {
            return;
        };
        if entry.links.is_empty() || !matches!(track.origin, Origin::Local { .. }) {
            return;
        }
        if buf.len() > CROSS_SHARD_MTU {
            return self.drop_packet(DropReason::Truncated);
        }
        let mut pkt = MediaPacket {
            stream: track.stream,
            track: track.id,
            kind: track.kind,
            ordinal: track.ordinal,
            layer_slot: track.layer.slot,
            layer_rank: track.layer.rank,
            layer_count: track.layer.count,
            layer_info: track.rates.info,
            content: track.content,
            codec,
            clock_rate: track.clock_rate,
            ext_seq: ext.0,
            keyframe_start: keyframe,
            arrival: now,
            len: buf.len() as u16,
            data: [0u8; CROSS_SHARD_MTU],
        };
        pkt.data[..buf.len()].copy_from_slice(buf);
        let track = &self.tracks[tidx];
        let (id, rank, simulcast) = (track.id, track.layer.rank, track.layer.is_simulcast());
        let Some(entry) = self.streams.get(&track.stream) else {
            return;
        };
        for &shard in &entry.links {
            // Dynacast between shards: an encoding none of that shard's viewers needs stays.
            if simulcast && !self.shard_needs(id, rank, shard) {
                continue;
            }
            let Some(mesh) = self.mesh.as_mut() else {
                return;
            };
            match mesh.send(shard, ShardMsg::Media(pkt.clone())) {
                Ok(()) => self.counters.cross_shard_out += 1,
                Err(_) => self.counters.drop(DropReason::CrossShardQueueFull),
            }
        }
    }

    /// Handles a message from another shard.
    pub fn handle_shard_msg(&mut self, now: Instant, from: ShardId, msg: ShardMsg) {
        self.counters.cross_shard_in += 1;
        match msg {
            ShardMsg::Media(pkt) => self.handle_mirrored_media(now, from, &pkt),
            ShardMsg::SenderReport {
                track,
                layer_slot,
                ntp,
                rtp_timestamp,
                arrival,
            } => {
                if let Some(&t) = self.tracks_by_id.get(&(track, layer_slot)) {
                    self.tracks[t].last_sr = Some(SenderReportInfo {
                        ntp,
                        rtp_timestamp,
                        arrival,
                    });
                }
            }
            ShardMsg::TrackEnded { track, .. } => {
                // Every encoding of a simulcast track ends with it.
                for slot in 0..crate::control::MAX_SIMULCAST_LAYERS as u8 {
                    if let Some(&t) = self.tracks_by_id.get(&(track, slot))
                        && matches!(self.tracks[t].origin, Origin::Remote { .. })
                    {
                        self.remove_track(t);
                    }
                }
            }
            ShardMsg::KeyframeRequest { track, layer_slot } => {
                if let Some(&t) = self.tracks_by_id.get(&(track, layer_slot)) {
                    self.request_keyframe(now, t);
                }
            }
            ShardMsg::LayerDemand { track, ranks } => {
                self.on_remote_demand(now, from, track, ranks)
            }
        }
    }

    fn handle_mirrored_media(&mut self, now: Instant, from: ShardId, pkt: &MediaPacket) {
        self.mix_on_mirrored(pkt);
        let key = (pkt.track, pkt.layer_slot);
        let tidx = match self.tracks_by_id.get(&key) {
            Some(&t) => {
                if self.tracks[t].layer.rank != pkt.layer_rank {
                    // The owner learned the encodings' order from their bit rates.
                    self.tracks[t].layer.rank = pkt.layer_rank;
                    self.relink_layers(t);
                }
                t
            }
            None => {
                if self
                    .streams
                    .get(&pkt.stream)
                    .is_none_or(|e| e.subs.is_empty())
                {
                    return; // no viewers here (any more)
                }
                let track = Track::mirror(pkt, from, &self.cfg, now);
                if track.layer.is_simulcast() {
                    self.register_mirror_demand(track.id, from);
                }
                let t = self.tracks.insert(track);
                self.tracks_by_id.insert(key, t);
                self.attach_track(pkt.stream, t);
                t
            }
        };
        let data = &pkt.data[..pkt.len as usize];
        let Ok(hdr) = RtpHeader::parse(data) else {
            return self.drop_packet(DropReason::RtpMalformed);
        };
        let track = &mut self.tracks[tidx];
        let ext = ExtSeq(pkt.ext_seq);
        if track.pts.codec(hdr.payload_type).is_none() {
            track.pts.set_codec(hdr.payload_type, pkt.codec);
        }
        if track.cache.get(ext).is_some() {
            return;
        }
        if pkt.keyframe_start {
            track.keyframes.on_keyframe(now);
        }
        track.last_arrival = Some(pkt.arrival);
        track.rates.info = pkt.layer_info;
        if pkt.kind == crate::MediaKind::Video {
            track.learn_templates(&hdr, data);
        }
        track
            .cache
            .insert(ext, data, pkt.arrival, pkt.keyframe_start);
        self.enqueue_fanout(tidx, ext);
    }
}
