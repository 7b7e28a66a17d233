//! The UDP I/O ceiling of one shard: a sender thread and a receiver thread move pre-built
//! 1200-byte datagrams over loopback through each I/O path (io_uring with and without GSO,
//! recvmmsg/sendmmsg with and without GSO, plain send_to/recv_from) and report packets/s, CPU time
//! per packet (per thread, from getrusage) and heap allocations per packet.
//!
//! Usage: `io_ceiling [seconds-per-path] [batch] [path...]`, paths: uring-gso uring uring-gso-dt
//! uring-dt (`-dt`: SINGLE_ISSUER + DEFER_TASKRUN ring) mmsg-gso mmsg plain monoio (with
//! `--features monoio`). On loopback the sender's CPU time includes the kernel's delivery into the receiving
//! socket; the receiver's is dequeue and copy-out.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sfu::io::{IoBackend, IoConfig, IoKind, SocketOptions, open};

const PAYLOAD: usize = 1200;
const WARMUP: Duration = Duration::from_millis(300);

/// Counts allocations per thread, to show the steady state allocates nothing.
struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; the counter is a const-initialized thread-local with
// no destructor, so touching it never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn thread_allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `defer`: SINGLE_ISSUER + DEFER_TASKRUN ring.
    Uring {
        gso: bool,
        defer: bool,
    },
    Mmsg {
        gso: bool,
    },
    Plain,
    /// monoio 0.2 `UdpSocket::send_to` / `recv_from` on its io_uring driver.
    Monoio,
}

const ALL: [(&str, Path); 8] = [
    (
        "uring-gso",
        Path::Uring {
            gso: true,
            defer: false,
        },
    ),
    (
        "uring",
        Path::Uring {
            gso: false,
            defer: false,
        },
    ),
    (
        "uring-gso-dt",
        Path::Uring {
            gso: true,
            defer: true,
        },
    ),
    (
        "uring-dt",
        Path::Uring {
            gso: false,
            defer: true,
        },
    ),
    ("mmsg-gso", Path::Mmsg { gso: true }),
    ("mmsg", Path::Mmsg { gso: false }),
    ("plain", Path::Plain),
    ("monoio", Path::Monoio),
];

impl Path {
    fn name(self) -> &'static str {
        ALL.iter().find(|(_, p)| *p == self).map_or("?", |(n, _)| n)
    }
    fn parse(s: &str) -> Option<Path> {
        ALL.iter().find(|(n, _)| *n == s).map(|(_, p)| *p)
    }
    fn config(self, o: &Opts) -> Option<(IoKind, IoConfig)> {
        let base = IoConfig {
            socket: big_buffers(),
            tx_batch: o.batch,
            rx_batch: o.batch.clamp(1, 1024),
            rx_buffers: o.rx_buffers,
            ..IoConfig::default()
        };
        match self {
            Path::Uring { gso, defer } => Some((
                IoKind::Uring,
                IoConfig {
                    gso,
                    uring_defer_taskrun: defer,
                    ..base
                },
            )),
            Path::Mmsg { gso } => Some((IoKind::Mmsg, IoConfig { gso, ..base })),
            Path::Plain | Path::Monoio => None,
        }
    }
}

/// What one side measured over the timed window (after warm-up).
#[derive(Debug, Default, Clone, Copy)]
struct Side {
    packets: u64,
    cpu: Duration,
    allocs: u64,
    errors: u64,
}

/// Tracks one thread's packets; the window opens when `mark` is first seen set.
struct Window {
    mark: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    base: Option<(u64, Duration, u64)>,
    total: u64,
}

