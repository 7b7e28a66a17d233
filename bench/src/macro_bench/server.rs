//! The servers under test, each started fresh in the server namespace and pinned to the shard
//! cores: Ringcast (the release `signaling` binary, all-in-one) and Janus (Debian's package,
//! with the configuration in bench/janus/). Readiness is a signaling request from the client
//! namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::http::{self, Url};

use super::netns::Netns;

/// Which SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Ringcast,
    Janus,
}

impl ServerKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "ringcast" => Some(ServerKind::Ringcast),
            "janus" => Some(ServerKind::Janus),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Ringcast => "ringcast",
            ServerKind::Janus => "janus",
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub kind: ServerKind,
    child: Child,
    /// The `--target` the load generator uses.
    pub target: String,
    pub log: PathBuf,
}

/// Where things are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub signaling: PathBuf,
    pub janus: PathBuf,
    pub out_dir: PathBuf,
}

fn cpu_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Server {
    /// Starts `kind` with `shards` media shards (Ringcast) on `cores`, and waits until its
    /// signaling answers.
    pub fn start(
        kind: ServerKind,
        net: &Netns,
        paths: &Paths,
        shards: usize,
        io: Option<&str>,
        cores: &[usize],
    ) -> Result<Server, String> {
        let log = paths.out_dir.join(format!("{}.log", kind.name()));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &net.srv, "taskset", "-c", &cpu_list(cores)]);
        let target = match kind {
            ServerKind::Ringcast => {
                cmd.arg(&paths.signaling).args([
                    "--bind",
                    &net.srv_ip,
                    "--port",
                    "8080",
                    "--rtc-bind",
                    &net.srv_ip,
                    "--rtc-min-port",
                    "50000",
                    "--shards",
                    &shards.to_string(),
                    "--max-sessions-per-shard",
                    "100000",
                ]);
                if let Some(io) = io {
                    cmd.args(["--io", io]);
                }
                cmd.env("RUST_LOG", "warn");
                format!("http://{}:8080", net.srv_ip)
            }
            ServerKind::Janus => {
                let dir = paths.root.join("bench/janus");
                cmd.arg(&paths.janus)
                    .arg("-C")
                    .arg(dir.join("janus.jcfg"))
                    .arg("-F")
                    .arg(&dir)
                    .args(["-o", "-N"]);
                format!("janus+http://{}:8088/janus", net.srv_ip)
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", kind.name()))?;
        let mut server = Server {
            kind,
            child,
            target,
            log,
        };
        server.wait_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    /// The server's process id (`ip netns exec` and `taskset` exec in place, so it is the
    /// child's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let (url, method, body): (Url, &str, &[u8]) = match self.kind {
            ServerKind::Ringcast => (
                Url::parse(&format!("{}/health", self.target)).map_err(|e| e.to_string())?,
                "GET",
                b"",
            ),
            ServerKind::Janus => (
                Url::parse(self.target.trim_start_matches("janus+")).map_err(|e| e.to_string())?,
                "POST",
                br#"{"janus":"info","transaction":"ready"}"#,
            ),
        };
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited during start ({status}); see {}",
                    self.kind.name(),
                    self.log.display()
                ));
            }
            let r = http::send(&http::Request {
                method,
                url: &url,
                headers: &[],
                body,
                timeout: Duration::from_millis(500),
            });
            if r.is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer within {limit:?}; see {}",
                    self.kind.name(),
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child process by its id.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Janus binary: `JANUS_BIN`, else `janus` on the PATH.
pub fn find_janus() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("JANUS_BIN") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("janus"))
            .find(|p| super::procfs::executable(p))
    })
}

/// The release binary `name` under `root/target/release`.
pub fn release_bin(root: &Path, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release").join(name)
}
