//! SRTP and SRTCP (RFC 3711) with AEAD_AES_128_GCM (RFC 7714) and AES_CM_128_HMAC_SHA1_80,
//! protecting and unprotecting packets in place.
//!
//! [`SrtpSession`] holds both directions of a DTLS-SRTP association; each direction is an
//! [`SrtpContext`]. Nothing on the per-packet path allocates: per-SSRC state lives in tables
//! reserved when a context is built. Crypto backends (ring for GCM, RustCrypto for AES-CM and
//! HMAC-SHA1) were chosen by measurement: docs/adr/0003-srtp-crypto.md.

mod aes_cm;
mod context;
mod error;
mod gcm;
mod header;
mod kdf;
pub mod profile;
mod replay;
mod rollover;
mod session;
mod ssrc_table;

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use context::{DEFAULT_MAX_SSRCS, SRTCP_REPLAY_WINDOW, SRTP_REPLAY_WINDOW, SrtpContext};
pub use error::{ReplayKind, SrtpError};
pub use profile::{MAX_SRTP_OVERHEAD, SrtpProfile};
pub use session::SrtpSession;
