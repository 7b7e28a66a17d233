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

/// Parameters of a [`Pacer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacerConfig {
    /// Pacing rate as a multiple of the target.
    pub pacing_factor: f64,
    /// Handles each class's queue holds.
    pub queue_capacity: usize,
    /// The budget never owes more than this much sending time (a large burst is forgiven).
    pub max_debt: Duration,
    /// The pacing rate is raised so that the queue drains within this.
    pub max_queue_time: Duration,
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
            queue_capacity: 2048,
            max_debt: Duration::from_millis(500),
            max_queue_time: Duration::from_secs(2),
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
            queues: [
                Ring::new(cfg.queue_capacity),
                Ring::new(cfg.queue_capacity),
                Ring::new(cfg.queue_capacity),
            ],
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

    /// Queues a probe cluster; it starts once the earlier ones are done.
    pub fn add_probe(&mut self, cluster: ProbeCluster) {
        if let Some(slot) = self.probes.iter_mut().find(|s| s.is_none()) {
            *slot = Some(cluster);
        }
    }

    /// A packet of `size` bytes was sent without passing through this pacer (media the caller
    /// does not pace): it counts against the budget, and probes may start once media flows.
    pub fn on_sent_unpaced(&mut self, now: Instant, size: usize) {
        self.drain_budgets(now);
        self.charge(size);
        self.sent_media = true;
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
        if self.media_debt > 0.0 {
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
        let media_free = self.last_update
            + Duration::from_secs_f64(self.media_debt * 8.0 / self.effective_rate_bps());
        if self.queued_packets() > 0 {
            return Some(media_free);
        }
        if self.padding_bps > 0.0 && self.sent_media {
            let pad_free = self.last_update
                + Duration::from_secs_f64(self.padding_debt.max(0.0) * 8.0 / self.padding_bps);
            return Some(media_free.max(pad_free));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_until(p: &mut Pacer<u32>, t0: Instant, ms: u64) -> Vec<(u64, Paced<u32>)> {
        let mut out = Vec::new();
        let mut now = t0;
        let end = t0 + Duration::from_millis(ms);
        while now <= end {
            while let Some(x) = p.poll_send(now) {
                out.push(((now - t0).as_micros() as u64, x));
            }
            match p.poll_timeout() {
                Some(t) if t > now => now = t.min(end + Duration::from_micros(1)),
                Some(_) => now += Duration::from_micros(100),
                None => break,
            }
        }
        out
    }

    #[test]
    fn media_leaves_at_pacing_factor_times_target() {
        let t0 = Instant::now();
        // 400 kbit/s target × 2.5 = 1 Mbit/s: a 1000-byte packet every 8 ms.
        let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(400), t0);
        for i in 0..50 {
            p.enqueue(i, 1000, PacketKind::Video).expect("room");
        }
        let sent = drain_until(&mut p, t0, 1000);
        assert_eq!(sent.len(), 50);
        let last = sent[49].0;
        assert!(
            (390_000..=394_000).contains(&last),
            "50th packet at {last} µs, expected 49 × 8 ms"
        );
    }

    #[test]
    fn waking_at_poll_timeout_always_finds_something_to_send() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), Bitrate(437_123), t0);
        for i in 0..300u32 {
            p.enqueue(i, 1000 + (i as usize * 37) % 200, PacketKind::Video)
                .expect("room");
        }
        let mut now = t0;
        let (mut sent, mut idle_wakeups) = (0, 0);
        while let Some(t) = p.poll_timeout() {
            now = now.max(t);
            match p.poll_send(now) {
                Some(_) => sent += 1,
                None => idle_wakeups += 1,
            }
            assert!(idle_wakeups < 10, "woken {idle_wakeups} times for nothing");
        }
        assert_eq!(sent, 300);
    }

    #[test]
    fn priorities_are_audio_then_retransmission_then_video() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(400), t0);
        p.enqueue(1, 1000, PacketKind::Video).expect("room");
        p.enqueue(2, 1000, PacketKind::Retransmission)
            .expect("room");
        p.enqueue(3, 100, PacketKind::Audio).expect("room");
        p.enqueue(4, 100, PacketKind::Audio).expect("room");
        let order: Vec<u32> = drain_until(&mut p, t0, 100)
            .into_iter()
            .filter_map(|(_, x)| match x {
                Paced::Media { handle, .. } => Some(handle),
                Paced::Padding { .. } => None,
            })
            .collect();
        assert_eq!(order, [3, 4, 2, 1]);
    }

    #[test]
    fn audio_is_not_held_by_the_budget() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(100), t0);
        p.enqueue(1, 1200, PacketKind::Video).expect("room");
        assert!(matches!(
            p.poll_send(t0),
            Some(Paced::Media { handle: 1, .. })
        ));
        p.enqueue(2, 1200, PacketKind::Video).expect("room");
        p.enqueue(3, 100, PacketKind::Audio).expect("room");
        assert!(matches!(
            p.poll_send(t0),
            Some(Paced::Media { handle: 3, .. })
        ));
        assert_eq!(p.poll_send(t0), None, "video waits for the budget");
    }

    #[test]
    fn a_full_queue_gives_the_handle_back() {
        let t0 = Instant::now();
        let cfg = PacerConfig {
            queue_capacity: 2,
            ..PacerConfig::default()
        };
        let mut p = Pacer::new(cfg, Bitrate::kbps(100), t0);
        p.enqueue(1, 10, PacketKind::Video).expect("room");
        p.enqueue(2, 10, PacketKind::Video).expect("room");
        assert_eq!(p.enqueue(3, 10, PacketKind::Video), Err(QueueFull(3)));
        assert!(
            p.enqueue(4, 10, PacketKind::Audio).is_ok(),
            "classes are separate"
        );
    }

    #[test]
    fn padding_fills_up_to_the_padding_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(1000), t0);
        p.enqueue(0, 1000, PacketKind::Video).expect("room");
        p.set_padding_rate(t0, Bitrate::kbps(500));
        let sent = drain_until(&mut p, t0, 2000);
        let bytes: usize = sent
            .iter()
            .map(|(_, x)| match x {
                Paced::Media { size, .. } | Paced::Padding { size, .. } => *size,
            })
            .sum();
        let rate = bytes as f64 * 8.0 / 2.0;
        assert!((480_000.0..530_000.0).contains(&rate), "sent {rate} bit/s");
    }

    #[test]
    fn padding_keeps_up_with_a_high_rate_when_woken_every_two_milliseconds() {
        // A trial's 2.2 Mbit/s over 640 kbit/s of media, the caller woken only every 2 ms
        // (a busy shard): chunks of 2 ms of the rate keep the total at the rate.
        let t0 = Instant::now();
        let mut p: Pacer<u32> = Pacer::new(PacerConfig::default(), Bitrate::kbps(2500), t0);
        p.on_sent_unpaced(t0, 1000);
        p.set_padding_rate(t0, Bitrate::kbps(2200));
        let mut bytes = 1000usize;
        let mut now = t0;
        let end = t0 + Duration::from_millis(250);
        let mut media_at = t0;
        while now < end {
            now += Duration::from_millis(2);
            if now >= media_at + Duration::from_millis(12) {
                // 640 kbit/s of media: 1000 bytes every 12.5 ms.
                p.on_sent_unpaced(now, 1000);
                bytes += 1000;
                media_at = now;
            }
            while let Some(Paced::Padding { size, .. }) = p.poll_send(now) {
                bytes += size;
            }
        }
        let rate = bytes as f64 * 8.0 / 0.25;
        assert!(rate >= 0.95 * 2_200_000.0, "sent {rate:.0} bit/s");
        assert!(rate <= 1.1 * 2_200_000.0, "sent {rate:.0} bit/s");
    }

    #[test]
    fn probes_sent_before_a_padding_rate_do_not_hold_its_padding_back() {
        let t0 = Instant::now();
        let mut p: Pacer<u32> = Pacer::new(PacerConfig::default(), Bitrate::kbps(2000), t0);
        p.on_sent_unpaced(t0, 1000);
        // Three probe clusters of 40 kB each, without a padding rate.
        for id in 0..3 {
            p.add_probe(ProbeCluster {
                id: ProbeId(id),
                rate: Bitrate::kbps(4000),
                min_packets: 5,
                min_bytes: 40_000,
            });
        }
        let end = drain_until(&mut p, t0, 1000)
            .last()
            .map_or(0, |(us, _)| *us);
        let t1 = t0 + Duration::from_micros(end) + Duration::from_millis(500);
        p.on_sent_unpaced(t1, 1000);
        p.set_padding_rate(t1, Bitrate::kbps(2000));
        let sent = drain_until(&mut p, t1, 100);
        let padding: usize = sent
            .iter()
            .map(|(_, x)| match x {
                Paced::Padding { size, .. } => *size,
                Paced::Media { .. } => 0,
            })
            .sum();
        // 100 ms at 2 Mbit/s is 25 kB, the 1000 bytes of media included.
        assert!(padding >= 22_000, "padding {padding} bytes in 100 ms");
    }

    #[test]
    fn a_probe_cluster_is_sent_at_its_rate_with_padding() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig::default(), Bitrate::kbps(300), t0);
        p.enqueue(0, 1000, PacketKind::Video).expect("room");
        p.add_probe(ProbeCluster {
            id: ProbeId(7),
            rate: Bitrate::kbps(4000),
            min_packets: 5,
            min_bytes: 7500,
        });
        let sent = drain_until(&mut p, t0, 100);
        let probe: Vec<_> = sent
            .iter()
            .filter(|(_, x)| {
                matches!(
                    x,
                    Paced::Padding {
                        probe: Some(ProbeId(7)),
                        ..
                    } | Paced::Media {
                        probe: Some(ProbeId(7)),
                        ..
                    }
                )
            })
            .collect();
        let bytes: usize = probe
            .iter()
            .map(|(_, x)| match x {
                Paced::Media { size, .. } | Paced::Padding { size, .. } => *size,
            })
            .sum();
        assert!(
            bytes >= 7500 && probe.len() >= 5,
            "{} packets, {bytes} B",
            probe.len()
        );
        // Rate over the cluster: bytes before the last packet over the span.
        let span = (probe.last().expect("packets").0 - probe[0].0) as f64 / 1e6;
        let last = match probe.last().expect("packets").1 {
            Paced::Media { size, .. } | Paced::Padding { size, .. } => size,
        };
        let rate = (bytes - last) as f64 * 8.0 / span;
        assert!(
            (3_800_000.0..4_200_000.0).contains(&rate),
            "probe at {rate}"
        );
        assert!(!p.is_probing());
    }
}
