//! Output: control datagrams first, then the fan-out of cached packets to every subscriber — one
//! copy per subscriber into a transmit slot, header rewritten and SRTP applied in place — and
//! retransmissions answering viewers' NACKs.

use std::time::Instant;

use crate::bwe::PacketKind;
use crate::io::TxBatch;
use crate::metrics::DropReason;
use crate::route::layer_selector::{SimulcastStep, Verdict, simulcast_step};
use crate::wire::codec::{DependencyDescriptor, PacketLayers, TemplateLayers};
use crate::wire::rtcp;
use crate::wire::rtp::{self, RtpHeader};
use crate::{ExtSeq, MediaKind, SeqNo, Ssrc};

use super::paced::{Forward, write_forward};
use super::payload_edit::{PayloadEdit, vp8_numbers};
use super::shard_msg::ShardMsg;
use super::subscription::arrival_gap;
use super::track::Origin;
use super::viewer_bwe::{udp_overhead, write_stamped};
use super::{MAX_RUN, ShardCore};

/// What a forwarded packet adds to its source on the wire besides IP and UDP: the transport-wide
/// sequence number's extension word and the SRTP tag (the pacer's size of a queued packet).
const PACED_OVERHEAD: usize = 4 + crate::srtp::MAX_SRTP_OVERHEAD;

/// A packet of a fan-out run, parsed once.
#[derive(Debug, Clone, Copy)]
struct RunPacket {
    ext: ExtSeq,
    hdr: RtpHeader,
    codec: crate::Codec,
    keyframe: bool,
    arrival: Instant,
    layers: PacketLayers,
    /// The dependency descriptor: offset of its data in the packet, and its frame number.
    dd: Option<(usize, u16)>,
}

/// Reads an AV1 packet's dependency descriptor (as cached, canonical id): the offset of its data
/// and its frame number, and, with the source's template layers, the packet's spatial and
/// temporal layer and frame boundaries into `layers`.
fn read_dependency_descriptor(
    pkt: &[u8],
    hdr: &RtpHeader,
    templates: Option<&TemplateLayers>,
    layers: &mut PacketLayers,
) -> Option<(usize, u16)> {
    let data = hdr.extension(pkt, super::ext::DEPENDENCY_DESCRIPTOR)?;
    // `data` is a subslice of `pkt`.
    let offset = data.as_ptr() as usize - pkt.as_ptr() as usize;
    let d = DependencyDescriptor::parse(data).ok()?;
    if let Some(t) = templates
        && let Some((sid, tid)) = t.layer_of(d.template_id)
    {
        layers.sid = Some(sid);
        layers.tid = Some(tid);
        layers.end_of_layer_frame = d.end_of_frame;
        layers.picture_start = d.start_of_frame && sid == 0;
        if d.start_of_frame && !d.custom_dtis {
            layers.switch_points = t.switch_points_of(d.template_id);
        }
    }
    Some((offset, d.frame_number))
}

impl ShardCore {
    /// Moves pending datagrams into `batch` until it is full. Call again (after sending) while
    /// [`ShardCore::has_pending_transmit`] is true.
    pub fn poll_transmit(&mut self, now: Instant, batch: &mut TxBatch) {
        self.control.drain_into(batch);
        if !batch.is_full() {
            self.run_fanout(now, batch);
        }
    }

