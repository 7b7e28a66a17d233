//! Speech activity of one audio track from its packets' RFC 6464 audio levels, in the style of
//! LiveKit's and Jitsi's speaker detection: the share of the last second whose packets were
//! louder than a threshold, and how loud they were, over ten 100 ms buckets. A track starts
//! speaking when enough of the second was loud and stops only when little of it is (hysteresis),
//! so a cough does not make a speaker and a pause between words does not end one. Fixed-size
//! state, driven by the caller's clock; nothing allocates.

use std::time::{Duration, Instant};

use super::audio_level::{AudioLevel, amplitude_of, level_of};

/// Length of one bucket of the window.
pub const BUCKET: Duration = Duration::from_millis(100);
const BUCKET_MS: u64 = 100;
const BUCKETS: usize = 10;
/// The window the activity is measured over.
pub const WINDOW: Duration = Duration::from_millis(BUCKET_MS * BUCKETS as u64);
/// A packet's duration when its RTP timestamp step says nothing useful (the first packet, a gap,
/// DTX): the usual 20 ms Opus frame.
const DEFAULT_PACKET_MS: f32 = 20.0;
/// Longest duration one packet is credited with (Opus packets carry at most 120 ms).
const MAX_PACKET_MS: f32 = 120.0;

/// Thresholds of a [`SpeechMeter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechConfig {
    /// A packet is loud when its level is at least this loud, in -dBov (40: louder than -40 dBov).
    pub active_level: u8,
    /// The share of the window that must be loud for a track to start speaking.
    pub start_activity: f32,
    /// Below this share a speaking track stops.
    pub stop_activity: f32,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            active_level: 40,
            start_activity: 0.5,
            stop_activity: 0.15,
        }
    }
}

/// One 100 ms slice of the window.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which slice (100 ms units since the meter's epoch) the figures belong to.
    index: u64,
    /// Milliseconds of loud audio.
    active_ms: f32,
    /// Sum of amplitude x milliseconds over the loud audio.
    active_amp_ms: f32,
    /// Milliseconds of audio received, and their amplitude x milliseconds.
    heard_ms: f32,
    heard_amp_ms: f32,
}

/// What a meter says about its track now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechState {
    /// Whether the track speaks (with hysteresis).
    pub speaking: bool,
    /// Share of the window that was loud (0 ... 1).
    pub activity: f32,
    /// Mean amplitude over the window, silence and missing packets counted as zero: loudness and
    /// activity in one figure, to compare speakers by.
    pub score: f32,
    /// The level while loud (or of everything heard, when nothing was loud), in dBov.
    pub level: i8,
}

impl SpeechState {
    /// Nothing heard.
    pub const SILENT: SpeechState = SpeechState {
        speaking: false,
        activity: 0.0,
        score: 0.0,
        level: -127,
    };
}

/// The speech activity of one track.
#[derive(Debug, Clone)]
pub struct SpeechMeter {
    cfg: SpeechConfig,
    epoch: Option<Instant>,
    buckets: [Bucket; BUCKETS],
    last_ts: Option<u32>,
    speaking: bool,
}

impl Default for SpeechMeter {
    fn default() -> Self {
        SpeechMeter::new(SpeechConfig::default())
    }
}

impl SpeechMeter {
    pub fn new(cfg: SpeechConfig) -> Self {
        SpeechMeter {
            cfg,
            epoch: None,
            buckets: [Bucket::default(); BUCKETS],
            last_ts: None,
            speaking: false,
        }
    }

    /// Forgets everything heard (the track went away).
    pub fn reset(&mut self) {
        *self = SpeechMeter::new(self.cfg);
    }

    /// The bucket `now` falls in, and how far into it (ms).
    fn position(&mut self, now: Instant) -> (u64, u64) {
        let epoch = *self.epoch.get_or_insert(now);
        let ms = now.saturating_duration_since(epoch).as_millis() as u64;
        (ms / BUCKET_MS, ms % BUCKET_MS)
    }

    /// Takes one packet's level: `rtp_ts` is its RTP timestamp at `clock_rate` (its duration is
    /// the step from the previous packet's).
    pub fn observe(&mut self, now: Instant, rtp_ts: u32, clock_rate: u32, level: AudioLevel) {
        let ms = match self.last_ts {
            Some(prev) if clock_rate > 0 => {
                let step = rtp_ts.wrapping_sub(prev);
                if step == 0 || step > u32::MAX / 2 {
                    // A repeated or older timestamp: another packet of the same frame, or late.
                    0.0
                } else {
                    let ms = step as f32 * 1000.0 / clock_rate as f32;
                    if ms > MAX_PACKET_MS {
                        DEFAULT_PACKET_MS
                    } else {
                        ms
                    }
                }
            }
            _ => DEFAULT_PACKET_MS,
        };
        if self
            .last_ts
            .is_none_or(|prev| rtp_ts.wrapping_sub(prev) < u32::MAX / 2)
        {
            self.last_ts = Some(rtp_ts);
        }
        let (index, _) = self.position(now);
        let b = &mut self.buckets[(index % BUCKETS as u64) as usize];
        if b.index != index {
            *b = Bucket {
                index,
                ..Bucket::default()
            };
        }
        let amp = amplitude_of(level.level);
        b.heard_ms += ms;
        b.heard_amp_ms += amp * ms;
        if level.level <= self.cfg.active_level {
            b.active_ms += ms;
            b.active_amp_ms += amp * ms;
        }
    }

