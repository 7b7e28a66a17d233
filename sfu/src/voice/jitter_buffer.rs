//! A small jitter buffer for one Opus stream of a mix, keyed by RTP timestamp: packets wait in
//! fixed slots until the mixer's 20 ms tick plays them in timestamp order. A missing packet with
//! later ones waiting is reported lost (the decoder conceals it, or recovers it from the next
//! packet's in-band FEC); nothing waiting is an underrun (silence); a stream that jumps far ahead
//! (DTX, a restart) is re-anchored. Slots are allocated once; nothing allocates per packet.

/// Largest payload kept (one datagram's worth).
pub const MAX_PAYLOAD: usize = 1500;

/// Why a packet was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JitterError {
    #[error("payload of {0} bytes is larger than a slot")]
    TooLarge(usize),
    #[error("empty payload")]
    Empty,
    #[error("packet arrived after its time was played")]
    Late,
    #[error("packet already buffered")]
    Duplicate,
}

#[derive(Debug, Clone)]
struct Slot {
    ts: u32,
    len: u16,
    full: bool,
    data: [u8; MAX_PAYLOAD],
}

/// What the buffer holds for the next play position.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// The packet due now.
    Packet(&'a [u8]),
    /// The packet due now is missing but `following` waits (its FEC may recover the loss).
    Lost { following: &'a [u8] },
    /// Nothing waits (or playing has not started): the stream is silent for now.
    Empty,
}

/// Packets of one stream waiting to be played.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    slots: Box<[Slot]>,
    /// The RTP timestamp to play next, once anchored.
    playout: Option<u32>,
    /// Packets to collect before playing starts (or restarts after an underrun).
    prebuffer: usize,
    /// Playing (not waiting to prebuffer).
    playing: bool,
    /// Ticks played from a packet, lost, and empty; packets dropped late.
    pub played: u64,
    pub lost: u64,
    pub underruns: u64,
    pub late: u64,
}

