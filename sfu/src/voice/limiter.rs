//! A peak limiter for a mix: sums of several voices can pass full scale, so each 20 ms frame is
//! scaled down at once to keep its peak under the ceiling (attack within the frame), and the gain
//! recovers gradually over the following frames (release), ramped across each frame so it does
//! not click; anything still over is clipped to 16 bits.

/// The peak a limited frame aims at (about -0.2 dBFS).
pub const CEILING: f32 = 32_000.0;
/// Share of the way back to unity gain recovered per frame (about 200 ms to recover).
const RELEASE: f32 = 0.1;

/// The state of one limited stream.
#[derive(Debug, Clone, Copy)]
pub struct Limiter {
    gain: f32,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter { gain: 1.0 }
    }
}

impl Limiter {
    /// The gain applied at the end of the last frame.
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Limits `input` (a frame of summed samples) into `out` (the same length or longer).
    pub fn process(&mut self, input: &[i32], out: &mut [i16]) {
        let peak = input.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) as f32;
        let target = if peak > CEILING { CEILING / peak } else { 1.0 };
        let (from, to) = if target < self.gain {
            // Attack: the whole frame at the lower gain, so no sample passes the ceiling.
            (target, target)
        } else {
            (self.gain, self.gain + (target - self.gain) * RELEASE)
        };
        let n = input.len().max(1) as f32;
        for (i, (o, &s)) in out.iter_mut().zip(input).enumerate() {
            let g = from + (to - from) * (i as f32 + 1.0) / n;
            let v = (s as f32 * g).round();
            *o = v.clamp(i16::MIN as f32, i16::MAX as f32) as i16;
        }
        self.gain = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_frames_pass_unchanged() {
        let mut l = Limiter::default();
        let input: Vec<i32> = (0..960).map(|i| (i % 200) * 100 - 10_000).collect();
        let mut out = [0i16; 960];
        l.process(&input, &mut out);
        assert!(out.iter().zip(&input).all(|(&o, &i)| i32::from(o) == i));
        assert_eq!(l.gain(), 1.0);
    }

    #[test]
    fn loud_sums_stay_under_the_ceiling_and_recover_slowly() {
        let mut l = Limiter::default();
        // Two full-scale voices in phase: peaks at 64 000.
        let loud: Vec<i32> = (0..960)
            .map(|i| (64_000.0 * (i as f32 * 0.057).sin()) as i32)
            .collect();
        let mut out = [0i16; 960];
        l.process(&loud, &mut out);
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!(peak <= CEILING as u16 + 1, "peak {peak}");
        assert!(peak > 31_000, "not over-attenuated: {peak}");
        assert!((l.gain() - 0.5).abs() < 0.01, "{}", l.gain());
        // Then quiet: the gain climbs back a tenth of the way per frame.
        let quiet = vec![1000i32; 960];
        l.process(&quiet, &mut out);
        assert!(l.gain() > 0.5 && l.gain() < 0.6, "{}", l.gain());
        for _ in 0..60 {
            l.process(&quiet, &mut out);
        }
        assert!(l.gain() > 0.99, "{}", l.gain());
    }
}
