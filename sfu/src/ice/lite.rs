//! The ICE-lite agent of one session (RFC 8445 §2.5, §7.3): answers connectivity checks that carry
//! our credentials, follows the controlling peer's nomination (USE-CANDIDATE), and ends the
//! session when consent lapses (RFC 7675: no valid check for 30 s) or ICE never completes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::control::IceParams;
use crate::wire::stun::{self, StunClass, StunMessage};

/// The most peer addresses one session may validate (each host candidate of the peer counts).
pub const MAX_VALIDATED: usize = 8;

/// ICE-lite timing.
#[derive(Debug, Clone, Copy)]
pub struct IceTimers {
    /// Consent lapses after this long without a valid check (RFC 7675 §5.1).
    pub consent_timeout: Duration,
    /// The session fails if no check was nominated this long after it was created.
    pub connect_timeout: Duration,
}

impl Default for IceTimers {
    fn default() -> Self {
        IceTimers {
            consent_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a check was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    #[error("not a binding request")]
    NotBindingRequest,
    #[error("USERNAME does not name this session")]
    UnknownUser,
    #[error("MESSAGE-INTEGRITY missing or wrong")]
    BadIntegrity,
    #[error("FINGERPRINT missing or wrong")]
    BadFingerprint,
    #[error("too many peer addresses for one session")]
    TooManyAddresses,
    #[error("response does not fit the buffer")]
    BufferTooSmall,
}

/// Why ICE gave up on the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceFailure {
    ConsentExpired,
    ConnectTimeout,
}

/// The state of one session's ICE-lite agent.
#[derive(Debug)]
pub struct IceLite {
    local: IceParams,
    remote_ufrag: String,
    timers: IceTimers,
    created: Instant,
    last_consent: Option<Instant>,
    validated: [Option<SocketAddr>; MAX_VALIDATED],
    nominated: Option<SocketAddr>,
}

/// What a successfully answered check changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Length of the success response written into the caller's buffer.
    pub response_len: usize,
    /// The source address was not validated before this check.
    pub newly_validated: bool,
    /// The nominated address changed to this check's source.
    pub nominated_changed: bool,
}

impl IceLite {
    pub fn new(local: IceParams, remote: &IceParams, timers: IceTimers, now: Instant) -> Self {
        IceLite {
            local,
            remote_ufrag: remote.ufrag.clone(),
            timers,
            created: now,
            last_consent: None,
            validated: [None; MAX_VALIDATED],
            nominated: None,
        }
    }

    /// Our username fragment: the first half of USERNAME in checks for this session.
    pub fn local_ufrag(&self) -> &str {
        &self.local.ufrag
    }

    /// Splits a check's USERNAME (`ours:theirs`) and returns our half, to find the session.
    pub fn local_ufrag_of(username: &[u8]) -> Option<&[u8]> {
        let colon = username.iter().position(|&b| b == b':')?;
        Some(&username[..colon])
    }

    /// Answers a connectivity check from `src` into `out`.
    pub fn handle_check(
        &mut self,
        now: Instant,
        src: SocketAddr,
        msg: &StunMessage<'_>,
        out: &mut [u8],
    ) -> Result<CheckOutcome, IceError> {
        if msg.class != StunClass::Request || msg.method != stun::StunMethod::Binding {
            return Err(IceError::NotBindingRequest);
        }
        let username = msg.username().ok_or(IceError::UnknownUser)?;
        let local = self.local.ufrag.len();
        let ours = username.len() > local + 1
            && username.starts_with(self.local.ufrag.as_bytes())
            && username[local] == b':';
        let theirs = &username[(local + 1).min(username.len())..];
        // An empty remote ufrag: the peer's was never signalled (ORTC-style APIs send only DTLS
        // parameters); the first check that passes integrity names it.
        let matches =
            ours && (self.remote_ufrag.is_empty() || theirs == self.remote_ufrag.as_bytes());
        if !matches {
            return Err(IceError::UnknownUser);
        }
        if !msg.has_fingerprint() || !msg.verify_fingerprint() {
            return Err(IceError::BadFingerprint);
        }
        if !msg.verify_integrity(self.local.pwd.as_bytes()) {
            return Err(IceError::BadIntegrity);
        }
        if self.remote_ufrag.is_empty() {
            match std::str::from_utf8(theirs) {
                Ok(u) => self.remote_ufrag = u.to_owned(),
                Err(_) => return Err(IceError::UnknownUser),
            }
        }
        let newly_validated = if self.is_validated(src) {
            false
        } else {
            let free = self
                .validated
                .iter_mut()
                .find(|a| a.is_none())
                .ok_or(IceError::TooManyAddresses)?;
            *free = Some(src);
            true
        };
        let response_len =
            stun::write_binding_success(out, &msg.transaction_id, src, self.local.pwd.as_bytes())
                .map_err(|_| IceError::BufferTooSmall)?;
        self.last_consent = Some(now);
        let mut nominated_changed = false;
        if msg.use_candidate() && self.nominated != Some(src) {
            self.nominated = Some(src);
            nominated_changed = true;
        }
        Ok(CheckOutcome {
            response_len,
            newly_validated,
            nominated_changed,
        })
    }

