//! Interop with an independent DTLS implementation: OpenSSL's command line (`s_client`,
//! `s_server`) against `DtlsConn` over loopback UDP, comparing the RFC 5764 exporter output.
//! OpenSSL must be installed (`apt-get install openssl`); these tests fail, not skip, without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use sfu::dtls::{DtlsCert, DtlsConn, DtlsEvent, DtlsRole, Fingerprint, MAX_DATAGRAM};
use sfu::srtp::SrtpProfile;

const BOTH: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";
const CHROMIUM_ORDER: &str = "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM";
const AES_CM_ONLY: &str = "SRTP_AES128_CM_SHA1_80";

fn openssl() -> Command {
    let found = Command::new("openssl").arg("version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "the `openssl` command line is required for DTLS interop tests but could not be run ({:?}); \
         install it with `apt-get install openssl`",
        found.err()
    );
    Command::new("openssl")
}

/// An ECDSA P-256 certificate and key made by OpenSSL, and the certificate's fingerprint.
struct PeerCert {
    _dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
    fingerprint: Fingerprint,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn peer_cert(tag: &str) -> PeerCert {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringcast-dtls-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, der) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("cert.der"),
    );
    let ok = openssl()
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", "/CN=openssl-peer", "-keyout"])
        .args([&key, Path::new("-out"), &cert])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl req failed");
    let ok = openssl()
        .args(["x509", "-outform", "DER", "-in"])
        .args([&cert, Path::new("-out"), &der])
        .status()
        .unwrap();
    assert!(ok.success(), "openssl x509 failed");
    let fingerprint = Fingerprint::sha256_of(&std::fs::read(&der).unwrap());
    PeerCert {
        _dir: TempDir(dir),
        cert,
        key,
        fingerprint,
    }
}

/// A running OpenSSL process whose stdout lines arrive on a channel.
struct OpenSsl {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl OpenSsl {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        OpenSsl {
            child,
            lines,
            seen: vec![],
        }
    }

    /// Waits up to `limit` for a stdout line containing `needle`.
    fn wait_for(&mut self, needle: &str, limit: Duration) -> Option<String> {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => break,
            }
        }
        None
    }

    /// The exported keying material OpenSSL printed (`-keymatexport`).
    fn keying_material(&mut self) -> Vec<u8> {
        let line = self
            .wait_for("Keying material:", Duration::from_secs(5))
            .expect("openssl printed keying material");
        let hex = line.split(':').nth(1).unwrap().trim();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn negotiated_profile(&mut self) -> String {
        self.wait_for("SRTP Extension negotiated", Duration::from_secs(5))
            .expect("openssl reported the SRTP profile")
    }

    fn diagnostics(&mut self) -> String {
        let _ = self.child.kill();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        format!("stdout: {:?}\nstderr: {err}", self.seen)
    }
}

impl Drop for OpenSsl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drives `conn` over `sock` with the real clock until it reports `Connected`.
fn drive(
    conn: &mut DtlsConn,
    sock: &UdpSocket,
    mut peer: Option<SocketAddr>,
    openssl: &mut OpenSsl,
) -> (SrtpProfile, Vec<u8>) {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    let mut out = [0u8; MAX_DATAGRAM];
    while Instant::now() < deadline {
        if let Some(to) = peer {
            while let Some(n) = conn.poll_transmit(&mut out) {
                sock.send_to(&out[..n], to).unwrap();
            }
        }
        if let Some(DtlsEvent::Connected {
            profile,
            keying_material,
        }) = conn.poll_event()
        {
            return (profile, keying_material);
        }
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            peer = Some(from);
            conn.handle_datagram(Instant::now(), &buf[..n])
                .unwrap_or_else(|e| panic!("{e}\n{}", openssl.diagnostics()));
        }
        if conn.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            conn.handle_timeout(Instant::now())
                .unwrap_or_else(|e| panic!("{e}\n{}", openssl.diagnostics()));
        }
    }
    panic!("no DTLS handshake with openssl\n{}", openssl.diagnostics());
}

/// OpenSSL's exporter ran with `-keymatexportlen 60`; the TLS 1.2 PRF is a byte stream, so a
/// shorter export (56 bytes for GCM) is its prefix.
fn assert_same_keys(ours: &[u8], theirs: &[u8]) {
    assert!(
        theirs.len() >= ours.len(),
        "openssl exported {} bytes, we {}",
        theirs.len(),
        ours.len()
    );
    assert_eq!(
        ours,
        &theirs[..ours.len()],
        "exported keying material differs from OpenSSL's"
    );
}

