//! The publisher's packets: sizes, shape over virtual time, answers to NACK and PLI, reports.

use std::time::Duration;

use super::*;
use crate::media::MAX_DATAGRAM;
use crate::sdp::ExtIds;
use sfu::wire::codec::vp8;

pub(crate) fn plan() -> MediaPlan {
    let ext = ExtIds {
        audio_level: Some(1),
        transport_cc: Some(3),
        mid: Some(4),
        rid: None,
        repaired_rid: None,
    };
    MediaPlan {
        video: Some(TrackPlan {
            mid: "0".into(),
            pt: 96,
            rtx_pt: Some(97),
            clock_rate: 90_000,
            ssrc: Some(1111),
            rtx_ssrc: Some(2222),
            ext,
            rids: Vec::new(),
        }),
        audio: Some(TrackPlan {
            mid: "1".into(),
            pt: 111,
            rtx_pt: None,
            clock_rate: 48_000,
            ssrc: Some(3333),
            rtx_ssrc: None,
            ext,
            rids: Vec::new(),
        }),
    }
}

pub(crate) fn publisher(bitrate: u64, t0: Instant) -> Publisher {
    Publisher::new(
        PublisherConfig {
            video: Some(VideoConfig {
                bitrate_bps: bitrate,
                ..VideoConfig::default()
            }),
            audio: Some(AudioConfig::default()),
            plan: plan(),
            cname: "pubcname".into(),
            seed: 0xdead_beef_1234_5678,
            ring_slots: 1024,
        },
        Clock::new(t0),
        t0,
        SystemTime::now(),
    )
}

/// Everything the publisher sends over `secs` seconds in 1 ms steps.
fn run(p: &mut Publisher, t0: Instant, secs: u64) -> Vec<(Instant, Outgoing, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    let mut m = Counters::default();
    let mut now = t0;
    while now < t0 + Duration::from_secs(secs) {
        if p.poll_timeout() <= now {
            while let Some(o) = p.poll_transmit(now, &mut buf, &mut m) {
                let n = match o {
                    Outgoing::Rtp(n) | Outgoing::Rtcp(n) => n,
                };
                out.push((now, o, buf[..n].to_vec()));
            }
        }
        now += Duration::from_millis(1);
    }
    out
}

#[test]
fn packets_fit_the_datagram_cap_and_carry_tags_and_extensions() {
    let t0 = Instant::now();
    let mut p = publisher(4_000_000, t0);
    let sent = run(&mut p, t0, 4);
    let mut twcc = Vec::new();
    for (_, o, b) in &sent {
        if let Outgoing::Rtp(n) = o {
            assert!(
                *n <= MAX_RTP && n + MAX_SRTP_TAG_TEST <= MAX_DATAGRAM,
                "{n} bytes"
            );
            let h = RtpHeader::parse(b).unwrap();
            let tag = Tag::read_tail(h.payload(b)).unwrap();
            assert_eq!(tag.layer, None, "no layer without simulcast");
            assert_eq!(
                h.extension(b, 4),
                Some(if h.ssrc.0 == 1111 {
                    &b"0"[..]
                } else {
                    &b"1"[..]
                })
            );
            let t = h.extension(b, 3).unwrap();
            twcc.push(u16::from_be_bytes([t[0], t[1]]));
        }
    }
    // One transport-wide counter over both streams, without holes.
    for w in twcc.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1));
    }
}

const MAX_SRTP_TAG_TEST: usize = crate::media::MAX_SRTP_TAG;

#[test]
fn ten_seconds_of_video_meet_the_bitrate_and_audio_runs_at_fifty_packets_a_second() {
    let t0 = Instant::now();
    let mut p = publisher(1_500_000, t0);
    let sent = run(&mut p, t0, 10);
    let (mut video_bytes, mut audio) = (0usize, 0);
    let mut keyframe_starts = Vec::new();
    for (at, o, b) in &sent {
        if !matches!(o, Outgoing::Rtp(_)) {
            continue;
        }
        let h = RtpHeader::parse(b).unwrap();
        match h.ssrc.0 {
            1111 => {
                video_bytes += h.payload_len;
                if vp8::is_keyframe_start(h.payload(b)) {
                    keyframe_starts.push(at.duration_since(t0));
                }
            }
            3333 => audio += 1,
            other => panic!("unexpected SSRC {other}"),
        }
    }
    let rate = video_bytes as f64 * 8.0 / 10.0;
    assert!(
        (rate - 1_500_000.0).abs() / 1_500_000.0 < 0.10,
        "{rate} bit/s"
    );
    assert_eq!(audio, 500);
    assert_eq!(keyframe_starts.len(), 4, "{keyframe_starts:?}");
    for w in keyframe_starts.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_millis(2990) && gap <= Duration::from_millis(3010));
    }
}

