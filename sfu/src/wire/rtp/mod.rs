//! RTP packets (RFC 3550) as a borrowed view over the raw bytes: the fixed header, CSRCs, header
//! extensions (RFC 8285, in `ext`), padding, in-place rewriting, RTX (RFC 4588, in `rtx`) and a
//! writer for tests and load generation (in `writer`).

mod ext;
mod rtx;
mod transport_seq;
mod writer;

pub use ext::{
    AbsSendTime, AudioLevel, ExtBlock, ExtForm, ExtIter, parse_transport_cc_seq, remap_extensions,
};
pub use rtx::{unwrap_rtx, write_rtx};
pub use transport_seq::{copy_with_transport_seq, write_padding_packet};
pub use writer::{RtpFields, write_rtp};

use super::be::{put_u16, put_u32, u16_at, u32_at};
use crate::types::{PayloadType, SeqNo, Ssrc};

/// Size of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;

/// Why an RTP packet could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet shorter than the 12-byte RTP header")]
    TooShort,
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("CSRC list runs past the end of the packet")]
    CsrcOverflow,
    #[error("header extension runs past the end of the packet")]
    ExtensionOverflow,
    #[error("padding length {0} is zero or larger than the payload")]
    BadPadding(u8),
    #[error("header fields do not describe this buffer")]
    HeaderMismatch,
    #[error("output buffer holds {have} bytes, {need} needed")]
    BufferTooSmall { need: usize, have: usize },
    #[error("RTX packet has no original sequence number")]
    MissingOsn,
    #[error("header extension id {0} or its length cannot be encoded")]
    InvalidExtension(u8),
    #[error("header extension value has the wrong length")]
    ExtensionValueLength,
}

/// The parsed header of an RTP packet: fields plus the offsets of the extension block, payload
/// and padding inside the buffer it came from. It holds no borrow, so the buffer may be
/// rewritten in place while the header is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: PayloadType,
    pub seq: SeqNo,
    pub timestamp: u32,
    pub ssrc: Ssrc,
    /// Number of CSRC identifiers after the fixed header.
    pub csrc_count: u8,
    /// The header extension block, when the X bit is set.
    pub ext: Option<ExtBlock>,
    /// Offset of the first payload byte (the header length).
    pub payload_offset: usize,
    /// Payload length, padding excluded.
    pub payload_len: usize,
    /// Number of padding bytes at the end (0 when the P bit is clear).
    pub padding_len: usize,
}

impl RtpHeader {
    /// Parses and validates the header of `buf`: version 2, CSRCs, extension block and padding
    /// must all fit the buffer.
    pub fn parse(buf: &[u8]) -> Result<RtpHeader, RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        let b0 = buf[0];
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_ext = b0 & 0x10 != 0;
        let csrc_count = b0 & 0x0f;
        let mut off = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
        if off > buf.len() {
            return Err(RtpError::CsrcOverflow);
        }
        let ext = if has_ext {
            if off + 4 > buf.len() {
                return Err(RtpError::ExtensionOverflow);
            }
            let profile = u16_at(buf, off);
            let len = 4 * usize::from(u16_at(buf, off + 2));
            let offset = off + 4;
            if offset + len > buf.len() {
                return Err(RtpError::ExtensionOverflow);
            }
            off = offset + len;
            Some(ExtBlock {
                profile,
                offset,
                len,
            })
        } else {
            None
        };
        let padding_len = if has_padding {
            // The buffer is non-empty: it holds at least the fixed header.
            let p = buf[buf.len() - 1];
            if p == 0 || usize::from(p) > buf.len() - off {
                return Err(RtpError::BadPadding(p));
            }
            usize::from(p)
        } else {
            0
        };
        Ok(RtpHeader {
            marker: buf[1] & 0x80 != 0,
            payload_type: PayloadType(buf[1] & 0x7f),
            seq: SeqNo(u16_at(buf, 2)),
            timestamp: u32_at(buf, 4),
            ssrc: Ssrc(u32_at(buf, 8)),
            csrc_count,
            ext,
            payload_offset: off,
            payload_len: buf.len() - off - padding_len,
            padding_len,
        })
    }

    /// Header length in bytes (fixed header, CSRCs and extension block).
    pub fn header_len(&self) -> usize {
        self.payload_offset
    }

    /// Length of the whole packet this header was parsed from.
    pub fn packet_len(&self) -> usize {
        self.payload_offset + self.payload_len + self.padding_len
    }

    /// The payload (padding excluded) inside `buf`, the buffer this header was parsed from.
    /// Empty when `buf` is not that buffer and is too short.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.payload_offset..self.payload_offset.saturating_add(self.payload_len))
            .unwrap_or(&[])
    }

    /// The CSRC identifiers.
    pub fn csrcs<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = Ssrc> + 'a {
        let end = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count);
        buf.get(FIXED_HEADER_LEN..end)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// Iterates the header extension elements `(id, data)` in either RFC 8285 form. Yields
    /// nothing when there is no extension block or its profile is neither form.
    pub fn extensions<'a>(&self, buf: &'a [u8]) -> ExtIter<'a> {
        match self.ext {
            Some(ext) => ExtIter::new(ext.form(), ext.data(buf)),
            None => ExtIter::new(ExtForm::Other, &[]),
        }
    }

    /// The data of the first extension element with this id.
    pub fn extension<'a>(&self, buf: &'a [u8], id: u8) -> Option<&'a [u8]> {
        self.extensions(buf).find(|&(i, _)| i == id).map(|(_, d)| d)
    }
}

/// Sets the sequence number of the packet in `buf` (no-op on a buffer shorter than the header).
pub fn set_seq(buf: &mut [u8], seq: SeqNo) {
    if buf.len() >= FIXED_HEADER_LEN {
        put_u16(buf, 2, seq.0);
    }
}

/// Sets the RTP timestamp of the packet in `buf` (no-op on a buffer shorter than the header).
pub fn set_timestamp(buf: &mut [u8], ts: u32) {
    if buf.len() >= FIXED_HEADER_LEN {
        put_u32(buf, 4, ts);
    }
}

/// Sets the SSRC of the packet in `buf` (no-op on a buffer shorter than the header).
pub fn set_ssrc(buf: &mut [u8], ssrc: Ssrc) {
    if buf.len() >= FIXED_HEADER_LEN {
        put_u32(buf, 8, ssrc.0);
    }
}

/// Sets the payload type, keeping the marker bit (no-op on a buffer shorter than the header).
pub fn set_payload_type(buf: &mut [u8], pt: PayloadType) {
    if buf.len() >= FIXED_HEADER_LEN {
        buf[1] = (buf[1] & 0x80) | (pt.0 & 0x7f);
    }
}

/// Sets or clears the marker bit (no-op on a buffer shorter than the header).
pub fn set_marker(buf: &mut [u8], marker: bool) {
    if buf.len() >= FIXED_HEADER_LEN {
        buf[1] = (buf[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
