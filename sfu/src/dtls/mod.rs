//! DTLS 1.2 (RFC 6347) as a sans-IO state machine with DTLS-SRTP key export (RFC 5764), and the
//! process certificate whose fingerprint goes into SDP.

pub mod fingerprint;

pub use fingerprint::{Fingerprint, FingerprintError};
