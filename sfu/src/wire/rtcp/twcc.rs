//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01
//! §3.1): the arrival status of a range of transport-wide sequence numbers as run-length and
//! status vector chunks, followed by receive deltas in 250 µs units.
//!
//! Status symbol 3 (reserved) is rejected, as libwebrtc does.

use super::{FMT_TWCC, PT_RTPFB, RtcpError, ensure, feedback_ssrcs, write_header};
use crate::types::{SeqNo, Ssrc};
use crate::wire::be::{put_u16, put_u24, put_u32, u16_at, u24_at};

/// One receive delta unit in microseconds.
pub const DELTA_UNIT_US: i64 = 250;
/// One reference time unit in microseconds (64 ms).
pub const REFERENCE_UNIT_US: i64 = 64_000;
/// Bytes before the first chunk: common header, SSRCs, base, count, reference time, fb count.
const FIXED_LEN: usize = 20;
/// Longest run a run-length chunk can encode.
const MAX_RUN: usize = 0x1fff;

const NOT_RECEIVED: u8 = 0;
const SMALL: u8 = 1;
const LARGE: u8 = 2;

/// The fields of a feedback packet besides its packet statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TwccHeader {
    pub sender: Ssrc,
    pub media: Ssrc,
    /// Transport-wide sequence number of the first packet described.
    pub base_seq: SeqNo,
    /// 24-bit reference time in 64 ms units; the first receive delta is relative to it.
    pub reference_time: u32,
    /// Feedback packet counter (wraps).
    pub fb_pkt_count: u8,
}

/// A parsed transport-cc feedback message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportCc<'a> {
    pub sender: Ssrc,
    pub media: Ssrc,
    pub base_seq: SeqNo,
    /// Number of packets described, from `base_seq` on.
    pub status_count: u16,
    /// 24-bit reference time in 64 ms units.
    pub reference_time: u32,
    pub fb_pkt_count: u8,
    chunks: &'a [u8],
    deltas: &'a [u8],
}

/// Size in bytes of the receive delta a status symbol carries.
fn delta_size(symbol: u8) -> usize {
    match symbol {
        SMALL => 1,
        LARGE => 2,
        _ => 0,
    }
}

/// Number of statuses in `chunk` and the symbol of status `i` in it.
fn chunk_len(chunk: u16) -> usize {
    if chunk & 0x8000 == 0 {
        usize::from(chunk & 0x1fff)
    } else if chunk & 0x4000 == 0 {
        14
    } else {
        7
    }
}

fn chunk_symbol(chunk: u16, i: usize) -> u8 {
    if chunk & 0x8000 == 0 {
        ((chunk >> 13) & 3) as u8
    } else if chunk & 0x4000 == 0 {
        ((chunk >> (13 - i)) & 1) as u8
    } else {
        ((chunk >> (12 - 2 * i)) & 3) as u8
    }
}