#[test]
fn sender_reports_with_a_cname_go_out_every_second() {
    let t0 = Instant::now();
    let mut p = publisher(500_000, t0);
    let sent = run(&mut p, t0, 5);
    let reports: Vec<&Vec<u8>> = sent
        .iter()
        .filter(|(_, o, _)| matches!(o, Outgoing::Rtcp(_)))
        .map(|(_, _, b)| b)
        .collect();
    assert_eq!(reports.len(), 4);
    let kinds: Vec<_> = rtcp::iter(reports[0]).map(|r| r.unwrap()).collect();
    assert!(
        matches!(kinds[0], RtcpPacket::SenderReport(sr) if sr.ssrc.0 == 1111 && sr.packet_count > 0)
    );
    assert!(matches!(kinds[1], RtcpPacket::SenderReport(sr) if sr.ssrc.0 == 3333));
    assert!(matches!(kinds[2], RtcpPacket::Sdes));
}

#[test]
fn a_nack_is_answered_with_rtx_of_the_original_packet() {
    let t0 = Instant::now();
    let mut p = publisher(1_000_000, t0);
    let sent = run(&mut p, t0, 1);
    let originals: Vec<&Vec<u8>> = sent
        .iter()
        .filter(|(_, _, b)| RtpHeader::parse(b).is_ok_and(|h| h.ssrc.0 == 1111))
        .map(|(_, _, b)| b)
        .collect();
    let victim = originals[10];
    let vh = RtpHeader::parse(victim).unwrap();
    let mut fb = [0u8; 64];
    let n = rtcp::write_nack(
        &mut fb,
        Ssrc(9),
        Ssrc(1111),
        &[vh.seq, SeqNo(vh.seq.0.wrapping_add(60_000))],
    )
    .unwrap();
    let mut m = Counters::default();
    p.handle_rtcp(&fb[..n], &mut m);
    assert_eq!((m.nacks_received, m.nacked_packets), (1, 2));
    let mut buf = [0u8; 1500];
    let now = t0 + Duration::from_millis(1001);
    assert!(p.poll_timeout() <= now, "a retransmission is due at once");
    let Some(Outgoing::Rtp(len)) = p.poll_transmit(now, &mut buf, &mut m) else {
        panic!("no retransmission")
    };
    assert_eq!(m.rtx_sent, 1);
    let h = RtpHeader::parse(&buf[..len]).unwrap();
    assert_eq!((h.ssrc.0, h.payload_type.0), (2222, 97));
    let mut restored = buf[..len].to_vec();
    let n = rtp::unwrap_rtx(&mut restored, &h, Ssrc(1111), PayloadType(96)).unwrap();
    assert_eq!(
        &restored[..n],
        &victim[..],
        "RTX carries the original packet"
    );
    let mut scratch = [0u8; 1500];
    let _ = p.poll_transmit(now, &mut scratch, &mut m);
    assert_eq!(m.rtx_sent, 1);
    assert_eq!(m.rtx_unavailable, 1, "the second number was never sent");
}

#[test]
fn a_pli_makes_the_next_frame_a_keyframe() {
    let t0 = Instant::now();
    let mut p = publisher(1_000_000, t0);
    run(&mut p, t0, 1);
    let mut fb = [0u8; 32];
    let n = rtcp::write_pli(&mut fb, Ssrc(9), Ssrc(1111)).unwrap();
    let mut m = Counters::default();
    p.handle_rtcp(&fb[..n], &mut m);
    assert_eq!(m.plis_received, 1);
    let mut buf = [0u8; 1500];
    let mut now = t0 + Duration::from_secs(1);
    loop {
        if let Some(Outgoing::Rtp(len)) = p.poll_transmit(now, &mut buf, &mut m) {
            let h = RtpHeader::parse(&buf[..len]).unwrap();
            if h.ssrc.0 == 1111 {
                assert!(vp8::is_keyframe_start(h.payload(&buf[..len])));
                break;
            }
        }
        now += Duration::from_millis(1);
        assert!(now < t0 + Duration::from_secs(2));
    }
    assert_eq!(m.keyframes, 1);
}

/// A publisher whose answer accepted three simulcast encodings (rid extension id 10, repaired
/// rid 11), without audio.
fn simulcast_publisher(bitrate: u64, t0: Instant) -> Publisher {
    let mut plan = plan();
    plan.audio = None;
    if let Some(v) = plan.video.as_mut() {
        v.ext.rid = Some(10);
        v.ext.repaired_rid = Some(11);
        v.rids = vec!["q".into(), "h".into(), "f".into()];
    }
    Publisher::new(
        PublisherConfig {
            video: Some(VideoConfig {
                bitrate_bps: bitrate,
                ..VideoConfig::default()
            }),
            audio: None,
            plan,
            cname: "pubcname".into(),
            seed: 0xdead_beef_1234_5678,
            ring_slots: 1024,
        },
        Clock::new(t0),
        t0,
        SystemTime::now(),
    )
}

