use super::*;
use crate::types::{Bitrate, SeqNo};
use proptest::prelude::*;
use webrtc_util::marshal::Marshal;

fn one(buf: &[u8]) -> RtcpPacket<'_> {
    let mut it = iter(buf);
    let p = it.next().expect("one packet").expect("valid packet");
    assert!(it.next().is_none(), "exactly one packet");
    p
}

/// Parses with the `rtcp` crate and returns its single packet.
fn oracle(buf: &[u8]) -> Box<dyn rtcp::packet::Packet + Send + Sync> {
    let mut pkts = rtcp::packet::unmarshal(&mut &buf[..]).expect("oracle parses it");
    assert_eq!(pkts.len(), 1);
    pkts.remove(0)
}

fn block(n: u32) -> ReportBlock {
    ReportBlock {
        ssrc: Ssrc(n),
        fraction_lost: n as u8,
        cumulative_lost: -(n as i32) * 3,
        ext_highest_seq: 0x0001_0000 + n,
        jitter: 17 * n,
        last_sr: 0xabcd_0000 | n,
        delay_since_last_sr: 65536 + n,
    }
}

#[test]
fn sender_report_round_trips_with_blocks() {
    let info = SenderInfo {
        ssrc: Ssrc(0x1111),
        ntp: 0xe1a2_b3c4_d5e6_f708,
        rtp_timestamp: 90_000,
        packet_count: 5,
        octet_count: 6000,
    };
    let blocks = [block(1), block(2)];
    let mut out = [0u8; 200];
    let n = write_sr(&mut out, &info, &blocks).unwrap();
    assert_eq!(n, 28 + 48);
    let RtcpPacket::SenderReport(sr) = one(&out[..n]) else {
        panic!("not an SR")
    };
    assert_eq!(sr.info(), info);
    assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks);

    let theirs = oracle(&out[..n]);
    let theirs = theirs
        .as_any()
        .downcast_ref::<rtcp::sender_report::SenderReport>()
        .unwrap();
    assert_eq!(theirs.ntp_time, info.ntp);
    assert_eq!(theirs.reports[1].total_lost, 0xff_fffa); // -6 in 24 bits
    assert_eq!(theirs.reports[1].delay, 65538);
}

#[test]
fn receiver_report_sign_extends_and_clamps_cumulative_loss() {
    let mut b = block(9);
    b.cumulative_lost = -1;
    let mut big = block(10);
    big.cumulative_lost = 50_000_000; // beyond 24 bits: clamped to 0x7fffff
    let mut out = [0u8; 100];
    let n = write_rr(&mut out, Ssrc(77), &[b, big]).unwrap();
    let RtcpPacket::ReceiverReport(rr) = one(&out[..n]) else {
        panic!("not an RR")
    };
    assert_eq!(rr.ssrc, Ssrc(77));
    let got: Vec<_> = rr.report_blocks().collect();
    assert_eq!(got[0].cumulative_lost, -1);
    assert_eq!(got[1].cumulative_lost, 0x7f_ffff);
    assert_eq!(&out[8 + 5..8 + 8], &[0xff, 0xff, 0xff]);
    assert_eq!(
        write_rr(&mut out, Ssrc(1), &[block(1); 32]),
        Err(RtcpError::TooManyItems)
    );
    assert_eq!(
        write_rr(&mut [0u8; 20], Ssrc(1), &[block(1)]),
        Err(RtcpError::BufferTooSmall { need: 32, have: 20 })
    );
}

#[test]
fn report_blocks_parse_from_the_oracle() {
    let theirs = rtcp::receiver_report::ReceiverReport {
        ssrc: 0x0102_0304,
        reports: vec![rtcp::reception_report::ReceptionReport {
            ssrc: 0xbc5e_9a40,
            fraction_lost: 0,
            total_lost: 0x80_0001, // -8388607
            last_sequence_number: 0x46e1,
            jitter: 273,
            last_sender_report: 0x09f3_6432,
            delay: 150_137,
        }],
        profile_extensions: Default::default(),
    };
    let bytes = theirs.marshal().unwrap();
    let RtcpPacket::ReceiverReport(rr) = one(&bytes) else {
        panic!("not an RR")
    };
    let b = rr.report_blocks().next().unwrap();
    assert_eq!(b.ssrc, Ssrc(0xbc5e_9a40));
    assert_eq!(b.cumulative_lost, -8_388_607);
    assert_eq!((b.ext_highest_seq, b.jitter), (0x46e1, 273));
    assert_eq!((b.last_sr, b.delay_since_last_sr), (0x09f3_6432, 150_137));
}

