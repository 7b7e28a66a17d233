//! Behaviour of `SrtpContext` and `SrtpSession`: RFC 7714 vectors, round trips, replay
//! protection, roll-over counter estimation, SRTCP indices, SSRC limits and malformed input.

use super::test_util::{hex, rtcp_packet, rtp_packet};
use super::*;

const PROFILES: [SrtpProfile; 2] = [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80];

fn pair(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let key: Vec<u8> = (0..profile.key_len() as u8)
        .map(|i| i.wrapping_mul(7) ^ 0x5a)
        .collect();
    let salt: Vec<u8> = (0..profile.salt_len() as u8)
        .map(|i| i.wrapping_mul(13) ^ 0xa5)
        .collect();
    let tx = SrtpContext::new(profile, &key, &salt).expect("valid key");
    let rx = SrtpContext::new(profile, &key, &salt).expect("valid key");
    (tx, rx)
}

/// Protects an RTP packet with `tx` and returns the SRTP bytes.
fn protect(tx: &mut SrtpContext, ssrc: u32, seq: u16) -> Vec<u8> {
    let room = tx.profile().rtp_overhead();
    let mut p = rtp_packet(ssrc, seq, 160, room);
    let len = p.len() - room;
    let n = tx.protect_rtp(&mut p, len).expect("protect");
    p.truncate(n);
    p
}

fn unprotect(rx: &mut SrtpContext, mut srtp: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
    let n = rx.unprotect_rtp(&mut srtp)?;
    srtp.truncate(n);
    Ok(srtp)
}

const RFC7714_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const RFC7714_SALT: &str = "517569642070726f2071756f";
const RFC7714_RTP: &str = "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";
const RFC7714_SRTP: &str = "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce";
const RFC7714_RTCP: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
const RFC7714_SRTCP: &str = "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4";

fn rfc7714_context() -> SrtpContext {
    let key: [u8; 16] = hex(RFC7714_KEY).try_into().expect("16 bytes");
    let salt: [u8; 12] = hex(RFC7714_SALT).try_into().expect("12 bytes");
    SrtpContext::from_gcm_session_keys(&key, &salt)
}

/// RFC 7714 §16.1.1 (encryption) and §16.1.2 (decryption), AEAD_AES_128_GCM.
#[test]
fn gcm_rtp_matches_rfc7714_16_1() {
    let mut tx = rfc7714_context();
    let rtp = hex(RFC7714_RTP);
    let mut buf = rtp.clone();
    buf.resize(rtp.len() + 16, 0);
    assert_eq!(tx.protect_rtp(&mut buf, rtp.len()), Ok(rtp.len() + 16));
    assert_eq!(buf, hex(RFC7714_SRTP));

    let mut rx = rfc7714_context();
    let mut srtp = hex(RFC7714_SRTP);
    assert_eq!(rx.unprotect_rtp(&mut srtp), Ok(rtp.len()));
    assert_eq!(srtp[..rtp.len()], rtp[..]);
}

/// RFC 7714 §17.1 (encryption) and §17.2 (decryption) of SRTCP, AEAD_AES_128_GCM, index 0x5d4.
#[test]
fn gcm_rtcp_matches_rfc7714_17_1() {
    let rtcp = hex(RFC7714_RTCP);
    let mut tx = rfc7714_context();
    tx.set_next_srtcp_index(0x4d61_7273, 0x5d4);
    let mut buf = rtcp.clone();
    buf.resize(rtcp.len() + 20, 0);
    assert_eq!(tx.protect_rtcp(&mut buf, rtcp.len()), Ok(rtcp.len() + 20));
    assert_eq!(buf, hex(RFC7714_SRTCP));

    let mut rx = rfc7714_context();
    let mut srtcp = hex(RFC7714_SRTCP);
    assert_eq!(rx.unprotect_rtcp(&mut srtcp), Ok(rtcp.len()));
    assert_eq!(srtcp[..rtcp.len()], rtcp[..]);
    // The same packet again is a replay.
    let mut again = hex(RFC7714_SRTCP);
    assert_eq!(
        rx.unprotect_rtcp(&mut again),
        Err(SrtpError::Replay(ReplayKind::Duplicate))
    );
}

