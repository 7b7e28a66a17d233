//! The SRTP key derivation function (RFC 3711 §4.3) with key derivation rate 0, as DTLS-SRTP
//! requires (RFC 5764 §4.1.2): the AES-CM PRF keyed with the master key. AEAD_AES_128_GCM uses
//! the same KDF with its 96-bit master salt zero-padded to 112 bits (RFC 7714 §11).

use super::aes_cm::{aes128, apply_keystream};

/// Key derivation labels (RFC 3711 §4.3.1, §4.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Label {
    SrtpEncryption = 0x00,
    SrtpAuthentication = 0x01,
    SrtpSalt = 0x02,
    SrtcpEncryption = 0x03,
    SrtcpAuthentication = 0x04,
    SrtcpSalt = 0x05,
}

/// A master key and salt, ready to derive session keys.
pub struct MasterKey {
    aes: aes::Aes128Enc,
    /// The master salt, left-aligned and zero-padded to 112 bits.
    salt: [u8; 14],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey { .. }")
    }
}

impl MasterKey {
    /// `salt` is at most 14 bytes (112 bits); shorter salts are zero-padded on the right.
    pub fn new(key: &[u8; 16], salt: &[u8]) -> Self {
        debug_assert!(salt.len() <= 14);
        let mut padded = [0u8; 14];
        padded[..salt.len()].copy_from_slice(salt);
        MasterKey {
            aes: aes128(key),
            salt: padded,
        }
    }

    /// Fills `out` with the session key for `label`: the AES-CM keystream at
    /// IV = (master_salt XOR (label << 48)) * 2^16 (index DIV kdr is zero).
    pub fn derive(&self, label: Label, out: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        iv[7] ^= label as u8;
        out.fill(0);
        apply_keystream(&self.aes, &iv, out);
    }

    /// Like [`derive`](Self::derive), into an array.
    pub fn derive_array<const N: usize>(&self, label: Label) -> [u8; N] {
        let mut out = [0u8; N];
        self.derive(label, &mut out);
        out
    }
}

/// Overwrites key material that is about to go out of scope.
pub fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference; the volatile write keeps the
        // compiler from eliding the store to memory that is not read afterwards.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::test_util::hex;

    /// RFC 3711 appendix B.3.
    #[test]
    fn session_keys_match_rfc3711_b3() {
        let key: [u8; 16] = hex("E1F97A0D3E018BE0D64FA32C06DE4139")
            .try_into()
            .expect("16 bytes");
        let m = MasterKey::new(&key, &hex("0EC675AD498AFEEBB6960B3AABE6"));
        assert_eq!(
            m.derive_array::<16>(Label::SrtpEncryption).to_vec(),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(
            m.derive_array::<14>(Label::SrtpSalt).to_vec(),
            hex("30CBBC08863D8C85D49DB34A9AE1")
        );
        // The RFC lists 94 bytes of the authentication key keystream; HMAC-SHA1 uses the first 20.
        let mut auth = [0u8; 94];
        m.derive(Label::SrtpAuthentication, &mut auth);
        assert_eq!(
            auth.to_vec(),
            hex(concat!(
                "CEBE321F6FF7716B6FD4AB49AF256A15",
                "6D38BAA48F0A0ACF3C34E2359E6CDBCE",
                "E049646C43D9327AD175578EF7227098",
                "6371C10C9A369AC2F94A8C5FBCDDDC25",
                "6D6E919A48B610EF17C2041E47403576",
                "6B68642C59BBFC2F34DB60DBDFB2"
            ))
        );
    }

    #[test]
    fn srtcp_labels_derive_different_keys() {
        let m = MasterKey::new(&[1; 16], &[2; 12]);
        let a: [u8; 16] = m.derive_array(Label::SrtpEncryption);
        let b: [u8; 16] = m.derive_array(Label::SrtcpEncryption);
        assert_ne!(a, b);
    }

    #[test]
    fn wipe_zeroes() {
        let mut k = [0xaa; 16];
        wipe(&mut k);
        assert_eq!(k, [0; 16]);
    }
}
