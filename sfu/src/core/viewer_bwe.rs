//! Send-side bandwidth estimation toward one viewer transport (draft-ietf-rmcat-gcc-02 with
//! draft-holmer-rmcat-transport-wide-cc-extensions-01): the transport-wide sequence counter
//! stamped on every packet sent to the viewer (media, retransmissions, padding), the viewer's
//! transport-cc feedback and receiver reports routed to its [`SendSideBwe`], and the viewer's
//! [`Pacer`]: video leaves at 2.5 × the estimate (a burst of 40 ms of that goes at once; what
//! the budget holds back waits in the pacer as a [`Forward`] reference, see `paced`), probe
//! clusters and rate trials are sent as padding-only packets on the viewer's RTX SSRC.
//! Audio and retransmissions are never held; they count against the budget.

use std::time::{Duration, Instant};

use crate::bwe::{Paced, PacerConfig, PacketKind, ProbeId, QueueFull, SendSideBwe, SendSideConfig};
use crate::control::{Event, ViewerBweStats};
use crate::wire::rtcp::TransportCc;
use crate::wire::rtp::{self, RtpHeader};
use crate::{Bitrate, MediaKind, PayloadType, SeqNo, SessionId, Ssrc};

use super::ShardCore;
use super::paced::Forward;

/// Largest padding a padding-only packet carries (RFC 3550 §5.1: the count is one byte).
const MAX_PAD: usize = 255;
/// About what a padding packet adds to its padding on the wire: RTP header and transport-wide
/// element (20), SRTP tag (10–16), IPv4 and UDP (28).
const PADDING_OVERHEAD: usize = 64;
/// How often a viewer's estimate is reported to signaling.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Sent packets remembered per viewer for feedback (about 2 s at 1000 packets per second).
const HISTORY: usize = 2048;
/// Video packets a viewer's pacer holds (the pacing rate rises so that they drain within 2 s;
/// a full queue drops what comes and the viewer asks for it again).
const PACED_QUEUE: usize = 256;
/// Sending time a viewer's pacer lets go at once (libwebrtc's default burst interval): a
/// keyframe of the layer the estimate allows leaves whole, as the publisher sent it; one that
/// takes longer than 40 ms at 2.5 × the estimate (a keyframe toward a viewer whose estimate fell
/// since its layer was chosen) is spread out. With 5 ms, keyframes toward viewers behind 2 Mbit/s
/// were spread at a pacing rate above the link's, a delay ramp across several packet groups that
/// the trendline took for over-use every few seconds (q ↔ h switches in the loadgen class run).
const PACER_BURST: Duration = Duration::from_millis(40);

/// Control-queue slots left for RTCP, STUN and DTLS when paced packets and padding are written
/// (padding of one pacer release takes up to 6 slots).
const CONTROL_RESERVE: usize = 64;

/// The pacer of one viewer: references to cached packets, never copies.
type Pacer = crate::bwe::Pacer<Forward>;

/// The send-side estimation state of one viewer session.
#[derive(Debug)]
pub struct ViewerBwe {
    /// The viewer's id for the transport-wide sequence number extension.
    pub ext_id: u8,
    next_seq: u16,
    pub bwe: SendSideBwe,
    /// Paces video, probes and trial padding.
    pacer: Pacer,
    /// Media has been sent, so probes may start.
    primed: bool,
    /// The session is on the core's list of sessions whose pacer has something to send.
    listed: bool,
    /// The pacer pads up to a rate trial's rate.
    trialing: bool,
    /// Padding cannot be sent to this viewer (no video section with RTX): no probes or trial
    /// padding go to the pacer.
    no_padding: bool,
    next_report: Instant,
    /// Packets stamped (media, retransmissions and padding).
    pub packets: u64,
    pub padding_packets: u64,
    pub padding_bytes: u64,
    pub feedback: u64,
    /// Video packets the pacer held back and sent later.
    pub paced_packets: u64,
    /// Bytes sent as part of probe clusters (padding and media).
    pub probe_bytes: u64,
}

