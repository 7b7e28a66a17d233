//! Shared by the livestream tests: a server with its data directory (SQLite) or a PostgreSQL
//! server of Debian's binaries, the Node (socket.io-client, Chromium pages) and Python
//! (python-socketio) drivers in tests/livestream/. A missing program fails the test with the
//! install command; nothing is skipped.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringcast_tests::ServerOptions;
use serde_json::Value;

use crate::stream_support::SECRET;

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "ringcast-{tag}-{}-{}",
            std::process::id(),
            crate::stream_support::uuid()
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the livestream data goes.
#[derive(Clone, Debug)]
pub enum Database {
    /// SQLite in this data directory.
    Sqlite(PathBuf),
    /// PostgreSQL at this URL.
    Postgres(String),
}

/// Server options for the livestream service: JWT secret, one shard, mmsg, the database, and
/// `extra` variables.
pub fn livestream_server(db: &Database, extra: &[(&str, String)]) -> ServerOptions {
    let mut o = ServerOptions::new(1, ringcast_tests::Io::Mmsg).env("JWT_SECRET", SECRET);
    o = match db {
        Database::Sqlite(dir) => o
            .env("DATA_DIR", dir.to_string_lossy().into_owned())
            .env("DATABASE_URL", ""),
        Database::Postgres(url) => o.env("DATABASE_URL", url.clone()),
    };
    for (k, v) in extra {
        o = o.env(*k, v.clone());
    }
    o
}

fn tests_dir() -> PathBuf {
    ringcast_tests::paths::workspace_root().join("tests/livestream")
}

/// Runs `node tests/livestream/<script> <args…>`; returns its JSON lines and whether it exited
/// 0. Panics (with the install command) when Node or the packages are missing.
pub fn run_node(script: &str, args: &[String], timeout: Duration) -> (Vec<Value>, bool, String) {
    let dir = tests_dir();
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "tests/livestream/node_modules is missing: run scripts/install-test-deps.sh (npm ci in tests/livestream)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script)).args(args).current_dir(&dir);
    let run = ringcast_tests::script::run_json_lines(cmd, timeout)
        .unwrap_or_else(|e| panic!("`node` is needed (scripts/install-test-deps.sh): {e}"));
    outcome(run, timeout, &format!("node {script}"))
}

/// Runs `.venv/bin/python tests/livestream/<script> <args…>` like [`run_node`].
pub fn run_python(script: &str, args: &[String], timeout: Duration) -> (Vec<Value>, bool, String) {
    let python = ringcast_tests::paths::venv_python();
    assert!(
        python.is_file(),
        "{} is missing: run scripts/install-test-deps.sh",
        python.display()
    );
    let mut cmd = Command::new(&python);
    cmd.arg(tests_dir().join(script)).args(args);
    let run = ringcast_tests::script::run_json_lines(cmd, timeout)
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    outcome(run, timeout, &format!("python {script}"))
}

/// A driver's JSON lines, whether it exited 0, and a description of the run for failures.
fn outcome(
    run: ringcast_tests::script::ScriptRun,
    timeout: Duration,
    what: &str,
) -> (Vec<Value>, bool, String) {
    let ok = run.ok();
    let log = format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        match run.status {
            Some(s) => format!("exited with {s}"),
            None => format!("killed after {timeout:?}"),
        },
        run.stdout,
        run.stderr
    );
    (run.lines, ok, log)
}

/// The line of `lines` with key `key` (e.g. `summary`), with that step's value.
pub fn find<'a>(lines: &'a [Value], key: &str) -> Option<&'a Value> {
    lines.iter().find_map(|l| l.get(key))
}

/// The step line named `step`.
pub fn step<'a>(lines: &'a [Value], step: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l.get("step").and_then(Value::as_str) == Some(step))
}

/// Tokens for the users the drivers use, as a JSON object.
pub fn tokens(users: &[&str]) -> Value {
    Value::Object(
        users
            .iter()
            .map(|u| {
                (
                    u.to_string(),
                    Value::String(crate::stream_support::token(u)),
                )
            })
            .collect(),
    )
}

/// A throwaway PostgreSQL server of Debian's binaries (initdb, postgres) on a loopback port,
/// its data in a temporary directory; as root it runs as the `postgres` user.
pub struct PgServer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

fn pg_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian's postgresql package (scripts/install-test-deps.sh)"
        )
    })
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

impl PgServer {
    /// Initialises a cluster, starts it and creates database `ringcast`.
    pub fn start() -> PgServer {
        let bin = pg_bin_dir();
        // SAFETY: geteuid has no preconditions.
        let ids =
            if unsafe { libc::geteuid() } == 0 {
                Some(user_ids("postgres").expect(
                    "running as root needs the `postgres` user (Debian's postgresql package)",
                ))
            } else {
                None
            };
        let cmd = |name: &str| {
            let mut c = Command::new(bin.join(name));
            if let Some((uid, gid)) = ids {
                c.uid(uid).gid(gid);
            }
            c
        };
        let dir = std::env::temp_dir().join(format!(
            "ringcast-pg-{}-{}",
            std::process::id(),
            crate::stream_support::uuid()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown");
        }
        let data = dir.join("data");
        let out = cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        let child = cmd("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let mut pg = PgServer { child, dir, port };
        let end = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(s)) = pg.child.try_wait() {
                panic!("postgres exited with {s}: {}", pg.log());
            }
            assert!(
                Instant::now() < end,
                "postgres did not listen: {}",
                pg.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The server accepts connections a moment after it listens: retry createdb.
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let out = cmd("createdb")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                    "ringcast",
                ])
                .output()
                .expect("createdb runs");
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < end,
                "createdb: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/ringcast", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `psql -At -c sql` against database `ringcast`: the rows, `|`-separated.
    pub fn query(&self, sql: &str) -> String {
        let bin = pg_bin_dir();
        let out = Command::new(bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-At",
            ])
            .args(["-d", "ringcast", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
