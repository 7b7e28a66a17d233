//! One client peer connection: ICE toward one server candidate ([`ClientIce`]: checks out,
//! the peer's checks answered, either role), then DTLS in the role the SDP `a=setup` attribute
//! picked (RFC 5763 §5: `active` is the DTLS client, `passive` the server), then SRTP in both
//! directions. Toward an ICE-lite server such as Ringcast the defaults apply: controlling
//! (aggressive nomination) and DTLS client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::ice_agent::{ClientIce, IceRole};
use crate::control::IceParams;
use crate::dtls::{DtlsCert, DtlsConn, DtlsEvent, DtlsRole, Fingerprint, MAX_DATAGRAM};
use crate::srtp::{SrtpError, SrtpSession};
use crate::wire::demux::{PacketClass, classify};
use crate::wire::stun::StunMessage;

/// Tie-breaker used by [`ClientSession::new`] (toward an ICE-lite server no conflict can arise).
const DEFAULT_TIE_BREAKER: u64 = 0x0102_0304_0506_0708;

/// What a client session needs to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our ICE credentials (in our offer).
    pub local_ice: IceParams,
    /// The server's ICE credentials (from its answer).
    pub remote_ice: IceParams,
    /// The server's candidate.
    pub server: SocketAddr,
    /// The server certificate's fingerprint (from its answer).
    pub remote_fingerprint: Fingerprint,
    pub cert: Arc<DtlsCert>,
}

/// The roles a session plays, from the negotiation: who offered, and the `a=setup` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRoles {
    /// ICE role: controlling when we offered to a full agent or talk to an ICE-lite one.
    pub ice: IceRole,
    /// DTLS role (see [`dtls_role_from_setup`]).
    pub dtls: DtlsRole,
    /// ICE tie-breaker; random per session in real use.
    pub tie_breaker: u64,
}

impl Default for ClientRoles {
    /// Toward an ICE-lite server that answers `a=setup:passive`: controlling, DTLS client.
    fn default() -> Self {
        ClientRoles {
            ice: IceRole::Controlling,
            dtls: DtlsRole::Client,
            tie_breaker: DEFAULT_TIE_BREAKER,
        }
    }
}

/// Our DTLS role given the peer's `a=setup` value (RFC 5763 §5, RFC 8842 §5): the peer's
/// `active` makes us the server, `passive` the client; the peer's `actpass` (it offered) leaves
/// the choice to us, and we take `active` (client), as browsers do. None for anything else.
pub fn dtls_role_from_setup(remote_setup: &str) -> Option<DtlsRole> {
    match remote_setup.trim() {
        "active" => Some(DtlsRole::Server),
        "passive" | "actpass" => Some(DtlsRole::Client),
        _ => None,
    }
}

/// The `a=setup` value we signal for a DTLS role.
pub fn setup_attribute(role: DtlsRole) -> &'static str {
    match role {
        DtlsRole::Client => "active",
        DtlsRole::Server => "passive",
    }
}

/// Why a client session failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("DTLS: {0}")]
    Dtls(String),
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    #[error("not connected yet")]
    NotConnected,
}

/// What a received datagram turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// ICE and DTLS completed; media may flow.
    Connected,
    /// A decrypted RTP packet, now in `buf[..len]`.
    Rtp { len: usize },
    /// A decrypted RTCP compound packet, now in `buf[..len]`.
    Rtcp { len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Checking,
    Handshaking,
    Connected,
    Failed,
}

/// A client session.
#[derive(Debug)]
pub struct ClientSession {
    cfg: ClientConfig,
    roles: ClientRoles,
    state: State,
    ice: ClientIce,
    dtls: Option<DtlsConn>,
    srtp: Option<SrtpSession>,
    pending: Vec<(SocketAddr, Vec<u8>)>,
    connected_event: bool,
}

impl ClientSession {
    /// A session toward an ICE-lite server ([`ClientRoles::default`]).
    pub fn new(cfg: ClientConfig, now: Instant) -> Self {
        // The default roles never fail to start: a DTLS client is created only after ICE.
        Self::with_roles(cfg, ClientRoles::default(), now)
            .unwrap_or_else(|_| unreachable!("a DTLS client is not created at construction"))
    }

    /// A session with explicit roles. A DTLS server is created at once (a full ICE agent may
    /// send its ClientHello as soon as its own check succeeds), which can fail.
    pub fn with_roles(
        cfg: ClientConfig,
        roles: ClientRoles,
        now: Instant,
    ) -> Result<Self, ClientError> {
        let ice = ClientIce::new(
            cfg.local_ice.clone(),
            cfg.remote_ice.clone(),
            cfg.server,
            roles.ice,
            roles.tie_breaker,
            now,
        );
        let dtls = match roles.dtls {
            DtlsRole::Server => Some(
                DtlsConn::new(
                    DtlsRole::Server,
                    Arc::clone(&cfg.cert),
                    cfg.remote_fingerprint.clone(),
                    now,
                )
                .map_err(|e| ClientError::Dtls(e.to_string()))?,
            ),
            DtlsRole::Client => None,
        };
        Ok(ClientSession {
            cfg,
            roles,
            state: State::Checking,
            ice,
            dtls,
            srtp: None,
            pending: Vec::new(),
            connected_event: false,
        })
    }

    pub fn server(&self) -> SocketAddr {
        self.cfg.server
    }

    /// The roles in force (the ICE role may have changed through a role conflict).
    pub fn roles(&self) -> ClientRoles {
        ClientRoles {
            ice: self.ice.role(),
            ..self.roles
        }
    }