impl ViewerBwe {
    /// Estimation for a viewer that negotiated transport-wide sequence numbers under `ext_id`.
    pub fn new(ext_id: u8, now: Instant) -> Box<Self> {
        let cfg = SendSideConfig {
            history: HISTORY,
            ..SendSideConfig::default()
        };
        let bwe = SendSideBwe::new(cfg, now);
        let pacer_cfg = PacerConfig {
            queue_capacity: [0, 0, PACED_QUEUE],
            burst: PACER_BURST,
            ..PacerConfig::default()
        };
        let pacer = Pacer::new(pacer_cfg, bwe.target(), now);
        Box::new(ViewerBwe {
            ext_id,
            next_seq: 1,
            bwe,
            pacer,
            primed: false,
            listed: false,
            trialing: false,
            no_padding: false,
            next_report: now + REPORT_INTERVAL,
            packets: 0,
            padding_packets: 0,
            padding_bytes: 0,
            feedback: 0,
            paced_packets: 0,
            probe_bytes: 0,
        })
    }

    /// The sequence number the next packet carries.
    #[inline]
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Records a packet that carried [`ViewerBwe::next_seq`] and was queued for sending (the
    /// pacer has counted it). Returns true when the session has just become ready to send
    /// probes (the caller lists it).
    #[inline]
    pub fn on_sent(&mut self, now: Instant, size: usize, probe: Option<ProbeId>) -> bool {
        self.bwe.on_packet_sent(now, self.next_seq, size, probe);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.packets += 1;
        if probe.is_some() {
            self.probe_bytes += size as u64;
        }
        if self.primed {
            return false;
        }
        self.primed = true;
        self.take_probes()
    }

    /// Whether a media packet of `kind` may be sent now rather than queued (see
    /// [`crate::bwe::Pacer::may_send_now`]).
    #[inline]
    pub fn may_send_now(&mut self, now: Instant, kind: PacketKind) -> bool {
        self.pacer.may_send_now(now, kind)
    }

    /// Records a media packet or retransmission (not padding) sent without waiting in the
    /// pacer: it counts against the pacer's budget; as [`ViewerBwe::on_sent`].
    #[inline]
    pub fn on_media_sent(&mut self, now: Instant, size: usize) -> bool {
        self.pacer.on_sent_unpaced(now, size);
        self.on_sent(now, size, None)
    }

    /// Counts a media packet sent without a transport-wide sequence number against the pacer's
    /// budget (the estimator cannot follow it).
    #[inline]
    pub fn on_unstamped_sent(&mut self, now: Instant, size: usize) {
        self.pacer.on_sent_unpaced(now, size);
    }

    /// Queues a video packet of about `size` bytes on the wire for the pacer. `Ok(true)` when
    /// the session should be put on the pacing list.
    #[inline]
    pub(super) fn enqueue(&mut self, f: Forward, size: usize) -> Result<bool, QueueFull<Forward>> {
        self.pacer.enqueue(f, size, PacketKind::Video)?;
        Ok(!std::mem::replace(&mut self.listed, true))
    }

    /// Starts a rate trial at `rate`: padding tops what is sent up to it for the trial's
    /// window. True when the session should be put on the pacing list.
    pub fn start_trial(&mut self, now: Instant, rate: Bitrate) -> bool {
        if !self.primed || !self.bwe.start_trial(now, rate) || self.no_padding {
            return false;
        }
        self.pacer.set_padding_rate(now, rate);
        self.trialing = true;
        if self.listed {
            return false;
        }
        self.listed = true;
        true
    }

    /// Stops the trial's padding once its window closed.
    fn end_trial_if_over(&mut self, now: Instant) {
        if self.trialing && self.bwe.trial_rate(now).is_none() {
            self.pacer.set_padding_rate(now, Bitrate::ZERO);
            self.trialing = false;
        }
    }

    /// Padding could not be sent: probes and trial padding stop for good (media still paces).
    fn give_up_padding(&mut self, now: Instant) {
        self.no_padding = true;
        self.pacer.cancel_probes();
        self.pacer.set_padding_rate(now, Bitrate::ZERO);
        self.trialing = false;
    }

    /// Moves the estimator's probe clusters and target to the pacer; true when the session
    /// should be put on the pacing list.
    fn take_probes(&mut self) -> bool {
        while let Some(c) = self.bwe.poll_probe() {
            if !self.no_padding {
                self.pacer.add_probe(c);
            }
        }
        if self.primed && !self.listed && self.pacer.is_probing() {
            self.listed = true;
            return true;
        }
        false
    }

    /// A snapshot for the allocator and the stats API.
    pub fn stats(&self) -> ViewerBweStats {
        let s = self.bwe.stats();
        ViewerBweStats {
            target: s.target,
            delay_based: s.delay_based,
            acked: s.acked,
            loss_permille: (s.loss.clamp(0.0, 1.0) * 1000.0).round() as u16,
            rtt: s.rtt,
            usage: s.usage,
            rate_state: s.rate_state,
            in_alr: s.in_alr,
            last_probe: s.last_probe,
            last_trial: s.last_trial,
            trials: s.trials,
            trials_passed: s.trials_passed,
            packets_sent: self.packets,
            padding_packets: self.padding_packets,
            padding_bytes: self.padding_bytes,
            feedback_received: self.feedback,
            probe_bytes: self.probe_bytes,
            paced_packets: self.paced_packets,
            pacer_queue: self.pacer.queued_packets() as u32,
        }
    }
}

/// Bytes an IP and UDP header add to a datagram toward `dest`: the estimator counts packets as
/// they are on the wire (SRTP tag and these headers included), as libwebrtc does with its
/// send-side estimation "with overhead", so the target is a wire rate.
#[inline]
pub(super) fn udp_overhead(dest: std::net::SocketAddr) -> usize {
    if dest.is_ipv4() { 20 + 8 } else { 40 + 8 }
}

/// Copies a cached packet into `slot` with a viewer's SSRC, sequence number, timestamp, payload
/// type and extension ids and, with `stamp = Some((ext_id, seq))`, its transport-wide sequence
/// number. Returns the length and whether the number was written (it is not when the source's
/// extension block has a foreign profile or the slot is too short for the added word).
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn write_stamped(
    slot: &mut [u8],
    pkt: &[u8],
    hdr: &RtpHeader,
    ssrc: Ssrc,
    seq: SeqNo,
    ts: u32,
    pt: PayloadType,
    ext_map: &[u8; 256],
    stamp: Option<(u8, u16)>,
) -> (usize, bool) {
    let (n, stamped) = match stamp
        .and_then(|(id, s)| rtp::copy_with_transport_seq(slot, pkt, hdr, ext_map, id, s).ok())
    {
        Some(n) => (n, true),
        None => {
            let n = pkt.len();
            slot[..n].copy_from_slice(pkt);
            rtp::remap_extensions(&mut slot[..n], hdr, ext_map);
            (n, false)
        }
    };
    let out = &mut slot[..n];
    rtp::set_ssrc(out, ssrc);
    rtp::set_seq(out, seq);
    rtp::set_timestamp(out, ts);
    rtp::set_payload_type(out, pt);
    (n, stamped)
}

impl ShardCore {
    /// Transport-cc feedback from a viewer (RTPFB FMT 15) about what we sent it.
    pub(super) fn on_transport_feedback(&mut self, now: Instant, idx: usize, fb: &TransportCc) {
        let Some(vb) = self.sessions[idx].viewer_bwe.as_deref_mut() else {
            return;
        };
        vb.feedback += 1;
        let trial = vb.bwe.last_trial().map(|t| t.id);
        vb.bwe.handle_feedback(now, fb);
        let judged = vb.bwe.last_trial().map(|t| t.id) != trial;
        self.refresh_viewer(now, idx);
        if judged {
            // A passed trial allows a step up now; a failed one may have lowered the estimate.
            self.run_allocation(now, idx);
        } else {
            self.on_estimate(now, idx);
        }
    }

