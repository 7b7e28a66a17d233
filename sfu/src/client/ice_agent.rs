//! The client's ICE agent for one candidate pair (RFC 8445): sends connectivity checks and
//! answers the peer's own checks, so it works against an ICE-lite server (which never checks)
//! and against a full agent such as libnice (which does). Plays the controlling role
//! (aggressive nomination: every check carries USE-CANDIDATE) or the controlled role (follows the
//! peer's USE-CANDIDATE), and resolves role conflicts by tie-breaker (§7.3.1.1, §7.2.5.1).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::control::IceParams;
use crate::wire::stun::{
    self, BindingRequest, StunClass, StunMessage, StunMethod, write_binding_error,
    write_binding_success,
};

/// How often checks repeat before ICE succeeds.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// How often consent is refreshed after ICE succeeded (RFC 7675 §5.1 asks for about 5 s).
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(5);
/// Transactions remembered for matching responses.
const TXID_MEMORY: usize = 8;
/// Priority of our (host) candidate in checks: type preference 126, local preference 65535,
/// component 1 (RFC 8445 §5.1.2.1), as peer-reflexive would be 110 but host is what we are.
const CHECK_PRIORITY: u32 = (126 << 24) | (65_535 << 8) | (256 - 1);
/// STUN error code for a role conflict (RFC 8445 §7.3.1.1).
const ROLE_CONFLICT: u16 = 487;

/// Which ICE role this end plays (RFC 8445 §6.1.1): the offerer of a full-ICE session
/// controls; the answerer to a full agent's offer is controlled; toward an ICE-lite peer the
/// full agent always controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceRole {
    /// Nominates the pair (sends USE-CANDIDATE).
    Controlling,
    /// Waits for the peer to nominate.
    Controlled,
}

/// Why a STUN message from the peer was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientIceError {
    #[error("not a STUN Binding message")]
    NotBinding,
    #[error("USERNAME does not name this session")]
    UnknownUser,
    #[error("MESSAGE-INTEGRITY missing or wrong")]
    BadIntegrity,
    #[error("FINGERPRINT wrong")]
    BadFingerprint,
    #[error("response to a transaction we did not send")]
    UnknownTransaction,
    #[error("error response {0}")]
    ErrorResponse(u16),
}

/// The ICE state of one client session toward one remote candidate.
#[derive(Debug)]
pub struct ClientIce {
    local: IceParams,
    remote: IceParams,
    role: IceRole,
    tie_breaker: u64,
    remote_addr: SocketAddr,
    /// A check of ours got a valid success response: the pair is valid (§7.2.5.3).
    valid: bool,
    /// The peer's checks reached us and were answered.
    answered: bool,
    /// Controlled role: the peer sent USE-CANDIDATE.
    peer_nominated: bool,
    next_check: Instant,
    txid_counter: u64,
    sent: [Option<[u8; 12]>; TXID_MEMORY],
    sent_next: usize,
    pending: Vec<(SocketAddr, Vec<u8>)>,
}

impl ClientIce {
    /// A new agent that starts checking at `now`. `tie_breaker` must be random per session in
    /// real use (role conflicts are settled by comparing it with the peer's).
    pub fn new(
        local: IceParams,
        remote: IceParams,
        remote_addr: SocketAddr,
        role: IceRole,
        tie_breaker: u64,
        now: Instant,
    ) -> Self {
        ClientIce {
            local,
            remote,
            role,
            tie_breaker,
            remote_addr,
            valid: false,
            answered: false,
            peer_nominated: false,
            next_check: now,
            txid_counter: tie_breaker.rotate_left(17),
            sent: [None; TXID_MEMORY],
            sent_next: 0,
            pending: Vec::new(),
        }
    }

    /// The role currently played (it may have changed through a conflict).
    pub fn role(&self) -> IceRole {
        self.role
    }

    /// The remote candidate.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// Whether a check of ours succeeded: DTLS and media may use the pair.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Whether the peer's checks reached us (a full agent's side of the pair works).
    pub fn peer_checked(&self) -> bool {
        self.answered
    }

