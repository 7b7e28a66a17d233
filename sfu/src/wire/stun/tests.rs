use super::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
/// MESSAGE-INTEGRITY and FINGERPRINT (USERNAME and SOFTWARE padded with spaces).
const SAMPLE_REQUEST: &str = "
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf";

/// RFC 5769 §2.2: success response with XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const SAMPLE_IPV4_RESPONSE: &str = "
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96";

/// RFC 5769 §2.3: success response with XOR-MAPPED-ADDRESS
/// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const SAMPLE_IPV6_RESPONSE: &str = "
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c";

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TXID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

#[test]
fn rfc5769_sample_request_parses_and_verifies() {
    let buf = hex(SAMPLE_REQUEST);
    assert_eq!(buf.len(), 108);
    let m = StunMessage::parse(&buf).unwrap();
    assert_eq!(
        (m.class, m.method),
        (StunClass::Request, StunMethod::Binding)
    );
    assert_eq!(m.transaction_id, TXID);
    assert_eq!(m.username(), Some(&b"evtj:h6vY"[..]));
    assert_eq!(m.priority(), Some(0x6e00_01ff));
    assert_eq!(m.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
    assert_eq!(m.ice_controlling(), None);
    assert!(!m.use_candidate());
    assert_eq!(m.unknown_required(), None);
    let software = m
        .attributes()
        .find(|&(t, _)| t == ATTR_SOFTWARE)
        .map(|(_, v)| v);
    assert_eq!(software, Some(&b"STUN test client"[..]));
    assert!(m.has_integrity() && m.verify_integrity(PASSWORD));
    assert!(!m.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBu"));
    assert!(m.has_fingerprint() && m.verify_fingerprint());
}

#[test]
fn rfc5769_ipv4_response_parses_and_verifies() {
    let buf = hex(SAMPLE_IPV4_RESPONSE);
    let m = StunMessage::parse(&buf).unwrap();
    assert_eq!(
        (m.class, m.method),
        (StunClass::Success, StunMethod::Binding)
    );
    let want = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32853);
    assert_eq!(m.xor_mapped_address(), Some(want));
    assert!(m.verify_integrity(PASSWORD));
    assert!(m.verify_fingerprint());
}

#[test]
fn rfc5769_ipv6_response_parses_and_verifies() {
    let buf = hex(SAMPLE_IPV6_RESPONSE);
    let m = StunMessage::parse(&buf).unwrap();
    let ip: Ipv6Addr = "2001:db8:1234:5678:11:2233:4455:6677".parse().unwrap();
    assert_eq!(
        m.xor_mapped_address(),
        Some(SocketAddr::new(IpAddr::V6(ip), 32853))
    );
    assert!(m.verify_integrity(PASSWORD));
    assert!(m.verify_fingerprint());
}

#[test]
fn any_flipped_bit_fails_integrity_or_fingerprint() {
    let buf = hex(SAMPLE_REQUEST);
    for i in 0..buf.len() {
        let mut b = buf.clone();
        b[i] ^= 0x01;
        if let Ok(m) = StunMessage::parse(&b) {
            let mi_end = buf.len() - 8;
            if i < mi_end {
                assert!(!m.verify_integrity(PASSWORD), "byte {i}");
            }
            assert!(!m.verify_fingerprint(), "byte {i}");
        }
    }
}

#[test]
fn attributes_after_integrity_are_ignored() {
    // Sample request with its FINGERPRINT replaced by a PRIORITY after MESSAGE-INTEGRITY.
    let mut buf = hex(SAMPLE_REQUEST);
    let n = buf.len();
    buf[n - 8..n - 4].copy_from_slice(&[0x00, 0x24, 0x00, 0x04]);
    buf[n - 4..].copy_from_slice(&[0, 0, 0, 1]);
    let m = StunMessage::parse(&buf).unwrap();
    assert_eq!(m.priority(), Some(0x6e00_01ff));
    assert!(!m.has_fingerprint());
    // The integrity covers only what precedes it, so it still verifies.
    assert!(m.verify_integrity(PASSWORD));
}

#[test]
fn attribute_after_fingerprint_is_an_error() {
    let mut buf = hex(SAMPLE_IPV4_RESPONSE);
    buf.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]);
    let len = (buf.len() - 20) as u16;
    buf[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        StunMessage::parse(&buf).unwrap_err(),
        StunError::AttributeAfterFingerprint
    );
}

