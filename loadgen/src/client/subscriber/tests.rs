//! The subscriber's accounting and feedback, fed by a real [`Publisher`].

use super::*;
use crate::client::Publisher;
use crate::client::publisher::tests::{plan, publisher};

fn subscriber(t0: Instant) -> Subscriber {
    Subscriber::new(
        SubscriberConfig {
            plan: plan(),
            rtcp_ssrc: 77,
            cname: "subcname".into(),
        },
        Clock::new(t0),
        t0,
    )
}

/// Moves `secs` of media from `p` to `s` in 1 ms steps, dropping what `drop` selects (by
/// video sequence number) and collecting the subscriber's RTCP.
#[allow(clippy::too_many_arguments)]
fn run(
    p: &mut Publisher,
    s: &mut Subscriber,
    t0: Instant,
    from: Duration,
    secs: u64,
    mut drop: impl FnMut(u16) -> bool,
    m: &mut Counters,
    lat: &mut Histogram,
) -> Vec<Vec<u8>> {
    let mut rtcp_out = Vec::new();
    let mut buf = [0u8; 1500];
    let mut now = t0 + from;
    let end = now + Duration::from_secs(secs);
    let mut pm = Counters::default();
    while now < end {
        while let Some(o) = p.poll_transmit(now, &mut buf, &mut pm) {
            if let Outgoing::Rtp(n) = o {
                let h = RtpHeader::parse(&buf[..n]).unwrap();
                if h.ssrc.0 == 1111 && drop(h.seq.0) {
                    continue;
                }
                // Delivered 300 µs later.
                s.handle_rtp(now + Duration::from_micros(300), &mut buf[..n], m, lat);
            }
        }
        while let Some(Outgoing::Rtcp(n)) = s.poll_transmit(now, &mut buf, m) {
            p.handle_rtcp(&buf[..n], &mut pm);
            rtcp_out.push(buf[..n].to_vec());
        }
        now += Duration::from_millis(1);
    }
    rtcp_out
}

#[test]
fn clean_delivery_has_no_loss_and_measures_the_transit_latency() {
    let t0 = Instant::now();
    let (mut p, mut s) = (publisher(1_000_000, t0), subscriber(t0));
    let (mut m, mut lat) = (Counters::default(), Histogram::latency_ns());
    run(
        &mut p,
        &mut s,
        t0,
        Duration::ZERO,
        3,
        |_| false,
        &mut m,
        &mut lat,
    );
    let (v, a) = s.continuity();
    let (v, a) = (v.unwrap(), a.unwrap());
    assert_eq!((v.lost(), a.lost()), (0, 0));
    assert_eq!(a.received, 150);
    assert!(v.received > 200);
    assert_eq!(m.rtp_received, v.received + a.received);
    assert_eq!(m.untagged, 0);
    assert_eq!(lat.count(), m.rtp_received);
    let p50 = lat.quantile(0.5);
    assert!((299_000..=301_000).contains(&p50), "p50 {p50} ns");
    assert!(s.first_media().is_some());
}

#[test]
fn lost_video_is_nacked_and_recovered_through_rtx() {
    let t0 = Instant::now();
    let (mut p, mut s) = (publisher(1_000_000, t0), subscriber(t0));
    let (mut m, mut lat) = (Counters::default(), Histogram::latency_ns());
    let mut dropped = std::collections::HashSet::new();
    let rtcp = run(
        &mut p,
        &mut s,
        t0,
        Duration::ZERO,
        3,
        // Drop every 20th video packet the first time it is sent (RTX uses another SSRC).
        |seq| seq % 20 == 5 && dropped.insert(seq),
        &mut m,
        &mut lat,
    );
    // A last second without loss lets the final gap show and recover.
    let more = run(
        &mut p,
        &mut s,
        t0,
        Duration::from_secs(3),
        1,
        |_| false,
        &mut m,
        &mut lat,
    );
    let rtcp: Vec<Vec<u8>> = rtcp.into_iter().chain(more).collect();
    assert!(!dropped.is_empty());
    assert!(m.nacks_sent > 0);
    assert_eq!(m.rtx_received as usize, dropped.len(), "{m:?}");
    let v = s.continuity().0.unwrap();
    assert_eq!(v.lost(), 0, "{v:?}");
    assert_eq!(v.recovered as usize, dropped.len());
    let nacked: usize = rtcp
        .iter()
        .flat_map(|b| rtcp::iter(b).filter_map(Result::ok).collect::<Vec<_>>())
        .filter_map(|p| match p {
            RtcpPacket::Nack(n) => Some(n.lost().count()),
            _ => None,
        })
        .sum();
    assert_eq!(nacked, dropped.len());
}