    /// Whether the pair is nominated: controlling, our USE-CANDIDATE check succeeded;
    /// controlled, the peer nominated and our own check succeeded too.
    pub fn is_nominated(&self) -> bool {
        match self.role {
            IceRole::Controlling => self.valid,
            IceRole::Controlled => self.valid && self.peer_nominated,
        }
    }

    /// Handles a STUN message from `src`. Requests are answered (queued for
    /// [`poll_transmit`](Self::poll_transmit)); responses to our checks validate the pair.
    pub fn handle_stun(
        &mut self,
        now: Instant,
        src: SocketAddr,
        msg: &StunMessage<'_>,
    ) -> Result<(), ClientIceError> {
        if msg.method != StunMethod::Binding {
            return Err(ClientIceError::NotBinding);
        }
        if msg.has_fingerprint() && !msg.verify_fingerprint() {
            return Err(ClientIceError::BadFingerprint);
        }
        match msg.class {
            StunClass::Request => self.handle_request(now, src, msg),
            StunClass::Success | StunClass::Error => self.handle_response(now, msg),
            // Binding indications are keepalives (RFC 8445 §11): nothing to do.
            StunClass::Indication => Ok(()),
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        src: SocketAddr,
        msg: &StunMessage<'_>,
    ) -> Result<(), ClientIceError> {
        let username = msg.username().ok_or(ClientIceError::UnknownUser)?;
        let (l, r) = (self.local.ufrag.as_bytes(), self.remote.ufrag.as_bytes());
        let matches = username.len() == l.len() + 1 + r.len()
            && username.starts_with(l)
            && username[l.len()] == b':'
            && username.ends_with(r);
        if !matches {
            return Err(ClientIceError::UnknownUser);
        }
        if !msg.verify_integrity(self.local.pwd.as_bytes()) {
            return Err(ClientIceError::BadIntegrity);
        }
        let mut out = [0u8; 256];
        // Role conflict (RFC 8445 §7.3.1.1): the larger tie-breaker keeps controlling.
        let conflict = match (self.role, msg.ice_controlling(), msg.ice_controlled()) {
            (IceRole::Controlling, Some(theirs), _) => Some(self.tie_breaker >= theirs),
            (IceRole::Controlled, _, Some(theirs)) => Some(self.tie_breaker < theirs),
            _ => None,
        };
        match conflict {
            // We keep our role: the peer must switch, told so by a 487.
            Some(true) => {
                if let Ok(n) = write_binding_error(
                    &mut out,
                    &msg.transaction_id,
                    ROLE_CONFLICT,
                    "Role Conflict",
                    Some(self.local.pwd.as_bytes()),
                ) {
                    self.pending.push((src, out[..n].to_vec()));
                }
                return Ok(());
            }
            Some(false) => self.switch_role(now),
            None => {}
        }
        if let Ok(n) = write_binding_success(
            &mut out,
            &msg.transaction_id,
            src,
            self.local.pwd.as_bytes(),
        ) {
            self.pending.push((src, out[..n].to_vec()));
        }
        self.answered = true;
        if self.role == IceRole::Controlled && msg.use_candidate() {
            self.peer_nominated = true;
        }
        // A triggered check (§7.3.1.4): the peer reaches us, so check back at once.
        if !self.valid {
            self.next_check = now;
        }
        Ok(())
    }

    fn handle_response(
        &mut self,
        now: Instant,
        msg: &StunMessage<'_>,
    ) -> Result<(), ClientIceError> {
        let slot = self
            .sent
            .iter()
            .position(|t| *t == Some(msg.transaction_id))
            .ok_or(ClientIceError::UnknownTransaction)?;
        if !msg.verify_integrity(self.remote.pwd.as_bytes()) {
            return Err(ClientIceError::BadIntegrity);
        }
        self.sent[slot] = None;
        if msg.class == StunClass::Error {
            let code = msg.error_code().unwrap_or(0);
            if code == ROLE_CONFLICT {
                // §7.2.5.1: switch role and check again.
                self.switch_role(now);
            }
            return Err(ClientIceError::ErrorResponse(code));
        }
        if !self.valid {
            self.valid = true;
            self.next_check = now + CONSENT_INTERVAL;
        }
        Ok(())
    }

    fn switch_role(&mut self, now: Instant) {
        self.role = match self.role {
            IceRole::Controlling => IceRole::Controlled,
            IceRole::Controlled => IceRole::Controlling,
        };
        self.next_check = now;
    }

    /// Runs the check timer: checks repeat every [`CHECK_INTERVAL`] until the pair is valid,
    /// then every [`CONSENT_INTERVAL`] (consent freshness; nomination is the peer's business
    /// in the controlled role).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_check {
            return;
        }
        self.next_check = now
            + if self.valid {
                CONSENT_INTERVAL
            } else {
                CHECK_INTERVAL
            };
        self.send_check();
    }

    fn send_check(&mut self) {
        let username = format!("{}:{}", self.remote.ufrag, self.local.ufrag);
        let controlling = self.role == IceRole::Controlling;
        let req = BindingRequest {
            username: &username,
            priority: CHECK_PRIORITY,
            controlling: controlling.then_some(self.tie_breaker),
            controlled: (!controlling).then_some(self.tie_breaker),
            use_candidate: controlling,
        };
        self.txid_counter = self.txid_counter.wrapping_add(1);
        let mut txid = [0u8; 12];
        txid[..4].copy_from_slice(&(self.tie_breaker as u32).to_be_bytes());
        txid[4..].copy_from_slice(&self.txid_counter.to_be_bytes());
        let mut buf = [0u8; 512];
        if let Ok(n) =
            stun::write_binding_request(&mut buf, &txid, &req, self.remote.pwd.as_bytes())
        {
            self.sent[self.sent_next] = Some(txid);
            self.sent_next = (self.sent_next + 1) % TXID_MEMORY;
            self.pending.push((self.remote_addr, buf[..n].to_vec()));
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next run.
    pub fn poll_timeout(&self) -> Instant {
        self.next_check
    }

    /// Next STUN datagram and its destination.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        if self.pending.is_empty() {
            None
        } else {
            Some(self.pending.remove(0))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    fn params(u: &str, p: &str) -> IceParams {
        IceParams {
            ufrag: u.into(),
            pwd: p.into(),
        }
    }

    const CLIENT: &str = "10.77.0.2:40000";
    const SERVER: &str = "10.77.0.1:20000";

    fn agent(role: IceRole, tie: u64, now: Instant) -> ClientIce {
        ClientIce::new(
            params("cli", "client-password-0123456789"),
            params("srv", "server-password-0123456789"),
            SERVER.parse::<SocketAddr>().unwrap(),
            role,
            tie,
            now,
        )
    }

    /// A check from the server side (username "cli:srv", keyed with the client password).
    fn server_check(controlling: Option<u64>, controlled: Option<u64>, use_cand: bool) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let req = BindingRequest {
            username: "cli:srv",
            priority: 99,
            controlling,
            controlled,
            use_candidate: use_cand,
        };
        let n =
            stun::write_binding_request(&mut buf, &[9; 12], &req, b"client-password-0123456789")
                .unwrap();
        buf.truncate(n);
        buf
    }

    /// Answers the agent's queued check as a server would, or with `error`.
    fn answer(check: &[u8], error: Option<u16>) -> Vec<u8> {
        let msg = StunMessage::parse(check).unwrap();
        let mut out = vec![0u8; 256];
        let n = match error {
            None => write_binding_success(
                &mut out,
                &msg.transaction_id,
                CLIENT.parse::<SocketAddr>().unwrap(),
                b"server-password-0123456789",
            ),
            Some(code) => write_binding_error(
                &mut out,
                &msg.transaction_id,
                code,
                "x",
                Some(b"server-password-0123456789"),
            ),
        }
        .unwrap();
        out.truncate(n);
        out
    }

    fn feed(ice: &mut ClientIce, now: Instant, bytes: &[u8]) -> Result<(), ClientIceError> {
        let msg = StunMessage::parse(bytes).unwrap();
        ice.handle_stun(now, SERVER.parse::<SocketAddr>().unwrap(), &msg)
    }

    #[test]
    fn controlling_agent_checks_with_use_candidate_and_validates_on_success() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlling, 5, t0);
        ice.handle_timeout(t0);
        let (dst, check) = ice.poll_transmit().unwrap();
        assert_eq!(dst, SERVER.parse::<SocketAddr>().unwrap());
        let msg = StunMessage::parse(&check).unwrap();
        assert_eq!(msg.class, StunClass::Request);
        assert_eq!(msg.username(), Some(&b"srv:cli"[..]));
        assert!(msg.use_candidate());
        assert_eq!(msg.ice_controlling(), Some(5));
        assert!(msg.verify_integrity(b"server-password-0123456789"));
        assert!(msg.verify_fingerprint());
        assert!(!ice.is_valid());
        feed(&mut ice, t0, &answer(&check, None)).unwrap();
        assert!(ice.is_valid() && ice.is_nominated());
        // Checks then slow down to consent refreshes.
        assert_eq!(ice.poll_timeout(), t0 + CONSENT_INTERVAL);
    }

    #[test]
    fn checks_repeat_until_answered() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlling, 5, t0);
        let mut sent = 0;
        let mut now = t0;
        while now < t0 + Duration::from_millis(500) {
            if ice.poll_timeout() <= now {
                ice.handle_timeout(now);
            }
            while ice.poll_transmit().is_some() {
                sent += 1;
            }
            now += Duration::from_millis(10);
        }
        assert_eq!(sent, 10, "one check per 50 ms");
    }

    #[test]
    fn response_with_unknown_transaction_or_bad_key_is_ignored() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlling, 5, t0);
        ice.handle_timeout(t0);
        let (_, check) = ice.poll_transmit().unwrap();
        let mut other = check.clone();
        other[10] ^= 1; // another transaction id
        assert_eq!(
            feed(&mut ice, t0, &answer(&other, None)),
            Err(ClientIceError::UnknownTransaction)
        );
        let msg = StunMessage::parse(&check).unwrap();
        let mut out = vec![0u8; 256];
        let n = write_binding_success(
            &mut out,
            &msg.transaction_id,
            CLIENT.parse::<SocketAddr>().unwrap(),
            b"wrong-password",
        )
        .unwrap();
        assert_eq!(
            feed(&mut ice, t0, &out[..n]),
            Err(ClientIceError::BadIntegrity)
        );
        assert!(!ice.is_valid());
    }

    #[test]
    fn peer_check_is_answered_with_integrity_fingerprint_and_mapped_address() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlled, 5, t0);
        let src: SocketAddr = SERVER.parse::<SocketAddr>().unwrap();
        feed(&mut ice, t0, &server_check(Some(1 << 40), None, false)).unwrap();
        let (dst, resp) = ice.poll_transmit().unwrap();
        assert_eq!(dst, src);
        let msg = StunMessage::parse(&resp).unwrap();
        assert_eq!(msg.class, StunClass::Success);
        assert_eq!(msg.transaction_id, [9; 12]);
        assert_eq!(msg.xor_mapped_address(), Some(src));
        assert!(msg.verify_integrity(b"client-password-0123456789"));
        assert!(msg.verify_fingerprint());
        assert!(ice.peer_checked());
    }

    #[test]
    fn peer_check_with_wrong_password_or_username_is_not_answered() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlled, 5, t0);
        let mut buf = vec![0u8; 512];
        let req = BindingRequest {
            username: "cli:srv",
            priority: 1,
            controlling: Some(1),
            controlled: None,
            use_candidate: true,
        };
        let n = stun::write_binding_request(&mut buf, &[1; 12], &req, b"guess").unwrap();
        assert_eq!(
            feed(&mut ice, t0, &buf[..n]),
            Err(ClientIceError::BadIntegrity)
        );
        let req = BindingRequest {
            username: "other:srv",
            ..req
        };
        let n =
            stun::write_binding_request(&mut buf, &[1; 12], &req, b"client-password-0123456789")
                .unwrap();
        assert_eq!(
            feed(&mut ice, t0, &buf[..n]),
            Err(ClientIceError::UnknownUser)
        );
        assert!(ice.poll_transmit().is_none());
        assert!(!ice.peer_checked());
    }

    #[test]
    fn controlled_agent_checks_without_use_candidate_and_waits_for_nomination() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlled, 5, t0);
        ice.handle_timeout(t0);
        let (_, check) = ice.poll_transmit().unwrap();
        let msg = StunMessage::parse(&check).unwrap();
        assert!(!msg.use_candidate());
        assert_eq!(msg.ice_controlled(), Some(5));
        assert_eq!(msg.ice_controlling(), None);
        feed(&mut ice, t0, &answer(&check, None)).unwrap();
        assert!(ice.is_valid() && !ice.is_nominated());
        // Valid: checks slow down to consent refreshes while the peer decides.
        assert_eq!(ice.poll_timeout(), t0 + CONSENT_INTERVAL);
        feed(&mut ice, t0, &server_check(Some(1 << 40), None, true)).unwrap();
        assert!(ice.is_nominated());
    }

    #[test]
    fn peer_check_triggers_an_immediate_check_back() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlled, 5, t0);
        ice.handle_timeout(t0);
        while ice.poll_transmit().is_some() {}
        let t1 = t0 + Duration::from_millis(10);
        assert!(ice.poll_timeout() > t1);
        feed(&mut ice, t1, &server_check(Some(1 << 40), None, true)).unwrap();
        assert_eq!(ice.poll_timeout(), t1);
    }

    #[test]
    fn role_conflict_with_larger_peer_tie_breaker_makes_us_controlled() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlling, 5, t0);
        feed(&mut ice, t0, &server_check(Some(1 << 40), None, true)).unwrap();
        assert_eq!(ice.role(), IceRole::Controlled);
        let (_, resp) = ice.poll_transmit().unwrap();
        assert_eq!(StunMessage::parse(&resp).unwrap().class, StunClass::Success);
    }

    #[test]
    fn role_conflict_with_smaller_peer_tie_breaker_answers_487() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlling, 1 << 50, t0);
        feed(&mut ice, t0, &server_check(Some(3), None, true)).unwrap();
        assert_eq!(ice.role(), IceRole::Controlling);
        let (_, resp) = ice.poll_transmit().unwrap();
        let msg = StunMessage::parse(&resp).unwrap();
        assert_eq!(msg.class, StunClass::Error);
        assert_eq!(msg.error_code(), Some(487));
        assert!(!ice.peer_checked());
    }

    #[test]
    fn both_controlled_the_larger_tie_breaker_takes_control() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlled, 1 << 50, t0);
        feed(&mut ice, t0, &server_check(None, Some(3), false)).unwrap();
        assert_eq!(ice.role(), IceRole::Controlling);
    }

    #[test]
    fn error_487_to_our_check_switches_role() {
        let t0 = Instant::now();
        let mut ice = agent(IceRole::Controlling, 5, t0);
        ice.handle_timeout(t0);
        let (_, check) = ice.poll_transmit().unwrap();
        assert_eq!(
            feed(&mut ice, t0, &answer(&check, Some(487))),
            Err(ClientIceError::ErrorResponse(487))
        );
        assert_eq!(ice.role(), IceRole::Controlled);
        assert!(!ice.is_valid());
        ice.handle_timeout(t0);
        let (_, check) = ice.poll_transmit().unwrap();
        assert!(
            StunMessage::parse(&check)
                .unwrap()
                .ice_controlled()
                .is_some()
        );
    }
}