#[test]
fn malformed_messages_are_rejected() {
    let good = hex(SAMPLE_IPV4_RESPONSE);
    assert_eq!(
        StunMessage::parse(&good[..19]).unwrap_err(),
        StunError::TooShort
    );
    let mut b = good.clone();
    b[4] = 0;
    assert_eq!(StunMessage::parse(&b).unwrap_err(), StunError::NotStun);
    let mut b = good.clone();
    b[0] |= 0x40;
    assert_eq!(StunMessage::parse(&b).unwrap_err(), StunError::NotStun);
    assert_eq!(
        StunMessage::parse(&good[..good.len() - 4]).unwrap_err(),
        StunError::BadLength
    );
    let mut b = good.clone();
    b[3] = 0x3d;
    assert_eq!(StunMessage::parse(&b).unwrap_err(), StunError::BadLength);
    let mut b = good.clone();
    b[22..24].copy_from_slice(&[0x00, 0x40]); // SOFTWARE claims 64 bytes
    assert_eq!(
        StunMessage::parse(&b).unwrap_err(),
        StunError::AttributeOverflow
    );
    let mut b = good.clone();
    b[41] = 3; // unknown address family
    assert_eq!(
        StunMessage::parse(&b).unwrap_err(),
        StunError::BadAttribute(ATTR_XOR_MAPPED_ADDRESS)
    );
}

#[test]
fn unknown_required_attributes_are_reported() {
    let mut out = [0u8; 100];
    let mut w = StunWriter::new(&mut out, StunClass::Request, StunMethod::Binding, &TXID).unwrap();
    w.attr(0x8055, b"optional").unwrap();
    w.attr(0x0031, b"required").unwrap();
    let n = w.finish();
    let m = StunMessage::parse(&out[..n]).unwrap();
    assert_eq!(m.unknown_required(), Some(0x0031));
}

#[test]
fn message_type_encoding_round_trips() {
    // RFC 8489 §5: Binding request 0x0001, success 0x0101, error 0x0111, indication 0x0011.
    assert_eq!(join_type(StunClass::Request, StunMethod::Binding), 0x0001);
    assert_eq!(join_type(StunClass::Success, StunMethod::Binding), 0x0101);
    assert_eq!(join_type(StunClass::Error, StunMethod::Binding), 0x0111);
    assert_eq!(
        join_type(StunClass::Indication, StunMethod::Binding),
        0x0011
    );
    for t in 0..0x4000u16 {
        let (c, m) = split_type(t);
        assert_eq!(join_type(c, m), t);
    }
}

#[test]
fn binding_success_round_trips() {
    let mut out = [0u8; 128];
    for addr in ["203.0.113.7:50000", "[2001:db8::1]:3478"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let n = write_binding_success(&mut out, &TXID, addr, b"pass").unwrap();
        let m = StunMessage::parse(&out[..n]).unwrap();
        assert_eq!(
            (m.class, m.method),
            (StunClass::Success, StunMethod::Binding)
        );
        assert_eq!(m.transaction_id, TXID);
        assert_eq!(m.xor_mapped_address(), Some(addr));
        assert!(m.verify_integrity(b"pass"));
        assert!(!m.verify_integrity(b"Pass"));
        assert!(m.verify_fingerprint());
    }
    assert!(matches!(
        write_binding_success(&mut out[..40], &TXID, "1.2.3.4:5".parse().unwrap(), b"k"),
        Err(StunError::BufferTooSmall { .. })
    ));
}

