//! A whole run: workers started, joins paced by the ramp on a few signaling threads, a live
//! status line, the stop after `--duration`, sessions left, the report built.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sfu::dtls::DtlsCert;

use crate::cli::Args;
use crate::engine::udp::route_ip;
use crate::engine::worker::WorkerConfig;
use crate::engine::{Worker, WorkerHandle, WorkerResult};
use crate::http::Url;
use crate::join::{JoinContext, join};
use crate::media::{AudioConfig, Clock, VideoConfig};
use crate::plan::plan;
use crate::stats::counters::ReceiveQuality;
use crate::stats::cpu::ProcSample;
use crate::stats::live::{LiveSample, status_line};
use crate::stats::report::ServerCpu;
use crate::stats::server_metrics::{self, Scrape, ServerTraffic};
use crate::stats::server_viewer::{self, ViewerEstimate};
use crate::stats::{ClassReport, Counters, CpuTimes, Histogram, Measured, Report, RunInfo};
use crate::target::{Role, SessionHandle, Target, TargetError, WhipTarget};

/// Distinct join errors kept for the report.
const MAX_ERRORS: usize = 10;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid arguments: {0}")]
    Args(String),
    #[error("target: {0}")]
    Target(#[from] TargetError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("DTLS certificate: {0}")]
    Cert(String),
}

/// The result of a run.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: Report<Args>,
    /// False when joins failed or subscribers received nothing: the exit status is then 1.
    pub ok: bool,
}

#[derive(Debug, Default)]
struct JoinFailures {
    publishers: u64,
    subscribers: u64,
    errors: Vec<String>,
}

impl JoinFailures {
    fn record(&mut self, role: Role, error: String) {
        match role {
            Role::Publisher => self.publishers += 1,
            Role::Subscriber => self.subscribers += 1,
        }
        if self.errors.len() < MAX_ERRORS && !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }
}

/// Set by SIGINT/SIGTERM: the run ends early but still leaves its sessions and reports.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn catch_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores to an atomic.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
}

