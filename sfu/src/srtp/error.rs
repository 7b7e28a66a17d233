//! Errors of SRTP/SRTCP protection (RFC 3711), one per way a packet or a key can be refused.

/// Why a packet could not be protected or unprotected, or a context could not be built.
///
/// The shard core counts [`SrtpError::Authentication`] and [`SrtpError::Replay`] under separate
/// drop reasons; everything else received from the network is a malformed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The packet is shorter than its headers and tag, or its RTP/RTCP header is invalid.
    #[error("malformed or truncated SRTP/SRTCP packet")]
    Malformed,
    /// The authentication tag did not verify.
    #[error("SRTP authentication failed")]
    Authentication,
    /// The packet index was already received, or is older than the replay window.
    #[error("SRTP replay: {0}")]
    Replay(ReplayKind),
    /// The output buffer has no room for the tag (and, for SRTCP, the index).
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes the protected packet needs.
        needed: usize,
        /// Bytes the caller's buffer holds.
        available: usize,
    },
    /// A master key or salt has the wrong length for the profile.
    #[error("bad key length for the SRTP profile: expected {expected} bytes, got {actual}")]
    BadKeyLength {
        /// Length the profile requires.
        expected: usize,
        /// Length that was given.
        actual: usize,
    },
    /// The context already tracks its maximum number of SSRCs.
    #[error("too many SSRCs in one SRTP context (limit {0})")]
    TooManySsrcs(usize),
    /// The packet index space of this key is used up (2^48 SRTP or 2^31 SRTCP packets);
    /// the session must be rekeyed.
    #[error("SRTP packet index exhausted; rekey required")]
    IndexExhausted,
}

/// The two ways a packet fails the replay check (RFC 3711 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayKind {
    /// This index was already accepted.
    Duplicate,
    /// The index is behind the replay window.
    TooOld,
}

impl std::fmt::Display for ReplayKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplayKind::Duplicate => "duplicate packet",
            ReplayKind::TooOld => "packet older than the replay window",
        })
    }
}
