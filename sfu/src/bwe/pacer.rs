//! Sans-IO leaky-bucket pacer (libwebrtc `PacingController`; draft-ietf-rmcat-gcc-02 §4 assumes
//! one): queued packets leave at `pacing_factor × target` (2.5 by default) so that a frame's
//! burst does not overflow the path's queues, in priority order audio > retransmission > video,
//! with padding to fill a padding rate and probe clusters sent at their own rate (media when
//! there is some, padding otherwise).
//!
//! The pacer holds caller-defined handles (`H: Copy`, e.g. a buffer slot index), never packets:
//! the queues are rings allocated at construction and nothing allocates per packet.

use std::time::{Duration, Instant};

use super::probe::{ProbeCluster, ProbeId};
use crate::types::Bitrate;

/// A packet's class, in priority order (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketKind {
    /// Audio: sent at once, never held by the budget (it still counts against it).
    Audio,
    /// Retransmissions (NACK answers).
    Retransmission,
    Video,
}

const KINDS: usize = 3;

/// The most a burst may carry, bytes (libwebrtc's `kMaxBurstSize`: beyond it a socket's send
/// buffer may drop what the burst puts in it).
const MAX_BURST_BYTES: f64 = 63_000.0;

/// Parameters of a [`Pacer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacerConfig {
    /// Pacing rate as a multiple of the target.
    pub pacing_factor: f64,
    /// Handles each class's queue holds, by [`PacketKind`] (audio, retransmission, video); a
    /// caller that never queues a class gives it 0 (it still gets one slot).
    pub queue_capacity: [usize; KINDS],
    /// The budget never owes more than this much sending time (a large burst is forgiven).
    pub max_debt: Duration,
    /// The pacing rate is raised so that the queue drains within this.
    pub max_queue_time: Duration,
    /// Sending time the budget may run ahead before media waits: packets go while the debt is
    /// at most this much of the pacing rate (0: only when nothing is owed). A burst this long
    /// leaves at once after a pause, and a caller woken this late loses no budget.
    pub burst: Duration,
    /// Size of a padding packet outside probes, bytes: the least; at high padding rates a
    /// padding chunk grows to 2 ms of the rate (up to `probe_padding_max`), so a caller woken
    /// every millisecond or two keeps up.
    pub padding_size: usize,
    /// Size bounds of a padding packet inside a probe, bytes.
    pub probe_padding_min: usize,
    pub probe_padding_max: usize,
}

impl Default for PacerConfig {
    fn default() -> Self {
        PacerConfig {
            pacing_factor: 2.5,
            queue_capacity: [2048; KINDS],
            max_debt: Duration::from_millis(500),
            max_queue_time: Duration::from_secs(2),
            burst: Duration::ZERO,
            padding_size: 224,
            probe_padding_min: 200,
            probe_padding_max: 1200,
        }
    }
}

/// What to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paced<H> {
    /// A queued packet.
    Media {
        handle: H,
        size: usize,
        kind: PacketKind,
        /// Set when the packet is part of a probe cluster (tell the estimator).
        probe: Option<ProbeId>,
    },
    /// A padding packet of `size` bytes for the caller to build (RTX padding).
    Padding { size: usize, probe: Option<ProbeId> },
}

/// The queue was full; the handle is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pacer queue full")]
pub struct QueueFull<H>(pub H);

#[derive(Debug, Clone, Copy)]
struct Entry<H> {
    handle: H,
    size: usize,
}

/// A fixed-capacity FIFO of handles.
#[derive(Debug)]
struct Ring<H> {
    slots: Box<[Option<Entry<H>>]>,
    head: usize,
    len: usize,
}

