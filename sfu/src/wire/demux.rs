//! Demultiplexing of one UDP 5-tuple carrying STUN, DTLS, RTP and RTCP by the first bytes of a
//! datagram (RFC 7983 §7, RTP/RTCP split per RFC 5761 §4).

/// What a datagram on the media port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketClass {
    /// STUN (first byte 0..=3), at least a 20-byte header.
    Stun,
    /// DTLS (first byte 20..=63).
    Dtls,
    /// RTP or SRTP (first byte 128..=191, second byte not an RTCP packet type), at least the
    /// 12-byte fixed header.
    Rtp,
    /// RTCP or SRTCP (first byte 128..=191, second byte 192..=223), at least the 8 bytes that
    /// carry the sender SSRC.
    Rtcp,
    /// Anything else, including truncated packets of the classes above.
    Unknown,
}

/// Smallest STUN message: the header.
const STUN_MIN: usize = 20;
/// Smallest RTP packet: the fixed header.
const RTP_MIN: usize = 12;
/// Smallest RTCP packet worth looking at: common header plus sender SSRC (SRTCP needs the SSRC
/// to find its context).
const RTCP_MIN: usize = 8;

/// Classifies a datagram by its first byte (RFC 7983) and, for RTP/RTCP, its second (RFC 5761:
/// RTCP packet types 192..=223 overlap RTP payload types 64..=95 with the marker bit set, which
/// are therefore never used for RTP).
pub fn classify(buf: &[u8]) -> PacketClass {
    let Some(&first) = buf.first() else {
        return PacketClass::Unknown;
    };
    match first {
        0..=3 if buf.len() >= STUN_MIN => PacketClass::Stun,
        20..=63 => PacketClass::Dtls,
        128..=191 => match buf.get(1) {
            Some(192..=223) if buf.len() >= RTCP_MIN => PacketClass::Rtcp,
            Some(192..=223) => PacketClass::Unknown,
            Some(_) if buf.len() >= RTP_MIN => PacketClass::Rtp,
            _ => PacketClass::Unknown,
        },
        _ => PacketClass::Unknown,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classify_sorts_each_protocol_by_first_byte() {
        let mut stun = [0u8; 20];
        stun[1] = 1;
        assert_eq!(classify(&stun), PacketClass::Stun);
        assert_eq!(classify(&[22, 0xfe, 0xfd, 0, 0]), PacketClass::Dtls);
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 96;
        assert_eq!(classify(&rtp), PacketClass::Rtp);
        rtp[1] = 0x80 | 96; // marker bit set, still RTP
        assert_eq!(classify(&rtp), PacketClass::Rtp);
        let rr = [0x81, 201, 0, 7, 1, 2, 3, 4];
        assert_eq!(classify(&rr), PacketClass::Rtcp);
        let fb = [0x8f, 205, 0, 7, 1, 2, 3, 4];
        assert_eq!(classify(&fb), PacketClass::Rtcp);
    }

    #[test]
    fn classify_splits_rtcp_at_the_rfc5761_boundaries() {
        for (second, want) in [
            (191u8, PacketClass::Rtp),
            (192, PacketClass::Rtcp),
            (223, PacketClass::Rtcp),
            (224, PacketClass::Rtp),
        ] {
            let mut p = [0u8; 12];
            p[0] = 0x80;
            p[1] = second;
            assert_eq!(classify(&p), want, "second byte {second}");
        }
    }

    #[test]
    fn classify_rejects_truncated_and_foreign_packets() {
        assert_eq!(classify(&[]), PacketClass::Unknown);
        assert_eq!(classify(&[0, 1, 0, 0]), PacketClass::Unknown); // short STUN
        assert_eq!(classify(&[0x80, 96, 0, 1]), PacketClass::Unknown); // short RTP
        assert_eq!(classify(&[0x80, 200, 0, 1]), PacketClass::Unknown); // short RTCP
        assert_eq!(classify(&[0x80]), PacketClass::Unknown);
        assert_eq!(classify(&[4; 40]), PacketClass::Unknown); // between STUN and DTLS (ZRTP range)
        assert_eq!(classify(&[64; 40]), PacketClass::Unknown); // TURN channel range
        assert_eq!(classify(&[0x40; 12]), PacketClass::Unknown); // RTP version 1
        assert_eq!(classify(&[0xc0; 12]), PacketClass::Unknown); // version 3
    }

    proptest! {
        #[test]
        fn classify_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = classify(&buf);
        }
    }
}
