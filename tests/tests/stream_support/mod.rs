//! Shared by the stream-service tests: JWTs, HTTP with a bearer token, and nats-server /
//! redis-server processes on loopback. A missing program fails the test with the install
//! command; nothing is skipped.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ringcast_tests::ports::{self, PortReservation};
use ringcast_tests::{HttpResponse, Server, ServerOptions};
use serde_json::{Value, json};

pub const SECRET: &str = "stream-test-secret";

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An HS256 token for `sub`, expiring `exp_in` seconds from now (negative: already expired).
pub fn token_hs(secret: &str, sub: &str, exp_in: i64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": sub, "exp": unix_now() + exp_in }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing with a byte secret cannot fail")
}

/// A valid token for `sub` signed with [`SECRET`].
pub fn token(sub: &str) -> String {
    token_hs(SECRET, sub, 3600)
}

/// An RSA key pair made with `openssl` in `dir`: (private PEM, public key file).
pub fn rsa_keys(dir: &Path) -> (Vec<u8>, PathBuf) {
    let key = dir.join("jwt-private.pem");
    let public = dir.join("jwt-public.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap_or_else(|e| {
            panic!("`openssl` is needed for RS256 keys (Debian package openssl, scripts/install-test-deps.sh): {e}")
        });
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key_s = key.to_string_lossy().into_owned();
    let pub_s = public.to_string_lossy().into_owned();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &key_s,
    ]);
    run(&["pkey", "-in", &key_s, "-pubout", "-out", &pub_s]);
    (std::fs::read(&key).expect("private key written"), public)
}

/// An RS256 token for `sub` signed with `private_pem`.
pub fn token_rs(private_pem: &[u8], sub: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({ "sub": sub, "exp": unix_now() + 3600 }),
        &EncodingKey::from_rsa_pem(private_pem).expect("openssl wrote an RSA PEM key"),
    )
    .expect("RS256 signing")
}

/// `method url` with an optional bearer token and body; any status is a response.
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> HttpResponse {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .max_redirects(0)
        .build()
        .into();
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", None) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.call()
        }
        ("DELETE", None) => {
            let mut r = agent.delete(url);
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.call()
        }
        (m, Some((ct, b))) => {
            let mut r = match m {
                "POST" => agent.post(url),
                "PUT" => agent.put(url),
                "PATCH" => agent.patch(url),
                other => panic!("unsupported method {other}"),
            };
            r = r.header("content-type", ct);
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.send(b)
        }
        ("OPTIONS", None) => agent
            .options(url)
            .header("origin", "http://example.test")
            .header("access-control-request-method", "PUT")
            .call(),
        (m, None) => panic!("unsupported method without body {m}"),
    };
    let mut res = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = res.body_mut().read_to_vec().unwrap_or_default();
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// POST JSON to `server`'s `path` as the holder of `token`.
pub fn post_json(server: &Server, path: &str, token: Option<&str>, body: &Value) -> HttpResponse {
    let b = serde_json::to_vec(body).expect("JSON");
    call(
        "POST",
        &server.url(path),
        token,
        Some(("application/json", &b)),
    )
}

/// PATCH JSON.
pub fn patch_json(server: &Server, path: &str, token: Option<&str>, body: &Value) -> HttpResponse {
    let b = serde_json::to_vec(body).expect("JSON");
    call(
        "PATCH",
        &server.url(path),
        token,
        Some(("application/json", &b)),
    )
}

/// GET with a token.
pub fn get(server: &Server, path: &str, token: Option<&str>) -> HttpResponse {
    call("GET", &server.url(path), token, None)
}

/// Panics unless `r` is a problem+json body with `status`; returns the body.
#[track_caller]
pub fn assert_problem(r: &HttpResponse, status: u16) -> Value {
    assert_eq!(r.status, status, "want {status}, got {}", r.describe());
    assert_eq!(
        r.content_type().as_deref(),
        Some("application/problem+json"),
        "{}",
        r.describe()
    );
    let v = r
        .json()
        .unwrap_or_else(|e| panic!("problem body is not JSON ({e}): {}", r.describe()));
    assert_eq!(v["status"].as_u64(), Some(u64::from(status)), "{v}");
    assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    v
}

/// Server options for the stream service: the JWT secret, one shard, mmsg. (The stream
/// service's variables are expected unset in the test environment.)
pub fn stream_server(extra_env: &[(&str, String)]) -> ServerOptions {
    let mut o = ServerOptions::new(1, ringcast_tests::Io::Mmsg).env("JWT_SECRET", SECRET);
    for (k, v) in extra_env {
        o = o.env(*k, v.clone());
    }
    o
}

/// POST /stream/start in `channel` as `tok`; panics unless 200. Returns the body.
#[track_caller]
pub fn start_stream(server: &Server, tok: &str, channel: &str) -> Value {
    let r = post_json(
        server,
        "/stream/start",
        Some(tok),
        &json!({ "channel_id": channel, "resolution": "1920x1080", "framerate": 30, "bitrate": 2500 }),
    );
    assert_eq!(r.status, 200, "start: {}", r.describe());
    r.json().expect("start answers JSON")
}

