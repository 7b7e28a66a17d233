//! One worker thread drives many clients: datagrams from all their sockets (io_uring multishot
//! receives into a shared buffer ring, or epoll and recvmmsg) go to each client (see
//! [`Clients`]), whose packets are sent with sendmmsg; timers sit in a heap. New clients arrive
//! on a channel from the join threads. Counters and an interval latency histogram are published
//! for the live display a few times a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sfu::client::{ClientConfig, ClientRoles};
use sfu::io::Waker;

use super::clients::Clients;
use super::epoll::Epoll;
use super::rx_time::{self, ClockAnchor};
use super::timers::TimerHeap;
use super::udp::{RxBatch, TxBatch, UdpSock};
use super::uring::{Completion, UringRx};
use crate::client::{PublisherConfig, SubscriberConfig};
use crate::media::Clock;
use crate::relay::DownlinkConfig;
use crate::stats::counters::ReceiveQuality;
use crate::stats::{Counters, CpuTimes, Histogram, SchedTimes, ViewerSample};
use crate::target::Role;

const WAKER_TOKEN: u64 = u64::MAX;
/// recvmmsg calls per ready socket per loop turn, so one busy socket cannot starve the others.
const RX_CALLS_PER_SOCKET: usize = 4;
/// How often the shared snapshot is refreshed.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(250);
/// Longest sleep, so the stop flag is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// The media role and its configuration, started when the transport connects.
#[derive(Debug, Clone)]
pub enum ClientMedia {
    Publisher(PublisherConfig),
    Subscriber(SubscriberConfig),
}

/// A client whose signaling is done, handed to a worker.
#[derive(Debug)]
pub struct NewClient {
    /// Index of the client in the run.
    pub index: usize,
    /// Its socket, connected to the server's candidate.
    pub sock: UdpSock,
    /// ICE, DTLS and the server's address.
    pub transport: ClientConfig,
    /// ICE and DTLS roles from the negotiation (who offered, `a=setup`, ICE lite or full).
    pub roles: ClientRoles,
    pub media: ClientMedia,
    /// When its signaling request was sent (join time starts there).
    pub post_at: Instant,
    /// Its capacity class (`--subscriber-classes`), if any.
    pub class: Option<usize>,
    /// Its class's downlink rate limit (`None`: unlimited).
    pub downlink: Option<DownlinkConfig>,
}

impl NewClient {
    /// The client's role.
    pub fn role(&self) -> Role {
        match self.media {
            ClientMedia::Publisher(_) => Role::Publisher,
            ClientMedia::Subscriber(_) => Role::Subscriber,
        }
    }
}

/// What a worker publishes for the live display.
#[derive(Debug, Clone)]
pub struct WorkerSnapshot {
    pub counters: Counters,
    pub quality: ReceiveQuality,
    /// Latencies (ns) since the display last took them.
    pub latency: Histogram,
}

/// What a worker returns when it stops.
#[derive(Debug)]
pub struct WorkerResult {
    /// Every subscriber still connected, over the measurement window.
    pub viewers: Vec<ViewerSample>,
    pub counters: Counters,
    pub quality: ReceiveQuality,
    pub video: ReceiveQuality,
    pub audio: ReceiveQuality,
    /// Subscribers (among those that connected) that received no video, or no audio, at all.
    pub subscribers_without_video: u64,
    pub subscribers_without_audio: u64,
    /// Every latency of the run, ns (merged from the interval histogram at each snapshot).
    pub latency: Histogram,
    /// Join times, µs.
    pub join_publishers: Histogram,
    pub join_subscribers: Histogram,
    /// CPU time of the worker thread and how long it ran.
    pub cpu: CpuTimes,
    pub wall: Duration,
    /// Share of the window the thread was running or waiting for a CPU (schedstat); near 1.0
    /// the worker could not keep up.
    pub busy: f64,
}

/// Worker settings.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    pub clock: Clock,
    /// A client that has not joined (publisher: connected; subscriber: first media) this long
    /// after its signaling request counts as a failed join.
    pub join_timeout: Duration,
    pub rx_batch: usize,
    pub tx_batch: usize,
    /// Clients this worker will get (sizes the timer heap).
    pub expected_clients: usize,
    pub rx_mode: RxMode,
    /// io_uring receive buffers (a power of two).
    pub uring_buffers: u16,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    /// Set by the run to start the measurement window (end of warm-up).
    window: AtomicBool,
    snapshot: Mutex<WorkerSnapshot>,
}