#[test]
fn compound_packet_yields_each_part_in_order() {
    let mut buf = [0u8; 400];
    let mut n = write_sr(
        &mut buf,
        &SenderInfo {
            ssrc: Ssrc(5),
            ..Default::default()
        },
        &[],
    )
    .unwrap();
    n += write_sdes_cname(&mut buf[n..], Ssrc(5), "user@host").unwrap();
    n += write_pli(&mut buf[n..], Ssrc(5), Ssrc(6)).unwrap();
    n += write_remb(
        &mut buf[n..],
        Ssrc(5),
        Bitrate(1_000_000),
        &[Ssrc(6), Ssrc(7)],
    )
    .unwrap();
    n += write_bye(&mut buf[n..], &[Ssrc(5)]).unwrap();
    let kinds: Vec<String> = iter(&buf[..n])
        .map(|p| match p.unwrap() {
            RtcpPacket::SenderReport(_) => "sr".into(),
            RtcpPacket::Sdes => "sdes".into(),
            RtcpPacket::Pli { sender, media } => format!("pli {sender}->{media}"),
            RtcpPacket::Remb(r) => format!("remb {}", r.bitrate.0),
            RtcpPacket::Bye(b) => format!("bye {:?}", b.ssrcs().collect::<Vec<_>>()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["sr", "sdes", "pli 5->6", "remb 1000000", "bye [Ssrc(5)]"]
    );
    // The oracle agrees on the whole compound packet.
    assert_eq!(rtcp::packet::unmarshal(&mut &buf[..n]).unwrap().len(), 5);
}

#[test]
fn iteration_stops_after_a_malformed_packet() {
    let mut buf = [0u8; 64];
    let n = write_pli(&mut buf, Ssrc(1), Ssrc(2)).unwrap();
    buf[n] = 0x80;
    buf[n + 1] = PT_RR;
    buf[n + 2] = 0;
    buf[n + 3] = 200; // claims 804 bytes
    let mut it = iter(&buf[..n + 8]);
    assert!(matches!(it.next(), Some(Ok(RtcpPacket::Pli { .. }))));
    assert_eq!(it.next().unwrap().unwrap_err(), RtcpError::LengthOverflow);
    assert!(it.next().is_none());

    let bad_version = [0x40, 201, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        iter(&bad_version).next().unwrap().unwrap_err(),
        RtcpError::BadVersion(1)
    );
    let rr_missing_block = [0x81, 201, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        iter(&rr_missing_block).next().unwrap().unwrap_err(),
        RtcpError::Truncated { packet_type: PT_RR }
    );
    let pad_zero = [0xa0, 201, 0, 1, 0, 0, 0, 0];
    assert_eq!(
        iter(&pad_zero).next().unwrap().unwrap_err(),
        RtcpError::BadPadding
    );
}

#[test]
fn padding_is_stripped_before_interpretation() {
    // RR with no blocks, then 4 bytes of padding.
    let p = [0xa0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4];
    let RtcpPacket::ReceiverReport(rr) = one(&p) else {
        panic!("not an RR")
    };
    assert_eq!(rr.ssrc, Ssrc(9));
    assert_eq!(rr.report_blocks().count(), 0);
}

#[test]
fn sdes_cname_round_trips() {
    for cname in [
        "",
        "a",
        "abc",
        "abcd",
        "{d4b1c2c7-0bb2-4c5b-bb2e-4c4e4e4e4e4e}",
    ] {
        let mut out = [0u8; 100];
        let n = write_sdes_cname(&mut out, Ssrc(42), cname).unwrap();
        assert_eq!(n % 4, 0);
        let raw = iter_raw(&out[..n]).next().unwrap().unwrap();
        let sdes = Sdes::parse(raw).unwrap();
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].ssrc, Ssrc(42));
        assert_eq!(chunks[0].cname(), Some(cname.as_bytes()));
        let theirs = oracle(&out[..n]);
        let theirs = theirs
            .as_any()
            .downcast_ref::<rtcp::source_description::SourceDescription>()
            .unwrap();
        assert_eq!(&theirs.chunks[0].items[0].text[..], cname.as_bytes());
    }
    assert_eq!(
        write_sdes_cname(&mut [0u8; 400], Ssrc(1), &"x".repeat(256)),
        Err(RtcpError::TextTooLong)
    );
}

