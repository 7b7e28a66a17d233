//! WebRTC client sessions in the same sans-IO style as the server core: a controlling ICE agent,
//! a DTLS client and SRTP. The load generator and the tests drive the server with them.

pub mod session;

pub use session::{ClientConfig, ClientError, ClientEvent, ClientSession};