impl<'a> TransportCc<'a> {
    /// Parses and validates the body of a transport-cc message: the chunks must describe
    /// `status_count` packets and the receive deltas they call for must be present.
    pub fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        let truncated = RtcpError::Truncated {
            packet_type: PT_RTPFB,
        };
        let (sender, media) = feedback_ssrcs(PT_RTPFB, body)?;
        if body.len() < FIXED_LEN - 4 {
            return Err(truncated);
        }
        let status_count = u16_at(body, 10);
        let mut remaining = usize::from(status_count);
        let mut pos = FIXED_LEN - 4;
        let mut delta_bytes = 0;
        while remaining > 0 {
            if pos + 2 > body.len() {
                return Err(truncated);
            }
            let chunk = u16_at(body, pos);
            pos += 2;
            let n = chunk_len(chunk).min(remaining);
            if chunk & 0x8000 == 0 {
                // A run: one symbol for all of it.
                let s = chunk_symbol(chunk, 0);
                if s == 3 {
                    return Err(RtcpError::TwccReservedSymbol);
                }
                delta_bytes += n * delta_size(s);
            } else {
                for i in 0..n {
                    let s = chunk_symbol(chunk, i);
                    if s == 3 {
                        return Err(RtcpError::TwccReservedSymbol);
                    }
                    delta_bytes += delta_size(s);
                }
            }
            remaining -= n;
        }
        let deltas = body.get(pos..pos + delta_bytes).ok_or(truncated)?;
        Ok(TransportCc {
            sender,
            media,
            base_seq: SeqNo(u16_at(body, 8)),
            status_count,
            reference_time: u24_at(body, 12),
            fb_pkt_count: body[15],
            chunks: &body[FIXED_LEN - 4..pos],
            deltas,
        })
    }

    /// The header fields.
    pub fn header(&self) -> TwccHeader {
        TwccHeader {
            sender: self.sender,
            media: self.media,
            base_seq: self.base_seq,
            reference_time: self.reference_time,
            fb_pkt_count: self.fb_pkt_count,
        }
    }

    /// The reference time in microseconds (24-bit wrapping clock of 64 ms units).
    pub fn reference_time_us(&self) -> i64 {
        i64::from(self.reference_time) * REFERENCE_UNIT_US
    }

    /// Every packet described, in sequence order: `(seq, None)` when not received, `(seq,
    /// Some(delta_us))` when received, where the delta is from the previous received packet's
    /// arrival (or from the reference time for the first).
    pub fn packets(&self) -> TwccPackets<'a> {
        TwccPackets {
            chunks: self.chunks,
            deltas: self.deltas,
            chunk_pos: 0,
            chunk: 0,
            in_chunk: 0,
            chunk_n: 0,
            delta_pos: 0,
            seq: self.base_seq.0,
            remaining: self.status_count,
        }
    }
}

/// Iterator over the packet statuses of a transport-cc message.
#[derive(Debug, Clone)]
pub struct TwccPackets<'a> {
    chunks: &'a [u8],
    deltas: &'a [u8],
    chunk_pos: usize,
    chunk: u16,
    in_chunk: usize,
    chunk_n: usize,
    delta_pos: usize,
    seq: u16,
    remaining: u16,
}

