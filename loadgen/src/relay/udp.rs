//! The relay on real sockets: a thread that polls its UDP sockets and moves datagrams through a
//! pair of [`Link`]s per client (uplink client → server, downlink server → client). Each
//! listening socket has one upstream; every client address seen on it gets its own upstream
//! socket, so the server sees one 5-tuple per client, as behind a NAT.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::impairment::Impairment;
use super::link::{Link, LinkStats};

/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 2048;
/// Longest poll sleep, so the stop flag is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// Counters of a whole relay, both directions summed over clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub clients: u64,
    pub up: LinkStats,
    pub down: LinkStats,
}

fn add(a: &mut LinkStats, b: LinkStats) {
    a.packets_in += b.packets_in;
    a.bytes_in += b.bytes_in;
    a.lost += b.lost;
    a.queue_drops += b.queue_drops;
    a.reordered += b.reordered;
    a.packets_out += b.packets_out;
    a.bytes_out += b.bytes_out;
}

struct Listener {
    sock: UdpSocket,
    upstream: SocketAddr,
}

struct Route {
    listener: usize,
    client: SocketAddr,
    up_sock: UdpSocket,
    up: Link,
    down: Link,
}

/// A relay being set up: add listeners, then [`Relay::spawn`].
pub struct Relay {
    up_cfg: Impairment,
    down_cfg: Impairment,
    seed: u64,
    listeners: Vec<Listener>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("up", &self.up_cfg)
            .field("down", &self.down_cfg)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl Relay {
    /// A relay impairing client → server traffic with `up` and server → client with `down`.
    pub fn new(up: Impairment, down: Impairment, seed: u64) -> Self {
        Relay {
            up_cfg: up,
            down_cfg: down,
            seed,
            listeners: Vec::new(),
        }
    }

    /// Listens on `listen` (port 0: any) and relays what arrives there to `upstream`; returns
    /// the bound address, which clients use in place of the server's.
    pub fn listen(
        &mut self,
        listen: SocketAddr,
        upstream: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        let sock = UdpSocket::bind(listen)?;
        sock.set_nonblocking(true)?;
        let addr = sock.local_addr()?;
        self.listeners.push(Listener { sock, upstream });
        Ok(addr)
    }

    /// Starts the relay thread.
    pub fn spawn(self) -> std::io::Result<RelayHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(RelayStats::default()));
        let (s, st) = (Arc::clone(&stop), Arc::clone(&stats));
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || Runner::new(self, rx).run(&s, &st))?;
        Ok(RelayHandle {
            stop,
            stats,
            new_listeners: Mutex::new(tx),
            thread: Some(thread),
        })
    }
}

/// A running relay; dropping it stops the thread.
#[derive(Debug)]
pub struct RelayHandle {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<RelayStats>>,
    new_listeners: Mutex<Sender<Listener>>,
    thread: Option<JoinHandle<()>>,
}

impl RelayHandle {
    /// Adds a listener to the running relay (see [`Relay::listen`]); it serves within one
    /// poll round (at most 20 ms).
    pub fn listen(&self, listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<SocketAddr> {
        let sock = UdpSocket::bind(listen)?;
        sock.set_nonblocking(true)?;
        let addr = sock.local_addr()?;
        self.new_listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Listener { sock, upstream })
            .map_err(|_| std::io::Error::other("relay stopped"))?;
        Ok(addr)
    }

    /// Counters as of the last refresh (every poll round).
    pub fn stats(&self) -> RelayStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the thread and returns the final counters.
    pub fn stop(mut self) -> RelayStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Runner {
    relay: Relay,
    new_listeners: Receiver<Listener>,
    routes: Vec<Route>,
    by_client: HashMap<(usize, SocketAddr), usize>,
    buf: Vec<u8>,
}

impl Runner {
    fn new(relay: Relay, new_listeners: Receiver<Listener>) -> Self {
        Runner {
            relay,
            new_listeners,
            routes: Vec::new(),
            by_client: HashMap::new(),
            buf: vec![0u8; MAX_DATAGRAM],
        }
    }

    fn route_for(&mut self, listener: usize, client: SocketAddr) -> Option<usize> {
        if let Some(&r) = self.by_client.get(&(listener, client)) {
            return Some(r);
        }
        let upstream = self.relay.listeners[listener].upstream;
        let bind: SocketAddr = if upstream.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let up_sock = UdpSocket::bind(bind).ok()?;
        up_sock.set_nonblocking(true).ok()?;
        up_sock.connect(upstream).ok()?;
        let n = self.routes.len() as u64;
        // Distinct, repeatable streams per route and direction.
        let seed = |dir: u64| {
            self.relay
                .seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(n * 2 + dir)
        };
        self.routes.push(Route {
            listener,
            client,
            up_sock,
            up: Link::new(self.relay.up_cfg, seed(0)),
            down: Link::new(self.relay.down_cfg, seed(1)),
        });
        self.by_client
            .insert((listener, client), self.routes.len() - 1);
        Some(self.routes.len() - 1)
    }

