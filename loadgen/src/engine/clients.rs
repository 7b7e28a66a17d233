//! The clients of one worker and what happens to each: a datagram through its transport
//! ([`ClientSession`]: STUN, DTLS, SRTP) to its publisher or subscriber; its timers; its packets
//! protected in place into the transmit batch and sent; joins and failures counted. A subscriber
//! of a rate-limited capacity class receives through its [`Downlink`]: datagrams wait there
//! until their release time. No I/O readiness here: the worker loop decides when each client
//! runs.

use std::time::{Duration, Instant, SystemTime};

use sfu::client::{ClientError, ClientEvent, ClientSession};

use super::timers::TimerHeap;
use super::udp::{Flushed, SLOT, TxBatch, UdpSock};
use super::worker::{ClientMedia, NewClient};
use crate::client::{
    Outgoing, Publisher, PublisherConfig, RtpOutcome, Subscriber, SubscriberConfig,
};
use crate::media::Clock;
use crate::relay::{Admit, Downlink, DownlinkStats};
use crate::stats::counters::ReceiveQuality;
use crate::stats::{Counters, Histogram, ViewerSample};
use crate::target::Role;

/// Why a client was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientFailure {
    #[error("DTLS failed: {0}")]
    Dtls(String),
    #[error("not joined within the join timeout")]
    JoinTimeout,
    #[error("the transport closed")]
    Closed,
}

enum Media {
    Publisher {
        cfg: PublisherConfig,
        state: Option<Box<Publisher>>,
    },
    Subscriber {
        cfg: SubscriberConfig,
        state: Option<Box<Subscriber>>,
    },
}

/// One client.
pub struct Conn {
    role: Role,
    sock: UdpSock,
    session: ClientSession,
    media: Media,
    post_at: Instant,
    join_deadline: Instant,
    joined: bool,
    connected: bool,
    scheduled: Option<Instant>,
    /// The transport may have datagrams to send (it handled a control datagram or a timer).
    control_pending: bool,
    /// Queued for servicing after this turn's datagrams.
    pub dirty: bool,
    /// Capacity class, and the rate-limited downlink datagrams go through.
    class: Option<usize>,
    downlink: Option<Box<Downlink>>,
    /// The downlink's counters at the window's start.
    downlink_base: DownlinkStats,
    /// When the transport connected.
    connected_at: Option<Instant>,
    /// UDP payload bytes that reached the client, and their count at the window's start.
    rx_bytes: u64,
    rx_base: u64,
}

/// What a datagram (or a release from a downlink) asks of the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingress {
    /// The client has something to send before its next timer: service it this turn.
    pub service: bool,
    /// The client's downlink needs a release timer at this instant.
    pub arm: Option<Instant>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("role", &self.role)
            .field("local", &self.sock.local_addr())
            .field("joined", &self.joined)
            .finish()
    }
}

impl Conn {
    /// The client's socket.
    pub fn sock(&self) -> &UdpSock {
        &self.sock
    }
}

/// Everything a worker knows about its clients, and what it measured.
pub struct Clients {
    pub conns: Vec<Option<Conn>>,
    pub counters: Counters,
    /// Latencies since the last snapshot (ns).
    pub interval_latency: Histogram,
    /// Latencies of the measurement window (ns).
    pub latency: Histogram,
    pub join_publishers: Histogram,
    pub join_subscribers: Histogram,
    clock: Clock,
    join_timeout: Duration,
    wall: SystemTime,
    /// Where a datagram released by a downlink is handled.
    scratch: Box<[u8]>,
    /// When the measurement window started.
    window_start: Option<Instant>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("conns", &self.conns.len())
            .finish()
    }
}

fn add_flushed(c: &mut Counters, f: Flushed) {
    c.datagrams_sent += f.datagrams;
    c.bytes_sent += f.bytes;
    c.send_errors += f.errors;
}

