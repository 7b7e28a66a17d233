//! Send-side bandwidth estimation toward viewers, through the shard core on the simulated
//! network: transport-wide sequence numbers on everything a viewer gets, probes at session
//! start, and feedback from a viewer behind a bottleneck driving the estimate.
#![allow(clippy::unwrap_used)] // in tests an unwrap is an assertion

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use sfu::bwe::sim_link::{LinkConfig, SimLink};
use sfu::bwe::{TwccReceiver, TwccReceiverConfig};
use sfu::io::RecvMeta;
use sfu::sim::{Harness, VIEW_VP8_RTX};
use sfu::wire::rtcp;
use sfu::wire::rtp::{RtpHeader, parse_transport_cc_seq};
use sfu::wire::{PacketClass, classify};
use sfu::{Bitrate, PayloadType, Ssrc};

const TWCC_ID: u8 = 9;

/// The transport-wide sequence number of a (plaintext or SRTP: the header is clear) packet.
fn transport_seq(pkt: &[u8]) -> Option<u16> {
    let mut head = pkt.to_vec();
    head[0] &= !0x20; // the padding count of an SRTP packet is encrypted
    let h = RtpHeader::parse(&head).ok()?;
    let v = h.extension(&head, TWCC_ID)?;
    parse_transport_cc_seq(v).ok().map(|s| s.0)
}

fn send_from_viewer(h: &mut Harness, v: usize, mut buf: Vec<u8>, n: usize) {
    buf.resize(n + 64, 0);
    let n = h.peers[v].client.protect_rtcp(&mut buf, n).unwrap();
    buf.truncate(n);
    let (addr, now) = (h.peers[v].addr, h.now);
    h.cores[0].handle_datagram(
        now,
        RecvMeta {
            src: addr,
            dst_ip: None,
        },
        &mut buf,
    );
}

#[test]
fn every_packet_to_a_viewer_carries_consecutive_transport_seq_across_media_rtx_and_padding() {
    let mut h = Harness::new(1);
    let _p = h.add_publisher(0, 1);
    let v = h.add_twcc_viewer(0, 1, TWCC_ID);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_secs(2));
    // A NACK from the viewer for a recent packet: answered with RTX.
    let video = h.video_received(v);
    let (lost, media) = (video[video.len() - 5].0.seq, video[0].0.ssrc);
    let mut buf = vec![0u8; 256];
    let n = rtcp::write_nack(&mut buf, Ssrc(42), media, &[lost]).unwrap();
    send_from_viewer(&mut h, v, buf, n);
    h.run(Duration::from_millis(500));

    let pkts = &h.peers[v].rtp;
    let mut seqs = Vec::new();
    let (mut rtx, mut padding, mut media_pkts) = (0, 0, 0);
    for b in pkts {
        let hdr = RtpHeader::parse(b).unwrap();
        let seq = transport_seq(b).unwrap_or_else(|| panic!("no transport seq on {hdr:?}"));
        seqs.push(seq);
        if hdr.payload_type == PayloadType(VIEW_VP8_RTX) {
            if hdr.payload_len == 0 {
                padding += 1;
            } else {
                rtx += 1;
            }
        } else {
            media_pkts += 1;
        }
    }
    assert!(
        media_pkts > 100 && rtx >= 1 && padding >= 5,
        "media {media_pkts} rtx {rtx} padding {padding}"
    );
    let set: BTreeSet<u16> = seqs.iter().copied().collect();
    assert_eq!(set.len(), seqs.len(), "no sequence number used twice");
    let (lo, hi) = (*set.first().unwrap(), *set.last().unwrap());
    assert_eq!(lo, 1, "the counter starts at 1");
    assert_eq!(
        usize::from(hi - lo) + 1,
        seqs.len(),
        "no gaps: every stamped number reached the viewer"
    );
    let stats = h.cores[0].viewer_estimate(h.peers[v].session).unwrap();
    assert_eq!(stats.packets_sent, seqs.len() as u64);
}