    /// Serves fan-out jobs subscriber by subscriber: all packets of a job's run go to one viewer
    /// before the next, so a viewer's packets of a frame sit side by side in the batch and the
    /// backend can send them in one GSO message.
    fn run_fanout(&mut self, now: Instant, batch: &mut TxBatch) {
        while let Some(job) = self.fanout.front_mut() {
            let Some(track) = self.tracks.get(job.track) else {
                self.fanout.pop_front();
                continue;
            };
            // Parse the run's headers once per call; packets overwritten in the cache are gone.
            let mut run = [None::<RunPacket>; MAX_RUN];
            for (k, slot) in run.iter_mut().enumerate().take(job.count as usize) {
                let ext = ExtSeq(job.first_ext + k as u64);
                let Some(pkt) = track.cache.get(ext) else {
                    // Newer packets of the track took its cache slot before it went out.
                    if job.next == 0 {
                        self.counters.drop(DropReason::FanoutOverrun);
                    }
                    continue;
                };
                let Ok(hdr) = RtpHeader::parse(pkt.data) else {
                    continue;
                };
                let Some(codec) = track.pts.codec(hdr.payload_type) else {
                    continue;
                };
                let mut layers = if track.kind == MediaKind::Video {
                    PacketLayers::parse(codec, hdr.payload(pkt.data), pkt.keyframe)
                } else {
                    PacketLayers::default()
                };
                // The dependency descriptor names AV1's layers; for VP8 and VP9 it fills in what
                // their own descriptor leaves out (Chromium drops the VP8 TID when it sends one).
                let dd = if track.kind == MediaKind::Video {
                    let own = layers;
                    let dd = read_dependency_descriptor(
                        pkt.data,
                        &hdr,
                        track.templates.as_ref(),
                        &mut layers,
                    );
                    if codec != crate::Codec::Av1 && own.tid.is_some() {
                        layers = own;
                    }
                    dd
                } else {
                    None
                };
                *slot = Some(RunPacket {
                    ext,
                    hdr,
                    codec,
                    keyframe: pkt.keyframe,
                    arrival: pkt.arrival,
                    layers,
                    dd,
                });
            }
            let needed = job.count as usize;
            let video = track.kind == MediaKind::Video;
            let simulcast = video && track.layer.is_simulcast();
            let gap = if video { 3000 } else { 960 };
            let clock_rate = track.clock_rate;
            while job.next < track.subscribers.len() {
                if batch.remaining() < needed {
                    return;
                }
                let sidx = track.subscribers[job.next];
                job.next += 1;
                // The encoding this viewer should receive, when the source is simulcast.
                let wanted = if simulcast {
                    super::commands::wanted_layer(&self.subs, &self.tracks, now, sidx)
                } else {
                    None
                };
                let Some(sub) = self.subs.get_mut(sidx) else {
                    continue;
                };
                if sub.alloc.paused {
                    // The allocator paused this viewer's video: nothing goes out.
                    continue;
                }
                let Some(session) = self.sessions.get_mut(sub.session) else {
                    continue;
                };
                let (Some(dest), Some(srtp)) = (session.dest, session.srtp.as_mut()) else {
                    continue;
                };
                let mut vb = session.viewer_bwe.as_deref_mut();
                for rp in run.iter().take(needed).flatten() {
                    let Some(pt) = sub.payload_type_for(rp.codec) else {
                        sub.codec_drops += 1;
                        self.counters.drop(DropReason::CodecNotNegotiated);
                        continue;
                    };
                    if simulcast {
                        let rank = track.layer.rank;
                        let current = (sub.source == Some(job.track)).then_some(rank);
                        let want = if wanted == Some(job.track) {
                            rank
                        } else {
                            u8::MAX
                        };
                        match simulcast_step(current, want, rank, rp.keyframe) {
                            SimulcastStep::Ignore => continue,
                            SimulcastStep::Current => {}
                            SimulcastStep::SwitchHere => {
                                // A keyframe of the wanted encoding: continue the viewer's
                                // numbering with it.
                                if sub.started {
                                    let ts_gap =
                                        arrival_gap(sub.last_arrival, rp.arrival, clock_rate);
                                    sub.rewriter.rebase(rp.ext, rp.hdr.timestamp, ts_gap);
                                } else {
                                    sub.rewriter.start(rp.ext, rp.hdr.timestamp);
                                    sub.started = true;
                                }
                                sub.needs_rebase = false;
                                sub.source = Some(job.track);
                                sub.gate.admit(true);
                                sub.selector.restart();
                                if let Some((pid, _)) = rp.layers.vp8_picture_id {
                                    sub.pictures
                                        .switch(pid, rp.layers.vp8_tl0_pic_idx.unwrap_or(0));
                                }
                                if let Some((_, frame)) = rp.dd {
                                    sub.frame_numbers.switch(frame);
                                }
                                self.counters.layer_switches += 1;
                            }
                        }
                    } else if video && !sub.gate.admit(rp.keyframe) {
                        continue;
                    }
                    if !sub.started {
                        sub.rewriter.start(rp.ext, rp.hdr.timestamp);
                        sub.started = true;
                    } else if sub.needs_rebase {
                        // A new publisher, or a resume: its numbering continues the viewer's.
                        let ts_gap = if std::mem::take(&mut sub.alloc.rebase_by_arrival) {
                            arrival_gap(sub.last_arrival, rp.arrival, clock_rate)
                        } else {
                            gap
                        };
                        sub.rewriter.rebase(rp.ext, rp.hdr.timestamp, ts_gap);
                        sub.needs_rebase = false;
                        if let Some((pid, _)) = rp.layers.vp8_picture_id {
                            sub.pictures
                                .switch(pid, rp.layers.vp8_tl0_pic_idx.unwrap_or(0));
                        }
                        if let Some((_, frame)) = rp.dd {
                            sub.frame_numbers.switch(frame);
                        }
                    }
                    let mut edit = PayloadEdit::default();
                    if video {
                        match sub.selector.filter(&rp.layers, !simulcast) {
                            Verdict::Drop { picture } => {
                                sub.rewriter.drop_packet(rp.ext);
                                if picture {
                                    sub.pictures.skip_picture();
                                }
                                continue;
                            }
                            Verdict::Forward { set_marker } => edit.marker = set_marker,
                        }
                        if let Some((pid, _)) = rp.layers.vp8_picture_id {
                            let tl0 = rp.layers.vp8_tl0_pic_idx.unwrap_or(0);
                            edit.vp8 = vp8_numbers(&rp.layers, sub.pictures.map(pid, tl0));
                        }
                        // Only AV1 viewers get the descriptor (see `ext::egress_map_av1`).
                        if let Some((offset, frame)) = rp.dd
                            && rp.codec == crate::Codec::Av1
                        {
                            let out = sub.frame_numbers.map(frame);
                            edit.dd_frame = (out != frame).then_some((offset as u16, out));
                        }
                    }
                    let Some((seq, ts)) = sub.rewriter.forward(rp.ext, rp.hdr.timestamp) else {
                        continue;
                    };
                    // Present: it was in the cache when the run was parsed, and nothing has
                    // written to the cache since.
                    let Some(data) = track.cache.get(rp.ext).map(|p| p.data) else {
                        continue;
                    };
                    let f = Forward {
                        ext: rp.ext,
                        sub: sidx as u32,
                        track: job.track as u32,
                        src_ssrc: rp.hdr.ssrc,
                        ssrc: sub.ssrc,
                        ts,
                        seq,
                        pt,
                        av1: rp.codec == crate::Codec::Av1,
                        edit,
                    };
                    sub.last_arrival = Some(rp.arrival);
                    // Audio is never held (it counts against the budget once sent).
                    if video
                        && let Some(v) = vb.as_deref_mut()
                        && !v.may_send_now(now, PacketKind::Video)
                    {
                        // The viewer's pacer holds it back: it waits there as a reference.
                        let size = data.len() + PACED_OVERHEAD + udp_overhead(dest);
                        match v.enqueue(f, size) {
                            Ok(true) => {
                                self.pacing.push(sub.session);
                                self.pacing_wake =
                                    Some(self.pacing_wake.map_or(now, |t| t.min(now)));
                            }
                            Ok(false) => {}
                            Err(_) => self.counters.drop(DropReason::PacerQueueFull),
                        }
                        continue;
                    }
                    let ext_map = if f.av1 {
                        &sub.ext_map_av1
                    } else {
                        &sub.ext_map
                    };
                    let stamp = vb.as_deref().map(|v| (v.ext_id, v.next_seq()));
                    let mut protect_failed = false;
                    let (mut len, mut stamped) = (0, false);
                    let pushed = batch.push_with(dest, |slot| {
                        let r =
                            write_forward(slot, data, &rp.hdr, &f, ext_map, stamp, &mut srtp.tx);
                        protect_failed = r.is_none();
                        (len, stamped) = r?;
                        Some(len)
                    });
                    if pushed {
                        sub.alloc.sent_bytes += len as u64;
                        sub.send.on_packet(now, ts, rp.hdr.payload_len);
                        self.counters.rtp_out += 1;
                        if let Some(v) = vb.as_deref_mut() {
                            let wire = len + udp_overhead(dest);
                            if !stamped {
                                v.on_unstamped_sent(now, wire);
                            } else if v.on_media_sent(now, wire) {
                                self.pacing.push(sub.session);
                                self.pacing_wake = Some(now);
                            }
                        }
                    } else if protect_failed {
                        self.counters.drop(DropReason::SrtpProtect);
                    }
                }
            }
            self.fanout.pop_front();
        }
    }

