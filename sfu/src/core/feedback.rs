//! Periodic work on the shard's tick: ICE and DTLS timers, and RTCP — NACKs, keyframe requests,
//! receiver reports and transport-wide feedback toward publishers (RFC 4585, RFC 3550,
//! draft-holmer-rmcat-transport-wide-cc-extensions-01) or REMB toward publishers without
//! transport-cc (draft-alvestrand-rmcat-remb-03), sender reports toward viewers.

use std::time::Instant;

use crate::Ssrc;
use crate::control::{CloseReason, Event, MAX_SIMULCAST_LAYERS};
use crate::ice::IceFailure;
use crate::wire::rtcp::{self, ReportBlock, SenderInfo};

use super::ShardCore;
use super::session::MAX_INBOUND_SSRCS;
use super::track::Origin;

/// Bit-rate measurements (one per report interval) of every encoding before their order is
/// learned.
const ORDER_SAMPLES: u32 = 3;

/// How long a viewer waits for a temporal switching point before asking for a keyframe.
const TEMPORAL_UP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

impl ShardCore {
    /// Runs timers that are due: call when `poll_timeout` has passed (extra calls are cheap).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pacing_wake.is_some_and(|t| t <= now) {
            self.service_pacers(now);
        }
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + self.cfg.tick;
        self.session_timers(now);
        self.viewer_bwe_tick(now);
        self.allocation_tick(now);
        self.track_feedback(now);
        self.subscription_reports(now);
        self.voice_tick(now);
    }

    fn session_timers(&mut self, now: Instant) {
        for idx in 0..self.sessions.capacity() {
            let Some(s) = self.sessions.get_mut(idx) else {
                continue;
            };
            if let Some(f) = s.ice.handle_timeout(now) {
                let reason = match f {
                    IceFailure::ConsentExpired => CloseReason::ConsentExpired,
                    IceFailure::ConnectTimeout => CloseReason::ConnectTimeout,
                };
                tracing::info!(shard = %self.shard, session = %s.id, ?reason, "ICE ended the session");
                self.close_session(now, idx, reason);
                continue;
            }
            if s.dtls.poll_timeout().is_some_and(|t| t <= now) {
                if let Err(e) = s.dtls.handle_timeout(now) {
                    let reason = CloseReason::DtlsFailed(e.to_string());
                    self.close_session(now, idx, reason);
                    continue;
                }
                self.drain_dtls(now, idx);
            }
            let Some(s) = self.sessions.get_mut(idx) else {
                continue;
            };
            let (Some(dest), Some(srtp)) = (s.dest, s.srtp.as_mut()) else {
                continue;
            };
            let sender = s.rtcp_ssrc;
            if let Some(twcc) = s.twcc.as_mut() {
                let media = s.inbound.first().map(|i| i.ssrc).unwrap_or_default();
                loop {
                    let mut wrote = false;
                    self.control.push_with(dest, |slot| {
                        let n = twcc.poll_feedback(now, sender, media, slot)?;
                        wrote = true;
                        srtp.tx.protect_rtcp(slot, n).ok()
                    });
                    if !wrote {
                        break;
                    }
                    self.counters.rtcp_out += 1;
                }
            }
            if let Some(remb) = s.remb.as_mut() {
                remb.set_rtt(s.rtt);
                if let Some(rate) = remb.poll_remb(now) {
                    // The estimate covers every media SSRC the peer sends.
                    let mut ssrcs = [Ssrc(0); MAX_INBOUND_SSRCS];
                    let mut n = 0;
                    for i in s.inbound.iter().filter(|i| !i.rtx) {
                        ssrcs[n] = i.ssrc;
                        n += 1;
                    }
                    if self.control.push_with(dest, |slot| {
                        let k = rtcp::write_remb(slot, sender, rate, &ssrcs[..n]).ok()?;
                        srtp.tx.protect_rtcp(slot, k).ok()
                    }) {
                        self.counters.rtcp_out += 1;
                    }
                }
            }
        }
    }

    fn track_feedback(&mut self, now: Instant) {
        for tidx in 0..self.tracks.capacity() {
            let Some(track) = self.tracks.get_mut(tidx) else {
                continue;
            };
            let due_keyframe = track.keyframes.poll(now);
            let Origin::Local { session } = track.origin else {
                if due_keyframe {
                    self.send_keyframe_request(tidx);
                }
                continue;
            };
            let Some(s) = self.sessions.get_mut(session) else {
                continue;
            };
            let (Some(dest), Some(srtp), Some(media)) = (s.dest, s.srtp.as_mut(), track.ssrc)
            else {
                continue;
            };
            let sender = s.rtcp_ssrc;
            if let Some(nack) = track.nack.as_mut() {
                let n = nack.poll_nacks(now, s.rtt, &mut self.nack_scratch[..]);
                if n > 0 {
                    let lost = &self.nack_scratch[..n];
                    if self.control.push_with(dest, |slot| {
                        let k = rtcp::write_nack(slot, sender, media, lost).ok()?;
                        srtp.tx.protect_rtcp(slot, k).ok()
                    }) {
                        self.counters.nacks_out += 1;
                        self.counters.rtcp_out += 1;
                    }
                }
            }
            if now >= track.next_report {
                track.next_report = now + self.cfg.report_interval;
                track.measure_rate(self.cfg.report_interval);
                track.rates.measure(self.cfg.report_interval);
                let r = track.recv.report(now);
                let block = ReportBlock {
                    ssrc: media,
                    fraction_lost: r.fraction_lost,
                    cumulative_lost: r.cumulative_lost,
                    ext_highest_seq: r.ext_highest_seq,
                    jitter: r.jitter,
                    last_sr: r.last_sr,
                    delay_since_last_sr: r.delay_since_last_sr,
                };
                if self.control.push_with(dest, |slot| {
                    let k = rtcp::write_rr(slot, sender, &[block]).ok()?;
                    srtp.tx.protect_rtcp(slot, k).ok()
                }) {
                    self.counters.rtcp_out += 1;
                }
            }
            if due_keyframe {
                self.send_keyframe_request(tidx);
            }
        }
        self.learn_layer_orders();
    }

    /// Orders the encodings of simulcast tracks whose rids gave no order by their measured bit
    /// rates, lowest first, once each has been measured sending for [`ORDER_SAMPLES`] intervals.
    fn learn_layer_orders(&mut self) {
        for tidx in 0..self.tracks.capacity() {
            let Some(track) = self.tracks.get(tidx) else {
                continue;
            };
            if !track.layer.order_pending || track.layer.slot != 0 {
                continue;
            }
            let Origin::Local { session } = track.origin else {
                continue;
            };
            let id = track.id;
            let Some(s) = self.sessions.get(session) else {
                continue;
            };
            let mut group = [(0u64, usize::MAX); MAX_SIMULCAST_LAYERS];
            let mut n = 0;
            for &t in &s.tracks {
                let tr = &self.tracks[t];
                if tr.id == id && n < group.len() {
                    if tr.rate_samples < ORDER_SAMPLES || tr.rate_bps == 0 {
                        n = usize::MAX;
                        break;
                    }
                    group[n] = (tr.rate_bps, t);
                    n += 1;
                }
            }
            if n == usize::MAX || n < 2 {
                continue;
            }
            let group = &mut group[..n];
            group.sort_unstable();
            let mut rids = Vec::with_capacity(n);
            for (rank, &(_, t)) in group.iter().enumerate() {
                let tr = &mut self.tracks[t];
                tr.layer.rank = rank as u8;
                tr.layer.order_pending = false;
                rids.extend(tr.layer.rid.clone());
            }
            let (stream, mid) = (self.tracks[tidx].stream, self.tracks[tidx].mid.clone());
            tracing::info!(shard = %self.shard, ?rids, "simulcast order learned from bit rates");
            self.relink_layers(tidx);
            self.events.push_back(Event::LayerOrder {
                stream,
                track: id,
                mid,
                layers: rids,
            });
        }
    }

    fn subscription_reports(&mut self, now: Instant) {
        for sidx in 0..self.subs.capacity() {
            let Some(sub) = self.subs.get_mut(sidx) else {
                continue;
            };
            // Temporal layers wanted for a while without a switching point (codecs without
            // one, such as AV1 with a dependency descriptor): a keyframe brings them.
            let temporal_up = if sub.selector.wants_temporal_up() {
                let since = *sub.temporal_up_since.get_or_insert(now);
                now.saturating_duration_since(since) >= TEMPORAL_UP_WAIT
            } else {
                sub.temporal_up_since = None;
                false
            };
            if sub.alloc.paused {
                continue;
            }
            let (source, gate_waits, spatial_up) = (
                sub.source,
                sub.gate.wants_keyframe(),
                sub.selector.wants_spatial_up() || temporal_up,
            );
            // A simulcast viewer waiting to switch needs a keyframe of the encoding it wants.
            if let Some(w) = self.wanted_layer_track(now, sidx)
                && source != Some(w)
            {
                self.request_keyframe(now, w);
            }
            let Some(tidx) = source else { continue };
            if gate_waits || spatial_up {
                self.request_keyframe(now, tidx);
            }
            let Some(sub) = self.subs.get_mut(sidx) else {
                continue;
            };
            if now < sub.next_report || !sub.started {
                continue;
            }
            sub.next_report = now + self.cfg.report_interval;
            let Some((ntp, rtp)) = self.tracks.get(tidx).and_then(|t| t.rtp_time_at(now)) else {
                continue;
            };
            let Some(s) = self.sessions.get_mut(sub.session) else {
                continue;
            };
            let (Some(dest), Some(srtp)) = (s.dest, s.srtp.as_mut()) else {
                continue;
            };
            let info = SenderInfo {
                ssrc: sub.ssrc,
                ntp,
                rtp_timestamp: sub.rewriter.map_timestamp(rtp),
                packet_count: sub.send.packets_sent() as u32,
                octet_count: sub.send.octets_sent() as u32,
            };
            if self.control.push_with(dest, |slot| {
                let k = rtcp::write_sr(slot, &info, &[]).ok()?;
                srtp.tx.protect_rtcp(slot, k).ok()
            }) {
                sub.send.on_sender_report_sent(now, ntp);
                self.counters.rtcp_out += 1;
            }
        }
    }
}