    /// A viewer's receiver report block about one of its streams: loss, and the round-trip time
    /// from LSR/DLSR against the sender reports we sent it.
    pub(super) fn on_viewer_report(
        &mut self,
        now: Instant,
        idx: usize,
        fraction_lost: u8,
        rtt: Option<Duration>,
    ) {
        let Some(vb) = self.sessions[idx].viewer_bwe.as_deref_mut() else {
            return;
        };
        vb.bwe.handle_receiver_report(now, fraction_lost, rtt);
        self.refresh_viewer(now, idx);
        self.on_estimate(now, idx);
    }

    /// Hands new probe clusters and the target to the session's pacer.
    pub(super) fn refresh_viewer(&mut self, now: Instant, idx: usize) {
        let Some(vb) = self
            .sessions
            .get_mut(idx)
            .and_then(|s| s.viewer_bwe.as_deref_mut())
        else {
            return;
        };
        vb.pacer.set_target(now, vb.bwe.target());
        if vb.take_probes() {
            self.list_for_pacing(now, idx);
        }
    }

    pub(super) fn list_for_pacing(&mut self, now: Instant, idx: usize) {
        self.pacing.push(idx);
        self.pacing_wake = Some(self.pacing_wake.map_or(now, |t| t.min(now)));
    }

    /// Estimator timers (probe results, ALR probes) and the periodic report to signaling; runs
    /// on the core's tick.
    pub(super) fn viewer_bwe_tick(&mut self, now: Instant) {
        for idx in 0..self.sessions.capacity() {
            let Some(s) = self.sessions.get_mut(idx) else {
                continue;
            };
            let id = s.id;
            let Some(vb) = s.viewer_bwe.as_deref_mut() else {
                continue;
            };
            let due = vb.bwe.poll_timeout().is_some_and(|t| t <= now);
            if due {
                vb.bwe.handle_timeout(now);
            }
            if now >= vb.next_report {
                vb.next_report = now + REPORT_INTERVAL;
                let stats = vb.stats();
                self.events.push_back(Event::ViewerEstimate {
                    id,
                    shard: self.shard,
                    stats,
                });
            }
            if due {
                // An ALR probe may have been scheduled.
                self.refresh_viewer(now, idx);
            }
        }
    }

