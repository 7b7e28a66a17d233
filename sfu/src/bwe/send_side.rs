//! Send-side bandwidth estimation for one viewer transport (draft-ietf-rmcat-gcc-02 with the
//! transport-wide feedback of draft-holmer-rmcat-transport-wide-cc-extensions-01, arranged as
//! libwebrtc's GoogCC): sent packets are remembered by transport-wide sequence number; each
//! transport-cc feedback feeds the acknowledged bitrate, the delay-based estimator
//! (inter-arrival → trendline → over-use detector → AIMD), probe results and the loss-based
//! bound; the target is the smaller of the delay- and loss-based rates.
//!
//! Sans-IO and allocation-free after [`SendSideBwe::new`]: the sent-packet history is a ring
//! sized at construction and every other part is fixed-size.

use std::time::{Duration, Instant};

use super::acked_bitrate::{AckedBitrate, AckedBitrateConfig};
use super::aimd::{AimdConfig, AimdRateControl, RateControlState};
use super::alr::{AlrConfig, AlrDetector};
use super::clock_unwrap::Unwrap24;
use super::inter_arrival::InterArrival;
use super::loss_based::{LossBased, LossBasedConfig};
use super::overuse_detector::BandwidthUsage;
use super::probe::{ProbeCluster, ProbeConfig, ProbeController, ProbeId};
use super::probe_estimator::ProbeEstimator;
use super::rate_trial::{RateTrial, TrialConfig, TrialResult};
use super::trendline::{Trendline, TrendlineConfig};
use crate::types::Bitrate;
use crate::wire::rtcp::TransportCc;
use crate::wire::rtcp::twcc::REFERENCE_UNIT_US;

/// Parameters of a [`SendSideBwe`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendSideConfig {
    /// The estimate before any feedback.
    pub start: Bitrate,
    /// The target never goes below this.
    pub min: Bitrate,
    /// The target never goes above this.
    pub max: Bitrate,
    /// Sent packets remembered for feedback (rounded up to a power of two, at least 64).
    pub history: usize,
    /// Packets a loss report must cover before it is acted on.
    pub loss_report_packets: u32,
    /// Least time a loss report covers (short windows make random loss look bursty).
    pub loss_report_interval: Duration,
    pub trendline: TrendlineConfig,
    pub aimd: AimdConfig,
    pub acked: AckedBitrateConfig,
    pub loss: LossBasedConfig,
    pub probe: ProbeConfig,
    pub alr: AlrConfig,
    pub trial: TrialConfig,
}

impl Default for SendSideConfig {
    fn default() -> Self {
        SendSideConfig {
            start: Bitrate::kbps(300),
            min: Bitrate::kbps(30),
            max: Bitrate::kbps(20_000),
            history: 4096,
            loss_report_packets: 20,
            loss_report_interval: Duration::from_secs(1),
            trendline: TrendlineConfig::default(),
            aimd: AimdConfig::default(),
            acked: AckedBitrateConfig::default(),
            loss: LossBasedConfig::default(),
            probe: ProbeConfig::default(),
            alr: AlrConfig::default(),
            trial: TrialConfig::default(),
        }
    }
}

/// What a sent packet's feedback said so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Unreported,
    Received,
    Lost,
}

#[derive(Debug, Clone, Copy)]
struct SentPacket {
    /// Extended transport sequence number, `u64::MAX` when the slot is empty.
    seq: u64,
    send_us: i64,
    size: u32,
    probe: Option<ProbeId>,
    fate: Fate,
}

const EMPTY: SentPacket = SentPacket {
    seq: u64::MAX,
    send_us: 0,
    size: 0,
    probe: None,
    fate: Fate::Unreported,
};
/// Offset of the first extended sequence number, so that earlier numbers do not underflow.
const EXT_BASE: u64 = 1 << 32;
/// Probe clusters remembered by id for result estimation.
const CLUSTERS: usize = 8;
/// A loss report from RTCP receiver reports is used only when transport-cc gave none this long.
const RR_LOSS_FALLBACK: Duration = Duration::from_secs(5);
/// The least rate a probe's queue is assumed to drain at (before anything is acknowledged).
const PROBE_DRAIN_FLOOR_BPS: u64 = 100_000;

