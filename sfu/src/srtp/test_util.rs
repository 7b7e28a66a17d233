//! Helpers shared by the SRTP unit tests.

/// Decodes a hex string (whitespace allowed); panics on bad input, which only tests supply.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).expect("ascii");
            u8::from_str_radix(s, 16).expect("hex digit")
        })
        .collect()
}

/// An RTP packet: version 2, payload type 96, the given SSRC and sequence number, a payload of
/// `payload_len` bytes, and `room` spare bytes at the end for the SRTP tag.
pub fn rtp_packet(ssrc: u32, seq: u16, payload_len: usize, room: usize) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p.resize(p.len() + room, 0);
    p
}

/// An RTCP receiver report from `ssrc` with one report block, plus `room` spare bytes.
pub fn rtcp_packet(ssrc: u32, room: usize) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[
        0x11, 0x22, 0x33, 0x44, 0, 0, 0, 5, 0, 0, 0x10, 0x20, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    p.resize(p.len() + room, 0);
    p
}