    /// Sends what the listed sessions' pacers release (paced video, probe and trial padding)
    /// and sets the next wake-up. Stops while the control queue is nearly full (the rest waits
    /// for the next loop iteration, after the queue has been sent).
    pub(super) fn service_pacers(&mut self, now: Instant) {
        self.pacing_wake = None;
        let mut i = 0;
        while i < self.pacing.len() {
            if self.control.free() < CONTROL_RESERVE {
                self.pacing_wake = Some(now);
                return;
            }
            let idx = self.pacing[i];
            let mut next = None;
            let mut keep = false;
            if let Some(vb) = self
                .sessions
                .get_mut(idx)
                .and_then(|s| s.viewer_bwe.as_deref_mut())
            {
                vb.end_trial_if_over(now);
            }
            while let Some(vb) = self
                .sessions
                .get_mut(idx)
                .and_then(|s| s.viewer_bwe.as_deref_mut())
            {
                if self.control.free() < CONTROL_RESERVE {
                    // Resume here once the queue has gone out.
                    keep = true;
                    next = Some(now);
                    break;
                }
                match vb.pacer.poll_send(now) {
                    Some(Paced::Padding { size, probe }) => {
                        if !self.send_padding(now, idx, size, probe)
                            && let Some(vb) = self
                                .sessions
                                .get_mut(idx)
                                .and_then(|s| s.viewer_bwe.as_deref_mut())
                        {
                            // Nothing to send it with (no video with RTX).
                            vb.give_up_padding(now);
                        }
                    }
                    Some(Paced::Media { handle, probe, .. }) => {
                        self.send_paced(now, idx, handle, probe);
                    }
                    None => {
                        keep =
                            vb.pacer.is_probing() || vb.trialing || vb.pacer.queued_packets() > 0;
                        next = vb.pacer.poll_timeout();
                        break;
                    }
                }
            }
            if keep {
                if let Some(t) = next {
                    self.pacing_wake = Some(self.pacing_wake.map_or(t, |w| w.min(t)));
                }
                i += 1;
            } else {
                if let Some(vb) = self
                    .sessions
                    .get_mut(idx)
                    .and_then(|s| s.viewer_bwe.as_deref_mut())
                {
                    vb.listed = false;
                }
                self.pacing.swap_remove(i);
            }
        }
    }

