use super::*;
use crate::wire::rtcp::{RtcpPacket, iter};
use proptest::prelude::*;
use rtcp::transport_feedbacks::transport_layer_cc::*;
use webrtc_util::marshal::{Marshal, Unmarshal};

fn parse(buf: &[u8]) -> TransportCc<'_> {
    match iter(buf).next() {
        Some(Ok(RtcpPacket::TransportCc(t))) => t,
        other => panic!("not transport-cc: {other:?}"),
    }
}

fn statuses(t: &TransportCc) -> Vec<(u16, Option<i64>)> {
    t.packets().map(|(s, d)| (s.0, d)).collect()
}

/// A captured feedback packet: nine packets from sequence 1, all received with small deltas,
/// one byte of padding.
const CAPTURED: [u8; 32] = [
    0xaf, 0xcd, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01, 0xdd, 0x58, 0x6e, 0xb6, 0x00, 0x01, 0x00, 0x09,
    0x5e, 0x91, 0x10, 0x00, 0x20, 0x09, 0x1c, 0x0c, 0x2c, 0x38, 0x00, 0x04, 0x00, 0x08, 0x18, 0x01,
];

#[test]
fn parses_a_captured_feedback_packet() {
    let t = parse(&CAPTURED);
    assert_eq!((t.sender, t.media), (Ssrc(1), Ssrc(0xdd58_6eb6)));
    assert_eq!((t.base_seq, t.status_count), (SeqNo(1), 9));
    assert_eq!((t.reference_time, t.fb_pkt_count), (6_197_520, 0));
    let ms = [7.0, 3.0, 11.0, 14.0, 0.0, 1.0, 0.0, 2.0, 6.0];
    let want: Vec<_> = (1..=9)
        .zip(ms)
        .map(|(s, m)| (s, Some((m * 1000.0) as i64)))
        .collect();
    assert_eq!(statuses(&t), want);
}

#[test]
fn parses_a_feedback_packet_with_a_two_bit_vector_large_delta_and_trailing_losses() {
    // Base 34108, nine statuses: a two-bit vector (5 small, 1 lost, 1 large) and a run of
    // losses longer than the two statuses it has left to cover.
    let p = [
        0xaf, 0xcd, 0x00, 0x07, 0x9b, 0x74, 0xf6, 0x1f, 0x93, 0x71, 0xdc, 0xbc, 0x85, 0x3c, 0x00,
        0x09, 0x63, 0xf9, 0x16, 0xb3, 0xd5, 0x52, 0x00, 0x30, 0x9b, 0xaa, 0x6a, 0xaa, 0x7b, 0x01,
        0x09, 0x01,
    ];
    let t = parse(&p);
    assert_eq!((t.reference_time, t.fb_pkt_count), (0x63f916, 0xb3));
    assert_eq!(
        statuses(&t),
        vec![
            (34108, Some(38_750)),
            (34109, Some(42_500)),
            (34110, Some(26_500)),
            (34111, Some(42_500)),
            (34112, Some(30_750)),
            (34113, None),
            (34114, Some(66_250)),
            (34115, None),
            (34116, None),
        ]
    );
}

/// A packet built by hand from the chunk examples of the draft (§3.1.3, §3.1.4): the one-bit
/// status vector 1|0|01111100011100 (lost, 5 received, 3 lost, 3 received, 2 lost), the
/// run-length chunk 0|00|0000011011101 (221 lost), then a run of two small deltas.
fn draft_example() -> Vec<u8> {
    let mut p = vec![0x8f, 205, 0, 8]; // 36 bytes, no padding
    p.extend_from_slice(&[0, 0, 0, 0x11, 0, 0, 0, 0x22]); // sender, media
    p.extend_from_slice(&[0x01, 0x00, 0x00, 237]); // base 256, 14 + 221 + 2 statuses
    p.extend_from_slice(&[0x00, 0x00, 0x10, 0x05]); // reference time 16 (1.024 s), fb 5
    p.extend_from_slice(&[0x9f, 0x1c, 0x00, 0xdd, 0x20, 0x02]);
    p.extend_from_slice(&[4, 0, 1, 2, 3, 40, 255, 0, 8, 12]); // ten small deltas
    p
}

fn draft_statuses() -> Vec<Option<i64>> {
    let received = [
        false, true, true, true, true, true, false, false, false, true, true, true,
    ];
    let mut deltas = [4i64, 0, 1, 2, 3, 40, 255, 0, 8, 12]
        .into_iter()
        .map(|d| d * 250);
    let mut v: Vec<Option<i64>> = Vec::new();
    for r in received.into_iter().chain([false, false]) {
        v.push(if r { deltas.next() } else { None });
    }
    v.extend(std::iter::repeat_n(None, 221));
    v.extend(deltas.map(Some));
    v
}

