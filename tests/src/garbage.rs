//! Malformed datagrams for every first-byte class of the RFC 7983 demultiplexer: STUN (0–3),
//! DTLS (20–63), unassigned (4–19, 64–127, 192–255), RTP/RTCP (128–191) — truncated headers,
//! lying length fields, random bodies. Deterministic from a seed.

/// The RFC 7983 class a datagram's first byte puts it in (or `Empty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ByteClass {
    /// Zero-length datagram.
    Empty,
    /// 0–3.
    Stun,
    /// 4–19 (ZRTP range in RFC 7983; unused by WebRTC).
    Unassigned4To19,
    /// 20–63.
    Dtls,
    /// 64–79 (TURN channels) and 80–127: not expected by a server without TURN.
    Unassigned64To127,
    /// 128–191.
    RtpRtcp,
    /// 192–255.
    Unassigned192To255,
}

impl ByteClass {
    /// Class of a datagram.
    pub fn of(d: &[u8]) -> ByteClass {
        match d.first() {
            None => ByteClass::Empty,
            Some(0..=3) => ByteClass::Stun,
            Some(4..=19) => ByteClass::Unassigned4To19,
            Some(20..=63) => ByteClass::Dtls,
            Some(64..=127) => ByteClass::Unassigned64To127,
            Some(128..=191) => ByteClass::RtpRtcp,
            Some(192..=255) => ByteClass::Unassigned192To255,
        }
    }
}

/// xorshift64*: small, deterministic, good enough for fuzz-like input.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// Between `lo` and `hi` (inclusive) random bytes.
    pub fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let n = self.range(lo, hi) as usize;
        self.bytes(n)
    }
    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

fn stun(rng: &mut Rng) -> Vec<u8> {
    match rng.range(0, 6) {
        // Truncated header: 1..19 bytes.
        0 => {
            let mut d = rng.bytes_in(1, 19);
            d[0] &= 0x03;
            d
        }
        // Header whose length field promises more than is there.
        1 => {
            let mut d = vec![0x00, 0x01, 0x01, 0x00];
            d.extend_from_slice(&STUN_MAGIC);
            d.extend(rng.bytes_in(12, 52));
            d
        }
        // Length not a multiple of 4.
        2 => {
            let body = rng.range(1, 60) as usize | 1;
            let mut d = vec![0x00, 0x01, 0x00, body as u8];
            d.extend_from_slice(&STUN_MAGIC);
            d.extend(rng.bytes(12 + body));
            d
        }
        // Binding request, unknown USERNAME, bogus MESSAGE-INTEGRITY and FINGERPRINT.
        3 => {
            let user = b"nosuchufrag:client1";
            let mut attrs = Vec::new();
            attrs.extend_from_slice(&[0x00, 0x06, 0x00, user.len() as u8]);
            attrs.extend_from_slice(user);
            attrs.resize(attrs.len().div_ceil(4) * 4, 0);
            attrs.extend_from_slice(&[0x00, 0x08, 0x00, 20]);
            attrs.extend(rng.bytes(20));
            attrs.extend_from_slice(&[0x80, 0x28, 0x00, 4]);
            attrs.extend(rng.bytes(4));
            let mut d = vec![0x00, 0x01];
            d.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            d.extend_from_slice(&STUN_MAGIC);
            d.extend(rng.bytes(12));
            d.extend(attrs);
            d
        }
        // Attribute whose length runs past the message.
        4 => {
            let mut d = vec![0x00, 0x01, 0x00, 8];
            d.extend_from_slice(&STUN_MAGIC);
            d.extend(rng.bytes(12));
            d.extend_from_slice(&[0x00, 0x06, 0x01, 0x00]);
            d.extend(rng.bytes(4));
            d
        }
        // Success response / indication out of the blue, or wrong magic cookie.
        5 => {
            let ty: [u8; 2] = if rng.range(0, 1) == 0 {
                [0x01, 0x01]
            } else {
                [0x00, 0x11]
            };
            let mut d = ty.to_vec();
            d.extend_from_slice(&[0x00, 0x00]);
            d.extend_from_slice(&STUN_MAGIC);
            d.extend(rng.bytes(12));
            d
        }
        _ => {
            let mut d = rng.bytes_in(20, 200);
            d[0] &= 0x03;
            d
        }
    }
}

