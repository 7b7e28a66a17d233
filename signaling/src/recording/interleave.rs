//! Interleaving of several tracks' frames into one time order for the muxer: a frame is held
//! until every track that has started has reached its time, or for at most a fixed window.

use std::collections::VecDeque;

/// A frame waiting to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub track: usize,
    pub time_ms: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// Holds frames of several tracks and releases them in time order.
#[derive(Debug)]
pub struct Interleaver {
    window_ms: u64,
    queues: Vec<VecDeque<Pending>>,
    /// Time of the last frame pushed per track (none before its first).
    last_pushed: Vec<Option<u64>>,
    /// Latest time pushed on any track.
    newest: u64,
}

impl Interleaver {
    /// An interleaver for `tracks` tracks that holds a frame at most `window_ms` behind the
    /// newest frame of any track.
    pub fn new(tracks: usize, window_ms: u64) -> Interleaver {
        Interleaver {
            window_ms,
            queues: (0..tracks).map(|_| VecDeque::new()).collect(),
            last_pushed: vec![None; tracks],
            newest: 0,
        }
    }

    /// Marks `track` as started at `time_ms` before its first frame comes out (its first packet
    /// arrived): from now on, frames of other tracks later than that wait for it (up to the
    /// window). No effect once the track has frames.
    pub fn start(&mut self, track: usize, time_ms: u64) {
        if let Some(last @ None) = self.last_pushed.get_mut(track) {
            *last = Some(time_ms);
        }
    }

    /// Adds a frame. A frame stamped before its track's previous one is moved up to that time,
    /// so each track stays in order. Frames of unknown tracks are ignored (and handed back).
    pub fn push(&mut self, mut frame: Pending) -> Option<Pending> {
        let Some(q) = self.queues.get_mut(frame.track) else {
            return Some(frame);
        };
        let last = &mut self.last_pushed[frame.track];
        if let Some(l) = *last {
            frame.time_ms = frame.time_ms.max(l);
        }
        *last = Some(frame.time_ms);
        self.newest = self.newest.max(frame.time_ms);
        q.push_back(frame);
        None
    }

    /// The next frame that can be written: the earliest held one, once every other started
    /// track has reached its time or it is a window behind the newest.
    pub fn pop(&mut self) -> Option<Pending> {
        let (i, t) = self.earliest()?;
        let others_caught_up = self
            .last_pushed
            .iter()
            .enumerate()
            .all(|(j, lp)| j == i || lp.is_none_or(|lp| lp >= t));
        if others_caught_up || self.newest.saturating_sub(t) >= self.window_ms {
            self.queues[i].pop_front()
        } else {
            None
        }
    }

    /// The earliest held frame, whatever the other tracks (to flush at the end).
    pub fn pop_any(&mut self) -> Option<Pending> {
        let (i, _) = self.earliest()?;
        self.queues[i].pop_front()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// True when no frame is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Track and time of the earliest frame held (the lower track on a tie).
    fn earliest(&self) -> Option<(usize, u64)> {
        self.queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|f| (i, f.time_ms)))
            .min_by_key(|&(i, t)| (t, i))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    fn f(track: usize, time_ms: u64) -> Pending {
        Pending {
            track,
            time_ms,
            keyframe: true,
            data: vec![track as u8],
        }
    }

    fn drain(il: &mut Interleaver) -> Vec<(usize, u64)> {
        std::iter::from_fn(|| il.pop())
            .map(|p| (p.track, p.time_ms))
            .collect()
    }

    #[test]
    fn a_single_started_track_is_not_held() {
        let mut il = Interleaver::new(2, 500);
        il.push(f(1, 0));
        il.push(f(1, 20));
        assert_eq!(drain(&mut il), [(1, 0), (1, 20)]);
    }

    #[test]
    fn frames_wait_for_the_other_track_and_come_out_in_time_order() {
        let mut il = Interleaver::new(2, 500);
        il.push(f(0, 0));
        il.push(f(1, 0));
        assert_eq!(drain(&mut il), [(0, 0), (1, 0)]);
        // Audio runs ahead of video by 100 ms.
        for t in (20..=120).step_by(20) {
            il.push(f(1, t));
        }
        assert_eq!(drain(&mut il), []);
        il.push(f(0, 33));
        assert_eq!(drain(&mut il), [(1, 20), (0, 33)]);
        il.push(f(0, 66));
        assert_eq!(drain(&mut il), [(1, 40), (1, 60), (0, 66)]);
        assert_eq!(il.len(), 3);
    }

    #[test]
    fn a_stalled_track_holds_the_others_at_most_the_window() {
        let mut il = Interleaver::new(2, 500);
        il.push(f(0, 0));
        il.push(f(1, 0));
        drain(&mut il);
        for t in (20..=600).step_by(20) {
            il.push(f(1, t));
        }
        // Newest is 600: everything up to 100 is a window behind.
        let out = drain(&mut il);
        assert_eq!(out.first(), Some(&(1, 20)));
        assert_eq!(out.last(), Some(&(1, 100)));
        // The late track then comes back before what was released: its frame is earliest
        // among those held and goes out first once the others are covered.
        il.push(f(0, 90));
        assert_eq!(drain(&mut il).first(), Some(&(0, 90)));
    }

    #[test]
    fn a_started_track_holds_the_others_before_its_first_frame() {
        let mut il = Interleaver::new(2, 500);
        il.push(f(1, 0));
        il.push(f(1, 100));
        assert_eq!(drain(&mut il), [(1, 0), (1, 100)]);
        // Video's first packet came at 200 ms; its frames come out later.
        il.start(0, 200);
        il.push(f(1, 200));
        il.push(f(1, 220));
        assert_eq!(drain(&mut il), [(1, 200)]);
        il.push(f(0, 200));
        assert_eq!(drain(&mut il), [(0, 200)]);
        il.push(f(0, 233));
        assert_eq!(drain(&mut il), [(1, 220)]);
        // Starting again changes nothing once frames came.
        il.start(0, 10_000);
        il.push(f(1, 240));
        assert_eq!(drain(&mut il), [(0, 233)]);
    }

    #[test]
    fn a_track_going_back_in_time_is_kept_in_order() {
        let mut il = Interleaver::new(1, 500);
        il.push(f(0, 100));
        il.push(f(0, 50));
        assert_eq!(drain(&mut il), [(0, 100), (0, 100)]);
    }

    #[test]
    fn pop_any_flushes_in_time_order() {
        let mut il = Interleaver::new(2, 500);
        il.push(f(0, 10));
        il.push(f(1, 0));
        il.push(f(1, 30));
        il.push(f(0, 40));
        let out: Vec<_> = std::iter::from_fn(|| il.pop_any())
            .map(|p| (p.track, p.time_ms))
            .collect();
        assert_eq!(out, [(1, 0), (0, 10), (1, 30), (0, 40)]);
        assert!(il.is_empty());
        assert!(il.push(f(5, 0)).is_some(), "unknown track handed back");
    }
}