impl Window {
    fn new(mark: &Arc<AtomicBool>, stop: &Arc<AtomicBool>) -> Self {
        Window {
            mark: mark.clone(),
            stop: stop.clone(),
            base: None,
            total: 0,
        }
    }
    /// Adds `n` packets; false once the run is over.
    #[inline]
    fn tick(&mut self, n: u64) -> bool {
        self.total += n;
        if self.base.is_none() && self.mark.load(Ordering::Relaxed) {
            self.base = Some((self.total, thread_cpu(), thread_allocs()));
        }
        !self.stop.load(Ordering::Relaxed)
    }
    fn finish(self) -> Side {
        let (p0, c0, a0) = self.base.unwrap_or((0, Duration::ZERO, 0));
        Side {
            packets: self.total - p0,
            cpu: thread_cpu() - c0,
            allocs: thread_allocs() - a0,
            errors: 0,
        }
    }
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn big_buffers() -> SocketOptions {
    SocketOptions {
        recv_buffer: 32 << 20,
        send_buffer: 32 << 20,
        reuse_port: false,
    }
}

fn receive(
    path: Path,
    o: Opts,
    mut w: Window,
    addr: std::sync::mpsc::Sender<SocketAddr>,
) -> std::io::Result<Side> {
    let send_addr = |a: SocketAddr| addr.send(a).map_err(std::io::Error::other);
    if o.echo > 0 {
        return echo_server(path, o, w, send_addr);
    }
    if o.sink {
        // A socket nobody reads: its queue fills and the kernel drops, so the sender pays for
        // its own path without waking a receiver.
        let s = UdpSocket::bind(local())?;
        send_addr(s.local_addr()?)?;
        while w.tick(0) {
            std::thread::sleep(Duration::from_millis(5));
        }
        return Ok(w.finish());
    }
    if let Some((kind, cfg)) = path.config(&o) {
        let mut io = open(kind, local(), &cfg).map_err(std::io::Error::other)?;
        send_addr(io.local_addr())?;
        loop {
            let _ = io.wait(Some(Instant::now() + Duration::from_millis(20)));
            let mut n = 0u64;
            let _ = io.recv_batch(|_, buf| n += (buf.len() == PAYLOAD) as u64);
            if !w.tick(n) {
                break;
            }
        }
        let st = io.stats();
        return Ok(Side {
            errors: st.truncated + st.rx_overruns,
            ..w.finish()
        });
    }
    match path {
        Path::Monoio => monoio_path::receive(w, send_addr),
        _ => {
            let s = sfu::io::socket::bind_udp(local(), &big_buffers())
                .map_err(std::io::Error::other)?
                .socket;
            s.set_nonblocking(false)?;
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
            send_addr(s.local_addr()?)?;
            let mut buf = [0u8; 2048];
            while w.tick(matches!(s.recv_from(&mut buf), Ok((PAYLOAD, _))) as u64) {}
            Ok(w.finish())
        }
    }
}

fn send(path: Path, o: Opts, mut w: Window, dest: SocketAddr) -> std::io::Result<Side> {
    if o.echo > 0 {
        return echo_client(o, w, dest);
    }
    let datagram: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    if let Some((kind, cfg)) = path.config(&o) {
        let mut io = open(kind, local(), &cfg).map_err(std::io::Error::other)?;
        let mut sent = 0;
        loop {
            let b = io.tx_batch();
            while b.push(dest, &datagram) {}
            let _ = io.flush();
            // Submits (uring) and settles completions without blocking.
            let _ = io.wait(Some(Instant::now()));
            // Count what the kernel accepted, not what was queued.
            let now = io.stats().datagrams_out;
            if !w.tick(now - std::mem::replace(&mut sent, now)) {
                break;
            }
        }
        return Ok(Side {
            errors: io.stats().send_errors,
            ..w.finish()
        });
    }
    match path {
        Path::Monoio => monoio_path::send(w, dest, datagram),
        _ => {
            let s = UdpSocket::bind(local())?;
            while w.tick(s.send_to(&datagram, dest).is_ok() as u64) {}
            Ok(w.finish())
        }
    }
}

/// Echoes every datagram back to its source, forwarding from the receive buffer.
fn echo_server(
    path: Path,
    o: Opts,
    mut w: Window,
    send_addr: impl FnOnce(SocketAddr) -> std::io::Result<()>,
) -> std::io::Result<Side> {
    if let Some((kind, cfg)) = path.config(&o) {
        let mut io = open(kind, local(), &cfg).map_err(std::io::Error::other)?;
        send_addr(io.local_addr())?;
        loop {
            let _ = io.wait(Some(Instant::now() + Duration::from_millis(20)));
            let mut n = 0u64;
            let _ = io.recv_batch_with_tx(|meta, buf, tx| n += tx.push(meta.src, buf) as u64);
            let _ = io.flush();
            if !w.tick(n) {
                break;
            }
        }
        let st = io.stats();
        return Ok(Side {
            errors: st.send_errors + st.truncated,
            ..w.finish()
        });
    }
    match path {
        Path::Monoio => monoio_path::echo(w, send_addr),
        _ => {
            let s = UdpSocket::bind(local())?;
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
            send_addr(s.local_addr()?)?;
            let mut buf = [0u8; 2048];
            loop {
                let n = match s.recv_from(&mut buf) {
                    Ok((n, from)) => s.send_to(&buf[..n], from).is_ok() as u64,
                    Err(_) => 0,
                };
                if !w.tick(n) {
                    break;
                }
            }
            Ok(w.finish())
        }
    }
}

/// Keeps `o.echo` datagrams in flight to an echo server; counts replies.
fn echo_client(o: Opts, mut w: Window, dest: SocketAddr) -> std::io::Result<Side> {
    let datagram: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    let s = UdpSocket::bind(local())?;
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    let burst = |s: &UdpSocket| (0..o.echo).for_each(|_| drop(s.send_to(&datagram, dest)));
    burst(&s);
    let mut buf = [0u8; 2048];
    loop {
        let n = match s.recv_from(&mut buf) {
            Ok((PAYLOAD, _)) => {
                let _ = s.send_to(&datagram, dest);
                1
            }
            Ok(_) => 0,
            Err(_) => {
                burst(&s); // replies lost: refill the window
                0
            }
        };
        if !w.tick(n) {
            break;
        }
    }
    Ok(w.finish())
}

#[cfg(feature = "monoio")]
mod monoio_path {
    //! The same pair on monoio 0.2's io_uring driver (one `send_to` / `recv_from` per datagram).
    use super::*;
    use monoio::net::udp::UdpSocket;

