//! The send-side estimator and the pacer never touch the heap per packet: a counting global
//! allocator watches `Pacer::enqueue`/`poll_send`, `SendSideBwe::on_packet_sent`,
//! `handle_feedback`, `poll_probe` and `handle_timeout` over tens of thousands of packets with
//! probes, loss, a transport sequence wrap and a history overrun.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use sfu::Ssrc;
use sfu::bwe::{
    Paced, Pacer, PacerConfig, PacketKind, SendSideBwe, SendSideConfig, TwccReceiver,
    TwccReceiverConfig,
};
use sfu::wire::rtcp::{self, RtcpPacket};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to the system allocator unchanged; counting only touches
// const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> R {
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    r
}

#[test]
fn estimator_and_pacer_do_not_allocate_per_packet() {
    let t0 = Instant::now();
    let cfg = SendSideConfig {
        history: 1024,
        ..SendSideConfig::default()
    };
    let mut bwe = SendSideBwe::new(cfg, t0);
    assert_eq!(bwe.history_capacity(), 1024);
    let mut pacer: Pacer<u32> = Pacer::new(PacerConfig::default(), bwe.target(), t0);
    let mut rx = TwccReceiver::new(TwccReceiverConfig::default());
    let mut fb = [0u8; 1500];
    // In flight on a fixed 30 ms path: (arrival, seq), a preallocated ring.
    let mut wire = vec![(t0, 0u16); 4096];
    let (mut w_head, mut w_len) = (0usize, 0usize);
    let mut seq: u16 = 65_000; // wraps during the run
    let mut now = t0;
    let mut handle = 0u32;
    COUNT.with(|c| c.set(0));
    for ms in 0..30_000u64 {
        now = t0 + Duration::from_millis(ms);
        if ms % 33 == 0 {
            for _ in 0..4 {
                handle = handle.wrapping_add(1);
                let _ = counted(|| pacer.enqueue(handle, 1100, PacketKind::Video));
            }
        }
        if ms % 20 == 0 {
            let _ = counted(|| pacer.enqueue(0, 120, PacketKind::Audio));
        }
        if ms == 10_000 {
            counted(|| bwe.set_desired_max(now, sfu::Bitrate::kbps(8000)));
        }
        while let Some(c) = counted(|| bwe.poll_probe()) {
            counted(|| pacer.add_probe(c));
        }
        while let Some(p) = counted(|| pacer.poll_send(now)) {
            let (size, probe) = match p {
                Paced::Media { size, probe, .. } | Paced::Padding { size, probe } => (size, probe),
            };
            counted(|| bwe.on_packet_sent(now, seq, size, probe));
            // 2 % loss, and a stretch where feedback stops long enough to overrun the history.
            let lost = seq % 50 == 7 || (12_000..12_400).contains(&ms);
            let cap = wire.len();
            if !lost && w_len < cap {
                wire[(w_head + w_len) % cap] = (now + Duration::from_millis(30), seq);
                w_len += 1;
            }
            seq = seq.wrapping_add(1);
        }
        while w_len > 0 && wire[w_head].0 <= now {
            rx.on_packet(wire[w_head].0, wire[w_head].1);
            w_head = (w_head + 1) % wire.len();
            w_len -= 1;
        }
        while let Some(n) = rx.poll_feedback(now, Ssrc(1), Ssrc(2), &mut fb) {
            for pkt in rtcp::iter(&fb[..n]).flatten() {
                if let RtcpPacket::TransportCc(t) = pkt {
                    counted(|| bwe.handle_feedback(now, &t));
                }
            }
        }
        if bwe.poll_timeout().is_some_and(|t| t <= now) {
            counted(|| bwe.handle_timeout(now));
        }
        if ms % 1000 == 0 {
            counted(|| bwe.handle_receiver_report(now, 5, Some(Duration::from_millis(60))));
        }
    }
    let _ = now;
    let allocations = COUNT.with(Cell::get);
    assert_eq!(allocations, 0, "heap operations on the per-packet path");
    assert!(
        bwe.target() > sfu::Bitrate::kbps(300),
        "the estimate moved: {:?}",
        bwe.stats()
    );
}