/// A snapshot of the estimator's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweStats {
    /// The rate the sender should use.
    pub target: Bitrate,
    /// The delay-based (AIMD) estimate.
    pub delay_based: Bitrate,
    /// The loss-based bound, when loss limits the rate.
    pub loss_bound: Option<Bitrate>,
    /// The rate the receiver acknowledged.
    pub acked: Option<Bitrate>,
    /// The AIMD controller's link capacity estimate.
    pub link_capacity: Option<Bitrate>,
    /// Loss fraction of the last loss report.
    pub loss: f64,
    pub rtt: Duration,
    /// The over-use detector's hypothesis.
    pub usage: BandwidthUsage,
    pub rate_state: RateControlState,
    /// Whether the sender is application-limited.
    pub in_alr: bool,
    /// The delay trend and the detector's threshold (ms).
    pub trend: f64,
    pub threshold_ms: f64,
    /// The last probe result.
    pub last_probe: Option<Bitrate>,
    /// The last rate trial's result.
    pub last_trial: Option<TrialResult>,
    /// A rate trial is running (sending or awaiting its feedback).
    pub trialing: bool,
    /// Rate trials started, and how many passed.
    pub trials: u32,
    pub trials_passed: u32,
}

/// GoogCC send-side bandwidth estimator for one transport.
#[derive(Debug)]
pub struct SendSideBwe {
    cfg: SendSideConfig,
    epoch: Instant,
    sent: Box<[SentPacket]>,
    mask: u64,
    highest_sent: Option<u64>,
    /// The receiver's feedback reference clock.
    reference: Unwrap24,
    inter_arrival: InterArrival,
    trendline: Trendline,
    aimd: AimdRateControl,
    acked: AckedBitrate,
    loss: LossBased,
    probes: ProbeController,
    probe_estimator: ProbeEstimator,
    clusters: [Option<ProbeCluster>; CLUSTERS],
    next_cluster_slot: usize,
    alr: AlrDetector,
    rtt: Duration,
    rtt_from_reports: bool,
    lost: u32,
    received: u32,
    loss_window_start: Option<Instant>,
    last_feedback_loss: Option<Instant>,
    usage: BandwidthUsage,
    target: Bitrate,
    last_probe: Option<Bitrate>,
    trial: Option<RateTrial>,
    trials: u32,
    trials_passed: u32,
    last_trial: Option<TrialResult>,
    /// Feedback about packets sent before this (µs) shows the last trial's own queue, which
    /// its result accounts for: over-use is not acted on, and the delay trend starts afresh
    /// with the first packet sent after it (`trial_queue_pending`).
    trial_queue_until_us: i64,
    trial_queue_pending: bool,
    /// Likewise for probe clusters: feedback about packets sent before this (µs) may show a
    /// probe's own queue (its bytes at the acknowledged rate after its last packet); over-use
    /// seen in it is not acted on — the probe's result sets the estimate instead.
    probe_queue_until_us: i64,
    probe_queue_pending: bool,
    /// The cluster being sent and its bytes so far.
    probe_sending: Option<(ProbeId, u64)>,
}

