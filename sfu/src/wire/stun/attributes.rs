//! STUN attribute types used by ICE (RFC 8489 §14, RFC 8445 §16.1) and the XOR-MAPPED-ADDRESS
//! and ERROR-CODE value encodings.

use super::{MAGIC_COOKIE, StunError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
pub const ATTR_USERNAME: u16 = 0x0006;
pub const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
pub const ATTR_ERROR_CODE: u16 = 0x0009;
pub const ATTR_UNKNOWN_ATTRIBUTES: u16 = 0x000a;
pub const ATTR_REALM: u16 = 0x0014;
pub const ATTR_NONCE: u16 = 0x0015;
pub const ATTR_MESSAGE_INTEGRITY_SHA256: u16 = 0x001c;
pub const ATTR_PASSWORD_ALGORITHM: u16 = 0x001d;
pub const ATTR_USERHASH: u16 = 0x001e;
pub const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
pub const ATTR_PRIORITY: u16 = 0x0024;
pub const ATTR_USE_CANDIDATE: u16 = 0x0025;
pub const ATTR_SOFTWARE: u16 = 0x8022;
pub const ATTR_FINGERPRINT: u16 = 0x8028;
pub const ATTR_ICE_CONTROLLED: u16 = 0x8029;
pub const ATTR_ICE_CONTROLLING: u16 = 0x802a;

/// Longest USERNAME value allowed (RFC 8489 §14.3).
pub const MAX_USERNAME: usize = 513;
/// Longest ERROR-CODE reason phrase allowed (RFC 8489 §14.8).
pub const MAX_REASON: usize = 763;

/// True for comprehension-required attribute types this module understands.
pub(super) fn is_known_required(t: u16) -> bool {
    matches!(
        t,
        ATTR_MAPPED_ADDRESS
            | ATTR_USERNAME
            | ATTR_MESSAGE_INTEGRITY
            | ATTR_ERROR_CODE
            | ATTR_UNKNOWN_ATTRIBUTES
            | ATTR_REALM
            | ATTR_NONCE
            | ATTR_MESSAGE_INTEGRITY_SHA256
            | ATTR_PASSWORD_ALGORITHM
            | ATTR_USERHASH
            | ATTR_XOR_MAPPED_ADDRESS
            | ATTR_PRIORITY
            | ATTR_USE_CANDIDATE
    )
}

/// Decodes an XOR-MAPPED-ADDRESS value (RFC 8489 §14.2).
pub fn decode_xor_address(value: &[u8], txid: &[u8; 12]) -> Result<SocketAddr, StunError> {
    let bad = StunError::BadAttribute(ATTR_XOR_MAPPED_ADDRESS);
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let (family, rest) = match value {
        [_, family, rest @ ..] => (*family, rest),
        _ => return Err(bad),
    };
    let (port, addr) = match rest {
        [p0, p1, addr @ ..] => (
            u16::from_be_bytes([*p0, *p1]) ^ (MAGIC_COOKIE >> 16) as u16,
            addr,
        ),
        _ => return Err(bad),
    };
    let ip = match (family, addr.len()) {
        (1, 4) => {
            let mut a = [0u8; 4];
            for i in 0..4 {
                a[i] = addr[i] ^ cookie[i];
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (2, 16) => {
            let mut a = [0u8; 16];
            for i in 0..16 {
                let k = if i < 4 { cookie[i] } else { txid[i - 4] };
                a[i] = addr[i] ^ k;
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(bad),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Encodes an XOR-MAPPED-ADDRESS value into `out` (8 or 20 bytes); returns its length.
pub fn encode_xor_address(addr: SocketAddr, txid: &[u8; 12], out: &mut [u8; 20]) -> usize {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    out[0] = 0;
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = 1;
            for (i, b) in ip.octets().iter().enumerate() {
                out[4 + i] = b ^ cookie[i];
            }
            8
        }
        IpAddr::V6(ip) => {
            out[1] = 2;
            for (i, b) in ip.octets().iter().enumerate() {
                let k = if i < 4 { cookie[i] } else { txid[i - 4] };
                out[4 + i] = b ^ k;
            }
            20
        }
    }
}

/// Decodes an ERROR-CODE value into the code (300..=699) and reason phrase.
pub fn decode_error_code(value: &[u8]) -> Result<(u16, &[u8]), StunError> {
    match value {
        [_, _, class, number, reason @ ..] => {
            let class = u16::from(class & 0x07);
            let number = u16::from(*number);
            if !(3..=6).contains(&class) || number > 99 {
                return Err(StunError::BadAttribute(ATTR_ERROR_CODE));
            }
            Ok((class * 100 + number, reason))
        }
        _ => Err(StunError::BadAttribute(ATTR_ERROR_CODE)),
    }
}
