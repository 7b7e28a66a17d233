//! When a subscriber could show a video frame, without decoding it: a frame (the packets of one
//! RTP timestamp, from the packet that starts it to the one with the marker bit, RFC 7741 §4.4)
//! is complete when every sequence number in between arrived, and rendered when it is complete
//! and decodable: a keyframe, or the frame right after the last rendered one (the load
//! generator's VP8-like streams reference the previous frame). Complete keyframes let the
//! decoder skip over frames that never completed; frames older than the last rendered one are
//! dropped. This is what a receiver that waits for whole frames and for a keyframe after a loss
//! shows, and what [`super::FreezeDetector`] is fed. Fixed memory: [`FRAME_SLOTS`] frames in
//! flight.

/// Frames being assembled at once; the oldest is given up when a newer one needs its slot.
pub const FRAME_SLOTS: usize = 32;

/// What the assembler needs from one video packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePacket {
    /// Extended sequence number.
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    /// First packet of a frame (VP8: S set, partition 0).
    pub start: bool,
    /// First packet of a keyframe.
    pub keyframe: bool,
}

/// Counters of a [`FrameAssembler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames rendered.
    pub rendered: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Frames given up: never complete, or complete but not decodable before a later frame
    /// was rendered.
    pub dropped: u64,
}

impl FrameStats {
    /// What happened since `base` (an earlier copy).
    pub fn since(&self, base: &FrameStats) -> FrameStats {
        FrameStats {
            rendered: self.rendered.saturating_sub(base.rendered),
            keyframes: self.keyframes.saturating_sub(base.keyframes),
            dropped: self.dropped.saturating_sub(base.dropped),
        }
    }

    /// Adds another stream's counters.
    pub fn add(&mut self, o: &FrameStats) {
        self.rendered += o.rendered;
        self.keyframes += o.keyframes;
        self.dropped += o.dropped;
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    used: bool,
    timestamp: u32,
    /// Lowest sequence number seen of this frame (its age).
    lowest: u64,
    start: Option<u64>,
    end: Option<u64>,
    keyframe: bool,
    packets: u64,
}

impl Slot {
    fn complete(&self) -> bool {
        match (self.start, self.end) {
            (Some(s), Some(e)) => e >= s && self.packets > e - s,
            _ => false,
        }
    }
}

/// Assembles one video stream's frames.
#[derive(Debug, Clone)]
pub struct FrameAssembler {
    slots: [Slot; FRAME_SLOTS],
    /// Last sequence number of the last rendered frame.
    rendered_end: Option<u64>,
    stats: FrameStats,
}

impl Default for FrameAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameAssembler {
    /// Nothing received yet.
    pub fn new() -> Self {
        FrameAssembler {
            slots: [Slot::default(); FRAME_SLOTS],
            rendered_end: None,
            stats: FrameStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Takes one distinct packet (no duplicates); returns how many frames it made renderable.
    pub fn on_packet(&mut self, p: FramePacket) -> u32 {
        if self.rendered_end.is_some_and(|e| p.seq <= e) {
            return 0; // part of a frame already rendered or skipped
        }
        let i = match self
            .slots
            .iter()
            .position(|s| s.used && s.timestamp == p.timestamp)
        {
            Some(i) => i,
            None => {
                let i = match self.slots.iter().position(|s| !s.used) {
                    Some(i) => i,
                    None => {
                        // Give up the oldest frame.
                        let (i, _) = self
                            .slots
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, s)| s.lowest)
                            .unwrap_or((0, &self.slots[0]));
                        self.stats.dropped += 1;
                        i
                    }
                };
                self.slots[i] = Slot {
                    used: true,
                    timestamp: p.timestamp,
                    lowest: p.seq,
                    ..Slot::default()
                };
                i
            }
        };
        let s = &mut self.slots[i];
        s.packets += 1;
        s.lowest = s.lowest.min(p.seq);
        if p.start {
            s.start = Some(p.seq);
            s.keyframe = p.keyframe;
        }
        if p.marker {
            s.end = Some(p.seq);
        }
        if !s.complete() {
            return 0;
        }
        self.render()
    }

