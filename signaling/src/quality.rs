//! Quality presets, one table for every API: the stream service's stream presets (seed 000:
//! `1080p`, `720p`, `480p`) and the media server's video presets (seed 002: `low`, `medium`,
//! `high`, `ultra`), each turned into the [`QualityCap`] a viewer's allocator works within.
//!
//! | name     | family | picture   | fps | bit rate   | cap: most video, tallest layer |
//! |----------|--------|-----------|-----|------------|--------------------------------|
//! | `1080p`  | stream | 1920x1080 | 30  | 2500 kbit/s | 2.5 Mbit/s, 1080 rows |
//! | `720p`   | stream | 1280x720  | 30  | 1500 kbit/s | 1.5 Mbit/s, 720 rows  |
//! | `480p`   | stream | 854x480   | 24  | 800 kbit/s  | 800 kbit/s, 480 rows  |
//! | `low`    | media  | 320x180   | 15  | 200 kbit/s  | 200 kbit/s, 180 rows  |
//! | `medium` | media  | 640x360   | 24  | 500 kbit/s  | 500 kbit/s, 360 rows  |
//! | `high`   | media  | 1280x720  | 30  | 1500 kbit/s | 1.5 Mbit/s, 720 rows  |
//! | `ultra`  | media  | 1920x1080 | 30  | 2500 kbit/s | 2.5 Mbit/s, 1080 rows |
//!
//! The bit rate is the media (RTP payload) rate a viewer's video may take in all; the allocator
//! also counts a viewer as degraded while its allocation stays below it. Names are matched
//! without regard to case.

use sfu::Bitrate;
use sfu::control::QualityCap;

/// Which product's preset list a preset comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetFamily {
    /// The stream service (`/stream/*`, seed 000).
    Stream,
    /// The media server (seed 002).
    Media,
}

/// A named quality preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub family: PresetFamily,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    pub bitrate_kbps: u32,
}

impl Preset {
    /// The caps a viewer with this preset gets: its bit rate and its height.
    pub fn cap(&self) -> QualityCap {
        cap(self.bitrate_kbps, self.height)
    }
}

/// The caps for a bit rate (kbit/s) and a picture height (rows).
pub fn cap(bitrate_kbps: u32, height: u32) -> QualityCap {
    QualityCap {
        max_video: Some(Bitrate::kbps(u64::from(bitrate_kbps))),
        max_height: Some(u16::try_from(height).unwrap_or(u16::MAX)),
    }
}

const fn preset(
    name: &'static str,
    family: PresetFamily,
    (width, height, framerate, bitrate_kbps): (u32, u32, u32, u32),
) -> Preset {
    Preset {
        name,
        family,
        width,
        height,
        framerate,
        bitrate_kbps,
    }
}

/// Every preset: the stream presets from the tallest down, then the media presets from the
/// lowest up.
pub const PRESETS: [Preset; 7] = [
    preset("1080p", PresetFamily::Stream, (1920, 1080, 30, 2500)),
    preset("720p", PresetFamily::Stream, (1280, 720, 30, 1500)),
    preset("480p", PresetFamily::Stream, (854, 480, 24, 800)),
    preset("low", PresetFamily::Media, (320, 180, 15, 200)),
    preset("medium", PresetFamily::Media, (640, 360, 24, 500)),
    preset("high", PresetFamily::Media, (1280, 720, 30, 1500)),
    preset("ultra", PresetFamily::Media, (1920, 1080, 30, 2500)),
];

/// The presets of one family, in table order.
pub fn family(f: PresetFamily) -> impl Iterator<Item = &'static Preset> {
    PRESETS.iter().filter(move |p| p.family == f)
}

/// The preset called `name` (any case).
pub fn find(name: &str) -> Option<&'static Preset> {
    let name = name.trim();
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Every preset name, for error messages: `1080p, 720p, 480p, low, medium, high, ultra`.
pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_seed_tables_are_there_with_their_numbers() {
        let row = |n: &str| {
            let p = find(n).unwrap_or_else(|| panic!("{n} is a preset"));
            (p.width, p.height, p.framerate, p.bitrate_kbps)
        };
        assert_eq!(row("1080p"), (1920, 1080, 30, 2500));
        assert_eq!(row("720p"), (1280, 720, 30, 1500));
        assert_eq!(row("480p"), (854, 480, 24, 800));
        assert_eq!(row("low"), (320, 180, 15, 200));
        assert_eq!(row("medium"), (640, 360, 24, 500));
        assert_eq!(row("high"), (1280, 720, 30, 1500));
        assert_eq!(row("ultra"), (1920, 1080, 30, 2500));
        assert_eq!(family(PresetFamily::Stream).count(), 3);
        assert_eq!(family(PresetFamily::Media).count(), 4);
    }

    #[test]
    fn a_preset_caps_the_bit_rate_and_the_height() {
        let c = find("720p").expect("preset").cap();
        assert_eq!(c.max_video, Some(Bitrate(1_500_000)));
        assert_eq!(c.max_height, Some(720));
        let c = find("low").expect("preset").cap();
        assert_eq!(
            (c.max_video, c.max_height),
            (Some(Bitrate(200_000)), Some(180))
        );
        assert_eq!(cap(800, 100_000).max_height, Some(u16::MAX));
    }

    #[test]
    fn names_match_without_case_and_unknown_names_do_not() {
        assert_eq!(find("ULTRA").map(|p| p.name), Some("ultra"));
        assert_eq!(find(" 480P ").map(|p| p.name), Some("480p"));
        for bad in ["", "360p", "max", "1080", "lowest"] {
            assert!(find(bad).is_none(), "{bad:?}");
        }
        assert_eq!(names(), "1080p, 720p, 480p, low, medium, high, ultra");
    }
}
