//! Test driver scripts (Node, Python) that print JSON lines: run one with a deadline and collect
//! what it printed.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What a driver script printed and how it ended.
#[derive(Debug)]
pub struct ScriptRun {
    /// Its stdout lines that are JSON, in order.
    pub lines: Vec<Value>,
    /// How it exited; `None`: killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    /// It exited 0 before the deadline.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The first line with `"type": "error"` (a driver reporting its own failure).
    pub fn error_line(&self) -> Option<&Value> {
        self.lines.iter().find(|v| v["type"] == "error")
    }

    /// Its JSON lines, when `name` finished in time, reported no error line and exited 0;
    /// otherwise panics with its stderr (and `server`'s log for an error line).
    #[track_caller]
    pub fn into_clean_lines(self, name: &str, server: &crate::Server) -> Vec<Value> {
        let Some(status) = self.status else {
            panic!("{name} did not finish in time; stderr: {}", self.stderr);
        };
        if let Some(e) = self.error_line() {
            panic!(
                "the pages failed: {}\n--- stderr ---\n{}\n--- server ---\n{}",
                e["message"],
                self.stderr,
                server.log_tail(60)
            );
        }
        assert!(
            status.success(),
            "{name} exited with {status}; stderr: {}",
            self.stderr
        );
        self.lines
    }
}

/// Runs `cmd` (stdin closed, stdout and stderr captured, in a process group of its own) until it
/// exits or `timeout` passes; at the deadline the whole group is killed. Errors: it could not be
/// started.
pub fn run_json_lines(mut cmd: Command, timeout: Duration) -> std::io::Result<ScriptRun> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = std::thread::spawn(move || stdout.map(std::io::read_to_string));
    let err = std::thread::spawn(move || stderr.map(std::io::read_to_string));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group created for the child above.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = |h: std::thread::JoinHandle<Option<std::io::Result<String>>>| {
        h.join()
            .ok()
            .flatten()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let (stdout, stderr) = (text(out), text(err));
    let lines = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok(ScriptRun {
        lines,
        status,
        stdout,
        stderr,
    })
}