#[test]
fn parses_the_draft_chunk_examples() {
    let p = draft_example();
    let t = parse(&p);
    assert_eq!((t.base_seq, t.status_count), (SeqNo(256), 237));
    assert_eq!(t.reference_time_us(), 1_024_000);
    let got: Vec<Option<i64>> = t.packets().map(|(_, d)| d).collect();
    assert_eq!(got, draft_statuses());
    assert_eq!(t.packets().last().map(|(s, _)| s), Some(SeqNo(256 + 236)));
}

#[test]
fn writer_reproduces_the_draft_chunk_examples_byte_for_byte() {
    let hdr = TwccHeader {
        sender: Ssrc(0x11),
        media: Ssrc(0x22),
        base_seq: SeqNo(256),
        reference_time: 16,
        fb_pkt_count: 5,
    };
    let mut out = [0u8; 100];
    let n = write_twcc(&mut out, &hdr, &draft_statuses()).unwrap();
    assert_eq!(&out[..n], &draft_example()[..]);
}

#[test]
fn reserved_symbol_is_rejected() {
    // The draft's two-bit vector example 1|1|00 11 01 01 00 00 00 uses symbol 3, which the
    // current text reserves.
    let mut p = vec![
        0x8f, 205, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0,
    ];
    p.extend_from_slice(&[0xcd, 0x50, 1, 1]);
    assert_eq!(
        iter(&p).next().unwrap().unwrap_err(),
        RtcpError::TwccReservedSymbol
    );
}

#[test]
fn truncated_chunks_and_deltas_are_errors() {
    let p = draft_example();
    let mut short = p[..32].to_vec(); // drop the last 4 deltas
    short[3] = 7;
    assert_eq!(
        iter(&short).next().unwrap().unwrap_err(),
        RtcpError::Truncated {
            packet_type: PT_RTPFB
        }
    );
    let mut no_chunks = p[..20].to_vec();
    no_chunks[3] = 4;
    assert!(iter(&no_chunks).next().unwrap().is_err());
}

#[test]
fn writer_pads_and_rejects_what_it_cannot_encode() {
    let hdr = TwccHeader::default();
    let mut out = [0u8; 64];
    // One received packet: 20 + 2 (chunk) + 1 (delta) = 23, padded to 24.
    let n = write_twcc(&mut out, &hdr, &[Some(1000)]).unwrap();
    assert_eq!(n, 24);
    assert_eq!(out[0] & 0x20, 0x20, "P bit");
    assert_eq!(out[23], 1, "padding count");
    assert_eq!(statuses(&parse(&out[..n])), vec![(0, Some(1000))]);

    assert_eq!(write_twcc(&mut out, &hdr, &[]), Err(RtcpError::Empty));
    assert_eq!(
        write_twcc(&mut out, &hdr, &[Some(8_192_000)]),
        Err(RtcpError::TwccDeltaOutOfRange)
    );
    assert_eq!(
        write_twcc(&mut out[..20], &hdr, &[Some(0)]),
        Err(RtcpError::BufferTooSmall { need: 24, have: 20 })
    );
    // Negative and large deltas take two bytes.
    let n = write_twcc(&mut out, &hdr, &[Some(-250), Some(64_000), Some(63_750)]).unwrap();
    assert_eq!(
        statuses(&parse(&out[..n])),
        vec![(0, Some(-250)), (1, Some(64_000)), (2, Some(63_750))]
    );
}

#[test]
fn long_runs_take_one_chunk_each() {
    let hdr = TwccHeader::default();
    let mut v = vec![Some(250); 8191];
    v.extend(vec![None; 3000]);
    v.push(Some(0));
    let mut out = [0u8; 9000];
    let n = write_twcc(&mut out, &hdr, &v).unwrap();
    // Three run-length chunks, 8192 one-byte deltas.
    assert_eq!(n, (20 + 6 + 8192usize).div_ceil(4) * 4);
    let got: Vec<Option<i64>> = parse(&out[..n]).packets().map(|(_, d)| d).collect();
    assert_eq!(got, v);
}

/// Statuses as the oracle describes them: (seq, Option<delta_us>).
fn oracle_statuses(t: &TransportLayerCc) -> Vec<(u16, Option<i64>)> {
    let mut symbols = Vec::new();
    for c in &t.packet_chunks {
        match c {
            PacketStatusChunk::RunLengthChunk(r) => symbols.extend(std::iter::repeat_n(
                r.packet_status_symbol,
                r.run_length.into(),
            )),
            PacketStatusChunk::StatusVectorChunk(v) => {
                symbols.extend(v.symbol_list.iter().copied())
            }
        }
    }
    symbols.truncate(t.packet_status_count.into());
    let mut deltas = t.recv_deltas.iter();
    symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let seq = t.base_sequence_number.wrapping_add(i as u16);
            match s {
                SymbolTypeTcc::PacketNotReceived => (seq, None),
                _ => (
                    seq,
                    Some(deltas.next().expect("a delta per received packet").delta),
                ),
            }
        })
        .collect()
}

