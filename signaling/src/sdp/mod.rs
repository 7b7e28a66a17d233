//! SDP offer/answer for WHIP and WHEP (RFC 8829 subset, RFC 8843 BUNDLE, RFC 5761 rtcp-mux).
