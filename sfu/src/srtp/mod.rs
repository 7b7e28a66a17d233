//! SRTP and SRTCP (RFC 3711) with AEAD_AES_128_GCM (RFC 7714) and AES_CM_128_HMAC_SHA1_80,
//! protecting and unprotecting packets in place.

pub mod profile;

pub use profile::{MAX_SRTP_OVERHEAD, SrtpProfile};