#[test]
fn probes_go_out_as_rtx_padding_at_session_start() {
    let mut h = Harness::new(1);
    let _p = h.add_publisher(0, 1);
    let v = h.add_twcc_viewer(0, 1, TWCC_ID);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_millis(1500));
    let pkts = &h.peers[v].rtp;
    let first_padding = pkts
        .iter()
        .position(|b| RtpHeader::parse(b).unwrap().payload_len == 0)
        .expect("probe padding was sent");
    assert!(
        first_padding < 20,
        "probing starts with the first media (packet {first_padding})"
    );
    let padded = pkts
        .iter()
        .filter(|b| RtpHeader::parse(b).unwrap().payload_len == 0)
        .count();
    let stats = h.cores[0].viewer_estimate(h.peers[v].session).unwrap();
    assert_eq!(stats.padding_packets, padded as u64);
    // Initial clusters at 3× and 6× the 300 kbit/s start, ≥ 15 ms each: ≥ 1688 + 3375 bytes on
    // the wire, padding and the video the pacer held back.
    assert!(
        stats.probe_bytes >= 5_000 && stats.padding_bytes > 0,
        "probe {} bytes, padding {} bytes",
        stats.probe_bytes,
        stats.padding_bytes
    );
    // Without feedback nothing is learnt: the target stays at the start rate.
    assert_eq!(stats.target, Bitrate::kbps(300));
    assert_eq!(stats.feedback_received, 0);
}

/// Sets the publisher's video rate (30 fps, packets of at most 1100 bytes) to `rate` minus
/// the audio: what an allocator that follows the estimate would forward to a single viewer.
fn follow_target(h: &mut Harness, p: usize, rate: Bitrate) {
    let src = h.peers[p].publisher.as_mut().unwrap();
    if !src.at_frame_start() {
        return;
    }
    let video = rate.0.saturating_sub(80_000).max(100_000);
    let frame_bytes = (video / 8 / 30) as usize;
    src.packets_per_frame = frame_bytes.div_ceil(1100).max(1);
    src.video_payload = (frame_bytes / src.packets_per_frame).max(16);
}

/// A packet the shard sent the viewer: when, its RTP timestamp and payload type, and its size
/// on the wire.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: std::time::Instant,
    ts: u32,
    pt: PayloadType,
    size: usize,
}

/// A viewer behind a bottleneck whose capacity follows a schedule: the shard's packets to it
/// cross a simulated link (300 ms drop-tail queue, 25 ms one way) and are logged as they leave
/// the shard, and the viewer's transport-cc feedback (every 50 ms) comes back.
struct Bottleneck {
    h: Harness,
    p: usize,
    v: usize,
    link: Rc<RefCell<SimLink<u16>>>,
    clock: Rc<RefCell<std::time::Instant>>,
    sent: Rc<RefCell<Vec<Sent>>>,
    twcc: TwccReceiver,
}

impl Bottleneck {
    fn new(schedule: Vec<(Duration, Bitrate)>) -> Self {
        // The publisher follows the estimate, so its video always sits at the edge of the
        // viewer's budget: an allocator free to pause would cut it off and leave the estimator
        // nothing to measure. These tests are about the estimator and the pacer, so video is
        // never paused here.
        let mut h = Harness::with_config(1, sfu::sim::config_without_pauses());
        let p = h.add_publisher(0, 1);
        let v = h.add_twcc_viewer(0, 1, TWCC_ID);
        assert!(h.connect_all(Duration::from_secs(5)));
        let viewer = h.peers[v].addr;
        let link = Rc::new(RefCell::new(SimLink::<u16>::new(
            LinkConfig {
                capacity: schedule,
                ..LinkConfig::default()
            },
            h.now,
        )));
        let clock = Rc::new(RefCell::new(h.now));
        let sent = Rc::new(RefCell::new(Vec::new()));
        {
            let (link, clock, sent) = (Rc::clone(&link), Rc::clone(&clock), Rc::clone(&sent));
            h.drop_filter = Some(Box::new(move |_from, to, bytes| {
                if to != viewer || classify(bytes) != PacketClass::Rtp {
                    return false;
                }
                let at = *clock.borrow();
                // With IP and UDP headers.
                let size = bytes.len() + 28;
                if let Ok(hdr) = RtpHeader::parse(bytes) {
                    sent.borrow_mut().push(Sent {
                        at,
                        ts: hdr.timestamp,
                        pt: hdr.payload_type,
                        size,
                    });
                }
                if let Some(seq) = transport_seq(bytes) {
                    link.borrow_mut().send(at, seq, size);
                }
                true
            }));
        }
        Bottleneck {
            h,
            p,
            v,
            link,
            clock,
            sent,
            twcc: TwccReceiver::new(TwccReceiverConfig::default()),
        }
    }

