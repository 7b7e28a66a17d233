//! AEAD_AES_128_GCM for SRTP and SRTCP (RFC 7714 §8, §9): the RTP header (or the RTCP header and
//! the E/index word) is the associated data, the rest is encrypted, and a 16-byte tag follows.
//! Implemented on ring; see docs/adr/0003-srtp-crypto.md.

use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use super::error::SrtpError;
use super::header::RTCP_CLEAR;

/// Length of the GCM tag.
pub const TAG_LEN: usize = 16;
/// Session salt length (96 bits).
pub const SALT_LEN: usize = 12;

/// One direction's session key and salt for either SRTP or SRTCP under AES-128-GCM.
pub struct GcmKey {
    key: LessSafeKey,
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmKey { .. }")
    }
}

impl GcmKey {
    /// Keys from the derived session encryption key and salt.
    pub fn new(enc_key: &[u8; 16], salt: &[u8; SALT_LEN]) -> Self {
        // A 16-byte key is exactly what AES-128-GCM takes.
        let key = UnboundKey::new(&AES_128_GCM, enc_key).expect("16-byte AES-128-GCM key");
        GcmKey {
            key: LessSafeKey::new(key),
            salt: *salt,
        }
    }

    /// IV = (0x0000 || SSRC || ROC || SEQ) XOR salt, RFC 7714 §8.1.
    #[inline]
    fn rtp_nonce(&self, ssrc: u32, index: u64) -> Nonce {
        let mut iv = self.salt;
        xor_into(&mut iv[2..6], &ssrc.to_be_bytes());
        xor_into(&mut iv[6..12], &index.to_be_bytes()[2..]);
        Nonce::assume_unique_for_key(iv)
    }

    /// IV = (0x0000 || SSRC || 0x0000 || 0 || SRTCP index) XOR salt, RFC 7714 §9.1.
    #[inline]
    fn rtcp_nonce(&self, ssrc: u32, index: u32) -> Nonce {
        let mut iv = self.salt;
        xor_into(&mut iv[2..6], &ssrc.to_be_bytes());
        xor_into(&mut iv[8..12], &index.to_be_bytes());
        Nonce::assume_unique_for_key(iv)
    }

    /// Encrypts `buf[header_len..len]` with the header as AAD and writes the tag to
    /// `buf[len..len + TAG_LEN]`. `buf` must be at least `len + TAG_LEN` long.
    #[inline]
    pub fn seal_rtp(
        &self,
        buf: &mut [u8],
        header_len: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<(), SrtpError> {
        let (header, rest) = buf.split_at_mut(header_len);
        let (payload, tag_out) = rest.split_at_mut(len - header_len);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.rtp_nonce(ssrc, index), Aad::from(&*header), payload)
            // ring refuses only inputs beyond GCM's 2^36-byte limit.
            .map_err(|_| SrtpError::Malformed)?;
        tag_out[..TAG_LEN].copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Verifies and decrypts an SRTP packet in place; returns the RTP length.
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
        let (header, rest) = buf.split_at_mut(header_len);
        let (payload, tag) = rest.split_at_mut(len - header_len);
        let tag = Tag::try_from(&*tag).map_err(|_| SrtpError::Malformed)?;
        self.key
            .open_in_place_separate_tag(
                self.rtp_nonce(ssrc, index),
                Aad::from(&*header),
                tag,
                payload,
                0..,
            )
            .map_err(|_| SrtpError::Authentication)?;
        Ok(len)
    }

