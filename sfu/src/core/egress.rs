//! Output: control datagrams first, then the fan-out of cached packets to every subscriber — one
//! copy per subscriber into a transmit slot, header rewritten and SRTP applied in place — and
//! retransmissions answering viewers' NACKs.

use std::time::Instant;

use crate::io::TxBatch;
use crate::metrics::DropReason;
use crate::wire::rtcp;
use crate::wire::rtp::{self, RtpHeader};
use crate::{ExtSeq, MediaKind, SeqNo, Ssrc};

use super::shard_msg::ShardMsg;
use super::track::Origin;
use super::viewer_bwe::{udp_overhead, write_stamped};
use super::{MAX_RUN, ShardCore};

/// A packet of a fan-out run, parsed once.
#[derive(Debug, Clone, Copy)]
struct RunPacket {
    ext: ExtSeq,
    hdr: RtpHeader,
    codec: crate::Codec,
    keyframe: bool,
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
                *slot = Some(RunPacket {
                    ext,
                    hdr,
                    codec,
                    keyframe: pkt.keyframe,
                });
            }
            let needed = job.count as usize;
            let video = track.kind == MediaKind::Video;
            let gap = if video { 3000 } else { 960 };
            while job.next < track.subscribers.len() {
                if batch.remaining() < needed {
                    return;
                }
                let sidx = track.subscribers[job.next];
                job.next += 1;
                let Some(sub) = self.subs.get_mut(sidx) else {
                    continue;
                };
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
                    if video && !sub.gate.admit(rp.keyframe) {
                        continue;
                    }
                    if !sub.started {
                        sub.rewriter.start(rp.ext, rp.hdr.timestamp);
                        sub.started = true;
                    } else if sub.needs_rebase {
                        sub.rewriter.rebase(rp.ext, rp.hdr.timestamp, gap);
                        sub.needs_rebase = false;
                    }
                    let Some((seq, ts)) = sub.rewriter.forward(rp.ext, rp.hdr.timestamp) else {
                        continue;
                    };
                    // Present: it was in the cache when the run was parsed, and nothing has
                    // written to the cache since.
                    let Some(data) = track.cache.get(rp.ext).map(|p| p.data) else {
                        continue;
                    };
                    let (ssrc, ext_map, hdr) = (sub.ssrc, &sub.ext_map, &rp.hdr);
                    let stamp = vb.as_deref().map(|v| (v.ext_id, v.next_seq()));
                    let mut protect_failed = false;
                    let (mut len, mut stamped) = (0, false);
                    let pushed = batch.push_with(dest, |slot| {
                        (len, stamped) =
                            write_stamped(slot, data, hdr, ssrc, seq, ts, pt, ext_map, stamp);
                        let r = srtp.tx.protect_rtp(slot, len).ok();
                        protect_failed = r.is_none();
                        len = r.unwrap_or(len);
                        r
                    });
                    if pushed {
                        sub.send.on_packet(now, ts, rp.hdr.payload_len);
                        self.counters.rtp_out += 1;
                        if stamped
                            && let Some(v) = vb.as_deref_mut()
                            && v.on_sent(now, len + udp_overhead(dest), None)
                        {
                            self.probing.push(sub.session);
                            self.probe_wake = Some(now);
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
                        &sub.ext_map,
                        stamp,
                    );
                    stamped = st;
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
                        slot,
                        pkt.data,
                        &hdr,
                        sub.ssrc,
                        out_seq,
                        ts,
                        pt,
                        &sub.ext_map,
                        stamp,
                    );
                    let r = srtp.tx.protect_rtp(slot, k).ok();
                    (len, stamped) = (r.unwrap_or(k), st);
                    r
                }),
            };
            if queued {
                self.counters.retransmits += 1;
                if stamped && let Some(v) = vb.as_deref_mut() {
                    // The session is already primed: media went out before this NACK.
                    v.on_sent(now, len + udp_overhead(dest), None);
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
                let id = track.id;
                if self.send_to_shard(owner, ShardMsg::KeyframeRequest { track: id }) {
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
