//! Bandwidth estimation: the receive side of transport-wide congestion control for publishers
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01), with estimation and allocation for
//! subscribers to follow.

pub mod twcc_receiver;

pub use twcc_receiver::{TwccReceiver, TwccReceiverConfig};
