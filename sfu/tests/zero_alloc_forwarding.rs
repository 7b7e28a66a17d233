//! Zero heap allocations per forwarded packet: once sessions are connected and warmed up, the
//! shard core forwards audio and video to several viewers — NACKs, RTX, reports and keyframe
//! requests included — without allocating.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Harness, IN_CORE};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_CORE.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if IN_CORE.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn forwarding_allocates_nothing_per_packet() {
    let mut h = Harness::new(1);
    let _p = h.add_publisher(0, 1);
    let viewers: Vec<usize> = (0..4).map(|_| h.add_viewer(0, 1)).collect();
    // Warm-up: connect, fill caches and maps, see every SSRC, exchange reports.
    h.run(Duration::from_secs(3));
    for &v in &viewers {
        assert!(h.peers[v].connected);
    }
    let out_before = h.cores[0].counters().rtp_out;
    let allocs_before = ALLOCS.load(Ordering::SeqCst);
    h.run(Duration::from_secs(3));
    let allocs = ALLOCS.load(Ordering::SeqCst) - allocs_before;
    let forwarded = h.cores[0].counters().rtp_out - out_before;
    println!("forwarded {forwarded} packets with {allocs} allocations");
    assert!(forwarded > 1500, "forwarded {forwarded}");
    assert_eq!(allocs, 0, "allocations on the forwarding path");
}
