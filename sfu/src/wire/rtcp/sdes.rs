//! Source description packets (RFC 3550 §6.5): chunks of (SSRC, items), of which the CNAME
//! item is the one that matters.

use super::{PT_SDES, RawPacket, RtcpError, ensure, write_header};
use crate::types::Ssrc;
use crate::wire::be::{put_u32, u32_at};

/// SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;

/// A validated SDES packet.
#[derive(Debug, Clone, Copy)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

/// One SDES chunk: the source and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: Ssrc,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items `(type, text)` of this chunk.
    pub fn items(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let items = self.items;
        let mut pos = 0;
        std::iter::from_fn(move || {
            let (&t, rest) = items.get(pos..)?.split_first()?;
            let (&l, rest) = rest.split_first()?;
            let text = rest.get(..usize::from(l))?;
            pos += 2 + usize::from(l);
            Some((t, text))
        })
    }

    /// The CNAME item's text.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items()
            .find(|&(t, _)| t == SDES_CNAME)
            .map(|(_, text)| text)
    }
}

/// Reads the chunk at `pos`; returns it and where the next chunk starts.
fn chunk_at(body: &[u8], pos: usize) -> Result<(SdesChunk<'_>, usize), RtcpError> {
    let truncated = RtcpError::Truncated {
        packet_type: PT_SDES,
    };
    if pos + 4 > body.len() {
        return Err(truncated);
    }
    let ssrc = Ssrc(u32_at(body, pos));
    let start = pos + 4;
    let mut p = start;
    loop {
        match body.get(p) {
            None => return Err(truncated),
            Some(0) => break,
            Some(_) => {
                let l = *body.get(p + 1).ok_or(truncated)?;
                p += 2 + usize::from(l);
                if p > body.len() {
                    return Err(truncated);
                }
            }
        }
    }
    let items = &body[start..p];
    // The null item ends the list; the next chunk starts on a 32-bit boundary.
    let next = ((p + 1).div_ceil(4) * 4).min(body.len());
    Ok((SdesChunk { ssrc, items }, next))
}

impl<'a> Sdes<'a> {
    /// Validates an SDES packet taken from [`super::iter_raw`].
    pub fn parse(raw: RawPacket<'a>) -> Result<Self, RtcpError> {
        if raw.header.packet_type != PT_SDES {
            return Err(RtcpError::Truncated {
                packet_type: raw.header.packet_type,
            });
        }
        let mut pos = 0;
        for _ in 0..raw.header.count {
            pos = chunk_at(raw.body, pos)?.1;
        }
        Ok(Sdes {
            count: raw.header.count,
            body: raw.body,
        })
    }

    /// The chunks.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let body = self.body;
        let mut pos = 0;
        (0..self.count).map_while(move |_| {
            let (c, next) = chunk_at(body, pos).ok()?;
            pos = next;
            Some(c)
        })
    }
}

/// Writes an SDES packet with one chunk holding the CNAME of `ssrc` (at most 255 bytes).
pub fn write_sdes_cname(out: &mut [u8], ssrc: Ssrc, cname: &str) -> Result<usize, RtcpError> {
    let text = cname.as_bytes();
    if text.len() > 255 {
        return Err(RtcpError::TextTooLong);
    }
    // Header, SSRC, item type and length, text, at least one null byte, padded to 32 bits.
    let len = (4 + 4 + 2 + text.len() + 1).div_ceil(4) * 4;
    ensure(out, len)?;
    write_header(out, false, 1, PT_SDES, len);
    put_u32(out, 4, ssrc.0);
    out[8] = SDES_CNAME;
    out[9] = text.len() as u8;
    out[10..10 + text.len()].copy_from_slice(text);
    out[10 + text.len()..len].fill(0);
    Ok(len)
}