    /// One millisecond: the shard and the peers run, the link delivers, the viewer's feedback
    /// goes back. Returns the viewer's target.
    fn step(&mut self) -> Bitrate {
        let h = &mut self.h;
        *self.clock.borrow_mut() = h.now;
        h.step();
        let now = h.now;
        while let Some((at, seq)) = self.link.borrow_mut().poll_deliver(now) {
            self.twcc.on_packet(at, seq);
        }
        loop {
            let mut buf = vec![0u8; 1500];
            let Some(n) = self
                .twcc
                .poll_feedback(now, Ssrc(77), Ssrc(0x5000_0000), &mut buf)
            else {
                break;
            };
            send_from_viewer(h, self.v, buf, n);
        }
        h.now += Duration::from_millis(1);
        self.stats().target
    }

    fn stats(&self) -> sfu::control::ViewerBweStats {
        let session = self.h.peers[self.v].session;
        self.h.cores[0].viewer_estimate(session).unwrap()
    }
}

/// Runs [`Bottleneck`] for `secs` seconds with the publisher's rate following the estimate.
/// Returns the target sampled every 100 ms, the harness, the viewer and the link.
fn run_behind_link(
    schedule: Vec<(Duration, Bitrate)>,
    secs: u64,
) -> (Vec<Bitrate>, Harness, usize, Rc<RefCell<SimLink<u16>>>) {
    let mut b = Bottleneck::new(schedule);
    let mut samples = Vec::new();
    for ms in 0..secs * 1000 {
        let target = b.step();
        follow_target(&mut b.h, b.p, target);
        if ms % 100 == 0 {
            samples.push(target);
        }
    }
    (samples, b.h, b.v, b.link)
}

/// Mean, min and max of `samples[from..to]` (100 ms samples) relative to `capacity`.
fn relative(samples: &[Bitrate], from: usize, to: usize, capacity: Bitrate) -> (f64, f64, f64) {
    let r: Vec<f64> = samples[from..to]
        .iter()
        .map(|b| b.0 as f64 / capacity.0 as f64)
        .collect();
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    let (min, max) = r
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
    (mean, min, max)
}

#[test]
fn viewer_feedback_behind_a_bottleneck_drives_the_estimate_to_its_capacity() {
    let (one, two) = (Bitrate::kbps(1000), Bitrate::kbps(2500));
    let schedule = vec![(Duration::ZERO, one), (Duration::from_secs(30), two)];
    let (samples, h, v, link) = run_behind_link(schedule, 60);
    let stats = h.cores[0].viewer_estimate(h.peers[v].session).unwrap();
    eprintln!(
        "targets (kbit/s, every second): {:?}",
        samples
            .iter()
            .step_by(10)
            .map(|b| b.0 / 1000)
            .collect::<Vec<_>>()
    );
    eprintln!("{stats:?}\n{:?}", link.borrow().stats());
    assert!(stats.feedback_received > 1000, "feedback every 50 ms");
    assert!(
        samples[10].0 > 600_000,
        "the initial probes lift the estimate from 300 kbit/s within 1 s: {:?}",
        samples[10]
    );
    // docs/BWE.md: every sample of the last 10 s of a 30 s stage within 15 % of capacity
    // (measured: 0.883–0.977 at 1 Mbit/s, 0.948–1.057 at 2.5 Mbit/s). The mean (measured 0.926
    // and 1.018, where the estimator alone gives 0.958 and 0.961) must be within 12 %. At
    // 2.5 Mbit/s this sender, which fills the estimate exactly with one burst per frame, ends
    // on a standing queue: 188 drops in the last 10 s (see docs/BWE.md).
    for (from, cap) in [(200, one), (500, two)] {
        let (mean, min, max) = relative(&samples, from, from + 100, cap);
        eprintln!(
            "{} kbit/s: mean {mean:.3} min {min:.3} max {max:.3}",
            cap.0 / 1000
        );
        assert!((0.88..=1.10).contains(&mean), "mean {mean:.3} × {cap:?}");
        assert!(
            min >= 0.85 && max <= 1.15,
            "min {min:.3} max {max:.3} × {cap:?}"
        );
    }
}

