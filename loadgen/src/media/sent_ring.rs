//! The publisher's ring of recently sent RTP packets (plaintext), indexed by sequence number, from
//! which NACKed packets are retransmitted as RTX (RFC 4588). Fixed memory, allocated once.

use super::MAX_RTP;

/// A ring of `slots` packets; a packet is found while fewer than `slots` newer ones were stored.
#[derive(Debug)]
pub struct SentRing {
    data: Box<[u8]>,
    lens: Box<[u16]>,
    seqs: Box<[u32]>,
    mask: usize,
}

/// Marks an empty slot (sequence numbers are 16-bit).
const EMPTY: u32 = u32::MAX;

impl SentRing {
    /// A ring of `slots` packets (rounded up to a power of two).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1).next_power_of_two();
        SentRing {
            data: vec![0u8; slots * MAX_RTP].into_boxed_slice(),
            lens: vec![0u16; slots].into_boxed_slice(),
            seqs: vec![EMPTY; slots].into_boxed_slice(),
            mask: slots - 1,
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.mask + 1
    }

    /// Stores a copy of `packet` (at most [`MAX_RTP`] bytes; longer ones are not stored).
    pub fn store(&mut self, seq: u16, packet: &[u8]) {
        if packet.len() > MAX_RTP {
            return;
        }
        let i = usize::from(seq) & self.mask;
        let at = i * MAX_RTP;
        self.data[at..at + packet.len()].copy_from_slice(packet);
        self.lens[i] = packet.len() as u16;
        self.seqs[i] = u32::from(seq);
    }

    /// The packet sent with `seq`, if still in the ring.
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        let i = usize::from(seq) & self.mask;
        if self.seqs[i] != u32::from(seq) {
            return None;
        }
        let at = i * MAX_RTP;
        Some(&self.data[at..at + usize::from(self.lens[i])])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn packets_are_found_until_overwritten_by_newer_ones() {
        let mut r = SentRing::new(4);
        for s in 0u16..6 {
            r.store(s, &[s as u8; 10]);
        }
        assert!(r.get(0).is_none() && r.get(1).is_none());
        assert_eq!(r.get(5).unwrap(), &[5u8; 10]);
        assert_eq!(r.get(2).unwrap().len(), 10);
        assert!(r.get(6).is_none());
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = SentRing::new(8);
        r.store(65535, b"a");
        r.store(0, b"b");
        assert_eq!(r.get(65535).unwrap(), b"a");
        assert_eq!(r.get(0).unwrap(), b"b");
    }
}
