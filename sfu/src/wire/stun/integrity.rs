//! MESSAGE-INTEGRITY (RFC 8489 §14.5: HMAC-SHA1 over the message up to the attribute, with the
//! header length covering it) and FINGERPRINT (§14.7: CRC-32 of the message up to the attribute,
//! XOR 0x5354554e).

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Length of a MESSAGE-INTEGRITY attribute (header and HMAC-SHA1).
pub(super) const INTEGRITY_ATTR_LEN: usize = 24;
/// Length of a FINGERPRINT attribute.
pub(super) const FINGERPRINT_ATTR_LEN: usize = 8;
const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// The header with its length field set as if the message ended `end_after` bytes after
/// `upto` (the offset of the attribute being computed).
fn adjusted_header(msg: &[u8], upto: usize, end_after: usize) -> [u8; 20] {
    let mut h = [0u8; 20];
    h.copy_from_slice(&msg[..20]);
    let len = (upto + end_after - 20) as u16;
    h[2..4].copy_from_slice(&len.to_be_bytes());
    h
}

/// HMAC-SHA1 of `msg[..upto]` as MESSAGE-INTEGRITY at offset `upto` computes it. `msg` holds at
/// least the header and `upto` bytes.
pub(super) fn integrity_mac(msg: &[u8], upto: usize, key: &[u8]) -> Option<Hmac<Sha1>> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).ok()?;
    mac.update(&adjusted_header(msg, upto, INTEGRITY_ATTR_LEN));
    mac.update(&msg[20..upto]);
    Some(mac)
}

/// CRC-32 value FINGERPRINT at offset `upto` carries.
pub(super) fn fingerprint(msg: &[u8], upto: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&adjusted_header(msg, upto, FINGERPRINT_ATTR_LEN));
    h.update(&msg[20..upto]);
    h.finalize() ^ FINGERPRINT_XOR
}