impl<H: Copy> Ring<H> {
    fn new(cap: usize) -> Self {
        Ring {
            slots: vec![None; cap.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    fn push(&mut self, e: Entry<H>) -> Result<(), Entry<H>> {
        if self.len == self.slots.len() {
            return Err(e);
        }
        let i = (self.head + self.len) % self.slots.len();
        self.slots[i] = Some(e);
        self.len += 1;
        Ok(())
    }

    fn front(&self) -> Option<Entry<H>> {
        if self.len == 0 {
            return None;
        }
        self.slots[self.head]
    }

    fn pop(&mut self) -> Option<Entry<H>> {
        if self.len == 0 {
            return None;
        }
        let e = self.slots[self.head].take();
        self.head = (self.head + 1) % self.slots.len();
        self.len -= 1;
        e
    }
}

#[derive(Debug, Clone, Copy)]
struct ActiveProbe {
    cluster: ProbeCluster,
    started: Instant,
    bytes: usize,
    packets: u32,
}

/// Probe clusters waiting their turn.
const PROBE_QUEUE: usize = 4;

/// The pacer.
#[derive(Debug)]
pub struct Pacer<H> {
    cfg: PacerConfig,
    queues: [Ring<H>; KINDS],
    queued_bytes: usize,
    pacing_bps: f64,
    padding_bps: f64,
    /// Bytes sent ahead of the media budget.
    media_debt: f64,
    /// Bytes sent ahead of the padding budget.
    padding_debt: f64,
    last_update: Instant,
    probes: [Option<ProbeCluster>; PROBE_QUEUE],
    active: Option<ActiveProbe>,
    sent_media: bool,
}

impl<H: Copy> Pacer<H> {
    /// A pacer for `target`, with its queues allocated.
    pub fn new(cfg: PacerConfig, target: Bitrate, now: Instant) -> Self {
        Pacer {
            queues: cfg.queue_capacity.map(Ring::new),
            pacing_bps: cfg.pacing_factor * target.0 as f64,
            cfg,
            queued_bytes: 0,
            padding_bps: 0.0,
            media_debt: 0.0,
            padding_debt: 0.0,
            last_update: now,
            probes: [None; PROBE_QUEUE],
            active: None,
            sent_media: false,
        }
    }

    /// The estimator's target changed: the pacing rate becomes `pacing_factor × target`.
    pub fn set_target(&mut self, now: Instant, target: Bitrate) {
        self.drain_budgets(now);
        self.pacing_bps = self.cfg.pacing_factor * target.0 as f64;
    }

    /// The rate media plus padding should reach (0: no padding). Padding fills what media
    /// leaves of it, once some media was sent.
    pub fn set_padding_rate(&mut self, now: Instant, rate: Bitrate) {
        self.drain_budgets(now);
        if self.padding_bps == 0.0 {
            // Padding starts afresh: nothing sent while there was no padding rate is owed.
            self.padding_debt = 0.0;
        }
        self.padding_bps = rate.0 as f64;
    }

    /// The current pacing rate.
    pub fn pacing_rate(&self) -> Bitrate {
        Bitrate(self.effective_rate_bps() as u64)
    }

    /// Drops the probe clusters, the one being sent included (the caller cannot send them).
    pub fn cancel_probes(&mut self) {
        self.probes = [None; PROBE_QUEUE];
        self.active = None;
    }

    /// Queues a probe cluster; it starts once the earlier ones are done.
    pub fn add_probe(&mut self, cluster: ProbeCluster) {
        if let Some(slot) = self.probes.iter_mut().find(|s| s.is_none()) {
            *slot = Some(cluster);
        }
    }

    /// A packet of `size` bytes was sent without waiting in this pacer's queues (audio, media
    /// [`Pacer::may_send_now`] let go, media the caller does not pace): it counts against the
    /// budget, and probes may start once media flows.
    pub fn on_sent_unpaced(&mut self, now: Instant, size: usize) {
        self.drain_budgets(now);
        self.charge(size);
        self.sent_media = true;
    }

    /// Whether a media packet of `kind` may go at once rather than be queued: audio always;
    /// other media when nothing retransmitted or video waits (it would overtake it) and the
    /// budget allows it. A packet sent so is then reported with [`Pacer::on_sent_unpaced`].
    pub fn may_send_now(&mut self, now: Instant, kind: PacketKind) -> bool {
        self.drain_budgets(now);
        let waiting = self.queues[PacketKind::Retransmission as usize].len
            + self.queues[PacketKind::Video as usize].len;
        kind == PacketKind::Audio || (waiting == 0 && !self.media_held())
    }

    /// Queues a packet; a full queue gives the handle back.
    pub fn enqueue(
        &mut self,
        handle: H,
        size: usize,
        kind: PacketKind,
    ) -> Result<(), QueueFull<H>> {
        self.queues[kind as usize]
            .push(Entry { handle, size })
            .map_err(|e| QueueFull(e.handle))?;
        self.queued_bytes += size;
        Ok(())
    }

    /// Packets waiting.
    pub fn queued_packets(&self) -> usize {
        self.queues.iter().map(|q| q.len).sum()
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Whether a probe cluster is being sent or waits.
    pub fn is_probing(&self) -> bool {
        self.active.is_some() || self.probes.iter().any(Option::is_some)
    }

    fn effective_rate_bps(&self) -> f64 {
        // Drain the queue within `max_queue_time` even when the target is too low for it.
        let needed = self.queued_bytes as f64 * 8.0 / self.cfg.max_queue_time.as_secs_f64();
        self.pacing_bps.max(needed).max(1.0)
    }

    /// The debt media may be sent with: `burst` of the pacing rate, at most [`MAX_BURST_BYTES`].
    fn burst_bytes(&self) -> f64 {
        (self.effective_rate_bps() * self.cfg.burst.as_secs_f64() / 8.0).min(MAX_BURST_BYTES)
    }

    /// Media waits for the budget (less than a byte over is rounding from the nanosecond clock:
    /// a caller woken at `poll_timeout` must find the budget free).
    fn media_held(&self) -> bool {
        self.media_debt >= self.burst_bytes() + 1.0
    }

    fn drain_budgets(&mut self, now: Instant) {
        let dt = now
            .saturating_duration_since(self.last_update)
            .as_secs_f64();
        self.last_update = now.max(self.last_update);
        let rate = self.effective_rate_bps();
        self.media_debt = (self.media_debt - rate * dt / 8.0).max(0.0);
        // Padding may fall behind by one packet (a caller woken late catches up with two),
        // not more: a padding rate is a level to fill to, not a debt to pay back in a burst.
        let behind = if self.padding_bps > 0.0 {
            self.padding_chunk() as f64
        } else {
            0.0
        };
        self.padding_debt = (self.padding_debt - self.padding_bps * dt / 8.0).max(-behind);
        // Less than a byte left is rounding from the nanosecond clock: a caller woken at
        // `poll_timeout` must find the budget free, or it would wake again at the same instant.
        if self.media_debt < 1.0 {
            self.media_debt = 0.0;
        }
        if self.padding_debt.abs() < 1.0 {
            self.padding_debt = 0.0;
        }
    }

    /// Bytes of one padding chunk outside probes at the current padding rate.
    fn padding_chunk(&self) -> usize {
        let two_ms = (self.padding_bps * 0.002 / 8.0) as usize;
        two_ms.clamp(
            self.cfg.padding_size,
            self.cfg.probe_padding_max.max(self.cfg.padding_size),
        )
    }

    fn charge(&mut self, size: usize) {
        let max = self.effective_rate_bps() * self.cfg.max_debt.as_secs_f64() / 8.0;
        self.media_debt = (self.media_debt + size as f64).min(max);
        // What is sent counts against the padding rate only while there is one (probes sent
        // without it would otherwise hold back the next padding for as long as they lasted).
        if self.padding_bps > 0.0 {
            let max_pad = self.padding_bps * self.cfg.max_debt.as_secs_f64() / 8.0;
            self.padding_debt = (self.padding_debt + size as f64).min(max_pad);
        }
    }

    fn start_probe(&mut self, now: Instant) {
        if self.active.is_some() || !(self.sent_media || self.queued_packets() > 0) {
            return;
        }
        let Some(i) = self.probes.iter().position(Option::is_some) else {
            return;
        };
        let c = self.probes[i].take();
        self.probes[i..].rotate_left(1);
        self.active = c.map(|cluster| ActiveProbe {
            cluster,
            started: now,
            bytes: 0,
            packets: 0,
        });
    }

    /// When the active probe may send its next packet.
    fn probe_due(&self, p: &ActiveProbe) -> Instant {
        let secs = p.bytes as f64 * 8.0 / p.cluster.rate.0.max(1) as f64;
        p.started + Duration::from_secs_f64(secs)
    }

    fn pop(&mut self, kind: PacketKind) -> Option<Entry<H>> {
        let e = self.queues[kind as usize].pop()?;
        self.queued_bytes = self.queued_bytes.saturating_sub(e.size);
        Some(e)
    }

    fn next_media(&mut self, paced_only: bool) -> Option<(Entry<H>, PacketKind)> {
        let kinds: &[PacketKind] = if paced_only {
            &[PacketKind::Retransmission, PacketKind::Video]
        } else {
            &[
                PacketKind::Audio,
                PacketKind::Retransmission,
                PacketKind::Video,
            ]
        };
        kinds
            .iter()
            .find(|&&k| self.queues[k as usize].front().is_some())
            .and_then(|&k| self.pop(k).map(|e| (e, k)))
    }

    /// The next packet to send at `now`, if one is due. Call until it returns `None`, then wait
    /// for [`Pacer::poll_timeout`] or the next [`Pacer::enqueue`].
    pub fn poll_send(&mut self, now: Instant) -> Option<Paced<H>> {
        self.drain_budgets(now);
        // Audio is never held.
        if let Some(e) = self.pop(PacketKind::Audio) {
            return Some(self.sent(e, PacketKind::Audio, None));
        }
        self.start_probe(now);
        if let Some(p) = self.active {
            if now < self.probe_due(&p) {
                return None;
            }
            let id = Some(p.cluster.id);
            let out = match self.next_media(true) {
                Some((e, k)) => self.sent(e, k, id),
                None => {
                    let size = ((p.cluster.rate.0 as f64 * 0.002 / 8.0) as usize)
                        .clamp(self.cfg.probe_padding_min, self.cfg.probe_padding_max);
                    self.charge(size);
                    Paced::Padding { size, probe: id }
                }
            };
            let size = match out {
                Paced::Media { size, .. } | Paced::Padding { size, .. } => size,
            };
            if let Some(a) = self.active.as_mut() {
                a.bytes += size;
                a.packets += 1;
                if a.packets >= a.cluster.min_packets && a.bytes >= a.cluster.min_bytes {
                    self.active = None;
                }
            }
            return Some(out);
        }
        if self.media_held() {
            return None;
        }
        if let Some((e, k)) = self.next_media(true) {
            return Some(self.sent(e, k, None));
        }
        if self.padding_bps > 0.0 && self.sent_media && self.padding_debt <= 0.0 {
            let size = self.padding_chunk();
            self.charge(size);
            return Some(Paced::Padding { size, probe: None });
        }
        None
    }

    fn sent(&mut self, e: Entry<H>, kind: PacketKind, probe: Option<ProbeId>) -> Paced<H> {
        self.charge(e.size);
        self.sent_media = true;
        Paced::Media {
            handle: e.handle,
            size: e.size,
            kind,
            probe,
        }
    }

    /// When [`Pacer::poll_send`] may next have something; `None` while there is nothing to
    /// send and no padding or probe to make.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.queues[PacketKind::Audio as usize].len > 0 {
            return Some(self.last_update);
        }
        if let Some(p) = &self.active {
            return Some(self.probe_due(p));
        }
        if self.probes.iter().any(Option::is_some) && (self.sent_media || self.queued_packets() > 0)
        {
            return Some(self.last_update);
        }
        let media_free = |debt: f64| {
            self.last_update
                + Duration::from_secs_f64(debt.max(0.0) * 8.0 / self.effective_rate_bps())
        };
        if self.queued_packets() > 0 {
            return Some(media_free(self.media_debt - self.burst_bytes()));
        }
        let media_free = media_free(self.media_debt);
        if self.padding_bps > 0.0 && self.sent_media {
            let pad_free = self.last_update
                + Duration::from_secs_f64(self.padding_debt.max(0.0) * 8.0 / self.padding_bps);
            return Some(media_free.max(pad_free));
        }
        None
    }
}

#[cfg(test)]
#[path = "pacer_tests.rs"]
mod tests;
