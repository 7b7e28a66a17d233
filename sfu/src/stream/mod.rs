//! Per-stream state on the receive and send sides: statistics, NACK generation, the packet cache answering NACKs, keyframe requests.

pub mod keyframe_requester;
pub mod nack_generator;
pub mod ntp;
pub mod packet_cache;
pub mod recv_stats;
pub mod retransmit_limiter;
pub mod send_stats;
pub mod seq_unwrapper;

pub use keyframe_requester::KeyframeRequester;
pub use nack_generator::{NackConfig, NackGenerator, NackStats};
pub use ntp::{
    NtpClock, compact_ntp, compact_to_duration, duration_to_compact, duration_to_ntp,
    system_time_to_ntp,
};
pub use packet_cache::{CachedPacket, MAX_CACHED_PACKET, PacketCache};
pub use recv_stats::{ReceptionReport, RecvStats};
pub use retransmit_limiter::RetransmitLimiter;
pub use send_stats::{RemoteReception, SendStats};
pub use seq_unwrapper::SeqUnwrapper;
