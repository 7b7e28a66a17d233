//! The livestream service (seed 001): broadcasts with a stream key, viewers over Socket.IO and
//! WHEP, chat with moderation, under `/api/livestream/*`.

pub mod store;
