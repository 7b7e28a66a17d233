//! The shard loop under load: a real shard thread (`sfu::shard::spawn`, mmsg or io_uring
//! backend) forwarding one publisher's video to N subscribers over loopback. Every session is
//! connected first (ICE, DTLS-SRTP) by client sessions on their own UDP sockets; then a sender
//! thread on another core feeds the shard SRTP-encrypted 1200-byte-payload VP8 packets from the
//! publisher's address, as fast as it can or at a fixed rate.
//!
//! Measured over a window after warm-up, from outside the shard: egress packets/s (the shard's
//! own counters), the shard thread's CPU time per egress packet (schedstat, with the user/kernel
//! split from stat), and heap allocations made on the shard thread (there must be none).
//!
//! The egress goes to the viewers' loopback sockets, which nobody reads: the kernel's delivery
//! into them (and the drop once they are full) is charged to the shard thread's send calls,
//! where a NIC would only take a DMA descriptor. Loopback is thus a pessimistic stand-in for
//! the kernel side.
//!
//! After the shard rows, the same sender drives a raw forwarder on the same backend (it copies
//! each datagram to every viewer, nothing else): the I/O ceiling measured in the same run, and the
//! shard's share of it.
//!
//! Usage: `cargo bench -p bench --bench shard_loop -- [--io mmsg,uring] [--viewers 1,10,100]
//! [--seconds S] [--egress-rate PPS] [--no-raw]` (`--egress-rate` paces the sender so that the
//! egress would be PPS packets/s; without it the sender runs flat out).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bench::thread_cpu::{ThreadTimes, find_thread, thread_times};
use sfu::client::{ClientConfig, ClientSession};
use sfu::control::{Command, Event, IceParams, SessionSpec};
use sfu::core::CoreConfig;
use sfu::dtls::DtlsCert;
use sfu::io::{IoConfig, IoKind, SLOT_SIZE};
use sfu::metrics::{DropReason, ShardMetrics};
use sfu::shard::{self, Mesh, ShardConfig, ShardHandle};
use sfu::sim::{self, MediaSource};
use sfu::{SessionId, ShardId, StreamKey};

// ---------------------------------------------------------------------------------------------
// Allocation counting on the shard thread.

/// Thread id of the shard being measured (0: none).
static SHARD_TID: AtomicI32 = AtomicI32::new(0);
/// Allocations the shard thread made.
static SHARD_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's id, cached (0 until first needed). Const-initialised, no destructor: safe
    /// to touch from inside the allocator.
    static MY_TID: Cell<i32> = const { Cell::new(0) };
}

fn my_tid() -> i32 {
    MY_TID
        .try_with(|c| {
            if c.get() == 0 {
                // SAFETY: gettid has no preconditions.
                c.set(unsafe { libc::gettid() });
            }
            c.get()
        })
        .unwrap_or(-1)
}

struct CountingAlloc;

