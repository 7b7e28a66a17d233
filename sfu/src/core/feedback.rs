//! Periodic work on the shard's tick: ICE and DTLS timers, and RTCP — NACKs, keyframe requests,
//! receiver reports and transport-wide feedback toward publishers (RFC 4585, RFC 3550,
//! draft-holmer-rmcat-transport-wide-cc-extensions-01) or REMB toward publishers without
//! transport-cc (draft-alvestrand-rmcat-remb-03), sender reports toward viewers.

use std::time::Instant;

use crate::Ssrc;
use crate::control::CloseReason;
use crate::ice::IceFailure;
use crate::wire::rtcp::{self, ReportBlock, SenderInfo};

use super::ShardCore;
use super::session::MAX_INBOUND_SSRCS;
use super::track::Origin;

impl ShardCore {
    /// Runs timers that are due: call when `poll_timeout` has passed (extra calls are cheap).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.probe_wake.is_some_and(|t| t <= now) {
            self.service_probes(now);
        }
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + self.cfg.tick;
        self.session_timers(now);
        self.viewer_bwe_tick(now);
        self.track_feedback(now);
        self.subscription_reports(now);
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
    }

    fn subscription_reports(&mut self, now: Instant) {
        for sidx in 0..self.subs.capacity() {
            let Some(sub) = self.subs.get_mut(sidx) else {
                continue;
            };
            let Some(tidx) = sub.source else { continue };
            if sub.gate.wants_keyframe() {
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
