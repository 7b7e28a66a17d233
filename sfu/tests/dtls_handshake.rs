//! DTLS-SRTP handshakes between two `DtlsConn`s (and a raw engine client) in memory, driven by a
//! virtual clock: keying material, loss recovery, fingerprint checks, profile choice, noise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sfu::dtls::{DtlsCert, DtlsConn, DtlsError, DtlsEvent, DtlsRole, Fingerprint, MAX_DATAGRAM};
use sfu::srtp::SrtpProfile;

fn cert() -> Arc<DtlsCert> {
    Arc::new(DtlsCert::generate().expect("certificate generation"))
}

/// Two endpoints joined by an in-memory link that can drop datagrams.
struct Link {
    now: Instant,
    client: DtlsConn,
    server: DtlsConn,
    /// Drop every other datagram in each direction.
    lossy: bool,
    sent: [u64; 2],
    dropped: u64,
    client_events: Vec<DtlsEvent>,
    server_events: Vec<DtlsEvent>,
}

impl Link {
    fn new(
        client_fp_at_server: Fingerprint,
        server_fp_at_client: Fingerprint,
        c: Arc<DtlsCert>,
        s: Arc<DtlsCert>,
    ) -> Self {
        let now = Instant::now();
        Link {
            now,
            client: DtlsConn::new(DtlsRole::Client, c, server_fp_at_client, now).unwrap(),
            server: DtlsConn::new(DtlsRole::Server, s, client_fp_at_server, now).unwrap(),
            lossy: false,
            sent: [0; 2],
            dropped: 0,
            client_events: vec![],
            server_events: vec![],
        }
    }

    fn honest() -> Self {
        let (c, s) = (cert(), cert());
        Link::new(c.fingerprint(), s.fingerprint(), c, s)
    }