    fn run(&mut self, stop: &AtomicBool, stats: &Mutex<RelayStats>) {
        while !stop.load(Ordering::Relaxed) {
            while let Ok(l) = self.new_listeners.try_recv() {
                self.relay.listeners.push(l);
            }
            let now = Instant::now();
            self.flush(now);
            let deadline = self
                .routes
                .iter()
                .flat_map(|r| [r.up.poll_timeout(), r.down.poll_timeout()])
                .flatten()
                .min();
            let wait = deadline
                .map_or(MAX_SLEEP, |d| d.saturating_duration_since(Instant::now()))
                .min(MAX_SLEEP);
            self.poll(wait);
            let now = Instant::now();
            self.receive(now);
            self.flush(now);
            let mut s = RelayStats {
                clients: self.routes.len() as u64,
                ..RelayStats::default()
            };
            for r in &self.routes {
                add(&mut s.up, r.up.stats());
                add(&mut s.down, r.down.stats());
            }
            *stats.lock().unwrap_or_else(|p| p.into_inner()) = s;
        }
    }

    fn poll(&self, wait: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .relay
            .listeners
            .iter()
            .map(|l| l.sock.as_raw_fd())
            .chain(self.routes.iter().map(|r| r.up_sock.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd entries.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
        }
    }

    fn receive(&mut self, now: Instant) {
        for li in 0..self.relay.listeners.len() {
            loop {
                let r = self.relay.listeners[li].sock.recv_from(&mut self.buf);
                match r {
                    Ok((n, from)) => {
                        if let Some(ri) = self.route_for(li, from) {
                            self.routes[ri].up.send(now, &self.buf[..n]);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        for r in &mut self.routes {
            loop {
                match r.up_sock.recv(&mut self.buf) {
                    Ok(n) => {
                        r.down.send(now, &self.buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // ICMP errors (port unreachable) surface here; keep going.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                    Err(_) => break,
                }
            }
        }
    }

    fn flush(&mut self, now: Instant) {
        for r in &mut self.routes {
            while let Some(p) = r.up.poll_release(now) {
                let _ = r.up_sock.send(&p);
                r.up.recycle(p);
            }
            let l = &self.relay.listeners[r.listener];
            while let Some(p) = r.down.poll_release(now) {
                let _ = l.sock.send_to(&p, r.client);
                r.down.recycle(p);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn loopback_relay_delays_both_directions_and_keeps_clients_apart() {
        // An echo server on loopback.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let echo = std::thread::spawn(move || {
            let mut peers = std::collections::HashSet::new();
            let mut b = [0u8; 2048];
            while !d.load(Ordering::Relaxed) {
                if let Ok((n, from)) = server.recv_from(&mut b) {
                    peers.insert(from);
                    server.send_to(&b[..n], from).unwrap();
                }
            }
            peers.len()
        });
        let delay = Impairment {
            delay: Duration::from_millis(15),
            ..Impairment::default()
        };
        let mut relay = Relay::new(delay, delay, 1);
        let relay_addr = relay
            .listen("127.0.0.1:0".parse().unwrap(), server_addr)
            .unwrap();
        let handle = relay.spawn().unwrap();
        // A second listener added while running, for the second client.
        let late_addr = handle
            .listen("127.0.0.1:0".parse().unwrap(), server_addr)
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));

        let mut rtts = Vec::new();
        for relay_addr in [relay_addr, late_addr] {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            for i in 0..5u8 {
                let t = Instant::now();
                c.send_to(&[i; 100], relay_addr).unwrap();
                let mut b = [0u8; 200];
                let (n, from) = c.recv_from(&mut b).unwrap();
                assert_eq!((n, b[0], from), (100, i, relay_addr));
                rtts.push(t.elapsed());
            }
        }
        let stats = handle.stop();
        done.store(true, Ordering::Relaxed);
        let peers = echo.join().unwrap();
        assert_eq!(peers, 2, "each client gets its own upstream address");
        assert_eq!(stats.clients, 2);
        assert_eq!((stats.up.packets_out, stats.down.packets_out), (10, 10));
        // 15 ms each way.
        assert!(
            rtts.iter().all(|r| *r >= Duration::from_millis(30)),
            "{rtts:?}"
        );
        assert!(
            rtts.iter().all(|r| *r < Duration::from_millis(500)),
            "{rtts:?}"
        );
    }
}
