//! One DTLS 1.2 association (RFC 6347) with DTLS-SRTP key export (RFC 5764) as a sans-IO state
//! machine: datagrams and time in, datagrams, events and a timer out. The peer certificate is
//! checked against the SDP fingerprint (RFC 8122 §5, RFC 8827 §6.5).

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::error::Error as EngineError;

use super::client_hello::{ClientHelloPeek, peek_client_hello};
use super::{DtlsCert, DtlsError, Fingerprint};
use crate::srtp::SrtpProfile;

/// The largest datagram a connection emits (the MTU handed to the engine); `poll_transmit`
/// needs an `out` buffer at least this long.
pub const MAX_DATAGRAM: usize = 1200;

/// RFC 5764 §4.2 exporter label.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// The engine keys associations by address; a `DtlsConn` has exactly one, so any fixed address
/// serves. The real 5-tuple lives in the shard core.
const PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9));

/// Which side of the handshake this end plays. Ringcast answers with `a=setup:passive`, so the
/// shard is the server; the load generator and tests also play the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// Waits for the peer's ClientHello.
    Server,
    /// Sends the ClientHello.
    Client,
}

/// What a connection reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed with a verified peer. `keying_material` is the RFC 5764 exporter
    /// output, `profile.keying_material_len()` bytes: client key, server key, client salt,
    /// server salt.
    Connected {
        profile: SrtpProfile,
        keying_material: Vec<u8>,
    },
    /// Application data from the peer (SCTP for data channels).
    ApplicationData(Vec<u8>),
    /// The peer sent close_notify; the connection is finished.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Server only: no ClientHello yet, so no engine association either.
    AwaitClientHello,
    Handshaking,
    Connected,
    Closed,
    Failed,
}

/// What the certificate callback concluded about the peer certificate.
const PEER_UNSEEN: u8 = 0;
const PEER_MATCHED: u8 = 1;
const PEER_MISMATCHED: u8 = 2;

/// A DTLS-SRTP connection with one peer.
pub struct DtlsConn {
    role: DtlsRole,
    cert: Arc<DtlsCert>,
    remote_fingerprint: Fingerprint,
    engine: Endpoint,
    state: State,
    /// Set by the engine's certificate callback (which runs inside `read`).
    peer_verdict: Arc<AtomicU8>,
    /// The latest time seen, for the engine calls that take one but whose API here does not.
    now: Instant,
    transmits: VecDeque<BytesMut>,
    events: VecDeque<DtlsEvent>,
}

