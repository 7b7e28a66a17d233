//! Goodbye packets (RFC 3550 §6.6).

use super::{PT_BYE, RtcpError, ensure, write_header};
use crate::types::Ssrc;
use crate::wire::be::put_u32;

/// A BYE packet: the sources leaving and an optional reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// The reason text, when present.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    /// Parses the body of a BYE whose header count is `count`.
    pub fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let truncated = RtcpError::Truncated {
            packet_type: PT_BYE,
        };
        let end = 4 * usize::from(count);
        let ssrcs = body.get(..end).ok_or(truncated)?;
        let reason = match body.get(end) {
            None | Some(0) => None,
            Some(&l) => Some(
                body.get(end + 1..end + 1 + usize::from(l))
                    .ok_or(truncated)?,
            ),
        };
        Ok(Bye { ssrcs, reason })
    }

    /// The SSRCs that leave.
    pub fn ssrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        self.ssrcs
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }
}

/// Writes a BYE for up to 31 sources, without a reason.
pub fn write_bye(out: &mut [u8], ssrcs: &[Ssrc]) -> Result<usize, RtcpError> {
    if ssrcs.len() > 31 {
        return Err(RtcpError::TooManyItems);
    }
    let len = 4 + 4 * ssrcs.len();
    ensure(out, len)?;
    write_header(out, false, ssrcs.len() as u8, PT_BYE, len);
    for (i, s) in ssrcs.iter().enumerate() {
        put_u32(out, 4 + 4 * i, s.0);
    }
    Ok(len)
}
