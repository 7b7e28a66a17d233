//! Shared by the livestream tests: a server with its data directory (SQLite) or a PostgreSQL
//! server (`ringcast_tests::PgServer`), the Node (socket.io-client, Chromium pages) and Python
//! (python-socketio) drivers in tests/livestream/. A missing program fails the test with the
//! install command; nothing is skipped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