impl SendSideBwe {
    /// An estimator starting at `cfg.start`; the initial probes are ready in
    /// [`SendSideBwe::poll_probe`]. Allocates the sent-packet history.
    pub fn new(cfg: SendSideConfig, now: Instant) -> Self {
        let n = cfg.history.clamp(64, 1 << 16).next_power_of_two();
        let start = cfg.start.clamp(cfg.min, cfg.max);
        let aimd_cfg = AimdConfig {
            min: cfg.min,
            max: cfg.max,
            ..cfg.aimd
        };
        let mut probes = ProbeController::new(cfg.probe, cfg.max);
        probes.on_start(now, start);
        SendSideBwe {
            cfg,
            epoch: now,
            sent: vec![EMPTY; n].into_boxed_slice(),
            mask: n as u64 - 1,
            highest_sent: None,
            reference: Unwrap24::new(REFERENCE_UNIT_US, 1),
            inter_arrival: InterArrival::new(),
            trendline: Trendline::new(cfg.trendline),
            aimd: AimdRateControl::new(aimd_cfg, start),
            acked: AckedBitrate::new(cfg.acked),
            loss: LossBased::new(cfg.loss),
            probes,
            probe_estimator: ProbeEstimator::new(),
            clusters: [None; CLUSTERS],
            next_cluster_slot: 0,
            alr: AlrDetector::new(cfg.alr, start),
            rtt: Duration::from_millis(200),
            rtt_from_reports: false,
            lost: 0,
            received: 0,
            loss_window_start: None,
            last_feedback_loss: None,
            usage: BandwidthUsage::Normal,
            target: start,
            last_probe: None,
            trial: None,
            trials: 0,
            trials_passed: 0,
            last_trial: None,
            trial_queue_until_us: i64::MIN,
            trial_queue_pending: false,
            probe_queue_until_us: i64::MIN,
            probe_queue_pending: false,
            probe_sending: None,
        }
    }

    fn micros(&self, t: Instant) -> i64 {
        i64::try_from(t.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX / 4)
    }

    fn extend(&self, seq: u16) -> u64 {
        match self.highest_sent {
            None => EXT_BASE + u64::from(seq),
            Some(h) => h.saturating_add_signed(i64::from(seq.wrapping_sub(h as u16) as i16)),
        }
    }

    /// Records a packet handed to the network: its transport-wide sequence number (`u16`, as on
    /// the wire), its size in bytes (RTP header and payload) and the probe cluster it belongs to.
    pub fn on_packet_sent(
        &mut self,
        now: Instant,
        transport_seq: u16,
        size: usize,
        probe: Option<ProbeId>,
    ) {
        let ext = self.extend(transport_seq);
        if self.highest_sent.is_none_or(|h| ext > h) {
            self.highest_sent = Some(ext);
        }
        let send_us = self.micros(now);
        self.sent[(ext & self.mask) as usize] = SentPacket {
            seq: ext,
            send_us,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            probe,
            fate: Fate::Unreported,
        };
        if let Some(t) = self.trial.as_mut() {
            t.on_sent(ext, send_us, u32::try_from(size).unwrap_or(u32::MAX));
        }
        if let Some(id) = probe {
            let bytes = match self.probe_sending {
                Some((p, b)) if p == id => b + size as u64,
                _ => size as u64,
            };
            self.probe_sending = Some((id, bytes));
            // How long the cluster's bytes take at what the path is known to carry.
            let rate = self
                .acked
                .estimate()
                .unwrap_or(self.target)
                .0
                .max(PROBE_DRAIN_FLOOR_BPS);
            let drain_us = (bytes * 8 * 1_000_000 / rate) as i64;
            self.probe_queue_until_us = self.probe_queue_until_us.max(send_us + drain_us);
            self.probe_queue_pending = true;
        }
        self.alr.on_bytes_sent(now, size);
    }

