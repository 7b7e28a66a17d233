//! RTCP (RFC 3550 §6) compound packets as borrowed views, with the feedback messages of
//! RFC 4585 (NACK, PLI), RFC 5104 (FIR), draft-alvestrand-rmcat-remb (REMB) and
//! draft-holmer-rmcat-transport-wide-cc-extensions-01 (transport-wide congestion control), and
//! writers for each into a caller's buffer.

mod bye;
mod fir;
mod nack;
mod pli;
mod remb;
mod rr;
mod sdes;
mod sr;
pub mod twcc;

pub use bye::{Bye, write_bye};
pub use fir::{Fir, write_fir};
pub use nack::{Nack, NackLost, write_nack};
pub use pli::write_pli;
pub use remb::{Remb, write_remb};
pub use rr::{ReceiverReport, ReportBlock, ReportBlocks, write_rr};
pub use sdes::{Sdes, SdesChunk, write_sdes_cname};
pub use sr::{SenderInfo, SenderReport, write_sr};
pub use twcc::{TransportCc, TwccHeader, write_twcc};

use super::be::{put_u16, u16_at, u32_at};
use crate::types::Ssrc;

/// Sender report (RFC 3550 §6.4.1).
pub const PT_SR: u8 = 200;
/// Receiver report (RFC 3550 §6.4.2).
pub const PT_RR: u8 = 201;
/// Source description (RFC 3550 §6.5).
pub const PT_SDES: u8 = 202;
/// Goodbye (RFC 3550 §6.6).
pub const PT_BYE: u8 = 203;
/// Application-defined (RFC 3550 §6.7).
pub const PT_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585 §6.2).
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585 §6.3).
pub const PT_PSFB: u8 = 206;

/// RTPFB FMT of a generic NACK.
pub const FMT_NACK: u8 = 1;
/// RTPFB FMT of transport-wide congestion control feedback.
pub const FMT_TWCC: u8 = 15;
/// PSFB FMT of a picture loss indication.
pub const FMT_PLI: u8 = 1;
/// PSFB FMT of a full intra request.
pub const FMT_FIR: u8 = 4;
/// PSFB FMT of application layer feedback (REMB).
pub const FMT_AFB: u8 = 15;

/// Why RTCP could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("fewer than 4 bytes left for an RTCP header")]
    TooShort,
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("RTCP length field runs past the end of the datagram")]
    LengthOverflow,
    #[error("RTCP padding count is zero or larger than the packet")]
    BadPadding,
    #[error("RTCP packet type {packet_type} is too short for its contents")]
    Truncated { packet_type: u8 },
    #[error("output buffer holds {have} bytes, {need} needed")]
    BufferTooSmall { need: usize, have: usize },
    #[error("more items than one RTCP packet can carry")]
    TooManyItems,
    #[error("nothing to write")]
    Empty,
    #[error("text longer than 255 bytes")]
    TextTooLong,
    #[error("transport-cc status symbol 3 is reserved")]
    TwccReservedSymbol,
    #[error("transport-cc receive delta out of the 16-bit range")]
    TwccDeltaOutOfRange,
}

/// The common header of one RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// P bit: the packet ends in padding (already removed from [`RawPacket::body`]).
    pub padding: bool,
    /// The 5-bit count field (reception report count, source count, or feedback FMT).
    pub count: u8,
    pub packet_type: u8,
    /// Length of the whole packet in bytes, header and padding included.
    pub len: usize,
}

/// One packet of a compound packet: its header and the bytes after the header, padding removed.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    pub header: RtcpHeader,
    pub body: &'a [u8],
}

/// Iterator over the packets of a compound RTCP datagram, without interpreting them; stops after
/// the first error.
#[derive(Debug, Clone)]
pub struct RawIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Splits a compound RTCP datagram into its packets.
pub fn iter_raw(buf: &[u8]) -> RawIter<'_> {
    RawIter {
        buf,
        pos: 0,
        failed: false,
    }
}

