//! The client-to-mixer audio level header extension (RFC 6464,
//! `urn:ietf:params:rtp-hdrext:ssrc-audio-level`): one byte, a voice-activity flag and the level
//! of the packet's audio in -dBov (0 is the loudest, 127 silence).

/// Why an audio-level extension could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AudioLevelError {
    #[error("audio-level extension is empty")]
    Empty,
}

/// One packet's audio level (RFC 6464 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLevel {
    /// The sender's voice-activity flag (V).
    pub voice: bool,
    /// The level in -dBov: 0 (full scale) to 127 (silence, or quieter).
    pub level: u8,
}

impl AudioLevel {
    /// Silence, as a sender writes it for muted audio.
    pub const SILENCE: AudioLevel = AudioLevel {
        voice: false,
        level: 127,
    };

    /// Reads the extension's data. RFC 6464 defines one byte; bytes after it (two-byte header
    /// form padding) are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, AudioLevelError> {
        let &b = data.first().ok_or(AudioLevelError::Empty)?;
        Ok(AudioLevel {
            voice: b & 0x80 != 0,
            level: b & 0x7f,
        })
    }

    /// The extension byte.
    pub fn to_byte(self) -> u8 {
        (u8::from(self.voice) << 7) | (self.level & 0x7f)
    }

    /// The level in dBov (-127 ... 0).
    pub fn dbov(self) -> i8 {
        -(self.level as i8)
    }

    /// The level as a linear amplitude relative to full scale (1.0 at 0 dBov).
    pub fn amplitude(self) -> f32 {
        amplitude_of(self.level)
    }
}

/// Linear amplitude (relative to full scale) of a level in -dBov.
pub fn amplitude_of(level: u8) -> f32 {
    10f32.powf(-f32::from(level.min(127)) / 20.0)
}

/// The level in -dBov (0 ... 127) of a linear amplitude relative to full scale.
pub fn level_of(amplitude: f32) -> u8 {
    if amplitude.is_nan() || amplitude <= 0.0 {
        return 127;
    }
    let db = -20.0 * amplitude.log10();
    db.round().clamp(0.0, 127.0) as u8
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_voice_flag_and_the_level() {
        let l = AudioLevel::parse(&[0x85]).unwrap();
        assert_eq!(
            l,
            AudioLevel {
                voice: true,
                level: 5
            }
        );
        assert_eq!(l.dbov(), -5);
        assert_eq!(l.to_byte(), 0x85);
        let quiet = AudioLevel::parse(&[0x7f, 0, 0]).unwrap();
        assert_eq!(quiet, AudioLevel::SILENCE);
        assert_eq!(AudioLevel::parse(&[]), Err(AudioLevelError::Empty));
    }

    #[test]
    fn amplitude_and_level_convert_both_ways() {
        assert!((amplitude_of(0) - 1.0).abs() < 1e-6);
        assert!((amplitude_of(20) - 0.1).abs() < 1e-6);
        for level in [0u8, 3, 20, 40, 90, 127] {
            assert_eq!(level_of(amplitude_of(level)), level);
        }
        assert_eq!(level_of(0.0), 127);
        assert_eq!(level_of(2.0), 0, "above full scale reads as 0 dBov");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..8)) {
            match AudioLevel::parse(&data) {
                Ok(l) => prop_assert!(l.level <= 127),
                Err(e) => prop_assert!(data.is_empty() && e == AudioLevelError::Empty),
            }
        }
    }
}
