//! How the load generator reaches a server's signaling: the [`Target`] trait. A target turns
//! "client N wants to publish or watch stream S" into an SDP exchange and a session to end later.
//! Two flows exist: the client writes the offer (WHIP RFC 9725 and WHEP: post the offer, get the
//! answer and a resource to DELETE), or the server writes it (Janus VideoRoom subscribers: the
//! server sends an offer, the client answers). Everything here is control path and may allocate.

pub mod whip;

use std::any::Any;
use std::fmt;
use std::time::Duration;

pub use whip::WhipTarget;

/// Which side of a peer connection a client plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends media (WHIP ingest, a VideoRoom publisher).
    Publisher,
    /// Receives one publisher's media (WHEP playback, a VideoRoom subscriber).
    Subscriber,
}

impl Role {
    /// `publisher` or `subscriber`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }
}

/// Who writes the SDP offer for a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferSide {
    /// The client offers, the server answers ([`Target::send_offer`]).
    Client,
    /// The server offers, the client answers ([`Target::fetch_offer`], then
    /// [`Target::send_answer`]).
    Server,
}

/// What one client asks of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub role: Role,
    /// Index of this client in the run, unique across roles.
    pub client: usize,
    /// Room index, `0..rooms`.
    pub room: usize,
    /// Index of the publisher this client is (publishers) or watches (subscribers), `0..publishers`.
    pub publisher: usize,
    /// The stream name of that publisher (from `--stream-prefix`, the room and the publisher's
    /// rank in the room): the WHIP/WHEP path segment, or a display name where the target numbers
    /// its rooms itself.
    pub stream: String,
}

/// A live session on the target, ended with [`Target::leave`].
pub struct SessionHandle {
    /// What identifies the session to people: for WHIP/WHEP the resource URL.
    pub resource: String,
    /// Whatever else the target needs to keep or end the session (ids, handles).
    pub state: Option<Box<dyn Any + Send + Sync>>,
}

impl SessionHandle {
    /// A handle that is just a resource string.
    pub fn new(resource: impl Into<String>) -> Self {
        SessionHandle {
            resource: resource.into(),
            state: None,
        }
    }

    /// The target's state, if it is a `T`.
    pub fn state<T: Any>(&self) -> Option<&T> {
        self.state.as_ref().and_then(|s| s.downcast_ref::<T>())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("resource", &self.resource)
            .field("has_state", &self.state.is_some())
            .finish()
    }
}

/// The server's answer to a client's offer.
#[derive(Debug)]
pub struct Answered {
    /// The SDP answer.
    pub sdp: String,
    /// The session just created.
    pub session: SessionHandle,
}

/// An offer written by the server, waiting for the client's answer.
#[derive(Debug)]
pub struct ServerOffer {
    /// The SDP offer.
    pub sdp: String,
    /// The half-made session; [`Target::send_answer`] completes it.
    pub pending: SessionHandle,
}

/// Why a target could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL or an option is not usable.
    #[error("bad target configuration: {0}")]
    Config(String),
    /// Connecting, sending or reading failed (refused, reset, timed out).
    #[error("{what}: {reason}")]
    Transport { what: String, reason: String },
    /// The server answered with an error status.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    /// The server answered something this client does not understand.
    #[error("{what}: {reason}")]
    Protocol { what: String, reason: String },
    /// The target does not do this (for example a server-side offer on WHIP).
    #[error("not supported by this target: {0}")]
    Unsupported(&'static str),
}

/// A signaling protocol the load generator can drive. Implementations are shared by the join
/// threads (`Send + Sync`) and keep any per-run state (room and feed numbers) behind their own
/// locks. Every method blocks until the server has answered.
pub trait Target: Send + Sync + fmt::Debug {
    /// A short description for logs and the report (`whip http://127.0.0.1:8080`).
    fn describe(&self) -> String;

    /// Who writes the offer for `role`.
    fn offer_side(&self, role: Role) -> OfferSide;

    /// Client-offers flow: delivers `offer` and returns the answer and the new session.
    fn send_offer(&self, req: &JoinRequest, offer: &str) -> Result<Answered, TargetError> {
        let _ = (req, offer);
        Err(TargetError::Unsupported("client offers"))
    }

    /// Server-offers flow, first half: asks the server for its offer.
    fn fetch_offer(&self, req: &JoinRequest) -> Result<ServerOffer, TargetError> {
        let _ = req;
        Err(TargetError::Unsupported("server offers"))
    }

    /// Server-offers flow, second half: delivers the client's answer and returns the session.
    fn send_answer(
        &self,
        req: &JoinRequest,
        pending: SessionHandle,
        answer: &str,
    ) -> Result<SessionHandle, TargetError> {
        let _ = (req, pending, answer);
        Err(TargetError::Unsupported("server offers"))
    }

    /// How often [`Target::keepalive`] must run for each live session; `None`: never.
    fn keepalive_interval(&self) -> Option<Duration> {
        None
    }

    /// Keeps a session alive (Janus sessions expire without keepalives).
    fn keepalive(&self, session: &SessionHandle) -> Result<(), TargetError> {
        let _ = session;
        Ok(())
    }

    /// Ends a session (WHIP/WHEP: DELETE the resource).
    fn leave(&self, session: SessionHandle) -> Result<(), TargetError>;
}