    /// Answers a viewer's NACK for the packets in `nack_scratch[..n]` (the viewer's numbering).
    pub(super) fn retransmit(&mut self, now: Instant, idx: usize, media: Ssrc, n: usize) {
        let Some(&sidx) = self.sessions[idx]
            .subs
            .iter()
            .find(|&&s| self.subs[s].ssrc == media)
        else {
            return;
        };
        let sub = &mut self.subs[sidx];
        let Some(track) = sub.source.and_then(|t| self.tracks.get(t)) else {
            return;
        };
        let session = &mut self.sessions[idx];
        let rtt = session.rtt;
        let (Some(dest), Some(srtp)) = (session.dest, session.srtp.as_mut()) else {
            return;
        };
        let mut vb = session.viewer_bwe.as_deref_mut();
        for &out_seq in &self.nack_scratch[..n] {
            let Some(in_ext) = sub.rewriter.reverse(out_seq) else {
                continue;
            };
            let Some(pkt) = track.cache.get(in_ext) else {
                continue;
            };
            if !sub.limiter.allow(now, in_ext, rtt) {
                continue;
            }
            let Ok(hdr) = RtpHeader::parse(pkt.data) else {
                continue;
            };
            let Some(codec) = track.pts.codec(hdr.payload_type) else {
                continue;
            };
            let Some(pt) = sub.payload_type_for(codec) else {
                continue;
            };
            let ts = sub.rewriter.map_timestamp(hdr.timestamp);
            let mut edit = PayloadEdit::default();
            if codec == crate::Codec::Av1 {
                let mut layers = PacketLayers::default();
                if let Some((offset, frame)) =
                    read_dependency_descriptor(pkt.data, &hdr, None, &mut layers)
                {
                    let out = sub.frame_numbers.peek(frame);
                    edit.dd_frame = (out != frame).then_some((offset as u16, out));
                }
            }
            let ext_map = if codec == crate::Codec::Av1 {
                &sub.ext_map_av1
            } else {
                &sub.ext_map
            };
            if codec == crate::Codec::Vp8 {
                let layers = PacketLayers::parse(codec, hdr.payload(pkt.data), pkt.keyframe);
                if let Some((pid, _)) = layers.vp8_picture_id {
                    let tl0 = layers.vp8_tl0_pic_idx.unwrap_or(0);
                    edit.vp8 = vp8_numbers(&layers, sub.pictures.peek(pid, tl0));
                }
            }
            let stamp = vb.as_deref().map(|v| (v.ext_id, v.next_seq()));
            let (mut len, mut stamped) = (0, false);
            let queued = match (sub.rtx_ssrc, sub.rtx_payload_type_for(codec)) {
                (Some(rtx_ssrc), Some(rtx_pt)) => {
                    let (m, st) = write_stamped(
                        &mut self.scratch[..],
                        pkt.data,
                        &hdr,
                        sub.ssrc,
                        out_seq,
                        ts,
                        pt,
                        ext_map,
                        stamp,
                    );
                    stamped = st;
                    edit.apply(&mut self.scratch[..], &hdr, pkt.data.len(), m);
                    let Ok(h2) = RtpHeader::parse(&self.scratch[..m]) else {
                        continue;
                    };
                    let rtx_seq = SeqNo(sub.rtx_seq);
                    sub.rtx_seq = sub.rtx_seq.wrapping_add(1);
                    let original = &self.scratch[..m];
                    self.control.push_with(dest, |slot| {
                        let k =
                            rtp::write_rtx(original, &h2, slot, rtx_ssrc, rtx_pt, rtx_seq).ok()?;
                        let r = srtp.tx.protect_rtp(slot, k).ok();
                        len = r.unwrap_or(k);
                        r
                    })
                }
                _ => self.control.push_with(dest, |slot| {
                    let (k, st) = write_stamped(
                        slot, pkt.data, &hdr, sub.ssrc, out_seq, ts, pt, ext_map, stamp,
                    );
                    edit.apply(slot, &hdr, pkt.data.len(), k);
                    let r = srtp.tx.protect_rtp(slot, k).ok();
                    (len, stamped) = (r.unwrap_or(k), st);
                    r
                }),
            };
            if queued {
                self.counters.retransmits += 1;
                if stamped && let Some(v) = vb.as_deref_mut() {
                    // The session is already primed: media went out before this NACK.
                    v.on_media_sent(now, len + udp_overhead(dest));
                }
            } else {
                self.counters.drop(DropReason::TxQueueFull);
            }
        }
    }