    /// Handles one transport-cc feedback message from the receiver.
    pub fn handle_feedback(&mut self, now: Instant, fb: &TransportCc<'_>) {
        if self.highest_sent.is_none() {
            return;
        }
        let (mut arrival_us, reanchored) =
            self.reference.unwrap(fb.reference_time, self.micros(now));
        if reanchored {
            // Arrivals before and after the anchor are on unrelated scales.
            self.inter_arrival.reset();
        }
        let base = self.extend(fb.base_seq.0);
        let in_alr = self.alr.alr_since().is_some();
        let mut newest_send_us = None;
        let mut usage = self.usage;
        let mut any = false;
        for (i, (_, delta)) in fb.packets().enumerate() {
            let ext = base + i as u64;
            if let Some(d) = delta {
                arrival_us += d;
            }
            let slot = &mut self.sent[(ext & self.mask) as usize];
            if slot.seq != ext {
                continue; // not ours, or fell out of the history
            }
            match delta {
                None => {
                    if slot.fate == Fate::Unreported {
                        slot.fate = Fate::Lost;
                        self.lost += 1;
                        if let Some(t) = self.trial.as_mut() {
                            t.on_feedback(ext, slot.send_us, slot.size, None);
                        }
                    }
                }
                Some(_) => {
                    match slot.fate {
                        Fate::Received => continue, // reported again
                        Fate::Lost => self.lost = self.lost.saturating_sub(1),
                        Fate::Unreported => {}
                    }
                    let first_report = slot.fate == Fate::Unreported;
                    slot.fate = Fate::Received;
                    self.received += 1;
                    any = true;
                    let p = *slot;
                    if first_report && let Some(t) = self.trial.as_mut() {
                        t.on_feedback(ext, p.send_us, p.size, Some(arrival_us));
                    }
                    newest_send_us = newest_send_us.max(Some(p.send_us));
                    self.acked
                        .on_packet(arrival_us.div_euclid(1000), p.size as usize, in_alr);
                    if self.trial_queue_pending && p.send_us >= self.trial_queue_until_us {
                        self.trial_queue_pending = false;
                        self.inter_arrival.reset();
                        self.trendline = Trendline::new(self.cfg.trendline);
                        usage = BandwidthUsage::Normal;
                    }
                    if self.probe_queue_pending && p.send_us >= self.probe_queue_until_us {
                        self.probe_queue_pending = false;
                        self.inter_arrival.reset();
                        self.trendline = Trendline::new(self.cfg.trendline);
                        usage = BandwidthUsage::Normal;
                    }
                    if let Some(d) =
                        self.inter_arrival
                            .on_packet(p.send_us, arrival_us, p.size as usize)
                    {
                        usage = self.trendline.update(&d);
                    }
                    if let Some(id) = p.probe
                        && let Some(c) = self.clusters.iter().flatten().find(|c| c.id == id)
                    {
                        let c = *c;
                        self.probe_estimator
                            .on_packet(&c, p.send_us, arrival_us, p.size as usize);
                    }
                }
            }
        }
        self.finish_trial(now);
        if !any {
            self.maybe_report_loss(now);
            return;
        }
        self.usage = usage;
        if let Some(s) = newest_send_us
            && !self.rtt_from_reports
        {
            // Feedback RTT: includes the receiver's feedback interval, so it errs long.
            let sample = Duration::from_micros((self.micros(now) - s).max(0) as u64);
            self.rtt = (self.rtt * 7 + sample) / 8;
            self.aimd.set_rtt(self.rtt);
        }
        // A trial's own queue is not the path's over-use: while it runs and until the packets
        // it queued are reported, the trial's result (`finish_trial`) sets the estimate instead.
        let trial_queue = self.trial.is_some() || self.trial_queue_pending;
        if trial_queue && self.usage == BandwidthUsage::Overusing {
            self.probe_estimator.take_last();
        } else if self.probe_queue_pending && self.usage == BandwidthUsage::Overusing {
            // A probe's own queue: only its result may lower the estimate (not below what is
            // acknowledged). It does not raise it: the over-use may also be the path's (a
            // result at capacity over a standing queue would keep that queue standing).
            if let Some(p) = self.probe_estimator.take_last()
                && p < self.aimd.estimate()
            {
                self.apply_probe(now, p);
            }
        } else {
            self.update_delay_based(now);
        }
        self.maybe_report_loss(now);
        self.update_target(now);
    }

