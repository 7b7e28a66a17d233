//! Tunables of a shard core.

use std::time::Duration;

use crate::ice::IceTimers;

/// Limits and intervals of one shard core. The defaults suit browsers on the public Internet.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub ice: IceTimers,
    /// Most sessions the shard accepts; `AddSession` beyond fails.
    pub max_sessions: usize,
    /// Packets kept per video track to answer NACKs.
    pub video_cache_packets: usize,
    /// Packets kept per audio track.
    pub audio_cache_packets: usize,
    /// Slots of the queue for control datagrams (STUN, DTLS, RTCP, retransmissions).
    pub control_queue_slots: usize,
    /// Packets waiting to be fanned out before new ones are dropped.
    pub fanout_queue_packets: usize,
    /// Minimum spacing of keyframe requests sent to one publisher.
    pub keyframe_request_interval: Duration,
    /// How often receiver and sender reports go out.
    pub report_interval: Duration,
    /// Granularity of the core's periodic work (NACKs, timers, reports).
    pub tick: Duration,
    /// The per-viewer bandwidth allocator's tunables.
    pub allocator: crate::alloc::AllocatorConfig,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            ice: IceTimers::default(),
            max_sessions: 10_000,
            video_cache_packets: 512,
            audio_cache_packets: 64,
            control_queue_slots: 1024,
            fanout_queue_packets: 4096,
            keyframe_request_interval: Duration::from_millis(500),
            report_interval: Duration::from_secs(1),
            tick: Duration::from_millis(10),
            allocator: crate::alloc::AllocatorConfig::default(),
        }
    }
}