    /// Renders every complete frame that is decodable now, oldest first.
    fn render(&mut self) -> u32 {
        let mut n = 0;
        loop {
            let mut pick: Option<usize> = None;
            for (i, s) in self.slots.iter().enumerate() {
                if !s.used || !s.complete() {
                    continue;
                }
                let Some(start) = s.start else { continue };
                if self.rendered_end.is_some_and(|e| start == e + 1) {
                    pick = Some(i);
                    break;
                }
                let jump = s.keyframe && self.rendered_end.is_none_or(|e| start > e);
                if jump && pick.is_none_or(|j| self.slots[j].start > s.start) {
                    pick = Some(i);
                }
            }
            let Some(i) = pick else { return n };
            let s = self.slots[i];
            self.slots[i].used = false;
            let end = s.end.unwrap_or(s.lowest);
            self.rendered_end = Some(end);
            self.stats.rendered += 1;
            self.stats.keyframes += u64::from(s.keyframe);
            n += 1;
            for o in self.slots.iter_mut().filter(|o| o.used && o.lowest <= end) {
                o.used = false;
                self.stats.dropped += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets of frame `f` (timestamp f × 3000) at sequence numbers `seqs` (the first starts it,
    /// the last ends it).
    fn frame(f: u32, seqs: std::ops::Range<u64>, key: bool) -> Vec<FramePacket> {
        let (first, last) = (seqs.start, seqs.end - 1);
        seqs.map(|seq| FramePacket {
            seq,
            timestamp: f * 3000,
            marker: seq == last,
            start: seq == first,
            keyframe: key && seq == first,
        })
        .collect()
    }

    fn feed(a: &mut FrameAssembler, pkts: &[FramePacket]) -> u32 {
        pkts.iter().map(|p| a.on_packet(*p)).sum()
    }

    #[test]
    fn whole_frames_in_order_render_one_each() {
        let mut a = FrameAssembler::new();
        assert_eq!(feed(&mut a, &frame(0, 0..10, true)), 1);
        let mut seq = 10;
        for f in 1..100 {
            assert_eq!(feed(&mut a, &frame(f, seq..seq + 3, false)), 1);
            seq += 3;
        }
        let s = a.stats();
        assert_eq!((s.rendered, s.keyframes, s.dropped), (100, 1, 0));
    }

    #[test]
    fn nothing_renders_before_the_first_keyframe() {
        let mut a = FrameAssembler::new();
        assert_eq!(feed(&mut a, &frame(0, 0..3, false)), 0);
        assert_eq!(feed(&mut a, &frame(1, 3..6, false)), 0);
        assert_eq!(feed(&mut a, &frame(2, 6..12, true)), 1);
        assert_eq!(feed(&mut a, &frame(3, 12..14, false)), 1);
        assert_eq!(a.stats().dropped, 2);
    }

    #[test]
    fn a_lost_packet_stalls_the_chain_until_it_is_recovered() {
        let mut a = FrameAssembler::new();
        feed(&mut a, &frame(0, 0..5, true));
        let f1 = frame(1, 5..8, false);
        // Packet 6 is missing: frame 1 incomplete, frames 2 and 3 complete but not decodable.
        assert_eq!(a.on_packet(f1[0]) + a.on_packet(f1[2]), 0);
        assert_eq!(feed(&mut a, &frame(2, 8..11, false)), 0);
        assert_eq!(feed(&mut a, &frame(3, 11..14, false)), 0);
        // The retransmission completes frame 1: all three render at once.
        assert_eq!(a.on_packet(f1[1]), 3);
        assert_eq!(a.stats().rendered, 4);
        assert_eq!(a.stats().dropped, 0);
    }

    #[test]
    fn an_unrecovered_loss_waits_for_the_next_keyframe() {
        let mut a = FrameAssembler::new();
        feed(&mut a, &frame(0, 0..5, true));
        let f1 = frame(1, 5..8, false);
        a.on_packet(f1[0]);
        a.on_packet(f1[2]);
        let mut seq = 8;
        for f in 2..20 {
            assert_eq!(feed(&mut a, &frame(f, seq..seq + 3, false)), 0);
            seq += 3;
        }
        assert_eq!(feed(&mut a, &frame(20, seq..seq + 8, true)), 1);
        // Frames 1..19 were given up; the late packet of frame 1 changes nothing.
        assert_eq!(a.on_packet(f1[1]), 0);
        assert_eq!(feed(&mut a, &frame(21, seq + 8..seq + 10, false)), 1);
        let s = a.stats();
        assert_eq!((s.rendered, s.keyframes, s.dropped), (3, 2, 19));
    }

    #[test]
    fn reordered_packets_within_a_frame_still_complete_it() {
        let mut a = FrameAssembler::new();
        let mut f0 = frame(0, 0..6, true);
        f0.reverse();
        assert_eq!(feed(&mut a, &f0), 1);
        let f1 = frame(1, 6..9, false);
        assert_eq!(a.on_packet(f1[2]) + a.on_packet(f1[0]), 0);
        assert_eq!(a.on_packet(f1[1]), 1);
    }

    #[test]
    fn many_incomplete_frames_do_not_overflow_the_slots() {
        let mut a = FrameAssembler::new();
        feed(&mut a, &frame(0, 0..3, true));
        // 100 frames whose end packets never arrive.
        for f in 1..=100u32 {
            let seq = 3 + 2 * u64::from(f);
            a.on_packet(FramePacket {
                seq,
                timestamp: f * 3000,
                marker: false,
                start: true,
                keyframe: false,
            });
        }
        assert!(a.stats().dropped >= 100 - FRAME_SLOTS as u64);
        // A keyframe still renders.
        assert_eq!(feed(&mut a, &frame(200, 1000..1004, true)), 1);
    }
}
