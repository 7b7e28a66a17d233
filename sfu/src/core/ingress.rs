//! Input handling: each datagram is classified (RFC 7983) and handed to ICE, DTLS, or — decrypted
//! in place — to the RTP and RTCP paths; packets from other shards join the same fan-out.

use std::net::SocketAddr;
use std::time::Instant;

use crate::control::{CloseReason, Event};
use crate::dtls::DtlsEvent;
use crate::ice::{IceError, IceLite};
use crate::io::RecvMeta;
use crate::metrics::DropReason;
use crate::srtp::{SrtpError, SrtpSession};
use crate::wire::codec::is_keyframe_start;
use crate::wire::demux::{PacketClass, classify};
use crate::wire::rtcp::{self, RtcpPacket};
use crate::wire::rtp::{self, AbsSendTime, RtpHeader};
use crate::wire::stun::{StunClass, StunMessage};
use crate::{ExtSeq, MediaKind, Ssrc};

use super::session::InboundSsrc;
use super::shard_msg::ShardMsg;
use super::track::SenderReportInfo;
use super::{FanoutJob, MAX_RUN, ShardCore};

impl ShardCore {
    /// Handles one received datagram. `buf` holds exactly the datagram and is modified in place
    /// (SRTP is decrypted where it lies).
    pub fn handle_datagram(&mut self, now: Instant, meta: RecvMeta, buf: &mut [u8]) {
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += buf.len() as u64;
        if buf.is_empty() {
            return self.drop_packet(DropReason::Empty);
        }
        match classify(buf) {
            PacketClass::Stun => self.handle_stun(now, meta.src, buf),
            PacketClass::Dtls => self.handle_dtls(now, meta.src, buf),
            PacketClass::Rtp => self.handle_rtp(now, meta.src, buf),
            PacketClass::Rtcp => self.handle_rtcp(now, meta.src, buf),
            PacketClass::Unknown => self.drop_packet(DropReason::UnknownClass),
        }
    }

    fn handle_stun(&mut self, now: Instant, src: SocketAddr, buf: &[u8]) {
        self.counters.stun_in += 1;
        let Ok(msg) = StunMessage::parse(buf) else {
            return self.drop_packet(DropReason::StunMalformed);
        };
        if msg.class != StunClass::Request {
            return self.drop_packet(DropReason::StunNotRequest);
        }
        let Some(idx) = msg
            .username()
            .and_then(IceLite::local_ufrag_of)
            .and_then(|u| self.by_ufrag.get(u))
            .copied()
        else {
            return self.drop_packet(DropReason::StunUnknownUser);
        };
        let session = &mut self.sessions[idx];
        let mut outcome = Err(IceError::BufferTooSmall);
        let queued = self.control.push_with(src, |slot| {
            outcome = session.ice.handle_check(now, src, &msg, slot);
            outcome.as_ref().ok().map(|o| o.response_len)
        });
        match outcome {
            Ok(o) => {
                if !queued {
                    self.counters.drop(DropReason::TxQueueFull);
                }
                if o.newly_validated {
                    self.by_addr.insert(src, idx);
                }
                if o.nominated_changed && session.srtp.is_some() {
                    session.dest = session.ice.nominated();
                }
            }
            Err(IceError::BadIntegrity) => self.counters.drop(DropReason::StunBadIntegrity),
            Err(IceError::BadFingerprint) => self.counters.drop(DropReason::StunBadFingerprint),
            Err(IceError::NotBindingRequest) => self.counters.drop(DropReason::StunNotRequest),
            Err(IceError::UnknownUser) | Err(IceError::TooManyAddresses) => {
                self.counters.drop(DropReason::StunUnknownUser)
            }
            Err(IceError::BufferTooSmall) => self.counters.drop(DropReason::TxQueueFull),
        }
    }

    fn handle_dtls(&mut self, now: Instant, src: SocketAddr, buf: &[u8]) {
        self.counters.dtls_in += 1;
        let Some(&idx) = self.by_addr.get(&src) else {
            return self.drop_packet(DropReason::UnknownSource);
        };
        let session = &mut self.sessions[idx];
        session.dtls_peer = Some(src);
        if let Err(e) = session.dtls.handle_datagram(now, buf) {
            let id = session.id;
            self.drop_packet(DropReason::DtlsError);
            tracing::info!(shard = %self.shard, session = %id, error = %e, "DTLS failed");
            return self.close_session(now, idx, CloseReason::DtlsFailed(e.to_string()));
        }
        self.drain_dtls(now, idx);
    }

