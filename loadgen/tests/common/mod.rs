//! The real server for the load generator's end-to-end tests: the release `signaling` binary
//! (built once with `cargo build --release -p signaling`, or `RINGCAST_SERVER_BIN`) on free
//! loopback ports, health-checked, killed on drop; and the `loadgen` binary run against it.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The release server binary, built once per test process.
pub fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RINGCAST_SERVER_BIN") {
        return PathBuf::from(p);
    }
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        // Per-package variables of this test would make build scripts rerun.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || k.starts_with("CARGO_BIN_")
                || k.starts_with("CARGO_CRATE_")
                || k.starts_with("CARGO_CFG_")
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&k.as_str())
            {
                cmd.env_remove(&k);
            }
        }
        let out = cmd
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "-p",
                "signaling",
                "--bin",
                "signaling",
                "--message-format=json",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo build --release -p signaling failed"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "signaling")
            .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
            .next_back()
            .expect("cargo names the signaling executable")
    })
    .clone()
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// An HTTP port and a UDP port that are free right now (below the ephemeral range, where the
/// load generator's own sockets land).
pub fn free_ports() -> (u16, u16) {
    let mut rng = random_u64();
    for _ in 0..500 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let base = 20_000 + (rng % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", base)).is_ok()
            && TcpListener::bind(("0.0.0.0", base)).is_ok()
            && UdpSocket::bind(("0.0.0.0", base + 1)).is_ok()
        {
            return (base, base + 1);
        }
    }
    panic!("no free ports");
}

/// A running server; killed on drop.
pub struct Server {
    child: Child,
    pub http_port: u16,
    /// Its DATA_DIR (the livestream service's SQLite file), removed on drop.
    data_dir: std::path::PathBuf,
}

impl Server {
    /// Starts the server with one shard on the mmsg backend.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts the server with extra arguments.
    pub fn start_with(extra: &[&str]) -> Server {
        let bin = server_binary();
        for _ in 0..3 {
            let (http, rtc) = free_ports();
            let data_dir = std::env::temp_dir().join(format!(
                "ringcast-loadgen-data-{}-{http}",
                std::process::id()
            ));
            let child = Command::new(&bin)
                .args(["--bind", "127.0.0.1", "--port", &http.to_string()])
                .args([
                    "--rtc-min-port",
                    &rtc.to_string(),
                    "--shards",
                    "1",
                    "--io",
                    "mmsg",
                ])
                .args(extra)
                .env_remove("AUTH_SECRET")
                .env("DATA_DIR", &data_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("server starts");
            let mut s = Server {
                child,
                http_port: http,
                data_dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if s.child.try_wait().ok().flatten().is_some() {
                    break; // port taken between probe and bind: try others
                }
                if s.get("/health")
                    .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
                {
                    return s;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("server did not become healthy");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// A raw GET; the whole response text.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir); // best effort, under the temp dir
    }
}

/// Runs the `loadgen` binary with `args`, writing its JSON report to a fresh file; returns the
/// process output and the parsed report (if one was written).
pub fn loadgen(args: &[&str]) -> (Output, Option<serde_json::Value>) {
    let dir = std::env::temp_dir();
    let json = dir.join(format!(
        "loadgen-test-{}-{}.json",
        std::process::id(),
        random_u64()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .expect("loadgen runs");
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let _ = std::fs::remove_file(&json);
    (out, report)
}

/// The output of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
