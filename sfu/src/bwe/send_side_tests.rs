//! Tests of the send-side estimator (`send_side.rs`): feedback handling, probe results and
//! their floor, a probe's own queue.

#![allow(clippy::unwrap_used)] // in tests an unwrap is an assertion

use super::*;
use crate::types::{SeqNo, Ssrc};
use crate::wire::rtcp::{TwccHeader, write_twcc};

/// Feedback for `count` packets from `base`, 5 ms apart; every `lose_every`-th is lost.
fn feedback(buf: &mut [u8], base: u16, count: u16, lose_every: u16) -> usize {
    let hdr = TwccHeader {
        sender: Ssrc(1),
        media: Ssrc(2),
        base_seq: SeqNo(base),
        reference_time: 0,
        fb_pkt_count: 0,
    };
    let statuses: Vec<Option<i64>> = (0..count)
        .map(|i| (i % lose_every != lose_every - 1).then_some(5_000))
        .collect();
    write_twcc(buf, &hdr, &statuses).unwrap()
}

fn parse(buf: &[u8]) -> TransportCc<'_> {
    // The body follows the 4-byte common header.
    TransportCc::parse(&buf[4..]).unwrap()
}

#[test]
fn twenty_percent_loss_in_feedback_bounds_the_target() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(SendSideConfig::default(), t0);
    for i in 0..300u16 {
        bwe.on_packet_sent(t0 + Duration::from_millis(u64::from(i) * 5), i, 1000, None);
    }
    let mut buf = [0u8; 1500];
    // Two feedback packets 1.2 s apart, each covering 150 packets with every 5th lost.
    let n = feedback(&mut buf, 0, 150, 5);
    bwe.handle_feedback(t0 + Duration::from_millis(800), &parse(&buf[..n]));
    let n = feedback(&mut buf, 150, 150, 5);
    bwe.handle_feedback(t0 + Duration::from_millis(2000), &parse(&buf[..n]));
    let s = bwe.stats();
    assert!((s.loss - 0.2).abs() < 0.01, "loss {}", s.loss);
    let bound = s.loss_bound.expect("20 % loss bounds the rate");
    assert_eq!(s.target, bound.max(SendSideConfig::default().min));
}

/// Feedback for packets `base..base + deltas.len()`: the first arrived `first_us` after the
/// start, each next one `deltas` µs after the one before.
fn feedback_with(buf: &mut [u8], base: u16, first_us: i64, deltas: &[i64]) -> usize {
    let hdr = TwccHeader {
        sender: Ssrc(1),
        media: Ssrc(2),
        base_seq: SeqNo(base),
        reference_time: (first_us / 64_000) as u32,
        fb_pkt_count: base as u8,
    };
    let mut statuses: Vec<Option<i64>> = deltas.iter().map(|&d| Some(d)).collect();
    statuses[0] = Some(first_us % 64_000);
    write_twcc(buf, &hdr, &statuses).unwrap()
}

/// An estimator after 3 s of media at 800 kbit/s (1000 bytes every 10 ms) that arrived as
/// sent, 20 ms one way, with feedback every 100 ms (its start-up probes were not sent); the
/// next transport sequence number and the time.
fn after_three_seconds_at_800_kbit(t0: Instant) -> (SendSideBwe, u16, Instant) {
    let mut bwe = SendSideBwe::new(SendSideConfig::default(), t0);
    while bwe.poll_probe().is_some() {}
    let mut buf = [0u8; 1500];
    let (mut seq, mut now) = (0u16, t0);
    for _ in 0..30 {
        let first_us = (now - t0).as_micros() as i64 + 20_000;
        for _ in 0..10 {
            bwe.on_packet_sent(now, seq, 1000, None);
            seq += 1;
            now += Duration::from_millis(10);
        }
        let n = feedback_with(&mut buf, seq - 10, first_us, &[10_000; 10]);
        bwe.handle_feedback(now, &parse(&buf[..n]));
    }
    (bwe, seq, now)
}

/// Raises the desired maximum to 4 Mbit/s and sends the probe cluster that asks for: 1000-byte
/// packets 2 ms apart. Its first sequence number, the µs its first packet arrives at (20 ms
/// one way), and its packet count.
fn send_probe_at_4_mbit(
    bwe: &mut SendSideBwe,
    t0: Instant,
    seq: &mut u16,
    now: &mut Instant,
) -> (u16, i64, u16) {
    bwe.set_desired_max(*now, Bitrate(4_000_000));
    let cluster = bwe.poll_probe().expect("a raise above the estimate probes");
    let first = *seq;
    let first_us = (*now - t0).as_micros() as i64 + 20_000;
    let count = cluster
        .min_packets
        .max(cluster.min_bytes.div_ceil(1000) as u32) as u16;
    for _ in 0..count {
        bwe.on_packet_sent(*now, *seq, 1000, Some(cluster.id));
        *seq += 1;
        *now += Duration::from_millis(2);
    }
    (first, first_us, count)
}

