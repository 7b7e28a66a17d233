//! Stream quality: the seed's presets (1080p 2500 kbps at 30 fps, 720p 1500 kbps at 30 fps,
//! 480p 800 kbps at 24 fps) and the mapping of a requested resolution/framerate/bitrate to a
//! preset, a bitrate cap and the simulcast layer viewers should get.

use crate::store::Quality;

/// A named quality preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    pub bitrate_kbps: u32,
    /// The simulcast layer (`a=rid`) that carries this quality.
    pub layer: &'static str,
}

/// High, medium, low.
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "1080p",
        width: 1920,
        height: 1080,
        framerate: 30,
        bitrate_kbps: 2500,
        layer: "h",
    },
    Preset {
        name: "720p",
        width: 1280,
        height: 720,
        framerate: 30,
        bitrate_kbps: 1500,
        layer: "m",
    },
    Preset {
        name: "480p",
        width: 854,
        height: 480,
        framerate: 24,
        bitrate_kbps: 800,
        layer: "l",
    },
];

/// Why requested settings are refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QualityError {
    #[error("resolution must be WIDTHxHEIGHT (for example 1280x720), got {0:?}")]
    Resolution(String),
    #[error("resolution {0}x{1} is outside 16x16..=7680x4320")]
    ResolutionRange(u32, u32),
    #[error("framerate must be 1..=120, got {0}")]
    Framerate(u32),
    #[error("bitrate must be 50..=50000 kbps, got {0}")]
    Bitrate(u32),
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_resolution(s: &str) -> Result<(u32, u32), QualityError> {
    let bad = || QualityError::Resolution(s.to_string());
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.parse().map_err(|_| bad())?;
    let h: u32 = h.parse().map_err(|_| bad())?;
    if !(16..=7680).contains(&w) || !(16..=4320).contains(&h) {
        return Err(QualityError::ResolutionRange(w, h));
    }
    Ok((w, h))
}

/// The preset for a frame height: the largest preset not taller than it (480p at least).
pub fn preset_for_height(height: u32) -> &'static Preset {
    PRESETS
        .iter()
        .find(|p| p.height <= height)
        .unwrap_or(&PRESETS[PRESETS.len() - 1])
}

/// Settings of a request; missing fields come from `base` (the stream's current quality) or,
/// without one, from the preset of the resolution (1080p when nothing is given).
pub fn resolve(
    resolution: Option<&str>,
    framerate: Option<u32>,
    bitrate: Option<u32>,
    base: Option<&Quality>,
) -> Result<Quality, QualityError> {
    let resolution = match (resolution, base) {
        (Some(r), _) => r.trim().to_string(),
        (None, Some(b)) => b.resolution.clone(),
        (None, None) => format!("{}x{}", PRESETS[0].width, PRESETS[0].height),
    };
    let (_, height) = parse_resolution(&resolution)?;
    let preset = preset_for_height(height);
    let framerate = framerate
        .or(base.map(|b| b.framerate))
        .unwrap_or(preset.framerate);
    if !(1..=120).contains(&framerate) {
        return Err(QualityError::Framerate(framerate));
    }
    let bitrate = bitrate
        .or(base.map(|b| b.bitrate))
        .unwrap_or(preset.bitrate_kbps);
    if !(50..=50_000).contains(&bitrate) {
        return Err(QualityError::Bitrate(bitrate));
    }
    Ok(Quality {
        resolution,
        framerate,
        bitrate,
        preset: preset.name.to_string(),
        max_bitrate_kbps: bitrate,
        preferred_layer: preset.layer.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_height() {
        assert_eq!(preset_for_height(1080).name, "1080p");
        assert_eq!(preset_for_height(1440).name, "1080p");
        assert_eq!(preset_for_height(720).name, "720p");
        assert_eq!(preset_for_height(1079).name, "720p");
        assert_eq!(preset_for_height(480).name, "480p");
        assert_eq!(preset_for_height(240).name, "480p");
    }

    #[test]
    fn missing_fields_come_from_the_preset_then_the_stream() {
        let q = resolve(None, None, None, None).expect("defaults");
        assert_eq!(
            (
                q.resolution.as_str(),
                q.framerate,
                q.bitrate,
                q.preset.as_str()
            ),
            ("1920x1080", 30, 2500, "1080p")
        );
        let low = resolve(Some("854x480"), None, None, None).expect("480p");
        assert_eq!(
            (low.framerate, low.bitrate, low.preferred_layer.as_str()),
            (24, 800, "l")
        );
        let changed = resolve(None, None, Some(1200), Some(&low)).expect("bitrate only");
        assert_eq!(
            (
                changed.resolution.as_str(),
                changed.bitrate,
                changed.max_bitrate_kbps
            ),
            ("854x480", 1200, 1200)
        );
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(matches!(
            resolve(Some("big"), None, None, None),
            Err(QualityError::Resolution(_))
        ));
        assert!(matches!(
            resolve(Some("1x1"), None, None, None),
            Err(QualityError::ResolutionRange(1, 1))
        ));
        assert_eq!(
            resolve(None, Some(0), None, None),
            Err(QualityError::Framerate(0))
        );
        assert_eq!(
            resolve(None, None, Some(1), None),
            Err(QualityError::Bitrate(1))
        );
    }
}
