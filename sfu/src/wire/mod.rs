//! Wire formats, parsed and written in place without allocating: RFC 7983 demultiplexing, RTP
//! (RFC 3550, RFC 8285 header extensions), RTCP (RFC 3550, RFC 4585, RFC 5104), STUN (RFC 8489)
//! and the codec payload descriptors needed to find keyframes.

pub mod codec;
pub mod demux;
pub mod rtcp;
pub mod rtp;
pub mod seq;
pub mod stun;

mod be;

pub use demux::{PacketClass, classify};
