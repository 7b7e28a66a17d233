//! The side-by-side macro benchmark (`bench macro`): each server in turn is started in the
//! server namespace on the shard cores, driven by the same loadgen workload from the client
//! namespace on the other cores, and measured from outside: egress packets from the server's
//! interface counters, CPU time and RSS from /proc, latency and loss from the loadgen report.
//! `--saturate` raises the subscriber count until loss passes 0.5 % (or p99 latency 200 ms, or a
//! join fails) and then measures at half of the largest count that held.

mod netns;
mod options;
mod procfs;
mod report;
mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use options::Options;
use procfs::{cpu_seconds, iface_packets, rss_bytes};
use report::{Point, Report, ServerSummary};
use server::{Paths, Server, ServerKind};

/// Loss above which a saturation step fails.
pub const LOSS_LIMIT: f64 = 0.005;
/// p99 end-to-end latency above which a saturation step fails (the load is not real time).
pub const LATENCY_LIMIT_US: f64 = 200_000.0;

/// Entry point for `bench macro ARGS...`; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match Options::parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{}", options::USAGE);
            return 0;
        }
        Err(e) => {
            eprintln!("bench macro: {e}\n\n{}", options::USAGE);
            return 2;
        }
    };
    match run(&opts) {
        Ok(report) => {
            println!("{}", report.table());
            if let Some(path) = &opts.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(t) => {
                        if let Err(e) = std::fs::write(path, t + "\n") {
                            eprintln!("bench macro: {}: {e}", path.display());
                            return 2;
                        }
                        println!("JSON report: {}", path.display());
                    }
                    Err(e) => {
                        eprintln!("bench macro: {e}");
                        return 2;
                    }
                }
            }
            0
        }
        Err(e) => {
            eprintln!("bench macro: {e}");
            1
        }
    }
}

fn repo_root() -> PathBuf {
    // bench/ is one level below the workspace root.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// Runs `tuning/apply.sh --check` when it exists; returns what it said.
fn tuning_state(root: &Path) -> String {
    let script = root.join("tuning/apply.sh");
    if !script.exists() {
        return "tuning/apply.sh not present: host defaults".into();
    }
    match Command::new("bash").arg(&script).arg("--check").output() {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let last = text.lines().last().unwrap_or("").to_string();
            format!(
                "tuning/apply.sh --check: exit {} ({})",
                o.status.code().unwrap_or(-1),
                last
            )
        }
        Err(e) => format!("tuning/apply.sh --check could not run: {e}"),
    }
}

fn run(opts: &Options) -> Result<Report, String> {
    let root = repo_root();
    let net = netns::Netns::default();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server_cores: Vec<usize> = (0..opts.shards).map(|i| i % ncpu).collect();
    let loadgen_cores: Vec<usize> = (0..opts.loadgen_threads)
        .map(|i| (opts.shards + i) % ncpu)
        .collect();
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("ringcast-macro"));
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let paths = Paths {
        root: root.clone(),
        signaling: server::release_bin(&root, "signaling"),
        janus: server::find_janus().unwrap_or_else(|| PathBuf::from("janus")),
        out_dir: out_dir.clone(),
    };
    let loadgen_bin = server::release_bin(&root, "loadgen");
    for (what, p) in [("signaling", &paths.signaling), ("loadgen", &loadgen_bin)] {
        if !procfs::executable(p) {
            return Err(format!(
                "{} not built: run `cargo build --release -p signaling -p loadgen` first ({})",
                what,
                p.display()
            ));
        }
    }
    if opts.servers.contains(&ServerKind::Janus) && !procfs::executable(&paths.janus) {
        return Err("janus not found: run scripts/install-bench-deps.sh (or set JANUS_BIN)".into());
    }
    net.setup(&root)?;
    net.enter_client()?;
    let tuning = tuning_state(&root);
    let machine = procfs::machine();
    eprintln!(
        "machine: {} ({} cores), kernel {}; {tuning}",
        machine.cpu_model, machine.cores, machine.kernel
    );
    if ncpu < opts.shards + opts.loadgen_threads {
        eprintln!(
            "note: {} shard core(s) + {} loadgen core(s) > {ncpu} cores: they share cores",
            opts.shards, opts.loadgen_threads
        );
    }
    let ctx = Ctx {
        opts,
        net: &net,
        paths: &paths,
        loadgen: &loadgen_bin,
        server_cores: &server_cores,
        loadgen_cores: &loadgen_cores,
    };
    let mut summaries = Vec::new();
    for &kind in &opts.servers {
        summaries.push(ctx.server_summary(kind)?);
    }
    Ok(Report {
        machine,
        tuning,
        options: opts.clone(),
        server_cores,
        loadgen_cores,
        servers: summaries,
    })
}

struct Ctx<'a> {
    opts: &'a Options,
    net: &'a netns::Netns,
    paths: &'a Paths,
    loadgen: &'a Path,
    server_cores: &'a [usize],
    loadgen_cores: &'a [usize],
}

