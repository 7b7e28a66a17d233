//! Stream quality: the seed's presets (1080p 2500 kbps at 30 fps, 720p 1500 kbps at 30 fps,
//! 480p 800 kbps at 24 fps, in the one preset table of [`crate::quality`]) and the mapping of a
//! requested resolution/framerate/bitrate to a preset, a bitrate cap and the simulcast layer
//! viewers should get; [`stream_cap`] is the cap every viewer of the stream gets.

use sfu::control::QualityCap;

use crate::quality::{Preset, PresetFamily};
use crate::store::Quality;

/// The stream presets, tallest first.
fn presets() -> impl Iterator<Item = &'static Preset> {
    crate::quality::family(PresetFamily::Stream)
}

/// The simulcast layer (`a=rid`) that carries a stream preset's quality: `h` for the tallest,
/// `m`, then `l`.
fn layer_of(preset: &Preset) -> &'static str {
    match presets().position(|p| p.name == preset.name) {
        Some(0) => "h",
        Some(1) => "m",
        _ => "l",
    }
}

/// The cap every viewer of a stream with this quality gets: the stream's bit rate and the
/// height of its resolution (the preset's when the resolution cannot be read).
pub fn stream_cap(q: &Quality) -> QualityCap {
    let height = parse_resolution(&q.resolution)
        .map(|(_, h)| h)
        .unwrap_or_else(|_| preset_for_height(0).height);
    crate::quality::cap(q.max_bitrate_kbps, height)
}

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
    presets()
        .find(|p| p.height <= height)
        .or_else(|| presets().last())
        // The table has three stream presets.
        .expect("the preset table has stream presets")
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
        (None, None) => {
            let top = preset_for_height(u32::MAX);
            format!("{}x{}", top.width, top.height)
        }
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
        preferred_layer: layer_of(preset).to_string(),
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
    fn the_stream_cap_is_its_bit_rate_and_resolution_height() {
        let q = resolve(Some("1280x720"), None, Some(1200), None).expect("valid");
        let c = stream_cap(&q);
        assert_eq!(c.max_video, Some(sfu::Bitrate(1_200_000)));
        assert_eq!(c.max_height, Some(720));
        let d = stream_cap(&resolve(None, None, None, None).expect("defaults"));
        assert_eq!(
            (d.max_video, d.max_height),
            (Some(sfu::Bitrate(2_500_000)), Some(1080))
        );
        assert_eq!(
            [
                layer_of(&crate::quality::PRESETS[0]),
                layer_of(&crate::quality::PRESETS[2])
            ],
            ["h", "l"]
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
