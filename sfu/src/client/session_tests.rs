//! Two client sessions wired back to back under a virtual clock: each is the other's full ICE
//! agent, so every role combination a full-ICE server (Janus/libnice) can put us in is run.

use std::time::Duration;

use super::*;
use crate::wire::rtp::{RtpFields, write_rtp};
use crate::{PayloadType, SeqNo, Ssrc};

const A: &str = "10.77.0.2:40000";
const B: &str = "10.77.0.1:20000";

struct Pair {
    now: Instant,
    a: ClientSession,
    b: ClientSession,
    /// Datagrams on the wire: (from a?, destination, bytes).
    delivered: usize,
    drop_first_from_a: usize,
}

fn ice(u: &str) -> IceParams {
    IceParams {
        ufrag: u.into(),
        pwd: format!("{u}-password-0123456789"),
    }
}

fn pair(ra: ClientRoles, rb: ClientRoles) -> Pair {
    let now = Instant::now();
    let ca = Arc::new(DtlsCert::generate().unwrap());
    let cb = Arc::new(DtlsCert::generate().unwrap());
    let a = ClientSession::with_roles(
        ClientConfig {
            local_ice: ice("aaaa"),
            remote_ice: ice("bbbb"),
            server: B.parse::<SocketAddr>().unwrap(),
            remote_fingerprint: cb.fingerprint(),
            cert: Arc::clone(&ca),
        },
        ra,
        now,
    )
    .unwrap();
    let b = ClientSession::with_roles(
        ClientConfig {
            local_ice: ice("bbbb"),
            remote_ice: ice("aaaa"),
            server: A.parse::<SocketAddr>().unwrap(),
            remote_fingerprint: ca.fingerprint(),
            cert: cb,
        },
        rb,
        now,
    )
    .unwrap();
    Pair {
        now,
        a,
        b,
        delivered: 0,
        drop_first_from_a: 0,
    }
}

impl Pair {
    /// Runs both sides for `ms` virtual milliseconds in 1 ms steps (zero network delay).
    fn run(&mut self, ms: u64) -> (Vec<ClientEvent>, Vec<ClientEvent>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for _ in 0..ms {
            if self.a.poll_timeout() <= self.now {
                self.a.handle_timeout(self.now).unwrap();
            }
            if self.b.poll_timeout() <= self.now {
                self.b.handle_timeout(self.now).unwrap();
            }
            for _ in 0..16 {
                let mut moved = false;
                while let Some((dst, mut d)) = self.a.poll_transmit_to() {
                    moved = true;
                    assert_eq!(dst, B.parse::<SocketAddr>().unwrap());
                    if self.drop_first_from_a > 0 {
                        self.drop_first_from_a -= 1;
                        continue;
                    }
                    self.delivered += 1;
                    let from = A.parse::<SocketAddr>().unwrap();
                    if let Some(e) = self.b.handle_datagram_from(self.now, from, &mut d).unwrap() {
                        eb.push(e);
                    }
                }
                while let Some((dst, mut d)) = self.b.poll_transmit_to() {
                    moved = true;
                    assert_eq!(dst, A.parse::<SocketAddr>().unwrap());
                    self.delivered += 1;
                    let from = B.parse::<SocketAddr>().unwrap();
                    if let Some(e) = self.a.handle_datagram_from(self.now, from, &mut d).unwrap() {
                        ea.push(e);
                    }
                }
                if !moved {
                    break;
                }
            }
            self.now += Duration::from_millis(1);
        }
        (ea, eb)
    }

    /// Sends one RTP packet from a to b and returns b's decrypted payload.
    fn rtp_a_to_b(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let fields = RtpFields {
            marker: false,
            payload_type: PayloadType(96),
            seq: SeqNo(7),
            timestamp: 9000,
            ssrc: Ssrc(0x1234),
            extensions: &[],
        };
        let len = write_rtp(&mut buf, &fields, payload).unwrap();
        let h = len - payload.len();
        let n = self.a.protect_rtp(&mut buf, len).unwrap();
        let ev = self.b.handle_datagram(self.now, &mut buf[..n]).unwrap();
        let Some(ClientEvent::Rtp { len }) = ev else {
            panic!("expected RTP, got {ev:?}");
        };
        buf[h..len].to_vec()
    }
}

fn roles(ice: IceRole, dtls: DtlsRole, tie_breaker: u64) -> ClientRoles {
    ClientRoles {
        ice,
        dtls,
        tie_breaker,
    }
}

fn connects(ra: ClientRoles, rb: ClientRoles) -> Pair {
    let mut p = pair(ra, rb);
    let (ea, eb) = p.run(2000);
    assert!(p.a.is_connected(), "a not connected: {:?}", p.a);
    assert!(p.b.is_connected(), "b not connected: {:?}", p.b);
    assert_eq!(ea, vec![ClientEvent::Connected]);
    assert_eq!(eb, vec![ClientEvent::Connected]);
    assert!(p.a.ice().is_nominated() && p.b.ice().is_nominated());
    assert_eq!(p.rtp_a_to_b(b"hello"), b"hello");
    p
}