/// RFC 7714 §17.3: an SRTCP packet with E=0 is accepted, authenticated and left unencrypted.
#[test]
fn gcm_rtcp_without_e_flag_matches_rfc7714_17_3() {
    let rtcp = hex(RFC7714_RTCP);
    let mut srtcp = rtcp.clone();
    srtcp.extend(hex("841dd9683dd78ec92ae58790125f62b3 000005d4"));
    let mut rx = rfc7714_context();
    let mut with_e_set = srtcp.clone();
    let at = with_e_set.len() - 4;
    with_e_set[at] |= 0x80;
    assert_eq!(
        rx.unprotect_rtcp(&mut with_e_set),
        Err(SrtpError::Authentication)
    );
    assert_eq!(rx.unprotect_rtcp(&mut srtcp), Ok(rtcp.len()));
    assert_eq!(srtcp[..rtcp.len()], rtcp[..]);
}

#[test]
fn rtp_round_trips_in_both_profiles() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        for seq in 1000..1100u16 {
            let srtp = protect(&mut tx, 0xabcd, seq);
            assert_eq!(srtp.len(), 12 + 160 + profile.rtp_overhead());
            assert_ne!(
                srtp[12..172],
                rtp_packet(0xabcd, seq, 160, 0)[12..],
                "{profile:?} payload encrypted"
            );
            assert_eq!(
                unprotect(&mut rx, srtp),
                Ok(rtp_packet(0xabcd, seq, 160, 0)),
                "{profile:?} seq {seq}"
            );
        }
    }
}

#[test]
fn rtcp_round_trips_in_both_profiles() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        for _ in 0..20 {
            let plain = rtcp_packet(0x1111, 0);
            let mut buf = rtcp_packet(0x1111, profile.rtcp_overhead());
            let n = tx.protect_rtcp(&mut buf, plain.len()).expect("protect");
            assert_eq!(n, plain.len() + profile.rtcp_overhead());
            assert_ne!(
                buf[8..plain.len()],
                plain[8..],
                "{profile:?} encrypted past the sender SSRC"
            );
            assert_eq!(
                buf[..8],
                plain[..8],
                "{profile:?} header and SSRC in the clear"
            );
            assert_eq!(rx.unprotect_rtcp(&mut buf), Ok(plain.len()));
            assert_eq!(buf[..plain.len()], plain[..]);
        }
    }
}

#[test]
fn srtcp_index_counts_up_from_zero_with_e_flag_set() {
    for profile in PROFILES {
        let (mut tx, _) = pair(profile);
        for expected in 0..3u32 {
            let plain_len = rtcp_packet(7, 0).len();
            let mut buf = rtcp_packet(7, profile.rtcp_overhead());
            let n = tx.protect_rtcp(&mut buf, plain_len).expect("protect");
            // AES-CM: [rtcp][E|index][tag]; GCM: [rtcp][tag][E|index].
            let at = match profile {
                SrtpProfile::Aes128CmHmacSha1_80 => plain_len,
                SrtpProfile::AeadAes128Gcm => n - 4,
            };
            let word = u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
            assert_eq!(word, 0x8000_0000 | expected, "{profile:?}");
        }
        // Indices are per SSRC.
        let plain_len = rtcp_packet(8, 0).len();
        let mut buf = rtcp_packet(8, profile.rtcp_overhead());
        let n = tx.protect_rtcp(&mut buf, plain_len).expect("protect");
        let at = if profile == SrtpProfile::AeadAes128Gcm {
            n - 4
        } else {
            plain_len
        };
        assert_eq!(buf[at..at + 4], [0x80, 0, 0, 0]);
    }
}

