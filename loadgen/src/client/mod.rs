//! The media behaviour of one load-generator client above its transport
//! ([`sfu::client::ClientSession`]): a publisher that sends synthetic media and answers feedback,
//! or a subscriber that measures what it receives and sends feedback like a browser. Both are
//! sans-IO: time and bytes in, plaintext packets out (the caller applies SRTP and sends).

pub mod publisher;
pub mod subscriber;

pub use publisher::{Publisher, PublisherConfig};
pub use subscriber::{RtpOutcome, Subscriber, SubscriberConfig, VideoExperience};

/// A plaintext packet a client wants sent, written into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// An RTP packet of this length (protect with SRTP).
    Rtp(usize),
    /// An RTCP compound packet of this length (protect with SRTCP).
    Rtcp(usize),
}

/// Interval of sender and receiver reports (RFC 3550 §6.2 leaves it to the profile; browsers
/// send about one per second).
pub const REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