impl DtlsConn {
    /// Creates a connection. A client queues its ClientHello at once; a server waits for one.
    /// `remote_fingerprint`: the peer certificate must match it or the handshake fails.
    pub fn new(
        role: DtlsRole,
        cert: Arc<DtlsCert>,
        remote_fingerprint: Fingerprint,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        let local = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let mut conn = DtlsConn {
            role,
            cert,
            remote_fingerprint,
            engine: Endpoint::new(local, rtc_shared::TransportProtocol::UDP, None),
            state: State::AwaitClientHello,
            peer_verdict: Arc::new(AtomicU8::new(PEER_UNSEEN)),
            now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        if role == DtlsRole::Client {
            // As a client, offer every profile Ringcast implements, in preference order.
            let config = conn.handshake_config(&SrtpProfile::PREFERENCE)?;
            conn.engine
                .connect(now, PEER, config, None)
                .map_err(|e| DtlsError::Config(e.to_string()))?;
            conn.state = State::Handshaking;
            conn.collect_transmits();
        }
        Ok(conn)
    }

    /// Feeds one received datagram (already demultiplexed as DTLS, RFC 7983). Datagrams that are
    /// not well-formed DTLS records are discarded, as RFC 6347 §4.1.2.7 asks, and so is anything
    /// arriving after a graceful close. An `Err` is fatal.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DtlsError> {
        self.now = now;
        match self.state {
            State::Closed => return Ok(()),
            State::Failed => return Err(DtlsError::Closed),
            State::AwaitClientHello => {
                if !is_well_framed(datagram) {
                    return Ok(());
                }
                let profiles: &[SrtpProfile] = match peek_client_hello(datagram) {
                    None => return Ok(()),
                    // The engine picks the first of the client's profiles that the server
                    // allows, so allowing only our preferred one enforces server preference.
                    Some(ClientHelloPeek::Offer(offer)) => match offer.preferred() {
                        Some(SrtpProfile::AeadAes128Gcm) => &[SrtpProfile::AeadAes128Gcm],
                        Some(SrtpProfile::Aes128CmHmacSha1_80) => {
                            &[SrtpProfile::Aes128CmHmacSha1_80]
                        }
                        None => return Err(self.fail(DtlsError::NoSrtpProfile)),
                    },
                    // Unreadable here: let the engine choose among all of ours, in client order.
                    Some(ClientHelloPeek::Fragment) => &SrtpProfile::PREFERENCE,
                };
                let config = self.handshake_config(profiles).map_err(|e| self.fail(e))?;
                self.engine.set_server_config(Some(config));
                self.state = State::Handshaking;
            }
            State::Handshaking | State::Connected => {
                if !is_well_framed(datagram) {
                    return Ok(());
                }
            }
        }
        let result = self.engine.read(now, PEER, None, BytesMut::from(datagram));
        self.collect_transmits();
        let events = match result {
            Ok(events) => events,
            Err(e) => return Err(self.fail_with_engine_error(e)),
        };
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => {
                    if let Err(e) = self.on_handshake_complete() {
                        return Err(self.fail(e));
                    }
                }
                EndpointEvent::ApplicationData(data) => self
                    .events
                    .push_back(DtlsEvent::ApplicationData(data.to_vec())),
                EndpointEvent::PeerClosed => {
                    self.state = State::Closed;
                    self.events.push_back(DtlsEvent::Closed);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Drives retransmission timers; call at or after [`poll_timeout`](Self::poll_timeout).
    /// An `Err` (the handshake ran out of retransmissions) is fatal.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        self.now = now;
        if !matches!(self.state, State::Handshaking | State::Connected) {
            return Ok(());
        }
        let result = self.engine.handle_timeout(PEER, now);
        self.collect_transmits();
        // During the handshake the timer path fails only when the retransmission budget is spent
        // (the engine reports it as an invalid state transition).
        result.map_err(|e| match self.state {
            State::Handshaking => self.fail(DtlsError::Timeout),
            _ => self.fail_with_engine_error(e),
        })
    }

    /// Next datagram to send, copied into `out`; None when nothing is pending. A datagram that
    /// does not fit `out` stays queued: pass at least [`MAX_DATAGRAM`] bytes.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        let next = self.transmits.front()?;
        let n = next.len();
        out.get_mut(..n)?.copy_from_slice(next);
        self.transmits.pop_front();
        Some(n)
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Handshaking | State::Connected => self.engine.poll_timeout(&PEER),
            _ => None,
        }
    }

    /// Whether the handshake has completed (and the connection is not closed since).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The role this end plays.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Encrypts `data` as one application-data record and queues it for `poll_transmit`.
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        match self.state {
            State::Connected => {}
            State::Closed | State::Failed => return Err(DtlsError::Closed),
            State::AwaitClientHello | State::Handshaking => return Err(DtlsError::NotConnected),
        }
        let result = self.engine.write(self.now, PEER, data);
        self.collect_transmits();
        result.map_err(|e| self.fail_with_engine_error(e))
    }

    /// Sends close_notify (when a handshake was under way or done) and closes the connection.
    pub fn close(&mut self) {
        if matches!(self.state, State::Handshaking | State::Connected) {
            self.engine.stop(self.now, PEER);
            self.collect_transmits();
        }
        if self.state != State::Failed {
            self.state = State::Closed;
        }
    }

    fn handshake_config(
        &self,
        profiles: &[SrtpProfile],
    ) -> Result<Arc<HandshakeConfig>, DtlsError> {
        let expected = self.remote_fingerprint.clone();
        let verdict = self.peer_verdict.clone();
        // Chains and names mean nothing here: the certificate is self-signed and authenticated
        // by its fingerprint in the signalled SDP.
        let verify = Arc::new(move |certs: &[Vec<u8>], _: &[_]| {
            if certs.first().is_some_and(|der| expected.matches(der)) {
                verdict.store(PEER_MATCHED, Ordering::Relaxed);
                Ok(())
            } else {
                verdict.store(PEER_MISMATCHED, Ordering::Relaxed);
                Err(EngineError::Other(
                    "peer certificate does not match the SDP fingerprint".into(),
                ))
            }
        });
        let config = ConfigBuilder::default()
            .with_crypto_provider(self.cert.provider())
            .with_certificates(vec![self.cert.engine_cert().clone()])
            .with_srtp_protection_profiles(profiles.iter().map(|p| engine_profile(*p)).collect())
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .with_mtu(MAX_DATAGRAM)
            .build(self.role == DtlsRole::Client, None)
            .map_err(|e| DtlsError::Config(e.to_string()))?;
        Ok(Arc::new(config))
    }

    fn on_handshake_complete(&mut self) -> Result<(), DtlsError> {
        let state = self
            .engine
            .get_connection_state(PEER)
            .ok_or(DtlsError::Closed)?;
        // The callback has run; check again so that no path to Connected skips verification.
        let peer = state
            .peer_certificates
            .first()
            .ok_or(DtlsError::NoPeerCertificate)?;
        if !self.remote_fingerprint.matches(peer) {
            return Err(self.mismatch());
        }
        let profile =
            srtp_profile(state.srtp_protection_profile()).ok_or(DtlsError::NoSrtpProfile)?;
        let keying_material = state
            .export_keying_material(SRTP_EXPORTER_LABEL, &[], profile.keying_material_len())
            .map_err(|e| DtlsError::Protocol(e.to_string()))?
            .into_bytes();
        self.state = State::Connected;
        self.events.push_back(DtlsEvent::Connected {
            profile,
            keying_material,
        });
        Ok(())
    }

    fn collect_transmits(&mut self) {
        while let Some(t) = self.engine.poll_transmit() {
            self.transmits.push_back(t.message);
        }
    }

    fn mismatch(&self) -> DtlsError {
        DtlsError::FingerprintMismatch {
            expected: self.remote_fingerprint.to_string(),
        }
    }

    fn fail_with_engine_error(&mut self, e: EngineError) -> DtlsError {
        let error = if self.peer_verdict.load(Ordering::Relaxed) == PEER_MISMATCHED {
            self.mismatch()
        } else {
            match e {
                EngineError::ErrServerNoMatchingSrtpProfile
                | EngineError::ErrClientNoMatchingSrtpProfile
                | EngineError::ErrRequestedButNoSrtpExtension => DtlsError::NoSrtpProfile,
                e => DtlsError::Protocol(e.to_string()),
            }
        };
        self.fail(error)
    }

    fn fail(&mut self, error: DtlsError) -> DtlsError {
        self.state = State::Failed;
        error
    }
}

