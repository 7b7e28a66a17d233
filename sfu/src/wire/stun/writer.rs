//! Writing STUN messages into a caller's buffer: a general attribute writer that ends with
//! MESSAGE-INTEGRITY and FINGERPRINT, and the three Binding messages ICE sends.

use super::attributes::*;
use super::integrity::{FINGERPRINT_ATTR_LEN, INTEGRITY_ATTR_LEN, fingerprint, integrity_mac};
use super::{HEADER_LEN, MAGIC_COOKIE, StunClass, StunError, StunMethod, join_type};
use crate::wire::be::{put_u16, put_u32};
use hmac::Mac;
use std::net::SocketAddr;

/// Builds one STUN message in place: header first, then attributes in call order; the header
/// length is kept current, so integrity and fingerprint can be appended at any point.
#[derive(Debug)]
pub struct StunWriter<'a> {
    out: &'a mut [u8],
    len: usize,
    txid: [u8; 12],
}

impl<'a> StunWriter<'a> {
    /// Starts a message of `class` and `method`.
    pub fn new(
        out: &'a mut [u8],
        class: StunClass,
        method: StunMethod,
        txid: &[u8; 12],
    ) -> Result<Self, StunError> {
        if out.len() < HEADER_LEN {
            return Err(StunError::BufferTooSmall {
                need: HEADER_LEN,
                have: out.len(),
            });
        }
        put_u16(out, 0, join_type(class, method));
        put_u16(out, 2, 0);
        put_u32(out, 4, MAGIC_COOKIE);
        out[8..20].copy_from_slice(txid);
        Ok(StunWriter {
            out,
            len: HEADER_LEN,
            txid: *txid,
        })
    }

    /// Appends an attribute, zero-padded to 32 bits.
    pub fn attr(&mut self, t: u16, value: &[u8]) -> Result<(), StunError> {
        if value.len() > usize::from(u16::MAX) - 3 {
            return Err(StunError::ValueTooLong);
        }
        let padded = value.len().div_ceil(4) * 4;
        let end = self.len + 4 + padded;
        if end > self.out.len() {
            return Err(StunError::BufferTooSmall {
                need: end,
                have: self.out.len(),
            });
        }
        if end - HEADER_LEN > usize::from(u16::MAX) {
            return Err(StunError::ValueTooLong);
        }
        put_u16(self.out, self.len, t);
        put_u16(self.out, self.len + 2, value.len() as u16);
        self.out[self.len + 4..self.len + 4 + value.len()].copy_from_slice(value);
        self.out[self.len + 4 + value.len()..end].fill(0);
        self.len = end;
        put_u16(self.out, 2, (self.len - HEADER_LEN) as u16);
        Ok(())
    }

    /// Appends an XOR-encoded address attribute (XOR-MAPPED-ADDRESS or another of that format).
    pub fn xor_address(&mut self, t: u16, addr: SocketAddr) -> Result<(), StunError> {
        let mut v = [0u8; 20];
        let n = encode_xor_address(addr, &self.txid, &mut v);
        self.attr(t, &v[..n])
    }

    /// Appends MESSAGE-INTEGRITY computed with `key` over everything written so far.
    pub fn integrity(&mut self, key: &[u8]) -> Result<(), StunError> {
        let need = self.len + INTEGRITY_ATTR_LEN;
        if need > self.out.len() {
            return Err(StunError::BufferTooSmall {
                need,
                have: self.out.len(),
            });
        }
        let mac = integrity_mac(self.out, self.len, key).ok_or(StunError::ValueTooLong)?;
        let tag = mac.finalize().into_bytes();
        self.attr(ATTR_MESSAGE_INTEGRITY, &tag)
    }

    /// Appends FINGERPRINT over everything written so far; it must be the last attribute.
    pub fn fingerprint(&mut self) -> Result<(), StunError> {
        let need = self.len + FINGERPRINT_ATTR_LEN;
        if need > self.out.len() {
            return Err(StunError::BufferTooSmall {
                need,
                have: self.out.len(),
            });
        }
        let crc = fingerprint(self.out, self.len);
        self.attr(ATTR_FINGERPRINT, &crc.to_be_bytes())
    }