#[test]
fn unrecoverable_loss_counts_as_lost_and_asks_for_a_keyframe() {
    let t0 = Instant::now();
    let (mut p, mut s) = (publisher(1_000_000, t0), subscriber(t0));
    let (mut m, mut lat, mut pm) = (
        Counters::default(),
        Histogram::latency_ns(),
        Counters::default(),
    );
    let mut buf = [0u8; 1500];
    let mut plis = 0;
    let mut dropped = 0u64;
    let mut now = t0;
    while now < t0 + Duration::from_secs(4) {
        while let Some(o) = p.poll_transmit(now, &mut buf, &mut pm) {
            if let Outgoing::Rtp(n) = o {
                let h = RtpHeader::parse(&buf[..n]).unwrap();
                // Every 50th video packet is lost, and so is every retransmission.
                if h.ssrc.0 == 2222 {
                    continue;
                }
                if h.ssrc.0 == 1111 && h.seq.0 % 50 == 1 {
                    dropped += 1;
                    continue;
                }
                s.handle_rtp(now, &mut buf[..n], &mut m, &mut lat);
            }
        }
        while let Some(Outgoing::Rtcp(n)) = s.poll_transmit(now, &mut buf, &mut m) {
            plis += rtcp::iter(&buf[..n])
                .flatten()
                .filter(|r| matches!(r, RtcpPacket::Pli { .. }))
                .count() as u64;
            p.handle_rtcp(&buf[..n], &mut pm);
        }
        now += Duration::from_millis(1);
    }
    let v = s.continuity().0.unwrap();
    assert!(dropped > 3);
    assert!(
        v.lost() + 1 >= dropped && v.lost() <= dropped,
        "{v:?}, dropped {dropped}"
    );
    assert!(
        m.nacks_sent > 0 && pm.rtx_sent > 0,
        "retransmissions were asked for and sent"
    );
    assert!(plis >= 1 && m.plis_sent == plis);
    assert_eq!(pm.plis_received, plis);
    assert!(pm.keyframes > 2, "keyframes answer the PLIs: {pm:?}");
}

#[test]
fn receiver_reports_name_both_streams_every_second() {
    let t0 = Instant::now();
    let (mut p, mut s) = (publisher(800_000, t0), subscriber(t0));
    let (mut m, mut lat) = (Counters::default(), Histogram::latency_ns());
    let rtcp = run(
        &mut p,
        &mut s,
        t0,
        Duration::ZERO,
        3,
        |_| false,
        &mut m,
        &mut lat,
    );
    assert_eq!(m.receiver_reports_sent, 2);
    let rr = rtcp
        .iter()
        .flat_map(|b| rtcp::iter(b).filter_map(Result::ok).collect::<Vec<_>>())
        .find_map(|p| match p {
            RtcpPacket::ReceiverReport(r) => {
                Some(r.report_blocks().map(|b| b.ssrc.0).collect::<Vec<_>>())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(rr, vec![1111, 3333]);
}

#[test]
fn packets_of_other_streams_are_not_counted_as_media() {
    let t0 = Instant::now();
    let mut s = subscriber(t0);
    let (mut m, mut lat) = (Counters::default(), Histogram::latency_ns());
    let mut buf = [0u8; 200];
    let f = rtp::RtpFields {
        marker: false,
        payload_type: PayloadType(96),
        seq: SeqNo(1),
        timestamp: 0,
        ssrc: Ssrc(4242),
        extensions: &[],
    };
    let n = rtp::write_rtp(&mut buf, &f, &[0u8; 50]).unwrap();
    assert_eq!(
        s.handle_rtp(t0, &mut buf[..n], &mut m, &mut lat),
        RtpOutcome::Unknown
    );
    assert_eq!(
        s.handle_rtp(t0, &mut buf[..3], &mut m, &mut lat),
        RtpOutcome::Unknown
    );
    assert_eq!((m.unknown_stream, m.undecodable, m.rtp_received), (1, 1, 0));
}