/// The join threads' and the display's handle on a running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    tx: Sender<NewClient>,
    waker: Waker,
    shared: Arc<Shared>,
    thread: JoinHandle<WorkerResult>,
}

impl WorkerHandle {
    /// Hands a client to the worker.
    pub fn add(&self, c: NewClient) -> bool {
        let ok = self.tx.send(c).is_ok();
        self.waker.wake();
        ok
    }

    /// A sender other threads can use (with [`WorkerHandle::waker`]).
    pub fn sender(&self) -> Sender<NewClient> {
        self.tx.clone()
    }

    /// The worker's waker.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Takes the latest snapshot; its latency histogram is emptied for the next interval.
    pub fn take_snapshot(&self) -> Option<WorkerSnapshot> {
        let mut s = self.shared.snapshot.lock().ok()?;
        let copy = s.clone();
        s.latency.reset();
        Some(copy)
    }

    /// Starts the measurement window: traffic counters, latency, continuity and the thread's
    /// CPU time count from the worker's next loop turn.
    pub fn start_window(&self) {
        self.shared.window.store(true, Ordering::Relaxed);
        self.waker.wake();
    }

    /// Stops the worker and waits for its result.
    pub fn stop(self) -> Option<WorkerResult> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.waker.wake();
        self.thread.join().ok()
    }
}

/// How a worker learns that sockets have datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RxMode {
    /// A multishot receive per socket into a shared buffer ring; one system call per loop turn.
    #[default]
    Uring,
    /// epoll over the sockets and a recvmmsg per ready socket.
    Epoll,
}

enum Rx {
    Uring(Box<UringRx>),
    Epoll { epoll: Epoll, batch: RxBatch },
}

/// The per-thread loop.
pub struct Worker {
    rx_new: Receiver<NewClient>,
    waker: Waker,
    shared: Arc<Shared>,
    rx: Rx,
    clients: Clients,
    timers: TimerHeap,
    /// Release timers of the clients' rate-limited downlinks (one entry per busy downlink).
    releases: TimerHeap,
    tx: TxBatch,
    /// Clients that received datagrams this turn and must be serviced.
    dirty: Vec<u32>,
    /// Counters at the start of the measurement window.
    base: Counters,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("clients", &self.clients)
            .finish()
    }
}

