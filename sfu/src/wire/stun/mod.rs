//! STUN (RFC 8489) as used by ICE (RFC 8445 §7): a borrowed message view, the attributes ICE
//! needs, MESSAGE-INTEGRITY (HMAC-SHA1) and FINGERPRINT (CRC-32), and writers for Binding
//! requests, success and error responses.

mod attributes;
mod integrity;
mod message;
mod writer;

pub use attributes::*;
pub use message::{StunAttrs, StunMessage};
pub use writer::{
    BindingRequest, StunWriter, write_binding_error, write_binding_request, write_binding_success,
};

/// The fixed value in every STUN header (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_a442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;

/// Why a STUN message could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("shorter than the 20-byte STUN header")]
    TooShort,
    #[error("not a STUN message (leading bits or magic cookie)")]
    NotStun,
    #[error("message length field disagrees with the datagram")]
    BadLength,
    #[error("attribute runs past the end of the message")]
    AttributeOverflow,
    #[error("attribute 0x{0:04x} has a malformed value")]
    BadAttribute(u16),
    #[error("attribute after FINGERPRINT")]
    AttributeAfterFingerprint,
    #[error("output buffer holds {have} bytes, {need} needed")]
    BufferTooSmall { need: usize, have: usize },
    #[error("both ICE-CONTROLLING and ICE-CONTROLLED requested")]
    ConflictingRoles,
    #[error("error code {0} is outside 300..=699")]
    InvalidErrorCode(u16),
    #[error("attribute value too long")]
    ValueTooLong,
}

/// The class of a STUN message (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StunClass {
    Request,
    Indication,
    Success,
    Error,
}

/// The method of a STUN message; ICE uses only Binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StunMethod {
    /// Binding (0x001).
    Binding,
    /// Any other 12-bit method.
    Other(u16),
}

impl StunMethod {
    /// The 12-bit method number.
    pub fn code(self) -> u16 {
        match self {
            StunMethod::Binding => 0x001,
            StunMethod::Other(m) => m & 0x0fff,
        }
    }

    fn from_code(m: u16) -> Self {
        if m == 0x001 {
            StunMethod::Binding
        } else {
            StunMethod::Other(m)
        }
    }
}

/// Splits the 14-bit message type into class and method.
fn split_type(t: u16) -> (StunClass, StunMethod) {
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => StunClass::Request,
        1 => StunClass::Indication,
        2 => StunClass::Success,
        _ => StunClass::Error,
    };
    let method = (t & 0x000f) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0f80);
    (class, StunMethod::from_code(method))
}

/// Joins class and method into the 14-bit message type.
fn join_type(class: StunClass, method: StunMethod) -> u16 {
    let c: u16 = match class {
        StunClass::Request => 0,
        StunClass::Indication => 1,
        StunClass::Success => 2,
        StunClass::Error => 3,
    };
    let m = method.code();
    (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