    /// Sends the session's pending DTLS flights and applies its events.
    pub(super) fn drain_dtls(&mut self, now: Instant, idx: usize) {
        let session = &mut self.sessions[idx];
        if let Some(peer) = session.dtls_peer {
            loop {
                let mut produced = false;
                self.control.push_with(peer, |slot| {
                    let n = session.dtls.poll_transmit(slot);
                    produced = n.is_some();
                    n
                });
                if !produced {
                    break;
                }
            }
        }
        while let Some(ev) = self.sessions[idx].dtls.poll_event() {
            match ev {
                DtlsEvent::Connected {
                    profile,
                    keying_material,
                } => {
                    let session = &mut self.sessions[idx];
                    match SrtpSession::from_dtls_keying_material(profile, &keying_material, false) {
                        Ok(srtp) => session.srtp = Some(srtp),
                        Err(e) => {
                            let reason = CloseReason::DtlsFailed(format!("SRTP keys: {e}"));
                            return self.close_session(now, idx, reason);
                        }
                    }
                    if session.ice.nominated().is_none()
                        && let Some(peer) = session.dtls_peer
                    {
                        session.ice.nominate(peer);
                    }
                    session.dest = session.ice.nominated();
                    tracing::debug!(shard = %self.shard, session = %session.id, ?profile, dest = ?session.dest, "connected");
                    self.events.push_back(Event::SessionConnected {
                        id: session.id,
                        shard: self.shard,
                    });
                }
                DtlsEvent::ApplicationData(_) => {}
                DtlsEvent::Closed => return self.close_session(now, idx, CloseReason::DtlsClosed),
            }
        }
    }

    fn handle_rtp(&mut self, now: Instant, src: SocketAddr, buf: &mut [u8]) {
        let Some(&idx) = self.by_addr.get(&src) else {
            return self.drop_packet(DropReason::UnknownSource);
        };
        let session = &mut self.sessions[idx];
        let Some(srtp) = session.srtp.as_mut() else {
            return self.drop_packet(DropReason::NotConnected);
        };
        let len = match srtp.rx.unprotect_rtp(buf) {
            Ok(n) => n,
            Err(e) => return self.drop_packet(srtp_drop_reason(&e, DropReason::RtpMalformed)),
        };
        self.counters.rtp_in += 1;
        let buf = &mut buf[..len];
        let Ok(mut hdr) = RtpHeader::parse(buf) else {
            return self.drop_packet(DropReason::RtpMalformed);
        };
        if let (Some(id), Some(twcc)) = (session.extmap.transport_cc, session.twcc.as_mut())
            && let Some(v) = hdr.extension(buf, id)
            && v.len() >= 2
        {
            twcc.on_packet(now, u16::from_be_bytes([v[0], v[1]]));
        }
        if let (Some(id), Some(remb)) = (session.extmap.abs_send_time, session.remb.as_mut())
            && let Some(v) = hdr.extension(buf, id)
            && let Ok(t) = AbsSendTime::parse(v)
        {
            remb.on_packet(now, t.0, len);
        }
        let inbound = match session.lookup_ssrc(hdr.ssrc) {
            Some(i) => i,
            None => match self.learn_ssrc(idx, &hdr, buf) {
                Ok(i) => i,
                Err(reason) => return self.drop_packet(reason),
            },
        };
        let tidx = inbound.track;
        let mut len = len;
        if inbound.rtx {
            let track = &self.tracks[tidx];
            let (Some(media_ssrc), Some(apt)) = (track.ssrc, track.pts.rtx_apt(hdr.payload_type))
            else {
                return self.drop_packet(DropReason::UnknownPayloadType);
            };
            if hdr.payload_len < 2 {
                // Padding-only RTX (bandwidth probing): nothing to forward.
                return;
            }
            len = match rtp::unwrap_rtx(buf, &hdr, media_ssrc, apt) {
                Ok(n) => n,
                Err(_) => return self.drop_packet(DropReason::RtpMalformed),
            };
            hdr = match RtpHeader::parse(&buf[..len]) {
                Ok(h) => h,
                Err(_) => return self.drop_packet(DropReason::RtpMalformed),
            };
        }
        let buf = &mut buf[..len];
        let track = &mut self.tracks[tidx];
        let Some(codec) = track.pts.codec(hdr.payload_type) else {
            return self.drop_packet(DropReason::UnknownPayloadType);
        };
        let ext = track.unwrapper.unwrap(hdr.seq);
        track.recv.on_packet(now, ext, hdr.timestamp);
        track.recv.on_bytes(len);
        track.last_arrival = Some(now);
        if let Some(nack) = track.nack.as_mut() {
            nack.on_packet(now, ext, inbound.rtx);
        }
        let payload = hdr.payload(buf);
        if payload.is_empty() {
            return; // padding only
        }
        if track.cache.get(ext).is_some() {
            return; // a retransmission of a packet we already forwarded
        }
        let keyframe = track.kind == MediaKind::Video && is_keyframe_start(codec, payload);
        if keyframe {
            track.keyframes.on_keyframe(now);
        }
        rtp::remap_extensions(buf, &hdr, &track.ext_to_canonical);
        // Remapping changed ids only, so the header still describes the packet.
        let dd_layers = if track.kind == MediaKind::Video {
            track.learn_templates(&hdr, buf)
        } else {
            None
        };
        track
            .rates
            .on_packet(codec, len, hdr.payload(buf), keyframe, dd_layers);
        if !track.cache.insert(ext, buf, now, keyframe) {
            return self.drop_packet(DropReason::RtpMalformed);
        }
        if track.kind == MediaKind::Audio {
            let id = track.id;
            self.voice_on_packet(now, tidx, &hdr, buf);
            self.mix_on_packet(id, &hdr, buf);
        }
        self.enqueue_fanout(tidx, ext);
        self.cross_shard_forward(now, tidx, ext, codec, keyframe, buf);
    }

