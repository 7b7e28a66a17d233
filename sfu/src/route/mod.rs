//! Routing: which packets reach which subscriber, and how their headers are rewritten on the way.

pub mod keyframe_gate;
pub mod layer_selector;
pub mod picture_id_rewriter;
pub mod seq_rewriter;

pub use keyframe_gate::KeyframeGate;
pub use layer_selector::{LayerSelector, SimulcastStep, Verdict};
pub use picture_id_rewriter::{FrameNumberRewriter, PictureIdRewriter};
pub use seq_rewriter::{DropOutcome, REWRITE_WINDOW, RewriteStats, SeqRewriter};
