use super::*;
use proptest::prelude::*;

/// A captured Chrome audio packet header (one-byte extensions 2: abs-send-time, 4: transport-cc,
/// 13: a 3-byte element; one padding byte), no payload.
const CAPTURED_ONE_BYTE: [u8; 28] = [
    0x90, 0x2d, 0x1a, 0x5f, 0xd4, 0x09, 0x05, 0x49, 0xf7, 0xb1, 0x6e, 0x83, 0xbe, 0xde, 0x00, 0x03,
    0x22, 0xf3, 0x43, 0x50, 0x41, 0x00, 0x9b, 0xd2, 0x81, 0x00, 0x45, 0x00,
];

/// A captured packet header with two-byte extensions (ids 2, 4, 9, 3, 6, 7 and a 33-byte 13).
const CAPTURED_TWO_BYTE: [u8; 84] = [
    0x90, 0x2d, 0x61, 0xc5, 0x95, 0x0a, 0x0f, 0xee, 0x8d, 0x38, 0x14, 0xe5, 0x10, 0x00, 0x00, 0x11,
    0x02, 0x03, 0x03, 0xf7, 0xae, 0x04, 0x02, 0x00, 0x02, 0x09, 0x01, 0x30, 0x03, 0x01, 0x00, 0x06,
    0x01, 0x02, 0x07, 0x0d, 0x01, 0x00, 0x01, 0x00, 0x07, 0x00, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x00,
    0x00, 0x0d, 0x21, 0xc0, 0x00, 0x01, 0x80, 0x03, 0x18, 0x7a, 0xaa, 0xf1, 0x30, 0xa0, 0xa0, 0x14,
    0xd1, 0x41, 0x38, 0x23, 0x04, 0x60, 0x08, 0x64, 0x22, 0x22, 0x26, 0x50, 0x09, 0xf0, 0x07, 0x70,
    0x13, 0xf0, 0x0e, 0xf0,
];

fn packet(fields: &RtpFields, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 1500];
    let n = write_rtp(&mut out, fields, payload).expect("fits in 1500 bytes");
    out.truncate(n);
    out
}

