//! Writing whole RTP packets (RFC 3550, extensions per RFC 8285) into a caller's buffer, for
//! tests, probes and the load generator.

use super::ext::{ONE_BYTE_PROFILE, TWO_BYTE_PROFILE};
use super::{FIXED_HEADER_LEN, RtpError};
use crate::types::{PayloadType, SeqNo, Ssrc};
use crate::wire::be::{put_u16, put_u32};

/// The header fields of a packet to write.
#[derive(Debug, Clone, Copy)]
pub struct RtpFields<'a> {
    pub marker: bool,
    pub payload_type: PayloadType,
    pub seq: SeqNo,
    pub timestamp: u32,
    pub ssrc: Ssrc,
    /// Header extension elements `(id, data)`, written in this order.
    pub extensions: &'a [(u8, &'a [u8])],
}

/// Chooses the form and computes the extension block length (block header included, padded to
/// 32 bits); 0 when there are no extensions.
fn ext_block_len(exts: &[(u8, &[u8])]) -> Result<(bool, usize), RtpError> {
    if exts.is_empty() {
        return Ok((true, 0));
    }
    let one_byte = exts
        .iter()
        .all(|&(id, d)| (1..=14).contains(&id) && (1..=16).contains(&d.len()));
    let mut data = 0usize;
    for &(id, d) in exts {
        if id == 0 || d.len() > 255 {
            return Err(RtpError::InvalidExtension(id));
        }
        data += if one_byte { 1 } else { 2 } + d.len();
    }
    let padded = data.div_ceil(4) * 4;
    if padded / 4 > usize::from(u16::MAX) {
        return Err(RtpError::InvalidExtension(0));
    }
    Ok((one_byte, 4 + padded))
}

/// Writes an RTP packet (no CSRCs, no padding) and returns its length. Extensions use the
/// one-byte form when every id is 1..=14 and every value 1..=16 bytes, else the two-byte form.
pub fn write_rtp(out: &mut [u8], f: &RtpFields, payload: &[u8]) -> Result<usize, RtpError> {
    let (one_byte, ext_len) = ext_block_len(f.extensions)?;
    let len = FIXED_HEADER_LEN + ext_len + payload.len();
    if out.len() < len {
        return Err(RtpError::BufferTooSmall {
            need: len,
            have: out.len(),
        });
    }
    out[0] = 0x80 | if ext_len > 0 { 0x10 } else { 0 };
    out[1] = (if f.marker { 0x80 } else { 0 }) | (f.payload_type.0 & 0x7f);
    put_u16(out, 2, f.seq.0);
    put_u32(out, 4, f.timestamp);
    put_u32(out, 8, f.ssrc.0);
    let mut pos = FIXED_HEADER_LEN;
    if ext_len > 0 {
        put_u16(
            out,
            pos,
            if one_byte {
                ONE_BYTE_PROFILE
            } else {
                TWO_BYTE_PROFILE
            },
        );
        put_u16(out, pos + 2, ((ext_len - 4) / 4) as u16);
        pos += 4;
        let end = FIXED_HEADER_LEN + ext_len;
        for &(id, d) in f.extensions {
            if one_byte {
                out[pos] = (id << 4) | (d.len() as u8 - 1);
                pos += 1;
            } else {
                out[pos] = id;
                out[pos + 1] = d.len() as u8;
                pos += 2;
            }
            out[pos..pos + d.len()].copy_from_slice(d);
            pos += d.len();
        }
        out[pos..end].fill(0);
        pos = end;
    }
    out[pos..len].copy_from_slice(payload);
    Ok(len)
}
