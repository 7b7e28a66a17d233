//! One worker thread drives many clients: epoll over their sockets, recvmmsg per ready socket,
//! each datagram through the client's transport ([`ClientSession`]: STUN, DTLS, SRTP) to its
//! publisher or subscriber, their packets protected in place and sent with sendmmsg, timers in a
//! heap. New clients arrive on a channel from the join threads. Counters and an interval latency
//! histogram are published for the live display a few times a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use sfu::client::{ClientConfig, ClientError, ClientEvent, ClientRoles, ClientSession};
use sfu::io::Waker;

use super::epoll::Epoll;
use super::timers::TimerHeap;
use super::udp::{Flushed, RxBatch, TxBatch, UdpSock};
use crate::client::{
    Outgoing, Publisher, PublisherConfig, RtpOutcome, Subscriber, SubscriberConfig,
};
use crate::media::Clock;
use crate::stats::counters::ReceiveQuality;
use crate::stats::{Counters, CpuTimes, Histogram};
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
    pub counters: Counters,
    pub quality: ReceiveQuality,
    pub video: ReceiveQuality,
    pub audio: ReceiveQuality,
    /// Every latency of the run, ns (merged from the interval histogram at each snapshot).
    pub latency: Histogram,
    /// Join times, µs.
    pub join_publishers: Histogram,
    pub join_subscribers: Histogram,
    /// CPU time of the worker thread and how long it ran.
    pub cpu: CpuTimes,
    pub wall: Duration,
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
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
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

    /// Stops the worker and waits for its result.
    pub fn stop(self) -> Option<WorkerResult> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.waker.wake();
        self.thread.join().ok()
    }
}

enum Media {
    Publisher {
        cfg: PublisherConfig,
        state: Option<Publisher>,
    },
    Subscriber {
        cfg: SubscriberConfig,
        state: Option<Subscriber>,
    },
}

struct Conn {
    role: Role,
    sock: UdpSock,
    session: ClientSession,
    media: Media,
    post_at: Instant,
    join_deadline: Instant,
    joined: bool,
    connected: bool,
    scheduled: Option<Instant>,
}