#[test]
fn binding_request_round_trips() {
    let req = BindingRequest {
        username: "remote:local",
        priority: 1_853_817_087,
        controlling: Some(0x0102_0304_0506_0708),
        controlled: None,
        use_candidate: true,
    };
    let mut out = [0u8; 200];
    let n = write_binding_request(&mut out, &TXID, &req, b"remote-password").unwrap();
    let m = StunMessage::parse(&out[..n]).unwrap();
    assert_eq!(m.class, StunClass::Request);
    assert_eq!(m.username(), Some(&b"remote:local"[..]));
    assert_eq!(m.priority(), Some(1_853_817_087));
    assert_eq!(m.ice_controlling(), Some(0x0102_0304_0506_0708));
    assert_eq!(m.ice_controlled(), None);
    assert!(m.use_candidate());
    assert!(m.verify_integrity(b"remote-password"));
    assert!(m.verify_fingerprint());

    let both = BindingRequest {
        controlled: Some(1),
        ..req
    };
    assert_eq!(
        write_binding_request(&mut out, &TXID, &both, b"k"),
        Err(StunError::ConflictingRoles)
    );
}

#[test]
fn binding_error_round_trips_with_and_without_integrity() {
    let mut out = [0u8; 200];
    let n = write_binding_error(&mut out, &TXID, 487, "Role Conflict", Some(b"pw")).unwrap();
    let m = StunMessage::parse(&out[..n]).unwrap();
    assert_eq!(m.class, StunClass::Error);
    assert_eq!(m.error_code(), Some(487));
    assert_eq!(m.error_reason(), Some(&b"Role Conflict"[..]));
    assert!(m.verify_integrity(b"pw") && m.verify_fingerprint());

    let n = write_binding_error(&mut out, &TXID, 400, "Bad Request", None).unwrap();
    let m = StunMessage::parse(&out[..n]).unwrap();
    assert_eq!(m.error_code(), Some(400));
    assert!(!m.has_integrity());
    assert!(m.verify_fingerprint());
    assert_eq!(
        write_binding_error(&mut out, &TXID, 200, "", None),
        Err(StunError::InvalidErrorCode(200))
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(m) = StunMessage::parse(&buf) {
            let _ = m.verify_integrity(b"key");
            let _ = m.verify_fingerprint();
            let _ = m.attributes().count();
        }
    }

    #[test]
    fn arbitrary_attributes_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..50).prop_map(|mut v| { v.truncate(v.len() / 4 * 4); v }),
    ) {
        let mut buf = vec![0, 1];
        buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&TXID);
        buf.extend_from_slice(&body);
        if let Ok(m) = StunMessage::parse(&buf) {
            let _ = (m.verify_integrity(b"key"), m.verify_fingerprint(), m.xor_mapped_address());
        }
    }

    #[test]
    fn binding_request_writer_round_trips(
        user in "[a-zA-Z0-9+/:]{0,64}", prio in any::<u32>(), tie in any::<u64>(),
        controlling in any::<bool>(), nominate in any::<bool>(), txid in any::<[u8; 12]>(),
        key in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let req = BindingRequest {
            username: &user, priority: prio,
            controlling: controlling.then_some(tie), controlled: (!controlling).then_some(tie),
            use_candidate: nominate,
        };
        let mut out = [0u8; 300];
        let n = write_binding_request(&mut out, &txid, &req, &key).unwrap();
        let m = StunMessage::parse(&out[..n]).unwrap();
        prop_assert_eq!(m.transaction_id, txid);
        prop_assert_eq!(m.username(), Some(user.as_bytes()));
        prop_assert_eq!(m.priority(), Some(prio));
        prop_assert_eq!(m.ice_controlling(), req.controlling);
        prop_assert_eq!(m.ice_controlled(), req.controlled);
        prop_assert_eq!(m.use_candidate(), nominate);
        prop_assert!(m.verify_integrity(&key));
        prop_assert!(m.verify_fingerprint());
    }

    #[test]
    fn xor_address_round_trips(v6 in any::<bool>(), a in any::<[u8; 16]>(), port in any::<u16>(), txid in any::<[u8; 12]>()) {
        let ip = if v6 { IpAddr::V6(Ipv6Addr::from(a)) } else { IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])) };
        let addr = SocketAddr::new(ip, port);
        let mut out = [0u8; 128];
        let n = write_binding_success(&mut out, &txid, addr, b"k").unwrap();
        let m = StunMessage::parse(&out[..n]).unwrap();
        prop_assert_eq!(m.xor_mapped_address(), Some(addr));
    }
}