fn fields<'a>(exts: &'a [(u8, &'a [u8])]) -> RtpFields<'a> {
    RtpFields {
        marker: true,
        payload_type: PayloadType(96),
        seq: SeqNo(4242),
        timestamp: 0xdead_beef,
        ssrc: Ssrc(0x1234_5678),
        extensions: exts,
    }
}

#[test]
fn parse_reads_a_captured_one_byte_extension_header() {
    let h = RtpHeader::parse(&CAPTURED_ONE_BYTE).expect("valid packet");
    assert!(!h.marker);
    assert_eq!(h.payload_type, PayloadType(45));
    assert_eq!(h.seq, SeqNo(6751));
    assert_eq!(h.timestamp, 3_557_360_969);
    assert_eq!(h.ssrc, Ssrc(0xf7b1_6e83));
    assert_eq!(
        h.ext,
        Some(ExtBlock {
            profile: 0xbede,
            offset: 16,
            len: 12
        })
    );
    assert_eq!(h.payload_offset, 28);
    assert_eq!(h.payload_len, 0);
    let exts: Vec<_> = h.extensions(&CAPTURED_ONE_BYTE).collect();
    assert_eq!(
        exts,
        vec![
            (2, &[0xf3, 0x43, 0x50][..]),
            (4, &[0x00, 0x9b][..]),
            (13, &[0x81, 0x00, 0x45][..])
        ]
    );
    let ast = AbsSendTime::parse(h.extension(&CAPTURED_ONE_BYTE, 2).expect("present")).unwrap();
    assert_eq!(ast, AbsSendTime(0xf34350));
    let tcc = parse_transport_cc_seq(h.extension(&CAPTURED_ONE_BYTE, 4).expect("present"));
    assert_eq!(tcc, Ok(SeqNo(0x9b)));
    assert_eq!(h.extension(&CAPTURED_ONE_BYTE, 5), None);
}

#[test]
fn parse_reads_a_captured_two_byte_extension_header() {
    let h = RtpHeader::parse(&CAPTURED_TWO_BYTE).expect("valid packet");
    assert_eq!(h.seq, SeqNo(25029));
    assert_eq!(h.ext.map(|e| e.form()), Some(ExtForm::TwoByte));
    let ids: Vec<u8> = h.extensions(&CAPTURED_TWO_BYTE).map(|(id, _)| id).collect();
    assert_eq!(ids, vec![2, 4, 9, 3, 6, 7, 13]);
    assert_eq!(
        h.extension(&CAPTURED_TWO_BYTE, 13).map(<[u8]>::len),
        Some(33)
    );
    assert_eq!(h.extension(&CAPTURED_TWO_BYTE, 9), Some(&[0x30][..]));
}

#[test]
fn parse_rejects_malformed_headers() {
    let good = packet(&fields(&[(1, &[1, 2, 3])]), &[9; 10]);
    assert!(RtpHeader::parse(&good).is_ok());
    assert_eq!(RtpHeader::parse(&good[..11]), Err(RtpError::TooShort));
    let mut v1 = good.clone();
    v1[0] = (v1[0] & 0x3f) | 0x40;
    assert_eq!(RtpHeader::parse(&v1), Err(RtpError::BadVersion(1)));
    let mut csrc = good.clone();
    csrc[0] |= 0x0f; // 15 CSRCs = 60 bytes, more than the packet has
    assert_eq!(RtpHeader::parse(&csrc), Err(RtpError::CsrcOverflow));
    let mut ext = good.clone();
    ext[15] = 50; // extension length 200 bytes
    assert_eq!(RtpHeader::parse(&ext), Err(RtpError::ExtensionOverflow));
    assert_eq!(
        RtpHeader::parse(&good[..14]),
        Err(RtpError::ExtensionOverflow)
    );
    let mut pad0 = good.clone();
    pad0[0] |= 0x20;
    *pad0.last_mut().unwrap() = 0;
    assert_eq!(RtpHeader::parse(&pad0), Err(RtpError::BadPadding(0)));
    let mut pad_big = good.clone();
    pad_big[0] |= 0x20;
    *pad_big.last_mut().unwrap() = 11; // payload is only 10 bytes
    assert_eq!(RtpHeader::parse(&pad_big), Err(RtpError::BadPadding(11)));
}

#[test]
fn parse_separates_padding_from_payload() {
    let mut p = packet(&fields(&[]), &[1, 2, 3, 4, 5, 6, 0, 0, 3]);
    p[0] |= 0x20;
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(h.padding_len, 3);
    assert_eq!(h.payload(&p), &[1, 2, 3, 4, 5, 6]);
    assert_eq!(h.packet_len(), p.len());
    // A padding-only packet (as used for probing) has an empty payload.
    let mut probe = packet(&fields(&[]), &[0, 0, 0, 4]);
    probe[0] |= 0x20;
    let h = RtpHeader::parse(&probe).unwrap();
    assert_eq!((h.payload_len, h.padding_len), (0, 4));
}

#[test]
fn parse_exposes_csrcs() {
    let mut p = packet(&fields(&[]), &[7; 4]);
    // Insert two CSRCs after the fixed header.
    p.splice(12..12, [0, 0, 0, 1, 0, 0, 0, 2]);
    p[0] |= 2;
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(h.csrcs(&p).collect::<Vec<_>>(), vec![Ssrc(1), Ssrc(2)]);
    assert_eq!(h.payload(&p), &[7; 4]);
}

#[test]
fn setters_rewrite_only_their_field() {
    let mut p = packet(&fields(&[(3, &[1])]), &[5; 8]);
    set_seq(&mut p, SeqNo(1));
    set_timestamp(&mut p, 2);
    set_ssrc(&mut p, Ssrc(3));
    set_payload_type(&mut p, PayloadType(111));
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!((h.seq, h.timestamp, h.ssrc), (SeqNo(1), 2, Ssrc(3)));
    assert_eq!(h.payload_type, PayloadType(111));
    assert!(h.marker, "set_payload_type keeps the marker");
    set_marker(&mut p, false);
    let h2 = RtpHeader::parse(&p).unwrap();
    assert!(!h2.marker);
    assert_eq!(h2.payload_type, PayloadType(111));
    assert_eq!(h2.extension(&p, 3), Some(&[1][..]));
    // Short buffers are left alone instead of panicking.
    let mut short = [0u8; 5];
    set_seq(&mut short, SeqNo(9));
    set_marker(&mut short, true);
    assert_eq!(short, [0; 5]);
}

#[test]
fn remap_renames_and_blanks_one_byte_elements() {
    let mut p = packet(
        &fields(&[(1, &[0xaa]), (2, &[0xbb, 0xcc]), (3, &[0xdd])]),
        &[1, 2],
    );
    let before_len = p.len();
    let mut map = [0u8; 256];
    map[1] = 5; // rename
    map[2] = 0; // drop
    map[3] = 20; // does not fit the one-byte form: drop
    let h = RtpHeader::parse(&p).unwrap();
    remap_extensions(&mut p, &h, &map);
    assert_eq!(p.len(), before_len);
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(h.extensions(&p).collect::<Vec<_>>(), vec![(5, &[0xaa][..])]);
    assert_eq!(h.payload(&p), &[1, 2]);
}

#[test]
fn remap_renames_and_blanks_two_byte_elements() {
    let long = [7u8; 20]; // 20 bytes forces the two-byte form
    let mut p = packet(&fields(&[(1, &long), (2, &[]), (200, &[1, 2])]), &[3]);
    let mut map = [0u8; 256];
    map[1] = 100;
    map[2] = 0;
    map[200] = 9;
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(h.ext.unwrap().form(), ExtForm::TwoByte);
    remap_extensions(&mut p, &h, &map);
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(
        h.extensions(&p).collect::<Vec<_>>(),
        vec![(100, &long[..]), (9, &[1, 2][..])]
    );
}

#[test]
fn remap_blanks_a_malformed_tail() {
    // One-byte block: element id 1 (1 byte), then a header claiming 16 bytes that do not exist.
    let mut p = vec![
        0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0x2f, 0,
    ];
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(h.extensions(&p).count(), 1);
    let mut map = [0u8; 256];
    map[1] = 1;
    map[2] = 2;
    remap_extensions(&mut p, &h, &map);
    assert_eq!(&p[16..20], &[0x10, 0xaa, 0, 0]);
}

#[test]
fn rtx_round_trip_restores_the_original() {
    let exts: &[(u8, &[u8])] = &[(1, &[0x11]), (4, &[0x00, 0x07])];
    let mut orig = packet(&fields(exts), &[10, 20, 30, 40, 50, 0, 0, 3]);
    orig[0] |= 0x20; // last 3 bytes are padding
    let oh = RtpHeader::parse(&orig).unwrap();
    let mut rtx = [0u8; 1500];
    let n = write_rtx(&orig, &oh, &mut rtx, Ssrc(99), PayloadType(97), SeqNo(7)).unwrap();
    let rh = RtpHeader::parse(&rtx[..n]).unwrap();
    assert_eq!(
        (rh.ssrc, rh.payload_type, rh.seq),
        (Ssrc(99), PayloadType(97), SeqNo(7))
    );
    assert_eq!(rh.timestamp, oh.timestamp);
    assert!(rh.marker);
    assert_eq!(rh.padding_len, 0, "padding is not retransmitted");
    assert_eq!(rh.payload(&rtx[..n]), &[0x10, 0x92, 10, 20, 30, 40, 50]);
    assert_eq!(rh.extension(&rtx[..n], 4), Some(&[0x00, 0x07][..]));

    let m = unwrap_rtx(&mut rtx[..n], &rh, oh.ssrc, oh.payload_type).unwrap();
    let restored = &rtx[..m];
    let mut expected = orig.clone();
    expected.truncate(orig.len() - 3);
    expected[0] &= !0x20;
    assert_eq!(restored, &expected[..]);
}

#[test]
fn write_rtx_reports_a_short_buffer_and_unwrap_a_missing_osn() {
    let orig = packet(&fields(&[]), &[1; 100]);
    let oh = RtpHeader::parse(&orig).unwrap();
    let mut small = [0u8; 50];
    assert_eq!(
        write_rtx(&orig, &oh, &mut small, Ssrc(1), PayloadType(1), SeqNo(1)),
        Err(RtpError::BufferTooSmall {
            need: 114,
            have: 50
        })
    );
    let mut probe = packet(&fields(&[]), &[0x00]);
    let ph = RtpHeader::parse(&probe).unwrap();
    assert_eq!(
        unwrap_rtx(&mut probe, &ph, Ssrc(1), PayloadType(1)),
        Err(RtpError::MissingOsn)
    );
}

#[test]
fn write_rtp_picks_the_extension_form() {
    let one = packet(&fields(&[(1, &[1]), (14, &[2; 16])]), &[]);
    let h = RtpHeader::parse(&one).unwrap();
    assert_eq!(h.ext.unwrap().profile, 0xbede);
    assert_eq!(h.ext.unwrap().len, 20); // 1+1 + 1+16 = 19, padded to 20
    for exts in [
        &[(15u8, &[1u8][..])][..],
        &[(1, &[0u8; 17][..])],
        &[(1, &[][..])],
    ] {
        let p = packet(&fields(exts), &[]);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(h.ext.unwrap().form(), ExtForm::TwoByte, "{exts:?}");
        assert_eq!(h.extensions(&p).collect::<Vec<_>>(), exts.to_vec());
    }
    let mut out = [0u8; 64];
    assert_eq!(
        write_rtp(&mut out, &fields(&[(0, &[1])]), &[]),
        Err(RtpError::InvalidExtension(0))
    );
    assert!(matches!(
        write_rtp(&mut out, &fields(&[]), &[0; 60]),
        Err(RtpError::BufferTooSmall { need: 72, have: 64 })
    ));
}

#[test]
fn audio_level_and_abs_send_time_round_trip() {
    let a = AudioLevel {
        voice: true,
        level: 42,
    };
    assert_eq!(a.to_byte(), 0x80 | 42);
    assert_eq!(AudioLevel::parse(&[a.to_byte()]), Ok(a));
    assert_eq!(
        AudioLevel::parse(&[0x7f]),
        Ok(AudioLevel {
            voice: false,
            level: 127
        })
    );
    assert_eq!(AudioLevel::parse(&[]), Err(RtpError::ExtensionValueLength));

    // 1.5 s = 1.5 * 2^18 = 393216 = 0x060000.
    let t = AbsSendTime::from_micros(1_500_000);
    assert_eq!(t, AbsSendTime(0x06_0000));
    assert_eq!(t.to_bytes(), [0x06, 0x00, 0x00]);
    assert_eq!(AbsSendTime::parse(&t.to_bytes()), Ok(t));
    assert_eq!(t.as_micros(), 1_500_000);
    // Wraps every 64 s.
    assert_eq!(AbsSendTime::from_micros(65_500_000), t);
    assert_eq!(
        AbsSendTime::parse(&[1, 2]),
        Err(RtpError::ExtensionValueLength)
    );
}

fn arb_ext() -> impl Strategy<Value = (u8, Vec<u8>)> {
    (1u8..=255, proptest::collection::vec(any::<u8>(), 0..40))
}

proptest! {
    #[test]
    fn parse_and_walk_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(h) = RtpHeader::parse(&buf) {
            prop_assert!(h.packet_len() == buf.len());
            let _ = h.extensions(&buf).count();
            let _ = h.payload(&buf);
            let _ = h.csrcs(&buf).count();
            let mut copy = buf.clone();
            let mut map = [0u8; 256];
            for (i, m) in map.iter_mut().enumerate() { *m = (i as u8).wrapping_mul(7); }
            remap_extensions(&mut copy, &h, &map);
            prop_assert!(RtpHeader::parse(&copy).is_ok());
            let mut out = [0u8; 256];
            let _ = write_rtx(&buf, &h, &mut out, Ssrc(1), PayloadType(2), SeqNo(3));
            let _ = unwrap_rtx(&mut copy, &h, Ssrc(1), PayloadType(2));
        }
    }

    #[test]
    fn written_packets_parse_back(
        marker in any::<bool>(), pt in 0u8..128, seq in any::<u16>(), ts in any::<u32>(),
        ssrc in any::<u32>(), exts in proptest::collection::vec(arb_ext(), 0..6),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let ext_refs: Vec<(u8, &[u8])> = exts.iter().map(|(i, d)| (*i, &d[..])).collect();
        let f = RtpFields {
            marker, payload_type: PayloadType(pt), seq: SeqNo(seq), timestamp: ts, ssrc: Ssrc(ssrc),
            extensions: &ext_refs,
        };
        let p = packet(&f, &payload);
        let h = RtpHeader::parse(&p).unwrap();
        prop_assert_eq!(h.marker, marker);
        prop_assert_eq!(h.payload_type, PayloadType(pt));
        prop_assert_eq!(h.seq, SeqNo(seq));
        prop_assert_eq!(h.timestamp, ts);
        prop_assert_eq!(h.ssrc, Ssrc(ssrc));
        prop_assert_eq!(h.payload(&p), &payload[..]);
        prop_assert_eq!(h.extensions(&p).collect::<Vec<_>>(), ext_refs.clone());

        // The independent parser of the `rtp` crate reads the same packet.
        use rtp::packet::Packet;
        use webrtc_util::marshal::Unmarshal;
        let oracle = Packet::unmarshal(&mut &p[..]).unwrap();
        prop_assert_eq!(oracle.header.marker, marker);
        prop_assert_eq!(oracle.header.payload_type, pt);
        prop_assert_eq!(oracle.header.sequence_number, seq);
        prop_assert_eq!(oracle.header.timestamp, ts);
        prop_assert_eq!(oracle.header.ssrc, ssrc);
        prop_assert_eq!(&oracle.payload[..], &payload[..]);
        let theirs: Vec<(u8, Vec<u8>)> =
            oracle.header.extensions.iter().map(|e| (e.id, e.payload.to_vec())).collect();
        let ours: Vec<(u8, Vec<u8>)> = exts.clone();
        prop_assert_eq!(theirs, ours);
    }

    #[test]
    fn rtx_round_trips_any_packet(
        exts in proptest::collection::vec(arb_ext(), 0..4),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        rtx_seq in any::<u16>(),
    ) {
        let ext_refs: Vec<(u8, &[u8])> = exts.iter().map(|(i, d)| (*i, &d[..])).collect();
        let orig = packet(&fields(&ext_refs), &payload);
        let oh = RtpHeader::parse(&orig).unwrap();
        let mut buf = [0u8; 1500];
        let n = write_rtx(&orig, &oh, &mut buf, Ssrc(5), PayloadType(100), SeqNo(rtx_seq)).unwrap();
        let rh = RtpHeader::parse(&buf[..n]).unwrap();
        prop_assert_eq!(rh.seq, SeqNo(rtx_seq));
        let m = unwrap_rtx(&mut buf[..n], &rh, oh.ssrc, oh.payload_type).unwrap();
        prop_assert_eq!(&buf[..m], &orig[..]);
    }

    #[test]
    fn abs_send_time_is_accurate_to_four_microseconds(us in 0u64..64_000_000) {
        let back = AbsSendTime::from_micros(us).as_micros();
        let err = (back as i64 - us as i64).rem_euclid(64_000_000);
        prop_assert!(err <= 2 || err >= 64_000_000 - 2, "{us} -> {back}");
    }
}