    /// Asks a track's publisher for a keyframe, at most once per throttle interval.
    pub(super) fn request_keyframe(&mut self, now: Instant, tidx: usize) {
        let Some(track) = self.tracks.get_mut(tidx) else {
            return;
        };
        if track.kind != MediaKind::Video || !track.keyframes.request(now) {
            return;
        }
        self.send_keyframe_request(tidx);
    }

    /// Sends a PLI (or FIR) to a local publisher, or forwards the request to the owning shard.
    pub(super) fn send_keyframe_request(&mut self, tidx: usize) {
        let Some(track) = self.tracks.get_mut(tidx) else {
            return;
        };
        match track.origin {
            Origin::Remote { owner } => {
                let (id, layer_slot) = (track.id, track.layer.slot);
                if self.send_to_shard(
                    owner,
                    ShardMsg::KeyframeRequest {
                        track: id,
                        layer_slot,
                    },
                ) {
                    self.counters.keyframe_requests_out += 1;
                }
            }
            Origin::Local { session } => {
                let Some(media) = track.ssrc else { return };
                let Some(s) = self.sessions.get_mut(session) else {
                    return;
                };
                let (Some(dest), Some(srtp)) = (s.dest, s.srtp.as_mut()) else {
                    return;
                };
                let sender = s.rtcp_ssrc;
                let fir_seq = track.use_fir.then(|| track.keyframes.next_fir_seq());
                let queued = self.control.push_with(dest, |slot| {
                    let n = match fir_seq {
                        Some(seq) => rtcp::write_fir(slot, sender, media, seq).ok()?,
                        None => rtcp::write_pli(slot, sender, media).ok()?,
                    };
                    srtp.tx.protect_rtcp(slot, n).ok()
                });
                if queued {
                    self.counters.keyframe_requests_out += 1;
                    self.counters.rtcp_out += 1;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use crate::PayloadType;
    use crate::wire::rtp::{RtpFields, write_rtp};

    #[test]
    fn dependency_descriptor_gives_av1_layers_and_its_frame_number_is_rewritten() {
        use crate::core::ext::DEPENDENCY_DESCRIPTOR;
        // A keyframe's descriptor with a structure: S0T0, S0T1, S1T0, S1T1 (idc 1, 2, 1, 3),
        // template offset 0, 2 decode targets (L2T2 with inter-layer prediction; DTIs SS, DR,
        // -S, -D); then a packet of template 3 (S1T1), end of frame.
        let structure = [0x80, 0x00, 0x07, 0x80, 0x01, 0x67, 0xa7, 0x21];
        let f = RtpFields {
            marker: false,
            payload_type: PayloadType(45),
            seq: SeqNo(1),
            timestamp: 0,
            ssrc: Ssrc(5),
            extensions: &[(DEPENDENCY_DESCRIPTOR, &structure)],
        };
        let mut buf = vec![0u8; 64];
        let n = write_rtp(&mut buf, &f, &[0x18, 0x0a]).unwrap();
        buf.truncate(n);
        let templates = DependencyDescriptor::parse(&structure)
            .unwrap()
            .structure
            .unwrap();
        assert_eq!(templates.count, 4);

        let dd = [0x40 | 3, 0x12, 0x34];
        let f = RtpFields {
            extensions: &[(DEPENDENCY_DESCRIPTOR, &dd)],
            ..f
        };
        let mut pkt = vec![0u8; 64];
        let n = write_rtp(&mut pkt, &f, &[0x10, 0x00]).unwrap();
        pkt.truncate(n);
        let hdr = RtpHeader::parse(&pkt).unwrap();
        let mut layers = PacketLayers::default();
        let (offset, frame) =
            read_dependency_descriptor(&pkt, &hdr, Some(&templates), &mut layers).unwrap();
        assert_eq!(frame, 0x1234);
        assert_eq!((layers.sid, layers.tid), (Some(1), Some(1)));
        assert!(layers.end_of_layer_frame && !layers.picture_start);
        let edit = PayloadEdit {
            dd_frame: Some((offset as u16, 0x0102)),
            ..PayloadEdit::default()
        };
        let n = pkt.len();
        edit.apply(&mut pkt, &hdr, n, n);
        let out = RtpHeader::parse(&pkt).unwrap();
        let d = DependencyDescriptor::parse(out.extension(&pkt, DEPENDENCY_DESCRIPTOR).unwrap());
        assert_eq!(d.unwrap().frame_number, 0x0102);
    }
}
