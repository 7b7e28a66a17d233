//! Video freezes as the W3C WebRTC statistics define them (`freezeCount`,
//! `totalFreezesDuration` of RTCInboundRtpStreamStats): a frame rendered after an inter-frame
//! interval of at least max(3 × the average interval, the average + 150 ms), the average taken
//! over the previous 30 intervals, counts as a freeze, and that whole interval as frozen time.
//! Like libwebrtc, nothing is judged before 5 intervals are known. A freeze still going on when
//! the counters are read ([`FreezeDetector::stats_at`]) counts up to that moment, so a picture
//! that stopped for good is not missed. Fixed memory.

use std::time::{Duration, Instant};

/// Intervals the average is taken over.
pub const AVERAGE_WINDOW: usize = 30;
/// Intervals needed before a freeze can be detected.
pub const MIN_INTERVALS: usize = 5;
/// What an interval must exceed the average by, at least.
pub const MIN_INCREASE: Duration = Duration::from_millis(150);

/// Counters of a [`FreezeDetector`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreezeStats {
    /// Frames rendered.
    pub frames: u64,
    /// Freezes.
    pub freezes: u64,
    /// Sum of the freezes' intervals, µs.
    pub frozen_us: u64,
    /// Longest inter-frame interval, µs.
    pub longest_gap_us: u64,
}

impl FreezeStats {
    /// What happened since `base` (an earlier copy); the longest gap is the current one (see
    /// [`FreezeDetector::start_window`]).
    pub fn since(&self, base: &FreezeStats) -> FreezeStats {
        FreezeStats {
            frames: self.frames.saturating_sub(base.frames),
            freezes: self.freezes.saturating_sub(base.freezes),
            frozen_us: self.frozen_us.saturating_sub(base.frozen_us),
            longest_gap_us: self.longest_gap_us,
        }
    }

    /// Adds another stream's counters (the longest gap is the larger one).
    pub fn add(&mut self, o: &FreezeStats) {
        self.frames += o.frames;
        self.freezes += o.freezes;
        self.frozen_us += o.frozen_us;
        self.longest_gap_us = self.longest_gap_us.max(o.longest_gap_us);
    }
}

/// Watches the render times of one video stream.
#[derive(Debug, Clone)]
pub struct FreezeDetector {
    last: Option<Instant>,
    /// The last intervals, µs, in a ring.
    intervals: [u64; AVERAGE_WINDOW],
    next: usize,
    len: usize,
    sum: u64,
    stats: FreezeStats,
}

impl Default for FreezeDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl FreezeDetector {
    /// No frame yet.
    pub fn new() -> Self {
        FreezeDetector {
            last: None,
            intervals: [0; AVERAGE_WINDOW],
            next: 0,
            len: 0,
            sum: 0,
            stats: FreezeStats::default(),
        }
    }

    /// A frame was rendered at `now`. Returns the interval when it ended a freeze.
    pub fn on_frame(&mut self, now: Instant) -> Option<Duration> {
        self.stats.frames += 1;
        let last = self.last.replace(now);
        let interval = now.saturating_duration_since(last?).as_micros() as u64;
        self.stats.longest_gap_us = self.stats.longest_gap_us.max(interval);
        let mut frozen = None;
        if let Some(threshold) = self.threshold_us()
            && interval >= threshold
        {
            self.stats.freezes += 1;
            self.stats.frozen_us += interval;
            frozen = Some(Duration::from_micros(interval));
        }
        if self.len == AVERAGE_WINDOW {
            self.sum -= self.intervals[self.next];
        } else {
            self.len += 1;
        }
        self.intervals[self.next] = interval;
        self.sum += interval;
        self.next = (self.next + 1) % AVERAGE_WINDOW;
        frozen
    }

    /// The interval from which a freeze counts, µs, once enough intervals are known.
    fn threshold_us(&self) -> Option<u64> {
        if self.len < MIN_INTERVALS {
            return None;
        }
        let avg = self.sum / self.len as u64;
        Some((3 * avg).max(avg + MIN_INCREASE.as_micros() as u64))
    }

    /// Starts a measurement window: the longest gap counts from here (the other counters are
    /// taken as differences).
    pub fn start_window(&mut self) {
        self.stats.longest_gap_us = 0;
    }

    /// Counters of the freezes that ended.
    pub fn stats(&self) -> FreezeStats {
        self.stats
    }

