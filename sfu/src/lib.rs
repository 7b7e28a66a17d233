//! Ringcast media plane: a sans-IO WebRTC core (ICE-lite, DTLS-SRTP, RTP/RTCP forwarding) driven by
//! thread-per-core shards over io_uring or recvmmsg/sendmmsg.
//!
//! Layering, from the wire up: [`wire`] parses and writes packets without allocating; [`srtp`],
//! [`dtls`] and [`ice`] are the transport state machines; [`stream`] and [`route`] hold per-stream
//! state (NACK, RTX cache, keyframe gating, sequence rewriting); [`core`] ties them into one
//! `ShardCore` per shard; [`shard`] runs a core on a pinned thread over an [`io`] backend.

pub mod alloc;
pub mod bwe;
pub mod client;
pub mod control;
pub mod core;
pub mod dtls;
pub mod ice;
pub mod io;
pub mod metrics;
pub mod route;
pub mod shard;
#[cfg(feature = "sim")]
pub mod sim;
pub mod srtp;
pub mod stream;
pub mod types;
pub mod voice;
pub mod wire;

pub use types::*;
