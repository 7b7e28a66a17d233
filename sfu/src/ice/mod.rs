//! ICE-lite (RFC 8445 §2.5): answers connectivity checks, follows nomination, tracks consent (RFC 7675).

pub mod lite;

pub use lite::{CheckOutcome, IceError, IceFailure, IceLite, IceTimers};