fn dtls(rng: &mut Rng) -> Vec<u8> {
    match rng.range(0, 3) {
        // Record header truncated.
        0 => {
            let mut d = rng.bytes_in(1, 12);
            d[0] = rng.range(20, 63) as u8;
            d
        }
        // Handshake record claiming a long fragment.
        1 => {
            let mut d = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0];
            d.extend_from_slice(&[0x40, 0x00]);
            d.extend(rng.bytes_in(0, 100));
            d
        }
        // ClientHello header with a lying handshake length.
        2 => {
            let frag = rng.bytes_in(12, 80);
            let mut d = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 1];
            d.extend_from_slice(&((frag.len() + 12) as u16).to_be_bytes());
            d.extend_from_slice(&[1, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0]);
            d.extend(frag);
            d
        }
        _ => {
            let mut d = rng.bytes_in(1, 300);
            d[0] = rng.range(20, 63) as u8;
            d
        }
    }
}

fn rtp_rtcp(rng: &mut Rng) -> Vec<u8> {
    match rng.range(0, 6) {
        // Shorter than the fixed RTP header.
        0 => {
            let mut d = rng.bytes_in(1, 11);
            d[0] = 0x80 | (d[0] & 0x3F);
            d
        }
        // CSRC count larger than the datagram.
        1 => {
            let mut d = vec![0x8F, rng.range(96, 127) as u8];
            d.extend(rng.bytes_in(10, 40));
            d
        }
        // Extension header whose length runs past the end.
        2 => {
            let mut d = vec![0x90, 96];
            d.extend(rng.bytes(10));
            d.extend_from_slice(&[0xBE, 0xDE, 0xFF, 0xFF]);
            d.extend(rng.bytes(8));
            d
        }
        // Padding count larger than the payload.
        3 => {
            let mut d = vec![0xA0, 96];
            d.extend(rng.bytes(10));
            d.extend(rng.bytes(3));
            d.push(0xFF);
            d
        }
        // RTCP (PT 192–223) with a length field that disagrees with the datagram.
        4 => {
            let pt = rng.range(192, 223) as u8;
            let mut d = vec![
                0x80 | (rng.next_u64() as u8 & 0x1F),
                pt,
                0x00,
                rng.range(2, 200) as u8,
            ];
            let words = rng.range(0, 3) as usize;
            d.extend(rng.bytes(4 * words));
            d
        }
        // Plausible RTP with random payload: fails SRTP authentication or is from nobody.
        5 => {
            let mut d = vec![0x80, rng.range(96, 127) as u8];
            d.extend(rng.bytes(10));
            d.extend(rng.bytes_in(20, 1100));
            d
        }
        _ => {
            let mut d = rng.bytes_in(1, 64);
            d[0] = rng.range(128, 191) as u8;
            d
        }
    }
}

fn random_in(rng: &mut Rng, lo: u8, hi: u8) -> Vec<u8> {
    let mut d = rng.bytes_in(1, 1200);
    d[0] = rng.range(u64::from(lo), u64::from(hi)) as u8;
    d
}

/// `n` garbage datagrams cycling through every class (a few empty ones included).
pub fn datagrams(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| match i % 8 {
            0 => stun(&mut rng),
            1 => dtls(&mut rng),
            2 => rtp_rtcp(&mut rng),
            3 => random_in(&mut rng, 64, 127),
            4 => random_in(&mut rng, 192, 255),
            5 => rtp_rtcp(&mut rng),
            6 => random_in(&mut rng, 4, 19),
            _ if i % 64 == 7 => Vec::new(),
            _ => stun(&mut rng),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn covers_every_class_deterministically() {
        let a = datagrams(7, 4000);
        assert_eq!(a, datagrams(7, 4000));
        let mut by_class = BTreeMap::new();
        for d in &a {
            *by_class.entry(ByteClass::of(d)).or_insert(0usize) += 1;
            assert!(d.len() <= 1500, "datagram of {} bytes", d.len());
        }
        for class in [
            ByteClass::Empty,
            ByteClass::Stun,
            ByteClass::Unassigned4To19,
            ByteClass::Dtls,
            ByteClass::Unassigned64To127,
            ByteClass::RtpRtcp,
            ByteClass::Unassigned192To255,
        ] {
            assert!(
                by_class.get(&class).copied().unwrap_or(0) > 0,
                "no {class:?} datagrams: {by_class:?}"
            );
        }
    }
}
