//! Tests of the whole SDP path on offers from real clients, on malformed input, and on arbitrary
//! input.

mod arbitrary_input;
mod content;
mod interop;
mod malformed;
mod real_offers;
mod support;