impl CountingAlloc {
    #[inline]
    fn count(&self) {
        let shard = SHARD_TID.load(Ordering::Relaxed);
        if shard != 0 && my_tid() == shard {
            SHARD_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: defers to the system allocator; counting touches only atomics and a const-initialised
// thread-local without destructor, neither of which allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

// ---------------------------------------------------------------------------------------------
// Options.

#[derive(Debug, Clone)]
struct Opts {
    io: Vec<IoKind>,
    viewers: Vec<usize>,
    seconds: f64,
    warmup: f64,
    egress_rate: Option<u64>,
    /// Also measure the raw I/O ceiling for each row.
    raw: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        io: vec![IoKind::Mmsg, IoKind::Uring],
        viewers: vec![1, 10, 100],
        seconds: 4.0,
        warmup: 1.0,
        egress_rate: None,
        raw: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: usize| -> &str {
        args.get(i + 1).map(String::as_str).unwrap_or_else(|| {
            eprintln!("{} needs a value", args[i]);
            std::process::exit(2)
        })
    };
    let bad = |what: &str, v: &str| -> ! {
        eprintln!("bad {what}: {v}");
        std::process::exit(2)
    };
    while i < args.len() {
        match args[i].as_str() {
            "--bench" => {} // cargo bench passes it
            "--io" => {
                let v = value(i);
                o.io = v
                    .split(',')
                    .map(|k| match k {
                        "mmsg" => IoKind::Mmsg,
                        "uring" => IoKind::Uring,
                        _ => bad("--io (mmsg, uring)", k),
                    })
                    .collect();
                i += 1;
            }
            "--viewers" => {
                let v = value(i);
                o.viewers = v
                    .split(',')
                    .map(|n| n.parse().unwrap_or_else(|_| bad("--viewers", n)))
                    .collect();
                i += 1;
            }
            "--seconds" => {
                let v = value(i);
                o.seconds = v.parse().unwrap_or_else(|_| bad("--seconds", v));
                i += 1;
            }
            "--warmup" => {
                let v = value(i);
                o.warmup = v.parse().unwrap_or_else(|_| bad("--warmup", v));
                i += 1;
            }
            "--egress-rate" => {
                let v = value(i);
                o.egress_rate = Some(v.parse().unwrap_or_else(|_| bad("--egress-rate", v)));
                i += 1;
            }
            "--no-raw" => o.raw = false,
            // Filters and flags meant for other harnesses are ignored.
            _ => {}
        }
        i += 1;
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Client peers on real sockets.

/// A client session on its own loopback UDP socket.
struct UdpPeer {
    sock: UdpSocket,
    client: ClientSession,
}

impl UdpPeer {
    fn new(cfg: ClientConfig, now: Instant) -> std::io::Result<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.connect(cfg.server)?;
        sock.set_nonblocking(true)?;
        Ok(UdpPeer {
            sock,
            client: ClientSession::new(cfg, now),
        })
    }

    /// Runs timers, sends what the session has to send, handles what arrived.
    fn pump(&mut self, now: Instant, buf: &mut [u8]) {
        let _ = self.client.handle_timeout(now);
        while let Some(d) = self.client.poll_transmit() {
            let _ = self.sock.send(&d);
        }
        while let Ok(n) = self.sock.recv(buf) {
            let _ = self.client.handle_datagram(now, &mut buf[..n]);
        }
    }
}

/// One shard with a connected publisher and viewers.
struct Setup {
    shard: ShardHandle,
    publisher: UdpPeer,
    /// Kept open so the shard's egress has somewhere to go; the first is the sender's probe.
    viewers: Vec<UdpPeer>,
    tid: i32,
    /// The clients' certificate fingerprint, for more sessions.
    client_fp: sfu::dtls::Fingerprint,
}

fn pin_cores() -> (Option<usize>, Option<usize>) {
    let cores: Vec<usize> = core_ids();
    match cores.len() {
        0 => (None, None),
        1 => (Some(cores[0]), None),
        n => (Some(cores[n - 1]), Some(cores[0])),
    }
}

/// Pins the calling thread to `core` (no-op for `None`).
fn pin_to(core: Option<usize>) {
    if let Some(c) = core {
        // SAFETY: cpu_set_t is plain data; the calls get a valid set and its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(c, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

fn core_ids() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size matches the set.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `set` is initialised and the index is within CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

fn setup(io: IoKind, viewers: usize, shard_core: Option<usize>) -> Result<Setup, String> {
    let cert = Arc::new(DtlsCert::generate().map_err(|e| e.to_string())?);
    let client_cert = Arc::new(DtlsCert::generate().map_err(|e| e.to_string())?);
    let mesh = Mesh::new(1, 1024);
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let sink: shard::EventSink = Arc::new(move |ev| {
        let _ = ev_tx.send(ev);
    });
    let cfg = ShardConfig {
        id: ShardId(0),
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        io,
        io_config: IoConfig {
            uring_defer_taskrun: true,
            ..IoConfig::default()
        },
        core: CoreConfig::default(),
        pin: shard_core,
    };
    let handle = shard::spawn(cfg, Arc::clone(&cert), mesh, sink).map_err(|e| e.to_string())?;
    if handle.io != io {
        return Err(format!("asked for {io:?}, the shard runs {:?}", handle.io));
    }
    let server = handle.local_addr;
    let now = Instant::now();
    let client_fp = client_cert.fingerprint();
    let peer = |id: u64, spec: &dyn Fn(SessionId, IceParams, IceParams) -> SessionSpec| {
        let id = SessionId(id);
        let (server_ice, client_ice) = sim::ice_credentials(id);
        handle.send(Command::AddSession(Box::new(spec(
            id,
            server_ice.clone(),
            client_ice.clone(),
        ))));
        UdpPeer::new(
            ClientConfig {
                local_ice: client_ice,
                remote_ice: server_ice,
                server,
                remote_fingerprint: cert.fingerprint(),
                cert: Arc::clone(&client_cert),
            },
            now,
        )
        .map_err(|e| e.to_string())
    };
    let publisher = peer(1, &|id, l, r| {
        sim::publisher_spec(id, l, r, client_fp.clone(), StreamKey(1))
    })?;
    let mut all = vec![publisher];
    for v in 0..viewers as u64 {
        all.push(peer(2 + v, &|id, l, r| {
            sim::viewer_spec(id, l, r, client_fp.clone(), StreamKey(1), id.0 as u32)
        })?);
    }
    let mut buf = vec![0u8; SLOT_SIZE];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all.iter().all(|p| p.client.is_connected()) {
        if Instant::now() > deadline {
            let n = all.iter().filter(|p| p.client.is_connected()).count();
            return Err(format!("only {n} of {} sessions connected", all.len()));
        }
        let now = Instant::now();
        for p in &mut all {
            p.pump(now, &mut buf);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let connected = ev_rx
        .try_iter()
        .filter(|e| matches!(e, Event::SessionConnected { .. }))
        .count();
    if connected != all.len() {
        return Err(format!(
            "shard reported {connected} of {} connected",
            all.len()
        ));
    }
    let tid = find_thread("shard-0").ok_or("no thread named shard-0")?;
    let publisher = all.remove(0);
    Ok(Setup {
        shard: handle,
        publisher,
        viewers: all,
        tid,
        client_fp,
    })
}

/// Asks for a larger receive buffer (the kernel caps it at net.core.rmem_max).
fn set_recv_buffer(sock: &UdpSocket, bytes: libc::c_int) {
    // SAFETY: setsockopt reads an int from a live local.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The sender.

/// Packets written and encrypted per sendmmsg.
const SEND_BATCH: usize = 64;
/// Most packets in flight between the sender and the probe viewer. Below the shard's video
/// cache (512 packets): a shard that takes more than that from its socket in one go overwrites
/// cached packets before fanning them out. Above it, a stalled shard would also let the kernel
/// drop tens of thousands of consecutive packets, which SRTP's rollover estimation (RFC 3711
/// §3.3.1) cannot bridge.
const WINDOW: u64 = 448;
/// A window that makes no progress for this long is assumed lost and reopened. Long enough for
/// a shard preempted on a busy host, or one in a long loop iteration, not to be flooded.
const WINDOW_STALL: Duration = Duration::from_millis(50);

/// What the sender hands back.
struct SenderReport {
    _publisher: Option<ClientSession>,
    /// Times the window was reopened after a stall.
    stalls: u64,
}

/// Sends the publisher's video, encrypted just before each sendmmsg, until `stop`: at most
/// `rate` ingress packets/s (or flat out), and never more than [`WINDOW`] packets ahead of what
/// the probe viewer has received. Both the sent count and the probe's received count are
/// published through the atomics.
fn run_sender(
    sock: UdpSocket,
    mut client: Option<ClientSession>,
    probe: UdpSocket,
    rate: Option<u64>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    core: Option<usize>,
) -> SenderReport {
    pin_to(core);
    let mut source = MediaSource::new(Instant::now());
    source.video_payload = 1200;
    source.packets_per_frame = 8;
    let mut bufs = vec![[0u8; SLOT_SIZE]; SEND_BATCH];
    // SAFETY: plain-old-data structs; all-zero is valid and the pointers are set before use.
    let mut iov: Vec<libc::iovec> = (0..SEND_BATCH)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    // SAFETY: as above.
    let mut msgs: Vec<libc::mmsghdr> = (0..SEND_BATCH)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    let mut rbufs = vec![[0u8; SLOT_SIZE]; SEND_BATCH];
    // SAFETY: as above.
    let mut riov: Vec<libc::iovec> = (0..SEND_BATCH)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    // SAFETY: as above.
    let mut rmsgs: Vec<libc::mmsghdr> = (0..SEND_BATCH)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for i in 0..SEND_BATCH {
        riov[i].iov_base = rbufs[i].as_mut_ptr().cast();
        riov[i].iov_len = SLOT_SIZE;
        rmsgs[i].msg_hdr.msg_iov = &mut riov[i];
        rmsgs[i].msg_hdr.msg_iovlen = 1;
    }
    let fd = sock.as_raw_fd();
    let probe_fd = probe.as_raw_fd();
    let start = Instant::now();
    let mut total = 0u64;
    // Packets the window counts as arrived: received by the probe, plus those written off.
    let mut arrived = 0u64;
    let mut last_progress = Instant::now();
    let mut stalls = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: rmsgs point at live iovecs over live buffers; MSG_DONTWAIT never blocks.
        let r = unsafe {
            libc::recvmmsg(
                probe_fd,
                rmsgs.as_mut_ptr(),
                SEND_BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r > 0 {
            arrived += r as u64;
            last_progress = Instant::now();
        }
        let mut k = SEND_BATCH as u64;
        if let Some(r) = rate {
            let due = (start.elapsed().as_secs_f64() * r as f64) as u64;
            k = k.min(due.saturating_sub(total));
        }
        let in_flight = total.saturating_sub(arrived);
        if in_flight + k > WINDOW {
            if last_progress.elapsed() > WINDOW_STALL {
                arrived = total;
                stalls += 1;
                last_progress = Instant::now();
            }
            k = WINDOW.saturating_sub(in_flight).min(k);
        }
        if k == 0 {
            std::hint::spin_loop();
            if rate.is_some() {
                std::thread::sleep(Duration::from_micros(20));
            }
            continue;
        }
        let k = k as usize;
        for i in 0..k {
            let (_, n) = source.write_video(&mut bufs[i]);
            // The raw ceiling's forwarder gets the plain RTP packet.
            let n = match client.as_mut().map(|c| c.protect_rtp(&mut bufs[i], n)) {
                None => n,
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    return SenderReport {
                        _publisher: client,
                        stalls,
                    };
                }
            };
            iov[i].iov_base = bufs[i].as_mut_ptr().cast();
            iov[i].iov_len = n;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        let mut off = 0;
        while off < k {
            // SAFETY: msgs[off..k] point at live iovecs over live buffers; the socket is
            // connected, so no addresses are needed.
            let r = unsafe { libc::sendmmsg(fd, msgs[off..].as_mut_ptr(), (k - off) as u32, 0) };
            if r <= 0 {
                // EAGAIN: the send buffer is full; the rest of the batch is lost on the "wire".
                break;
            }
            off += r as usize;
        }
        total += k as u64;
        sent.store(total, Ordering::Relaxed);
    }
    SenderReport {
        _publisher: client,
        stalls,
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement.

/// The shard's counters and its thread's CPU time at one instant.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    cpu: ThreadTimes,
    datagrams_in: u64,
    rtp_in: u64,
    rtp_out: u64,
    datagrams_out: u64,
    send_errors: u64,
    drops: [u64; DropReason::COUNT],
    iterations: u64,
    allocs: u64,
    sent: u64,
}

/// Waits for the shard's next metrics publication (every 100 ms) and snapshots right after it,
/// so that counters and CPU time describe the same moment.
fn snapshot(m: &ShardMetrics, tid: i32, sent: &AtomicU64) -> Snapshot {
    let r = Ordering::Relaxed;
    let it = m.loop_iterations.load(r);
    let deadline = Instant::now() + Duration::from_millis(500);
    while m.loop_iterations.load(r) == it && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    Snapshot {
        at: Instant::now(),
        cpu: thread_times(tid).unwrap_or_default(),
        datagrams_in: m.datagrams_in.load(r),
        rtp_in: m.rtp_in.load(r),
        rtp_out: m.rtp_out.load(r),
        datagrams_out: m.datagrams_out.load(r),
        send_errors: m.send_errors.load(r),
        drops: std::array::from_fn(|i| m.drops[i].load(r)),
        iterations: m.loop_iterations.load(r),
        allocs: SHARD_ALLOCS.load(r),
        sent: sent.load(r),
    }
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    io: IoKind,
    viewers: usize,
    offered_in: f64,
    received_in: f64,
    egress: f64,
    cpu_share: f64,
    ns_per_egress: f64,
    user_share: f64,
    allocs: u64,
    allocs_per_egress: f64,
    out_per_in: f64,
    send_errors: u64,
    drops: u64,
    /// Nonzero drops by reason.
    drop_reasons: Vec<(&'static str, u64)>,
    packets_per_iteration: f64,
    /// Times the sender wrote off its window after the probe saw nothing for 50 ms.
    window_stalls: u64,
    /// Allocations the counter saw when the shard added one session (proof that it counts).
    control_allocs: u64,
}

fn measure(o: &Opts, io: IoKind, viewers: usize) -> Result<Row, String> {
    let (shard_core, sender_core) = pin_cores();
    let s = setup(io, viewers, shard_core)?;
    let metrics = Arc::clone(&s.shard.metrics);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let rate = o.egress_rate.map(|r| (r / viewers as u64).max(1));
    let probe = s.viewers[0].sock.try_clone().map_err(|e| e.to_string())?;
    set_recv_buffer(&probe, 4 << 20);
    let sender = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        let UdpPeer { sock, client } = s.publisher;
        std::thread::Builder::new()
            .name("sender".into())
            .spawn(move || run_sender(sock, Some(client), probe, rate, stop, sent, sender_core))
            .map_err(|e| e.to_string())?
    };
    std::thread::sleep(Duration::from_secs_f64(o.warmup));
    SHARD_ALLOCS.store(0, Ordering::Relaxed);
    SHARD_TID.store(s.tid, Ordering::Relaxed);
    let a = snapshot(&metrics, s.tid, &sent);
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let b = snapshot(&metrics, s.tid, &sent);
    // The counter must see the shard thread: adding a session there allocates.
    let before = SHARD_ALLOCS.load(Ordering::Relaxed);
    let id = SessionId(1_000_000);
    let (server_ice, client_ice) = sim::ice_credentials(id);
    s.shard.send(Command::AddSession(Box::new(sim::viewer_spec(
        id,
        server_ice,
        client_ice,
        s.client_fp.clone(),
        StreamKey(2),
        7,
    ))));
    std::thread::sleep(Duration::from_millis(200));
    let control_allocs = SHARD_ALLOCS.load(Ordering::Relaxed) - before;
    SHARD_TID.store(0, Ordering::Relaxed);
    if control_allocs == 0 {
        return Err("the allocation counter saw nothing when the shard added a session".into());
    }
    stop.store(true, Ordering::Relaxed);
    let report = sender.join().map_err(|_| "sender panicked")?;
    s.shard.shutdown();

    let secs = b.at.duration_since(a.at).as_secs_f64();
    let cpu = b.cpu.since(&a.cpu);
    let egress = (b.rtp_out - a.rtp_out) as f64;
    let ingress = (b.rtp_in - a.rtp_in) as f64;
    let ticks = (cpu.user_ns + cpu.system_ns).max(1) as f64;
    Ok(Row {
        io,
        viewers,
        offered_in: (b.sent - a.sent) as f64 / secs,
        received_in: (b.datagrams_in - a.datagrams_in) as f64 / secs,
        egress: egress / secs,
        cpu_share: cpu.on_cpu_ns as f64 / 1e9 / secs,
        ns_per_egress: cpu.on_cpu_ns as f64 / egress.max(1.0),
        user_share: cpu.user_ns as f64 / ticks,
        allocs: b.allocs - a.allocs,
        allocs_per_egress: (b.allocs - a.allocs) as f64 / egress.max(1.0),
        out_per_in: egress / ingress.max(1.0),
        send_errors: b.send_errors - a.send_errors,
        drops: b.drops.iter().sum::<u64>() - a.drops.iter().sum::<u64>(),
        drop_reasons: DropReason::ALL
            .iter()
            .map(|&d| (d.label(), b.drops[d as usize] - a.drops[d as usize]))
            .filter(|&(_, n)| n > 0)
            .collect(),
        packets_per_iteration: (b.datagrams_out - a.datagrams_out) as f64
            / (b.iterations - a.iterations).max(1) as f64,
        window_stalls: report.stalls,
        control_allocs,
    })
}

#[path = "shard_loop/raw.rs"]
mod raw;
use raw::measure_raw;

fn tuning_profile() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tuning/apply.sh");
    std::process::Command::new("bash")
        .args([script, "--summary"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "profile=unknown (tuning/apply.sh --summary gave nothing)".into())
}

fn main() {
    let o = parse_opts();
    let (shard_core, sender_core) = pin_cores();
    println!("shard loop: 1 publisher -> N viewers, VP8 1200-byte payload, AES-128-GCM, loopback");
    println!(
        "shard thread on core {shard_core:?}, sender on core {sender_core:?}; {} s measured after {} s warm-up; sender {}",
        o.seconds,
        o.warmup,
        match o.egress_rate {
            Some(r) => format!("paced for {r} egress packets/s"),
            None => "flat out".into(),
        }
    );
    println!("host: {}", tuning_profile());
    println!();
    println!(
        "| io    | viewers | offered in/s | received in/s | egress pkts/s | shard CPU | ns/egress | user | out/in | allocs (per egress) | send errs | drops | pkts/iter | stalls |"
    );
    println!(
        "|-------|--------:|-------------:|--------------:|--------------:|----------:|----------:|-----:|-------:|--------------------:|----------:|------:|----------:|-------:|"
    );
    let mut failed = false;
    let mut notes = Vec::new();
    // (io, viewers, the shard's egress/s and ns per egress) for the raw ceiling table.
    let mut measured = Vec::new();
    for &io in &o.io {
        for &n in &o.viewers {
            match measure(&o, io, n) {
                Ok(r) => {
                    measured.push((io, n, r.egress, r.ns_per_egress));
                    println!(
                        "| {:<5} | {:>7} | {:>12.0} | {:>13.0} | {:>13.0} | {:>8.0}% | {:>9.0} | {:>3.0}% | {:>6.2} | {:>8} ({:>8.1e}) | {:>9} | {:>5} | {:>9.1} | {:>6} |",
                        format!("{:?}", r.io).to_lowercase(),
                        r.viewers,
                        r.offered_in,
                        r.received_in,
                        r.egress,
                        r.cpu_share * 100.0,
                        r.ns_per_egress,
                        r.user_share * 100.0,
                        r.out_per_in,
                        r.allocs,
                        r.allocs_per_egress,
                        r.send_errors,
                        r.drops,
                        r.packets_per_iteration,
                        r.window_stalls,
                    );
                    if r.allocs > 0 {
                        failed = true;
                    }
                    notes.push(format!(
                        "{:?}/{}: the counter saw {} allocations on the shard thread for one AddSession",
                        r.io, r.viewers, r.control_allocs
                    ));
                    if !r.drop_reasons.is_empty() {
                        notes.push(format!(
                            "{:?}/{}: drops {:?}",
                            r.io, r.viewers, r.drop_reasons
                        ));
                    }
                }
                Err(e) => {
                    println!("| {io:?} | {n} | failed: {e} |");
                    failed = true;
                }
            }
        }
    }
    for n in &notes {
        println!("{n}");
    }
    if o.raw && !measured.is_empty() {
        println!();
        println!(
            "raw I/O ceiling: the same backend, socket sizes and sender; a forwarder copies each received batch to every viewer (viewer by viewer, so GSO applies) with no WebRTC work"
        );
        println!();
        println!(
            "| io    | viewers | raw egress pkts/s | raw CPU | raw ns/egress | send errs | shard egress | shard / raw egress | shard ns / raw ns |"
        );
        println!(
            "|-------|--------:|------------------:|--------:|--------------:|----------:|-------------:|-------------------:|------------------:|"
        );
        for &(io, n, egress, ns) in &measured {
            match measure_raw(&o, io, n) {
                Ok(r) => println!(
                    "| {:<5} | {:>7} | {:>17.0} | {:>6.0}% | {:>13.0} | {:>9} | {:>12.0} | {:>17.0}% | {:>16.2}x |",
                    format!("{io:?}").to_lowercase(),
                    n,
                    r.egress,
                    r.cpu_share * 100.0,
                    r.ns_per_egress,
                    r.send_errors,
                    egress,
                    100.0 * egress / r.egress.max(1.0),
                    ns / r.ns_per_egress.max(1.0),
                ),
                Err(e) => {
                    println!("| {io:?} | {n} | raw run failed: {e} |");
                    failed = true;
                }
            }
        }
    }
    if failed {
        eprintln!("shard loop: a run failed or the shard thread allocated on the packet path");
        std::process::exit(1);
    }
}
