//! Tests of the pacer (`pacer.rs`): pacing rate, burst, priorities, padding and probes.

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
fn a_burst_of_the_configured_time_goes_at_once_then_media_waits() {
    let t0 = Instant::now();
    // 400 kbit/s × 2.5 = 1 Mbit/s; 10 ms of it is 1250 bytes.
    let cfg = PacerConfig {
        burst: Duration::from_millis(10),
        ..PacerConfig::default()
    };
    let mut p: Pacer<u32> = Pacer::new(cfg, Bitrate::kbps(400), t0);
    assert!(p.may_send_now(t0, PacketKind::Video));
    p.on_sent_unpaced(t0, 1000);
    assert!(
        p.may_send_now(t0, PacketKind::Video),
        "1000 B owed: within the burst"
    );
    p.on_sent_unpaced(t0, 1000);
    assert!(!p.may_send_now(t0, PacketKind::Video), "2000 B owed");
    assert!(p.may_send_now(t0, PacketKind::Audio), "audio is never held");
    let t = t0 + Duration::from_millis(5);
    assert!(!p.may_send_now(t, PacketKind::Video), "1375 B owed");
    let t = t0 + Duration::from_millis(6);
    assert!(p.may_send_now(t, PacketKind::Video), "1250 B owed");
}

#[test]
fn media_does_not_overtake_queued_video() {
    let t0 = Instant::now();
    let cfg = PacerConfig {
        burst: Duration::from_millis(5),
        ..PacerConfig::default()
    };
    let mut p = Pacer::new(cfg, Bitrate::kbps(400), t0);
    p.enqueue(1, 1000, PacketKind::Video).expect("room");
    let later = t0 + Duration::from_secs(1);
    assert!(
        !p.may_send_now(later, PacketKind::Video),
        "the budget is free but a packet waits"
    );
    assert!(p.may_send_now(later, PacketKind::Audio));
    assert!(matches!(
        p.poll_send(later),
        Some(Paced::Media { handle: 1, .. })
    ));
    assert!(
        !p.may_send_now(later, PacketKind::Video),
        "1000 B owed: more than the 625 B of a 5 ms burst"
    );
    let free = later + Duration::from_micros(3000);
    assert!(p.may_send_now(free, PacketKind::Video), "625 B owed");
}

#[test]
fn a_caller_woken_every_five_milliseconds_keeps_the_pacing_rate_within_the_burst() {
    // 1 Mbit/s: a 1000-byte packet every 8 ms, the caller woken only every 5 ms. Without a
    // burst each late wake-up loses the budget that accrued since the debt reached zero.
    let rate = |burst_ms| {
        let t0 = Instant::now();
        let cfg = PacerConfig {
            burst: Duration::from_millis(burst_ms),
            ..PacerConfig::default()
        };
        let mut p = Pacer::new(cfg, Bitrate::kbps(400), t0);
        for i in 0..200 {
            p.enqueue(i, 1000, PacketKind::Video).expect("room");
        }
        let (mut bytes, mut now) = (0, t0);
        while now < t0 + Duration::from_secs(1) {
            while let Some(Paced::Media { size, .. }) = p.poll_send(now) {
                bytes += size;
            }
            now += Duration::from_millis(5);
        }
        bytes as f64 * 8.0
    };
    let (without, with) = (rate(0), rate(5));
    assert!(
        (0.97e6..=1.03e6).contains(&with),
        "with a 5 ms burst: {with:.0} bit/s"
    );
    assert!(without < 0.9e6, "without: {without:.0} bit/s");
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
        queue_capacity: [2; KINDS],
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