#[test]
fn srtcp_replay_and_reorder() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let packets: Vec<Vec<u8>> = (0..200)
            .map(|_| {
                let plain_len = rtcp_packet(9, 0).len();
                let mut buf = rtcp_packet(9, profile.rtcp_overhead());
                tx.protect_rtcp(&mut buf, plain_len).expect("protect");
                buf
            })
            .collect();
        let mut open = |i: usize| rx.unprotect_rtcp(&mut packets[i].clone()).map(|_| ());
        assert_eq!(open(150), Ok(()));
        assert_eq!(open(149), Ok(()), "out of order inside the window");
        assert_eq!(open(150), Err(SrtpError::Replay(ReplayKind::Duplicate)));
        assert_eq!(
            open(150 - SRTCP_REPLAY_WINDOW as usize),
            Err(SrtpError::Replay(ReplayKind::TooOld))
        );
        assert_eq!(open(151), Ok(()));
    }
}

#[test]
fn replayed_rtp_is_rejected_and_reordered_accepted() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let packets: Vec<Vec<u8>> = (0..1200u16).map(|seq| protect(&mut tx, 5, seq)).collect();
        let mut open = |seq: usize| unprotect(&mut rx, packets[seq].clone()).map(|_| ());
        assert_eq!(open(1000), Ok(()));
        assert_eq!(
            open(1000),
            Err(SrtpError::Replay(ReplayKind::Duplicate)),
            "{profile:?}"
        );
        for seq in (1000 - SRTP_REPLAY_WINDOW as usize + 1..1000).rev() {
            assert_eq!(
                open(seq),
                Ok(()),
                "{profile:?} reordered seq {seq} inside the window"
            );
        }
        assert_eq!(open(999), Err(SrtpError::Replay(ReplayKind::Duplicate)));
        assert_eq!(
            open(1000 - SRTP_REPLAY_WINDOW as usize),
            Err(SrtpError::Replay(ReplayKind::TooOld))
        );
        assert_eq!(open(1001), Ok(()));
    }
}

#[test]
fn failed_authentication_does_not_advance_replay_state() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let first = protect(&mut tx, 5, 10);
        let second = protect(&mut tx, 5, 11);
        unprotect(&mut rx, first).expect("first");
        let mut forged = second.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(unprotect(&mut rx, forged), Err(SrtpError::Authentication));
        assert_eq!(
            unprotect(&mut rx, second).map(|_| ()),
            Ok(()),
            "{profile:?}: genuine packet still accepted"
        );
    }
}

#[test]
fn roc_follows_a_sequence_wrap_with_a_gap() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let seqs: Vec<u16> = (65_500..=65_535).chain(0..40).collect();
        let packets: Vec<(u16, Vec<u8>)> =
            seqs.iter().map(|&s| (s, protect(&mut tx, 77, s))).collect();
        assert_eq!(
            tx.rollover_counter(77),
            Some(1),
            "sender increments the ROC on wrap"
        );
        // Deliver with a gap of 30 packets across the wrap (65_520..=65_535 and 0..14 lost).
        for (seq, srtp) in &packets {
            if (65_520..=65_535).contains(seq) || *seq < 14 {
                continue;
            }
            assert_eq!(
                unprotect(&mut rx, srtp.clone()),
                Ok(rtp_packet(77, *seq, 160, 0)),
                "{profile:?} seq {seq}"
            );
        }
        assert_eq!(rx.rollover_counter(77), Some(1));
        // Late packets from both sides of the wrap still decrypt with the right ROC.
        for (seq, srtp) in &packets {
            if [65_530u16, 65_535, 0, 3].contains(seq) {
                assert_eq!(
                    unprotect(&mut rx, srtp.clone()),
                    Ok(rtp_packet(77, *seq, 160, 0)),
                    "{profile:?} late {seq}"
                );
            }
        }
        assert_eq!(rx.rollover_counter(77), Some(1));
    }
}

