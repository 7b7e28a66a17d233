//! One client peer connection toward an ICE-lite server: sends connectivity checks with
//! USE-CANDIDATE (RFC 8445 §7.2.2, aggressive nomination toward a lite agent), then the DTLS
//! handshake as client (RFC 5763 `setup:active`), then SRTP in both directions.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control::IceParams;
use crate::dtls::{DtlsCert, DtlsConn, DtlsEvent, DtlsRole, Fingerprint};
use crate::srtp::{SrtpError, SrtpSession};
use crate::wire::demux::{PacketClass, classify};
use crate::wire::stun::{self, BindingRequest, StunClass, StunMessage};

/// How often checks repeat before ICE succeeds, and consent refreshes after.
const CHECK_INTERVAL: Duration = Duration::from_millis(50);
const CONSENT_INTERVAL: Duration = Duration::from_secs(5);

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
    state: State,
    dtls: Option<DtlsConn>,
    srtp: Option<SrtpSession>,
    next_check: Instant,
    txid: u64,
    pending: VecDeque<Vec<u8>>,
    connected_event: bool,
}

impl ClientSession {
    pub fn new(cfg: ClientConfig, now: Instant) -> Self {
        ClientSession {
            cfg,
            state: State::Checking,
            dtls: None,
            srtp: None,
            next_check: now,
            txid: 1,
            pending: VecDeque::new(),
            connected_event: false,
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.cfg.server
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Handles a datagram from the server; media is decrypted in place.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<ClientEvent>, ClientError> {
        match classify(buf) {
            PacketClass::Stun => {
                if let Ok(msg) = StunMessage::parse(buf)
                    && msg.class == StunClass::Success
                    && msg.verify_integrity(self.cfg.remote_ice.pwd.as_bytes())
                    && self.state == State::Checking
                {
                    self.state = State::Handshaking;
                    let dtls = DtlsConn::new(
                        DtlsRole::Client,
                        Arc::clone(&self.cfg.cert),
                        self.cfg.remote_fingerprint.clone(),
                        now,
                    )
                    .map_err(|e| ClientError::Dtls(e.to_string()))?;
                    self.dtls = Some(dtls);
                    self.next_check = now + CONSENT_INTERVAL;
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

    fn drain_dtls(&mut self) -> Result<(), ClientError> {
        let Some(dtls) = self.dtls.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 2048];
        while let Some(n) = dtls.poll_transmit(&mut buf) {
            self.pending.push_back(buf[..n].to_vec());
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
                        true,
                    )?);
                    self.state = State::Connected;
                }
                DtlsEvent::Closed => self.state = State::Failed,
                DtlsEvent::ApplicationData(_) => {}
            }
        }
        Ok(())
    }

    /// Runs timers: check retransmission, consent refresh, DTLS retransmission.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        if now >= self.next_check && self.state != State::Failed {
            let interval = if self.state == State::Checking {
                CHECK_INTERVAL
            } else {
                CONSENT_INTERVAL
            };
            self.next_check = now + interval;
            let mut buf = [0u8; 512];
            let username = format!("{}:{}", self.cfg.remote_ice.ufrag, self.cfg.local_ice.ufrag);
            let req = BindingRequest {
                username: &username,
                priority: 0x6e7f_1eff,
                controlling: Some(0x0102_0304_0506_0708),
                controlled: None,
                use_candidate: true,
            };
            self.txid += 1;
            let mut txid = [0u8; 12];
            txid[4..].copy_from_slice(&self.txid.to_be_bytes());
            if let Ok(n) = stun::write_binding_request(
                &mut buf,
                &txid,
                &req,
                self.cfg.remote_ice.pwd.as_bytes(),
            ) {
                self.pending.push_back(buf[..n].to_vec());
            }
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
        if self.pending.is_empty() {
            let _ = self.drain_dtls();
        }
        self.pending.pop_front()
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Instant {
        let dtls = self.dtls.as_ref().and_then(|d| d.poll_timeout());
        match dtls {
            Some(t) => t.min(self.next_check),
            None => self.next_check,
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
