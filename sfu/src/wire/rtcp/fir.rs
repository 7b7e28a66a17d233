//! Full intra request (RFC 5104 §4.3.1): one FCI entry (SSRC, command sequence number) per
//! source asked for a decoder refresh.

use super::{FMT_FIR, PT_PSFB, RtcpError, ensure, feedback_ssrcs, write_header};
use crate::types::Ssrc;
use crate::wire::be::put_u32;

/// A FIR message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fir<'a> {
    pub sender: Ssrc,
    /// The media source field of the common feedback header (RFC 5104 sets it to 0).
    pub media: Ssrc,
    fci: &'a [u8],
}

impl<'a> Fir<'a> {
    /// Parses the body of a FIR message.
    pub fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        let (sender, media) = feedback_ssrcs(PT_PSFB, body)?;
        let fci = &body[8..];
        if !fci.len().is_multiple_of(8) {
            return Err(RtcpError::Truncated {
                packet_type: PT_PSFB,
            });
        }
        Ok(Fir { sender, media, fci })
    }

    /// The FCI entries: the SSRC asked for a refresh and the command sequence number.
    pub fn entries(&self) -> impl Iterator<Item = (Ssrc, u8)> + 'a {
        self.fci
            .chunks_exact(8)
            .map(|c| (Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])), c[4]))
    }
}

/// Writes a FIR from `sender` asking `media` for a keyframe; `seq_nr` increments with each new
/// request (repeats of one request keep it). The header's media field is 0 as RFC 5104 asks;
/// `media` goes into the FCI entry.
pub fn write_fir(
    out: &mut [u8],
    sender: Ssrc,
    media: Ssrc,
    seq_nr: u8,
) -> Result<usize, RtcpError> {
    let len = 20;
    ensure(out, len)?;
    write_header(out, false, FMT_FIR, PT_PSFB, len);
    put_u32(out, 4, sender.0);
    put_u32(out, 8, 0);
    put_u32(out, 12, media.0);
    out[16] = seq_nr;
    out[17..20].fill(0);
    Ok(len)
}