#[test]
fn roc_keeps_counting_over_many_wraps() {
    let (mut tx, mut rx) = pair(SrtpProfile::AeadAes128Gcm);
    let last = 3 * 65_536 + 100u32;
    for i in 0..=last {
        let seq = i as u16;
        // Deliver a sparse subset, always less than half the sequence space apart.
        let srtp = protect(&mut tx, 1, seq);
        if i % 1000 == 0 || i == last {
            assert_eq!(unprotect(&mut rx, srtp).map(|_| ()), Ok(()), "packet {i}");
        }
    }
    assert_eq!(tx.rollover_counter(1), Some(3));
    assert_eq!(rx.rollover_counter(1), Some(3));
}

#[test]
fn header_extension_and_csrcs_stay_in_the_clear() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let mut plain = vec![
            0x92, 0xe0, 0x01, 0x02, 0, 0, 0x10, 0, 0xca, 0xfe, 0xba, 0xbe,
        ];
        plain.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        plain.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x7f, 0, 0]);
        plain.extend((0..100u8).map(|b| b.wrapping_mul(3)));
        let header_len = 12 + 8 + 8;
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtp_overhead(), 0);
        let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect");
        assert_eq!(buf[..header_len], plain[..header_len], "{profile:?}");
        assert_ne!(buf[header_len..plain.len()], plain[header_len..]);
        // The header is authenticated: changing an extension byte fails.
        let mut tampered = buf[..n].to_vec();
        tampered[header_len - 3] ^= 1;
        assert_eq!(
            rx.unprotect_rtp(&mut tampered),
            Err(SrtpError::Authentication)
        );
        assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(plain.len()));
        assert_eq!(buf[..plain.len()], plain[..]);
    }
}

#[test]
fn forged_packets_cannot_fill_the_ssrc_table() {
    for profile in PROFILES {
        let key = vec![1; profile.key_len()];
        let salt = vec![2; profile.salt_len()];
        let mut rx = SrtpContext::with_max_ssrcs(profile, &key, &salt, 2).expect("valid key");
        let mut tx = SrtpContext::with_max_ssrcs(profile, &key, &salt, 10).expect("valid key");
        for ssrc in 100..200 {
            let mut forged = rtp_packet(ssrc, 1, 50, profile.rtp_overhead());
            assert_eq!(
                rx.unprotect_rtp(&mut forged),
                Err(SrtpError::Authentication)
            );
            let mut forged = rtcp_packet(ssrc, profile.rtcp_overhead());
            assert_eq!(
                rx.unprotect_rtcp(&mut forged),
                Err(SrtpError::Authentication)
            );
        }
        assert_eq!(
            unprotect(&mut rx, protect(&mut tx, 1, 1)).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            unprotect(&mut rx, protect(&mut tx, 2, 1)).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            unprotect(&mut rx, protect(&mut tx, 3, 1)),
            Err(SrtpError::TooManySsrcs(2))
        );
        // Known SSRCs keep working, and removing one frees a slot.
        assert_eq!(
            unprotect(&mut rx, protect(&mut tx, 1, 2)).map(|_| ()),
            Ok(())
        );
        rx.remove_ssrc(2);
        assert_eq!(
            unprotect(&mut rx, protect(&mut tx, 3, 2)).map(|_| ()),
            Ok(())
        );
    }
}

#[test]
fn sender_refuses_ssrcs_beyond_its_limit() {
    let p = SrtpProfile::AeadAes128Gcm;
    let mut tx = SrtpContext::with_max_ssrcs(p, &[0; 16], &[0; 12], 1).expect("valid key");
    protect(&mut tx, 1, 1);
    let mut buf = rtp_packet(2, 1, 10, 16);
    let len = buf.len() - 16;
    assert_eq!(
        tx.protect_rtp(&mut buf, len),
        Err(SrtpError::TooManySsrcs(1))
    );
}

#[test]
fn bad_key_lengths_are_refused() {
    assert_eq!(
        SrtpContext::new(SrtpProfile::AeadAes128Gcm, &[0; 15], &[0; 12]).err(),
        Some(SrtpError::BadKeyLength {
            expected: 16,
            actual: 15
        })
    );
    assert_eq!(
        SrtpContext::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 14]).err(),
        Some(SrtpError::BadKeyLength {
            expected: 12,
            actual: 14
        })
    );
    assert_eq!(
        SrtpContext::new(SrtpProfile::Aes128CmHmacSha1_80, &[0; 16], &[0; 12]).err(),
        Some(SrtpError::BadKeyLength {
            expected: 14,
            actual: 12
        })
    );
    assert_eq!(
        SrtpSession::from_dtls_keying_material(SrtpProfile::AeadAes128Gcm, &[0; 60], true).err(),
        Some(SrtpError::BadKeyLength {
            expected: 56,
            actual: 60
        })
    );
}