impl fmt::Debug for DtlsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsConn")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("remote_fingerprint", &self.remote_fingerprint.to_string())
            .field("pending_transmits", &self.transmits.len())
            .field("pending_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

fn engine_profile(p: SrtpProfile) -> SrtpProtectionProfile {
    match p {
        SrtpProfile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        SrtpProfile::Aes128CmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
    }
}

fn srtp_profile(p: SrtpProtectionProfile) -> Option<SrtpProfile> {
    SrtpProfile::from_dtls_id(p as u16)
}

/// Whether `datagram` is a sequence of complete DTLS records (RFC 6347 §4.1): a known content
/// type, a DTLS version (major byte 0xfe) and a length that fits. Anything else is noise.
fn is_well_framed(datagram: &[u8]) -> bool {
    let mut rest = datagram;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        if rest.len() < 13 || !(20..=24).contains(&rest[0]) || rest[1] != 0xfe {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        match rest.get(13 + len..) {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_check_accepts_records_and_rejects_noise() {
        let rec = |ty: u8, body: &[u8]| {
            let mut r = vec![ty, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1];
            r.extend((body.len() as u16).to_be_bytes());
            r.extend(body);
            r
        };
        let mut two = rec(22, &[1, 2, 3]);
        two.extend(rec(20, &[1]));
        assert!(is_well_framed(&two));
        assert!(!is_well_framed(&two[..two.len() - 1]));
        assert!(!is_well_framed(&[]));
        assert!(!is_well_framed(&rec(99, &[1])));
        assert!(!is_well_framed(&[0x16; 100]));
    }

    #[test]
    fn engine_profile_ids_match_srtp_profile_ids() {
        for p in SrtpProfile::PREFERENCE {
            assert_eq!(srtp_profile(engine_profile(p)), Some(p));
        }
    }
}