#[test]
fn we_offer_to_a_full_agent_controlling_and_dtls_server() {
    // We offered (controlling); the peer answered a=setup:active, so we are the DTLS server.
    connects(
        roles(IceRole::Controlling, DtlsRole::Server, 10),
        roles(IceRole::Controlled, DtlsRole::Client, 20),
    );
}

#[test]
fn full_agent_offers_to_us_controlled_and_dtls_client() {
    // The peer offered actpass and controls; we answered a=setup:active.
    connects(
        roles(IceRole::Controlled, DtlsRole::Client, 10),
        roles(IceRole::Controlling, DtlsRole::Server, 20),
    );
}

#[test]
fn controlled_and_dtls_server_also_connects() {
    connects(
        roles(IceRole::Controlled, DtlsRole::Server, 10),
        roles(IceRole::Controlling, DtlsRole::Client, 20),
    );
}

#[test]
fn both_controlling_resolve_the_conflict_and_connect() {
    let p = connects(
        roles(IceRole::Controlling, DtlsRole::Client, 10),
        roles(IceRole::Controlling, DtlsRole::Server, 20),
    );
    // The larger tie-breaker keeps control.
    assert_eq!(p.a.roles().ice, IceRole::Controlled);
    assert_eq!(p.b.roles().ice, IceRole::Controlling);
}

#[test]
fn connection_survives_lost_first_checks() {
    let mut p = pair(
        roles(IceRole::Controlled, DtlsRole::Client, 10),
        roles(IceRole::Controlling, DtlsRole::Server, 20),
    );
    p.drop_first_from_a = 3;
    p.run(3000);
    assert!(p.a.is_connected() && p.b.is_connected());
}

#[test]
fn connects_within_a_few_check_intervals() {
    let mut p = pair(
        roles(IceRole::Controlled, DtlsRole::Client, 10),
        roles(IceRole::Controlling, DtlsRole::Server, 20),
    );
    let (ea, _) = p.run(60);
    assert_eq!(
        ea,
        vec![ClientEvent::Connected],
        "no loss: the first checks suffice"
    );
}

#[test]
fn consent_checks_continue_after_connecting() {
    let mut p = connects(
        roles(IceRole::Controlled, DtlsRole::Client, 10),
        roles(IceRole::Controlling, DtlsRole::Server, 20),
    );
    let before = p.delivered;
    p.run(11_000);
    // Each side refreshes consent every 5 s: at least 2 checks and 2 answers per side.
    assert!(p.delivered - before >= 8, "{}", p.delivered - before);
    assert!(p.a.is_connected() && p.b.is_connected());
}

#[test]
fn wrong_fingerprint_fails_the_handshake() {
    let now = Instant::now();
    let ca = Arc::new(DtlsCert::generate().unwrap());
    let other = DtlsCert::generate().unwrap();
    let mut p = pair(
        roles(IceRole::Controlled, DtlsRole::Client, 10),
        roles(IceRole::Controlling, DtlsRole::Server, 20),
    );
    // Replace b with one that expects another certificate from a.
    p.b = ClientSession::with_roles(
        ClientConfig {
            local_ice: ice("bbbb"),
            remote_ice: ice("aaaa"),
            server: A.parse::<SocketAddr>().unwrap(),
            remote_fingerprint: other.fingerprint(),
            cert: ca,
        },
        roles(IceRole::Controlling, DtlsRole::Server, 20),
        now,
    )
    .unwrap();
    let mut failed = false;
    for _ in 0..2000 {
        let now = p.now;
        if p.a.poll_timeout() <= now {
            let _ = p.a.handle_timeout(now);
        }
        if p.b.poll_timeout() <= now {
            let _ = p.b.handle_timeout(now);
        }
        while let Some(mut d) = p.a.poll_transmit() {
            failed |=
                p.b.handle_datagram_from(now, A.parse::<SocketAddr>().unwrap(), &mut d)
                    .is_err();
        }
        while let Some(mut d) = p.b.poll_transmit() {
            let _ =
                p.a.handle_datagram_from(now, B.parse::<SocketAddr>().unwrap(), &mut d);
        }
        p.now += Duration::from_millis(1);
    }
    assert!(failed && p.b.has_failed() && !p.b.is_connected());
}

#[test]
fn setup_attribute_picks_the_dtls_role() {
    assert_eq!(dtls_role_from_setup("active"), Some(DtlsRole::Server));
    assert_eq!(dtls_role_from_setup("passive"), Some(DtlsRole::Client));
    assert_eq!(dtls_role_from_setup("actpass"), Some(DtlsRole::Client));
    assert_eq!(dtls_role_from_setup("holdconn"), None);
    assert_eq!(setup_attribute(DtlsRole::Client), "active");
    assert_eq!(setup_attribute(DtlsRole::Server), "passive");
}
