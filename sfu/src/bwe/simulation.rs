//! End-to-end simulation of the send-side estimator over a [`SimLink`]: a sender whose encoder
//! produces video (and audio) at `min(target, source max)` through the [`Pacer`] and
//! [`SendSideBwe`], a receiver that stamps arrivals into a real [`TwccReceiver`], and its
//! transport-cc packets carried back over a return path, parsed with `TransportCc::parse`.
//!
//! Test support (feature `sim`): it allocates freely and runs on a virtual clock in 1 ms steps.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::pacer::{Paced, Pacer, PacerConfig, PacketKind};
use super::send_side::{BweStats, SendSideBwe, SendSideConfig};
use super::sim_link::{LinkConfig, LinkStats, SimLink};
use super::twcc_receiver::{TwccReceiver, TwccReceiverConfig};
use crate::types::{Bitrate, Ssrc};
use crate::wire::rtcp::{self, RtcpPacket};

/// One simulated run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: &'static str,
    pub link: LinkConfig,
    pub duration: Duration,
    /// The most the encoder produces.
    pub source_max: Bitrate,
    /// Delay of the feedback path (lossless, uncongested).
    pub return_delay: Duration,
    pub bwe: SendSideConfig,
    /// Whether an audio stream (50 packets/s of 120 bytes) runs beside the video.
    pub audio: bool,
}

impl Scenario {
    /// A scenario with the default estimator and a 5 Mbit/s source.
    pub fn new(name: &'static str, link: LinkConfig, duration: Duration) -> Self {
        Scenario {
            name,
            return_delay: link.delay,
            link,
            duration,
            source_max: Bitrate::kbps(5000),
            bwe: SendSideConfig::default(),
            audio: true,
        }
    }
}

/// State every 100 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the start.
    pub t: f64,
    pub capacity: Bitrate,
    pub stats: BweStats,
    /// What was handed to the link over the last 100 ms, bit/s.
    pub send_rate: Bitrate,
    /// Mean queueing delay (arrival − send − propagation) of packets that arrived in the last
    /// 100 ms, ms.
    pub queue_delay_ms: f64,
    /// Packets dropped by the link in the last 100 ms and packets offered to it.
    pub dropped: u64,
    pub offered: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct SimResult {
    pub scenario: Scenario,
    pub samples: Vec<Sample>,
    pub link: LinkStats,
}

impl SimResult {
    /// Samples with `from <= t < to` (seconds).
    pub fn window(&self, from: f64, to: f64) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.t >= from && s.t < to)
    }

    /// Mean target over a window, bit/s.
    pub fn mean_target(&self, from: f64, to: f64) -> f64 {
        let (sum, n) = self
            .window(from, to)
            .fold((0.0, 0), |(s, n), x| (s + x.stats.target.0 as f64, n + 1));
        if n == 0 { 0.0 } else { sum / f64::from(n) }
    }

    /// Smallest and largest target over a window, bit/s.
    pub fn target_range(&self, from: f64, to: f64) -> (u64, u64) {
        self.window(from, to).fold((u64::MAX, 0), |(lo, hi), x| {
            (lo.min(x.stats.target.0), hi.max(x.stats.target.0))
        })
    }

    /// Fraction of offered packets the link dropped over a window.
    pub fn loss(&self, from: f64, to: f64) -> f64 {
        let (d, o) = self
            .window(from, to)
            .fold((0, 0), |(d, o), x| (d + x.dropped, o + x.offered));
        if o == 0 { 0.0 } else { d as f64 / o as f64 }
    }

    /// Mean send rate over a window, bit/s.
    pub fn mean_send_rate(&self, from: f64, to: f64) -> f64 {
        let (sum, n) = self
            .window(from, to)
            .fold((0.0, 0), |(s, n), x| (s + x.send_rate.0 as f64, n + 1));
        if n == 0 { 0.0 } else { sum / f64::from(n) }
    }

    /// Largest mean queueing delay of any 100 ms over a window, ms.
    pub fn max_queue_delay_ms(&self, from: f64, to: f64) -> f64 {
        self.window(from, to)
            .map(|s| s.queue_delay_ms)
            .fold(0.0, f64::max)
    }
}

/// A packet on the simulated wire.
#[derive(Debug, Clone, Copy)]
struct WirePacket {
    seq: u16,
    sent: Instant,
}

const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const AUDIO_SIZE: usize = 120;
const MAX_PAYLOAD: usize = 1200;
const STEP: Duration = Duration::from_millis(1);
const SAMPLE: Duration = Duration::from_millis(100);

