//! WebRTC client sessions in the same sans-IO style as the server core: a full ICE agent (either
//! role, toward ICE-lite or full servers), DTLS in either role, and SRTP. The load generator and
//! the tests drive servers with them.

pub mod ice_agent;
pub mod session;

pub use ice_agent::{ClientIce, ClientIceError, IceRole};
pub use session::{
    ClientConfig, ClientError, ClientEvent, ClientRoles, ClientSession, dtls_role_from_setup,
    setup_attribute,
};
