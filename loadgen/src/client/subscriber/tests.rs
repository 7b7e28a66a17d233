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

#[test]
fn transport_wide_feedback_acknowledges_every_stamped_packet_every_50_ms() {
    let t0 = Instant::now();
    let (mut p, mut s) = (publisher(1_000_000, t0), subscriber(t0));
    assert!(s.sends_twcc());
    let (mut m, mut lat) = (Counters::default(), Histogram::latency_ns());
    let rtcp_out = run(
        &mut p,
        &mut s,
        t0,
        Duration::ZERO,
        2,
        |_| false,
        &mut m,
        &mut lat,
    );
    let mut acked = 0u64;
    let mut feedbacks = 0u64;
    let mut seqs = Vec::new();
    for b in &rtcp_out {
        for pkt in rtcp::iter(b).filter_map(Result::ok) {
            if let RtcpPacket::TransportCc(fb) = pkt {
                feedbacks += 1;
                for (seq, delta) in fb.packets() {
                    assert!(delta.is_some(), "nothing was lost");
                    seqs.push(seq.0);
                    acked += 1;
                }
            }
        }
    }
    assert_eq!(feedbacks, m.twcc_feedback_sent);
    // Every 50 ms over 2 s.
    assert!(
        (38..=41).contains(&feedbacks),
        "{feedbacks} feedback packets"
    );
    // Every packet up to the last feedback, once, in order (what came after it waits).
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    assert!(
        acked <= m.rtp_received && acked + 40 >= m.rtp_received,
        "acked {acked} of {}",
        m.rtp_received
    );
}

#[test]
fn padding_only_probes_are_acknowledged_but_are_not_media() {
    let t0 = Instant::now();
    let mut s = subscriber(t0);
    let (mut m, mut lat) = (Counters::default(), Histogram::latency_ns());
    let mut buf = [0u8; 300];
    let n = rtp::write_padding_packet(
        &mut buf,
        Ssrc(2222),
        PayloadType(97),
        SeqNo(7),
        0,
        3,
        500,
        200,
    )
    .unwrap();
    assert_eq!(
        s.handle_rtp(t0, &mut buf[..n], &mut m, &mut lat),
        RtpOutcome::Padding
    );
    assert_eq!(
        (m.padding_received, m.undecodable, m.rtp_received),
        (1, 0, 0)
    );
    let later = t0 + Duration::from_millis(60);
    assert!(s.poll_timeout() <= later);
    let Some(Outgoing::Rtcp(n)) = s.poll_transmit(later, &mut buf, &mut m) else {
        panic!("feedback is due")
    };
    let fb = rtcp::iter(&buf[..n])
        .find_map(|p| match p {
            Ok(RtcpPacket::TransportCc(fb)) => Some(fb.packets().collect::<Vec<_>>()),
            _ => None,
        })
        .unwrap();
    assert_eq!(fb.len(), 1);
    assert_eq!(fb[0].0, SeqNo(500));
}

/// What a server forwards to one viewer: one SSRC (1111) and one sequence space whatever the
/// simulcast layer, each frame's packets tagged with its layer.
struct Forwarded {
    seq: u16,
    frame: u32,
}

impl Forwarded {
    /// Sends one frame of `packets` packets at `now`; `lose` names a packet index to drop.
    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        s: &mut Subscriber,
        now: Instant,
        layer: u8,
        keyframe: bool,
        packets: usize,
        lose: Option<usize>,
        m: &mut Counters,
    ) {
        use crate::media::video::write_vp8_payload;
        use crate::media::{Chunk, Tag};
        let mut lat = Histogram::latency_ns();
        for k in 0..packets {
            let mut buf = [0u8; 1500];
            let f = rtp::RtpFields {
                marker: k + 1 == packets,
                payload_type: PayloadType(96),
                seq: SeqNo(self.seq),
                timestamp: self.frame * 3000,
                ssrc: Ssrc(1111),
                extensions: &[],
            };
            self.seq = self.seq.wrapping_add(1);
            let h = rtp::write_rtp(&mut buf, &f, &[]).unwrap();
            let chunk = Chunk {
                len: 300,
                first: k == 0,
                last: k + 1 == packets,
            };
            let tag = Tag {
                send_ns: 0,
                seq: 0,
                layer: Some(layer),
            };
            let p = write_vp8_payload(&mut buf[h..], chunk, keyframe, 1, 1200, tag).unwrap();
            if lose == Some(k) {
                continue;
            }
            s.handle_rtp(now, &mut buf[..h + p], m, &mut lat);
        }
        self.frame += 1;
    }
}