#[test]
fn raising_the_desired_maximum_sends_a_probe() {
    let mut h = Harness::new(1);
    let p = h.add_publisher(0, 1);
    // Video that fits the 300 kbit/s start estimate (one 500-byte packet per picture), so the
    // viewer's allocator has no step up to probe for on its own.
    let src = h.peers[p].publisher.as_mut().unwrap();
    src.packets_per_frame = 1;
    src.video_payload = 500;
    let v = h.add_twcc_viewer(0, 1, TWCC_ID);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_secs(3));
    let session = h.peers[v].session;
    let before = h.cores[0].viewer_estimate(session).unwrap().padding_packets;
    h.run(Duration::from_secs(1));
    assert_eq!(
        h.cores[0].viewer_estimate(session).unwrap().padding_packets,
        before,
        "no probes while nothing changes"
    );
    let now = h.now;
    h.cores[0].handle_command(
        now,
        sfu::control::Command::SetDesiredMax {
            session,
            max: Bitrate::kbps(5000),
        },
    );
    h.run(Duration::from_millis(200));
    assert!(h.cores[0].viewer_estimate(session).unwrap().padding_packets > before);
}

#[test]
fn a_keyframe_burst_toward_a_narrow_viewer_leaves_at_the_pacing_rate() {
    let mut b = Bottleneck::new(vec![(Duration::ZERO, Bitrate::kbps(500))]);
    for _ in 0..8000 {
        let target = b.step();
        follow_target(&mut b.h, b.p, target);
    }
    let target = b.stats().target;
    let before = b.stats().paced_packets;
    // A keyframe of 20 packets (about 23 kB on the wire, 370 ms of the link): unpaced it would
    // leave in one millisecond.
    let src = b.h.peers[b.p].publisher.as_mut().unwrap();
    let (ppf, payload, frame) = (src.packets_per_frame, src.video_payload, src.frame);
    src.packets_per_frame = 20;
    src.video_payload = 1100;
    src.force_keyframe = true;
    let from = b.sent.borrow().len();
    while b.h.peers[b.p].publisher.as_ref().unwrap().frame == frame {
        b.step();
    }
    let src = b.h.peers[b.p].publisher.as_mut().unwrap();
    (src.packets_per_frame, src.video_payload) = (ppf, payload);
    for _ in 0..1000 {
        b.step();
    }
    let sent = b.sent.borrow();
    let key_ts = sent[from..]
        .iter()
        .find(|p| p.pt != PayloadType(VIEW_VP8_RTX) && p.size > 1100)
        .expect("the keyframe went out")
        .ts;
    let frame: Vec<&Sent> = sent[from..]
        .iter()
        .filter(|p| p.ts == key_ts && p.pt != PayloadType(VIEW_VP8_RTX))
        .collect();
    let bytes: usize = frame.iter().map(|p| p.size).sum();
    let span = frame.last().unwrap().at - frame[0].at;
    let pacing = 2.5 * target.0 as f64;
    // Bytes after the first 40 ms burst over the time they took.
    let rate = (bytes as f64 * 8.0 - pacing * 0.040) / span.as_secs_f64();
    let stats = b.stats();
    eprintln!(
        "target {target:?}: {} packets, {bytes} B over {span:?} ({rate:.0} bit/s, pacing at \
         {pacing:.0}); paced {} packets; {:?}",
        frame.len(),
        stats.paced_packets - before,
        b.link.borrow().stats()
    );
    assert_eq!(frame.len(), 20);
    assert!(
        rate <= 1.1 * pacing,
        "the keyframe left at {rate:.0} bit/s, pacing at {pacing:.0}"
    );
    assert!(
        rate >= 0.8 * pacing,
        "the pacer held it back more than it should: {rate:.0} bit/s, pacing at {pacing:.0}"
    );
    assert!(stats.paced_packets - before >= 15, "{stats:?}");
    assert!(
        stats.pacer_queue <= 2,
        "the queue drained (a frame may be leaving): {stats:?}"
    );
}
