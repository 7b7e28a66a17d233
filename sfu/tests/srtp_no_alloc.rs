//! Proves that SRTP/SRTCP protect and unprotect never touch the heap once a context is built:
//! a counting global allocator watches thousands of packets of both profiles, including
//! sequence wraps, new SSRCs, replays and forged packets.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sfu::srtp::{ReplayKind, SrtpError, SrtpProfile, SrtpSession};

/// Counts heap operations made by the current thread while counting is switched on.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let on = COUNTING.try_with(Cell::get).unwrap_or(false);
    if on {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to the system allocator unchanged; counting only touches
// const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
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
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` with counting on and returns how many heap operations it made.
fn heap_ops_during(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

const PAYLOAD: usize = 1200;
const BUF: usize = 1500;

/// Writes an RTP packet with a 12-byte header and a one-word header extension into `buf`.
fn write_rtp(buf: &mut [u8; BUF], ssrc: u32, seq: u16) -> usize {
    buf[0] = 0x90;
    buf[1] = 96;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..20].copy_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x42, 0, 0]);
    for (i, b) in buf[20..20 + PAYLOAD].iter_mut().enumerate() {
        *b = i as u8 ^ seq as u8;
    }
    20 + PAYLOAD
}

/// Writes a receiver report from `ssrc` into `buf`.
fn write_rtcp(buf: &mut [u8; BUF], ssrc: u32) -> usize {
    buf[..4].copy_from_slice(&[0x81, 201, 0, 7]);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8..32].fill(0x5c);
    32
}

fn keying_material(profile: SrtpProfile) -> Vec<u8> {
    (0..profile.keying_material_len())
        .map(|i| (i * 37 + 11) as u8)
        .collect()
}

#[test]
fn counting_allocator_sees_allocations() {
    // Guards the test below against a counter that cannot move.
    let ops = heap_ops_during(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
        std::hint::black_box(&v);
    });
    assert!(ops >= 2, "alloc + dealloc counted, got {ops}");
}

#[test]
fn protect_and_unprotect_never_allocate() {
    for profile in [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80] {
        let material = keying_material(profile);
        let mut client =
            SrtpSession::from_dtls_keying_material(profile, &material, true).expect("valid");
        let mut server =
            SrtpSession::from_dtls_keying_material(profile, &material, false).expect("valid");
        let mut buf = Box::new([0u8; BUF]);
        let mut replay = Box::new([0u8; BUF]);
        let mut forged = Box::new([0u8; BUF]);

        // Warm up: one packet each way on the main SSRC (first use of every code path).
        let len = write_rtp(&mut buf, 1, 65_000);
        let n = client.tx.protect_rtp(&mut buf[..], len).expect("protect");
        server.rx.unprotect_rtp(&mut buf[..n]).expect("unprotect");
        let len = write_rtcp(&mut buf, 1);
        let n = client.tx.protect_rtcp(&mut buf[..], len).expect("protect");
        server.rx.unprotect_rtcp(&mut buf[..n]).expect("unprotect");

        let mut packets = 0u64;
        let ops = heap_ops_during(|| {
            // 5000 packets on the main SSRC, crossing a sequence wrap.
            for i in 1..=5000u16 {
                let seq = 65_000u16.wrapping_add(i);
                let len = write_rtp(&mut buf, 1, seq);
                let n = client.tx.protect_rtp(&mut buf[..], len).expect("protect");
                replay[..n].copy_from_slice(&buf[..n]);
                assert_eq!(server.rx.unprotect_rtp(&mut buf[..n]), Ok(len));
                packets += 1;
                if i % 100 == 0 {
                    // A replay, a forged tag, and SRTCP each way.
                    let r = server.rx.unprotect_rtp(&mut replay[..n]);
                    assert_eq!(r, Err(SrtpError::Replay(ReplayKind::Duplicate)));
                    forged[..n].copy_from_slice(&replay[..n]);
                    forged[n - 1] ^= 1;
                    let r = server.rx.unprotect_rtp(&mut forged[..n]);
                    assert!(matches!(
                        r,
                        Err(SrtpError::Authentication | SrtpError::Replay(_))
                    ));
                    let len = write_rtcp(&mut buf, 1);
                    let n = client.tx.protect_rtcp(&mut buf[..], len).expect("protect");
                    assert_eq!(server.rx.unprotect_rtcp(&mut buf[..n]), Ok(len));
                    let len = write_rtcp(&mut buf, 2);
                    let n = server.tx.protect_rtcp(&mut buf[..], len).expect("protect");
                    assert_eq!(client.rx.unprotect_rtcp(&mut buf[..n]), Ok(len));
                    packets += 3;
                }
            }
            // New SSRCs on both sides: their state goes into the reserved tables.
            for ssrc in 100..140u32 {
                let len = write_rtp(&mut buf, ssrc, 7);
                let n = server.tx.protect_rtp(&mut buf[..], len).expect("protect");
                assert_eq!(client.rx.unprotect_rtp(&mut buf[..n]), Ok(len));
                // A forged packet from an unknown SSRC is refused without creating state.
                let len = write_rtp(&mut forged, ssrc + 1000, 7);
                forged[len..len + profile.rtp_overhead()].fill(0);
                let r = client
                    .rx
                    .unprotect_rtp(&mut forged[..len + profile.rtp_overhead()]);
                assert_eq!(r, Err(SrtpError::Authentication));
                packets += 2;
            }
        });
        assert!(packets > 5000);
        assert_eq!(
            ops, 0,
            "{profile:?}: {ops} heap operations over {packets} packets"
        );
    }
}