impl Worker {
    /// Starts a worker thread named `name`.
    pub fn spawn(name: String, cfg: WorkerConfig) -> std::io::Result<WorkerHandle> {
        let (tx, rx_new) = mpsc::channel();
        let waker = Waker::new()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            window: AtomicBool::new(false),
            snapshot: Mutex::new(WorkerSnapshot {
                counters: Counters::default(),
                quality: ReceiveQuality::default(),
                latency: Histogram::latency_ns(),
            }),
        });
        let (w2, s2) = (waker.clone(), Arc::clone(&shared));
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            match Worker::new(cfg, rx_new, w2, s2) {
                Ok(w) => w.run(),
                Err(e) => {
                    eprintln!("loadgen: worker setup failed: {e}");
                    WorkerResult::empty()
                }
            }
        })?;
        Ok(WorkerHandle {
            tx,
            waker,
            shared,
            thread,
        })
    }

    fn new(
        cfg: WorkerConfig,
        rx_new: Receiver<NewClient>,
        waker: Waker,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let rx = match cfg.rx_mode {
            RxMode::Uring => match UringRx::new(cfg.uring_buffers, waker.as_raw_fd()) {
                Ok(u) => Some(Rx::Uring(Box::new(u))),
                Err(e) => {
                    eprintln!("loadgen: io_uring unavailable ({e}); using epoll and recvmmsg");
                    None
                }
            },
            RxMode::Epoll => None,
        };
        let rx = match rx {
            Some(rx) => rx,
            None => {
                let epoll = Epoll::new(512)?;
                epoll.add(waker.as_raw_fd(), WAKER_TOKEN)?;
                Rx::Epoll {
                    epoll,
                    batch: RxBatch::new(cfg.rx_batch),
                }
            }
        };
        Ok(Worker {
            rx_new,
            waker,
            shared,
            rx,
            clients: Clients::new(cfg.clock, cfg.join_timeout, cfg.expected_clients),
            timers: TimerHeap::with_capacity(cfg.expected_clients * 4 + 64),
            releases: TimerHeap::with_capacity(cfg.expected_clients + 64),
            tx: TxBatch::new(cfg.tx_batch),
            dirty: Vec::with_capacity(cfg.expected_clients + 16),
            base: Counters::default(),
        })
    }

    fn run(mut self) -> WorkerResult {
        let mut cpu0 = CpuTimes::thread();
        let mut sched0 = SchedTimes::thread();
        let mut started = Instant::now();
        let mut next_snapshot = started + SNAPSHOT_INTERVAL;
        while !self.shared.stop.load(Ordering::Relaxed) {
            if self.shared.window.swap(false, Ordering::Relaxed) {
                self.publish();
                self.base = self.clients.counters;
                self.clients.start_window(Instant::now());
                sched0 = SchedTimes::thread();
                cpu0 = CpuTimes::thread();
                started = Instant::now();
            }
            self.accept_new();
            let now = Instant::now();
            while let Some((at, idx)) = self.timers.pop_due(now) {
                if self.clients.take_timer(idx as usize, at) {
                    self.service(idx as usize, now);
                }
            }
            self.release_due(now);
            if now >= next_snapshot {
                self.publish();
                next_snapshot = now + SNAPSHOT_INTERVAL;
            }
            let now = Instant::now();
            let wake = self
                .timers
                .peek()
                .unwrap_or(now + MAX_SLEEP)
                .min(self.releases.peek().unwrap_or(now + MAX_SLEEP))
                .min(next_snapshot)
                .min(now + MAX_SLEEP);
            if let Err(e) = self.wait_and_receive(wake.saturating_duration_since(now)) {
                eprintln!("loadgen: waiting for datagrams failed: {e}");
                break;
            }
            let now = Instant::now();
            self.release_due(now);
            while let Some(idx) = self.dirty.pop() {
                self.service(idx as usize, now);
            }
        }
        self.publish();
        let viewers = self.clients.viewer_samples(Instant::now());
        let (video, audio, no_video, no_audio) = self.clients.quality_by_kind();
        let mut quality = video;
        quality.add(&audio);
        let wall = started.elapsed();
        WorkerResult {
            viewers,
            counters: self.clients.counters.since(&self.base),
            quality,
            video,
            audio,
            subscribers_without_video: no_video,
            subscribers_without_audio: no_audio,
            latency: std::mem::replace(&mut self.clients.latency, Histogram::new(2)),
            join_publishers: std::mem::replace(
                &mut self.clients.join_publishers,
                Histogram::new(2),
            ),
            join_subscribers: std::mem::replace(
                &mut self.clients.join_subscribers,
                Histogram::new(2),
            ),
            cpu: CpuTimes::thread().since(&cpu0),
            wall,
            busy: SchedTimes::thread().demand_since(&sched0).as_secs_f64()
                / wall.as_secs_f64().max(1e-9),
        }
    }

    /// Sleeps until datagrams arrive (or `timeout`), hands each to its client and marks the
    /// client for servicing.
    fn wait_and_receive(&mut self, timeout: Duration) -> std::io::Result<()> {
        let Worker {
            rx,
            clients,
            dirty,
            waker,
            releases,
            ..
        } = self;
        let mut failed: Vec<usize> = Vec::new();
        match rx {
            Rx::Uring(u) => {
                u.wait(timeout)?;
                let anchor = ClockAnchor::now();
                let now = anchor.mono();
                u.drain(|c| match c {
                    Completion::Wake => waker.drain(),
                    Completion::Datagram {
                        token,
                        data,
                        timestamp,
                    } => {
                        let idx = token as usize;
                        let arrival = timestamp.map(|t| anchor.instant_of(t));
                        match clients.ingress(idx, data, now, arrival) {
                            Err(_) => failed.push(idx),
                            Ok(i) => {
                                if let Some(at) = i.arm {
                                    releases.push(at, idx as u32);
                                }
                                if i.service {
                                    mark_dirty(clients, dirty, idx);
                                }
                            }
                        }
                    }
                });
                while let Some(token) = u.pop_ended() {
                    if let Some(fd) = clients.get(token as usize).map(|c| c.sock().fd()) {
                        u.watch(fd, token)?;
                    }
                }
            }
            Rx::Epoll { epoll, batch } => {
                let n = epoll.wait(Some(timeout))?;
                for i in 0..n {
                    let token = epoll.token(i);
                    if token == WAKER_TOKEN {
                        waker.drain();
                        continue;
                    }
                    let idx = token as usize;
                    let mut service = false;
                    for _ in 0..RX_CALLS_PER_SOCKET {
                        let Some(fd) = clients.get(idx).map(|c| c.sock().fd()) else {
                            break;
                        };
                        // An error (ECONNREFUSED after an ICMP unreachable) means nothing to read.
                        let got = batch.recv(fd).unwrap_or_default();
                        let anchor = ClockAnchor::now();
                        let now = anchor.mono();
                        for k in 0..got {
                            if batch.truncated(k) {
                                clients.counters.undecodable += 1;
                                continue;
                            }
                            let arrival = batch.timestamp(k).map(|t| anchor.instant_of(t));
                            match clients.ingress(idx, batch.get_mut(k), now, arrival) {
                                Err(_) => {
                                    failed.push(idx);
                                    break;
                                }
                                Ok(i) => {
                                    if let Some(at) = i.arm {
                                        releases.push(at, idx as u32);
                                    }
                                    service |= i.service;
                                }
                            }
                        }
                        if got < batch.capacity() {
                            break;
                        }
                    }
                    if service {
                        mark_dirty(clients, dirty, idx);
                    }
                }
            }
        }
        for idx in failed {
            self.fail(idx);
        }
        Ok(())
    }

    fn accept_new(&mut self) {
        while let Ok(c) = self.rx_new.try_recv() {
            let now = Instant::now();
            let fd = c.sock.fd();
            let role = c.role();
            if c.class.is_some() {
                // A class's viewer (and its downlink) takes datagrams in when they reached the
                // socket: the worker's own delays stay out of what it measures.
                rx_time::enable(fd);
            }
            let idx = self.clients.conns.len();
            let watched = match &mut self.rx {
                Rx::Uring(u) => u.watch(fd, idx as u64),
                Rx::Epoll { epoll, .. } => epoll.add(fd, idx as u64),
            };
            if let Err(e) = watched {
                eprintln!("loadgen: cannot watch client socket: {e}");
                self.clients.count_failed_join(role);
                continue;
            }
            let idx = self.clients.add(c, now);
            self.service(idx, now);
        }
    }

    fn fail(&mut self, idx: usize) {
        if let Some(sock) = self.clients.remove(idx) {
            match &mut self.rx {
                Rx::Uring(u) => u.unwatch(idx as u64),
                Rx::Epoll { epoll, .. } => epoll.remove(sock.fd()),
            }
            drop(sock);
        }
    }

    /// Hands every downlink datagram due at `now` to its client; the clients that have
    /// something to send are serviced after this turn.
    fn release_due(&mut self, now: Instant) {
        while let Some((_, idx)) = self.releases.pop_due(now) {
            let idx = idx as usize;
            match self.clients.release(idx, now) {
                Err(_) => self.fail(idx),
                Ok(i) => {
                    if let Some(at) = i.arm {
                        self.releases.push(at, idx as u32);
                    }
                    if i.service {
                        mark_dirty(&mut self.clients, &mut self.dirty, idx);
                    }
                }
            }
        }
    }

    fn service(&mut self, idx: usize, now: Instant) {
        if self
            .clients
            .service(idx, now, &mut self.tx, &mut self.timers)
            .is_err()
        {
            self.fail(idx);
        }
    }

    fn publish(&mut self) {
        let quality = self.clients.quality();
        let c = &mut self.clients;
        c.latency.merge(&c.interval_latency);
        if let Ok(mut snap) = self.shared.snapshot.lock() {
            // The live display wants whole-run counters (it computes its own rates).
            snap.counters = c.counters;
            snap.quality = quality;
            snap.latency.merge(&c.interval_latency);
        }
        c.interval_latency.reset();
    }
}

/// Queues client `idx` for servicing after this turn (once).
fn mark_dirty(clients: &mut Clients, dirty: &mut Vec<u32>, idx: usize) {
    if let Some(c) = clients.get_mut(idx)
        && !c.dirty
    {
        c.dirty = true;
        dirty.push(idx as u32);
    }
}

impl WorkerResult {
    fn empty() -> Self {
        WorkerResult {
            viewers: Vec::new(),
            counters: Counters::default(),
            quality: ReceiveQuality::default(),
            video: ReceiveQuality::default(),
            audio: ReceiveQuality::default(),
            subscribers_without_video: 0,
            subscribers_without_audio: 0,
            latency: Histogram::latency_ns(),
            join_publishers: Histogram::join_us(),
            join_subscribers: Histogram::join_us(),
            cpu: CpuTimes::default(),
            wall: Duration::ZERO,
            busy: 0.0,
        }
    }
}
