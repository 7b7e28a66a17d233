//! The active speaker of a voice group: the loudest of its speaking tracks, held for a minimum
//! time so that two people talking at once do not make it flap; when the speaker stops and
//! nobody else speaks, none. Pure: the caller passes each track's [`SpeechState`] and the time.
//!
//! [`SpeechState`]: super::SpeechState

use std::time::{Duration, Instant};

use crate::TrackId;

/// Tunables of a [`SpeakerSelector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerSelectorConfig {
    /// A speaker keeps the floor at least this long while still speaking.
    pub hold: Duration,
    /// Past the hold, another speaking track takes over when its score exceeds the speaker's
    /// by this factor.
    pub switch_ratio: f32,
}

impl Default for SpeakerSelectorConfig {
    fn default() -> Self {
        SpeakerSelectorConfig {
            hold: Duration::from_millis(1000),
            switch_ratio: 1.2,
        }
    }
}

/// One track of the group as its meter sees it now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub track: TrackId,
    pub speaking: bool,
    pub score: f32,
    /// Its level in dBov.
    pub level: i8,
}

/// A change of the active speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveSpeaker {
    /// The new speaker; `None`: nobody speaks.
    pub track: Option<TrackId>,
    /// Its level in dBov (-127 for none).
    pub level: i8,
}

/// Chooses a group's active speaker.
#[derive(Debug, Clone)]
pub struct SpeakerSelector {
    cfg: SpeakerSelectorConfig,
    current: Option<TrackId>,
    since: Option<Instant>,
}

impl Default for SpeakerSelector {
    fn default() -> Self {
        SpeakerSelector::new(SpeakerSelectorConfig::default())
    }
}

impl SpeakerSelector {
    pub fn new(cfg: SpeakerSelectorConfig) -> Self {
        SpeakerSelector {
            cfg,
            current: None,
            since: None,
        }
    }

    /// The active speaker now.
    pub fn current(&self) -> Option<TrackId> {
        self.current
    }