#[test]
fn simulcast_encodings_carry_their_rid_at_a_quarter_of_the_next_ones_rate() {
    let t0 = Instant::now();
    let mut p = simulcast_publisher(2_000_000, t0);
    let ssrcs: Vec<u32> = p.video_ssrcs().collect();
    assert_eq!(ssrcs.len(), 3);
    assert!(ssrcs[0] != ssrcs[1] && ssrcs[1] != ssrcs[2] && ssrcs[0] != ssrcs[2]);
    let sent = run(&mut p, t0, 6);
    let mut bytes = [0usize; 3];
    let mut keyframes = [0usize; 3];
    for (_, o, b) in &sent {
        if !matches!(o, Outgoing::Rtp(_)) {
            continue;
        }
        let h = RtpHeader::parse(b).unwrap();
        let i = ssrcs
            .iter()
            .position(|s| *s == h.ssrc.0)
            .expect("an encoding's SSRC");
        let rid = ["q", "h", "f"][i];
        assert_eq!(
            h.extension(b, 10),
            Some(rid.as_bytes()),
            "rid of every packet"
        );
        assert_eq!(h.extension(b, 4), Some(&b"0"[..]), "mid of every packet");
        assert_eq!(
            Tag::read_tail(h.payload(b)).and_then(|t| t.layer),
            Some(i as u8),
            "the tag names the encoding's rank"
        );
        bytes[i] += h.payload_len;
        keyframes[i] += usize::from(vp8::is_keyframe_start(h.payload(b)));
    }
    let rate = |i: usize| bytes[i] as f64 * 8.0 / 6.0;
    assert!(
        (rate(2) - 2_000_000.0).abs() / 2_000_000.0 < 0.10,
        "f: {}",
        rate(2)
    );
    assert!(
        (rate(1) - 500_000.0).abs() / 500_000.0 < 0.10,
        "h: {}",
        rate(1)
    );
    assert!(
        (rate(0) - 125_000.0).abs() / 125_000.0 < 0.15,
        "q: {}",
        rate(0)
    );
    assert_eq!(keyframes, [2, 2, 2]);
    // One sender report per encoding.
    let report = sent
        .iter()
        .find(|(_, o, _)| matches!(o, Outgoing::Rtcp(_)))
        .map(|(_, _, b)| b)
        .unwrap();
    let srs: Vec<u32> = rtcp::iter(report)
        .filter_map(|r| match r.unwrap() {
            RtcpPacket::SenderReport(sr) => Some(sr.ssrc.0),
            _ => None,
        })
        .collect();
    assert_eq!(srs, ssrcs);
}

#[test]
fn simulcast_pli_and_nack_address_one_encoding() {
    let t0 = Instant::now();
    let mut p = simulcast_publisher(1_000_000, t0);
    let ssrcs: Vec<u32> = p.video_ssrcs().collect();
    let sent = run(&mut p, t0, 1);
    let mut m = Counters::default();
    let mut fb = [0u8; 64];
    let n = rtcp::write_pli(&mut fb, Ssrc(9), Ssrc(ssrcs[1])).unwrap();
    p.handle_rtcp(&fb[..n], &mut m);
    assert_eq!(m.plis_received, 1);
    let later = run(&mut p, t0 + Duration::from_secs(1), 1);
    let keyframe_ssrcs: Vec<u32> = later
        .iter()
        .filter_map(|(_, o, b)| {
            // Sender reports (their NTP time is the wall clock) would parse as RTP too.
            matches!(o, Outgoing::Rtp(_)).then_some(())?;
            let h = RtpHeader::parse(b).ok()?;
            vp8::is_keyframe_start(h.payload(b)).then_some(h.ssrc.0)
        })
        .collect();
    assert_eq!(keyframe_ssrcs, vec![ssrcs[1]], "only h sends a keyframe");

    // A NACK for an f packet is answered on f's RTX stream, named by repaired rid.
    let victim = sent
        .iter()
        .map(|(_, _, b)| b)
        .find(|b| RtpHeader::parse(b).is_ok_and(|h| h.ssrc.0 == ssrcs[2]))
        .unwrap();
    let vh = RtpHeader::parse(victim).unwrap();
    let n = rtcp::write_nack(&mut fb, Ssrc(9), Ssrc(ssrcs[2]), &[vh.seq]).unwrap();
    p.handle_rtcp(&fb[..n], &mut m);
    let mut buf = [0u8; 1500];
    let now = t0 + Duration::from_secs(2);
    let Some(Outgoing::Rtp(len)) = p.poll_transmit(now, &mut buf, &mut m) else {
        panic!("no retransmission")
    };
    let h = RtpHeader::parse(&buf[..len]).unwrap();
    assert_eq!(h.payload_type.0, 97);
    assert!(!ssrcs.contains(&h.ssrc.0), "an RTX SSRC");
    assert_eq!(h.extension(&buf[..len], 11), Some(&b"f"[..]));
    assert_eq!(h.extension(&buf[..len], 10), None);
}
