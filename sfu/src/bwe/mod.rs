//! Bandwidth estimation: the receive side of transport-wide congestion control for publishers
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01), GoogCC send-side estimation for viewers
//! (draft-ietf-rmcat-gcc-02) with its pacer, and REMB for publishers without transport-cc.

pub mod acked_bitrate;
pub mod aimd;
pub mod alr;
pub mod clock_unwrap;
pub mod inter_arrival;
pub mod link_capacity;
pub mod loss_based;
pub mod overuse_detector;
pub mod pacer;
pub mod probe;
pub mod probe_estimator;
pub mod rate_trial;
pub mod remb_estimator;
pub mod send_side;
#[cfg(any(test, feature = "sim"))]
pub mod sim_link;
#[cfg(any(test, feature = "sim"))]
pub mod simulation;
pub mod trendline;
pub mod twcc_receiver;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod scenario_tests;

pub use overuse_detector::BandwidthUsage;
pub use pacer::{Paced, Pacer, PacerConfig, PacketKind, QueueFull};
pub use probe::{ProbeCluster, ProbeId};
pub use rate_trial::{TrialConfig, TrialResult};
pub use remb_estimator::{RembConfig, RembEstimator};
pub use send_side::{BweStats, SendSideBwe, SendSideConfig};
pub use twcc_receiver::{TwccReceiver, TwccReceiverConfig};
