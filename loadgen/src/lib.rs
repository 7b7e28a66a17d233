//! Ringcast load generator: publishers and subscribers that speak WHIP/WHEP (or another
//! [`target::Target`]), then ICE, DTLS and SRTP over UDP through the `sfu` crate's client
//! session, sending synthetic media of a realistic shape and measuring what arrives.

pub mod http;
pub mod janus;
pub mod sdp;
pub mod target;
