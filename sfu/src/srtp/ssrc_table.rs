//! A small fixed-capacity map from SSRC to per-stream SRTP state: storage is reserved when the
//! context is built, so lookups and inserts on the packet path never allocate.

use super::error::SrtpError;

/// SSRC-keyed state with a hard capacity, searched linearly (with a last-hit shortcut); a WebRTC
/// session has a handful of SSRCs per direction, where a scan beats hashing.
#[derive(Debug, Clone)]
pub struct SsrcTable<S> {
    ssrcs: Vec<u32>,
    states: Vec<S>,
    last: usize,
    capacity: usize,
}

impl<S> SsrcTable<S> {
    /// An empty table that can hold `capacity` SSRCs; reserves all of it now.
    pub fn with_capacity(capacity: usize) -> Self {
        SsrcTable {
            ssrcs: Vec::with_capacity(capacity),
            states: Vec::with_capacity(capacity),
            last: 0,
            capacity,
        }
    }

    /// Number of SSRCs held.
    pub fn len(&self) -> usize {
        self.ssrcs.len()
    }

    /// Most SSRCs the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether an insert of a new SSRC would fail.
    pub fn is_full(&self) -> bool {
        self.ssrcs.len() >= self.capacity
    }

    /// The slot of `ssrc`, if present.
    #[inline]
    pub fn find(&mut self, ssrc: u32) -> Option<usize> {
        if self.ssrcs.get(self.last) == Some(&ssrc) {
            return Some(self.last);
        }
        let slot = self.ssrcs.iter().position(|&s| s == ssrc)?;
        self.last = slot;
        Some(slot)
    }

    /// The state in `slot` (from [`find`](Self::find) or [`insert`](Self::insert)).
    #[inline]
    pub fn state_mut(&mut self, slot: usize) -> &mut S {
        &mut self.states[slot]
    }

    /// The state of `ssrc`, if present.
    pub fn get(&self, ssrc: u32) -> Option<&S> {
        let slot = self.ssrcs.iter().position(|&s| s == ssrc)?;
        Some(&self.states[slot])
    }

    /// Adds `ssrc` (not yet present) and returns its slot; fails when the table is full.
    pub fn insert(&mut self, ssrc: u32, state: S) -> Result<usize, SrtpError> {
        debug_assert!(!self.ssrcs.contains(&ssrc));
        if self.is_full() {
            return Err(SrtpError::TooManySsrcs(self.capacity));
        }
        // Within the reserved capacity: these pushes never reallocate.
        self.ssrcs.push(ssrc);
        self.states.push(state);
        self.last = self.ssrcs.len() - 1;
        Ok(self.last)
    }

    /// Forgets `ssrc`; returns whether it was present.
    pub fn remove(&mut self, ssrc: u32) -> bool {
        let Some(slot) = self.ssrcs.iter().position(|&s| s == ssrc) else {
            return false;
        };
        self.ssrcs.swap_remove(slot);
        self.states.swap_remove(slot);
        self.last = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_and_remove() {
        let mut t = SsrcTable::with_capacity(4);
        assert_eq!(t.len(), 0);
        let a = t.insert(10, "a").expect("room");
        let b = t.insert(20, "b").expect("room");
        assert_eq!(t.find(10), Some(a));
        assert_eq!(t.find(20), Some(b));
        assert_eq!(t.find(30), None);
        *t.state_mut(a) = "A";
        assert_eq!(t.get(10), Some(&"A"));
        assert!(t.remove(10));
        assert!(!t.remove(10));
        assert_eq!(t.find(10), None);
        assert_eq!(t.get(20), Some(&"b"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn insert_beyond_capacity_fails_without_growing() {
        let mut t = SsrcTable::with_capacity(2);
        t.insert(1, ()).expect("room");
        t.insert(2, ()).expect("room");
        assert!(t.is_full());
        assert_eq!(t.insert(3, ()), Err(SrtpError::TooManySsrcs(2)));
        assert_eq!(t.len(), 2);
        assert_eq!(t.ssrcs.capacity(), 2);
    }
}