    fn runtime() -> std::io::Result<monoio::Runtime<monoio::IoUringDriver>> {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build()
    }

    pub(super) fn receive(
        mut w: Window,
        send_addr: impl FnOnce(SocketAddr) -> std::io::Result<()>,
    ) -> std::io::Result<Side> {
        runtime()?.block_on(async move {
            let s = UdpSocket::bind(local())?;
            send_addr(s.local_addr()?)?;
            let mut buf = Vec::with_capacity(2048);
            loop {
                let (r, b) = s.recv_from(buf).await;
                buf = b;
                if !w.tick(matches!(r, Ok((PAYLOAD, _))) as u64) {
                    break;
                }
            }
            Ok(w.finish())
        })
    }

    pub(super) fn echo(
        mut w: Window,
        send_addr: impl FnOnce(SocketAddr) -> std::io::Result<()>,
    ) -> std::io::Result<Side> {
        runtime()?.block_on(async move {
            let s = UdpSocket::bind(local())?;
            send_addr(s.local_addr()?)?;
            let mut buf = Vec::with_capacity(2048);
            loop {
                let (r, b) = s.recv_from(buf).await;
                let mut n = 0;
                buf = match r {
                    Ok((_, from)) => {
                        let (sent, b) = s.send_to(b, from).await;
                        n = sent.is_ok() as u64;
                        b
                    }
                    Err(_) => b,
                };
                if !w.tick(n) {
                    break;
                }
            }
            Ok(w.finish())
        })
    }

    pub(super) fn send(
        mut w: Window,
        dest: SocketAddr,
        datagram: Vec<u8>,
    ) -> std::io::Result<Side> {
        runtime()?.block_on(async move {
            let s = UdpSocket::bind(local())?;
            let mut buf = datagram;
            loop {
                let (r, b) = s.send_to(buf, dest).await;
                buf = b;
                if !w.tick(r.is_ok() as u64) {
                    break;
                }
            }
            Ok(w.finish())
        })
    }
}

#[cfg(not(feature = "monoio"))]
mod monoio_path {
    use super::*;

    fn absent() -> std::io::Result<Side> {
        Err(std::io::Error::other("built without the `monoio` feature"))
    }
    pub(super) fn receive(
        _: Window,
        _: impl FnOnce(SocketAddr) -> std::io::Result<()>,
    ) -> std::io::Result<Side> {
        absent()
    }
    pub(super) fn send(_: Window, _: SocketAddr, _: Vec<u8>) -> std::io::Result<Side> {
        absent()
    }
    pub(super) fn echo(
        _: Window,
        _: impl FnOnce(SocketAddr) -> std::io::Result<()>,
    ) -> std::io::Result<Side> {
        absent()
    }
}

/// Command-line settings.
#[derive(Debug, Clone, Copy)]
struct Opts {
    secs: f64,
    batch: usize,
    rx_buffers: u16,
    /// Fixed sender for every path (to compare receivers under one load).
    sender: Option<Path>,
    /// Send into a socket that is never read (send cost alone).
    sink: bool,
    /// Echo mode: a plain client keeps this many datagrams in flight to the path's echo server.
    echo: usize,
    repeat: usize,
}

fn run_path(path: Path, o: Opts) -> std::io::Result<(Side, Side, Duration)> {
    let mark = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    // Receiver first, so the sender knows where to send.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let w = Window::new(&mark, &stop);
    let receiver = std::thread::spawn(move || receive(path, o, w, addr_tx));
    let Ok(dest) = addr_rx.recv() else {
        return Err(receiver
            .join()
            .map_err(|_| std::io::Error::other("receiver panicked"))?
            .err()
            .unwrap_or_else(|| std::io::Error::other("receiver gave no address")));
    };
    let w = Window::new(&mark, &stop);
    let sender = std::thread::spawn(move || send(o.sender.unwrap_or(path), o, w, dest));

    std::thread::sleep(WARMUP);
    mark.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.secs));
    stop.store(true, Ordering::Relaxed);
    let wall = t0.elapsed();
    let tx = sender
        .join()
        .map_err(|_| std::io::Error::other("sender panicked"))?;
    if o.sink {
        let rx = receiver
            .join()
            .map_err(|_| std::io::Error::other("receiver panicked"))??;
        return Ok((tx?, rx, wall));
    }
    // A receiver blocked in a receive without timeout (monoio) needs one more datagram to see
    // the stop flag.
    let nudge = UdpSocket::bind(local())?;
    while !receiver.is_finished() {
        let _ = nudge.send_to(b"stop", dest);
        std::thread::sleep(Duration::from_millis(5));
    }
    let rx = receiver
        .join()
        .map_err(|_| std::io::Error::other("receiver panicked"))??;
    Ok((tx?, rx, wall))
}

