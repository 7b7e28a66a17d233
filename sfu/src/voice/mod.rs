//! Voice channels: the RFC 6464 audio level of each packet, a per-track speech meter, the
//! active-speaker choice of a group, and the Opus mix a listener may take instead of one stream
//! per participant. Sans-IO: time is an input, and nothing here allocates per packet.

pub mod active_speaker;
pub mod audio_level;
pub mod jitter_buffer;
pub mod limiter;
pub mod mixer;
pub mod speech_meter;

pub use active_speaker::{ActiveSpeaker, Candidate, SpeakerSelector, SpeakerSelectorConfig};
pub use audio_level::{AudioLevel, AudioLevelError};
pub use jitter_buffer::{JitterBuffer, JitterError};
pub use limiter::Limiter;
pub use mixer::{MixError, MixInputStats, Mixer, MixerConfig};
pub use speech_meter::{SpeechConfig, SpeechMeter, SpeechState};
