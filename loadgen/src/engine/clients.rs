//! The clients of one worker and what happens to each: a datagram through its transport
//! ([`ClientSession`]: STUN, DTLS, SRTP) to its publisher or subscriber; its timers; its packets
//! protected in place into the transmit batch and sent; joins and failures counted. No I/O
//! readiness here: the worker loop decides when each client runs.

use std::time::{Duration, Instant, SystemTime};

use sfu::client::{ClientError, ClientEvent, ClientSession};

use super::timers::TimerHeap;
use super::udp::{Flushed, TxBatch, UdpSock};
use super::worker::{ClientMedia, NewClient};
use crate::client::{
    Outgoing, Publisher, PublisherConfig, RtpOutcome, Subscriber, SubscriberConfig,
};
use crate::media::Clock;
use crate::stats::counters::ReceiveQuality;
use crate::stats::{Counters, Histogram};
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
        let mut service = false;
        match c.session.handle_datagram(now, buf) {
            Ok(Some(ClientEvent::Connected)) => {
                c.connected = true;
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
        for c in self.conns.iter_mut().flatten() {
            if let Media::Subscriber { state: Some(s), .. } = &mut c.media {
                s.start_window(now);
            }
        }
    }
}
