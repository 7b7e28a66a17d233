//! The few RTP (RFC 3550 §5.1, RFC 8285) and RTCP (RFC 3550 §6.4) header fields SRTP needs:
//! where the encrypted part starts, the SSRC and the sequence number.

use super::error::SrtpError;

/// Fixed RTP header length.
const RTP_FIXED: usize = 12;
/// RTCP header plus sender SSRC, which SRTCP leaves in the clear.
pub const RTCP_CLEAR: usize = 8;

/// What SRTP reads from an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpFields {
    /// Length of the header including CSRCs and the extension block: the clear part.
    pub header_len: usize,
    pub seq: u16,
    pub ssrc: u32,
}

/// Parses the RTP header at the start of `packet`, which must hold the whole header.
#[inline]
pub fn parse_rtp(packet: &[u8]) -> Result<RtpFields, SrtpError> {
    if packet.len() < RTP_FIXED || packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let cc = usize::from(packet[0] & 0x0f);
    let mut header_len = RTP_FIXED + 4 * cc;
    if packet[0] & 0x10 != 0 {
        let ext = packet
            .get(header_len..header_len + 4)
            .ok_or(SrtpError::Malformed)?;
        header_len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if header_len > packet.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(RtpFields {
        header_len,
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    })
}

/// Reads the sender SSRC of the first RTCP packet in `packet` (at least [`RTCP_CLEAR`] bytes).
#[inline]
pub fn parse_rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    if packet.len() < RTCP_CLEAR || packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    Ok(u32::from_be_bytes([
        packet[4], packet[5], packet[6], packet[7],
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_header_is_twelve_bytes() {
        let p = [
            0x80, 96, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3,
        ];
        let f = parse_rtp(&p).expect("valid");
        assert_eq!(
            f,
            RtpFields {
                header_len: 12,
                seq: 0x1234,
                ssrc: 0xdead_beef
            }
        );
    }

    #[test]
    fn csrcs_and_extension_are_part_of_the_header() {
        let mut p = vec![0x92, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // 2 CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 2]); // one-byte extensions, 2 words
        p.extend_from_slice(&[0x10, 0xff, 0, 0, 0x21, 1, 2, 0]);
        p.extend_from_slice(&[0xaa; 5]);
        assert_eq!(parse_rtp(&p).expect("valid").header_len, 12 + 8 + 4 + 8);
    }

    #[test]
    fn truncated_or_wrong_version_is_malformed() {
        assert_eq!(parse_rtp(&[0x80; 11]), Err(SrtpError::Malformed));
        assert_eq!(parse_rtp(&[0x40; 12]), Err(SrtpError::Malformed));
        let mut p = vec![
            0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xbe, 0xde, 0, 3, 0, 0,
        ];
        assert_eq!(parse_rtp(&p), Err(SrtpError::Malformed));
        p.truncate(14);
        assert_eq!(parse_rtp(&p), Err(SrtpError::Malformed));
        assert_eq!(
            parse_rtcp_ssrc(&[0x80, 200, 0, 6, 1, 2, 3]),
            Err(SrtpError::Malformed)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..64))| {
            if let Ok(f) = parse_rtp(&bytes) {
                prop_assert!(f.header_len <= bytes.len());
            }
            let _ = parse_rtcp_ssrc(&bytes);
        });
    }
}
