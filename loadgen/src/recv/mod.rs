//! The receiving side of a subscriber: sequence continuity per SSRC (loss, duplicates,
//! reordering, recovery by retransmission).

pub mod continuity;

pub use continuity::{Arrival, Continuity, ContinuityStats};
