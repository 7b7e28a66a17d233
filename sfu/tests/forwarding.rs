//! The shard core forwarding between client sessions on a virtual network: ICE, DTLS-SRTP,
//! rewriting, keyframe gating, NACK/RTX, keyframe requests, consent, and cross-shard fan-out.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::time::Duration;

use sfu::io::RecvMeta;
use sfu::sim::*;
use sfu::wire::rtcp;
use sfu::wire::rtp::RtpHeader;
use sfu::{PayloadType, SeqNo, Ssrc};

fn is_keyframe_start(pkt: &[u8]) -> bool {
    let h = RtpHeader::parse(pkt).unwrap();
    let p = h.payload(pkt);
    p[0] & 0x10 != 0 && p[1] & 0x01 == 0
}

fn frame_of(pkt: &[u8]) -> u64 {
    let h = RtpHeader::parse(pkt).unwrap();
    u64::from_be_bytes(h.payload(pkt)[8..16].try_into().unwrap())
}

#[test]
fn viewer_receives_continuous_rewritten_stream_starting_at_a_keyframe() {
    let mut h = Harness::new(1);
    let p = h.add_publisher(0, 1);
    h.run(Duration::from_millis(1500));
    assert!(h.peers[p].connected, "publisher connected");
    let v = h.add_viewer(0, 1);
    h.run(Duration::from_secs(3));
    assert!(h.peers[v].connected, "viewer connected");
    let video = h.video_received(v);
    assert!(
        video.len() > 150,
        "viewer got {} video packets",
        video.len()
    );
    assert!(
        is_keyframe_start(&video[0].1),
        "first forwarded packet starts a keyframe"
    );
    assert!(
        h.peers[p].publisher.as_ref().unwrap().plis >= 1,
        "the join asked the publisher for a keyframe"
    );
    // The viewer joined mid-stream (keyframes every 3 s): the PLI got it video within a second.
    let first_frame = frame_of(&video[0].1);
    assert!(
        first_frame < 45 + 30,
        "first frame {first_frame} should follow the join within ~1 s"
    );
    let ssrc = video[0].0.ssrc;
    assert_ne!(ssrc, Ssrc(VIDEO_SSRC), "viewer sees its own SSRC");
    for w in video.windows(2) {
        assert_eq!(w[1].0.ssrc, ssrc);
        assert_eq!(
            w[1].0.seq.0,
            w[0].0.seq.0.wrapping_add(1),
            "sequence continuous across the wrap"
        );
        let dts = w[1].0.timestamp.wrapping_sub(w[0].0.timestamp);
        assert!(
            dts == 0 || dts == 3000,
            "timestamps advance by frame: {dts}"
        );
    }
    assert!(
        h.audio_received(v) > 100,
        "audio flows: {}",
        h.audio_received(v)
    );
}

#[test]
fn viewer_arriving_before_publisher_starts_receiving_when_it_comes() {
    let mut h = Harness::new(1);
    let v = h.add_viewer(0, 7);
    h.run(Duration::from_millis(500));
    assert!(h.peers[v].connected);
    let _p = h.add_publisher(0, 7);
    h.run(Duration::from_secs(2));
    let video = h.video_received(v);
    assert!(
        video.len() > 100,
        "viewer got {} video packets",
        video.len()
    );
    assert!(is_keyframe_start(&video[0].1));
}

#[test]
fn viewer_nack_is_answered_with_rtx_from_the_cache() {
    let mut h = Harness::new(1);
    let p = h.add_publisher(0, 1);
    let v = h.add_viewer(0, 1);
    h.run(Duration::from_secs(2));
    let video = h.video_received(v);
    let lost = video[video.len() - 10].0.seq;
    let media = video[0].0.ssrc;
    let rtx_before = h.peers[v]
        .rtp
        .iter()
        .filter(|b| RtpHeader::parse(b).unwrap().payload_type == PayloadType(VIEW_VP8_RTX))
        .count();
    let mut buf = vec![0u8; 256];
    let n = rtcp::write_nack(&mut buf, Ssrc(42), media, &[lost]).unwrap();
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
    h.run(Duration::from_millis(5));
    let rtx: Vec<Vec<u8>> = h.peers[v]
        .rtp
        .iter()
        .filter(|b| RtpHeader::parse(b).unwrap().payload_type == PayloadType(VIEW_VP8_RTX))
        .cloned()
        .collect();
    assert_eq!(rtx.len(), rtx_before + 1, "one retransmission");
    let r = rtx.last().unwrap();
    let rh = RtpHeader::parse(r).unwrap();
    let osn = u16::from_be_bytes([rh.payload(r)[0], rh.payload(r)[1]]);
    assert_eq!(
        SeqNo(osn),
        lost,
        "RTX carries the viewer's original sequence number"
    );
    assert_ne!(rh.ssrc, media, "RTX on its own SSRC");
    let _ = p;
}

