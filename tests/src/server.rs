//! The server under test: the release `signaling` binary on free ports, health-checked, stopped
//! with SIGTERM on drop.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http::{self, HttpResponse};
use crate::ports::{self, PortReservation};
use crate::{HarnessError, Metrics, paths};

/// The server's UDP I/O backend (`--io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// io_uring: multishot recvmsg, buffer ring, batched sendmsg.
    Uring,
    /// recvmmsg/sendmmsg with epoll.
    Mmsg,
}

impl Io {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Io::Uring => "uring",
            Io::Mmsg => "mmsg",
        }
    }
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--shards N`.
    pub shards: u16,
    /// `--io`.
    pub io: Io,
    /// Extra command-line arguments, appended after the harness's own.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// How long to wait for `/health` to answer 200.
    pub startup_timeout: Duration,
    /// The HTTP listener's address (`--bind`; 127.0.0.1 unless set). The harness itself always
    /// talks to it through 127.0.0.1, so set it to `0.0.0.0` or to an address that includes it.
    pub bind: Ipv4Addr,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            shards: 1,
            io: Io::Mmsg,
            args: Vec::new(),
            env: Vec::new(),
            startup_timeout: Duration::from_secs(20),
            bind: Ipv4Addr::LOCALHOST,
        }
    }
}

impl ServerOptions {
    /// `shards` shards on the `io` backend, nothing else.
    pub fn new(shards: u16, io: Io) -> Self {
        ServerOptions {
            shards,
            io,
            ..Default::default()
        }
    }

    /// Appends command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The HTTP listener's address (see [`ServerOptions::bind`]).
    pub fn bind(mut self, addr: Ipv4Addr) -> Self {
        self.bind = addr;
        self
    }

    /// Sets an environment variable for the server.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// Environment variables of the server's contract: removed from the inherited environment so a
/// developer's shell cannot change what a test runs (set them through `ServerOptions::env`).
const CONTRACT_ENV: &[&str] = &[
    "PORT",
    "BIND_ADDR",
    "RTC_MIN_PORT",
    "SHARDS",
    "IO_BACKEND",
    "PUBLIC_IP",
    "ICE_SERVERS",
    "AUTH_SECRET",
    "DATA_DIR",
    "DATABASE_URL",
    "ENABLE_RECORDING",
    "RECORDING_STORAGE",
    "RECORDING_ACCESS_KEY",
    "RECORDING_SECRET_KEY",
    "RECORDING_REGION",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
];

/// A running server. Dropping it sends SIGTERM, waits up to 5 s, then SIGKILLs its process group.
#[derive(Debug)]
pub struct Server {
    child: Child,
    exit: Option<ExitStatus>,
    ports: PortReservation,
    shards: u16,
    io: Io,
    log: Arc<Mutex<String>>,
    /// The DATA_DIR the harness made for this server (removed when it is dropped); `None` when
    /// the test chose one.
    data_dir: Option<std::path::PathBuf>,
}

/// A fresh, empty directory for a server's DATA_DIR (the livestream service's SQLite file), so
/// that tests neither share a database nor leave one in the source tree.
fn fresh_data_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("ringcast-data-{}-{n}", std::process::id()))
}

impl Server {
    /// Builds the release binary if needed, starts it on free ports and waits for `/health`.
    pub fn start(opts: ServerOptions) -> Result<Server, HarnessError> {
        let bin = paths::server_binary()?;
        let mut last_err = None;
        for _attempt in 0..3 {
            let ports = ports::reserve(opts.shards)?;
            match Self::spawn_once(&bin, &opts, ports) {
                Ok(server) => return Ok(server),
                // Another process took a port between probe and bind: try other ports.
                Err(e @ HarnessError::Startup { .. })
                    if e.to_string().to_lowercase().contains("in use") =>
                {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| HarnessError::Ports("retries exhausted".into())))
    }

    fn spawn_once(
        bin: &std::path::Path,
        opts: &ServerOptions,
        ports: PortReservation,
    ) -> Result<Server, HarnessError> {
        let mut cmd = Command::new(bin);
        for k in CONTRACT_ENV {
            cmd.env_remove(k);
        }
        let chosen = opts.env.iter().any(|(k, _)| k == "DATA_DIR")
            || opts.args.iter().any(|a| a.starts_with("--data-dir"));
        let data_dir = (!chosen).then(fresh_data_dir);
        if let Some(dir) = &data_dir {
            cmd.env("DATA_DIR", dir);
        }
        cmd.args(["--bind", &opts.bind.to_string()])
            .args(["--port", &ports.http.to_string()])
            .args(["--rtc-min-port", &ports.rtc_min.to_string()])
            .args(["--shards", &opts.shards.to_string()])
            .args(["--io", opts.io.as_str()])
            .args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: a stray child of the server can be killed with it.
            .process_group(0);
        let command_line = format!("{cmd:?}");
        let mut child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            what: bin.display().to_string(),
            source,
        })?;
        let log = Arc::new(Mutex::new(format!("$ {command_line}\n")));
        let echo = std::env::var_os("RINGCAST_TEST_LOG").is_some();
        if let Some(out) = child.stderr.take() {
            collect_lines(out, Arc::clone(&log), "", echo);
        }
        if let Some(out) = child.stdout.take() {
            collect_lines(out, Arc::clone(&log), "[stdout] ", echo);
        }
        let mut server = Server {
            child,
            exit: None,
            ports,
            shards: opts.shards,
            io: opts.io,
            log,
            data_dir,
        };
        let deadline = Instant::now() + opts.startup_timeout;
        loop {
            if let Some(status) = server.try_exit() {
                // Give the reader threads a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Err(HarnessError::Startup {
                    reason: format!("server exited with {status}"),
                    stderr: server.log(),
                });
            }
            if let Ok(r) = http::request("GET", &server.url("/health"), None)
                && r.status == 200
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                let reason = format!("no 200 from /health within {:?}", opts.startup_timeout);
                let _ = server.kill_group();
                return Err(HarnessError::Startup {
                    reason,
                    stderr: server.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// `base_url() + path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// `http://{ip}:PORT`: the server as a peer elsewhere (another network namespace) reaches
    /// it, when it listens there ([`ServerOptions::bind`]).
    pub fn base_url_at(&self, ip: Ipv4Addr) -> String {
        format!("http://{ip}:{}", self.ports.http)
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.ports.http))
    }

    /// The UDP port of shard `shard` (`--rtc-min-port + shard`).
    pub fn rtc_port(&self, shard: u16) -> u16 {
        self.ports.rtc_min + shard
    }

    /// The loopback address of shard `shard`'s UDP socket.
    pub fn rtc_addr(&self, shard: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.rtc_port(shard)))
    }

    /// The HTTP port.
    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    /// Number of shards it was started with.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The I/O backend it was started with.
    pub fn io(&self) -> Io {
        self.io
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote so far (stderr, and stdout lines prefixed `[stdout]`).
    pub fn log(&self) -> String {
        self.log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The last `n` lines of [`Server::log`].
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Result<HttpResponse, HarnessError> {
        http::request("GET", &self.url(path), None)
    }

    /// POST `body` with `content_type` to `path`.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse, HarnessError> {
        http::request("POST", &self.url(path), Some((content_type, body)))
    }

    /// DELETE a path or an absolute URL (e.g. a WHIP `Location`).
    pub fn delete(&self, path_or_url: &str) -> Result<HttpResponse, HarnessError> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            self.url(path_or_url)
        };
        http::request("DELETE", &url, None)
    }

    /// POST an SDP offer to `/whip/{stream}`.
    pub fn whip(&self, stream: &str, offer: &str) -> Result<HttpResponse, HarnessError> {
        self.post(
            &format!("/whip/{stream}"),
            "application/sdp",
            offer.as_bytes(),
        )
    }

    /// POST an SDP offer to `/whep/{stream}`.
    pub fn whep(&self, stream: &str, offer: &str) -> Result<HttpResponse, HarnessError> {
        self.post(
            &format!("/whep/{stream}"),
            "application/sdp",
            offer.as_bytes(),
        )
    }

    /// Scrapes and parses `/metrics`.
    pub fn metrics(&self) -> Result<Metrics, HarnessError> {
        let r = self.get("/metrics")?;
        if r.status != 200 {
            return Err(HarnessError::Http {
                method: "GET".into(),
                url: self.url("/metrics"),
                reason: r.describe(),
            });
        }
        Metrics::parse(&r.text())
    }

    /// Scrapes `/metrics` until `pred` holds (shards publish their counters a few times a
    /// second). Returns the matching scrape, or the last one seen (or the scrape error) on timeout.
    pub fn wait_for_metrics(
        &self,
        timeout: Duration,
        pred: impl Fn(&Metrics) -> bool,
    ) -> Result<Metrics, String> {
        let end = Instant::now() + timeout;
        loop {
            let last = self.metrics();
            if let Ok(m) = &last
                && pred(m)
            {
                return Ok(m.clone());
            }
            if Instant::now() > end {
                return Err(match last {
                    Ok(m) => format!(
                        "{:#?}",
                        m.samples
                            .iter()
                            .filter(|s| s.name.starts_with("ringcast_"))
                            .collect::<Vec<_>>()
                    ),
                    Err(e) => e.to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether `/health` answers 200 right now.
    pub fn healthy(&self) -> bool {
        matches!(self.get("/health"), Ok(r) if r.status == 200)
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Panics (with the log tail) unless the process is still running and healthy.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.try_exit() {
            panic!(
                "server exited unexpectedly with {status}\n--- server log ---\n{}",
                self.log_tail(200)
            );
        }
        assert!(
            self.healthy(),
            "server no longer answers /health\n--- server log ---\n{}",
            self.log_tail(200)
        );
    }

    /// Sends `signal` to the server process.
    pub fn signal(&self, signal: i32) -> Result<(), HarnessError> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped: `exit` is None or
        // the call is harmless ESRCH).
        let rc = unsafe { libc::kill(pid, signal) };
        if rc != 0 {
            return Err(HarnessError::io(
                format!("kill({pid}, {signal})"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit. Returns its exit status
    /// and how long it took; on timeout the process is SIGKILLed and an error returned.
    pub fn terminate(&mut self, timeout: Duration) -> Result<(ExitStatus, Duration), HarnessError> {
        if let Some(status) = self.try_exit() {
            return Ok((status, Duration::ZERO));
        }
        let start = Instant::now();
        self.signal(libc::SIGTERM)?;
        loop {
            if let Some(status) = self.try_exit() {
                return Ok((status, start.elapsed()));
            }
            if start.elapsed() > timeout {
                let _ = self.kill_group();
                return Err(HarnessError::Timeout {
                    what: "server after SIGTERM".into(),
                    secs: timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_group(&mut self) -> Result<(), HarnessError> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the process group we created with process_group(0); its id is the
        // child's pid.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let status = self
            .child
            .wait()
            .map_err(|e| HarnessError::io("wait for server", e))?;
        self.exit = Some(status);
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- server log (last 150 lines) ---\n{}\n--- end of server log ---",
                self.log_tail(150)
            );
        }
        // terminate() SIGKILLs the process group itself when SIGTERM is ignored.
        if self.try_exit().is_none() && self.terminate(Duration::from_secs(5)).is_err() {
            eprintln!(
                "[ringcast-tests] server {} ignored SIGTERM for 5 s; killed",
                self.child.id()
            );
        }
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir); // best effort: it is under the temp dir
        }
    }
}

/// Reads `src` line by line into `log` on a background thread.
pub(crate) fn collect_lines<R: Read + Send + 'static>(
    src: R,
    log: Arc<Mutex<String>>,
    prefix: &'static str,
    echo: bool,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(src);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    if echo {
                        eprint!("{prefix}{text}");
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(prefix);
                        l.push_str(&text);
                        if !text.ends_with('\n') {
                            l.push('\n');
                        }
                    }
                }
            }
        }
    });
}
