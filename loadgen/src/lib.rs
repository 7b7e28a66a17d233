//! Ringcast load generator: publishers and subscribers that speak WHIP/WHEP (or another
//! [`target::Target`]), then ICE, DTLS and SRTP over UDP through the `sfu` crate's client
//! session, sending synthetic media of a realistic shape and measuring what arrives.
//!
//! Layers: [`target`] (signaling) and [`sdp`] negotiate; [`join`] turns one [`plan`] entry into
//! a ready client; [`engine`] runs many clients per thread over epoll and batched UDP I/O;
//! [`client`] is the media behaviour (publisher, subscriber) over [`media`] sources and
//! [`recv`] accounting; [`stats`] measures and reports; [`run`] ties a whole run together.
//! [`relay`] impairs links (the relay, and the per-viewer downlinks of [`classes`]).

pub mod classes;
pub mod cli;
pub mod client;
pub mod engine;
pub mod http;
pub mod janus;
pub mod join;
pub mod media;
pub mod plan;
pub mod recv;
pub mod relay;
pub mod run;
pub mod sdp;
pub mod stats;
pub mod target;