fn frame_time(t0: Instant, k: u64) -> Instant {
    t0 + Duration::from_micros(k * 33_333)
}

#[test]
fn the_layer_named_in_the_tag_is_followed_and_switches_are_counted() {
    let t0 = Instant::now();
    let mut s = subscriber(t0);
    let mut m = Counters::default();
    let mut f = Forwarded { seq: 100, frame: 0 };
    // 1 s of layer 2, then a keyframe of layer 0 and 2 s of it.
    for k in 0..30 {
        f.frame(&mut s, frame_time(t0, k), 2, k == 0, 3, None, &mut m);
    }
    for k in 30..90 {
        f.frame(&mut s, frame_time(t0, k), 0, k == 30, 2, None, &mut m);
    }
    let e = s.video_experience(frame_time(t0, 90)).unwrap();
    assert_eq!(e.layers.switches, 1);
    assert_eq!(e.layers.current, Some(0));
    assert_eq!(e.layers.packets, [120, 0, 90]);
    let t = e.layers.time_us;
    assert!((1_990_000..=2_010_000).contains(&t[0]), "{t:?}");
    assert!((990_000..=1_010_000).contains(&t[2]), "{t:?}");
    assert_eq!((e.frames.rendered, e.frames.keyframes), (90, 2));
    assert_eq!(e.freezes.freezes, 0);
}

#[test]
fn half_a_second_without_frames_is_one_freeze() {
    let t0 = Instant::now();
    let mut s = subscriber(t0);
    let mut m = Counters::default();
    let mut f = Forwarded { seq: 0, frame: 0 };
    for k in 0..60 {
        f.frame(&mut s, frame_time(t0, k), 1, k == 0, 2, None, &mut m);
    }
    s.start_window(frame_time(t0, 60));
    // Frames 60..75 are late: they all arrive together at frame 75's time.
    for k in 60..120 {
        let at = frame_time(t0, k.max(75));
        f.frame(&mut s, at, 1, false, 2, None, &mut m);
    }
    let e = s.video_experience(frame_time(t0, 120)).unwrap();
    assert_eq!(e.freezes.freezes, 1, "{e:?}");
    let frozen = e.freezes.frozen_us;
    assert!((530_000..=540_000).contains(&frozen), "{frozen} µs");
    assert_eq!(e.frames.rendered, 60);
    assert_eq!(e.freezes.longest_gap_us, frozen);
}

#[test]
fn an_unrecovered_loss_freezes_the_picture_until_the_next_keyframe() {
    let t0 = Instant::now();
    let mut s = subscriber(t0);
    let mut m = Counters::default();
    let mut f = Forwarded {
        seq: 65_000,
        frame: 0,
    };
    for k in 0..60 {
        // Frame 40 loses its middle packet for good; frame 70 is the next keyframe.
        let lose = (k == 40).then_some(1);
        f.frame(&mut s, frame_time(t0, k), 2, k == 0, 3, lose, &mut m);
    }
    for k in 60..100 {
        f.frame(&mut s, frame_time(t0, k), 2, k == 70, 3, None, &mut m);
    }
    let e = s.video_experience(frame_time(t0, 100)).unwrap();
    assert_eq!(e.freezes.freezes, 1, "{e:?}");
    // From frame 39 to frame 70: 31 frame intervals.
    let frozen = e.freezes.frozen_us;
    assert!((1_030_000..=1_036_000).contains(&frozen), "{frozen} µs");
    assert_eq!(e.frames.rendered, 100 - 30);
    assert_eq!(e.frames.dropped, 30);
    // The loss was asked for (the NACK generator saw the gap).
    assert_eq!(s.continuity().0.unwrap().lost(), 1);
}
