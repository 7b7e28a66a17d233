//! AES_CM_128_HMAC_SHA1_80 (RFC 3711 §4.1.1, §4.2.1): AES-128 in counter mode keyed per packet
//! by SSRC and index, then an HMAC-SHA1 tag truncated to 80 bits. Implemented on RustCrypto
//! (`aes` with AES-NI, `ctr`, `hmac`, `sha1` with SHA-NI); see docs/adr/0003-srtp-crypto.md.

use aes::Aes128Enc;
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::error::SrtpError;
use super::header::RTCP_CLEAR;

/// Length of the truncated HMAC-SHA1 tag.
pub const TAG_LEN: usize = 10;
/// Session salt length (112 bits).
pub const SALT_LEN: usize = 14;
/// Session authentication key length (160 bits).
pub const AUTH_KEY_LEN: usize = 20;

/// XORs the AES-CM keystream for `iv` into `data` (RFC 3711 §4.1.1).
///
/// The SRTP counter runs in the low 16 bits of the IV, which start at zero, and no packet spans
/// 2^16 blocks; so a 32-bit big-endian counter produces exactly the RFC 3711 keystream.
#[inline]
pub fn apply_keystream(aes: &Aes128Enc, iv: &[u8; 16], data: &mut [u8]) {
    let core = ctr::CtrCore::<&Aes128Enc, ctr::flavors::Ctr32BE>::inner_iv_init(aes, iv.into());
    let mut cipher = ctr::cipher::StreamCipherCoreWrapper::from_core(core);
    cipher.apply_keystream(data);
}

/// A new AES-128 encryption key schedule.
pub fn aes128(key: &[u8; 16]) -> Aes128Enc {
    Aes128Enc::new(key.into())
}

/// One direction's session keys for either SRTP or SRTCP under AES-CM + HMAC-SHA1-80.
#[derive(Clone)]
pub struct AesCmKey {
    aes: Aes128Enc,
    mac: Hmac<Sha1>,
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for AesCmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesCmKey { .. }")
    }
}

