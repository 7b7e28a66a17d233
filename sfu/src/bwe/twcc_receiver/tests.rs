use super::*;
use crate::wire::rtcp::{RtcpPacket, iter};
use std::collections::BTreeMap;

const SENDER: Ssrc = Ssrc(0xaaaa);
const MEDIA: Ssrc = Ssrc(0xbbbb);

/// What feedback said about one transport-wide sequence number: its arrival time in
/// microseconds on the feedback's reference clock, or lost.
type Report = Option<i64>;

/// Drains all due feedback at `now`, parses it with the wire parser and the `rtcp` crate, and
/// records every status in `seen` (keyed by the 16-bit sequence number; later reports of the
/// same number replace earlier ones). Returns the number of feedback packets.
fn drain(
    rx: &mut TwccReceiver,
    now: Instant,
    seen: &mut BTreeMap<u16, Report>,
    sizes: &mut Vec<usize>,
    counts: &mut Vec<u8>,
) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 1500];
    while let Some(len) = rx.poll_feedback(now, SENDER, MEDIA, &mut buf) {
        n += 1;
        sizes.push(len);
        let pkt = &buf[..len];
        let Some(Ok(RtcpPacket::TransportCc(t))) = iter(pkt).next() else {
            panic!("feedback is not a transport-cc packet")
        };
        assert_eq!((t.sender, t.media), (SENDER, MEDIA));
        counts.push(t.fb_pkt_count);
        let mut at = t.reference_time_us();
        let mut statuses = 0;
        for (seq, delta) in t.packets() {
            statuses += 1;
            let report = delta.map(|d| {
                at += d;
                at
            });
            seen.insert(seq.0, report);
        }
        // The rtcp crate reads the same packet.
        use webrtc_util::marshal::Unmarshal;
        let theirs = rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc::unmarshal(
            &mut &pkt[..],
        )
        .expect("the rtcp crate parses our feedback");
        assert_eq!(theirs.base_sequence_number, t.base_seq.0);
        assert_eq!(usize::from(theirs.packet_status_count), statuses);
        assert_eq!(
            theirs.recv_deltas.len(),
            t.packets().filter(|(_, d)| d.is_some()).count()
        );
    }
    n
}

struct Run {
    seen: BTreeMap<u16, Report>,
    sizes: Vec<usize>,
    counts: Vec<u8>,
    feedbacks: usize,
    /// Sequence number -> true arrival in microseconds since the first packet.
    arrivals: BTreeMap<u16, i64>,
}

/// Feeds `(offset_us, seq)` arrivals in order, polling on a 1 ms virtual clock (and at each
/// arrival) until `end_us`.
fn run(rx: &mut TwccReceiver, arrivals: &[(u64, u16)], end_us: u64) -> Run {
    let t0 = Instant::now();
    let mut r = Run {
        seen: BTreeMap::new(),
        sizes: Vec::new(),
        counts: Vec::new(),
        feedbacks: 0,
        arrivals: BTreeMap::new(),
    };
    let mut next = arrivals.iter().peekable();
    let mut now_us = 0u64;
    while now_us <= end_us {
        while let Some(&&(at, seq)) = next.peek() {
            if at > now_us {
                break;
            }
            let now = t0 + Duration::from_micros(at);
            rx.on_packet(now, seq);
            r.arrivals
                .entry(seq)
                .or_insert(at as i64 - arrivals[0].0 as i64);
            next.next();
        }
        let now = t0 + Duration::from_micros(now_us);
        r.feedbacks += drain(rx, now, &mut r.seen, &mut r.sizes, &mut r.counts);
        now_us += 1000;
    }
    r
}

/// Checks that every received packet was reported received with an arrival time within one
/// 250 µs tick of the truth (all measured against the first packet's report).
fn assert_arrivals_match(r: &Run) {
    let (&first_seq, _) = r.arrivals.iter().min_by_key(|&(_, at)| *at).unwrap();
    let origin = r.seen[&first_seq].expect("first packet reported received");
    for (&seq, &at) in &r.arrivals {
        let reported = r
            .seen
            .get(&seq)
            .copied()
            .flatten()
            .unwrap_or_else(|| panic!("{seq} not reported received"));
        let err = (reported - origin) - at;
        assert!(
            err.abs() < 250,
            "seq {seq}: reported {} vs {at}",
            reported - origin
        );
    }
}

