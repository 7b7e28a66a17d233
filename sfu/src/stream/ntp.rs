//! NTP timestamps as RTCP uses them (RFC 3550 §4): the 64-bit format (seconds since 1900 and a
//! 32-bit fraction), its middle-32-bit "compact" form, and the mapping from a monotonic `Instant`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A duration in 64-bit NTP units (32.32 fixed point seconds), wrapping in the seconds part.
pub fn duration_to_ntp(d: Duration) -> u64 {
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (d.as_secs() << 32).wrapping_add(frac)
}

/// A wall-clock time as a 64-bit NTP timestamp. Times before 1970 map to the Unix epoch.
pub fn system_time_to_ntp(t: SystemTime) -> u64 {
    let since_unix = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    duration_to_ntp(since_unix).wrapping_add(NTP_UNIX_OFFSET_SECS << 32)
}

/// The middle 32 bits of a 64-bit NTP timestamp (the LSR field of a report block, RFC 3550 §6.4.1).
pub fn compact_ntp(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in compact NTP units (1/65536 s), saturating at `u32::MAX` (about 18 hours).
pub fn duration_to_compact(d: Duration) -> u32 {
    let units = d.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// A compact NTP quantity (1/65536 s units, like DLSR) as a `Duration`.
pub fn compact_to_duration(v: u32) -> Duration {
    Duration::from_nanos(u64::from(v) * 1_000_000_000 / 65_536)
}

/// Maps monotonic instants to NTP wall-clock time from one anchor taken at start-up, so that the
/// protocol code never reads the system clock itself.
#[derive(Debug, Clone, Copy)]
pub struct NtpClock {
    anchor: Instant,
    anchor_ntp: u64,
}

impl NtpClock {
    /// A clock on which `anchor` corresponds to the wall-clock time `wall`.
    pub fn new(anchor: Instant, wall: SystemTime) -> Self {
        Self {
            anchor,
            anchor_ntp: system_time_to_ntp(wall),
        }
    }

    /// The 64-bit NTP timestamp of `t`.
    pub fn ntp(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.anchor) {
            Some(d) => self.anchor_ntp.wrapping_add(duration_to_ntp(d)),
            None => self
                .anchor_ntp
                .wrapping_sub(duration_to_ntp(self.anchor.duration_since(t))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_maps_to_ntp_offset() {
        assert_eq!(system_time_to_ntp(UNIX_EPOCH), NTP_UNIX_OFFSET_SECS << 32);
    }

    #[test]
    fn half_second_is_half_the_fraction() {
        assert_eq!(duration_to_ntp(Duration::from_millis(500)), 1 << 31);
        assert_eq!(duration_to_ntp(Duration::from_secs(3)), 3 << 32);
    }

    #[test]
    fn compact_takes_middle_bits() {
        assert_eq!(compact_ntp(0x1234_5678_9abc_def0), 0x5678_9abc);
    }

    #[test]
    fn compact_duration_round_trips_within_one_unit() {
        for ms in [0u64, 1, 20, 999, 1000, 65_000] {
            let d = Duration::from_millis(ms);
            let back = compact_to_duration(duration_to_compact(d));
            assert!(d - back < Duration::from_micros(16), "{ms} ms -> {back:?}");
        }
    }

    #[test]
    fn clock_advances_with_instants() {
        let base = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = NtpClock::new(base, wall);
        let a = clock.ntp(base);
        let b = clock.ntp(base + Duration::from_millis(1500));
        assert_eq!(a, system_time_to_ntp(wall));
        assert_eq!(b - a, duration_to_ntp(Duration::from_millis(1500)));
        assert_eq!(
            clock.ntp(base + Duration::from_secs(1)) - clock.ntp(base),
            1 << 32
        );
    }
}
