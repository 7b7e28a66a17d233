//! Generic NACK (RFC 4585 §6.2.1): lost sequence numbers as (PID, BLP) pairs, where the
//! bitmask BLP flags losses among the 16 packets after PID.

use super::{FMT_NACK, PT_RTPFB, RtcpError, ensure, feedback_ssrcs, write_header};
use crate::types::{SeqNo, Ssrc};
use crate::wire::be::{put_u16, put_u32, u16_at};

/// A generic NACK message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    pub sender: Ssrc,
    pub media: Ssrc,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    /// Parses the body of a generic NACK.
    pub fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        let (sender, media) = feedback_ssrcs(PT_RTPFB, body)?;
        let fci = &body[8..];
        if !fci.len().is_multiple_of(4) {
            return Err(RtcpError::Truncated {
                packet_type: PT_RTPFB,
            });
        }
        Ok(Nack { sender, media, fci })
    }

    /// The raw (PID, BLP) pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (SeqNo, u16)> + 'a {
        self.fci
            .chunks_exact(4)
            .map(|c| (SeqNo(u16::from_be_bytes([c[0], c[1]])), u16_at(c, 2)))
    }

    /// Every sequence number reported lost, pair by pair in wire order.
    pub fn lost(&self) -> NackLost<'a> {
        NackLost {
            fci: self.fci,
            pos: 0,
            bit: 0,
        }
    }
}

/// Iterator expanding the (PID, BLP) pairs of a NACK into sequence numbers.
#[derive(Debug, Clone)]
pub struct NackLost<'a> {
    fci: &'a [u8],
    pos: usize,
    /// 0: the PID itself is next; 1..=16: BLP bit `bit - 1` is next.
    bit: u8,
}

impl Iterator for NackLost<'_> {
    type Item = SeqNo;

    fn next(&mut self) -> Option<SeqNo> {
        loop {
            let pair = self.fci.get(self.pos..self.pos + 4)?;
            let pid = u16_at(pair, 0);
            let blp = u16_at(pair, 2);
            if self.bit == 0 {
                self.bit = 1;
                return Some(SeqNo(pid));
            }
            while self.bit <= 16 {
                let b = self.bit;
                self.bit += 1;
                if blp & (1 << (b - 1)) != 0 {
                    return Some(SeqNo(pid.wrapping_add(u16::from(b))));
                }
            }
            self.pos += 4;
            self.bit = 0;
        }
    }
}

/// Groups `lost` (ascending in wrap-aware order) into (PID, BLP) pairs, calling `emit` for each;
/// returns the number of pairs.
fn pack(lost: &[SeqNo], mut emit: impl FnMut(usize, u16, u16)) -> usize {
    let mut pairs = 0;
    let mut iter = lost.iter();
    let Some(&first) = iter.next() else { return 0 };
    let (mut pid, mut blp) = (first.0, 0u16);
    for s in iter {
        let d = s.0.wrapping_sub(pid);
        match d {
            0 => {}
            1..=16 => blp |= 1 << (d - 1),
            _ => {
                emit(pairs, pid, blp);
                pairs += 1;
                (pid, blp) = (s.0, 0);
            }
        }
    }
    emit(pairs, pid, blp);
    pairs + 1
}

/// Writes a generic NACK from `sender` about `media` reporting `lost`, which should be ascending
/// in wrap-aware order (then the pairs are the fewest possible; other orders are still reported
/// correctly, with more pairs). Duplicates are dropped.
pub fn write_nack(
    out: &mut [u8],
    sender: Ssrc,
    media: Ssrc,
    lost: &[SeqNo],
) -> Result<usize, RtcpError> {
    if lost.is_empty() {
        return Err(RtcpError::Empty);
    }
    let pairs = pack(lost, |_, _, _| {});
    let len = 12 + 4 * pairs;
    if len / 4 > 0x1_0000 {
        return Err(RtcpError::TooManyItems);
    }
    ensure(out, len)?;
    write_header(out, false, FMT_NACK, PT_RTPFB, len);
    put_u32(out, 4, sender.0);
    put_u32(out, 8, media.0);
    pack(lost, |i, pid, blp| {
        put_u16(out, 12 + 4 * i, pid);
        put_u16(out, 14 + 4 * i, blp);
    });
    Ok(len)
}
