//! ICE-lite (RFC 8445 §2.5): answers connectivity checks, follows nomination, tracks consent (RFC 7675).