impl AesCmKey {
    /// Keys from the derived session encryption key, authentication key and salt.
    pub fn new(enc_key: &[u8; 16], auth_key: &[u8; AUTH_KEY_LEN], salt: &[u8; SALT_LEN]) -> Self {
        let mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_key)
            // HMAC accepts keys of any length.
            .expect("HMAC takes any key length");
        AesCmKey {
            aes: aes128(enc_key),
            mac,
            salt: *salt,
        }
    }

    /// IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16), RFC 3711 §4.1.1.
    #[inline]
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }

    #[inline]
    fn tag(&self, authenticated: &[u8], trailer: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(authenticated);
        mac.update(trailer);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Encrypts `buf[header_len..len]` and writes the tag to `buf[len..len + TAG_LEN]`.
    /// `buf` must be at least `len + TAG_LEN` long.
    #[inline]
    pub fn seal_rtp(&self, buf: &mut [u8], header_len: usize, len: usize, ssrc: u32, index: u64) {
        apply_keystream(&self.aes, &self.iv(ssrc, index), &mut buf[header_len..len]);
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = self.tag(&buf[..len], &roc);
        buf[len..len + TAG_LEN].copy_from_slice(&tag);
    }

    /// Verifies the tag at the end of `buf`, then decrypts; returns the RTP length.
    /// `buf.len()` must be at least `header_len + TAG_LEN`.
    #[inline]
    pub fn open_rtp(
        &self,
        buf: &mut [u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let len = buf.len() - TAG_LEN;
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = self.tag(&buf[..len], &roc);
        if !bool::from(tag.ct_eq(&buf[len..])) {
            return Err(SrtpError::Authentication);
        }
        apply_keystream(&self.aes, &self.iv(ssrc, index), &mut buf[header_len..len]);
        Ok(len)
    }

    /// Encrypts `buf[8..len]`, appends E=1 and `index`, then the tag; returns the SRTCP length.
    /// `buf` must be at least `len + 4 + TAG_LEN` long.
    #[inline]
    pub fn seal_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32) -> usize {
        apply_keystream(
            &self.aes,
            &self.iv(ssrc, u64::from(index)),
            &mut buf[RTCP_CLEAR..len],
        );
        buf[len..len + 4].copy_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.tag(&buf[..len + 4], &[]);
        buf[len + 4..len + 4 + TAG_LEN].copy_from_slice(&tag);
        len + 4 + TAG_LEN
    }

    /// Verifies an SRTCP packet (`[rtcp][E|index][tag]`) and decrypts it when `encrypted`;
    /// returns the RTCP length.
    #[inline]
    pub fn open_rtcp(
        &self,
        buf: &mut [u8],
        ssrc: u32,
        index: u32,
        encrypted: bool,
    ) -> Result<usize, SrtpError> {
        let auth_len = buf.len() - TAG_LEN;
        let tag = self.tag(&buf[..auth_len], &[]);
        if !bool::from(tag.ct_eq(&buf[auth_len..])) {
            return Err(SrtpError::Authentication);
        }
        let len = auth_len - 4;
        if encrypted {
            apply_keystream(
                &self.aes,
                &self.iv(ssrc, u64::from(index)),
                &mut buf[RTCP_CLEAR..len],
            );
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::test_util::hex;

    /// RFC 3711 appendix B.2: the AES-CM keystream for session key 2B7E..., salt F0F1...FD,
    /// SSRC 0 and index 0, at the first and last blocks listed.
    #[test]
    fn keystream_matches_rfc3711_b2() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C")
            .try_into()
            .expect("16 bytes");
        let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")
            .try_into()
            .expect("14 bytes");
        let k = AesCmKey::new(&key, &[0; 20], &salt);
        let iv = k.iv(0, 0);
        assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
        let mut stream = vec![0u8; 16 * 0xff02];
        apply_keystream(&k.aes, &iv, &mut stream);
        let block = |n: usize| stream[n * 16..n * 16 + 16].to_vec();
        assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
        assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
        assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
        assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    #[test]
    fn iv_places_ssrc_and_index_per_rfc3711() {
        let k = AesCmKey::new(&[0; 16], &[0; 20], &[0; 14]);
        assert_eq!(
            k.iv(0x0102_0304, 0x5566_7788_99aa).to_vec(),
            hex("00000000010203045566778899aa0000")
        );
    }

    /// SRTCP with E=0 (RFC 3711 §3.4): authenticated, not encrypted; the E flag itself is
    /// covered by the tag.
    #[test]
    fn unencrypted_srtcp_is_authenticated_but_left_in_the_clear() {
        let k = AesCmKey::new(&[4; 16], &[5; 20], &[6; 14]);
        let rtcp = [0x81, 201, 0, 1, 0, 0, 0, 9, 0xaa, 0xbb, 0xcc, 0xdd];
        let mut pkt = rtcp.to_vec();
        pkt.extend_from_slice(&7u32.to_be_bytes());
        let tag = k.tag(&pkt, &[]);
        pkt.extend_from_slice(&tag);
        let mut claimed_encrypted = pkt.clone();
        claimed_encrypted[rtcp.len()] |= 0x80;
        assert_eq!(k.open_rtcp(&mut pkt, 9, 7, false), Ok(rtcp.len()));
        assert_eq!(pkt[..rtcp.len()], rtcp);
        assert_eq!(
            k.open_rtcp(&mut claimed_encrypted, 9, 7, true),
            Err(SrtpError::Authentication)
        );
    }

    #[test]
    fn tampered_rtp_fails_authentication() {
        let k = AesCmKey::new(&[1; 16], &[2; 20], &[3; 14]);
        let mut buf = [0u8; 12 + 20 + TAG_LEN];
        buf[0] = 0x80;
        k.seal_rtp(&mut buf, 12, 32, 7, 9);
        let good = buf;
        assert_eq!(k.open_rtp(&mut buf, 12, 7, 9), Ok(32));
        assert_eq!(&buf[12..32], &[0u8; 20]);
        for i in [0, 12, 31, 32, 41] {
            let mut bad = good;
            bad[i] ^= 1;
            assert_eq!(
                k.open_rtp(&mut bad, 12, 7, 9),
                Err(SrtpError::Authentication),
                "byte {i}"
            );
        }
        // The ROC is authenticated even though it is not sent.
        let mut other_roc = good;
        assert_eq!(
            k.open_rtp(&mut other_roc, 12, 7, 9 + (1 << 16)),
            Err(SrtpError::Authentication)
        );
    }
}