#[test]
fn feedback_every_interval_while_packets_arrive() {
    let mut rx = TwccReceiver::default();
    let arrivals: Vec<(u64, u16)> = (0..1000u16)
        .map(|i| (u64::from(i) * 1000 + 130, i))
        .collect();
    let r = run(&mut rx, &arrivals, 1_100_000);
    assert_eq!(r.seen.len(), 1000);
    assert!(r.seen.values().all(Option::is_some), "nothing lost");
    assert_arrivals_match(&r);
    // About one feedback per 50 ms over one second (the first comes at once).
    assert!(
        (20..=22).contains(&r.feedbacks),
        "{} feedbacks",
        r.feedbacks
    );
    // Counter increments by one per packet.
    assert!(r.counts.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    // Idle afterwards: nothing due.
    assert_eq!(rx.poll_timeout(), None);
}

#[test]
fn losses_are_reported_as_not_received() {
    let mut rx = TwccReceiver::default();
    let arrivals: Vec<(u64, u16)> = (0..500u16)
        .filter(|i| i % 10 != 3)
        .map(|i| (u64::from(i) * 2000, i))
        .collect();
    let r = run(&mut rx, &arrivals, 1_100_000);
    for i in 0..500u16 {
        assert_eq!(r.seen[&i].is_some(), i % 10 != 3, "seq {i}");
    }
    assert_arrivals_match(&r);
}

#[test]
fn reordering_and_duplicates_are_tolerated_across_the_wrap() {
    let mut rx = TwccReceiver::default();
    // Sequence numbers from 65400 across the wrap, swapped in pairs, every 7th sent twice.
    let mut arrivals = Vec::new();
    let mut t = 0u64;
    for i in (0..400u32).step_by(2) {
        for k in [i + 1, i, i + 1] {
            if k == i + 1
                && arrivals
                    .last()
                    .is_some_and(|&(_, s)| s == (65400 + k) as u16)
            {
                continue;
            }
            arrivals.push((t, (65400 + k) as u16));
            t += 700;
        }
        if i % 7 == 0 {
            arrivals.push((t, (65400 + i) as u16));
            t += 700;
        }
    }
    let r = run(&mut rx, &arrivals, t + 200_000);
    assert_eq!(r.seen.len(), 400);
    assert!(r.seen.values().all(Option::is_some));
    assert_arrivals_match(&r);
}

#[test]
fn late_packet_after_its_feedback_is_reported_again() {
    let mut rx = TwccReceiver::default();
    let t0 = Instant::now();
    let mut seen = BTreeMap::new();
    let (mut sizes, mut counts) = (Vec::new(), Vec::new());
    for i in [0u16, 1, 3, 4] {
        rx.on_packet(t0 + Duration::from_millis(u64::from(i)), i);
    }
    assert_eq!(
        drain(
            &mut rx,
            t0 + Duration::from_millis(5),
            &mut seen,
            &mut sizes,
            &mut counts
        ),
        1
    );
    assert_eq!(seen[&2], None);
    rx.on_packet(t0 + Duration::from_millis(30), 2);
    let due = rx.poll_timeout().expect("late packet pending");
    assert_eq!(due, t0 + Duration::from_millis(55));
    assert_eq!(drain(&mut rx, due, &mut seen, &mut sizes, &mut counts), 1);
    assert!(seen[&2].is_some(), "late packet reported received");
    assert!(seen[&3].is_some() && seen[&4].is_some());
}

#[test]
fn large_backlog_is_split_into_packets_of_bounded_size() {
    let mut rx = TwccReceiver::new(TwccReceiverConfig {
        history: 8192,
        ..Default::default()
    });
    // 3000 packets within a single millisecond-spaced burst, deltas varying so that many need
    // two bytes, polled only once at the end.
    let t0 = Instant::now();
    let mut at = 0i64;
    let mut truth = BTreeMap::new();
    for i in 0..3000u16 {
        at += if i % 3 == 0 { 70_000 } else { 250 };
        rx.on_packet(t0 + Duration::from_micros(at as u64), i);
        truth.insert(i, at);
    }
    let mut seen = BTreeMap::new();
    let (mut sizes, mut counts) = (Vec::new(), Vec::new());
    let n = drain(
        &mut rx,
        t0 + Duration::from_micros(at as u64),
        &mut seen,
        &mut sizes,
        &mut counts,
    );
    assert!(n >= 4, "{n} packets");
    assert!(sizes.iter().all(|&s| s <= 1200), "{sizes:?}");
    assert!(
        sizes[..n - 1].iter().all(|&s| s > 1100),
        "all but the last are full: {sizes:?}"
    );
    assert_eq!(seen.len(), 3000);
    let origin = seen[&0].unwrap();
    for (seq, at) in truth {
        let got = seen[&seq].unwrap() - origin;
        assert!((got - (at - 70_000)).abs() < 250, "{seq}");
    }
    assert_eq!(rx.poll_timeout(), None);
}

#[test]
fn delta_beyond_eight_seconds_starts_a_new_feedback() {
    let mut rx = TwccReceiver::default();
    let t0 = Instant::now();
    rx.on_packet(t0, 10);
    rx.on_packet(t0 + Duration::from_secs(9), 11);
    let mut seen = BTreeMap::new();
    let (mut sizes, mut counts) = (Vec::new(), Vec::new());
    let n = drain(
        &mut rx,
        t0 + Duration::from_secs(9),
        &mut seen,
        &mut sizes,
        &mut counts,
    );
    assert_eq!(n, 2);
    let gap = seen[&11].unwrap() - seen[&10].unwrap();
    assert!((gap - 9_000_000).abs() < 250, "{gap}");
}

#[test]
fn timeout_follows_the_interval() {
    let mut rx = TwccReceiver::default();
    let t0 = Instant::now();
    assert_eq!(rx.poll_timeout(), None);
    let mut buf = [0u8; 1500];
    assert_eq!(rx.poll_feedback(t0, SENDER, MEDIA, &mut buf), None);
    rx.on_packet(t0, 1);
    assert_eq!(rx.poll_timeout(), Some(t0), "first feedback at once");
    assert!(rx.poll_feedback(t0, SENDER, MEDIA, &mut buf).is_some());
    assert_eq!(rx.poll_timeout(), None);
    rx.on_packet(t0 + Duration::from_millis(10), 2);
    let due = t0 + Duration::from_millis(50);
    assert_eq!(rx.poll_timeout(), Some(due));
    assert_eq!(
        rx.poll_feedback(due - Duration::from_millis(1), SENDER, MEDIA, &mut buf),
        None
    );
    assert!(rx.poll_feedback(due, SENDER, MEDIA, &mut buf).is_some());
    // After an idle second, the next packet is reported at once.
    let later = t0 + Duration::from_secs(1);
    rx.on_packet(later, 3);
    assert_eq!(rx.poll_timeout(), Some(later));
}

#[test]
fn packets_older_than_the_history_are_ignored() {
    let mut rx = TwccReceiver::new(TwccReceiverConfig {
        history: 64,
        ..Default::default()
    });
    let t0 = Instant::now();
    let mut buf = [0u8; 1500];
    for i in 0..200u16 {
        rx.on_packet(t0, i);
    }
    // Only the last 64 are remembered; the feedback covers them.
    let len = rx.poll_feedback(t0, SENDER, MEDIA, &mut buf).unwrap();
    let Some(Ok(RtcpPacket::TransportCc(t))) = iter(&buf[..len]).next() else {
        panic!()
    };
    assert_eq!((t.base_seq, t.status_count), (SeqNo(136), 64));
    // A packet from before the history is dropped without effect.
    rx.on_packet(t0, 10);
    assert_eq!(rx.poll_timeout(), None);
}
