//! RTP retransmission payload format (RFC 4588 §4): the RTX packet carries the original header
//! (with its own SSRC, payload type and sequence number) and the original sequence number (OSN)
//! as the first two payload bytes.

use super::{RtpError, RtpHeader, set_payload_type, set_seq, set_ssrc};
use crate::types::{PayloadType, SeqNo, Ssrc};

/// Writes the RTX packet for `original` (whose parsed header is `hdr`) into `out`: header, CSRCs
/// and extensions copied, SSRC/payload type/sequence number replaced, the original sequence
/// number inserted before the payload, padding dropped. Returns the RTX packet length.
pub fn write_rtx(
    original: &[u8],
    hdr: &RtpHeader,
    out: &mut [u8],
    rtx_ssrc: Ssrc,
    rtx_pt: PayloadType,
    rtx_seq: SeqNo,
) -> Result<usize, RtpError> {
    let head = hdr.payload_offset;
    let payload = original
        .get(head..head.saturating_add(hdr.payload_len))
        .ok_or(RtpError::HeaderMismatch)?;
    let len = head + 2 + payload.len();
    if out.len() < len {
        return Err(RtpError::BufferTooSmall {
            need: len,
            have: out.len(),
        });
    }
    out[..head].copy_from_slice(&original[..head]);
    out[0] &= !0x20; // no padding
    out[head..head + 2].copy_from_slice(&hdr.seq.0.to_be_bytes());
    out[head + 2..len].copy_from_slice(payload);
    set_ssrc(out, rtx_ssrc);
    set_payload_type(out, rtx_pt);
    set_seq(out, rtx_seq);
    Ok(len)
}

/// Turns the RTX packet in `buf` (whose parsed header is `hdr`) back into the original packet in
/// place: sequence number from the OSN, `ssrc` and `pt` of the original stream, the OSN removed
/// and any padding dropped. Returns the new packet length.
pub fn unwrap_rtx(
    buf: &mut [u8],
    hdr: &RtpHeader,
    ssrc: Ssrc,
    pt: PayloadType,
) -> Result<usize, RtpError> {
    if hdr.payload_len < 2 {
        return Err(RtpError::MissingOsn);
    }
    let head = hdr.payload_offset;
    let end = head.saturating_add(hdr.payload_len);
    if end > buf.len() || head < super::FIXED_HEADER_LEN {
        return Err(RtpError::HeaderMismatch);
    }
    let osn = SeqNo(u16::from_be_bytes([buf[head], buf[head + 1]]));
    buf.copy_within(head + 2..end, head);
    buf[0] &= !0x20;
    set_seq(buf, osn);
    set_ssrc(buf, ssrc);
    set_payload_type(buf, pt);
    Ok(end - 2)
}