    /// Sends `size` bytes of padding to a viewer as padding-only packets on the RTX SSRC of its
    /// video stream, each stamped with the next transport-wide sequence number. False when the
    /// viewer has no video stream with RTX or is not connected.
    fn send_padding(
        &mut self,
        now: Instant,
        idx: usize,
        size: usize,
        probe: Option<ProbeId>,
    ) -> bool {
        let session = &mut self.sessions[idx];
        let Some(&sidx) = session.subs.iter().find(|&&s| {
            let sub = &self.subs[s];
            sub.kind == MediaKind::Video
                && sub.rtx_ssrc.is_some()
                && sub.rtx_pt.iter().any(Option::is_some)
        }) else {
            return false;
        };
        let sub = &mut self.subs[sidx];
        let (Some(rtx_ssrc), Some(rtx_pt)) =
            (sub.rtx_ssrc, sub.rtx_pt.iter().flatten().next().copied())
        else {
            return false;
        };
        let (Some(dest), Some(srtp), Some(vb)) = (
            session.dest,
            session.srtp.as_mut(),
            session.viewer_bwe.as_deref_mut(),
        ) else {
            return false;
        };
        // `size` is on-wire bytes: each packet's headers, tag and IP/UDP count toward it.
        let mut left = size;
        while left > 0 {
            let pad = left.saturating_sub(PADDING_OVERHEAD).clamp(1, MAX_PAD);
            let id = vb.ext_id;
            let tseq = vb.next_seq();
            let rtx_seq = SeqNo(sub.rtx_seq);
            let mut written = 0;
            let queued = self.control.push_with(dest, |slot| {
                let n = rtp::write_padding_packet(
                    slot, rtx_ssrc, rtx_pt, rtx_seq, 0, id, tseq, pad as u8,
                )
                .ok()?;
                let r = srtp.tx.protect_rtp(slot, n).ok();
                written = r.unwrap_or(n) + udp_overhead(dest);
                r
            });
            if !queued {
                self.counters.drop(crate::metrics::DropReason::TxQueueFull);
                return true;
            }
            sub.rtx_seq = sub.rtx_seq.wrapping_add(1);
            left = left.saturating_sub(written);
            vb.on_sent(now, written, probe);
            vb.padding_packets += 1;
            vb.padding_bytes += written as u64;
            self.counters.rtp_out += 1;
        }
        true
    }

    /// The send-side estimate toward a viewer session; `None` for an unknown session or one that
    /// did not negotiate transport-wide congestion control.
    pub fn viewer_estimate(&self, id: SessionId) -> Option<ViewerBweStats> {
        let idx = *self.by_id.get(&id)?;
        self.sessions
            .get(idx)?
            .viewer_bwe
            .as_deref()
            .map(ViewerBwe::stats)
    }

    /// Starts a rate trial toward a viewer at `rate` (media topped up with padding).
    pub fn start_rate_trial(&mut self, now: Instant, idx: usize, rate: Bitrate) {
        let Some(vb) = self
            .sessions
            .get_mut(idx)
            .and_then(|s| s.viewer_bwe.as_deref_mut())
        else {
            return;
        };
        if vb.start_trial(now, rate) {
            tracing::debug!(shard = %self.shard, session = ?self.sessions[idx].id, rate = rate.0, "rate trial started");
            self.list_for_pacing(now, idx);
        }
    }

    /// The most the allocator would send a viewer (the sum of the layers it wants); raising it
    /// above the estimate makes the estimator probe toward it.
    pub fn set_desired_max(&mut self, now: Instant, id: SessionId, max: Bitrate) {
        let Some(&idx) = self.by_id.get(&id) else {
            return;
        };
        let Some(vb) = self.sessions[idx].viewer_bwe.as_deref_mut() else {
            return;
        };
        vb.bwe.set_desired_max(now, max);
        self.refresh_viewer(now, idx);
    }
}