    /// Encrypts `buf[8..len]` with the RTCP header and E=1/`index` as AAD; lays out
    /// `[rtcp][tag][E|index]` (RFC 7714 §9) and returns the SRTCP length.
    /// `buf` must be at least `len + TAG_LEN + 4` long.
    #[inline]
    pub fn seal_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
    ) -> Result<usize, SrtpError> {
        let trailer = (index | 0x8000_0000).to_be_bytes();
        let mut aad = [0u8; RTCP_CLEAR + 4];
        aad[..RTCP_CLEAR].copy_from_slice(&buf[..RTCP_CLEAR]);
        aad[RTCP_CLEAR..].copy_from_slice(&trailer);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                self.rtcp_nonce(ssrc, index),
                Aad::from(aad),
                &mut buf[RTCP_CLEAR..len],
            )
            // ring refuses only inputs beyond GCM's 2^36-byte limit.
            .map_err(|_| SrtpError::Malformed)?;
        buf[len..len + TAG_LEN].copy_from_slice(tag.as_ref());
        buf[len + TAG_LEN..len + TAG_LEN + 4].copy_from_slice(&trailer);
        Ok(len + TAG_LEN + 4)
    }

    /// Verifies an SRTCP packet `[rtcp][tag][E|index]` and decrypts it when `encrypted`
    /// (otherwise the whole RTCP packet is AAD, RFC 7714 §9.2); returns the RTCP length.
    /// `buf.len()` must be at least `8 + TAG_LEN + 4`.
    #[inline]
    pub fn open_rtcp(
        &self,
        buf: &mut [u8],
        ssrc: u32,
        index: u32,
        encrypted: bool,
    ) -> Result<usize, SrtpError> {
        let len = buf.len() - TAG_LEN - 4;
        let mut trailer = [0u8; 4];
        trailer.copy_from_slice(&buf[len + TAG_LEN..]);
        let tag = Tag::try_from(&buf[len..len + TAG_LEN]).map_err(|_| SrtpError::Malformed)?;
        let nonce = self.rtcp_nonce(ssrc, index);
        let opened = if encrypted {
            let mut aad = [0u8; RTCP_CLEAR + 4];
            aad[..RTCP_CLEAR].copy_from_slice(&buf[..RTCP_CLEAR]);
            aad[RTCP_CLEAR..].copy_from_slice(&trailer);
            self.key
                .open_in_place_separate_tag(
                    nonce,
                    Aad::from(aad),
                    tag,
                    &mut buf[RTCP_CLEAR..len],
                    0..,
                )
                .map(|_| ())
        } else {
            // AAD = the whole RTCP packet followed by the E/index word: move the word over the
            // (already copied) tag so that the AAD is contiguous.
            buf[len..len + 4].copy_from_slice(&trailer);
            self.key
                .open_in_place_separate_tag(nonce, Aad::from(&buf[..len + 4]), tag, &mut [], 0..)
                .map(|_| ())
        };
        opened.map_err(|_| SrtpError::Authentication)?;
        Ok(len)
    }
}

#[inline]
fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::test_util::hex;

    fn rfc7714_key() -> GcmKey {
        let key: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f")
            .try_into()
            .expect("16 bytes");
        let salt: [u8; 12] = hex("517569642070726f2071756f")
            .try_into()
            .expect("12 bytes");
        GcmKey::new(&key, &salt)
    }

    #[test]
    fn nonces_match_rfc7714_sections_16_and_17() {
        let k = rfc7714_key();
        assert_eq!(
            k.rtp_nonce(0x5501_a0b2, 0xf17b).as_ref().to_vec(),
            hex("51753c6580c2726f20718414")
        );
        assert_eq!(
            k.rtcp_nonce(0x4d61_7273, 0x5d4).as_ref().to_vec(),
            hex("517524055203726f207170bb")
        );
    }

    /// RFC 7714 §17.3: SRTCP with E=0, the whole packet authenticated and nothing encrypted.
    #[test]
    fn unencrypted_srtcp_matches_rfc7714_17_3() {
        let k = rfc7714_key();
        let rtcp = hex(
            "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef",
        );
        let mut pkt = rtcp.clone();
        pkt.extend(hex("841dd9683dd78ec92ae58790125f62b3"));
        pkt.extend(hex("000005d4"));
        let mut bad = pkt.clone();
        assert_eq!(
            k.open_rtcp(&mut pkt, 0x4d61_7273, 0x5d4, false),
            Ok(rtcp.len())
        );
        assert_eq!(pkt[..rtcp.len()], rtcp[..]);
        bad[20] ^= 0x40;
        assert_eq!(
            k.open_rtcp(&mut bad, 0x4d61_7273, 0x5d4, false),
            Err(SrtpError::Authentication)
        );
    }
}
