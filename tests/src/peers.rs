//! WebRTC peers as child processes: Chromium (tests/browser/peer.mjs) and aiortc
//! (tests/peers/aiortc_peer.py). Both print JSON lines; each line is stamped with the time the
//! harness received it, so rates are measured on one clock across processes.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::collect_lines;
use crate::{HarnessError, deps, paths};

/// Which WebRTC implementation runs the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// Debian's Chromium, headless, driven by playwright-core.
    Chromium,
    /// aiortc in the repository's .venv.
    Aiortc,
}

/// What a peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// WHIP publisher.
    Publish,
    /// WHEP viewer.
    View,
}

/// One peer of a run: role and stream. Peers named `publish-N` / `view-N` in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub role: Role,
    pub stream: String,
}

impl PeerSpec {
    /// A publisher of `stream`.
    pub fn publish(stream: &str) -> Self {
        PeerSpec {
            role: Role::Publish,
            stream: stream.into(),
        }
    }
    /// A viewer of `stream`.
    pub fn view(stream: &str) -> Self {
        PeerSpec {
            role: Role::View,
            stream: stream.into(),
        }
    }
    fn arg(&self) -> String {
        match self.role {
            Role::Publish => format!("publish:{}", self.stream),
            Role::View => format!("view:{}", self.stream),
        }
    }
}

/// One JSON line from a peer process and when it arrived.
#[derive(Debug, Clone)]
pub struct PeerEvent {
    pub at: Instant,
    pub value: Value,
}

impl PeerEvent {
    fn kind(&self) -> &str {
        self.value["type"].as_str().unwrap_or("")
    }
    fn peer(&self) -> &str {
        self.value["peer"].as_str().unwrap_or("")
    }
}

/// `value[path[0]][path[1]]...` as a number.
fn number_at(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// `value[path[0]][path[1]]...` as a string.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// A running peer process. Dropping it stops the process group (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct PeerProcess {
    stack: Stack,
    child: Child,
    exit: Option<ExitStatus>,
    events: Arc<Mutex<Vec<PeerEvent>>>,
    stderr: Arc<Mutex<String>>,
    stdout_done: Option<std::thread::JoinHandle<()>>,
    deadline: Instant,
    command: String,
}

impl PeerProcess {
    /// Starts `peers` (in order, one process) against the server at `base_url`, running for
    /// `duration` after the last one started. `extra` is passed to the script before the peers
    /// (e.g. `["--width", "320", "--height", "240"]`). Fails if the stack is not installed.
    pub fn spawn(
        stack: Stack,
        base_url: &str,
        peers: &[PeerSpec],
        duration: Duration,
        extra: &[&str],
    ) -> Result<PeerProcess, HarnessError> {
        PeerProcess::spawn_wrapped(&[], stack, base_url, peers, duration, extra)
    }