fn arb_status() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        3 => (0i64..=255).prop_map(|t| Some(t * 250)),
        1 => (-32768i64..=32767).prop_map(|t| Some(t * 250)),
        2 => Just(None),
    ]
}

/// Runs of equal statuses, to exercise run-length chunks as well as vectors.
fn arb_statuses() -> impl Strategy<Value = Vec<Option<i64>>> {
    proptest::collection::vec((arb_status(), 1usize..30), 1..40).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(s, n)| std::iter::repeat_n(s, n))
            .collect()
    })
}

proptest! {
    #[test]
    fn writer_output_parses_back(base in any::<u16>(), v in arb_statuses(), rt in 0u32..0x100_0000) {
        let hdr = TwccHeader {
            sender: Ssrc(1), media: Ssrc(2), base_seq: SeqNo(base), reference_time: rt,
            fb_pkt_count: 9,
        };
        let mut out = vec![0u8; 4096];
        let n = write_twcc(&mut out, &hdr, &v).unwrap();
        let mut sizer = TwccSizer::new();
        for s in &v { sizer.push(*s).unwrap(); }
        prop_assert_eq!(sizer.len(), n);
        let t = parse(&out[..n]);
        prop_assert_eq!(t.header(), hdr);
        let want: Vec<(u16, Option<i64>)> =
            v.iter().enumerate().map(|(i, d)| (base.wrapping_add(i as u16), *d)).collect();
        prop_assert_eq!(statuses(&t), want.clone());

        // The `rtcp` crate reads the same statuses and deltas.
        let theirs = TransportLayerCc::unmarshal(&mut &out[..n]).unwrap();
        prop_assert_eq!(theirs.reference_time, rt);
        prop_assert_eq!(theirs.fb_pkt_count, 9);
        prop_assert_eq!(oracle_statuses(&theirs), want);
    }

    #[test]
    fn oracle_output_parses(base in any::<u16>(), v in arb_statuses(), vector_first in any::<bool>()) {
        // Encode with the oracle's types: two-bit vectors of 7, or runs where statuses repeat.
        let sym = |d: &Option<i64>| match d {
            None => SymbolTypeTcc::PacketNotReceived,
            Some(us) if (0..=63_750).contains(us) => SymbolTypeTcc::PacketReceivedSmallDelta,
            Some(_) => SymbolTypeTcc::PacketReceivedLargeDelta,
        };
        let mut chunks = Vec::new();
        let mut i = 0;
        let mut use_vector = vector_first;
        while i < v.len() {
            if use_vector {
                let end = (i + 7).min(v.len());
                let mut list: Vec<SymbolTypeTcc> = v[i..end].iter().map(sym).collect();
                list.resize(7, SymbolTypeTcc::PacketNotReceived);
                chunks.push(PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::TwoBit,
                    symbol_list: list,
                }));
                i = end;
            } else {
                let s = sym(&v[i]);
                let mut end = i + 1;
                while end < v.len() && sym(&v[end]) == s { end += 1; }
                chunks.push(PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: s,
                    run_length: (end - i) as u16,
                }));
                i = end;
            }
            use_vector = !use_vector;
        }
        let theirs = TransportLayerCc {
            sender_ssrc: 7,
            media_ssrc: 8,
            base_sequence_number: base,
            packet_status_count: v.len() as u16,
            reference_time: 1234,
            fb_pkt_count: 3,
            packet_chunks: chunks,
            recv_deltas: v.iter().flatten().map(|&d| RecvDelta {
                type_tcc_packet: sym(&Some(d)),
                delta: d,
            }).collect(),
        };
        let bytes = theirs.marshal().unwrap();
        let t = parse(&bytes);
        prop_assert_eq!((t.sender, t.media, t.reference_time, t.fb_pkt_count), (Ssrc(7), Ssrc(8), 1234, 3));
        let want: Vec<(u16, Option<i64>)> =
            v.iter().enumerate().map(|(i, d)| (base.wrapping_add(i as u16), *d)).collect();
        prop_assert_eq!(statuses(&t), want);
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(t) = TransportCc::parse(&body) {
            let n = t.packets().count();
            prop_assert_eq!(n, usize::from(t.status_count));
        }
    }
}