fn usage() -> ! {
    eprintln!(
        "usage: io_ceiling [--secs S] [--batch N] [--rx-buffers N] [--sender PATH] [--sink] [--echo W] [--repeat N] [PATH...]\n\
         paths: {}",
        ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
    );
    std::process::exit(2)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn main() {
    let mut o = Opts {
        secs: 3.0,
        batch: 64,
        rx_buffers: 4096,
        sender: None,
        sink: false,
        echo: 0,
        repeat: 1,
    };
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--secs" => o.secs = val().parse().unwrap_or_else(|_| usage()),
            "--batch" => o.batch = val().parse().unwrap_or_else(|_| usage()),
            "--rx-buffers" => o.rx_buffers = val().parse().unwrap_or_else(|_| usage()),
            "--repeat" => o.repeat = val().parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--sink" => o.sink = true,
            "--echo" => o.echo = val().parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--sender" => o.sender = Some(Path::parse(&val()).unwrap_or_else(|| usage())),
            p => paths.push(Path::parse(p).unwrap_or_else(|| usage())),
        }
    }
    if paths.is_empty() {
        paths = ALL.iter().map(|(_, p)| *p).collect();
    }
    println!(
        "io_ceiling: {PAYLOAD}-byte datagrams over loopback, {} s per run, median of {}, tx batch {}, \
         uring rx buffers {}, sender {}, {} CPUs",
        o.secs,
        o.repeat,
        o.batch,
        o.rx_buffers,
        if o.echo > 0 {
            format!(
                "a plain echo client with {} in flight (tx = client, rx = the path's echo server)",
                o.echo
            )
        } else if o.sink {
            "each path into an unread socket".to_string()
        } else {
            o.sender.map_or("same as receiver", Path::name).to_string()
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<13} {:>10} {:>10} {:>6} {:>10} {:>10} {:>9} {:>9}",
        "path", "tx pkt/s", "rx pkt/s", "loss%", "tx ns/pkt", "rx ns/pkt", "tx alloc", "rx alloc"
    );
    for path in paths {
        let mut rows: Vec<[f64; 7]> = Vec::new();
        let mut errors = (0, 0);
        let mut failure = None;
        for _ in 0..o.repeat {
            match run_path(path, o) {
                Ok((tx, rx, wall)) => {
                    let w = wall.as_secs_f64();
                    let per = |s: &Side, x: f64| {
                        if s.packets == 0 {
                            f64::NAN
                        } else {
                            x / s.packets as f64
                        }
                    };
                    let loss = if tx.packets == 0 {
                        0.0
                    } else {
                        100.0 * (1.0 - rx.packets as f64 / tx.packets as f64)
                    };
                    rows.push([
                        tx.packets as f64 / w,
                        rx.packets as f64 / w,
                        loss.max(0.0),
                        per(&tx, tx.cpu.as_nanos() as f64),
                        per(&rx, rx.cpu.as_nanos() as f64),
                        per(&tx, tx.allocs as f64),
                        per(&rx, rx.allocs as f64),
                    ]);
                    errors.0 += tx.errors;
                    errors.1 += rx.errors;
                }
                Err(e) => failure = Some(e),
            }
        }
        if rows.is_empty() {
            println!(
                "{:<13} unavailable: {}",
                path.name(),
                failure.map_or_else(String::new, |e| e.to_string())
            );
            continue;
        }
        let m: Vec<f64> = (0..7)
            .map(|c| median(rows.iter().map(|r| r[c]).collect()))
            .collect();
        println!(
            "{:<13} {:>10.0} {:>10.0} {:>6.1} {:>10.0} {:>10.0} {:>9.3} {:>9.3}",
            path.name(),
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            m[6]
        );
        if errors != (0, 0) {
            println!(
                "{:<13} (all runs: send refusals {}, rx truncated + buffer-ring overruns {})",
                "", errors.0, errors.1
            );
        }
    }
}