    /// Moves every pending datagram once; returns whether any moved.
    fn deliver(&mut self) -> Result<bool, (DtlsRole, DtlsError)> {
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut moved = false;
        while let Some(n) = self.client.poll_transmit(&mut buf) {
            moved = true;
            self.sent[0] += 1;
            if self.lossy && self.sent[0] % 2 == 1 {
                self.dropped += 1;
                continue;
            }
            self.server
                .handle_datagram(self.now, &buf[..n])
                .map_err(|e| (DtlsRole::Server, e))?;
        }
        while let Some(n) = self.server.poll_transmit(&mut buf) {
            moved = true;
            self.sent[1] += 1;
            if self.lossy && self.sent[1] % 2 == 1 {
                self.dropped += 1;
                continue;
            }
            self.client
                .handle_datagram(self.now, &buf[..n])
                .map_err(|e| (DtlsRole::Client, e))?;
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
        Ok(moved)
    }

    /// Runs until both ends are connected, jumping the virtual clock to the next timer whenever
    /// the link is idle.
    fn run(&mut self) -> Result<(), (DtlsRole, DtlsError)> {
        for _ in 0..1000 {
            if self.deliver()? {
                continue;
            }
            if self.client.is_connected() && self.server.is_connected() {
                return Ok(());
            }
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else {
                panic!("stalled without a timer")
            };
            self.now = self.now.max(next);
            self.client
                .handle_timeout(self.now)
                .map_err(|e| (DtlsRole::Client, e))?;
            self.server
                .handle_timeout(self.now)
                .map_err(|e| (DtlsRole::Server, e))?;
        }
        panic!("handshake did not converge");
    }
}

fn connected(events: &[DtlsEvent]) -> (SrtpProfile, Vec<u8>) {
    events
        .iter()
        .find_map(|e| match e {
            DtlsEvent::Connected {
                profile,
                keying_material,
            } => Some((*profile, keying_material.clone())),
            _ => None,
        })
        .expect("a Connected event")
}

#[test]
fn handshake_exports_matching_keying_material_on_both_sides() {
    let mut link = Link::honest();
    link.run().unwrap();
    let (cp, ck) = connected(&link.client_events);
    let (sp, sk) = connected(&link.server_events);
    assert_eq!(cp, SrtpProfile::AeadAes128Gcm);
    assert_eq!(sp, cp);
    assert_eq!(ck.len(), cp.keying_material_len());
    assert_eq!(ck, sk);
    assert!(ck.iter().any(|&b| b != 0));
    // Without loss the handshake takes no retransmission timer.
    assert_eq!(link.dropped, 0);
}

#[test]
fn handshake_completes_when_every_other_datagram_is_dropped() {
    let mut link = Link::honest();
    link.lossy = true;
    let start = link.now;
    link.run().unwrap();
    assert!(
        link.dropped >= 2,
        "the link dropped {} datagrams",
        link.dropped
    );
    // Completion needed retransmission timers to fire: the virtual clock had to move.
    assert!(
        link.now - start >= Duration::from_millis(500),
        "clock moved only {:?}",
        link.now - start
    );
    let (_, ck) = connected(&link.client_events);
    let (_, sk) = connected(&link.server_events);
    assert_eq!(ck, sk);
}

#[test]
fn server_rejects_client_certificate_that_does_not_match_fingerprint() {
    let (c, s, other) = (cert(), cert(), cert());
    let mut link = Link::new(other.fingerprint(), s.fingerprint(), c, s);
    let err = link.run().unwrap_err();
    assert_eq!(err.0, DtlsRole::Server);
    assert!(
        matches!(err.1, DtlsError::FingerprintMismatch { .. }),
        "{:?}",
        err.1
    );
    assert!(
        err.1
            .to_string()
            .contains("does not match the SDP fingerprint")
    );
    assert!(!link.server.is_connected());
    assert!(link.server_events.is_empty());
}

#[test]
fn client_rejects_server_certificate_that_does_not_match_fingerprint() {
    let (c, s, other) = (cert(), cert(), cert());
    let mut link = Link::new(c.fingerprint(), other.fingerprint(), c, s);
    let err = link.run().unwrap_err();
    assert_eq!(err.0, DtlsRole::Client);
    assert!(
        matches!(err.1, DtlsError::FingerprintMismatch { .. }),
        "{:?}",
        err.1
    );
    assert!(!link.client.is_connected());
}

#[test]
fn client_times_out_when_server_never_answers() {
    let s = cert();
    let mut now = Instant::now();
    let mut client = DtlsConn::new(DtlsRole::Client, cert(), s.fingerprint(), now).unwrap();
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut attempts = 0;
    let result = loop {
        while client.poll_transmit(&mut buf).is_some() {
            attempts += 1;
        }
        let Some(t) = client.poll_timeout() else {
            panic!("no timer while handshaking")
        };
        now = t;
        if let Err(e) = client.handle_timeout(now) {
            break e;
        }
        assert!(attempts < 100);
    };
    assert_eq!(result, DtlsError::Timeout);
    assert!(attempts > 3, "only {attempts} ClientHello transmissions");
    assert_eq!(
        client.handle_datagram(now, &[22, 0xfe, 0xfd]),
        Err(DtlsError::Closed)
    );
}

#[test]
fn application_data_flows_and_close_notify_reaches_the_peer() {
    let mut link = Link::honest();
    link.run().unwrap();
    link.client.send_application_data(b"sctp init").unwrap();
    link.server.send_application_data(b"sctp init-ack").unwrap();
    link.deliver().unwrap();
    assert!(
        link.server_events
            .contains(&DtlsEvent::ApplicationData(b"sctp init".to_vec()))
    );
    assert!(
        link.client_events
            .contains(&DtlsEvent::ApplicationData(b"sctp init-ack".to_vec()))
    );
    link.client.close();
    assert!(!link.client.is_connected());
    link.deliver().unwrap();
    assert_eq!(link.server_events.last(), Some(&DtlsEvent::Closed));
    assert!(!link.server.is_connected());
    assert_eq!(
        link.server.send_application_data(b"late"),
        Err(DtlsError::Closed)
    );
}

#[test]
fn application_data_before_the_handshake_is_refused_without_harm() {
    let mut link = Link::honest();
    assert_eq!(
        link.client.send_application_data(b"early"),
        Err(DtlsError::NotConnected)
    );
    link.run().unwrap();
}

fn noise() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![20, 1, 2],
        vec![0x16; 100],
        vec![0xff; 1500],
        // Framed records with junk bodies: a handshake record, application data at epoch 1.
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5],
        vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4],
    ]
}

/// A ClientHello header whose body is cut short (a fragment of a ClientHello).
const FORGED_CLIENT_HELLO: [u8; 25] = [
    22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 200,
];

#[test]
fn noise_before_and_after_the_handshake_is_discarded() {
    let mut link = Link::honest();
    for d in noise() {
        link.server.handle_datagram(link.now, &d).unwrap();
        link.client.handle_datagram(link.now, &d).unwrap();
    }
    link.server
        .handle_datagram(link.now, &FORGED_CLIENT_HELLO)
        .unwrap();
    link.run().unwrap();
    for d in noise().into_iter().chain([FORGED_CLIENT_HELLO.to_vec()]) {
        link.server.handle_datagram(link.now, &d).unwrap();
        link.client.handle_datagram(link.now, &d).unwrap();
    }
    assert!(link.client.is_connected() && link.server.is_connected());
    link.client.send_application_data(b"still alive").unwrap();
    link.deliver().unwrap();
    assert!(
        link.server_events
            .contains(&DtlsEvent::ApplicationData(b"still alive".to_vec()))
    );
}