    /// Binds an unannounced SSRC to one of the session's tracks by MID extension or payload type;
    /// within a simulcast media section, to the encoding its RID (or, for RTX, repaired RID)
    /// extension names (RFC 8852). A simulcast packet without a known rid is refused.
    fn learn_ssrc(
        &mut self,
        idx: usize,
        hdr: &RtpHeader,
        buf: &[u8],
    ) -> Result<InboundSsrc, DropReason> {
        let session = &self.sessions[idx];
        let ext = |id: Option<u8>| id.and_then(|id| hdr.extension(buf, id));
        let mid = ext(session.extmap.mid);
        let rid = ext(session.extmap.rid).filter(|r| !r.is_empty());
        let repaired = ext(session.extmap.repaired_rid).filter(|r| !r.is_empty());
        let pt = hdr.payload_type;
        let mut found = None;
        let mut simulcast = false;
        for &t in &session.tracks {
            let tr = &self.tracks[t];
            let in_section = match mid {
                Some(m) => tr.mid.0.as_bytes() == m,
                None => tr.pts.contains(pt),
            };
            if !in_section {
                continue;
            }
            if tr.layer.is_simulcast() {
                simulcast = true;
                let own = tr.layer.rid.as_ref().map(|r| r.0.as_bytes());
                if own.is_none() || (own != rid && own != repaired) {
                    continue;
                }
            }
            if found.is_some() {
                return Err(DropReason::UnknownSsrc); // ambiguous without a MID
            }
            found = Some(t);
        }
        let Some(tidx) = found else {
            return Err(if simulcast {
                DropReason::UnknownRid
            } else {
                DropReason::UnknownSsrc
            });
        };
        let track = &mut self.tracks[tidx];
        let rtx = track.pts.rtx_apt(pt).is_some() && track.pts.codec(pt).is_none();
        if rtx {
            track.rtx_ssrc.get_or_insert(hdr.ssrc);
        } else {
            track.ssrc.get_or_insert(hdr.ssrc);
        }
        let entry = InboundSsrc {
            ssrc: hdr.ssrc,
            track: tidx,
            rtx,
        };
        if self.sessions[idx].learn_ssrc(entry) {
            Ok(entry)
        } else {
            Err(DropReason::UnknownSsrc)
        }
    }

    pub(super) fn enqueue_fanout(&mut self, tidx: usize, ext: ExtSeq) {
        if self.tracks[tidx].subscribers.is_empty() {
            return;
        }
        // Extend the newest run when this packet continues it and nobody was served yet.
        if let Some(back) = self.fanout.back_mut()
            && back.track == tidx
            && back.next == 0
            && (back.count as usize) < MAX_RUN
            && back.first_ext + back.count as u64 == ext.0
        {
            back.count += 1;
            return;
        }
        if self.fanout.len() >= self.cfg.fanout_queue_packets {
            return self.drop_packet(DropReason::TxQueueFull);
        }
        self.fanout.push_back(FanoutJob {
            track: tidx,
            first_ext: ext.0,
            count: 1,
            next: 0,
        });
    }

