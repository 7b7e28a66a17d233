//! A batch of outgoing datagrams in fixed-size, pre-allocated slots: the core writes egress packets
//! straight into a slot (header rewritten, encrypted in place) and an I/O backend sends the batch.

use std::net::SocketAddr;

/// Size of one packet slot, received or sent. Larger datagrams are dropped as truncated.
pub const SLOT_SIZE: usize = 2048;

/// Destination and length of one datagram in a [`TxBatch`].
#[derive(Debug, Clone, Copy)]
pub struct TxMeta {
    pub dest: SocketAddr,
    pub len: u16,
}

/// Outgoing datagrams. Memory is allocated once in [`TxBatch::new`] and never moves, so a
/// backend may hand slot pointers to the kernel until the batch is cleared.
pub struct TxBatch {
    data: Box<[u8]>,
    meta: Vec<TxMeta>,
    capacity: usize,
}

impl std::fmt::Debug for TxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxBatch")
            .field("len", &self.meta.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl TxBatch {
    pub fn new(capacity: usize) -> Self {
        TxBatch {
            data: vec![0u8; capacity * SLOT_SIZE].into_boxed_slice(),
            meta: Vec::with_capacity(capacity),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn len(&self) -> usize {
        self.meta.len()
    }
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }
    pub fn is_full(&self) -> bool {
        self.meta.len() == self.capacity
    }
    pub fn remaining(&self) -> usize {
        self.capacity - self.meta.len()
    }
    pub fn clear(&mut self) {
        self.meta.clear();
    }

    /// Writes one datagram into the next free slot: `write` fills the slot and returns the
    /// datagram's length, or `None` to abandon the slot. Returns false when the batch is full or
    /// the write was abandoned.
    #[inline]
    pub fn push_with(
        &mut self,
        dest: SocketAddr,
        write: impl FnOnce(&mut [u8; SLOT_SIZE]) -> Option<usize>,
    ) -> bool {
        let i = self.meta.len();
        if i == self.capacity {
            return false;
        }
        let slot: &mut [u8; SLOT_SIZE] = (&mut self.data[i * SLOT_SIZE..(i + 1) * SLOT_SIZE])
            .try_into()
            .expect("slot slice has SLOT_SIZE bytes by construction");
        match write(slot) {
            Some(len) if len > 0 && len <= SLOT_SIZE => {
                self.meta.push(TxMeta {
                    dest,
                    len: len as u16,
                });
                true
            }
            _ => false,
        }
    }

    /// Copies `bytes` into the next free slot.
    pub fn push(&mut self, dest: SocketAddr, bytes: &[u8]) -> bool {
        if bytes.len() > SLOT_SIZE {
            return false;
        }
        self.push_with(dest, |slot| {
            slot[..bytes.len()].copy_from_slice(bytes);
            Some(bytes.len())
        })
    }

    /// The `i`-th datagram.
    pub fn get(&self, i: usize) -> (TxMeta, &[u8]) {
        let m = self.meta[i];
        (m, &self.data[i * SLOT_SIZE..i * SLOT_SIZE + m.len as usize])
    }

    /// Destination and length of the `i`-th datagram.
    #[inline]
    pub fn meta(&self, i: usize) -> TxMeta {
        self.meta[i]
    }

    pub fn iter(&self) -> impl Iterator<Item = (TxMeta, &[u8])> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Start of slot `i` for building iovecs; valid until the batch is dropped.
    pub fn slot_ptr(&self, i: usize) -> *const u8 {
        self.data[i * SLOT_SIZE..].as_ptr()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn batch_fills_to_capacity_and_clears() {
        let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut b = TxBatch::new(2);
        assert!(b.push(dest, b"one"));
        assert!(
            !b.push_with(dest, |_| None),
            "abandoned write takes no slot"
        );
        assert!(b.push(dest, b"two"));
        assert!(b.is_full());
        assert!(!b.push(dest, b"three"));
        assert_eq!(b.get(1).1, b"two");
        b.clear();
        assert!(b.is_empty());
    }
}