    /// The ICE agent, for inspection.
    pub fn ice(&self) -> &ClientIce {
        &self.ice
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Handles a datagram from the server's candidate; media is decrypted in place.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<ClientEvent>, ClientError> {
        let src = self.cfg.server;
        self.handle_datagram_from(now, src, buf)
    }

    /// Handles a datagram from `src` (a full ICE agent's checks are answered to their source,
    /// which goes into XOR-MAPPED-ADDRESS); media is decrypted in place.
    pub fn handle_datagram_from(
        &mut self,
        now: Instant,
        src: SocketAddr,
        buf: &mut [u8],
    ) -> Result<Option<ClientEvent>, ClientError> {
        match classify(buf) {
            PacketClass::Stun => {
                if let Ok(msg) = StunMessage::parse(buf) {
                    // Invalid checks and stray responses are ignored, as ICE asks.
                    let _ = self.ice.handle_stun(now, src, &msg);
                    self.collect_ice();
                    self.after_ice(now)?;
                }
                Ok(None)
            }
            PacketClass::Dtls => {
                let Some(dtls) = self.dtls.as_mut() else {
                    return Ok(None);
                };
                if let Err(e) = dtls.handle_datagram(now, buf) {
                    self.state = State::Failed;
                    return Err(ClientError::Dtls(e.to_string()));
                }
                if self.state == State::Checking {
                    // The peer's ClientHello reached us: its checks succeeded, so ours will too.
                    self.state = State::Handshaking;
                }
                self.drain_dtls()?;
                if self.state == State::Connected && !self.connected_event {
                    self.connected_event = true;
                    return Ok(Some(ClientEvent::Connected));
                }
                Ok(None)
            }
            PacketClass::Rtp => {
                let srtp = self.srtp.as_mut().ok_or(ClientError::NotConnected)?;
                let len = srtp.rx.unprotect_rtp(buf)?;
                Ok(Some(ClientEvent::Rtp { len }))
            }
            PacketClass::Rtcp => {
                let srtp = self.srtp.as_mut().ok_or(ClientError::NotConnected)?;
                let len = srtp.rx.unprotect_rtcp(buf)?;
                Ok(Some(ClientEvent::Rtcp { len }))
            }
            PacketClass::Unknown => Ok(None),
        }
    }

    /// Starts DTLS once the pair is valid (client role; a server waits for the ClientHello).
    fn after_ice(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.state != State::Checking || !self.ice.is_valid() {
            return Ok(());
        }
        self.state = State::Handshaking;
        if self.dtls.is_none() {
            let dtls = DtlsConn::new(
                DtlsRole::Client,
                Arc::clone(&self.cfg.cert),
                self.cfg.remote_fingerprint.clone(),
                now,
            )
            .map_err(|e| ClientError::Dtls(e.to_string()))?;
            self.dtls = Some(dtls);
        }
        self.drain_dtls()
    }

    fn collect_ice(&mut self) {
        while let Some(t) = self.ice.poll_transmit() {
            self.pending.push(t);
        }
    }

    fn drain_dtls(&mut self) -> Result<(), ClientError> {
        let Some(dtls) = self.dtls.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; MAX_DATAGRAM + 64];
        while let Some(n) = dtls.poll_transmit(&mut buf) {
            self.pending.push((self.cfg.server, buf[..n].to_vec()));
        }
        while let Some(ev) = dtls.poll_event() {
            match ev {
                DtlsEvent::Connected {
                    profile,
                    keying_material,
                } => {
                    self.srtp = Some(SrtpSession::from_dtls_keying_material(
                        profile,
                        &keying_material,
                        self.roles.dtls == DtlsRole::Client,
                    )?);
                    self.state = State::Connected;
                }
                DtlsEvent::Closed => self.state = State::Failed,
                DtlsEvent::ApplicationData(_) => {}
            }
        }
        Ok(())
    }

    /// Runs timers: checks and consent refreshes, DTLS retransmission.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.state != State::Failed {
            self.ice.handle_timeout(now);
            self.collect_ice();
        }
        if let Some(dtls) = self.dtls.as_mut()
            && dtls.poll_timeout().is_some_and(|t| t <= now)
        {
            if let Err(e) = dtls.handle_timeout(now) {
                self.state = State::Failed;
                return Err(ClientError::Dtls(e.to_string()));
            }
            self.drain_dtls()?;
        }
        Ok(())
    }

    /// Next control datagram (STUN, DTLS) for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.poll_transmit_to().map(|(_, d)| d)
    }

    /// Next control datagram (STUN, DTLS) and its destination (check responses go to the
    /// check's source).
    pub fn poll_transmit_to(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        if self.pending.is_empty() {
            let _ = self.drain_dtls();
        }
        if self.pending.is_empty() {
            None
        } else {
            Some(self.pending.remove(0))
        }
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Instant {
        let ice = self.ice.poll_timeout();
        match self.dtls.as_ref().and_then(|d| d.poll_timeout()) {
            Some(t) => t.min(ice),
            None => ice,
        }
    }

    /// Encrypts an RTP packet in `buf[..len]` in place (needs tailroom for the tag).
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ClientError> {
        Ok(self
            .srtp
            .as_mut()
            .ok_or(ClientError::NotConnected)?
            .tx
            .protect_rtp(buf, len)?)
    }

    /// Encrypts an RTCP packet in `buf[..len]` in place.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ClientError> {
        Ok(self
            .srtp
            .as_mut()
            .ok_or(ClientError::NotConnected)?
            .tx
            .protect_rtcp(buf, len)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
#[path = "session_tests.rs"]
mod tests;