impl Ctx<'_> {
    fn server_summary(&self, kind: ServerKind) -> Result<ServerSummary, String> {
        let opts = self.opts;
        if !opts.saturate {
            let p = self.measure(kind, opts.subscribers)?;
            return Ok(ServerSummary {
                server: kind,
                points: vec![p],
                saturation: None,
                half_saturation: None,
            });
        }
        let mut points = Vec::new();
        let mut best: Option<usize> = None;
        let mut subs = opts.subscribers.max(1);
        for _ in 0..opts.max_steps {
            let p = self.measure(kind, subs)?;
            let ok = p.holds();
            points.push(p);
            if !ok {
                break;
            }
            best = Some(subs);
            subs = ((subs as f64) * opts.step).ceil() as usize;
            if subs * opts.publishers > opts.max_subscribers {
                break;
            }
        }
        let half = match best {
            Some(b) => Some(self.measure(kind, (b / 2).max(1))?),
            None => None,
        };
        let saturation =
            best.and_then(|b| points.iter().find(|p| p.subs_per_publisher == b).cloned());
        Ok(ServerSummary {
            server: kind,
            points,
            saturation,
            half_saturation: half,
        })
    }

    /// One run: a fresh server, `subs` subscribers per publisher, measured over the window.
    fn measure(&self, kind: ServerKind, subs: usize) -> Result<Point, String> {
        let opts = self.opts;
        let clients = opts.publishers * (1 + subs);
        let warmup = clients as f64 / opts.ramp + opts.settle;
        let lg_duration = warmup + opts.duration + 1.0;
        eprintln!(
            "[{}] {} publishers x {} subscribers, {:.0} s warm-up, {:.0} s measured",
            kind.name(),
            opts.publishers,
            subs,
            warmup,
            opts.duration
        );
        let server = Server::start(
            kind,
            self.net,
            self.paths,
            opts.shards,
            opts.io.as_deref(),
            self.server_cores,
        )?;
        let pid = server.pid();
        std::thread::sleep(Duration::from_secs(1));
        let rss_idle = rss_bytes(pid).unwrap_or(0);
        let json = self
            .paths
            .out_dir
            .join(format!("loadgen-{}-{subs}.json", kind.name()));
        let _ = std::fs::remove_file(&json);
        let cpus = self
            .loadgen_cores
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let lg_log = self
            .paths
            .out_dir
            .join(format!("loadgen-{}-{subs}.log", kind.name()));
        let log = std::fs::File::create(&lg_log).map_err(|e| e.to_string())?;
        let mut lg = Command::new("taskset")
            .args(["-c", &cpus])
            .arg(self.loadgen)
            .args([
                "--target",
                &server.target,
                "--publishers",
                &opts.publishers.to_string(),
                "--subscribers",
                &subs.to_string(),
                "--video-bitrate",
                &opts.video_bitrate.to_string(),
                "--duration",
                &format!("{lg_duration:.1}"),
                "--ramp",
                &opts.ramp.to_string(),
                "--threads",
                &opts.loadgen_threads.to_string(),
                "--bind-ip",
                &self.net.cli_ip,
                "--seed",
                &opts.seed.to_string(),
                "--quiet",
                "--json",
            ])
            .arg(&json)
            .args(&opts.loadgen_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting loadgen: {e}"))?;
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(warmup));
        let c0 = cpu_seconds(pid).unwrap_or(0.0);
        let (rx0, tx0) = iface_packets(pid, &self.net.srv_iface).unwrap_or((0, 0));
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(opts.duration));
        let c1 = cpu_seconds(pid).unwrap_or(0.0);
        let (rx1, tx1) = iface_packets(pid, &self.net.srv_iface).unwrap_or((0, 0));
        let window = t0.elapsed().as_secs_f64();
        let rss_load = rss_bytes(pid).unwrap_or(0);
        let status = lg.wait().map_err(|e| e.to_string())?;
        let lg_secs = started.elapsed().as_secs_f64();
        server.stop();
        let report: Value = std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                format!(
                    "loadgen wrote no report ({status}); see {}",
                    lg_log.display()
                )
            })?;
        let f = |ptr: &str| {
            report
                .pointer(ptr)
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN)
        };
        let u = |ptr: &str| report.pointer(ptr).and_then(Value::as_u64).unwrap_or(0);
        // The interface counts a UDP GSO send as one packet (veth passes GSO packets whole), so
        // take the datagrams the loadgen's clients received when that is larger.
        let veth_tx_pps = tx1.saturating_sub(tx0) as f64 / window;
        let received_pps = f("/datagrams/received") / f("/media_s").max(1e-9);
        let egress_pps = if received_pps.is_finite() {
            veth_tx_pps.max(received_pps)
        } else {
            veth_tx_pps
        };
        let cpu = c1 - c0;
        let total_subs = opts.publishers * subs;
        let p = Point {
            subs_per_publisher: subs,
            subscribers: total_subs,
            publishers: opts.publishers,
            window_s: window,
            egress_pps,
            veth_tx_pps,
            ingress_pps: rx1.saturating_sub(rx0) as f64 / window,
            server_cpu_s: cpu,
            server_cpu_util: cpu / window,
            cpu_s_per_mpkt: if egress_pps > 0.0 {
                cpu / (egress_pps * window) * 1e6
            } else {
                f64::NAN
            },
            rss_idle_mib: rss_idle as f64 / (1 << 20) as f64,
            rss_load_mib: rss_load as f64 / (1 << 20) as f64,
            rss_per_subscriber_kib: rss_load.saturating_sub(rss_idle) as f64
                / 1024.0
                / total_subs.max(1) as f64,
            latency_p50_us: f("/latency_us/p50"),
            latency_p99_us: f("/latency_us/p99"),
            loss_ratio: f("/loss_ratio"),
            joins_failed: u("/joins_failed"),
            receiving_at_end: u("/subscribers/receiving_at_end"),
            loadgen_cpu_util: f("/loadgen_cpu_s") / f("/media_s").max(1e-9),
            loadgen_exit: status.code().unwrap_or(-1),
            loadgen_s: lg_secs,
        };
        eprintln!("[{}] {}", kind.name(), p.one_line());
        Ok(p)
    }
}
