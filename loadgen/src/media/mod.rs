//! Synthetic media of a camera publisher's shape, written without allocating: VP8-like video
//! (RFC 7741 descriptor and payload header, 30 fps, periodic and requested keyframes, frame
//! sizes from a target bitrate) and Opus-like audio (RFC 7587, 20 ms packets), each payload
//! ending in a measurement tag (send time and sequence tag), and the ring of sent packets that
//! answers NACKs.

pub mod audio;
pub mod clock;
pub mod sent_ring;
pub mod tag;
pub mod video;

pub use audio::{AudioConfig, AudioSource};
pub use clock::Clock;
pub use sent_ring::SentRing;
pub use tag::{TAG_LEN, Tag};
pub use video::{Chunk, Frame, FramePacketizer, VideoConfig, VideoSource};

/// Largest datagram a client sends: RTP packet plus SRTP authentication tag.
pub const MAX_DATAGRAM: usize = 1200;
/// Largest SRTP authentication tag of the profiles in use (AEAD_AES_128_GCM: 16 bytes).
pub const MAX_SRTP_TAG: usize = 16;
/// Largest plaintext RTP packet, so that the protected datagram fits [`MAX_DATAGRAM`].
pub const MAX_RTP: usize = MAX_DATAGRAM - MAX_SRTP_TAG;