    /// [`PeerProcess::spawn`] under a wrapper command, for example `["ip", "netns", "exec",
    /// "NAME"]` to run the peers inside a network namespace (the wrapper must exec the program,
    /// so that stopping the process group stops the peers).
    pub fn spawn_wrapped(
        wrapper: &[&str],
        stack: Stack,
        base_url: &str,
        peers: &[PeerSpec],
        duration: Duration,
        extra: &[&str],
    ) -> Result<PeerProcess, HarnessError> {
        let mut args: Vec<String> = vec![
            "--server".into(),
            base_url.into(),
            "--duration".into(),
            format!("{:.1}", duration.as_secs_f64()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(peers.iter().map(PeerSpec::arg));
        // Startup (browser launch, offers, HTTP) plus the run, plus slack for a loaded machine.
        PeerProcess::spawn_args_wrapped(
            wrapper,
            stack,
            &args,
            duration + Duration::from_secs(45 + 5 * peers.len() as u64),
        )
    }

    /// Runs the stack's script with arbitrary arguments (e.g. `loopback`, `offer publish`);
    /// [`PeerProcess::wait`] gives up after `limit`.
    pub fn spawn_args<S: AsRef<std::ffi::OsStr>>(
        stack: Stack,
        args: &[S],
        limit: Duration,
    ) -> Result<PeerProcess, HarnessError> {
        PeerProcess::spawn_args_wrapped(&[], stack, args, limit)
    }

    fn spawn_args_wrapped<S: AsRef<std::ffi::OsStr>>(
        wrapper: &[&str],
        stack: Stack,
        args: &[S],
        limit: Duration,
    ) -> Result<PeerProcess, HarnessError> {
        let (program, script_args): (std::ffi::OsString, Vec<std::ffi::OsString>) = match stack {
            Stack::Chromium => {
                deps::check_browser()?;
                ("node".into(), vec![paths::browser_script().into()])
            }
            Stack::Aiortc => {
                deps::check_aiortc()?;
                (
                    paths::venv_python().into(),
                    vec!["-u".into(), paths::aiortc_script().into()],
                )
            }
        };
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(script_args);
        cmd.current_dir(paths::workspace_root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Chromium's processes live in this group too; drop kills them all.
            .process_group(0);
        let command = format!("{cmd:?}");
        let mut child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            what: command.clone(),
            source,
        })?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let echo = std::env::var_os("RINGCAST_TEST_LOG").is_some();
        if let Some(err) = child.stderr.take() {
            collect_lines(err, Arc::clone(&stderr), "", echo);
        }
        let stdout_done = child.stdout.take().map(|out| {
            let events = Arc::clone(&events);
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if echo {
                        eprintln!("[peer] {line}");
                    }
                    match serde_json::from_str::<Value>(&line) {
                        Ok(value) => {
                            if let Ok(mut e) = events.lock() {
                                e.push(PeerEvent {
                                    at: Instant::now(),
                                    value,
                                });
                            }
                        }
                        Err(_) => {
                            if let Ok(mut s) = stderr.lock() {
                                s.push_str(&format!("[stdout, not JSON] {line}\n"));
                            }
                        }
                    }
                }
            })
        });
        let deadline = Instant::now() + limit;
        Ok(PeerProcess {
            stack,
            child,
            exit: None,
            events,
            stderr,
            stdout_done,
            deadline,
            command,
        })
    }

    /// Which stack runs these peers.
    pub fn stack(&self) -> Stack {
        self.stack
    }

    /// A snapshot of the events received so far.
    pub fn events(&self) -> Vec<PeerEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Polls until `pred` holds on the events so far (true) or `timeout` passes or the process
    /// exits (false).
    pub fn wait_until(&mut self, timeout: Duration, pred: impl Fn(&[PeerEvent]) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if pred(&self.events()) {
                return true;
            }
            if Instant::now() > end || self.try_exit().is_some() {
                return pred(&self.events());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `peer` reports decoded video frames (`video.framesDecoded > 0`). Gives up
    /// early when the process reports an error or exits; the error describes the run so far.
    pub fn wait_decoding(&mut self, peer: &str, timeout: Duration) -> Result<(), String> {
        let decoding = |ev: &[PeerEvent]| {
            ev.iter().any(|e| {
                e.kind() == "stats"
                    && e.peer() == peer
                    && number_at(&e.value, &["video", "framesDecoded"]) > Some(0.0)
            })
        };
        let failed = |ev: &[PeerEvent]| ev.iter().any(|e| e.kind() == "error");
        self.wait_until(timeout, |ev| decoding(ev) || failed(ev));
        if decoding(&self.events()) {
            Ok(())
        } else {
            Err(format!(
                "{peer} decoded no video within {timeout:?}\n{}",
                self.snapshot().describe()
            ))
        }
    }

    /// Waits until `peer` reports a connected peer connection; gives up early on errors.
    pub fn wait_connected(&mut self, peer: &str, timeout: Duration) -> Result<(), String> {
        let connected = |ev: &[PeerEvent]| {
            ev.iter()
                .any(|e| e.kind() == "state" && e.peer() == peer && e.value["pc"] == "connected")
        };
        let failed = |ev: &[PeerEvent]| ev.iter().any(|e| e.kind() == "error");
        self.wait_until(timeout, |ev| connected(ev) || failed(ev));
        if connected(&self.events()) {
            Ok(())
        } else {
            Err(format!(
                "{peer} did not connect within {timeout:?}\n{}",
                self.snapshot().describe()
            ))
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits for the run to end (its duration plus slack) and returns everything it reported.
    pub fn wait(mut self) -> Result<PeerReport, HarnessError> {
        let status = loop {
            if let Some(s) = self.try_exit() {
                break s;
            }
            if Instant::now() > self.deadline {
                self.stop();
                return Err(HarnessError::Timeout {
                    what: format!("{:?} peers ({})", self.stack, self.command),
                    secs: 0.0,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(h) = self.stdout_done.take() {
            let _ = h.join();
        }
        // stderr's reader may lag a little behind the exit.
        std::thread::sleep(Duration::from_millis(50));
        let mut report = self.snapshot();
        report.status = Some(status);
        Ok(report)
    }

    /// What the process has reported so far (status `None` while it runs).
    pub fn snapshot(&mut self) -> PeerReport {
        PeerReport {
            stack: self.stack,
            events: self.events(),
            status: self.try_exit(),
            stderr: self.stderr.lock().map(|s| s.clone()).unwrap_or_default(),
            command: self.command.clone(),
        }
    }

    fn stop(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: signalling the process group we created (process_group(0)); its leader is our
        // unreaped child, so the id cannot have been reused.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if self.try_exit().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; kills Chromium's helpers too if the driver left them behind.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if self.exit.is_none() {
            self.exit = self.child.wait().ok();
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let err = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
            eprintln!("--- {:?} peer stderr ---\n{}", self.stack, tail(&err, 60));
        }
        self.stop();
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Everything a finished peer process reported.
#[derive(Debug, Clone)]
pub struct PeerReport {
    pub stack: Stack,
    pub events: Vec<PeerEvent>,
    /// `None` for a snapshot of a process still running.
    pub status: Option<ExitStatus>,
    pub stderr: String,
    pub command: String,
}

impl PeerReport {
    /// The `stats` events of `peer`, in order.
    pub fn stats(&self, peer: &str) -> Vec<&PeerEvent> {
        self.events
            .iter()
            .filter(|e| e.kind() == "stats" && e.peer() == peer)
            .collect()
    }

    /// Every `error` message.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.kind() == "error")
            .map(|e| e.value.to_string())
            .collect()
    }

    /// The closing `summary` event.
    pub fn summary(&self) -> Option<&Value> {
        self.events
            .iter()
            .rev()
            .find(|e| e.kind() == "summary")
            .map(|e| &e.value)
    }

    /// The `peer` events (one per peer: HTTP status, Location).
    pub fn peer_info(&self, peer: &str) -> Option<&Value> {
        self.events
            .iter()
            .find(|e| e.kind() == "peer" && e.peer() == peer)
            .map(|e| &e.value)
    }

    /// Exit status 0 and `summary.ok`.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
            && self.summary().and_then(|s| s["ok"].as_bool()) == Some(true)
    }

    /// The last reported value at `path` (e.g. `["audio", "packetsReceived"]`) for `peer`.
    pub fn last(&self, peer: &str, path: &[&str]) -> Option<f64> {
        self.stats(peer)
            .iter()
            .rev()
            .find_map(|e| number_at(&e.value, path))
    }

    /// The last reported string at `path` (e.g. `["video", "codec"]`) for `peer`.
    pub fn last_str(&self, peer: &str, path: &[&str]) -> Option<String> {
        self.stats(peer)
            .iter()
            .rev()
            .find_map(|e| str_at(&e.value, path).map(str::to_owned))
    }

    /// Every distinct string reported at `path` for `peer`, in order of first appearance.
    pub fn distinct_strs(&self, peer: &str, path: &[&str]) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for e in self.stats(peer) {
            if let Some(s) = str_at(&e.value, path)
                && !seen.iter().any(|x| x == s)
            {
                seen.push(s.to_owned());
            }
        }
        seen
    }

    /// The last stats sample of `peer`.
    pub fn last_sample(&self, peer: &str) -> Option<&Value> {
        self.stats(peer).last().map(|e| &e.value)
    }

    /// Rate per second of the counter at `path` between the first sample at or after `from` and
    /// the last sample at or before `to`. `None` when fewer than two samples fall in the window.
    pub fn rate_between(
        &self,
        peer: &str,
        path: &[&str],
        from: Instant,
        to: Instant,
    ) -> Option<f64> {
        let pts: Vec<(Instant, f64)> = self
            .stats(peer)
            .into_iter()
            .filter(|e| e.at >= from && e.at <= to)
            .filter_map(|e| number_at(&e.value, path).map(|v| (e.at, v)))
            .collect();
        let (&(t0, v0), &(t1, v1)) = (pts.first()?, pts.last()?);
        let dt = t1.duration_since(t0).as_secs_f64();
        (dt > 0.5).then(|| (v1 - v0) / dt)
    }

    /// Rate of the counter at `path` over the last `window` of `peer`'s samples. `None` unless
    /// the samples span at least 60 % of the window.
    pub fn rate_last(&self, peer: &str, path: &[&str], window: Duration) -> Option<f64> {
        let stats = self.stats(peer);
        let end = stats
            .iter()
            .rev()
            .find(|e| number_at(&e.value, path).is_some())?
            .at;
        let from = end.checked_sub(window)?;
        let first = stats
            .iter()
            .find(|e| e.at >= from && number_at(&e.value, path).is_some())?
            .at;
        if end.duration_since(first) < window.mul_f64(0.6) {
            return None;
        }
        self.rate_between(peer, path, from, end)
    }

    /// Decoded video frames per second over the last `window` (viewers).
    pub fn video_fps_last(&self, peer: &str, window: Duration) -> Option<f64> {
        self.rate_last(peer, &["video", "framesDecoded"], window)
    }

    /// A multi-line description for assertion messages: exit status, errors, summary, the last
    /// sample of every peer and the tail of stderr.
    pub fn describe(&self) -> String {
        let status = self.status.map_or_else(
            || "still running".to_string(),
            |s| format!("exited with {s}"),
        );
        let mut s = format!("{:?} peers {status} ({})\n", self.stack, self.command);
        for e in self.errors() {
            s.push_str(&format!("  error: {e}\n"));
        }
        if let Some(sum) = self.summary() {
            s.push_str(&format!("  summary: {sum}\n"));
        }
        let mut names: Vec<&str> = self
            .events
            .iter()
            .filter(|e| e.kind() == "stats")
            .map(PeerEvent::peer)
            .collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            if let Some(v) = self.last_sample(n) {
                s.push_str(&format!("  last {n}: {v}\n"));
            }
        }
        s.push_str(&format!("  stderr (tail):\n{}\n", tail(&self.stderr, 30)));
        s
    }

    /// Panics with [`PeerReport::describe`] unless the run was [`PeerReport::ok`].
    pub fn assert_ok(&self) {
        assert!(self.ok(), "peer run failed:\n{}", self.describe());
    }

    /// Asserts that viewer `peer` decoded video at `min_fps` or better over the last `window`
    /// and received audio (counter `audio_path` grew in that window). Returns the measured fps.
    pub fn assert_viewer_healthy(
        &self,
        peer: &str,
        min_fps: f64,
        window: Duration,
        audio_path: &[&str],
    ) -> f64 {
        let fps = self.video_fps_last(peer, window).unwrap_or_else(|| {
            panic!(
                "{peer}: no video samples over the last {window:?}\n{}",
                self.describe()
            )
        });
        assert!(
            fps >= min_fps,
            "{peer}: decoded {fps:.1} fps over the last {window:?}, want >= {min_fps}\n{}",
            self.describe()
        );
        let audio = self.rate_last(peer, audio_path, window).unwrap_or_else(|| {
            panic!(
                "{peer}: no audio samples ({audio_path:?})\n{}",
                self.describe()
            )
        });
        assert!(
            audio > 0.0,
            "{peer}: audio counter {audio_path:?} did not grow over the last {window:?}\n{}",
            self.describe()
        );
        fps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn report(samples: &[(u64, f64)]) -> PeerReport {
        let t0 = Instant::now();
        let events = samples
            .iter()
            .map(|&(ms, frames)| PeerEvent {
                at: t0 + Duration::from_millis(ms),
                value: serde_json::json!({"type": "stats", "peer": "view-0", "video": {"framesDecoded": frames}}),
            })
            .collect();
        PeerReport {
            stack: Stack::Chromium,
            events,
            status: Some(ExitStatus::from_raw(0)),
            stderr: String::new(),
            command: String::new(),
        }
    }

    #[test]
    fn fps_over_last_window_uses_sample_times() {
        // 10 s of samples, 30 fps for 5 s, then 10 fps.
        let samples: Vec<(u64, f64)> = (0..=10)
            .map(|s| {
                (
                    s * 1000,
                    if s <= 5 {
                        30.0 * s as f64
                    } else {
                        150.0 + 10.0 * (s - 5) as f64
                    },
                )
            })
            .collect();
        let r = report(&samples);
        let fps = r
            .video_fps_last("view-0", Duration::from_secs(5))
            .expect("enough samples");
        assert!((fps - 10.0).abs() < 0.01, "fps {fps}");
        let all = r
            .video_fps_last("view-0", Duration::from_secs(10))
            .expect("enough samples");
        assert!((all - 20.0).abs() < 0.01, "fps {all}");
    }

    #[test]
    fn fps_needs_samples_spanning_the_window() {
        let r = report(&[(0, 0.0), (1000, 30.0)]);
        assert_eq!(r.video_fps_last("view-0", Duration::from_secs(5)), None);
        assert_eq!(r.video_fps_last("view-1", Duration::from_secs(1)), None);
    }
}
