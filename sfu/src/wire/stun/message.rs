//! A parsed STUN message (RFC 8489 §5, §14): header fields, the attributes ICE reads, and the
//! positions of MESSAGE-INTEGRITY and FINGERPRINT for verification.

use super::attributes::*;
use super::integrity::{fingerprint, integrity_mac};
use super::{HEADER_LEN, MAGIC_COOKIE, StunClass, StunError, StunMethod, split_type};
use crate::wire::be::{u16_at, u32_at};
use hmac::Mac;
use std::net::SocketAddr;

/// A borrowed view of a validated STUN message.
#[derive(Debug, Clone, Copy)]
pub struct StunMessage<'a> {
    buf: &'a [u8],
    pub class: StunClass,
    pub method: StunMethod,
    pub transaction_id: [u8; 12],
    username: Option<&'a [u8]>,
    priority: Option<u32>,
    use_candidate: bool,
    ice_controlling: Option<u64>,
    ice_controlled: Option<u64>,
    xor_mapped: Option<SocketAddr>,
    error: Option<(u16, &'a [u8])>,
    unknown_required: Option<u16>,
    /// Offset of the MESSAGE-INTEGRITY attribute.
    integrity: Option<usize>,
    /// Offset of the FINGERPRINT attribute.
    fingerprint: Option<usize>,
}

/// Iterator over the raw `(type, value)` attributes of a message.
#[derive(Debug, Clone)]
pub struct StunAttrs<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for StunAttrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.buf.get(self.pos..self.pos + 4)?;
        let t = u16_at(head, 0);
        let len = usize::from(u16_at(head, 2));
        let value = self.buf.get(self.pos + 4..self.pos + 4 + len)?;
        self.pos += 4 + len.div_ceil(4) * 4;
        Some((t, value))
    }
}

fn fixed<const N: usize>(t: u16, v: &[u8]) -> Result<[u8; N], StunError> {
    v.try_into().map_err(|_| StunError::BadAttribute(t))
}

impl<'a> StunMessage<'a> {
    /// Parses and validates a STUN message that fills `buf` exactly. Attributes after
    /// MESSAGE-INTEGRITY (or MESSAGE-INTEGRITY-SHA256) other than FINGERPRINT are ignored;
    /// anything after FINGERPRINT is an error. Of repeated attributes, the first counts.
    /// MESSAGE-INTEGRITY-SHA256 itself is not verified: ICE (RFC 8445) uses the SHA-1 form.
    pub fn parse(buf: &'a [u8]) -> Result<StunMessage<'a>, StunError> {
        if buf.len() < HEADER_LEN {
            return Err(StunError::TooShort);
        }
        if buf[0] & 0xc0 != 0 || u32_at(buf, 4) != MAGIC_COOKIE {
            return Err(StunError::NotStun);
        }
        let len = usize::from(u16_at(buf, 2));
        if len % 4 != 0 || HEADER_LEN + len != buf.len() {
            return Err(StunError::BadLength);
        }
        let (class, method) = split_type(u16_at(buf, 0));
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&buf[8..20]);
        let mut m = StunMessage {
            buf,
            class,
            method,
            transaction_id,
            username: None,
            priority: None,
            use_candidate: false,
            ice_controlling: None,
            ice_controlled: None,
            xor_mapped: None,
            error: None,
            unknown_required: None,
            integrity: None,
            fingerprint: None,
        };
        let mut pos = HEADER_LEN;
        // Set by MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256: what follows (but FINGERPRINT)
        // is not covered by the integrity check and is ignored (RFC 8489 §14.5, §14.6).
        let mut sealed = false;
        while pos < buf.len() {
            if pos + 4 > buf.len() {
                return Err(StunError::AttributeOverflow);
            }
            let t = u16_at(buf, pos);
            let vlen = usize::from(u16_at(buf, pos + 2));
            let next = pos + 4 + vlen.div_ceil(4) * 4;
            if next > buf.len() {
                return Err(StunError::AttributeOverflow);
            }
            let v = &buf[pos + 4..pos + 4 + vlen];
            if m.fingerprint.is_some() {
                return Err(StunError::AttributeAfterFingerprint);
            }
            if t == ATTR_FINGERPRINT {
                fixed::<4>(t, v)?;
                m.fingerprint = Some(pos);
            } else if !sealed {
                sealed = matches!(t, ATTR_MESSAGE_INTEGRITY | ATTR_MESSAGE_INTEGRITY_SHA256);
                m.read_attribute(t, v, pos)?;
            }
            pos = next;
        }
        Ok(m)
    }