#[test]
fn sdes_from_the_oracle_with_two_chunks() {
    use rtcp::source_description::*;
    let theirs = SourceDescription {
        chunks: vec![
            SourceDescriptionChunk {
                source: 1,
                items: vec![
                    SourceDescriptionItem {
                        sdes_type: SdesType::SdesName,
                        text: "n".into(),
                    },
                    SourceDescriptionItem {
                        sdes_type: SdesType::SdesCname,
                        text: "c1".into(),
                    },
                ],
            },
            SourceDescriptionChunk {
                source: 2,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: "cname-two".into(),
                }],
            },
        ],
    };
    let bytes = theirs.marshal().unwrap();
    let raw = iter_raw(&bytes).next().unwrap().unwrap();
    let sdes = Sdes::parse(raw).unwrap();
    let got: Vec<_> = sdes.chunks().map(|c| (c.ssrc, c.cname())).collect();
    assert_eq!(
        got,
        vec![
            (Ssrc(1), Some(&b"c1"[..])),
            (Ssrc(2), Some(&b"cname-two"[..]))
        ]
    );
}

#[test]
fn bye_with_reason_parses() {
    // BYE for two sources with the reason "done".
    let p = [
        0x82, 203, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 4, b'd', b'o', b'n', b'e', 0, 0, 0,
    ];
    let RtcpPacket::Bye(b) = one(&p) else {
        panic!("not a BYE")
    };
    assert_eq!(b.ssrcs().collect::<Vec<_>>(), vec![Ssrc(1), Ssrc(2)]);
    assert_eq!(b.reason, Some(&b"done"[..]));
    let mut out = [0u8; 16];
    let n = write_bye(&mut out, &[Ssrc(3), Ssrc(4)]).unwrap();
    let RtcpPacket::Bye(b) = one(&out[..n]) else {
        panic!("not a BYE")
    };
    assert_eq!(b.ssrcs().collect::<Vec<_>>(), vec![Ssrc(3), Ssrc(4)]);
    assert_eq!(b.reason, None);
}

#[test]
fn nack_packs_losses_into_minimal_pairs() {
    let lost: Vec<SeqNo> = [1u16, 2, 3, 17, 18, 100].into_iter().map(SeqNo).collect();
    let mut out = [0u8; 64];
    let n = write_nack(&mut out, Ssrc(1), Ssrc(2), &lost).unwrap();
    let RtcpPacket::Nack(nack) = one(&out[..n]) else {
        panic!("not a NACK")
    };
    assert_eq!((nack.sender, nack.media), (Ssrc(1), Ssrc(2)));
    // 2, 3 and 17 are within 16 of 1; 18 is not.
    assert_eq!(
        nack.pairs().collect::<Vec<_>>(),
        vec![
            (SeqNo(1), 0b1000_0000_0000_0011),
            (SeqNo(18), 0),
            (SeqNo(100), 0)
        ]
    );
    assert_eq!(nack.lost().collect::<Vec<_>>(), lost);

    let theirs = oracle(&out[..n]);
    let theirs = theirs
        .as_any()
        .downcast_ref::<rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack>()
        .unwrap();
    let their_lost: Vec<u16> = theirs.nacks.iter().flat_map(|p| p.packet_list()).collect();
    assert_eq!(their_lost, vec![1, 2, 3, 17, 18, 100]);
}

#[test]
fn nack_pairs_cross_the_sequence_wrap() {
    let lost: Vec<SeqNo> = [65534u16, 65535, 0, 5].into_iter().map(SeqNo).collect();
    let mut out = [0u8; 64];
    let n = write_nack(&mut out, Ssrc(1), Ssrc(2), &lost).unwrap();
    assert_eq!(n, 16, "one pair");
    let RtcpPacket::Nack(nack) = one(&out[..n]) else {
        panic!("not a NACK")
    };
    assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
    assert_eq!(
        write_nack(&mut out, Ssrc(1), Ssrc(2), &[]),
        Err(RtcpError::Empty)
    );
}

#[test]
fn pli_and_fir_round_trip() {
    let mut out = [0u8; 32];
    let n = write_fir(&mut out, Ssrc(10), Ssrc(20), 7).unwrap();
    let RtcpPacket::Fir(fir) = one(&out[..n]) else {
        panic!("not a FIR")
    };
    assert_eq!(fir.sender, Ssrc(10));
    assert_eq!(fir.media, Ssrc(0));
    assert_eq!(fir.entries().collect::<Vec<_>>(), vec![(Ssrc(20), 7)]);
    let theirs = oracle(&out[..n]);
    let theirs = theirs
        .as_any()
        .downcast_ref::<rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>()
        .unwrap();
    assert_eq!((theirs.fir[0].ssrc, theirs.fir[0].sequence_number), (20, 7));

    let n = write_pli(&mut out, Ssrc(10), Ssrc(20)).unwrap();
    assert!(matches!(
        one(&out[..n]),
        RtcpPacket::Pli {
            sender: Ssrc(10),
            media: Ssrc(20)
        }
    ));
    let theirs = oracle(&out[..n]);
    let theirs = theirs
        .as_any()
        .downcast_ref::<rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>()
        .unwrap();
    assert_eq!((theirs.sender_ssrc, theirs.media_ssrc), (10, 20));
}

