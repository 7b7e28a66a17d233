//! Picture loss indication (RFC 4585 §6.3.1): a payload-specific feedback message without FCI.

use super::{FMT_PLI, PT_PSFB, RtcpError, ensure, write_header};
use crate::types::Ssrc;
use crate::wire::be::put_u32;

/// Writes a PLI from `sender` about `media`.
pub fn write_pli(out: &mut [u8], sender: Ssrc, media: Ssrc) -> Result<usize, RtcpError> {
    let len = 12;
    ensure(out, len)?;
    write_header(out, false, FMT_PLI, PT_PSFB, len);
    put_u32(out, 4, sender.0);
    put_u32(out, 8, media.0);
    Ok(len)
}