/// Runs a scenario to its end.
pub fn run(scenario: &Scenario) -> SimResult {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(scenario.bwe, t0);
    bwe.set_desired_max(t0, scenario.source_max);
    let mut pacer: Pacer<usize> = Pacer::new(PacerConfig::default(), bwe.target(), t0);
    let mut link: SimLink<WirePacket> = SimLink::new(scenario.link.clone(), t0);
    let mut rx = TwccReceiver::new(TwccReceiverConfig::default());
    let mut back: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut fb_buf = vec![0u8; 1500];

    let mut next_frame = t0;
    let mut next_audio = t0;
    let mut next_sample = t0 + SAMPLE;
    let mut seq: u16 = 0;
    let mut sent_bytes = 0usize;
    let mut delay_sum = 0.0;
    let mut delay_n = 0u32;
    let mut prev_link = LinkStats::default();
    let mut samples = Vec::new();
    let mut last_target = bwe.target();

    let mut now = t0;
    let end = t0 + scenario.duration;
    while now < end {
        // Encoder.
        let target = bwe.target();
        if target != last_target {
            pacer.set_target(now, target);
            last_target = target;
        }
        let audio_rate = if scenario.audio {
            AUDIO_SIZE as u64 * 8 * 50
        } else {
            0
        };
        if scenario.audio && now >= next_audio {
            next_audio += AUDIO_INTERVAL;
            let _ = pacer.enqueue(AUDIO_SIZE, AUDIO_SIZE, PacketKind::Audio);
        }
        if now >= next_frame {
            next_frame += FRAME_INTERVAL;
            let rate = target.min(scenario.source_max).0.saturating_sub(audio_rate);
            let mut frame = (rate as f64 * FRAME_INTERVAL.as_secs_f64() / 8.0) as usize;
            while frame > 0 {
                let n = frame.clamp(100, MAX_PAYLOAD);
                let _ = pacer.enqueue(n, n, PacketKind::Video);
                frame = frame.saturating_sub(n);
            }
        }
        while let Some(c) = bwe.poll_probe() {
            pacer.add_probe(c);
        }
        // Pacer → estimator → link.
        while let Some(p) = pacer.poll_send(now) {
            let (size, probe) = match p {
                Paced::Media { size, probe, .. } | Paced::Padding { size, probe } => (size, probe),
            };
            bwe.on_packet_sent(now, seq, size, probe);
            link.send(now, WirePacket { seq, sent: now }, size);
            seq = seq.wrapping_add(1);
            sent_bytes += size;
        }
        // Receiver.
        while let Some((at, p)) = link.poll_deliver(now) {
            rx.on_packet(at, p.seq);
            let d =
                (at - p.sent).as_secs_f64() * 1000.0 - scenario.link.delay.as_secs_f64() * 1000.0;
            delay_sum += d;
            delay_n += 1;
        }
        while let Some(n) = rx.poll_feedback(now, Ssrc(1), Ssrc(2), &mut fb_buf) {
            back.push_back((now + scenario.return_delay, fb_buf[..n].to_vec()));
        }
        // Feedback back at the sender.
        while back.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, buf)) = back.pop_front() else {
                break;
            };
            for pkt in rtcp::iter(&buf).flatten() {
                if let RtcpPacket::TransportCc(fb) = pkt {
                    bwe.handle_feedback(now, &fb);
                }
            }
        }
        if bwe.poll_timeout().is_some_and(|t| t <= now) {
            bwe.handle_timeout(now);
        }
        if now >= next_sample {
            next_sample += SAMPLE;
            let ls = link.stats();
            samples.push(Sample {
                t: (now - t0).as_secs_f64(),
                capacity: link.capacity_at(now),
                stats: bwe.stats(),
                send_rate: Bitrate((sent_bytes as f64 * 8.0 / SAMPLE.as_secs_f64()) as u64),
                queue_delay_ms: if delay_n == 0 {
                    0.0
                } else {
                    delay_sum / f64::from(delay_n)
                },
                dropped: ls.dropped_queue + ls.dropped_random
                    - prev_link.dropped_queue
                    - prev_link.dropped_random,
                offered: ls.sent - prev_link.sent,
            });
            prev_link = ls;
            sent_bytes = 0;
            delay_sum = 0.0;
            delay_n = 0;
        }
        now += STEP;
    }
    SimResult {
        scenario: scenario.clone(),
        samples,
        link: link.stats(),
    }
}

/// The capacity steps of RFC 8867 §5.1 as used here: 1 → 2.5 → 0.6 → 1 Mbit/s, `stage` each,
/// 50 ms one-way delay on a 300 ms drop-tail queue.
pub fn capacity_steps(stage: Duration) -> Scenario {
    let link = LinkConfig {
        capacity: vec![
            (Duration::ZERO, Bitrate::kbps(1000)),
            (stage, Bitrate::kbps(2500)),
            (stage * 2, Bitrate::kbps(600)),
            (stage * 3, Bitrate::kbps(1000)),
        ],
        delay: Duration::from_millis(50),
        ..LinkConfig::default()
    };
    Scenario::new("capacity_steps", link, stage * 4)
}

/// A steady 1.5 Mbit/s link with `loss` random loss.
pub fn random_loss(loss: f64, duration: Duration) -> Scenario {
    let link = LinkConfig {
        capacity: vec![(Duration::ZERO, Bitrate::kbps(1500))],
        delay: Duration::from_millis(50),
        loss,
        seed: 7,
        ..LinkConfig::default()
    };
    Scenario::new("random_loss", link, duration)
}

/// A steady 1.5 Mbit/s link with 100 ms one-way delay and up to `jitter` extra.
pub fn delay_jitter(jitter: Duration, duration: Duration) -> Scenario {
    let link = LinkConfig {
        capacity: vec![(Duration::ZERO, Bitrate::kbps(1500))],
        delay: Duration::from_millis(100),
        jitter,
        seed: 11,
        ..LinkConfig::default()
    };
    Scenario::new("delay_jitter", link, duration)
}