/// Raises the open-file soft limit to the hard limit (one socket per client).
fn raise_nofile() {
    // SAFETY: an all-zero rlimit is a valid value; getrlimit/setrlimit only read and write it.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn target_addr(url: &str) -> Result<SocketAddr, RunError> {
    let u = Url::parse(url).map_err(|e| RunError::Args(e.to_string()))?;
    u.resolve()
        .map_err(|e| RunError::Args(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| RunError::Args(format!("cannot resolve {url}")))
}

/// The signaling target `args` describe: WHIP/WHEP at `--target`, or Janus VideoRoom for
/// `janus+http://` URLs.
pub fn make_target(args: &Args) -> Result<Arc<dyn Target>, TargetError> {
    let timeout = Duration::from_secs_f64(args.http_timeout);
    if args.target.starts_with("janus+") {
        return Ok(Arc::new(crate::janus::JanusTarget::new(
            &args.target,
            args.publishers.div_ceil(args.rooms()),
            timeout,
        )?));
    }
    Ok(Arc::new(WhipTarget::new(
        &args.target,
        args.token.clone(),
        timeout,
    )?))
}

/// The impairing relay of `--impair`, when some subscribers use it.
fn impair_plan(args: &Args) -> Result<Option<crate::relay::ImpairPlan>, RunError> {
    let Some(text) = args.impair.as_deref() else {
        return Ok(None);
    };
    if args.impair_subscribers <= 0.0 {
        return Ok(None);
    }
    let imp = crate::relay::Impairment::parse(text).map_err(|e| RunError::Args(e.to_string()))?;
    let relay = crate::relay::Relay::new(imp, imp, args.seed)
        .spawn()
        .map_err(|source| RunError::Io {
            what: "starting the impairing relay",
            source,
        })?;
    Ok(Some(crate::relay::ImpairPlan {
        relay: Arc::new(relay),
        fraction: args.impair_subscribers,
        publishers: args.publishers,
    }))
}

/// Runs the load described by `args`.
pub fn run(args: Args) -> Result<RunOutcome, RunError> {
    args.validate().map_err(RunError::Args)?;
    raise_nofile();
    catch_signals();
    let target = make_target(&args)?;
    let addr = target_addr(args.target.strip_prefix("janus+").unwrap_or(&args.target))?;
    let bind_ip: IpAddr = match args.bind_ip {
        Some(ip) => ip,
        None => route_ip(addr).map_err(|source| RunError::Io {
            what: "finding the local address toward the target",
            source,
        })?,
    };
    let cert = Arc::new(DtlsCert::generate().map_err(|e| RunError::Cert(e.to_string()))?);
    let classes = args.class_plan().map_err(RunError::Args)?.map(Arc::new);
    let requests = plan(
        &args.stream_prefix,
        args.publishers,
        args.subscribers_per_publisher(),
        args.rooms(),
    );
    let total = requests.len();
    let epoch = Instant::now();
    let clock = Clock::new(epoch);
    let wcfg = WorkerConfig {
        clock,
        join_timeout: Duration::from_secs_f64(args.join_timeout),
        rx_batch: 32,
        tx_batch: 64,
        expected_clients: total.div_ceil(args.threads),
        rx_mode: args.io,
        uring_buffers: 8192,
    };
    let mut workers = Vec::with_capacity(args.threads);
    for i in 0..args.threads {
        workers.push(
            Worker::spawn(format!("loadgen-w{i}"), wcfg).map_err(|source| RunError::Io {
                what: "starting a worker",
                source,
            })?,
        );
    }
    let ctx = JoinContext {
        target: Arc::clone(&target),
        cert,
        bind_ip,
        prefer_ip: Some(addr.ip()),
        video: VideoConfig {
            bitrate_bps: args.video_bitrate,
            keyframe_interval: Duration::from_secs_f64(args.keyframe_interval),
            ..VideoConfig::default()
        },
        audio: args.audio.then_some(AudioConfig {
            bitrate_bps: args.audio_bitrate,
        }),
        simulcast: args.simulcast,
        seed: args.seed,
        socket_buffer: args.socket_buffer,
        impair: impair_plan(&args)?,
        classes: classes.clone(),
    };

    let cpu0 = CpuTimes::process();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(JoinFailures::default()));
    let sessions: Arc<Mutex<Vec<Arc<SessionHandle>>>> = Arc::new(Mutex::new(Vec::new()));
    // Capacity-class viewers: (class, resource), to ask the server for its estimates.
    let class_viewers: Arc<Mutex<Vec<(usize, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(requests);
    let senders: Vec<_> = workers.iter().map(|w| (w.sender(), w.waker())).collect();
    let senders = Arc::new(senders);
    let mut joiners = Vec::new();
    for i in 0..args.join_threads.min(total.max(1)) {
        let (ctx, stop, next, failures, sessions, requests, senders) = (
            ctx.clone(),
            Arc::clone(&stop),
            Arc::clone(&next),
            Arc::clone(&failures),
            Arc::clone(&sessions),
            Arc::clone(&requests),
            Arc::clone(&senders),
        );
        let class_viewers = Arc::clone(&class_viewers);
        let ramp = args.ramp;
        let threads = args.threads;
        joiners.push(
            std::thread::Builder::new()
                .name(format!("loadgen-join{i}"))
                .spawn(move || {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(req) = requests.get(k) else { break };
                        if ramp > 0.0 {
                            let due = start + Duration::from_secs_f64(k as f64 / ramp);
                            while Instant::now() < due {
                                if stop.load(Ordering::Relaxed) {
                                    return;
                                }
                                let left = due.saturating_duration_since(Instant::now());
                                std::thread::sleep(left.min(Duration::from_millis(50)));
                            }
                        }
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        match join(&ctx, req) {
                            Ok(j) => {
                                if let (Some(c), Ok(mut v)) = (j.client.class, class_viewers.lock())
                                {
                                    v.push((c, j.session.resource.clone()));
                                }
                                if let Ok(mut s) = sessions.lock() {
                                    s.push(Arc::new(j.session));
                                }
                                let (tx, waker) = &senders[req.client % threads];
                                if tx.send(j.client).is_err() {
                                    break;
                                }
                                waker.wake();
                            }
                            Err(e) => {
                                if let Ok(mut f) = failures.lock() {
                                    f.record(
                                        req.role,
                                        format!("{} {}: {e}", req.role.as_str(), req.stream),
                                    );
                                }
                            }
                        }
                    }
                })
                .map_err(|source| RunError::Io {
                    what: "starting a join thread",
                    source,
                })?,
        );
    }
    let keepalive = target.keepalive_interval().map(|every| {
        let (target, sessions, stop) = (
            Arc::clone(&target),
            Arc::clone(&sessions),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() < every {
                    continue;
                }
                last = Instant::now();
                let list: Vec<Arc<SessionHandle>> =
                    sessions.lock().map(|s| s.clone()).unwrap_or_default();
                for s in list {
                    let _ = target.keepalive(&s);
                }
            }
        })
    });

    // Live display until the duration is over.
    let pubs = args.publishers as u64;
    let subs = (args.publishers * args.subscribers_per_publisher()) as u64;
    let live = !args.quiet;
    let tty = std::io::stderr().is_terminal();
    let end = start + Duration::from_secs_f64(args.duration);
    let mut prev = LiveSample::default();
    let mut last_print = Instant::now();
    let mut interval = Histogram::latency_ns();
    let warmup_end = start + Duration::from_secs_f64(args.warmup);
    let scrape_timeout = Duration::from_secs(2);
    let mut window: Option<(Instant, CpuTimes, Option<ProcSample>, Option<Scrape>)> = None;
    if args.warmup == 0.0 {
        window = Some((
            start,
            cpu0,
            args.server_pid.and_then(|p| ProcSample::of_pid(p).ok()),
            server_metrics::scrape(&args.target, scrape_timeout),
        ));
    }
    while Instant::now() < end && !INTERRUPTED.load(Ordering::Relaxed) {
        if window.is_none() && Instant::now() >= warmup_end {
            for w in &workers {
                w.start_window();
            }
            window = Some((
                Instant::now(),
                CpuTimes::process(),
                args.server_pid.and_then(|p| ProcSample::of_pid(p).ok()),
                server_metrics::scrape(&args.target, scrape_timeout),
            ));
        }
        let next_stop = if window.is_none() {
            warmup_end.min(end)
        } else {
            end
        };
        std::thread::sleep(
            next_stop
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500)),
        );
        let mut sample = LiveSample {
            elapsed: start.elapsed(),
            cpu_s: CpuTimes::process().since(&cpu0).total().as_secs_f64(),
            ..LiveSample::default()
        };
        for w in &workers {
            if let Some(s) = w.take_snapshot() {
                sample.counters.add(&s.counters);
                sample.quality.add(&s.quality);
                interval.merge(&s.latency);
            }
        }
        if let Ok(f) = failures.lock() {
            sample.counters.publisher_joins_failed += f.publishers;
            sample.counters.subscriber_joins_failed += f.subscribers;
        }
        if !live || last_print.elapsed() < Duration::from_secs(if tty { 1 } else { 5 }) {
            continue;
        }
        sample.p50_us = interval.quantile(0.5) as f64 / 1e3;
        sample.p99_us = interval.quantile(0.99) as f64 / 1e3;
        interval.reset();
        let line = status_line(&prev, &sample, pubs, subs, args.threads);
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        prev = sample;
        last_print = Instant::now();
    }
    if live && tty {
        eprintln!();
    }

    // Stop: joins, then media; measure before leaving.
    stop.store(true, Ordering::Relaxed);
    for j in joiners {
        let _ = j.join();
    }
    if let Some(k) = keepalive {
        let _ = k.join();
    }
    let (window_start, window_cpu0, server_before, metrics_before) =
        window.unwrap_or((start, cpu0, None, None));
    let server_after = args.server_pid.and_then(|p| ProcSample::of_pid(p).ok());
    let metrics_after = server_metrics::scrape(&args.target, scrape_timeout);
    // The server's estimate toward each class's viewers, while their sessions live.
    let mut estimates: Vec<Vec<ViewerEstimate>> = Vec::new();
    if let Some(plan) = &classes {
        estimates = vec![Vec::new(); plan.classes.len()];
        let list = class_viewers.lock().map(|v| v.clone()).unwrap_or_default();
        for (c, resource) in list {
            if let Some(e) = server_viewer::fetch(&resource, args.token.as_deref(), scrape_timeout)
                && let Some(v) = estimates.get_mut(c)
            {
                v.push(e);
            }
        }
    }
    let metrics_secs = window_start.elapsed().as_secs_f64();
    let results: Vec<WorkerResult> = workers.into_iter().filter_map(WorkerHandle::stop).collect();
    let media_s = window_start.elapsed().as_secs_f64();
    let cpu_s = CpuTimes::process()
        .since(&window_cpu0)
        .total()
        .as_secs_f64();
    let server = match (args.server_pid, server_before, server_after) {
        (Some(pid), Some(before), Some(after)) => {
            let busiest = after.busiest_since(&before).unwrap_or_default();
            Some(ServerCpu {
                pid,
                cpu_s: after.total.since(&before.total).total().as_secs_f64(),
                cpu_ratio: after.total.since(&before.total).total().as_secs_f64()
                    / media_s.max(1e-9),
                busiest_thread: busiest.0,
                busiest_thread_ratio: busiest.1.total().as_secs_f64() / media_s.max(1e-9),
            })
        }
        _ => None,
    };

    // Leave every session, in parallel.
    let list: Vec<Arc<SessionHandle>> = sessions
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    let leave_failures = leave_all(&target, list, args.join_threads);

    let mut counters = Counters::default();
    let mut quality = ReceiveQuality::default();
    let mut video = ReceiveQuality::default();
    let mut audio = ReceiveQuality::default();
    let mut latency = Histogram::latency_ns();
    let mut jp = Histogram::join_us();
    let mut js = Histogram::join_us();
    let mut worker_cpu_ratios = Vec::new();
    let mut worker_busy_ratios = Vec::new();
    let (mut no_video, mut no_audio) = (0, 0);
    let viewers: Vec<_> = results
        .iter()
        .flat_map(|r| r.viewers.iter().copied())
        .collect();
    let experience = ClassReport::build("all", None, &viewers);
    let class_reports: Vec<ClassReport> = match &classes {
        Some(plan) => plan
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mine: Vec<_> = viewers
                    .iter()
                    .copied()
                    .filter(|v| v.class == Some(i))
                    .collect();
                let mut r = ClassReport::build(&c.name, c.rate_bps, &mine);
                if let Some(e) = estimates.get(i) {
                    r.set_server_estimates(e);
                }
                r
            })
            .collect(),
        None => Vec::new(),
    };
    for r in &results {
        no_video += r.subscribers_without_video;
        no_audio += r.subscribers_without_audio;
        counters.add(&r.counters);
        quality.add(&r.quality);
        video.add(&r.video);
        audio.add(&r.audio);
        latency.merge(&r.latency);
        jp.merge(&r.join_publishers);
        js.merge(&r.join_subscribers);
        worker_cpu_ratios.push(r.cpu.total().as_secs_f64() / r.wall.as_secs_f64().max(1e-9));
        worker_busy_ratios.push(r.busy);
    }
    let (errors, fp, fs) = match failures.lock() {
        Ok(f) => (f.errors.clone(), f.publishers, f.subscribers),
        Err(_) => (Vec::new(), 0, 0),
    };
    counters.publisher_joins_failed += fp;
    counters.subscriber_joins_failed += fs;
    // Clients never handed to a worker (the run ended during the ramp) are neither.
    let info = RunInfo {
        target: target.describe(),
        threads: args.threads,
        publishers_requested: pubs,
        subscribers_requested: subs,
        media_s,
        cpu_s,
        worker_cpu_ratios,
        worker_busy_ratios,
        errors,
        leave_failures,
        warmup_s: args.warmup,
        server,
        server_traffic: match (metrics_before, metrics_after) {
            (Some(a), Some(b)) => Some(ServerTraffic::between(&a, &b, metrics_secs)),
            _ => None,
        },
    };
    let measured = Measured {
        counters: &counters,
        quality: &quality,
        video: &video,
        audio: &audio,
        latency_ns: &latency,
        join_publishers_us: &jp,
        join_subscribers_us: &js,
        subscribers_without_video: no_video,
        subscribers_without_audio: no_audio,
        experience: &experience,
        classes: &class_reports,
    };
    let report = Report::build(args.clone(), &info, &measured);
    if report.loadgen_saturated {
        eprintln!(
            "loadgen: warning: the load generator used {:.2} cores over {} worker thread(s) (per worker: cpu {:?}, loop busy {:?}); it may be the bottleneck: add --threads or cores, or spread the load",
            report.loadgen_cpu_ratio,
            args.threads,
            report.worker_cpu_ratios,
            report.worker_busy_ratios
        );
    }
    let ok = report.joins_failed == 0
        && report.joins_ok > 0
        && (subs == 0 || report.packets_received > 0);
    Ok(RunOutcome { report, ok })
}

fn leave_all(target: &Arc<dyn Target>, list: Vec<Arc<SessionHandle>>, threads: usize) -> u64 {
    let list = Arc::new(Mutex::new(list));
    let failures = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (list, failures, target) =
                (Arc::clone(&list), Arc::clone(&failures), Arc::clone(target));
            std::thread::spawn(move || {
                loop {
                    let Some(s) = list.lock().ok().and_then(|mut l| l.pop()) else {
                        break;
                    };
                    let ok = match Arc::try_unwrap(s) {
                        Ok(s) => target.leave(s).is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    failures.load(Ordering::Relaxed) as u64
}