    fn update_delay_based(&mut self, now: Instant) {
        let acked = self.acked.estimate();
        let probe = self.probe_estimator.take_last();
        if self.usage == BandwidthUsage::Overusing {
            match acked {
                Some(a) if self.aimd.time_to_reduce_further(now, a) => {
                    self.aimd.update(now, BandwidthUsage::Overusing, acked);
                }
                None if self.aimd.time_to_reduce_further(now, Bitrate(u64::MAX)) => {
                    // Over-use before any rate was measured: halve.
                    let half = Bitrate(self.aimd.estimate().0 / 2);
                    self.aimd.set_estimate(now, half);
                }
                _ => {}
            }
        } else if let Some(p) = probe {
            self.apply_probe(now, p);
        } else {
            self.aimd.update(now, self.usage, acked);
        }
    }

    /// A probe result becomes the estimate. A throttled probe may lower it, but not below what
    /// is acknowledged: a cluster that reads less than the path carries at the same time
    /// measured its own bunching, and a cut below the media flowing would step a viewer down.
    fn apply_probe(&mut self, now: Instant, p: Bitrate) {
        let floor = self.acked.estimate().map_or(0, |a| a.0);
        let p = Bitrate(p.0.max(floor));
        self.last_probe = Some(p);
        self.aimd.set_estimate(now, p);
    }

    fn maybe_report_loss(&mut self, now: Instant) {
        let total = self.lost + self.received;
        let start = *self.loss_window_start.get_or_insert(now);
        if total < self.cfg.loss_report_packets
            || now.saturating_duration_since(start) < self.cfg.loss_report_interval
        {
            return;
        }
        self.loss_window_start = Some(now);
        let loss = f64::from(self.lost) / f64::from(total);
        self.lost = 0;
        self.received = 0;
        self.last_feedback_loss = Some(now);
        self.loss
            .on_loss_report(now, loss, self.rtt, self.target, self.aimd.estimate());
    }

    fn update_target(&mut self, now: Instant) {
        let mut t = self.aimd.estimate();
        if let Some(b) = self.loss.bound() {
            t = t.min(b);
        }
        self.target = t.clamp(self.cfg.min, self.cfg.max);
        self.alr.set_estimate(self.target);
        self.probes.on_estimate(now, self.target);
    }