    /// Chooses with the tracks' states at `now`; returns the change, if any.
    pub fn update(
        &mut self,
        now: Instant,
        candidates: impl IntoIterator<Item = Candidate>,
    ) -> Option<ActiveSpeaker> {
        let mut best: Option<Candidate> = None;
        let mut current: Option<Candidate> = None;
        for c in candidates {
            if Some(c.track) == self.current {
                current = Some(c);
            }
            // Ties go to the lower track id, so the choice does not depend on the order.
            if c.speaking
                && best
                    .is_none_or(|b| c.score > b.score || (c.score == b.score && c.track < b.track))
            {
                best = Some(c);
            }
        }
        let next = match (current, best) {
            // The speaker still speaks: it keeps the floor during its hold, and after it unless
            // someone is clearly louder.
            (Some(cur), Some(b)) if cur.speaking => {
                let held = self
                    .since
                    .is_none_or(|s| now.saturating_duration_since(s) >= self.cfg.hold);
                if b.track != cur.track && held && b.score > cur.score * self.cfg.switch_ratio {
                    Some(b)
                } else {
                    return None;
                }
            }
            // The speaker stopped or left: the loudest one speaking, or nobody.
            (_, b) => b,
        };
        let track = next.map(|c| c.track);
        if track == self.current {
            return None;
        }
        self.current = track;
        self.since = Some(now);
        Some(ActiveSpeaker {
            track,
            level: next.map_or(-127, |c| c.level),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::{AudioLevel, SpeechMeter};

    const A: TrackId = TrackId(1);
    const B: TrackId = TrackId(2);
    const C: TrackId = TrackId(3);

    /// Three participants' meters and a selector on a virtual clock in 20 ms steps.
    struct Room {
        t0: Instant,
        ms: u64,
        meters: [(TrackId, SpeechMeter); 3],
        selector: SpeakerSelector,
        changes: Vec<(u64, Option<TrackId>)>,
    }

    impl Room {
        fn new() -> Self {
            Room {
                t0: Instant::now(),
                ms: 0,
                meters: [A, B, C].map(|t| (t, SpeechMeter::default())),
                selector: SpeakerSelector::default(),
                changes: Vec::new(),
            }
        }

        /// Runs `ms` milliseconds with `levels(track)` as each track's level (-dBov).
        fn run(&mut self, ms: u64, levels: impl Fn(TrackId) -> u8) {
            let end = self.ms + ms;
            while self.ms < end {
                let now = self.t0 + Duration::from_millis(self.ms);
                for (t, m) in &mut self.meters {
                    let level = AudioLevel {
                        voice: true,
                        level: levels(*t),
                    };
                    m.observe(now, (self.ms * 48) as u32, 48_000, level);
                }
                // The core evaluates every 100 ms.
                if self.ms.is_multiple_of(100) {
                    let states: Vec<Candidate> = self
                        .meters
                        .iter_mut()
                        .map(|(t, m)| {
                            let s = m.poll(now);
                            Candidate {
                                track: *t,
                                speaking: s.speaking,
                                score: s.score,
                                level: s.level,
                            }
                        })
                        .collect();
                    if let Some(c) = self.selector.update(now, states) {
                        self.changes.push((self.ms, c.track));
                    }
                }
                self.ms += 20;
            }
        }
    }

    fn only(speaker: TrackId, level: u8) -> impl Fn(TrackId) -> u8 {
        move |t| if t == speaker { level } else { 127 }
    }

    #[test]
    fn two_speakers_taking_turns_switch_once_each_turn() {
        let mut r = Room::new();
        r.run(3000, only(A, 10));
        r.run(3000, only(B, 20));
        r.run(3000, only(A, 10));
        let who: Vec<Option<TrackId>> = r.changes.iter().map(|c| c.1).collect();
        assert_eq!(who, vec![Some(A), Some(B), Some(A)], "{:?}", r.changes);
        // A takes the floor within its first second, B within a second of its turn.
        assert!(r.changes[0].0 <= 1000, "{:?}", r.changes);
        assert!((3000..=4000).contains(&r.changes[1].0), "{:?}", r.changes);
        assert!((6000..=7000).contains(&r.changes[2].0), "{:?}", r.changes);
    }

    #[test]
    fn a_cough_does_not_switch() {
        let mut r = Room::new();
        r.run(2000, only(A, 20));
        // B coughs loudly for 300 ms while A goes on.
        r.run(300, |t| match t {
            A => 20,
            B => 0,
            _ => 127,
        });
        r.run(2000, only(A, 20));
        let who: Vec<Option<TrackId>> = r.changes.iter().map(|c| c.1).collect();
        assert_eq!(who, vec![Some(A)], "{:?}", r.changes);
        assert_eq!(r.selector.current(), Some(A));
    }

    #[test]
    fn silence_clears_the_speaker() {
        let mut r = Room::new();
        r.run(2000, only(A, 15));
        r.run(3000, |_| 127);
        assert_eq!(r.changes.len(), 2, "{:?}", r.changes);
        assert_eq!(r.changes[1].1, None);
        // Cleared about a second after A stops, not at the first pause.
        assert!((2500..=3200).contains(&r.changes[1].0), "{:?}", r.changes);
    }

    #[test]
    fn overlapping_speech_holds_then_goes_to_the_clearly_louder() {
        let mut r = Room::new();
        r.run(1500, only(A, 30));
        // C starts much louder while A continues: A keeps the floor for its hold, then C takes it.
        r.run(3000, |t| match t {
            A => 30,
            C => 5,
            _ => 127,
        });
        let who: Vec<Option<TrackId>> = r.changes.iter().map(|c| c.1).collect();
        assert_eq!(who, vec![Some(A), Some(C)], "{:?}", r.changes);
        let (a_at, c_at) = (r.changes[0].0, r.changes[1].0);
        assert!(c_at >= a_at + 1000, "{:?}", r.changes);
    }

    #[test]
    fn equally_loud_overlap_does_not_flap() {
        let mut r = Room::new();
        r.run(1500, only(A, 20));
        r.run(4000, |t| if t == C { 127 } else { 20 });
        assert_eq!(r.changes.len(), 1, "{:?}", r.changes);
    }

    #[test]
    fn reports_the_new_speakers_level() {
        let mut s = SpeakerSelector::default();
        let now = Instant::now();
        let c = Candidate {
            track: B,
            speaking: true,
            score: 0.3,
            level: -12,
        };
        assert_eq!(
            s.update(now, [c]),
            Some(ActiveSpeaker {
                track: Some(B),
                level: -12
            })
        );
        assert_eq!(s.update(now, [c]), None, "no change, no report");
    }
}
