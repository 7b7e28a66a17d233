//! Routing: which packets reach which subscriber, and how their headers are rewritten on the way.

pub mod keyframe_gate;
pub mod seq_rewriter;

pub use keyframe_gate::KeyframeGate;
pub use seq_rewriter::{DropOutcome, REWRITE_WINDOW, RewriteStats, SeqRewriter};
