//! SDP offer/answer for WHIP and WHEP (RFC 9725; RFC 8829 subset, RFC 8843 BUNDLE, RFC 5761
//! rtcp-mux, RFC 8840 trickle fragments). Offers are parsed with the `sdp` crate into
//! [`Offer`], negotiated for a [`Role`] against [`Capabilities`] into [`Negotiated`] (the control
//! types of `sfu::control`), and answered as ICE-lite by [`write_answer`].
//!
//! ```text
//! parse_offer(text) -> Offer -> negotiate(&offer, role, &caps) -> Negotiated
//!                                                   write_answer(&negotiated, &local) -> String
//! ```
//!
//! Every failure is an [`SdpError`] whose [`SdpError::http_status`] is 400 (malformed) or 422
//! (well formed but unsupported).

mod answer;
mod candidate;
mod codec;
mod error;
mod extension;
mod fmtp;
mod negotiate;
mod offer;
mod offered_media;
mod simulcast;
mod trickle;

#[cfg(test)]
mod tests;

pub use answer::{LocalDescription, SendSsrcs, write_answer};
pub use candidate::{
    Candidate, CandidateProtocol, CandidateType, RemoteCandidate, parse_candidate,
};
pub use codec::Capabilities;
pub use error::{SdpError, SdpErrorClass};
pub use extension::HeaderExtension;
pub use negotiate::{Negotiated, NegotiatedMedia, Role, negotiate};
pub use offer::{Offer, Setup, parse_offer};
pub use offered_media::{Direction, OfferedCodec, OfferedMedia, RidDirection};
pub use simulcast::{SimulcastAttribute, offered_layers, order_layers, parse_simulcast};
pub use trickle::{FragMedia, SdpFrag, parse_trickle_sdpfrag};
