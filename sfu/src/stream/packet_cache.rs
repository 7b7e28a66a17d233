//! The cache of recently received RTP packets of one stream that answers NACKs with
//! retransmissions (RFC 4585 §6.2.1, RFC 4588): a ring of fixed-size slots indexed by extended
//! sequence number, allocated once.

use std::time::Instant;

use crate::types::ExtSeq;

/// Largest packet a slot holds; larger packets are not cached.
pub const MAX_CACHED_PACKET: usize = 1500;

const EMPTY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Meta {
    seq: u64,
    len: u16,
    keyframe: bool,
    arrival: Option<Instant>,
}

const EMPTY_META: Meta = Meta {
    seq: EMPTY,
    len: 0,
    keyframe: false,
    arrival: None,
};

/// A packet found in the cache.
#[derive(Debug, Clone, Copy)]
pub struct CachedPacket<'a> {
    /// The packet as it was inserted.
    pub data: &'a [u8],
    /// When it was inserted.
    pub arrival: Instant,
    /// Whether the inserter marked it as part of a keyframe.
    pub keyframe: bool,
}

/// A ring of packet slots; slot `seq % slots` holds the packet with extended number `seq` until a
/// packet `slots` numbers later replaces it.
pub struct PacketCache {
    meta: Box<[Meta]>,
    data: Box<[u8]>,
}

impl std::fmt::Debug for PacketCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketCache")
            .field("slots", &self.meta.len())
            .finish_non_exhaustive()
    }
}

impl PacketCache {
    /// A cache of `slots` packets (at least one); all memory is allocated here.
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            meta: vec![EMPTY_META; slots].into_boxed_slice(),
            data: vec![0; slots * MAX_CACHED_PACKET].into_boxed_slice(),
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.meta.len()
    }

    /// Stores `packet` as sequence number `seq`, replacing whatever its slot held. Returns false
    /// (and stores nothing) if the packet is larger than [`MAX_CACHED_PACKET`].
    pub fn insert(&mut self, seq: ExtSeq, packet: &[u8], now: Instant, keyframe: bool) -> bool {
        if packet.len() > MAX_CACHED_PACKET || seq.0 == EMPTY {
            return false;
        }
        let idx = self.index(seq);
        let start = idx * MAX_CACHED_PACKET;
        self.data[start..start + packet.len()].copy_from_slice(packet);
        self.meta[idx] = Meta {
            seq: seq.0,
            len: packet.len() as u16,
            keyframe,
            arrival: Some(now),
        };
        true
    }

    /// The packet stored as `seq`, if its slot still holds exactly that number.
    pub fn get(&self, seq: ExtSeq) -> Option<CachedPacket<'_>> {
        let idx = self.index(seq);
        let m = &self.meta[idx];
        if m.seq != seq.0 {
            return None;
        }
        let start = idx * MAX_CACHED_PACKET;
        Some(CachedPacket {
            data: &self.data[start..start + usize::from(m.len)],
            arrival: m.arrival?,
            keyframe: m.keyframe,
        })
    }

    /// Empties every slot.
    pub fn clear(&mut self) {
        self.meta.fill(EMPTY_META);
    }

    fn index(&self, seq: ExtSeq) -> usize {
        (seq.0 % self.meta.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn returns_what_was_inserted() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(8);
        assert!(c.insert(ExtSeq(100), b"hello", t0, true));
        let p = c.get(ExtSeq(100)).expect("just inserted");
        assert_eq!(p.data, b"hello");
        assert_eq!(p.arrival, t0);
        assert!(p.keyframe);
    }

    #[test]
    fn missing_seq_is_none() {
        let c = PacketCache::new(8);
        assert!(c.get(ExtSeq(3)).is_none());
    }

    #[test]
    fn newer_packet_evicts_the_one_sharing_its_slot() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(8);
        c.insert(ExtSeq(100), b"old", t0, false);
        c.insert(ExtSeq(108), b"new", t0 + Duration::from_millis(1), false);
        assert!(c.get(ExtSeq(100)).is_none());
        assert_eq!(c.get(ExtSeq(108)).map(|p| p.data), Some(&b"new"[..]));
    }

    #[test]
    fn same_wire_number_a_wrap_later_is_not_confused() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(1024);
        c.insert(ExtSeq(65536 + 5), b"a", t0, false);
        assert!(c.get(ExtSeq(2 * 65536 + 5)).is_none());
    }

    #[test]
    fn oversized_packet_is_refused() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(4);
        c.insert(ExtSeq(1), b"kept", t0, false);
        assert!(!c.insert(ExtSeq(5), &[0u8; MAX_CACHED_PACKET + 1], t0, false));
        assert!(c.get(ExtSeq(5)).is_none());
        assert!(c.insert(ExtSeq(5), &[7u8; MAX_CACHED_PACKET], t0, false));
        assert_eq!(
            c.get(ExtSeq(5)).map(|p| p.data.len()),
            Some(MAX_CACHED_PACKET)
        );
    }

    #[test]
    fn shorter_packet_does_not_expose_old_bytes() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(1);
        c.insert(ExtSeq(1), b"longer packet", t0, false);
        c.insert(ExtSeq(2), b"ab", t0, false);
        assert_eq!(c.get(ExtSeq(2)).map(|p| p.data), Some(&b"ab"[..]));
    }

    #[test]
    fn clear_empties_every_slot() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(4);
        c.insert(ExtSeq(1), b"x", t0, false);
        c.clear();
        assert!(c.get(ExtSeq(1)).is_none());
    }
}