impl Iterator for TwccPackets<'_> {
    type Item = (SeqNo, Option<i64>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        while self.in_chunk >= self.chunk_n {
            let c = self.chunks.get(self.chunk_pos..self.chunk_pos + 2)?;
            self.chunk = u16_at(c, 0);
            self.chunk_pos += 2;
            self.chunk_n = chunk_len(self.chunk);
            self.in_chunk = 0;
        }
        let symbol = chunk_symbol(self.chunk, self.in_chunk);
        self.in_chunk += 1;
        let delta = match symbol {
            SMALL => {
                let b = *self.deltas.get(self.delta_pos)?;
                self.delta_pos += 1;
                Some(i64::from(b) * DELTA_UNIT_US)
            }
            LARGE => {
                let b = self.deltas.get(self.delta_pos..self.delta_pos + 2)?;
                self.delta_pos += 2;
                Some(i64::from(u16_at(b, 0) as i16) * DELTA_UNIT_US)
            }
            _ => None,
        };
        let seq = SeqNo(self.seq);
        self.seq = self.seq.wrapping_add(1);
        self.remaining -= 1;
        Some((seq, delta))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

/// Status symbol for a receive delta in microseconds (rounded to 250 µs units).
fn symbol_for(delta: Option<i64>) -> Result<(u8, i64), RtcpError> {
    let Some(us) = delta else {
        return Ok((NOT_RECEIVED, 0));
    };
    let ticks = us
        .saturating_add(DELTA_UNIT_US / 2)
        .div_euclid(DELTA_UNIT_US);
    if (0..=255).contains(&ticks) {
        Ok((SMALL, ticks))
    } else if (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&ticks) {
        Ok((LARGE, ticks))
    } else {
        Err(RtcpError::TwccDeltaOutOfRange)
    }
}

/// Packs status symbols into chunks the way libwebrtc does: a chunk stays open while it can
/// still be a run (all symbols equal), a 14-symbol one-bit vector (no large deltas) or a 7-symbol
/// two-bit vector; when a symbol no longer fits, the chunk is emitted.
#[derive(Debug, Clone, Copy)]
struct ChunkEncoder {
    symbols: [u8; 14],
    size: usize,
    all_same: bool,
    has_large: bool,
}

impl ChunkEncoder {
    const fn new() -> Self {
        ChunkEncoder {
            symbols: [0; 14],
            size: 0,
            all_same: true,
            has_large: false,
        }
    }

    fn can_add(&self, s: u8) -> bool {
        self.size < 7
            || (self.size < 14 && !self.has_large && s != LARGE)
            || (self.size < MAX_RUN && self.all_same && self.symbols[0] == s)
    }

    fn add(&mut self, s: u8) {
        if self.size < 14 {
            self.symbols[self.size] = s;
        }
        self.all_same = (self.size == 0 || self.all_same) && self.symbols[0] == s;
        self.has_large |= s == LARGE;
        self.size += 1;
    }

    /// Emits chunks until `s` fits, then adds it.
    fn push(&mut self, s: u8, emit: &mut impl FnMut(u16)) {
        while !self.can_add(s) {
            emit(self.emit());
        }
        self.add(s);
    }

    /// Emits the full chunk (called only when a symbol does not fit).
    fn emit(&mut self) -> u16 {
        if self.all_same {
            let c = run_chunk(self.symbols[0], self.size);
            *self = ChunkEncoder::new();
            return c;
        }
        if self.size == 14 {
            let c = one_bit_chunk(&self.symbols);
            *self = ChunkEncoder::new();
            return c;
        }
        // 8..=13 mixed symbols with a large delta among or after them: ship the first seven.
        let c = two_bit_chunk(&self.symbols[..7]);
        let rest = self.size - 7;
        let mut next = ChunkEncoder::new();
        for i in 0..rest {
            next.add(self.symbols[7 + i]);
        }
        *self = next;
        c
    }

    /// Emits whatever is left.
    fn finish(&mut self, emit: &mut impl FnMut(u16)) {
        if self.size == 0 {
            return;
        }
        let c = if self.all_same {
            run_chunk(self.symbols[0], self.size)
        } else if self.size <= 7 {
            two_bit_chunk(&self.symbols[..self.size])
        } else {
            one_bit_chunk(&self.symbols[..self.size])
        };
        *self = ChunkEncoder::new();
        emit(c);
    }

    /// Chunks still to be emitted for the symbols held (0 or 1).
    fn pending(&self) -> usize {
        usize::from(self.size > 0)
    }
}

fn run_chunk(symbol: u8, len: usize) -> u16 {
    (u16::from(symbol) << 13) | (len as u16 & 0x1fff)
}

fn one_bit_chunk(symbols: &[u8]) -> u16 {
    symbols
        .iter()
        .enumerate()
        .fold(0x8000, |c, (i, &s)| c | (u16::from(s & 1) << (13 - i)))
}

fn two_bit_chunk(symbols: &[u8]) -> u16 {
    symbols
        .iter()
        .enumerate()
        .fold(0xc000, |c, (i, &s)| c | (u16::from(s) << (12 - 2 * i)))
}

/// Exact encoded size of a feedback message, built up one packet status at a time.
#[derive(Debug, Clone, Copy)]
pub struct TwccSizer {
    encoder: ChunkEncoder,
    chunks: usize,
    delta_bytes: usize,
    statuses: usize,
}

impl Default for TwccSizer {
    fn default() -> Self {
        Self::new()
    }
}

impl TwccSizer {
    pub const fn new() -> Self {
        TwccSizer {
            encoder: ChunkEncoder::new(),
            chunks: 0,
            delta_bytes: 0,
            statuses: 0,
        }
    }

    /// Adds one packet status (`None`: not received; `Some(delta_us)`: received).
    pub fn push(&mut self, delta: Option<i64>) -> Result<(), RtcpError> {
        if self.statuses == usize::from(u16::MAX) {
            return Err(RtcpError::TooManyItems);
        }
        let (s, _) = symbol_for(delta)?;
        let mut emitted = 0;
        self.encoder.push(s, &mut |_| emitted += 1);
        self.chunks += emitted;
        self.delta_bytes += delta_size(s);
        self.statuses += 1;
        Ok(())
    }

    /// Number of statuses pushed.
    pub fn statuses(&self) -> usize {
        self.statuses
    }

    /// Length of the message, padding included.
    pub fn len(&self) -> usize {
        let raw = FIXED_LEN + 2 * (self.chunks + self.encoder.pending()) + self.delta_bytes;
        raw.div_ceil(4) * 4
    }

    /// True when no status was pushed.
    pub fn is_empty(&self) -> bool {
        self.statuses == 0
    }
}

/// Writes a transport-cc message describing `packets` (one per sequence number from
/// `hdr.base_seq`: `None` not received, `Some(delta_us)` received that long after the previous
/// received packet, or after the reference time for the first). Deltas are rounded to 250 µs.
pub fn write_twcc(
    out: &mut [u8],
    hdr: &TwccHeader,
    packets: &[Option<i64>],
) -> Result<usize, RtcpError> {
    write_twcc_iter(out, hdr, packets.iter().copied())
}

/// [`write_twcc`] over an iterator (walked twice: once to size, once to write).
pub fn write_twcc_iter<I>(out: &mut [u8], hdr: &TwccHeader, packets: I) -> Result<usize, RtcpError>
where
    I: Iterator<Item = Option<i64>> + Clone,
{
    let mut sizer = TwccSizer::new();
    for p in packets.clone() {
        sizer.push(p)?;
    }
    if sizer.is_empty() {
        return Err(RtcpError::Empty);
    }
    let len = sizer.len();
    ensure(out, len)?;
    let raw = FIXED_LEN + 2 * (sizer.chunks + sizer.encoder.pending()) + sizer.delta_bytes;
    let padding = len - raw;
    write_header(out, padding > 0, FMT_TWCC, PT_RTPFB, len);
    put_u32(out, 4, hdr.sender.0);
    put_u32(out, 8, hdr.media.0);
    put_u16(out, 12, hdr.base_seq.0);
    put_u16(out, 14, sizer.statuses as u16);
    put_u24(out, 16, hdr.reference_time & 0x00ff_ffff);
    out[19] = hdr.fb_pkt_count;

    let (head, tail) = out.split_at_mut(FIXED_LEN + 2 * (sizer.chunks + sizer.encoder.pending()));
    let mut chunk_pos = FIXED_LEN;
    // The second walk must match the first; the bounds checks below only keep an iterator
    // that does not (a broken `Clone`) from writing out of place.
    let mismatch = RtcpError::BufferTooSmall {
        need: len + 2,
        have: len,
    };
    let mut overflow = false;
    let mut emit = |c: u16| match head.get_mut(chunk_pos..chunk_pos + 2) {
        Some(b) => {
            b.copy_from_slice(&c.to_be_bytes());
            chunk_pos += 2;
        }
        None => overflow = true,
    };
    let mut delta_pos = 0;
    let mut encoder = ChunkEncoder::new();
    for p in packets.take(sizer.statuses) {
        let (s, ticks) = symbol_for(p)?;
        encoder.push(s, &mut emit);
        let n = delta_size(s);
        let Some(d) = tail.get_mut(delta_pos..delta_pos + n) else {
            return Err(mismatch);
        };
        match s {
            SMALL => d[0] = ticks as u8,
            LARGE => d.copy_from_slice(&(ticks as i16).to_be_bytes()),
            _ => {}
        }
        delta_pos += n;
    }
    encoder.finish(&mut emit);
    if overflow || delta_pos != sizer.delta_bytes {
        return Err(mismatch);
    }
    if padding > 0 {
        let pad = &mut tail[delta_pos..delta_pos + padding];
        pad.fill(0);
        pad[padding - 1] = padding as u8;
    }
    Ok(len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