impl Clients {
    /// No clients yet.
    pub fn new(clock: Clock, join_timeout: Duration, capacity: usize) -> Self {
        Clients {
            conns: Vec::with_capacity(capacity),
            counters: Counters::default(),
            interval_latency: Histogram::latency_ns(),
            latency: Histogram::latency_ns(),
            join_publishers: Histogram::join_us(),
            join_subscribers: Histogram::join_us(),
            clock,
            join_timeout,
            wall: SystemTime::now(),
            scratch: vec![0u8; SLOT].into_boxed_slice(),
            window_start: None,
        }
    }

    /// Adds a client; returns its index.
    pub fn add(&mut self, c: NewClient, now: Instant) -> usize {
        let role = c.role();
        let session = match ClientSession::with_roles(c.transport, c.roles, now) {
            Ok(s) => s,
            Err(e) => {
                // A dead slot keeps indices aligned with the sockets already watched.
                eprintln!("loadgen: cannot start the client session: {e}");
                self.count_failed_join(role);
                self.conns.push(None);
                return self.conns.len() - 1;
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
            join_deadline: c.post_at + self.join_timeout,
            joined: false,
            connected: false,
            scheduled: None,
            control_pending: true,
            dirty: false,
            class: c.class,
            downlink: c
                .downlink
                .map(|cfg| Box::new(Downlink::new(cfg, self.clock.epoch()))),
            downlink_base: DownlinkStats::default(),
            connected_at: None,
            rx_bytes: 0,
            rx_base: 0,
        }));
        self.conns.len() - 1
    }

    /// Counts a join that failed before its client existed here.
    pub fn count_failed_join(&mut self, role: Role) {
        match role {
            Role::Publisher => self.counters.publisher_joins_failed += 1,
            Role::Subscriber => self.counters.subscriber_joins_failed += 1,
        }
    }

    /// The client at `idx`, if alive.
    pub fn get(&self, idx: usize) -> Option<&Conn> {
        self.conns.get(idx).and_then(Option::as_ref)
    }

    /// The client at `idx`, if alive.
    pub fn get_mut(&mut self, idx: usize) -> Option<&mut Conn> {
        self.conns.get_mut(idx).and_then(Option::as_mut)
    }

    /// Whether a timer entry `(at, idx)` is the client's current one (and takes it).
    pub fn take_timer(&mut self, idx: usize, at: Instant) -> bool {
        match self.get_mut(idx) {
            Some(c) if c.scheduled == Some(at) => {
                c.scheduled = None;
                true
            }
            _ => false,
        }
    }

    /// Drops a client: a failed join if it never joined, a failed session otherwise. Returns its
    /// socket so the caller can stop watching it before it closes.
    pub fn remove(&mut self, idx: usize) -> Option<UdpSock> {
        let c = self.conns.get_mut(idx).and_then(Option::take)?;
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
        if matches!(c.media, Media::Subscriber { .. }) && c.joined {
            self.counters.subscribers_receiving -= 1;
        }
        Some(c.sock)
    }

    /// A datagram from client `idx`'s socket, read at `now`, that reached the socket at
    /// `arrival` when the socket timestamps (clients of a capacity class): through the client's
    /// downlink when it has one (now, later or never), to
    /// [`handle_datagram`](Self::handle_datagram) otherwise, at its arrival time.
    pub fn ingress(
        &mut self,
        idx: usize,
        buf: &mut [u8],
        now: Instant,
        arrival: Option<Instant>,
    ) -> Result<Ingress, ClientFailure> {
        let at = arrival.unwrap_or(now).min(now);
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return Ok(Ingress::default());
        };
        let Some(d) = c.downlink.as_mut() else {
            let service = self.handle_datagram(idx, buf, at)?;
            return Ok(Ingress { service, arm: None });
        };
        self.counters.downlink_datagrams += 1;
        match d.admit(at, buf) {
            Admit::Now => {
                let service = self.handle_datagram(idx, buf, at)?;
                Ok(Ingress { service, arm: None })
            }
            Admit::Queued => {
                let mut arm = None;
                if d.armed.is_none() {
                    d.armed = d.next_release();
                    arm = d.armed;
                }
                Ok(Ingress {
                    service: false,
                    arm,
                })
            }
            Admit::Dropped => {
                self.counters.downlink_drops += 1;
                Ok(Ingress::default())
            }
        }
    }

    /// Client `idx`'s downlink release timer fired at `now`: every datagram due is handled at
    /// its release time (the moment it would have arrived).
    pub fn release(&mut self, idx: usize, now: Instant) -> Result<Ingress, ClientFailure> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut out = Ingress::default();
        let result = loop {
            let Some(d) = self
                .conns
                .get_mut(idx)
                .and_then(Option::as_mut)
                .and_then(|c| c.downlink.as_mut())
            else {
                break Ok(());
            };
            let Some((at, n)) = d.pop_due(now, &mut scratch) else {
                d.armed = d.next_release();
                out.arm = d.armed;
                break Ok(());
            };
            match self.handle_datagram(idx, &mut scratch[..n], at) {
                Ok(service) => out.service |= service,
                Err(e) => break Err(e),
            }
        };
        self.scratch = scratch;
        result.map(|()| out)
    }

    /// Handles one datagram for client `idx`. Returns whether the client must be serviced
    /// before its next timer (it has something to send now); `Err` when it failed (DTLS).
    pub fn handle_datagram(
        &mut self,
        idx: usize,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<bool, ClientFailure> {
        let Clients {
            conns,
            counters,
            interval_latency,
            join_publishers,
            join_subscribers,
            clock,
            wall,
            ..
        } = self;
        let Some(c) = conns.get_mut(idx).and_then(Option::as_mut) else {
            return Ok(false);
        };
        counters.datagrams_received += 1;
        counters.bytes_received += buf.len() as u64;
        c.rx_bytes += buf.len() as u64;
        let mut service = false;
        match c.session.handle_datagram(now, buf) {
            Ok(Some(ClientEvent::Connected)) => {
                c.connected = true;
                c.connected_at = Some(now);
                c.control_pending = true;
                service = true;
                match &mut c.media {
                    Media::Publisher { cfg, state } => {
                        counters.publishers_connected += 1;
                        counters.publisher_joins_ok += 1;
                        c.joined = true;
                        join_publishers
                            .record(now.saturating_duration_since(c.post_at).as_micros() as u64);
                        *state = Some(Box::new(Publisher::new(cfg.clone(), *clock, now, *wall)));
                    }
                    Media::Subscriber { cfg, state } => {
                        counters.subscribers_connected += 1;
                        *state = Some(Box::new(Subscriber::new(cfg.clone(), *clock, now)));
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
                    // Only when a loss made a NACK due before the client's next turn.
                    service = c.scheduled.is_none_or(|t| s.poll_timeout() < t);
                }
                _ => counters.unknown_stream += 1,
            },
            Ok(Some(ClientEvent::Rtcp { len })) => match &mut c.media {
                Media::Publisher { state: Some(p), .. } => {
                    p.handle_rtcp(&buf[..len], counters);
                    // Retransmissions and keyframes go out at once.
                    service = true;
                }
                Media::Subscriber { state: Some(s), .. } => {
                    s.handle_rtcp(now, &buf[..len], counters)
                }
                _ => {}
            },
            Ok(None) => {
                // STUN or DTLS: the transport may answer.
                c.control_pending = true;
                service = true;
            }
            Err(ClientError::NotConnected) => {}
            Err(ClientError::Srtp(_)) => counters.undecodable += 1,
            Err(ClientError::Dtls(e)) => return Err(ClientFailure::Dtls(e)),
        }
        Ok(service)
    }

    /// Runs client `idx`'s timers, sends what it has through `tx`, and schedules its next turn
    /// in `timers`. `Err` when the client failed (no connection or join in time, DTLS).
    pub fn service(
        &mut self,
        idx: usize,
        now: Instant,
        tx: &mut TxBatch,
        timers: &mut TimerHeap,
    ) -> Result<(), ClientFailure> {
        let counters = &mut self.counters;
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return Ok(());
        };
        c.dirty = false;
        if c.session.poll_timeout() <= now {
            c.control_pending = true;
            if let Err(e) = c.session.handle_timeout(now) {
                return Err(ClientFailure::Dtls(e.to_string()));
            }
        }
        if c.session.has_failed() {
            return Err(ClientFailure::Closed);
        }
        if !c.joined && now >= c.join_deadline {
            return Err(ClientFailure::JoinTimeout);
        }
        let fd = c.sock.fd();
        // Draining the transport costs a DTLS poll; only after it had something to do.
        let control = std::mem::take(&mut c.control_pending) || !c.connected;
        while let Some(d) = control.then(|| c.session.poll_transmit()).flatten() {
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
                    Media::Publisher { state: Some(p), .. } => p.poll_transmit(now, slot, counters),
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
        Ok(())
    }

    /// Loss and ordering of every subscriber over the measurement window.
    pub fn quality(&self) -> ReceiveQuality {
        let mut q = ReceiveQuality::default();
        for c in self.conns.iter().flatten() {
            if let Media::Subscriber { state: Some(s), .. } = &c.media {
                let (v, a) = s.continuity();
                for st in [v, a].into_iter().flatten() {
                    q.add_stream(&st);
                }
            }
        }
        q
    }

    /// Video and audio quality separately, and how many subscribers got no video (audio) at all.
    pub fn quality_by_kind(&self) -> (ReceiveQuality, ReceiveQuality, u64, u64) {
        let (mut video, mut audio) = (ReceiveQuality::default(), ReceiveQuality::default());
        let (mut no_video, mut no_audio) = (0, 0);
        for c in self.conns.iter().flatten() {
            if let Media::Subscriber { state: Some(s), .. } = &c.media {
                let (v, a) = s.continuity();
                let (any_v, any_a) = s.received_any();
                if let Some(v) = v {
                    video.add_stream(&v);
                    no_video += u64::from(!any_v);
                }
                if let Some(a) = a {
                    audio.add_stream(&a);
                    no_audio += u64::from(!any_a);
                }
            }
        }
        (video, audio, no_video, no_audio)
    }

    /// Starts the measurement window of every subscriber at `now`.
    pub fn start_window(&mut self, now: Instant) {
        self.latency.reset();
        self.window_start = Some(now);
        for c in self.conns.iter_mut().flatten() {
            c.rx_base = c.rx_bytes;
            if let Some(d) = &c.downlink {
                c.downlink_base = d.stats();
            }
            if let Media::Subscriber { state: Some(s), .. } = &mut c.media {
                s.start_window(now);
            }
        }
    }

    /// Every subscriber still here, over the measurement window up to `now`.
    pub fn viewer_samples(&self, now: Instant) -> Vec<ViewerSample> {
        let mut out = Vec::new();
        for c in self.conns.iter().flatten() {
            let Media::Subscriber { state, .. } = &c.media else {
                continue;
            };
            let from = match (self.window_start, c.connected_at) {
                (Some(w), Some(t)) => w.max(t),
                (None, Some(t)) => t,
                (_, None) => now,
            };
            out.push(ViewerSample {
                class: c.class,
                receiving: c.joined,
                bytes: c.rx_bytes - c.rx_base.min(c.rx_bytes),
                seconds: now.saturating_duration_since(from).as_secs_f64(),
                video: state.as_ref().and_then(|s| s.video_experience(now)),
                video_continuity: state.as_ref().and_then(|s| s.continuity().0),
                downlink: c
                    .downlink
                    .as_ref()
                    .map(|d| d.stats().since(&c.downlink_base)),
            });
        }
        out
    }
}
