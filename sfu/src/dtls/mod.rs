//! DTLS 1.2 (RFC 6347) as a sans-IO state machine with DTLS-SRTP key export (RFC 5764), and the
//! process certificate whose fingerprint goes into SDP (RFC 8122). The handshake engine is
//! webrtc-rs's sans-IO `rtc-dtls`; docs/adr/0001-dtls.md records why.

pub mod cert;
pub mod client_hello;
pub mod conn;
pub mod fingerprint;

pub use cert::DtlsCert;
pub use conn::{DtlsConn, DtlsEvent, DtlsRole, MAX_DATAGRAM};
pub use fingerprint::{Fingerprint, FingerprintError};

/// Why a DTLS connection (or the certificate) failed. Every error returned by a [`DtlsConn`]
/// method is fatal for that connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// The certificate or its key could not be generated or loaded.
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// The handshake configuration was rejected by the DTLS engine.
    #[error("DTLS configuration: {0}")]
    Config(String),
    /// The peer's certificate does not hash to the fingerprint from its SDP.
    #[error("peer certificate does not match the SDP fingerprint {expected}")]
    FingerprintMismatch {
        /// The fingerprint the peer announced in SDP.
        expected: String,
    },
    /// The handshake finished without a peer certificate to check.
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    /// The peer offered (or the server chose) no SRTP protection profile Ringcast implements.
    #[error("no common SRTP protection profile")]
    NoSrtpProfile,
    /// The handshake did not complete within the retransmission budget.
    #[error("DTLS handshake timed out")]
    Timeout,
    /// The peer or the engine aborted the handshake or the connection.
    #[error("DTLS failure: {0}")]
    Protocol(String),
    /// Application data was offered before the handshake completed (the connection is unaffected).
    #[error("DTLS handshake has not completed")]
    NotConnected,
    /// The connection was closed or has already failed.
    #[error("DTLS connection is closed")]
    Closed,
}