    fn handle_rtcp(&mut self, now: Instant, src: SocketAddr, buf: &mut [u8]) {
        let Some(&idx) = self.by_addr.get(&src) else {
            return self.drop_packet(DropReason::UnknownSource);
        };
        let Some(srtp) = self.sessions[idx].srtp.as_mut() else {
            return self.drop_packet(DropReason::NotConnected);
        };
        let len = match srtp.rx.unprotect_rtcp(buf) {
            Ok(n) => n,
            Err(e) => return self.drop_packet(srtp_drop_reason(&e, DropReason::RtcpMalformed)),
        };
        self.counters.rtcp_in += 1;
        let buf = &buf[..len];
        for pkt in rtcp::iter(buf) {
            let Ok(pkt) = pkt else {
                return self.drop_packet(DropReason::RtcpMalformed);
            };
            match pkt {
                RtcpPacket::SenderReport(sr) => {
                    self.on_sender_report(now, idx, sr.ssrc, sr.ntp, sr.rtp_timestamp);
                    for block in sr.report_blocks() {
                        self.on_report_block(now, idx, &block);
                    }
                }
                RtcpPacket::ReceiverReport(rr) => {
                    for block in rr.report_blocks() {
                        self.on_report_block(now, idx, &block);
                    }
                }
                RtcpPacket::Nack(nack) => {
                    self.counters.nacks_in += 1;
                    let media = nack.media;
                    let mut n = 0;
                    for seq in nack.lost() {
                        if n == self.nack_scratch.len() {
                            break;
                        }
                        self.nack_scratch[n] = seq;
                        n += 1;
                    }
                    self.retransmit(now, idx, media, n);
                }
                RtcpPacket::TransportCc(fb) => self.on_transport_feedback(now, idx, &fb),
                RtcpPacket::Pli { media, .. } => self.on_keyframe_request(now, idx, media),
                RtcpPacket::Fir(fir) => {
                    for (ssrc, _) in fir.entries() {
                        self.on_keyframe_request(now, idx, ssrc);
                    }
                }
                _ => {}
            }
        }
    }

    fn on_sender_report(
        &mut self,
        now: Instant,
        idx: usize,
        ssrc: Ssrc,
        ntp: u64,
        rtp_timestamp: u32,
    ) {
        let Some(inbound) = self.sessions[idx].lookup_ssrc(ssrc) else {
            return;
        };
        if inbound.rtx {
            return;
        }
        let track = &mut self.tracks[inbound.track];
        track.recv.on_sender_report(now, ntp);
        track.last_sr = Some(SenderReportInfo {
            ntp,
            rtp_timestamp,
            arrival: now,
        });
        let (id, stream, layer_slot) = (track.id, track.stream, track.layer.slot);
        let (Some(entry), Some(mesh)) = (self.streams.get(&stream), self.mesh.as_mut()) else {
            return;
        };
        for &shard in &entry.links {
            match mesh.send(
                shard,
                ShardMsg::SenderReport {
                    track: id,
                    layer_slot,
                    ntp,
                    rtp_timestamp,
                    arrival: now,
                },
            ) {
                Ok(()) => self.counters.cross_shard_out += 1,
                Err(_) => self.counters.drop(DropReason::CrossShardQueueFull),
            }
        }
    }

    fn on_report_block(&mut self, now: Instant, idx: usize, block: &rtcp::ReportBlock) {
        let Some(&sidx) = self.sessions[idx]
            .subs
            .iter()
            .find(|&&s| self.subs[s].ssrc == block.ssrc)
        else {
            // About a voice mix stream the session receives, or about nothing it receives.
            self.mix_report_block(now, idx, block);
            return;
        };
        let sub = &mut self.subs[sidx];
        let rtt = sub.send.on_report_block(now, block);
        if let Some(rtt) = rtt {
            self.sessions[idx].rtt = rtt;
        }
        self.on_viewer_report(now, idx, block.fraction_lost, rtt);
    }

    /// A viewer asked for a keyframe of the stream it receives on `media`.
    fn on_keyframe_request(&mut self, now: Instant, idx: usize, media: Ssrc) {
        let Some(&sidx) = self.sessions[idx]
            .subs
            .iter()
            .find(|&&s| self.subs[s].ssrc == media)
        else {
            return;
        };
        if let Some(tidx) = self.subs[sidx]
            .source
            .or_else(|| self.wanted_layer_track(now, sidx))
        {
            self.request_keyframe(now, tidx);
        }
    }
}

fn srtp_drop_reason(e: &SrtpError, malformed: DropReason) -> DropReason {
    match e {
        SrtpError::Replay(_) => DropReason::SrtpReplay,
        SrtpError::Authentication => DropReason::SrtpAuth,
        SrtpError::TooManySsrcs(_) => DropReason::UnknownSsrc,
        _ => malformed,
    }
}