    fn read_attribute(&mut self, t: u16, v: &'a [u8], pos: usize) -> Result<(), StunError> {
        match t {
            ATTR_MESSAGE_INTEGRITY => {
                fixed::<20>(t, v)?;
                self.integrity = Some(pos);
            }
            ATTR_USERNAME if self.username.is_none() => {
                if v.len() > MAX_USERNAME {
                    return Err(StunError::BadAttribute(t));
                }
                self.username = Some(v);
            }
            ATTR_PRIORITY if self.priority.is_none() => {
                self.priority = Some(u32::from_be_bytes(fixed(t, v)?));
            }
            ATTR_USE_CANDIDATE => {
                if !v.is_empty() {
                    return Err(StunError::BadAttribute(t));
                }
                self.use_candidate = true;
            }
            ATTR_ICE_CONTROLLING if self.ice_controlling.is_none() => {
                self.ice_controlling = Some(u64::from_be_bytes(fixed(t, v)?));
            }
            ATTR_ICE_CONTROLLED if self.ice_controlled.is_none() => {
                self.ice_controlled = Some(u64::from_be_bytes(fixed(t, v)?));
            }
            ATTR_XOR_MAPPED_ADDRESS if self.xor_mapped.is_none() => {
                self.xor_mapped = Some(decode_xor_address(v, &self.transaction_id)?);
            }
            ATTR_ERROR_CODE if self.error.is_none() => {
                self.error = Some(decode_error_code(v)?);
            }
            _ => {
                if t < 0x8000 && !is_known_required(t) && self.unknown_required.is_none() {
                    self.unknown_required = Some(t);
                }
            }
        }
        Ok(())
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Every attribute `(type, value)` in order, including those after MESSAGE-INTEGRITY.
    pub fn attributes(&self) -> StunAttrs<'a> {
        StunAttrs {
            buf: self.buf,
            pos: HEADER_LEN,
        }
    }

    /// USERNAME ("remote-ufrag:local-ufrag" in ICE checks).
    pub fn username(&self) -> Option<&'a [u8]> {
        self.username
    }

    /// PRIORITY.
    pub fn priority(&self) -> Option<u32> {
        self.priority
    }

    /// USE-CANDIDATE is present.
    pub fn use_candidate(&self) -> bool {
        self.use_candidate
    }

    /// ICE-CONTROLLING tie-breaker.
    pub fn ice_controlling(&self) -> Option<u64> {
        self.ice_controlling
    }

    /// ICE-CONTROLLED tie-breaker.
    pub fn ice_controlled(&self) -> Option<u64> {
        self.ice_controlled
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_mapped
    }

    /// ERROR-CODE number (300..=699).
    pub fn error_code(&self) -> Option<u16> {
        self.error.map(|(c, _)| c)
    }

    /// ERROR-CODE reason phrase.
    pub fn error_reason(&self) -> Option<&'a [u8]> {
        self.error.map(|(_, r)| r)
    }

    /// The first comprehension-required attribute type (below 0x8000) this parser does not
    /// know; a request carrying one should be answered with error 420 (RFC 8489 §6.3.1.1).
    pub fn unknown_required(&self) -> Option<u16> {
        self.unknown_required
    }

    /// MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// Checks MESSAGE-INTEGRITY with `key` (for ICE: the password of the side that is checked,
    /// as bytes). False when absent. The comparison is constant-time.
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(pos) = self.integrity else {
            return false;
        };
        let Some(mac) = integrity_mac(self.buf, pos, key) else {
            return false;
        };
        mac.verify_slice(&self.buf[pos + 4..pos + 24]).is_ok()
    }

    /// FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Checks FINGERPRINT. False when absent.
    pub fn verify_fingerprint(&self) -> bool {
        let Some(pos) = self.fingerprint else {
            return false;
        };
        fingerprint(self.buf, pos) == u32_at(self.buf, pos + 4)
    }
}
