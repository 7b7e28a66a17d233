//! The raw I/O ceiling: the same I/O backend, socket sizes and sender, but a forwarder that only
//! copies each received batch of datagrams to every viewer address, viewer by viewer — no ICE, DTLS, SRTP, parsing or
//! rewriting. What the shard reaches against it is the share of the physical limit it keeps.

use super::*;

/// One row of the raw ceiling table.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub egress: f64,
    pub cpu_share: f64,
    pub ns_per_egress: f64,
    pub send_errors: u64,
}

/// What the forwarder thread reports when it starts.
struct RawStarted {
    addr: SocketAddr,
    tid: i32,
}

/// Receives on `io` and sends every datagram to each of `dests`, viewer by viewer, until `stop`.
fn raw_forwarder(
    io: IoKind,
    dests: Vec<SocketAddr>,
    core: Option<usize>,
    stop: Arc<AtomicBool>,
    out: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    started: mpsc::Sender<Result<RawStarted, String>>,
) {
    pin_to(core);
    let cfg = IoConfig {
        uring_defer_taskrun: true,
        ..IoConfig::default()
    };
    let mut backend = match sfu::io::open(io, SocketAddr::from(([127, 0, 0, 1], 0)), &cfg) {
        Ok(b) => b,
        Err(e) => {
            let _ = started.send(Err(e.to_string()));
            return;
        }
    };
    use sfu::io::IoBackend;
    let _ = started.send(Ok(RawStarted {
        addr: backend.local_addr(),
        // SAFETY: gettid has no preconditions.
        tid: unsafe { libc::gettid() },
    }));
    // Sized for the largest receive batch, so the loop never allocates.
    let mut batch: Vec<(usize, [u8; SLOT_SIZE])> = Vec::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let r = backend.recv_batch(|_, buf| {
            if batch.len() < batch.capacity() {
                let mut copy = [0u8; SLOT_SIZE];
                copy[..buf.len()].copy_from_slice(buf);
                batch.push((buf.len(), copy));
            }
        });
        if r.is_err() {
            break;
        }
        // Viewer-major, as the shard's fan-out runs: a viewer's datagrams are consecutive in the
        // tx batch, so GSO sends them with one system call.
        for &dest in &dests {
            for (len, bytes) in &batch {
                if !backend.tx_batch().push(dest, &bytes[..*len]) {
                    let _ = backend.flush();
                    backend.tx_batch().push(dest, &bytes[..*len]);
                }
            }
        }
        batch.clear();
        let _ = backend.flush();
        let st = backend.stats();
        out.store(st.datagrams_out, Ordering::Relaxed);
        errors.store(st.send_errors, Ordering::Relaxed);
        let _ = backend.wait(Some(Instant::now() + Duration::from_millis(10)));
    }
}

pub(crate) fn measure_raw(o: &Opts, io: IoKind, viewers: usize) -> Result<RawRow, String> {
    if viewers == 0 {
        return Err("the raw ceiling needs at least one viewer".into());
    }
    let (fwd_core, sender_core) = pin_cores();
    let sinks: Vec<UdpSocket> = (0..viewers)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let dests: Vec<SocketAddr> = sinks
        .iter()
        .map(|s| s.local_addr())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (started_tx, started_rx) = mpsc::channel();
    let fwd = {
        let (stop, out, errors) = (Arc::clone(&stop), Arc::clone(&out), Arc::clone(&errors));
        std::thread::Builder::new()
            .name("raw-forwarder".into())
            .spawn(move || raw_forwarder(io, dests, fwd_core, stop, out, errors, started_tx))
            .map_err(|e| e.to_string())?
    };
    let started = started_rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|e| format!("forwarder did not start: {e}"))??;
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    sock.connect(started.addr).map_err(|e| e.to_string())?;
    let probe = sinks[0].try_clone().map_err(|e| e.to_string())?;
    probe.set_nonblocking(true).map_err(|e| e.to_string())?;
    set_recv_buffer(&probe, 4 << 20);
    let sent = Arc::new(AtomicU64::new(0));
    let rate = o.egress_rate.map(|r| (r / viewers as u64).max(1));
    let sender = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::Builder::new()
            .name("sender".into())
            .spawn(move || run_sender(sock, None, probe, rate, stop, sent, sender_core))
            .map_err(|e| e.to_string())?
    };
    std::thread::sleep(Duration::from_secs_f64(o.warmup));
    let (t0, c0, o0, e0) = (
        Instant::now(),
        thread_times(started.tid).unwrap_or_default(),
        out.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let (t1, c1, o1, e1) = (
        Instant::now(),
        thread_times(started.tid).unwrap_or_default(),
        out.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let _ = fwd.join();
    drop(sinks);
    let secs = t1.duration_since(t0).as_secs_f64();
    let cpu = c1.since(&c0);
    let egress = (o1 - o0) as f64;
    Ok(RawRow {
        egress: egress / secs,
        cpu_share: cpu.on_cpu_ns as f64 / 1e9 / secs,
        ns_per_egress: cpu.on_cpu_ns as f64 / egress.max(1.0),
        send_errors: e1 - e0,
    })
}