#[test]
fn client_answers_a_client_hello_with_an_alert_and_the_server_fails_cleanly() {
    // A ClientHello is an unexpected message for a client: the engine answers with a fatal alert
    // (RFC 5246 §7.2.2), which ends the handshake at the server with an error, not a panic.
    let mut link = Link::honest();
    link.client
        .handle_datagram(link.now, &FORGED_CLIENT_HELLO)
        .unwrap();
    let err = link.run().unwrap_err();
    assert_eq!(err.0, DtlsRole::Server);
    assert!(matches!(err.1, DtlsError::Protocol(_)), "{:?}", err.1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_datagrams_never_panic(datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let mut link = Link::honest();
        for d in &datagrams {
            let _ = link.server.handle_datagram(link.now, d);
        }
        let _ = link.run();
        for d in &datagrams {
            let _ = link.client.handle_datagram(link.now, d);
            let _ = link.server.handle_datagram(link.now, d);
            let mut framed = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
            framed.extend((d.len() as u16).to_be_bytes());
            framed.extend(d);
            let _ = link.client.handle_datagram(link.now, &framed);
            let _ = link.server.handle_datagram(link.now, &framed);
        }
    }
}

// ---- Profile choice against a client that offers what we tell it to (the DTLS engine itself). ----

use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile as P;

/// Handshakes a raw engine client offering `offer` against a Ringcast server; returns the profile
/// the server reported and whether the client derived the same keys.
fn server_choice(offer: Vec<P>) -> Result<SrtpProfile, DtlsError> {
    let client_cert = rtc_dtls::crypto::Certificate::generate_self_signed_with_alg(
        vec!["peer".to_string()],
        &rcgen::PKCS_ECDSA_P256_SHA256,
        rtc_dtls::crypto_provider::default_provider()
            .unwrap()
            .crypto(),
    )
    .unwrap();
    let client_fp = Fingerprint::sha256_of(client_cert.certificate[0].as_ref());
    let server_cert = cert();
    let config = ConfigBuilder::default()
        .with_crypto_provider(rtc_dtls::crypto_provider::default_provider().unwrap())
        .with_certificates(vec![client_cert])
        .with_srtp_protection_profiles(offer)
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .build(true, None)
        .unwrap();
    let here: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let there: SocketAddr = "127.0.0.1:2".parse().unwrap();
    let mut now = Instant::now();
    let mut client = Endpoint::new(here, rtc_shared::TransportProtocol::UDP, None);
    client.connect(now, there, Arc::new(config), None).unwrap();
    let mut server = DtlsConn::new(DtlsRole::Server, server_cert, client_fp, now)?;
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut client_done = false;
    for _ in 0..200 {
        let mut to_server: VecDeque<Vec<u8>> = VecDeque::new();
        while let Some(t) = client.poll_transmit() {
            to_server.push_back(t.message.to_vec());
        }
        for d in to_server {
            server.handle_datagram(now, &d)?;
        }
        while let Some(n) = server.poll_transmit(&mut buf) {
            let events = client
                .read(now, there, None, bytes::BytesMut::from(&buf[..n]))
                .unwrap();
            client_done |= events
                .iter()
                .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
        }
        if let Some(DtlsEvent::Connected {
            profile,
            keying_material,
        }) = server.poll_event()
        {
            let state = client.get_connection_state(there).unwrap();
            let theirs = state
                .export_keying_material("EXTRACTOR-dtls_srtp", &[], profile.keying_material_len())
                .unwrap();
            assert_eq!(theirs.as_ref(), &keying_material[..]);
            assert!(client_done || server.is_connected());
            return Ok(profile);
        }
        now += Duration::from_millis(100);
        server.handle_timeout(now)?;
        let _ = client.handle_timeout(there, now);
    }
    panic!("no handshake");
}

#[test]
fn server_gives_aes_cm_to_a_client_that_offers_only_aes_cm() {
    assert_eq!(
        server_choice(vec![P::Srtp_Aes128_Cm_Hmac_Sha1_80]),
        Ok(SrtpProfile::Aes128CmHmacSha1_80)
    );
}

#[test]
fn server_prefers_gcm_even_when_the_client_lists_aes_cm_first() {
    // Chromium's offer order.
    let chromium = vec![
        P::Srtp_Aes128_Cm_Hmac_Sha1_80,
        P::Srtp_Aead_Aes_256_Gcm,
        P::Srtp_Aead_Aes_128_Gcm,
    ];
    assert_eq!(server_choice(chromium), Ok(SrtpProfile::AeadAes128Gcm));
    assert_eq!(
        server_choice(vec![
            P::Srtp_Aead_Aes_128_Gcm,
            P::Srtp_Aes128_Cm_Hmac_Sha1_80
        ]),
        Ok(SrtpProfile::AeadAes128Gcm)
    );
}

#[test]
fn server_refuses_a_client_with_no_common_profile() {
    assert_eq!(
        server_choice(vec![P::Srtp_Aead_Aes_256_Gcm]),
        Err(DtlsError::NoSrtpProfile)
    );
}
