//! Unwrapping of a peer's 24-bit wrapping clock — the transport-cc reference time (64 ms units,
//! draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1) and abs-send-time (6.18 fixed-point
//! seconds) — into microseconds. A peer's clock must advance with ours; when it strays more than
//! [`MAX_DRIFT_US`] from where it was anchored (a restarted or hostile peer), it is re-anchored,
//! so that unwrapped times stay bounded however the input jumps.

/// Largest drift of the peer's clock against ours before it is re-anchored (about 19 hours).
pub const MAX_DRIFT_US: i64 = 1 << 36;

/// The unwrapper of one peer clock. Fixed-size state.
#[derive(Debug, Clone, Copy)]
pub struct Unwrap24 {
    /// Microseconds per `den` ticks.
    num: i64,
    den: i64,
    /// The last raw value and its unwrapped tick count.
    last: Option<(u32, i64)>,
    /// Peer time minus local time at the anchor, µs.
    offset_us: i64,
}

impl Unwrap24 {
    /// A clock whose tick is `num / den` microseconds.
    pub const fn new(num: i64, den: i64) -> Self {
        Unwrap24 {
            num,
            den,
            last: None,
            offset_us: 0,
        }
    }

    fn micros_of(&self, ticks: i64) -> i64 {
        ticks.div_euclid(self.den) * self.num + ticks.rem_euclid(self.den) * self.num / self.den
    }

    /// The peer time of `raw` in µs, given the local time `local_us`; the flag is true when the
    /// clock was (re-)anchored at this value, so that earlier times cannot be compared with it.
    pub fn unwrap(&mut self, raw: u32, local_us: i64) -> (i64, bool) {
        let raw = raw & 0x00ff_ffff;
        if let Some((last_raw, last)) = self.last {
            // Sign-extend the 24-bit difference.
            let diff = ((raw.wrapping_sub(last_raw) & 0x00ff_ffff) << 8) as i32 >> 8;
            let ticks = last + i64::from(diff);
            let us = self.micros_of(ticks);
            if (us - local_us - self.offset_us).abs() <= MAX_DRIFT_US {
                self.last = Some((raw, ticks));
                return (us, false);
            }
        }
        let ticks = i64::from(raw);
        let us = self.micros_of(ticks);
        self.offset_us = us - local_us;
        self.last = Some((raw, ticks));
        (us, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_time_unwraps_across_the_24_bit_boundary() {
        let mut u = Unwrap24::new(64_000, 1);
        assert_eq!(u.unwrap(0x00ff_fffe, 0), (0x00ff_fffe * 64_000, true));
        let (us, reset) = u.unwrap(1, 192_000);
        assert!(!reset);
        assert_eq!(us, (0x0100_0001) * 64_000);
    }

    #[test]
    fn abs_send_time_ticks_convert_to_microseconds() {
        let mut u = Unwrap24::new(1_000_000, 1 << 18);
        assert_eq!(u.unwrap(1 << 18, 0).0, 1_000_000);
        // Past the 64 s wrap: 32 s, 63.5 s, then 0.5 s of the next cycle.
        u.unwrap(32 << 18, 31_000_000);
        u.unwrap(63 << 18 | 1 << 17, 62_500_000);
        assert_eq!(u.unwrap(1 << 17, 63_500_000).0, 64_500_000);
    }

    #[test]
    fn hostile_jumps_stay_bounded() {
        let mut u = Unwrap24::new(64_000, 1);
        let mut raw = 0u32;
        let mut resets = 0;
        // Each value jumps the largest forward step: unwrapped naively this would pass
        // i64::MAX µs after about 17 million packets.
        for _ in 0..20_000_000u32 {
            raw = raw.wrapping_add((1 << 23) - 1) & 0x00ff_ffff;
            let (us, reset) = u.unwrap(raw, 0);
            resets += u32::from(reset);
            assert!(us.abs() < (1 << 41), "{us}");
        }
        assert!(resets > 1000);
    }
}