    /// Whether `src` has passed a connectivity check (only such addresses may send DTLS or media).
    pub fn is_validated(&self, src: SocketAddr) -> bool {
        self.validated.contains(&Some(src))
    }

    /// Addresses that passed a check.
    pub fn validated(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.validated.iter().flatten().copied()
    }

    /// Where media goes: the nominated address.
    pub fn nominated(&self) -> Option<SocketAddr> {
        self.nominated
    }

    /// Nominates `addr` without a USE-CANDIDATE (a validated address that completed DTLS while
    /// the peer had not nominated yet).
    pub fn nominate(&mut self, addr: SocketAddr) {
        if self.is_validated(addr) {
            self.nominated = Some(addr);
        }
    }

    /// When ICE next needs attention.
    pub fn poll_timeout(&self) -> Instant {
        match (self.nominated, self.last_consent) {
            (Some(_), Some(last)) => last + self.timers.consent_timeout,
            _ => self.created + self.timers.connect_timeout,
        }
    }

    /// Checks the timers; `Some` means the session must end.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<IceFailure> {
        if now < self.poll_timeout() {
            return None;
        }
        Some(if self.nominated.is_some() {
            IceFailure::ConsentExpired
        } else {
            IceFailure::ConnectTimeout
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::stun::{BindingRequest, write_binding_request};

    fn params(u: &str, p: &str) -> IceParams {
        IceParams {
            ufrag: u.into(),
            pwd: p.into(),
        }
    }

    fn agent(now: Instant) -> IceLite {
        IceLite::new(
            params("srvu", "server-password-0123456789"),
            &params("peer", "peer-password-0123456789"),
            IceTimers::default(),
            now,
        )
    }

    fn check(username: &str, key: &str, use_candidate: bool, txid: u8) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let req = BindingRequest {
            username,
            priority: 1,
            controlling: Some(7),
            controlled: None,
            use_candidate,
        };
        let n = write_binding_request(&mut buf, &[txid; 12], &req, key.as_bytes()).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn valid_check_is_answered_with_the_source_address() {
        let t0 = Instant::now();
        let mut ice = agent(t0);
        let src: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let req = check("srvu:peer", "server-password-0123456789", false, 1);
        let msg = StunMessage::parse(&req).unwrap();
        let mut out = [0u8; 256];
        let o = ice.handle_check(t0, src, &msg, &mut out).unwrap();
        assert!(o.newly_validated && !o.nominated_changed);
        let resp = StunMessage::parse(&out[..o.response_len]).unwrap();
        assert_eq!(resp.class, StunClass::Success);
        assert_eq!(resp.transaction_id, [1; 12]);
        assert_eq!(resp.xor_mapped_address(), Some(src));
        assert!(resp.verify_integrity(b"server-password-0123456789"));
        assert!(ice.is_validated(src));
        assert_eq!(ice.nominated(), None);
    }

    #[test]
    fn use_candidate_nominates_and_switches() {
        let t0 = Instant::now();
        let mut ice = agent(t0);
        let a: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:4001".parse().unwrap();
        let mut out = [0u8; 256];
        let req = check("srvu:peer", "server-password-0123456789", true, 2);
        let o = ice
            .handle_check(t0, a, &StunMessage::parse(&req).unwrap(), &mut out)
            .unwrap();
        assert!(o.nominated_changed);
        assert_eq!(ice.nominated(), Some(a));
        let o = ice
            .handle_check(t0, b, &StunMessage::parse(&req).unwrap(), &mut out)
            .unwrap();
        assert!(o.nominated_changed);
        assert_eq!(ice.nominated(), Some(b));
    }

    #[test]
    fn wrong_password_or_user_is_refused() {
        let t0 = Instant::now();
        let mut ice = agent(t0);
        let src: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let mut out = [0u8; 256];
        let bad_key = check("srvu:peer", "not-the-password", true, 3);
        assert_eq!(
            ice.handle_check(t0, src, &StunMessage::parse(&bad_key).unwrap(), &mut out),
            Err(IceError::BadIntegrity)
        );
        let bad_user = check("srvu:other", "server-password-0123456789", true, 4);
        assert_eq!(
            ice.handle_check(t0, src, &StunMessage::parse(&bad_user).unwrap(), &mut out),
            Err(IceError::UnknownUser)
        );
        assert!(!ice.is_validated(src));
    }

    #[test]
    fn consent_expires_thirty_seconds_after_the_last_check() {
        let t0 = Instant::now();
        let mut ice = agent(t0);
        let src: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let mut out = [0u8; 256];
        let req = check("srvu:peer", "server-password-0123456789", true, 5);
        ice.handle_check(t0, src, &StunMessage::parse(&req).unwrap(), &mut out)
            .unwrap();
        // Checks every 5 s keep consent fresh.
        for i in 1..=10u64 {
            let now = t0 + Duration::from_secs(5 * i);
            assert_eq!(ice.handle_timeout(now), None);
            ice.handle_check(now, src, &StunMessage::parse(&req).unwrap(), &mut out)
                .unwrap();
        }
        let last = t0 + Duration::from_secs(50);
        assert_eq!(ice.handle_timeout(last + Duration::from_secs(29)), None);
        assert_eq!(ice.poll_timeout(), last + Duration::from_secs(30));
        assert_eq!(
            ice.handle_timeout(last + Duration::from_secs(30)),
            Some(IceFailure::ConsentExpired)
        );
    }

    #[test]
    fn session_that_never_connects_times_out() {
        let t0 = Instant::now();
        let mut ice = agent(t0);
        assert_eq!(ice.handle_timeout(t0 + Duration::from_secs(29)), None);
        assert_eq!(
            ice.handle_timeout(t0 + Duration::from_secs(30)),
            Some(IceFailure::ConnectTimeout)
        );
    }

    #[test]
    fn unsignalled_remote_ufrag_is_learned_from_the_first_valid_check() {
        let t0 = Instant::now();
        let mut ice = IceLite::new(
            params("srvu", "server-password-0123456789"),
            &params("", ""),
            IceTimers::default(),
            t0,
        );
        let src: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let mut out = [0u8; 256];
        let forged = check("srvu:mallory", "not-the-password", true, 1);
        assert_eq!(
            ice.handle_check(t0, src, &StunMessage::parse(&forged).unwrap(), &mut out),
            Err(IceError::BadIntegrity)
        );
        let first = check("srvu:chrome", "server-password-0123456789", true, 2);
        assert!(
            ice.handle_check(t0, src, &StunMessage::parse(&first).unwrap(), &mut out)
                .is_ok()
        );
        let other = check("srvu:other", "server-password-0123456789", true, 3);
        assert_eq!(
            ice.handle_check(t0, src, &StunMessage::parse(&other).unwrap(), &mut out),
            Err(IceError::UnknownUser),
            "the learned ufrag is kept"
        );
        let empty = check("srvu:", "server-password-0123456789", true, 4);
        assert_eq!(
            ice.handle_check(t0, src, &StunMessage::parse(&empty).unwrap(), &mut out),
            Err(IceError::UnknownUser)
        );
    }

    #[test]
    fn username_split_finds_local_ufrag() {
        assert_eq!(IceLite::local_ufrag_of(b"abc:def"), Some(&b"abc"[..]));
        assert_eq!(IceLite::local_ufrag_of(b"abcdef"), None);
    }
}
