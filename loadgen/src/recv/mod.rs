//! The receiving side of a subscriber: sequence continuity per SSRC (loss, duplicates,
//! reordering, recovery by retransmission), which simulcast layer arrives, when frames could be
//! rendered, and the freezes between them.

pub mod continuity;
pub mod frames;
pub mod freeze;
pub mod layers;

pub use continuity::{Arrival, Continuity, ContinuityStats};
pub use frames::{FrameAssembler, FramePacket, FrameStats};
pub use freeze::{FreezeDetector, FreezeStats};
pub use layers::{LayerStats, LayerTracker, MAX_LAYERS};
