//! Receiver reports and report blocks (RFC 3550 §6.4.2).

use super::{PT_RR, RtcpError, ensure, write_header};
use crate::types::Ssrc;
use crate::wire::be::{put_u24, put_u32, u24_at, u32_at};

/// Size of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Most report blocks one SR or RR can carry (5-bit count).
pub const MAX_REPORT_BLOCKS: usize = 31;

/// Reception statistics about one source (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: Ssrc,
    /// Fraction lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24-bit signed on the wire; clamped when written).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub ext_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn read(b: &[u8]) -> ReportBlock {
        let raw = u24_at(b, 5);
        // Sign-extend the 24-bit field.
        let cumulative_lost = ((raw << 8) as i32) >> 8;
        ReportBlock {
            ssrc: Ssrc(u32_at(b, 0)),
            fraction_lost: b[4],
            cumulative_lost,
            ext_highest_seq: u32_at(b, 8),
            jitter: u32_at(b, 12),
            last_sr: u32_at(b, 16),
            delay_since_last_sr: u32_at(b, 20),
        }
    }

    pub(super) fn write(&self, b: &mut [u8]) {
        put_u32(b, 0, self.ssrc.0);
        b[4] = self.fraction_lost;
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff);
        put_u24(b, 5, (lost as u32) & 0x00ff_ffff);
        put_u32(b, 8, self.ext_highest_seq);
        put_u32(b, 12, self.jitter);
        put_u32(b, 16, self.last_sr);
        put_u32(b, 20, self.delay_since_last_sr);
    }
}

/// Iterator over the report blocks of an SR or RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl<'a> ReportBlocks<'a> {
    pub(super) fn new(blocks: &'a [u8]) -> Self {
        ReportBlocks {
            chunks: blocks.chunks_exact(REPORT_BLOCK_LEN),
        }
    }
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        self.chunks.next().map(ReportBlock::read)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

/// A receiver report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// SSRC of the reporting receiver.
    pub ssrc: Ssrc,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// Parses the body of an RR whose header count is `count`. Profile-specific extensions after
    /// the blocks are ignored.
    pub fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let end = 4 + REPORT_BLOCK_LEN * usize::from(count);
        if body.len() < end {
            return Err(RtcpError::Truncated { packet_type: PT_RR });
        }
        Ok(ReceiverReport {
            ssrc: Ssrc(u32_at(body, 0)),
            blocks: &body[4..end],
        })
    }

    /// The report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks::new(self.blocks)
    }
}

/// Writes a receiver report from `sender` with up to 31 report blocks.
pub fn write_rr(out: &mut [u8], sender: Ssrc, blocks: &[ReportBlock]) -> Result<usize, RtcpError> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(RtcpError::TooManyItems);
    }
    let len = 8 + REPORT_BLOCK_LEN * blocks.len();
    ensure(out, len)?;
    write_header(out, false, blocks.len() as u8, PT_RR, len);
    put_u32(out, 4, sender.0);
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut out[8 + REPORT_BLOCK_LEN * i..]);
    }
    Ok(len)
}