#[test]
fn small_buffers_and_short_packets_are_refused() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let mut buf = rtp_packet(1, 1, 20, profile.rtp_overhead() - 1);
        let len = 32;
        assert_eq!(
            tx.protect_rtp(&mut buf, len),
            Err(SrtpError::BufferTooSmall {
                needed: 32 + profile.rtp_overhead(),
                available: buf.len()
            })
        );
        let mut buf = rtcp_packet(1, profile.rtcp_overhead() - 1);
        let len = buf.len() - profile.rtcp_overhead() + 1;
        assert!(matches!(
            tx.protect_rtcp(&mut buf, len),
            Err(SrtpError::BufferTooSmall { .. })
        ));
        assert_eq!(rx.unprotect_rtp(&mut [0x80; 12]), Err(SrtpError::Malformed));
        assert_eq!(rx.unprotect_rtp(&mut []), Err(SrtpError::Malformed));
        assert_eq!(
            rx.unprotect_rtcp(&mut [0x80; 20]),
            Err(SrtpError::Malformed)
        );
        let mut v1 = protect(&mut tx, 1, 2);
        v1[0] = 0x40;
        assert_eq!(rx.unprotect_rtp(&mut v1), Err(SrtpError::Malformed));
    }
}

#[test]
fn arbitrary_bytes_never_panic_and_never_authenticate() {
    use proptest::prelude::*;
    for profile in PROFILES {
        proptest!(|(mut bytes in proptest::collection::vec(any::<u8>(), 0..300))| {
            let (_, mut rx) = pair(profile);
            let mut copy = bytes.clone();
            prop_assert!(rx.unprotect_rtp(&mut bytes).is_err());
            prop_assert!(rx.unprotect_rtcp(&mut copy).is_err());
        });
        proptest!(|(mut bytes in proptest::collection::vec(any::<u8>(), 0..300), len in 0usize..300)| {
            let (mut tx, _) = pair(profile);
            let len = len.min(bytes.len());
            if let Ok(n) = tx.protect_rtp(&mut bytes, len) {
                prop_assert_eq!(n, len + profile.rtp_overhead());
            }
            if let Ok(n) = tx.protect_rtcp(&mut bytes, len) {
                prop_assert_eq!(n, len + profile.rtcp_overhead());
            }
        });
    }
}

#[test]
fn dtls_keying_material_keys_each_side_for_the_other() {
    for profile in PROFILES {
        let material: Vec<u8> = (0..profile.keying_material_len() as u8).collect();
        let mut client =
            SrtpSession::from_dtls_keying_material(profile, &material, true).expect("valid");
        let mut server =
            SrtpSession::from_dtls_keying_material(profile, &material, false).expect("valid");
        let to_server = protect(&mut client.tx, 1, 1);
        assert_eq!(
            unprotect(&mut server.rx, to_server.clone()).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            unprotect(&mut client.rx, to_server),
            Err(SrtpError::Authentication),
            "directions differ"
        );
        let to_client = protect(&mut server.tx, 2, 1);
        assert_eq!(unprotect(&mut client.rx, to_client).map(|_| ()), Ok(()));
        // The client's key and salt come first in the exporter output (RFC 5764 §4.2).
        let (k, s) = (profile.key_len(), profile.salt_len());
        let mut direct =
            SrtpContext::new(profile, &material[..k], &material[2 * k..2 * k + s]).expect("valid");
        assert_eq!(
            unprotect(&mut direct, protect(&mut client.tx, 3, 1)).map(|_| ()),
            Ok(())
        );
    }
}