/// The per-thread loop.
pub struct Worker {
    cfg: WorkerConfig,
    rx_new: Receiver<NewClient>,
    waker: Waker,
    shared: Arc<Shared>,
    epoll: Epoll,
    conns: Vec<Option<Conn>>,
    timers: TimerHeap,
    rx: RxBatch,
    tx: TxBatch,
    counters: Counters,
    latency: Histogram,
    interval_latency: Histogram,
    join_publishers: Histogram,
    join_subscribers: Histogram,
    wall: SystemTime,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("clients", &self.conns.len())
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
        let epoll = Epoll::new(512)?;
        epoll.add(waker.as_raw_fd(), WAKER_TOKEN)?;
        Ok(Worker {
            cfg,
            rx_new,
            waker,
            shared,
            epoll,
            conns: Vec::with_capacity(cfg.expected_clients),
            timers: TimerHeap::with_capacity(cfg.expected_clients * 4 + 64),
            rx: RxBatch::new(cfg.rx_batch),
            tx: TxBatch::new(cfg.tx_batch),
            counters: Counters::default(),
            latency: Histogram::latency_ns(),
            interval_latency: Histogram::latency_ns(),
            join_publishers: Histogram::join_us(),
            join_subscribers: Histogram::join_us(),
            wall: SystemTime::now(),
        })
    }

    fn run(mut self) -> WorkerResult {
        let cpu0 = CpuTimes::thread();
        let started = Instant::now();
        let mut next_snapshot = started + SNAPSHOT_INTERVAL;
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.accept_new();
            let now = Instant::now();
            while let Some((at, idx)) = self.timers.pop_due(now) {
                let idx = idx as usize;
                match self.conns.get_mut(idx).and_then(Option::as_mut) {
                    Some(c) if c.scheduled == Some(at) => c.scheduled = None,
                    _ => continue,
                }
                self.service(idx, now);
            }
            if now >= next_snapshot {
                self.publish();
                next_snapshot = now + SNAPSHOT_INTERVAL;
            }
            let now = Instant::now();
            let wake = self
                .timers
                .peek()
                .unwrap_or(now + MAX_SLEEP)
                .min(next_snapshot)
                .min(now + MAX_SLEEP);
            let n = match self.epoll.wait(Some(wake.saturating_duration_since(now))) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("loadgen: epoll_wait failed: {e}");
                    break;
                }
            };
            for i in 0..n {
                let token = self.epoll.token(i);
                if token == WAKER_TOKEN {
                    self.waker.drain();
                    continue;
                }
                self.on_readable(token as usize);
            }
        }
        self.publish();
        let mut video = ReceiveQuality::default();
        let mut audio = ReceiveQuality::default();
        for c in self.conns.iter().flatten() {
            if let Media::Subscriber { state: Some(s), .. } = &c.media {
                let (v, a) = s.continuity();
                if let Some(v) = v {
                    video.add_stream(&v);
                }
                if let Some(a) = a {
                    audio.add_stream(&a);
                }
            }
        }
        let mut quality = video;
        quality.add(&audio);
        WorkerResult {
            counters: self.counters,
            quality,
            video,
            audio,
            latency: self.latency,
            join_publishers: self.join_publishers,
            join_subscribers: self.join_subscribers,
            cpu: CpuTimes::thread().since(&cpu0),
            wall: started.elapsed(),
        }
    }

    fn accept_new(&mut self) {
        while let Ok(c) = self.rx_new.try_recv() {
            let now = Instant::now();
            let idx = self.conns.len();
            if let Err(e) = self.epoll.add(c.sock.fd(), idx as u64) {
                eprintln!("loadgen: cannot watch client socket: {e}");
                self.count_failed_join(c.role());
                continue;
            }
            let role = c.role();
            let session = match ClientSession::with_roles(c.transport, c.roles, now) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("loadgen: cannot start the client session: {e}");
                    self.count_failed_join(role);
                    continue;
                }
            };
            let media = match c.media {
                ClientMedia::Publisher(cfg) => Media::Publisher { cfg, state: None },
                ClientMedia::Subscriber(cfg) => Media::Subscriber { cfg, state: None },
            };
            self.conns.push(Some(Conn {
                role,
                session,
                sock: c.sock,
                media,
                post_at: c.post_at,
                join_deadline: c.post_at + self.cfg.join_timeout,
                joined: false,
                connected: false,
                scheduled: None,
            }));
            self.service(idx, now);
        }
    }

    fn count_failed_join(&mut self, role: Role) {
        match role {
            Role::Publisher => self.counters.publisher_joins_failed += 1,
            Role::Subscriber => self.counters.subscriber_joins_failed += 1,
        }
    }

    /// Drops a client: a failed join if it never joined, a failed session otherwise.
    fn fail(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::take) else {
            return;
        };
        self.epoll.remove(c.sock.fd());
        if c.joined {
            self.counters.sessions_failed += 1;
        } else {
            self.count_failed_join(c.role);
        }
        if c.connected {
            match c.role {
                Role::Publisher => self.counters.publishers_connected -= 1,
                Role::Subscriber => self.counters.subscribers_connected -= 1,
            }
        }
        if let (Media::Subscriber { state: Some(_), .. }, true) = (&c.media, c.joined) {
            self.counters.subscribers_receiving -= 1;
        }
    }

    fn on_readable(&mut self, idx: usize) {
        for _ in 0..RX_CALLS_PER_SOCKET {
            let Some(fd) = self
                .conns
                .get(idx)
                .and_then(Option::as_ref)
                .map(|c| c.sock.fd())
            else {
                return;
            };
            let n = match self.rx.recv(fd) {
                Ok(n) => n,
                Err(_) => {
                    // ECONNREFUSED from an ICMP error and the like: nothing to read.
                    0
                }
            };
            if n == 0 {
                break;
            }
            let now = Instant::now();
            for i in 0..n {
                if self.handle_datagram(idx, i, now).is_err() {
                    self.fail(idx);
                    return;
                }
            }
            if n < self.cfg.rx_batch {
                break;
            }
        }
        self.service(idx, Instant::now());
    }

    fn handle_datagram(&mut self, idx: usize, i: usize, now: Instant) -> Result<(), ()> {
        let Worker {
            conns,
            rx,
            counters,
            interval_latency,
            join_publishers,
            join_subscribers,
            cfg,
            wall,
            ..
        } = self;
        let Some(c) = conns.get_mut(idx).and_then(Option::as_mut) else {
            return Ok(());
        };
        let truncated = rx.truncated(i);
        let buf = rx.get_mut(i);
        counters.datagrams_received += 1;
        counters.bytes_received += buf.len() as u64;
        if truncated {
            counters.undecodable += 1;
            return Ok(());
        }
        match c.session.handle_datagram(now, buf) {
            Ok(Some(ClientEvent::Connected)) => {
                c.connected = true;
                let join_us = now.saturating_duration_since(c.post_at).as_micros() as u64;
                match &mut c.media {
                    Media::Publisher { cfg: pcfg, state } => {
                        counters.publishers_connected += 1;
                        counters.publisher_joins_ok += 1;
                        c.joined = true;
                        join_publishers.record(join_us);
                        *state = Some(Publisher::new(pcfg.clone(), cfg.clock, now, *wall));
                    }
                    Media::Subscriber { cfg: scfg, state } => {
                        counters.subscribers_connected += 1;
                        *state = Some(Subscriber::new(scfg.clone(), cfg.clock, now));
                    }
                }
            }
            Ok(Some(ClientEvent::Rtp { len })) => match &mut c.media {
                Media::Subscriber { state: Some(s), .. } => {
                    let outcome = s.handle_rtp(now, &mut buf[..len], counters, interval_latency);
                    if outcome == RtpOutcome::FirstMedia {
                        c.joined = true;
                        counters.subscriber_joins_ok += 1;
                        counters.subscribers_receiving += 1;
                        join_subscribers
                            .record(now.saturating_duration_since(c.post_at).as_micros() as u64);
                    }
                }
                _ => counters.unknown_stream += 1,
            },
            Ok(Some(ClientEvent::Rtcp { len })) => match &mut c.media {
                Media::Publisher { state: Some(p), .. } => p.handle_rtcp(&buf[..len], counters),
                Media::Subscriber { state: Some(s), .. } => {
                    s.handle_rtcp(now, &buf[..len], counters)
                }
                _ => {}
            },
            Ok(None) | Err(ClientError::NotConnected) => {}
            Err(ClientError::Srtp(_)) => counters.undecodable += 1,
            Err(ClientError::Dtls(_)) => return Err(()),
        }
        Ok(())
    }

    /// Runs a client's timers, sends what it has, and schedules its next turn.
    fn service(&mut self, idx: usize, now: Instant) {
        let mut failed = false;
        {
            let Worker {
                conns,
                tx,
                counters,
                timers,
                ..
            } = self;
            let Some(c) = conns.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            if c.session.poll_timeout() <= now && c.session.handle_timeout(now).is_err() {
                failed = true;
            }
            if c.session.has_failed() {
                failed = true;
            }
            if !c.joined && now >= c.join_deadline {
                failed = true;
            }
            if !failed {
                let fd = c.sock.fd();
                while let Some(d) = c.session.poll_transmit() {
                    if tx.is_full() {
                        add_flushed(counters, tx.flush(fd));
                    }
                    if let Some(slot) = tx.slot() {
                        let n = d.len().min(slot.len());
                        slot[..n].copy_from_slice(&d[..n]);
                        tx.commit(n);
                    }
                }
                if c.connected {
                    loop {
                        if tx.is_full() {
                            add_flushed(counters, tx.flush(fd));
                        }
                        let Some(slot) = tx.slot() else { break };
                        let out = match &mut c.media {
                            Media::Publisher { state: Some(p), .. } => {
                                p.poll_transmit(now, slot, counters)
                            }
                            Media::Subscriber { state: Some(s), .. } => {
                                s.poll_transmit(now, slot, counters)
                            }
                            _ => None,
                        };
                        let protected = match out {
                            None => break,
                            Some(Outgoing::Rtp(n)) => c.session.protect_rtp(slot, n),
                            Some(Outgoing::Rtcp(n)) => c.session.protect_rtcp(slot, n),
                        };
                        match protected {
                            Ok(n) => tx.commit(n),
                            Err(_) => counters.send_errors += 1,
                        }
                    }
                }
                if !tx.is_empty() {
                    add_flushed(counters, tx.flush(fd));
                }
                let mut next = c.session.poll_timeout();
                match &c.media {
                    Media::Publisher { state: Some(p), .. } => next = next.min(p.poll_timeout()),
                    Media::Subscriber { state: Some(s), .. } => next = next.min(s.poll_timeout()),
                    _ => {}
                }
                if !c.joined {
                    next = next.min(c.join_deadline);
                }
                // Never spin: something due now runs on the next turn.
                let next = next.max(now + Duration::from_micros(50));
                if c.scheduled.is_none_or(|s| next < s) {
                    c.scheduled = Some(next);
                    timers.push(next, idx as u32);
                }
            }
        }
        if failed {
            self.fail(idx);
        }
    }

    fn publish(&mut self) {
        let mut quality = ReceiveQuality::default();
        for c in self.conns.iter().flatten() {
            if let Media::Subscriber { state: Some(s), .. } = &c.media {
                let (v, a) = s.continuity();
                for st in [v, a].into_iter().flatten() {
                    quality.add_stream(&st);
                }
            }
        }
        self.latency.merge(&self.interval_latency);
        if let Ok(mut snap) = self.shared.snapshot.lock() {
            snap.counters = self.counters;
            snap.quality = quality;
            snap.latency.merge(&self.interval_latency);
        }
        self.interval_latency.reset();
    }
}

fn add_flushed(c: &mut Counters, f: Flushed) {
    c.datagrams_sent += f.datagrams;
    c.bytes_sent += f.bytes;
    c.send_errors += f.errors;
}

impl WorkerResult {
    fn empty() -> Self {
        WorkerResult {
            counters: Counters::default(),
            quality: ReceiveQuality::default(),
            video: ReceiveQuality::default(),
            audio: ReceiveQuality::default(),
            latency: Histogram::latency_ns(),
            join_publishers: Histogram::join_us(),
            join_subscribers: Histogram::join_us(),
            cpu: CpuTimes::default(),
            wall: Duration::ZERO,
        }
    }
}