#[test]
fn remb_encodes_exponent_and_mantissa() {
    let mut out = [0u8; 32];
    let n = write_remb(&mut out, Ssrc(1), Bitrate(1_000_000), &[Ssrc(0x2233_4455)]).unwrap();
    // 1 000 000 = 250 000 << 2: one SSRC, exponent 2, mantissa 250 000.
    assert_eq!(
        &out[12..20],
        &[b'R', b'E', b'M', b'B', 0x01, 0x0b, 0xd0, 0x90]
    );
    let RtcpPacket::Remb(r) = one(&out[..n]) else {
        panic!("not a REMB")
    };
    assert_eq!(r.bitrate, Bitrate(1_000_000));
    assert_eq!(r.ssrcs().collect::<Vec<_>>(), vec![Ssrc(0x2233_4455)]);
    let theirs = oracle(&out[..n]);
    let theirs = theirs
        .as_any()
        .downcast_ref::<rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate>()
        .unwrap();
    assert_eq!(theirs.bitrate, 1_000_000.0);

    // Large rates lose low bits only.
    let n = write_remb(&mut out, Ssrc(1), Bitrate(123_456_789_012), &[]).unwrap();
    let RtcpPacket::Remb(r) = one(&out[..n]) else {
        panic!("not a REMB")
    };
    assert!(r.bitrate.0 <= 123_456_789_012 && r.bitrate.0 > 123_456_789_012 - (1 << 19));
}