/// Signed distance from `b` to `a` in RTP timestamp space.
#[inline]
fn diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl JitterBuffer {
    /// A buffer of `slots` packets that starts playing once `prebuffer` are in.
    pub fn new(slots: usize, prebuffer: usize) -> Self {
        let slot = Slot {
            ts: 0,
            len: 0,
            full: false,
            data: [0; MAX_PAYLOAD],
        };
        JitterBuffer {
            slots: vec![slot; slots.max(2)].into_boxed_slice(),
            playout: None,
            prebuffer: prebuffer.clamp(1, slots.max(2)),
            playing: false,
            played: 0,
            lost: 0,
            underruns: 0,
            late: 0,
        }
    }

    fn waiting(&self) -> usize {
        self.slots.iter().filter(|s| s.full).count()
    }

    fn earliest(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.full && best.is_none_or(|b| diff(s.ts, self.slots[b].ts) < 0) {
                best = Some(i);
            }
        }
        best
    }

    /// Keeps a packet's payload for its timestamp. When every slot is taken, the earliest
    /// packet makes room (the stream runs ahead of the mix).
    pub fn push(&mut self, ts: u32, payload: &[u8]) -> Result<(), JitterError> {
        if payload.is_empty() {
            return Err(JitterError::Empty);
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(JitterError::TooLarge(payload.len()));
        }
        if let Some(p) = self.playout
            && self.playing
            && diff(ts, p) < 0
        {
            self.late += 1;
            return Err(JitterError::Late);
        }
        if self.slots.iter().any(|s| s.full && s.ts == ts) {
            return Err(JitterError::Duplicate);
        }
        let i = match self.slots.iter().position(|s| !s.full) {
            Some(i) => i,
            None => {
                // Full: the stream is ahead; drop the earliest and play from the next.
                let e = self.earliest().unwrap_or(0);
                self.slots[e].full = false;
                self.playout = None;
                e
            }
        };
        let s = &mut self.slots[i];
        s.ts = ts;
        s.len = payload.len() as u16;
        s.data[..payload.len()].copy_from_slice(payload);
        s.full = true;
        Ok(())
    }

    /// The next thing to play. Call [`JitterBuffer::advance`] with the samples it covered.
    pub fn next_to_play(&mut self) -> Next<'_> {
        if !self.playing {
            if self.waiting() < self.prebuffer {
                self.underruns += 1;
                return Next::Empty;
            }
            self.playing = true;
            self.playout = None;
        }
        let Some(e) = self.earliest() else {
            // Drained: wait for the prebuffer again.
            self.playing = false;
            self.underruns += 1;
            return Next::Empty;
        };
        let first = self.slots[e].ts;
        let playout = *self.playout.get_or_insert(first);
        // Stale packets (older than the play position) go; a jump far ahead re-anchors.
        let span = 960 * self.slots.len() as i64;
        if diff(first, playout) < 0 || diff(first, playout) > span {
            self.playout = Some(first);
        }
        let playout = self.playout.unwrap_or(first);
        if let Some(i) = self.slots.iter().position(|s| s.full && s.ts == playout) {
            let s = &self.slots[i];
            return Next::Packet(&s.data[..usize::from(s.len)]);
        }
        let s = &self.slots[e];
        Next::Lost {
            following: &s.data[..usize::from(s.len)],
        }
    }

    /// Moves the play position `samples` on (the packet played or the gap concealed), freeing
    /// what it passed.
    pub fn advance(&mut self, samples: u32, was_packet: bool) {
        let Some(p) = self.playout else { return };
        if was_packet {
            self.played += 1;
        } else {
            self.lost += 1;
        }
        let next = p.wrapping_add(samples);
        for s in self.slots.iter_mut() {
            if s.full && diff(s.ts, next) < 0 {
                s.full = false;
            }
        }
        self.playout = Some(next);
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        for s in self.slots.iter_mut() {
            s.full = false;
        }
        self.playout = None;
        self.playing = false;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    fn play(jb: &mut JitterBuffer) -> Option<Vec<u8>> {
        match jb.next_to_play() {
            Next::Packet(p) => {
                let p = p.to_vec();
                jb.advance(960, true);
                Some(p)
            }
            Next::Lost { .. } => {
                jb.advance(960, false);
                Some(Vec::new())
            }
            Next::Empty => None,
        }
    }

    #[test]
    fn plays_in_timestamp_order_after_the_prebuffer() {
        let mut jb = JitterBuffer::new(8, 2);
        jb.push(1920, &[2]).unwrap();
        assert_eq!(play(&mut jb), None, "one packet: still prebuffering");
        jb.push(960, &[1]).unwrap(); // reordered
        jb.push(2880, &[3]).unwrap();
        assert_eq!(play(&mut jb), Some(vec![1]));
        assert_eq!(play(&mut jb), Some(vec![2]));
        assert_eq!(play(&mut jb), Some(vec![3]));
        assert_eq!(play(&mut jb), None, "drained");
        assert_eq!(
            jb.push(960, &[9]),
            Ok(()),
            "not playing: an old packet is kept"
        );
    }

    #[test]
    fn a_missing_packet_is_lost_with_the_next_one_offered_for_fec() {
        let mut jb = JitterBuffer::new(8, 1);
        jb.push(0, &[0]).unwrap();
        jb.push(1920, &[2]).unwrap();
        assert_eq!(play(&mut jb), Some(vec![0]));
        assert_eq!(jb.next_to_play(), Next::Lost { following: &[2] });
        jb.advance(960, false);
        assert_eq!(play(&mut jb), Some(vec![2]));
        assert_eq!((jb.played, jb.lost), (2, 1));
        assert_eq!(jb.push(960, &[1]), Err(JitterError::Late));
    }

    #[test]
    fn a_jump_far_ahead_re_anchors_and_overflow_keeps_the_newest() {
        let mut jb = JitterBuffer::new(4, 1);
        jb.push(0, &[0]).unwrap();
        assert_eq!(play(&mut jb), Some(vec![0]));
        // DTX: the next packet is 2 s later.
        jb.push(96_000, &[5]).unwrap();
        assert_eq!(
            play(&mut jb),
            Some(vec![5]),
            "played at once, no run of concealment"
        );
        for k in 1..=6u32 {
            jb.push(96_000 + 960 * k, &[k as u8]).unwrap();
        }
        // Four slots: the newest four remain.
        assert_eq!(play(&mut jb), Some(vec![3]));
        assert_eq!(jb.push(96_000 + 960, &[1]), Err(JitterError::Late));
        assert!(matches!(jb.push(0, &[]), Err(JitterError::Empty)));
        assert!(matches!(
            jb.push(7, &[0; 1501]),
            Err(JitterError::TooLarge(1501))
        ));
    }

    #[test]
    fn timestamps_wrap() {
        let mut jb = JitterBuffer::new(8, 2);
        jb.push(u32::MAX - 959, &[1]).unwrap();
        jb.push(0, &[2]).unwrap();
        assert_eq!(play(&mut jb), Some(vec![1]));
        assert_eq!(play(&mut jb), Some(vec![2]));
    }
}
