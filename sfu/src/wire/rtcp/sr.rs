//! Sender reports (RFC 3550 §6.4.1).

use super::rr::{MAX_REPORT_BLOCKS, REPORT_BLOCK_LEN, ReportBlock, ReportBlocks};
use super::{PT_SR, RtcpError, ensure, write_header};
use crate::types::Ssrc;
use crate::wire::be::{put_u32, put_u64, u32_at, u64_at};

/// Length of the sender SSRC and sender info.
const INFO_LEN: usize = 24;

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ssrc: Ssrc,
    /// 64-bit NTP timestamp (32.32 fixed point seconds since 1900).
    pub ntp: u64,
    /// The same instant on the RTP clock.
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// A sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    pub ssrc: Ssrc,
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    /// Parses the body of an SR whose header count is `count`.
    pub fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let end = INFO_LEN + REPORT_BLOCK_LEN * usize::from(count);
        if body.len() < end {
            return Err(RtcpError::Truncated { packet_type: PT_SR });
        }
        Ok(SenderReport {
            ssrc: Ssrc(u32_at(body, 0)),
            ntp: u64_at(body, 4),
            rtp_timestamp: u32_at(body, 12),
            packet_count: u32_at(body, 16),
            octet_count: u32_at(body, 20),
            blocks: &body[INFO_LEN..end],
        })
    }

    /// The sender information.
    pub fn info(&self) -> SenderInfo {
        SenderInfo {
            ssrc: self.ssrc,
            ntp: self.ntp,
            rtp_timestamp: self.rtp_timestamp,
            packet_count: self.packet_count,
            octet_count: self.octet_count,
        }
    }

    /// The report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks::new(self.blocks)
    }
}

/// Writes a sender report with up to 31 report blocks.
pub fn write_sr(
    out: &mut [u8],
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, RtcpError> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(RtcpError::TooManyItems);
    }
    let len = 4 + INFO_LEN + REPORT_BLOCK_LEN * blocks.len();
    ensure(out, len)?;
    write_header(out, false, blocks.len() as u8, PT_SR, len);
    put_u32(out, 4, info.ssrc.0);
    put_u64(out, 8, info.ntp);
    put_u32(out, 16, info.rtp_timestamp);
    put_u32(out, 20, info.packet_count);
    put_u32(out, 24, info.octet_count);
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut out[28 + REPORT_BLOCK_LEN * i..]);
    }
    Ok(len)
}
