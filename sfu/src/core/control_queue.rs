//! A fixed ring of datagram slots for control-path output (STUN responses, DTLS flights, RTCP,
//! retransmissions), filled while handling input and drained by `poll_transmit`.

use std::net::SocketAddr;

use crate::io::{SLOT_SIZE, TxBatch};

/// FIFO of datagrams in slots allocated once.
#[derive(Debug)]
pub struct ControlQueue {
    data: Box<[u8]>,
    meta: Box<[(Option<SocketAddr>, u16)]>,
    head: usize,
    len: usize,
}

impl ControlQueue {
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        ControlQueue {
            data: vec![0u8; slots * SLOT_SIZE].into_boxed_slice(),
            meta: vec![(None, 0); slots].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots free.
    pub fn free(&self) -> usize {
        self.meta.len() - self.len
    }

    /// Writes a datagram for `dest` into the next slot: `write` returns its length or `None` to
    /// abandon. Returns false when the queue is full or the write was abandoned.
    pub fn push_with(
        &mut self,
        dest: SocketAddr,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        let cap = self.meta.len();
        if self.len == cap {
            return false;
        }
        let i = (self.head + self.len) % cap;
        let slot = &mut self.data[i * SLOT_SIZE..(i + 1) * SLOT_SIZE];
        match write(slot) {
            Some(n) if n > 0 && n <= SLOT_SIZE => {
                self.meta[i] = (Some(dest), n as u16);
                self.len += 1;
                true
            }
            _ => false,
        }
    }

    /// Moves queued datagrams into `batch` until it is full or the queue is empty.
    pub fn drain_into(&mut self, batch: &mut TxBatch) {
        let cap = self.meta.len();
        while self.len > 0 && !batch.is_full() {
            let i = self.head;
            let (dest, n) = self.meta[i];
            let bytes = &self.data[i * SLOT_SIZE..i * SLOT_SIZE + n as usize];
            if let Some(dest) = dest {
                batch.push(dest, bytes);
            }
            self.head = (self.head + 1) % cap;
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_queue_is_fifo_and_bounded() {
        let d: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut q = ControlQueue::new(3);
        for i in 0..3u8 {
            assert!(q.push_with(d, |s| {
                s[0] = i;
                Some(1)
            }));
        }
        assert!(!q.push_with(d, |_| Some(1)), "full queue refuses");
        let mut b = TxBatch::new(2);
        q.drain_into(&mut b);
        assert_eq!(q.len(), 1);
        assert_eq!(b.get(0).1, &[0]);
        assert_eq!(b.get(1).1, &[1]);
        b.clear();
        assert!(q.push_with(d, |s| {
            s[0] = 9;
            Some(1)
        }));
        q.drain_into(&mut b);
        assert_eq!(b.get(0).1, &[2]);
        assert_eq!(b.get(1).1, &[9]);
        assert!(q.is_empty());
    }
}