#[test]
fn a_probe_that_reads_below_the_acknowledged_rate_does_not_lower_the_estimate_below_it() {
    let t0 = Instant::now();
    let (mut bwe, mut seq, mut now) = after_three_seconds_at_800_kbit(t0);
    let mut buf = [0u8; 1500];
    let acked = bwe.stats().acked.expect("acknowledged rate");
    assert!(
        (700_000..=900_000).contains(&acked.0),
        "acknowledged {acked:?}"
    );
    // A probe toward 4 Mbit/s whose packets arrive in a trickle (bunched behind something
    // else): it reads about 400 kbit/s.
    let (first, first_us, count) = send_probe_at_4_mbit(&mut bwe, t0, &mut seq, &mut now);
    now += Duration::from_millis(100);
    let n = feedback_with(&mut buf, first, first_us, &vec![20_000; count as usize]);
    bwe.handle_feedback(now, &parse(&buf[..n]));
    let s = bwe.stats();
    let probe = s.last_probe.expect("the probe was measured");
    assert!(
        s.target >= acked.min(s.acked.unwrap_or(acked)),
        "target {:?} fell below the acknowledged {:?} (probe {probe:?})",
        s.target,
        s.acked
    );
}

#[test]
fn the_queue_a_probe_builds_is_not_taken_for_over_use() {
    let t0 = Instant::now();
    let (mut bwe, mut seq, mut now) = after_three_seconds_at_800_kbit(t0);
    let mut buf = [0u8; 1500];
    let acked = bwe.stats().acked.expect("acknowledged rate");
    // A probe at 4 Mbit/s into a path that carries 1 Mbit/s: its packets queue (8 ms
    // apart at the receiver for 2 ms at the sender), and the media after it waits behind
    // them until the queue drains.
    let (first, first_us, count) = send_probe_at_4_mbit(&mut bwe, t0, &mut seq, &mut now);
    // Media behind the probe: sent every 10 ms, arriving 8 ms apart until caught up.
    let deltas = vec![8_000; count as usize + 10];
    for _ in 0..10 {
        bwe.on_packet_sent(now, seq, 1000, None);
        seq += 1;
        now += Duration::from_millis(10);
    }
    now += Duration::from_millis(50);
    let n = feedback_with(&mut buf, first, first_us, &deltas);
    bwe.handle_feedback(now, &parse(&buf[..n]));
    let s = bwe.stats();
    assert!(
        s.target >= acked,
        "target {:?} below the acknowledged {acked:?} after a probe ({:?}, usage {:?})",
        s.target,
        s.last_probe,
        s.usage
    );
}

#[test]
fn feedback_for_unsent_packets_is_ignored() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(SendSideConfig::default(), t0);
    let mut buf = [0u8; 1500];
    let n = feedback(&mut buf, 1000, 100, 2);
    bwe.handle_feedback(t0 + Duration::from_secs(2), &parse(&buf[..n]));
    assert_eq!(bwe.stats().acked, None);
    assert_eq!(bwe.target(), SendSideConfig::default().start);
}

proptest::proptest! {
    /// Hostile feedback (arbitrary statuses, deltas, base numbers and reference times)
    /// never panics and leaves the target within its bounds.
    #[test]
    fn arbitrary_feedback_never_panics(
        bodies in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 16..120), 1..20),
    ) {
        let t0 = Instant::now();
        let cfg = SendSideConfig::default();
        let mut bwe = SendSideBwe::new(cfg, t0);
        for i in 0..200u16 {
            bwe.on_packet_sent(t0 + Duration::from_millis(u64::from(i)), i, 1200, None);
        }
        for (k, mut body) in bodies.into_iter().enumerate() {
            // Point most of them at packets that were sent.
            body[8] = 0;
            if let Ok(fb) = TransportCc::parse(&body) {
                bwe.handle_feedback(t0 + Duration::from_millis(200 + 50 * k as u64), &fb);
            }
        }
        proptest::prop_assert!(bwe.target() >= cfg.min && bwe.target() <= cfg.max);
    }
}

#[test]
fn timeouts_always_move_forward() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(SendSideConfig::default(), t0);
    while bwe.poll_probe().is_some() {}
    let mut last = t0;
    for _ in 0..10 {
        let Some(t) = bwe.poll_timeout() else { break };
        let t = t.max(last);
        bwe.handle_timeout(t);
        if let Some(next) = bwe.poll_timeout() {
            assert!(next > t, "timeout did not advance");
        }
        last = t;
    }
}