fn our_server_against_s_client(offer: &str) -> (SrtpProfile, String) {
    let peer = peer_cert("s-client");
    let cert = Arc::new(DtlsCert::generate().unwrap());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut cmd = openssl();
    cmd.args(["s_client", "-dtls1_2", "-use_srtp", offer])
        .args([
            "-keymatexport",
            "EXTRACTOR-dtls_srtp",
            "-keymatexportlen",
            "60",
        ])
        .arg("-cert")
        .arg(&peer.cert)
        .arg("-key")
        .arg(&peer.key)
        .args(["-connect", &format!("127.0.0.1:{port}")]);
    let mut client = OpenSsl::spawn(cmd);
    let mut conn = DtlsConn::new(
        DtlsRole::Server,
        cert.clone(),
        peer.fingerprint.clone(),
        Instant::now(),
    )
    .unwrap();
    let (profile, ours) = drive(&mut conn, &sock, None, &mut client);
    assert_eq!(ours.len(), profile.keying_material_len());
    assert_same_keys(&ours, &client.keying_material());
    // The chain s_client received is our one self-signed certificate.
    assert!(
        client
            .wait_for("s:CN = ringcast", Duration::from_secs(5))
            .is_some(),
        "{}",
        client.diagnostics()
    );
    (profile, client.negotiated_profile())
}

#[test]
fn openssl_s_client_handshakes_with_our_server_and_exports_the_same_keys() {
    let (profile, reported) = our_server_against_s_client(BOTH);
    assert_eq!(profile, SrtpProfile::AeadAes128Gcm);
    assert!(reported.contains("SRTP_AEAD_AES_128_GCM"), "{reported}");
}

#[test]
fn our_server_picks_gcm_from_an_openssl_client_listing_aes_cm_first() {
    let (profile, reported) = our_server_against_s_client(CHROMIUM_ORDER);
    assert_eq!(profile, SrtpProfile::AeadAes128Gcm);
    assert!(reported.contains("SRTP_AEAD_AES_128_GCM"), "{reported}");
}

#[test]
fn our_server_gives_aes_cm_to_an_openssl_client_offering_only_aes_cm() {
    let (profile, reported) = our_server_against_s_client(AES_CM_ONLY);
    assert_eq!(profile, SrtpProfile::Aes128CmHmacSha1_80);
    assert!(reported.contains("SRTP_AES128_CM_SHA1_80"), "{reported}");
}

fn our_client_against_s_server(offer: &str) -> (SrtpProfile, String) {
    let peer = peer_cert("s-server");
    let cert = Arc::new(DtlsCert::generate().unwrap());
    // Find a free port for s_server.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = openssl();
    cmd.args(["s_server", "-dtls1_2", "-use_srtp", offer])
        .args([
            "-keymatexport",
            "EXTRACTOR-dtls_srtp",
            "-keymatexportlen",
            "60",
        ])
        .arg("-cert")
        .arg(&peer.cert)
        .arg("-key")
        .arg(&peer.key)
        // Ask for the client certificate, as a WebRTC peer does.
        .args(["-verify", "1", "-accept", &format!("127.0.0.1:{port}")]);
    let mut server = OpenSsl::spawn(cmd);
    assert!(
        server.wait_for("ACCEPT", Duration::from_secs(5)).is_some(),
        "s_server did not start\n{}",
        server.diagnostics()
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut conn = DtlsConn::new(
        DtlsRole::Client,
        cert,
        peer.fingerprint.clone(),
        Instant::now(),
    )
    .unwrap();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (profile, ours) = drive(&mut conn, &sock, Some(to), &mut server);
    assert_eq!(ours.len(), profile.keying_material_len());
    assert_same_keys(&ours, &server.keying_material());
    (profile, server.negotiated_profile())
}

#[test]
fn our_client_handshakes_with_openssl_s_server_and_exports_the_same_keys() {
    let (profile, reported) = our_client_against_s_server(BOTH);
    assert_eq!(profile, SrtpProfile::AeadAes128Gcm);
    assert!(reported.contains("SRTP_AEAD_AES_128_GCM"), "{reported}");
}

#[test]
fn our_client_accepts_aes_cm_from_an_openssl_server_that_allows_only_aes_cm() {
    let (profile, reported) = our_client_against_s_server(AES_CM_ONLY);
    assert_eq!(profile, SrtpProfile::Aes128CmHmacSha1_80);
    assert!(reported.contains("SRTP_AES128_CM_SHA1_80"), "{reported}");
}