#[test]
fn unknown_feedback_is_other() {
    // PSFB FMT 15 that is not REMB, and an APP packet.
    let afb = [
        0x8f, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, b'X', b'Y', b'Z', b'W',
    ];
    assert!(matches!(
        one(&afb),
        RtcpPacket::Other {
            packet_type: PT_PSFB,
            fmt: 15
        }
    ));
    let app = [0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e'];
    assert!(matches!(
        one(&app),
        RtcpPacket::Other {
            packet_type: PT_APP,
            fmt: 0
        }
    ));
}

fn visit(buf: &[u8]) {
    for p in iter(buf) {
        match p {
            Ok(RtcpPacket::SenderReport(sr)) => {
                let _ = sr.report_blocks().count();
            }
            Ok(RtcpPacket::ReceiverReport(rr)) => {
                let _ = rr.report_blocks().count();
            }
            Ok(RtcpPacket::Bye(b)) => {
                let _ = b.ssrcs().count();
            }
            Ok(RtcpPacket::Nack(n)) => {
                let _ = n.lost().count();
            }
            Ok(RtcpPacket::Fir(f)) => {
                let _ = f.entries().count();
            }
            Ok(RtcpPacket::Remb(r)) => {
                let _ = r.ssrcs().count();
            }
            Ok(RtcpPacket::TransportCc(t)) => {
                let _ = t.packets().count();
            }
            _ => {}
        }
    }
    for raw in iter_raw(buf).flatten() {
        if let Ok(s) = Sdes::parse(raw) {
            for c in s.chunks() {
                let _ = c.items().count();
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
        visit(&buf);
    }

    #[test]
    fn arbitrary_bodies_behind_valid_headers_never_panic(
        pt in 200u8..=207, count in 0u8..32, body in proptest::collection::vec(any::<u8>(), 0..200),
        padding in any::<bool>(),
    ) {
        let words = body.len() / 4;
        let mut buf = vec![0x80 | if padding { 0x20 } else { 0 } | count, pt];
        buf.extend_from_slice(&(words as u16).to_be_bytes());
        buf.extend_from_slice(&body[..words * 4]);
        visit(&buf);
    }

    #[test]
    fn nack_round_trips_any_ascending_losses(start in any::<u16>(), gaps in proptest::collection::vec(1u16..40, 1..60)) {
        let mut lost = vec![SeqNo(start)];
        for g in gaps {
            let last = lost.last().unwrap().0;
            lost.push(SeqNo(last.wrapping_add(g)));
        }
        let mut out = [0u8; 1200];
        let n = write_nack(&mut out, Ssrc(1), Ssrc(2), &lost).unwrap();
        let RtcpPacket::Nack(nack) = one(&out[..n]) else { panic!("not a NACK") };
        prop_assert_eq!(nack.lost().collect::<Vec<_>>(), lost.clone());
        // Minimal: every pair starts more than 16 after the previous pair's PID.
        let pids: Vec<u16> = nack.pairs().map(|(p, _)| p.0).collect();
        for w in pids.windows(2) {
            prop_assert!(w[1].wrapping_sub(w[0]) > 16);
        }
    }

    #[test]
    fn report_blocks_round_trip(
        ssrc in any::<u32>(), fl in any::<u8>(), lost in -0x80_0000i32..=0x7f_ffff,
        hs in any::<u32>(), j in any::<u32>(), lsr in any::<u32>(), dlsr in any::<u32>(),
        n in 0usize..=31,
    ) {
        let b = ReportBlock {
            ssrc: Ssrc(ssrc), fraction_lost: fl, cumulative_lost: lost, ext_highest_seq: hs,
            jitter: j, last_sr: lsr, delay_since_last_sr: dlsr,
        };
        let blocks = vec![b; n];
        let mut out = [0u8; 1000];
        let len = write_rr(&mut out, Ssrc(1), &blocks).unwrap();
        let RtcpPacket::ReceiverReport(rr) = one(&out[..len]) else { panic!("not an RR") };
        prop_assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks);
    }

    #[test]
    fn remb_round_trips_within_mantissa_precision(rate in any::<u64>(), n in 0usize..8) {
        let ssrcs: Vec<Ssrc> = (0..n as u32).map(Ssrc).collect();
        let mut out = [0u8; 64];
        let len = write_remb(&mut out, Ssrc(9), Bitrate(rate), &ssrcs).unwrap();
        let RtcpPacket::Remb(r) = one(&out[..len]) else { panic!("not a REMB") };
        prop_assert!(r.bitrate.0 <= rate);
        prop_assert!(rate - r.bitrate.0 <= rate >> 17);
        prop_assert_eq!(r.ssrcs().collect::<Vec<_>>(), ssrcs);
    }
    #[test]
    fn sender_reports_round_trip(
        ssrc in any::<u32>(), ntp in any::<u64>(), ts in any::<u32>(), pc in any::<u32>(),
        oc in any::<u32>(), n in 0usize..=31,
    ) {
        let info = SenderInfo {
            ssrc: Ssrc(ssrc), ntp, rtp_timestamp: ts, packet_count: pc, octet_count: oc,
        };
        let blocks: Vec<ReportBlock> = (0..n as u32).map(block).collect();
        let mut out = [0u8; 1000];
        let len = write_sr(&mut out, &info, &blocks).unwrap();
        let RtcpPacket::SenderReport(sr) = one(&out[..len]) else { panic!("not an SR") };
        prop_assert_eq!(sr.info(), info);
        prop_assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks);
    }

    #[test]
    fn cname_bye_and_fir_round_trip(
        ssrc in any::<u32>(), cname in "[ -~]{0,255}", leaving in proptest::collection::vec(any::<u32>(), 0..=31),
        media in any::<u32>(), fir_seq in any::<u8>(),
    ) {
        let mut out = [0u8; 600];
        let mut n = write_sdes_cname(&mut out, Ssrc(ssrc), &cname).unwrap();
        let leaving: Vec<Ssrc> = leaving.into_iter().map(Ssrc).collect();
        n += write_bye(&mut out[n..], &leaving).unwrap();
        n += write_fir(&mut out[n..], Ssrc(ssrc), Ssrc(media), fir_seq).unwrap();
        let mut raw = iter_raw(&out[..n]);
        let sdes = Sdes::parse(raw.next().unwrap().unwrap()).unwrap();
        let chunk = sdes.chunks().next().unwrap();
        prop_assert_eq!((chunk.ssrc, chunk.cname()), (Ssrc(ssrc), Some(cname.as_bytes())));
        let mut it = iter(&out[..n]);
        prop_assert!(matches!(it.next(), Some(Ok(RtcpPacket::Sdes))));
        let Some(Ok(RtcpPacket::Bye(bye))) = it.next() else { panic!("not a BYE") };
        prop_assert_eq!(bye.ssrcs().collect::<Vec<_>>(), leaving);
        let Some(Ok(RtcpPacket::Fir(fir))) = it.next() else { panic!("not a FIR") };
        prop_assert_eq!(fir.entries().collect::<Vec<_>>(), vec![(Ssrc(media), fir_seq)]);
        prop_assert!(it.next().is_none());
    }
}
