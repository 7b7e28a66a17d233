//! The media quality presets of the media server (seed 002 "Media Quality Presets"). Audio:
//! low 16 kbit/s mono (voice), medium 32 kbit/s mono (the default), high 64 kbit/s stereo
//! (music); they become Opus `maxaveragebitrate`/`stereo`/`sprop-stereo` (RFC 7587 §6.1) in the
//! consumers' RTP parameters and mediasoup-client `codecOptions` for producers. Video: low,
//! medium, high, ultra are accepted by name; their resolution, frame-rate and bit-rate table
//! lives in the signaling quality module, which [`video_encoding_hint`] is the hook for.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// An audio preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioQuality {
    /// 16 kbit/s mono: voice only.
    Low,
    /// 32 kbit/s mono.
    #[default]
    Medium,
    /// 64 kbit/s stereo: music mode.
    High,
}

impl AudioQuality {
    /// Average bit rate in bits per second.
    pub fn bitrate(self) -> u32 {
        match self {
            AudioQuality::Low => 16_000,
            AudioQuality::Medium => 32_000,
            AudioQuality::High => 64_000,
        }
    }

    pub fn stereo(self) -> bool {
        self == AudioQuality::High
    }

    pub fn name(self) -> &'static str {
        match self {
            AudioQuality::Low => "low",
            AudioQuality::Medium => "medium",
            AudioQuality::High => "high",
        }
    }

    /// Sets the preset's Opus format parameters on `params` (a codec's `parameters`).
    pub fn apply_to_opus(self, params: &mut Map<String, Value>) {
        let stereo = u8::from(self.stereo());
        params.insert("maxaveragebitrate".into(), json!(self.bitrate()));
        params.insert("stereo".into(), json!(stereo));
        params.insert("sprop-stereo".into(), json!(stereo));
    }

    /// mediasoup-client `ProducerCodecOptions` that make a producer encode at this preset.
    pub fn codec_options(self) -> Value {
        json!({
            "opusStereo": self.stereo(),
            "opusMaxAverageBitrate": self.bitrate(),
            "opusFec": true,
        })
    }
}

/// A video preset, by the seed's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoQuality {
    Low,
    Medium,
    High,
    Ultra,
}

impl VideoQuality {
    pub fn name(self) -> &'static str {
        match self {
            VideoQuality::Low => "low",
            VideoQuality::Medium => "medium",
            VideoQuality::High => "high",
            VideoQuality::Ultra => "ultra",
        }
    }
}

/// What a video preset asks of a producer's encoding (`maxBitrate` in bit/s, `maxFramerate`,
/// and the preset's picture size), from the preset table of [`crate::quality`].
pub fn video_encoding_hint(quality: VideoQuality) -> Option<Value> {
    let p = crate::quality::find(quality.name())?;
    Some(json!({
        "maxBitrate": u64::from(p.bitrate_kbps) * 1000,
        "maxFramerate": p.framerate,
        "width": p.width,
        "height": p.height,
    }))
}

/// The caps a consuming session with this preset gets from its allocator: the preset's bit
/// rate for all its video and its height.
pub fn video_cap(quality: VideoQuality) -> Option<sfu::control::QualityCap> {
    crate::quality::find(quality.name()).map(|p| p.cap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_presets_give_the_seed_encodings_and_caps() {
        let hint = video_encoding_hint(VideoQuality::Ultra).expect("ultra is in the table");
        assert_eq!(hint["maxBitrate"], 2_500_000);
        assert_eq!(hint["maxFramerate"], 30);
        assert_eq!(
            (hint["width"].as_u64(), hint["height"].as_u64()),
            (Some(1920), Some(1080))
        );
        let low = video_cap(VideoQuality::Low).expect("low is in the table");
        assert_eq!(low.max_video, Some(sfu::Bitrate::kbps(200)));
        assert_eq!(low.max_height, Some(180));
    }

    #[test]
    fn audio_presets_map_to_opus_parameters() {
        let mut p = Map::new();
        AudioQuality::Low.apply_to_opus(&mut p);
        assert_eq!(
            (p["maxaveragebitrate"].clone(), p["stereo"].clone()),
            (json!(16000), json!(0))
        );
        AudioQuality::High.apply_to_opus(&mut p);
        assert_eq!(
            (
                p["maxaveragebitrate"].clone(),
                p["stereo"].clone(),
                p["sprop-stereo"].clone()
            ),
            (json!(64000), json!(1), json!(1))
        );
        assert_eq!(AudioQuality::default(), AudioQuality::Medium);
        assert_eq!(
            AudioQuality::Medium.codec_options()["opusMaxAverageBitrate"],
            32000
        );
    }

    #[test]
    fn preset_names_parse_and_unknown_ones_do_not() {
        let q: VideoQuality = serde_json::from_value(json!("ultra")).expect("known");
        assert_eq!(q, VideoQuality::Ultra);
        assert!(serde_json::from_value::<VideoQuality>(json!("4k")).is_err());
        assert!(serde_json::from_value::<AudioQuality>(json!("loud")).is_err());
    }
}