#[test]
fn publisher_loss_is_recovered_through_nack() {
    let mut h = Harness::new(1);
    let p = h.add_publisher(0, 1);
    let v = h.add_viewer(0, 1);
    h.run(Duration::from_secs(1));
    // Drop every 20th video packet from the publisher to the server for two seconds.
    let mut count = 0u32;
    let server = h.servers[0];
    h.drop_filter = Some(Box::new(move |_from, to, bytes| {
        if to != server || bytes.len() < 500 {
            return false;
        }
        count += 1;
        count.is_multiple_of(20)
    }));
    h.run(Duration::from_secs(2));
    h.drop_filter = None;
    h.run(Duration::from_millis(500));
    assert!(
        h.peers[p].publisher.as_ref().unwrap().nacks > 0,
        "the server NACKed the publisher"
    );
    let video = h.video_received(v);
    let mut seqs: Vec<u16> = video.iter().map(|(hd, _)| hd.seq.0).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let first = video[0].0.seq.0;
    let span = video
        .iter()
        .map(|(hd, _)| hd.seq.0.wrapping_sub(first))
        .max()
        .unwrap() as usize
        + 1;
    assert!(
        seqs.len() + 2 >= span,
        "viewer has {} of {} packets after recovery",
        seqs.len(),
        span
    );
}

#[test]
fn viewer_pli_reaches_the_publisher_throttled() {
    let mut h = Harness::new(1);
    let p = h.add_publisher(0, 1);
    let v = h.add_viewer(0, 1);
    h.run(Duration::from_secs(2));
    let before = h.peers[p].publisher.as_ref().unwrap().plis;
    let media = h.video_received(v)[0].0.ssrc;
    for _ in 0..10 {
        let mut buf = vec![0u8; 256];
        let n = rtcp::write_pli(&mut buf, Ssrc(42), media).unwrap();
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
        h.run(Duration::from_millis(20));
    }
    let got = h.peers[p].publisher.as_ref().unwrap().plis - before;
    assert!(
        (1..=2).contains(&got),
        "10 PLIs within 200 ms became {got} toward the publisher"
    );
}

#[test]
fn silent_session_expires_after_thirty_seconds_of_no_consent() {
    let mut h = Harness::new(1);
    let v = h.add_viewer(0, 1);
    h.run(Duration::from_millis(200));
    assert!(h.peers[v].connected);
    assert_eq!(h.cores[0].population().sessions, 1);
    // The peer goes silent: drop everything it sends.
    let addr = h.peers[v].addr;
    h.drop_filter = Some(Box::new(move |from, _to, _b| from == addr));
    h.run(Duration::from_secs(29));
    assert_eq!(h.cores[0].population().sessions, 1);
    h.run(Duration::from_secs(2));
    assert_eq!(h.cores[0].population().sessions, 0, "consent expired");
    let mut closed = false;
    while let Some(ev) = h.cores[0].poll_event() {
        if matches!(
            ev,
            sfu::control::Event::SessionClosed {
                reason: sfu::control::CloseReason::ConsentExpired,
                ..
            }
        ) {
            closed = true;
        }
    }
    assert!(closed);
}

#[test]
fn packet_crosses_to_another_shard_once_for_all_its_viewers() {
    let mut h = Harness::new(2);
    let _p = h.add_publisher(0, 1);
    let v1 = h.add_viewer(1, 1);
    let v2 = h.add_viewer(1, 1);
    h.cores[0].handle_command(
        h.now,
        sfu::control::Command::LinkShard {
            stream: sfu::StreamKey(1),
            shard: sfu::ShardId(1),
            linked: true,
        },
    );
    h.run(Duration::from_secs(2));
    for v in [v1, v2] {
        let video = h.video_received(v);
        assert!(
            video.len() > 100,
            "viewer on the other shard got {} packets",
            video.len()
        );
        assert!(is_keyframe_start(&video[0].1));
    }
    let crossed = h.cores[0].counters().cross_shard_out;
    let received = h.cores[0].counters().rtp_in;
    assert!(crossed > 0);
    assert!(
        crossed <= received + 10,
        "each packet crossed once ({crossed} messages for {received} packets)"
    );
}

#[test]
fn packets_overwritten_before_fanout_are_counted_as_drops() {
    // A video cache of 8 packets and frames of 12 packets arriving in one step: the first
    // packets of each frame are overwritten before they can be fanned out.
    let cfg = sfu::core::CoreConfig {
        video_cache_packets: 8,
        ..sfu::core::CoreConfig::default()
    };
    let mut h = Harness::with_config(1, cfg);
    let p = h.add_publisher(0, 1);
    let _v = h.add_viewer(0, 1);
    h.run(Duration::from_millis(500));
    h.peers[p].publisher.as_mut().unwrap().packets_per_frame = 12;
    h.run(Duration::from_millis(500));
    let overruns = h.cores[0]
        .counters()
        .dropped(sfu::metrics::DropReason::FanoutOverrun);
    assert!(overruns > 0, "overwritten packets are counted");
}
