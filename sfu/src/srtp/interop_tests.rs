//! Cross-checks against webrtc-srtp 0.17 as an independent implementation: packets protected by
//! one side unprotect with the other, in both directions, for both profiles, across a sequence
//! number wrap, for SRTP and SRTCP.

use webrtc_srtp::context::Context as Oracle;
use webrtc_srtp::protection_profile::ProtectionProfile as OracleProfile;

use super::test_util::{rtcp_packet, rtp_packet};
use super::*;

const PROFILES: [SrtpProfile; 2] = [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80];

fn oracle_profile(p: SrtpProfile) -> OracleProfile {
    match p {
        SrtpProfile::AeadAes128Gcm => OracleProfile::AeadAes128Gcm,
        SrtpProfile::Aes128CmHmacSha1_80 => OracleProfile::Aes128CmHmacSha1_80,
    }
}

fn keys(p: SrtpProfile) -> (Vec<u8>, Vec<u8>) {
    let key = (0..p.key_len() as u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(3))
        .collect();
    let salt = (0..p.salt_len() as u8)
        .map(|i| i.wrapping_mul(17) ^ 0x3c)
        .collect();
    (key, salt)
}

fn ours(p: SrtpProfile) -> SrtpContext {
    let (key, salt) = keys(p);
    SrtpContext::new(p, &key, &salt).expect("valid key")
}

fn oracle(p: SrtpProfile) -> Oracle {
    let (key, salt) = keys(p);
    Oracle::new(&key, &salt, oracle_profile(p), None, None).expect("valid key")
}

/// Sequence numbers across a wrap, with a gap of lost packets on each side of it.
fn wrapping_seqs() -> Vec<u16> {
    (65_400..=65_535u16)
        .filter(|s| !(65_500..65_520).contains(s))
        .chain((0..200).filter(|s| !(3..9).contains(s)))
        .collect()
}

/// An RTP packet with a CSRC and a one-byte header extension, so that the header length
/// computation is exercised too.
fn rtp_with_extension(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x91, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 90).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x22, 1, 2, 3]);
    p.extend((0..300u16).map(|i| (i as u8).wrapping_add(seq as u8)));
    p
}

#[test]
fn our_srtp_unprotects_with_webrtc_srtp_across_a_wrap() {
    for profile in PROFILES {
        let mut tx = ours(profile);
        let mut rx = oracle(profile);
        for seq in wrapping_seqs() {
            let plain = rtp_packet(0x0bad_cafe, seq, 1200, 0);
            let mut buf = rtp_packet(0x0bad_cafe, seq, 1200, profile.rtp_overhead());
            let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect");
            let opened = rx
                .decrypt_rtp(&buf[..n])
                .unwrap_or_else(|e| panic!("{profile:?} seq {seq}: {e}"));
            assert_eq!(opened[..], plain[..], "{profile:?} seq {seq}");
        }
        assert_eq!(tx.rollover_counter(0x0bad_cafe), Some(1));
    }
}

#[test]
fn webrtc_srtp_packets_unprotect_with_ours_across_a_wrap() {
    for profile in PROFILES {
        let mut tx = oracle(profile);
        let mut rx = ours(profile);
        for seq in wrapping_seqs() {
            let plain = rtp_packet(0x0bad_cafe, seq, 1200, 0);
            let mut srtp = tx.encrypt_rtp(&plain).expect("oracle protect").to_vec();
            let n = rx
                .unprotect_rtp(&mut srtp)
                .unwrap_or_else(|e| panic!("{profile:?} seq {seq}: {e}"));
            assert_eq!(srtp[..n], plain[..], "{profile:?} seq {seq}");
        }
        assert_eq!(rx.rollover_counter(0x0bad_cafe), Some(1));
    }
}

#[test]
fn header_extensions_interoperate_both_ways() {
    for profile in PROFILES {
        let (mut our_tx, mut our_rx) = (ours(profile), ours(profile));
        let (mut their_tx, mut their_rx) = (oracle(profile), oracle(profile));
        for seq in [1u16, 2, 3, 40_000] {
            let plain = rtp_with_extension(42, seq);
            let mut buf = plain.clone();
            buf.resize(plain.len() + profile.rtp_overhead(), 0);
            let n = our_tx.protect_rtp(&mut buf, plain.len()).expect("protect");
            assert_eq!(
                their_rx.decrypt_rtp(&buf[..n]).expect("oracle unprotect")[..],
                plain[..],
                "{profile:?}"
            );

            let mut srtp = their_tx
                .encrypt_rtp(&plain)
                .expect("oracle protect")
                .to_vec();
            let n = our_rx.unprotect_rtp(&mut srtp).expect("unprotect");
            assert_eq!(srtp[..n], plain[..], "{profile:?}");
        }
    }
}

#[test]
fn srtcp_interoperates_both_ways() {
    for profile in PROFILES {
        let (mut our_tx, mut our_rx) = (ours(profile), ours(profile));
        let (mut their_tx, mut their_rx) = (oracle(profile), oracle(profile));
        for ssrc in [1u32, 0xdead_beef, 1] {
            for _ in 0..5 {
                let plain = rtcp_packet(ssrc, 0);
                let mut buf = rtcp_packet(ssrc, profile.rtcp_overhead());
                let n = our_tx.protect_rtcp(&mut buf, plain.len()).expect("protect");
                let opened = their_rx
                    .decrypt_rtcp(&buf[..n])
                    .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
                assert_eq!(opened[..], plain[..], "{profile:?}");

                let mut srtcp = their_tx
                    .encrypt_rtcp(&plain)
                    .expect("oracle protect")
                    .to_vec();
                let n = our_rx
                    .unprotect_rtcp(&mut srtcp)
                    .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
                assert_eq!(srtcp[..n], plain[..], "{profile:?}");
            }
        }
    }
}

#[test]
fn tampering_is_detected_on_oracle_packets() {
    for profile in PROFILES {
        let mut tx = oracle(profile);
        let mut rx = ours(profile);
        let plain = rtp_packet(5, 100, 200, 0);
        let good = tx.encrypt_rtp(&plain).expect("oracle protect").to_vec();
        for at in [1, 20, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            assert_eq!(
                rx.unprotect_rtp(&mut bad),
                Err(SrtpError::Authentication),
                "{profile:?} byte {at}"
            );
        }
        let mut ok = good.clone();
        assert_eq!(rx.unprotect_rtp(&mut ok), Ok(plain.len()));
    }
}
