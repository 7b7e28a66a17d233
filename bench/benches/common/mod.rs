//! What the micro benchmarks share: thread CPU time as criterion's measurement, and a shard core
//! with a connected publisher and viewers from the simulated deployment (`sfu::sim`).

#![allow(dead_code)] // each bench target uses its own part

use std::net::SocketAddr;
use std::time::Duration;

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use sfu::io::{RecvMeta, SLOT_SIZE, TxBatch};
use sfu::sim::Harness;

/// CPU time of the benchmarking thread (CLOCK_THREAD_CPUTIME_ID) instead of wall time: the
/// build machine is shared, and time spent preempted by other processes must not count. On an
/// idle machine the two agree for these CPU-bound loops.
#[derive(Debug)]
pub struct ThreadCpuTime;

/// CPU nanoseconds this thread has used.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available on Linux");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, exactly what the wall-time formatter expects.
        WallTime.formatter()
    }
}

/// Criterion measuring thread CPU time, with a short warm-up and measurement so the whole suite
/// stays within a few minutes on a shared machine.
pub fn criterion() -> Criterion<ThreadCpuTime> {
    Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// Payload bytes of the video packets the benchmarks forward (the packet is about 1220 bytes
/// with its header and extension, the size DESIGN.md's per-packet costs assume).
pub const VIDEO_PAYLOAD: usize = 1200;

/// A shard core with one publisher and `viewers` viewers of its stream, all connected, every
/// viewer past its first keyframe, and the publisher's own media paused so that a benchmark
/// feeds the core itself with [`Fanout::next_packet`].
pub struct Fanout {
    pub h: Harness,
    pub publisher: usize,
    pub viewers: Vec<usize>,
    pub src: SocketAddr,
    pub batch: TxBatch,
}

impl Fanout {
    pub fn new(viewers: usize) -> Self {
        Self::with_twcc(viewers, false)
    }

    /// Like [`Fanout::new`]; with `twcc` the viewers negotiated transport-wide congestion
    /// control, so every egress packet is stamped and recorded by the viewer's estimator.
    /// The viewers send no feedback, so their estimates stay at the start value, below the
    /// stream's rate: the allocator's pausing is off, or it would pause their video and the
    /// bench would measure nothing.
    pub fn with_twcc(viewers: usize, twcc: bool) -> Self {
        let mut cfg = sfu::core::CoreConfig::default();
        cfg.allocator.pause_video = false;
        let mut h = Harness::with_config(1, cfg);
        let publisher = h.add_publisher(0, 1);
        let viewers: Vec<usize> = (0..viewers)
            .map(|_| {
                if twcc {
                    h.add_twcc_viewer(0, 1, 9)
                } else {
                    h.add_viewer(0, 1)
                }
            })
            .collect();
        for &v in &viewers {
            h.peers[v].record = false;
        }
        assert!(h.connect_all(Duration::from_secs(10)), "peers connect");
        // The join asked for a keyframe; let it reach every viewer.
        h.run(Duration::from_millis(500));
        let src = h.peers[publisher].addr;
        let source = h.peers[publisher]
            .publisher
            .as_mut()
            .expect("the first peer publishes");
        source.paused = true;
        source.video_payload = VIDEO_PAYLOAD;
        let mut f = Fanout {
            h,
            publisher,
            viewers,
            src,
            batch: TxBatch::new(512),
        };
        // Every viewer must be forwarding: one packet in gives one packet per viewer out.
        let mut buf = [0u8; SLOT_SIZE];
        let n = f.next_packet(&mut buf);
        let before = f.h.cores[0].counters().rtp_out;
        f.handle(&mut buf[..n]);
        let out = f.h.cores[0].counters().rtp_out - before;
        assert_eq!(
            out as usize,
            f.viewers.len(),
            "every viewer is forwarded to"
        );
        f
    }

    /// The publisher's next video packet, encrypted, in `buf`; returns its length.
    pub fn next_packet(&mut self, buf: &mut [u8]) -> usize {
        self.h.next_video_packet(self.publisher, buf)
    }

    /// Hands one datagram from the publisher to the core and drains every egress datagram
    /// (they are dropped, as if sent).
    #[inline]
    pub fn handle(&mut self, datagram: &mut [u8]) {
        let now = self.h.now;
        let core = &mut self.h.cores[0];
        core.handle_datagram(
            now,
            RecvMeta {
                src: self.src,
                dst_ip: None,
            },
            datagram,
        );
        drain(core, now, &mut self.batch);
    }

    /// Untimed upkeep between measured chunks: the virtual clock moves on by `d` and one tick
    /// runs (consent checks, reports), so that sessions stay alive however long a run lasts.
    pub fn upkeep(&mut self, d: Duration) {
        self.h.now += d;
        self.h.step();
    }
}

/// Moves every pending egress datagram out of the core, dropping them.
#[inline]
pub fn drain(core: &mut sfu::core::ShardCore, now: std::time::Instant, batch: &mut TxBatch) {
    while core.has_pending_transmit() {
        core.poll_transmit(now, batch);
        std::hint::black_box(batch.len());
        batch.clear();
    }
}