/// A random UUID (v4 layout) without a uuid dependency.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    let f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut &f, &mut b).expect("random bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn require_program(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: install the Debian package {package} (scripts/install-test-deps.sh does)"
    );
}

fn wait_tcp(port: u16, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect_timeout(
            &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A backing server process (nats-server or redis-server) on a loopback port.
pub struct Backing {
    program: &'static str,
    args: Vec<String>,
    child: Option<Child>,
    pub port: u16,
    _ports: PortReservation,
}

impl Backing {
    fn spawn(program: &'static str, package: &str, args: impl Fn(u16) -> Vec<String>) -> Backing {
        require_program(program, package);
        let ports = ports::reserve(1).expect("a free port");
        let port = ports.http;
        let mut b = Backing {
            program,
            args: args(port),
            child: None,
            port,
            _ports: ports,
        };
        b.start();
        b
    }

    /// Starts (again) on the same port.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.program);
        let child = Command::new(self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program));
        self.child = Some(child);
        assert!(
            wait_tcp(self.port, Duration::from_secs(10)),
            "{} did not listen on 127.0.0.1:{} within 10 s",
            self.program,
            self.port
        );
    }

    /// Kills it (SIGKILL: an outage, not a shutdown) and waits until the port is closed.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// nats-server on a free loopback port.
    pub fn nats() -> Backing {
        Backing::spawn("/usr/sbin/nats-server", "nats-server", |p| {
            vec!["-a".into(), "127.0.0.1".into(), "-p".into(), p.to_string()]
        })
    }

    /// redis-server on a free loopback port, nothing persisted.
    pub fn redis() -> Backing {
        Backing::spawn("/usr/bin/redis-server", "redis-server", |p| {
            [
                "--bind",
                "127.0.0.1",
                "--port",
                &p.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
    }

    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An independent NATS subscriber (async-nats on its own runtime) collecting every message on
/// `subjects` with the time it arrived.
pub struct Subscriber {
    rt: tokio::runtime::Runtime,
    rx: std::sync::mpsc::Receiver<(String, Value)>,
    pub seen: Vec<(String, Value)>,
}

impl Subscriber {
    pub fn connect(url: &str, subjects: &[&str]) -> Subscriber {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (tx, rx) = std::sync::mpsc::channel();
        let client = rt
            .block_on(async_nats::connect(url))
            .unwrap_or_else(|e| panic!("test subscriber cannot connect to {url}: {e}"));
        for s in subjects {
            let mut sub = rt
                .block_on(client.subscribe(s.to_string()))
                .expect("subscribe");
            let tx = tx.clone();
            rt.spawn(async move {
                use futures_util::StreamExt;
                while let Some(m) = sub.next().await {
                    let v = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                    if tx.send((m.subject.to_string(), v)).is_err() {
                        return;
                    }
                }
            });
        }
        rt.block_on(client.flush()).expect("flush subscriptions");
        // Keep the client alive with the runtime.
        rt.spawn(async move {
            let _keep = client;
            std::future::pending::<()>().await;
        });
        Subscriber {
            rt,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a message on `subject` whose payload satisfies `pred`.
    pub fn wait_for(
        &mut self,
        subject: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + timeout;
        loop {
            if let Some((_, v)) = self.seen.iter().find(|(s, v)| s == subject && pred(v)) {
                return v.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(m) => self.seen.push(m),
                Err(_) if left.is_zero() => panic!(
                    "no {subject} message matching within {timeout:?}; saw {:#?}",
                    self.seen
                ),
                Err(_) => {}
            }
        }
    }

    /// Waits for `media.quality.restored` of `session` after a limit was lifted at `lifted`;
    /// checks it names `stream`, is back at what it wants, and is timestamped.
    pub fn expect_restored(
        &mut self,
        session: &str,
        stream: &str,
        lifted: Instant,
        timeout: Duration,
    ) -> Value {
        let restored = self.wait_for("media.quality.restored", timeout, |v| {
            v["session_id"] == session
        });
        eprintln!(
            "restored {:?} after lifting the limit: {restored}",
            lifted.elapsed()
        );
        assert_eq!(restored["stream"], stream);
        assert!(
            restored["allocated_bps"].as_u64() >= restored["wanted_bps"].as_u64(),
            "{restored}"
        );
        assert!(is_rfc3339(&restored["timestamp"]), "{restored}");
        restored
    }

    /// Publishes `payload` on `subject` (as another service would).
    pub fn publish(&self, url: &str, subject: &str, payload: &Value) {
        self.rt.block_on(async {
            let c = async_nats::connect(url).await.expect("publisher connects");
            c.publish(
                subject.to_string(),
                serde_json::to_vec(payload).expect("json").into(),
            )
            .await
            .expect("publish");
            c.flush().await.expect("flush");
        });
    }
}

/// RFC 3339 UTC timestamp shape check (`2026-11-21T09:19:43.123Z`).
pub fn is_rfc3339(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s.ends_with('Z')
}

impl Backing {
    /// Freezes the process (SIGSTOP): it keeps its connections but answers nothing, like a
    /// server that hangs or a network partition.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", child.id());
    }
}
