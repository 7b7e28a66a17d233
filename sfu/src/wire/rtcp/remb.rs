//! Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03): an application layer
//! feedback message ("REMB") with an exponent/mantissa bit rate and the SSRCs it applies to.

use super::{FMT_AFB, PT_PSFB, RtcpError, ensure, feedback_ssrcs, write_header};
use crate::types::{Bitrate, Ssrc};
use crate::wire::be::{put_u32, u32_at};

const REMB_ID: &[u8; 4] = b"REMB";
const MAX_MANTISSA: u64 = 0x3_ffff;

/// A REMB message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remb<'a> {
    pub sender: Ssrc,
    pub bitrate: Bitrate,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    /// Parses an application layer feedback body: `None` when it is not a REMB message.
    pub fn parse(body: &'a [u8]) -> Option<Result<Self, RtcpError>> {
        if body.get(8..12)? != REMB_ID {
            return None;
        }
        Some(Self::parse_remb(body))
    }

    fn parse_remb(body: &'a [u8]) -> Result<Self, RtcpError> {
        let truncated = RtcpError::Truncated {
            packet_type: PT_PSFB,
        };
        let (sender, _) = feedback_ssrcs(PT_PSFB, body)?;
        if body.len() < 16 {
            return Err(truncated);
        }
        let n = usize::from(body[12]);
        let word = u32_at(body, 12);
        let exp = (word >> 18) & 0x3f;
        let mantissa = u64::from(word & 0x3_ffff);
        let bitrate = if mantissa != 0 && exp > mantissa.leading_zeros() {
            u64::MAX
        } else {
            mantissa << exp
        };
        let ssrcs = body.get(16..16 + 4 * n).ok_or(truncated)?;
        Ok(Remb {
            sender,
            bitrate: Bitrate(bitrate),
            ssrcs,
        })
    }

    /// The SSRCs the estimate applies to.
    pub fn ssrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        self.ssrcs
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }
}

/// Writes a REMB from `sender` for up to 255 `ssrcs`. The bit rate is rounded down to what an
/// 18-bit mantissa and 6-bit exponent can carry.
pub fn write_remb(
    out: &mut [u8],
    sender: Ssrc,
    bitrate: Bitrate,
    ssrcs: &[Ssrc],
) -> Result<usize, RtcpError> {
    if ssrcs.len() > 255 {
        return Err(RtcpError::TooManyItems);
    }
    let len = 20 + 4 * ssrcs.len();
    ensure(out, len)?;
    let mut exp = 0u32;
    while (bitrate.0 >> exp) > MAX_MANTISSA {
        exp += 1;
    }
    let mantissa = (bitrate.0 >> exp) as u32;
    write_header(out, false, FMT_AFB, PT_PSFB, len);
    put_u32(out, 4, sender.0);
    put_u32(out, 8, 0);
    out[12..16].copy_from_slice(REMB_ID);
    put_u32(
        out,
        16,
        ((ssrcs.len() as u32) << 24) | (exp << 18) | mantissa,
    );
    for (i, s) in ssrcs.iter().enumerate() {
        put_u32(out, 20 + 4 * i, s.0);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any body carrying the "REMB" identifier parses or fails cleanly, and a parsed one
        /// lists exactly the SSRCs its count field announces.
        #[test]
        fn arbitrary_remb_bodies_parse_or_fail_cleanly(
            head in proptest::collection::vec(any::<u8>(), 8..9),
            tail in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut body = head;
            body.extend_from_slice(REMB_ID);
            body.extend_from_slice(&tail);
            match Remb::parse(&body) {
                Some(Ok(r)) => prop_assert_eq!(r.ssrcs().count(), usize::from(body[12])),
                Some(Err(_)) => {}
                None => prop_assert!(false, "a REMB identifier was not recognised"),
            }
        }
    }
}