    /// Counters at `now`, a freeze still going on included (up to `now`).
    pub fn stats_at(&self, now: Instant) -> FreezeStats {
        let mut s = self.stats;
        if let (Some(last), Some(threshold)) = (self.last, self.threshold_us()) {
            let gap = now.saturating_duration_since(last).as_micros() as u64;
            s.longest_gap_us = s.longest_gap_us.max(gap);
            if gap >= threshold {
                s.freezes += 1;
                s.frozen_us += gap;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Frames every `gap`, `n` of them, from `t`; returns the time of the last.
    fn frames(d: &mut FreezeDetector, t: Instant, gap: Duration, n: usize) -> Instant {
        let mut now = t;
        for _ in 0..n {
            now += gap;
            d.on_frame(now);
        }
        now
    }

    #[test]
    fn steady_thirty_fps_never_freezes() {
        let mut d = FreezeDetector::new();
        frames(&mut d, Instant::now(), ms(33), 3000);
        let s = d.stats();
        assert_eq!((s.frames, s.freezes, s.frozen_us), (3000, 0, 0));
        assert_eq!(s.longest_gap_us, 33_000);
    }

    #[test]
    fn a_gap_past_the_average_plus_150_ms_is_one_freeze_of_its_length() {
        let mut d = FreezeDetector::new();
        let t = frames(&mut d, Instant::now(), ms(33), 60);
        // max(3 × 33, 33 + 150) = 183 ms: 180 is not a freeze, 200 is.
        assert_eq!(d.on_frame(t + ms(180)), None);
        let t = frames(&mut d, t + ms(180), ms(33), 60);
        assert_eq!(d.on_frame(t + ms(200)), Some(ms(200)));
        let s = d.stats();
        assert_eq!((s.freezes, s.frozen_us), (1, 200_000));
    }

    #[test]
    fn at_a_low_frame_rate_three_times_the_average_is_the_bar() {
        let mut d = FreezeDetector::new();
        // 5 fps: average 200 ms, bar max(600, 350) = 600 ms.
        let t = frames(&mut d, Instant::now(), ms(200), 40);
        assert_eq!(d.on_frame(t + ms(550)), None);
        let t = frames(&mut d, t + ms(550), ms(200), 40);
        assert_eq!(d.on_frame(t + ms(650)), Some(ms(650)));
    }

    #[test]
    fn nothing_is_judged_before_five_intervals() {
        let mut d = FreezeDetector::new();
        let t = Instant::now();
        d.on_frame(t);
        let t = frames(&mut d, t, ms(33), 4);
        // Only 4 intervals so far: a long gap is not yet a freeze.
        assert_eq!(d.on_frame(t + ms(2000)), None);
        assert_eq!(d.stats().freezes, 0);
        assert_eq!(d.stats().longest_gap_us, 2_000_000);
    }

    #[test]
    fn the_average_follows_the_last_thirty_intervals() {
        let mut d = FreezeDetector::new();
        let t = frames(&mut d, Instant::now(), ms(33), 100);
        // Slow down to 10 fps: after 30 intervals the average is 100 ms and the bar 300 ms.
        let t = frames(&mut d, t, ms(100), 30);
        assert_eq!(d.on_frame(t + ms(290)), None);
        let t = frames(&mut d, t + ms(290), ms(100), 30);
        assert!(d.on_frame(t + ms(310)).is_some());
    }

    #[test]
    fn a_picture_that_stopped_for_good_is_one_freeze_up_to_the_reading() {
        let mut d = FreezeDetector::new();
        let t = frames(&mut d, Instant::now(), ms(33), 30);
        let s = d.stats_at(t + ms(100));
        assert_eq!((s.freezes, s.frozen_us), (0, 0));
        let s = d.stats_at(t + ms(2000));
        assert_eq!(
            (s.freezes, s.frozen_us, s.longest_gap_us),
            (1, 2_000_000, 2_000_000)
        );
        // The freeze that ended is counted once, at its full length.
        d.on_frame(t + ms(2500));
        let s = d.stats_at(t + ms(2510));
        assert_eq!((s.freezes, s.frozen_us), (1, 2_500_000));
    }

    #[test]
    fn stats_since_a_baseline_count_only_later_freezes() {
        let mut d = FreezeDetector::new();
        let t = frames(&mut d, Instant::now(), ms(33), 30);
        d.on_frame(t + ms(500));
        let base = d.stats();
        let t = frames(&mut d, t + ms(500), ms(33), 30);
        d.on_frame(t + ms(400));
        let s = d.stats().since(&base);
        assert_eq!((s.frames, s.freezes, s.frozen_us), (31, 1, 400_000));
        // The longest gap counts from the window's start.
        d.start_window();
        let base = d.stats();
        frames(&mut d, t + ms(400), ms(40), 10);
        assert_eq!(d.stats().since(&base).longest_gap_us, 40_000);
    }
}
