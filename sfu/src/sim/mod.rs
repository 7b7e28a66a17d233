//! A simulated deployment for tests and benchmarks (feature `sim`): shard cores and client peers
//! (ICE, DTLS-SRTP, synthetic camera media) on a virtual network under a virtual clock.
//!
//! This is test support, not media-plane code: it allocates freely and panics when a setup step
//! that must succeed (certificate generation, adding a session) fails.

mod codecs;
mod harness;
mod media_source;
mod simulcast_source;

pub use codecs::*;
pub use harness::{Downlink, DropFilter, Harness, Peer};
pub use media_source::{AUDIO_INTERVAL, AUDIO_PAYLOAD, FRAME_INTERVAL, MediaSource, VIDEO_TS_STEP};
pub use simulcast_source::{
    SIM_FRAME_BYTES, SIM_LAYER_BYTE, SIM_VP8_DESCRIPTOR_LEN, SimulcastEncoding, SimulcastSource,
};

thread_local! {
    /// Set while this thread's harness is inside a core call, so a counting allocator can
    /// attribute allocations (per thread: tests run in parallel).
    pub static IN_CORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with [`IN_CORE`] set.
pub fn in_core<R>(f: impl FnOnce() -> R) -> R {
    IN_CORE.with(|c| c.set(true));
    let r = f();
    IN_CORE.with(|c| c.set(false));
    r
}

/// A core configuration whose allocator never pauses video: for tests where the media is kept
/// above a viewer's estimate on purpose (a sender following the estimate, a pacer kept busy)
/// and a pause would leave nothing to measure.
pub fn config_without_pauses() -> crate::core::CoreConfig {
    crate::core::CoreConfig {
        allocator: crate::alloc::AllocatorConfig {
            pause_video: false,
            ..crate::alloc::AllocatorConfig::default()
        },
        ..crate::core::CoreConfig::default()
    }
}