impl<'a> RawIter<'a> {
    fn split(&mut self) -> Result<RawPacket<'a>, RtcpError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < 4 {
            return Err(RtcpError::TooShort);
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let len = 4 * (usize::from(u16_at(rest, 2)) + 1);
        if len > rest.len() {
            return Err(RtcpError::LengthOverflow);
        }
        let padding = rest[0] & 0x20 != 0;
        let mut body = &rest[4..len];
        if padding {
            let p = usize::from(rest[len - 1]);
            if p == 0 || p > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = &body[..body.len() - p];
        }
        self.pos += len;
        Ok(RawPacket {
            header: RtcpHeader {
                padding,
                count: rest[0] & 0x1f,
                packet_type: rest[1],
                len,
            },
            body,
        })
    }
}

impl<'a> Iterator for RawIter<'a> {
    type Item = Result<RawPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.split();
        self.failed = r.is_err();
        Some(r)
    }
}

/// One parsed RTCP packet.
#[derive(Debug, Clone, Copy)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    /// Source description; parse its chunks with [`Sdes::parse`] on the raw packet if needed.
    Sdes,
    Bye(Bye<'a>),
    Nack(Nack<'a>),
    Pli {
        sender: Ssrc,
        media: Ssrc,
    },
    Fir(Fir<'a>),
    Remb(Remb<'a>),
    TransportCc(TransportCc<'a>),
    /// A packet type or feedback format this module does not interpret.
    Other {
        packet_type: u8,
        fmt: u8,
    },
}

impl<'a> RtcpPacket<'a> {
    /// Interprets one raw packet.
    pub fn parse(raw: RawPacket<'a>) -> Result<RtcpPacket<'a>, RtcpError> {
        let RawPacket { header: h, body } = raw;
        let other = RtcpPacket::Other {
            packet_type: h.packet_type,
            fmt: h.count,
        };
        Ok(match (h.packet_type, h.count) {
            (PT_SR, count) => RtcpPacket::SenderReport(SenderReport::parse(count, body)?),
            (PT_RR, count) => RtcpPacket::ReceiverReport(ReceiverReport::parse(count, body)?),
            (PT_SDES, _) => RtcpPacket::Sdes,
            (PT_BYE, count) => RtcpPacket::Bye(Bye::parse(count, body)?),
            (PT_RTPFB, FMT_NACK) => RtcpPacket::Nack(Nack::parse(body)?),
            (PT_RTPFB, FMT_TWCC) => RtcpPacket::TransportCc(TransportCc::parse(body)?),
            (PT_PSFB, FMT_PLI) => {
                let (sender, media) = feedback_ssrcs(PT_PSFB, body)?;
                RtcpPacket::Pli { sender, media }
            }
            (PT_PSFB, FMT_FIR) => RtcpPacket::Fir(Fir::parse(body)?),
            (PT_PSFB, FMT_AFB) => match Remb::parse(body) {
                Some(r) => RtcpPacket::Remb(r?),
                None => other,
            },
            _ => other,
        })
    }
}

/// Iterator over the interpreted packets of a compound RTCP datagram; stops after an error.
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    raw: RawIter<'a>,
}

/// Iterates the packets of a compound RTCP datagram.
pub fn iter(buf: &[u8]) -> RtcpIter<'_> {
    RtcpIter { raw: iter_raw(buf) }
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.raw.next()?.and_then(RtcpPacket::parse);
        if r.is_err() {
            self.raw.failed = true;
        }
        Some(r)
    }
}

/// The sender and media SSRCs that open every feedback message (RFC 4585 §6.1).
fn feedback_ssrcs(packet_type: u8, body: &[u8]) -> Result<(Ssrc, Ssrc), RtcpError> {
    if body.len() < 8 {
        return Err(RtcpError::Truncated { packet_type });
    }
    Ok((Ssrc(u32_at(body, 0)), Ssrc(u32_at(body, 4))))
}

/// Checks that `len` bytes fit `out`.
fn ensure(out: &[u8], len: usize) -> Result<(), RtcpError> {
    if out.len() < len {
        return Err(RtcpError::BufferTooSmall {
            need: len,
            have: out.len(),
        });
    }
    Ok(())
}

/// Writes the common header of a packet of `len` bytes (a multiple of 4, at most 65536 words).
fn write_header(out: &mut [u8], padding: bool, count: u8, packet_type: u8, len: usize) {
    out[0] = 0x80 | if padding { 0x20 } else { 0 } | (count & 0x1f);
    out[1] = packet_type;
    put_u16(out, 2, (len / 4 - 1) as u16);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