    /// The message length so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no attribute was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Ends the message and returns its length.
    pub fn finish(self) -> usize {
        self.len
    }
}

/// The attributes of an ICE connectivity check (RFC 8445 §7.1.1).
#[derive(Debug, Clone, Copy)]
pub struct BindingRequest<'a> {
    /// "remote-ufrag:local-ufrag".
    pub username: &'a str,
    pub priority: u32,
    /// Tie-breaker when the sender is the controlling agent.
    pub controlling: Option<u64>,
    /// Tie-breaker when the sender is the controlled agent.
    pub controlled: Option<u64>,
    /// Nominate this pair (controlling agent only).
    pub use_candidate: bool,
}

/// Writes a Binding success response carrying XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY (with
/// `integrity_key`, the local ICE password) and FINGERPRINT.
pub fn write_binding_success(
    out: &mut [u8],
    txid: &[u8; 12],
    mapped: SocketAddr,
    integrity_key: &[u8],
) -> Result<usize, StunError> {
    let mut w = StunWriter::new(out, StunClass::Success, StunMethod::Binding, txid)?;
    w.xor_address(ATTR_XOR_MAPPED_ADDRESS, mapped)?;
    w.integrity(integrity_key)?;
    w.fingerprint()?;
    Ok(w.finish())
}

/// Writes a Binding request (an ICE check) with USERNAME, PRIORITY, the role attribute,
/// USE-CANDIDATE when asked, MESSAGE-INTEGRITY (with the remote ICE password) and FINGERPRINT.
pub fn write_binding_request(
    out: &mut [u8],
    txid: &[u8; 12],
    req: &BindingRequest,
    integrity_key: &[u8],
) -> Result<usize, StunError> {
    if req.controlling.is_some() && req.controlled.is_some() {
        return Err(StunError::ConflictingRoles);
    }
    if req.username.len() > MAX_USERNAME {
        return Err(StunError::ValueTooLong);
    }
    let mut w = StunWriter::new(out, StunClass::Request, StunMethod::Binding, txid)?;
    w.attr(ATTR_USERNAME, req.username.as_bytes())?;
    w.attr(ATTR_PRIORITY, &req.priority.to_be_bytes())?;
    if let Some(t) = req.controlling {
        w.attr(ATTR_ICE_CONTROLLING, &t.to_be_bytes())?;
    }
    if let Some(t) = req.controlled {
        w.attr(ATTR_ICE_CONTROLLED, &t.to_be_bytes())?;
    }
    if req.use_candidate {
        w.attr(ATTR_USE_CANDIDATE, &[])?;
    }
    w.integrity(integrity_key)?;
    w.fingerprint()?;
    Ok(w.finish())
}

/// Writes a Binding error response with ERROR-CODE `code` (300..=699) and `reason`, then
/// MESSAGE-INTEGRITY when a key is given (not for 400/401 answers to unauthenticated requests),
/// then FINGERPRINT.
pub fn write_binding_error(
    out: &mut [u8],
    txid: &[u8; 12],
    code: u16,
    reason: &str,
    integrity_key: Option<&[u8]>,
) -> Result<usize, StunError> {
    if !(300..=699).contains(&code) {
        return Err(StunError::InvalidErrorCode(code));
    }
    if reason.len() > MAX_REASON {
        return Err(StunError::ValueTooLong);
    }
    let mut w = StunWriter::new(out, StunClass::Error, StunMethod::Binding, txid)?;
    let mut v = [0u8; 4 + MAX_REASON];
    v[2] = (code / 100) as u8;
    v[3] = (code % 100) as u8;
    v[4..4 + reason.len()].copy_from_slice(reason.as_bytes());
    w.attr(ATTR_ERROR_CODE, &v[..4 + reason.len()])?;
    if let Some(key) = integrity_key {
        w.integrity(key)?;
    }
    w.fingerprint()?;
    Ok(w.finish())
}