    /// A round-trip time measured elsewhere (RTCP receiver reports); it replaces the estimate
    /// from feedback timing.
    pub fn handle_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
        self.rtt_from_reports = true;
        self.aimd.set_rtt(rtt);
    }

    /// An RTCP receiver report: `fraction_lost` in 1/256 units. Its loss is used only while
    /// transport-cc feedback has not reported loss for 5 s.
    pub fn handle_receiver_report(
        &mut self,
        now: Instant,
        fraction_lost: u8,
        rtt: Option<Duration>,
    ) {
        if let Some(r) = rtt {
            self.handle_rtt(r);
        }
        let recent = self
            .last_feedback_loss
            .is_some_and(|t| now.saturating_duration_since(t) < RR_LOSS_FALLBACK);
        if !recent {
            let loss = f64::from(fraction_lost) / 256.0;
            self.loss
                .on_loss_report(now, loss, self.rtt, self.target, self.aimd.estimate());
            self.update_target(now);
        }
    }

    /// The most the caller would send (the sum of the layers it wants). Raising it above the
    /// estimate schedules a probe at it.
    pub fn set_desired_max(&mut self, now: Instant, desired: Bitrate) {
        self.probes.set_desired_max(now, desired, self.target);
    }

    /// Starts a rate trial at `rate` (see [`RateTrial`]): while [`SendSideBwe::trial_rate`]
    /// says so, the caller tops up what it sends with padding to that rate. False while one is
    /// still running.
    pub fn start_trial(&mut self, now: Instant, rate: Bitrate) -> bool {
        if self.trial.is_some() {
            return false;
        }
        self.trials += 1;
        self.trial_queue_until_us = i64::MAX;
        self.trial_queue_pending = true;
        self.trial = Some(RateTrial::new(
            self.cfg.trial,
            self.trials,
            rate,
            self.micros(now),
        ));
        true
    }

    /// The rate media plus padding should reach now, while a trial's window is open.
    pub fn trial_rate(&self, now: Instant) -> Option<Bitrate> {
        let now_us = self.micros(now);
        self.trial
            .as_ref()
            .filter(|t| t.sending(now_us))
            .map(RateTrial::rate)
    }

    /// Judges a running trial once it can be. A window the path could not carry (it arrived
    /// below 90 % of its send rate) measured the path: the estimate becomes 95 % of what
    /// arrived, as after a throttled probe, but not below 90 % of what is acknowledged.
    fn finish_trial(&mut self, now: Instant) {
        let Some((t, r)) = self
            .trial
            .and_then(|t| t.poll_result(self.micros(now)).map(|r| (t, r)))
        else {
            return;
        };
        self.trial = None;
        self.trial_queue_until_us = t.queue_until_us();
        self.last_trial = Some(r);
        self.trials_passed += u32::from(r.passed);
        let saturated = r.received.0 > 0 && (r.received.0 as f64) < 0.9 * r.sent.0 as f64;
        if !r.passed && saturated {
            let floor = self
                .acked
                .estimate()
                .map_or(0, |a| (a.0 as f64 * 0.9) as u64);
            let est = Bitrate(((r.received.0 as f64 * 0.95) as u64).max(floor));
            self.aimd.set_estimate(now, est);
            self.update_target(now);
        }
    }

    /// The result of the last trial judged.
    pub fn last_trial(&self) -> Option<TrialResult> {
        self.last_trial
    }

    /// The rate the sender should use now.
    pub fn target(&self) -> Bitrate {
        self.target
    }

    /// The next probe cluster to hand to the pacer.
    pub fn poll_probe(&mut self) -> Option<ProbeCluster> {
        let c = self.probes.poll_probe()?;
        self.clusters[self.next_cluster_slot] = Some(c);
        self.next_cluster_slot = (self.next_cluster_slot + 1) % CLUSTERS;
        Some(c)
    }

    /// When [`SendSideBwe::handle_timeout`] should run next (ALR probing, probe timeouts).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probes = self.probes.next_check(self.alr.alr_since());
        // A trial whose feedback does not come is judged after its report timeout.
        let trial = self.trial.map(|t| {
            let us = t.end_us() + self.cfg.trial.report_timeout.as_micros() as i64;
            self.epoch + Duration::from_micros(us.max(0) as u64)
        });
        match (probes, trial) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs periodic work that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.finish_trial(now);
        self.probes.handle_timeout(now);
        self.probes.on_alr(now, self.alr.alr_since(), self.target);
    }

    /// A snapshot of the estimator.
    pub fn stats(&self) -> BweStats {
        BweStats {
            target: self.target,
            delay_based: self.aimd.estimate(),
            loss_bound: self.loss.bound(),
            acked: self.acked.estimate(),
            link_capacity: self.aimd.link_capacity(),
            loss: self.loss.last_loss(),
            rtt: self.rtt,
            usage: self.usage,
            rate_state: self.aimd.state(),
            in_alr: self.alr.alr_since().is_some(),
            trend: self.trendline.trend(),
            threshold_ms: self.trendline.threshold_ms(),
            last_probe: self.last_probe,
            last_trial: self.last_trial,
            trialing: self.trial.is_some(),
            trials: self.trials,
            trials_passed: self.trials_passed,
        }
    }

    /// Sent packets the history holds (a power of two, fixed at construction).
    pub fn history_capacity(&self) -> usize {
        self.sent.len()
    }
}

#[cfg(test)]
#[path = "send_side_tests.rs"]
mod tests;
