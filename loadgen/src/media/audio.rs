//! Opus-like audio (RFC 7587): one packet every 20 ms of a fixed size from a target bitrate, a
//! TOC byte for a 20 ms fullband CELT frame, the tag at the end.

use std::time::{Duration, Instant};

use super::tag::{TAG_LEN, Tag};

/// RTP clock rate of Opus.
pub const AUDIO_CLOCK: u32 = 48_000;
/// Packet interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// Samples per packet at 48 kHz.
const SAMPLES: u32 = 960;

/// Shape of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioConfig {
    /// Payload bitrate in bits/s.
    pub bitrate_bps: u64,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            bitrate_bps: 32_000,
        }
    }
}

/// One audio packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioPacket {
    pub index: u64,
    pub rtp_ts: u32,
    pub payload_len: usize,
}

/// The packet schedule of one publisher's audio.
#[derive(Debug)]
pub struct AudioSource {
    start: Instant,
    next_index: u64,
    payload_len: usize,
}

impl AudioSource {
    /// A source whose first packet is due at `start`.
    pub fn new(cfg: AudioConfig, start: Instant) -> Self {
        let per_packet = (cfg.bitrate_bps / 8 / 50) as usize;
        AudioSource {
            start,
            next_index: 0,
            payload_len: per_packet.max(TAG_LEN + 1),
        }
    }

    /// When the next packet is due.
    pub fn next_due(&self) -> Instant {
        self.start + PTIME * self.next_index as u32
    }

    /// The next packet if it is due at `now`. A loop that fell more than 100 ms behind skips the
    /// missed packets (as a real capture device would drop them).
    pub fn poll_packet(&mut self, now: Instant) -> Option<AudioPacket> {
        if now < self.next_due() {
            return None;
        }
        let behind = now.saturating_duration_since(self.next_due()).as_millis() as u64 / 20;
        if behind > 5 {
            self.next_index += behind - 5;
        }
        let index = self.next_index;
        self.next_index += 1;
        Some(AudioPacket {
            index,
            rtp_ts: (index as u32).wrapping_mul(SAMPLES),
            payload_len: self.payload_len,
        })
    }
}

/// Writes an Opus-like payload of `len` bytes: TOC (config 31: CELT fullband 20 ms, stereo,
/// one frame), filler, tag. Returns `len`, or `None` when `out` is too small.
pub fn write_opus_payload(out: &mut [u8], len: usize, tag: Tag) -> Option<usize> {
    let p = out.get_mut(..len)?;
    p.fill(0x33);
    p[0] = 0xfc;
    tag.write_tail(p);
    Some(len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn audio_runs_at_fifty_packets_per_second_of_the_configured_size() {
        let t0 = Instant::now();
        let mut a = AudioSource::new(
            AudioConfig {
                bitrate_bps: 32_000,
            },
            t0,
        );
        let mut n = 0;
        let mut bytes = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(10) {
            while let Some(p) = a.poll_packet(now) {
                n += 1;
                bytes += p.payload_len;
                assert_eq!(p.rtp_ts, p.index as u32 * 960);
            }
            now += Duration::from_millis(1);
        }
        assert_eq!(n, 500);
        assert_eq!(bytes * 8 / 10, 32_000);
    }

    #[test]
    fn opus_payload_starts_with_a_toc_and_ends_with_the_tag() {
        let mut buf = [0u8; 100];
        let tag = Tag::new(5, 9);
        let n = write_opus_payload(&mut buf, 80, tag).unwrap();
        assert_eq!(n, 80);
        assert_eq!(buf[0], 0xfc);
        assert_eq!(Tag::read_tail(&buf[..80]), Some(tag));
        assert!(write_opus_payload(&mut buf, 200, tag).is_none());
    }
}