    /// The track's state at `now`; moves the speaking flag across its thresholds.
    pub fn poll(&mut self, now: Instant) -> SpeechState {
        if self.epoch.is_none() {
            return SpeechState::SILENT;
        }
        let (cur, into) = self.position(now);
        // The window: the nine whole buckets before this one and what has passed of this one.
        let window = ((BUCKETS as u64 - 1) * BUCKET_MS + into) as f32;
        let oldest = cur.saturating_sub(BUCKETS as u64 - 1);
        let (mut active, mut active_amp, mut heard, mut heard_amp) = (0.0, 0.0, 0.0, 0.0);
        for b in &self.buckets {
            if b.index >= oldest && b.index <= cur {
                active += b.active_ms;
                active_amp += b.active_amp_ms;
                heard += b.heard_ms;
                heard_amp += b.heard_amp_ms;
            }
        }
        let activity = (active / window).min(1.0);
        if self.speaking {
            self.speaking = activity >= self.cfg.stop_activity;
        } else {
            self.speaking = activity >= self.cfg.start_activity;
        }
        let level = if active > 0.0 {
            level_of(active_amp / active)
        } else if heard > 0.0 {
            level_of(heard_amp / heard)
        } else {
            127
        };
        SpeechState {
            speaking: self.speaking,
            activity,
            score: active_amp / window,
            level: -(level as i8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: AudioLevel = AudioLevel {
        voice: true,
        level: 10,
    };

    /// Feeds 20 ms packets of `level` from `from` for `ms` milliseconds.
    fn talk(m: &mut SpeechMeter, t0: Instant, from_ms: u64, ms: u64, level: AudioLevel) {
        let mut t = from_ms;
        while t < from_ms + ms {
            m.observe(
                t0 + Duration::from_millis(t),
                (t * 48) as u32,
                48_000,
                level,
            );
            t += 20;
        }
    }

    #[test]
    fn steady_speech_speaks_and_silence_stops_it() {
        let t0 = Instant::now();
        let mut m = SpeechMeter::default();
        talk(&mut m, t0, 0, 400, LOUD);
        let s = m.poll(t0 + Duration::from_millis(400));
        assert!(!s.speaking, "400 ms of a second is not yet speech: {s:?}");
        talk(&mut m, t0, 400, 800, LOUD);
        let s = m.poll(t0 + Duration::from_millis(1200));
        assert!(s.speaking, "{s:?}");
        assert!(s.activity > 0.9, "{s:?}");
        assert_eq!(s.level, -10);
        // Muted: packets keep coming, at level 127.
        talk(&mut m, t0, 1200, 500, AudioLevel::SILENCE);
        let s = m.poll(t0 + Duration::from_millis(1700));
        assert!(s.speaking, "a half-second pause keeps the speaker: {s:?}");
        talk(&mut m, t0, 1700, 600, AudioLevel::SILENCE);
        let s = m.poll(t0 + Duration::from_millis(2300));
        assert!(!s.speaking, "{s:?}");
        assert_eq!(s.score, 0.0);
        assert_eq!(s.level, -127);
    }

    #[test]
    fn a_cough_does_not_make_a_speaker() {
        let t0 = Instant::now();
        let mut m = SpeechMeter::default();
        talk(&mut m, t0, 0, 1000, AudioLevel::SILENCE);
        talk(&mut m, t0, 1000, 300, LOUD);
        talk(&mut m, t0, 1300, 1000, AudioLevel::SILENCE);
        for ms in (1000..2300).step_by(20) {
            let s = m.poll(t0 + Duration::from_millis(ms));
            assert!(!s.speaking, "at {ms} ms: {s:?}");
        }
    }

    #[test]
    fn quiet_packets_are_heard_but_not_active() {
        let t0 = Instant::now();
        let mut m = SpeechMeter::default();
        let quiet = AudioLevel {
            voice: true,
            level: 60,
        };
        talk(&mut m, t0, 0, 1000, quiet);
        let s = m.poll(t0 + Duration::from_millis(1000));
        assert!(!s.speaking);
        assert_eq!(s.activity, 0.0);
        assert_eq!(s.level, -60, "the level of what was heard");
    }

    #[test]
    fn missing_packets_count_as_silence() {
        // DTX: a speaker who stops sending stops speaking.
        let t0 = Instant::now();
        let mut m = SpeechMeter::default();
        talk(&mut m, t0, 0, 1000, LOUD);
        assert!(m.poll(t0 + Duration::from_millis(1000)).speaking);
        let s = m.poll(t0 + Duration::from_millis(2100));
        assert!(!s.speaking, "{s:?}");
        assert_eq!(s.activity, 0.0);
    }

    #[test]
    fn a_louder_speaker_scores_higher() {
        let t0 = Instant::now();
        let (mut a, mut b) = (SpeechMeter::default(), SpeechMeter::default());
        talk(&mut a, t0, 0, 1000, LOUD);
        talk(
            &mut b,
            t0,
            0,
            1000,
            AudioLevel {
                voice: true,
                level: 30,
            },
        );
        let now = t0 + Duration::from_millis(1000);
        assert!(a.poll(now).score > 5.0 * b.poll(now).score);
    }
}
