//! The borrowed RTP view (`sfu::wire::rtp`) on a 1200-byte-payload video packet with three
//! one-byte header extensions (MID, abs-send-time, transport-cc), as a browser sends it: parse,
//! the in-place header rewrite, extension-id remapping, the whole per-viewer rewrite the
//! fan-out does (copy into a slot, set SSRC/seq/timestamp/PT, remap), and RTX wrap and unwrap.

mod common;

use std::hint::black_box;

use criterion::{Throughput, criterion_group, criterion_main};
use sfu::io::SLOT_SIZE;
use sfu::wire::rtp::{self, RtpFields, RtpHeader};
use sfu::{PayloadType, SeqNo, Ssrc};

use common::{ThreadCpuTime, VIDEO_PAYLOAD};

type Criterion = criterion::Criterion<ThreadCpuTime>;

/// RTX packets unwrapped per measured chunk.
const CHUNK: usize = 64;

/// A browser-like video packet: MID (id 4), abs-send-time (id 2), transport-cc (id 3).
fn video_packet() -> Vec<u8> {
    let payload = vec![0x5au8; VIDEO_PAYLOAD];
    let fields = RtpFields {
        marker: false,
        payload_type: PayloadType(96),
        seq: SeqNo(4242),
        timestamp: 0x1234_5678,
        ssrc: Ssrc(0x1111_0000),
        extensions: &[(4, b"0"), (2, &[0x12, 0x34, 0x56]), (3, &[0x01, 0x02])],
    };
    let mut buf = vec![0u8; SLOT_SIZE];
    let n = rtp::write_rtp(&mut buf, &fields, &payload).expect("packet fits a slot");
    buf.truncate(n);
    buf
}

/// The viewer's extension numbering: MID 1, abs-send-time 5, transport-cc dropped (0).
fn ext_map() -> [u8; 256] {
    let mut m = [0u8; 256];
    m[4] = 1;
    m[2] = 5;
    m
}

fn bench_rtp(c: &mut Criterion) {
    let pkt = video_packet();
    let hdr = RtpHeader::parse(&pkt).expect("valid packet");
    let map = ext_map();
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));

    g.bench_function("parse", |b| b.iter(|| RtpHeader::parse(black_box(&pkt))));

    let mut buf = pkt.clone();
    g.bench_function("set_seq_ts_ssrc_pt", |b| {
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let out = black_box(&mut buf[..]);
            rtp::set_ssrc(out, Ssrc(0x5000_0001));
            rtp::set_seq(out, SeqNo(seq));
            rtp::set_timestamp(out, 0x0102_0304 ^ u32::from(seq));
            rtp::set_payload_type(out, PayloadType(100));
        })
    });

    // Remapping there and back with inverse maps keeps the packet intact, so every iteration does
    // the same work on the same bytes; the throughput counts both remaps.
    let mut there = [0u8; 256];
    there[4] = 1;
    there[2] = 5;
    there[3] = 6;
    let mut back = [0u8; 256];
    back[1] = 4;
    back[5] = 2;
    back[6] = 3;
    let mut buf = pkt.clone();
    g.throughput(Throughput::Elements(2));
    g.bench_function("remap_extensions_there_and_back", |b| {
        b.iter(|| {
            rtp::remap_extensions(black_box(&mut buf[..]), &hdr, &there);
            rtp::remap_extensions(black_box(&mut buf[..]), &hdr, &back);
        })
    });

    g.throughput(Throughput::Elements(1));
    let mut slot = vec![0u8; SLOT_SIZE];
    g.bench_function("forward_rewrite", |b| {
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let data = black_box(&pkt[..]);
            let n = data.len();
            slot[..n].copy_from_slice(data);
            let out = &mut slot[..n];
            rtp::set_ssrc(out, Ssrc(0x5000_0001));
            rtp::set_seq(out, SeqNo(seq));
            rtp::set_timestamp(out, 0x0102_0304);
            rtp::set_payload_type(out, PayloadType(100));
            rtp::remap_extensions(out, &hdr, &map);
            black_box(&slot);
        })
    });

    let mut out = vec![0u8; SLOT_SIZE];
    g.bench_function("write_rtx", |b| {
        b.iter(|| {
            rtp::write_rtx(
                black_box(&pkt),
                &hdr,
                &mut out,
                Ssrc(0x5100_0001),
                PayloadType(101),
                SeqNo(7),
            )
        })
    });

    let mut rtx = vec![0u8; SLOT_SIZE];
    let n = rtp::write_rtx(
        &pkt,
        &hdr,
        &mut rtx,
        Ssrc(0x5100_0001),
        PayloadType(101),
        SeqNo(7),
    )
    .expect("slot holds the RTX packet");
    rtx.truncate(n);
    let rtx_hdr = RtpHeader::parse(&rtx).expect("valid RTX packet");
    let mut copies = vec![[0u8; SLOT_SIZE]; CHUNK];
    g.bench_function("unwrap_rtx", |b| {
        // Unwrapping is destructive: fresh copies are made outside the measurement, a chunk at a
        // time, and unwrapped in place as the core does with a received RTX packet.
        b.iter_custom(|iters| {
            let mut spent = 0;
            let mut left = iters as usize;
            while left > 0 {
                let k = left.min(CHUNK);
                for c in &mut copies[..k] {
                    c[..rtx.len()].copy_from_slice(&rtx);
                }
                let start = common::thread_cpu_ns();
                for c in &mut copies[..k] {
                    black_box(rtp::unwrap_rtx(
                        &mut c[..rtx.len()],
                        &rtx_hdr,
                        Ssrc(0x1111_0000),
                        PayloadType(96),
                    ))
                    .expect("valid RTX packet");
                }
                spent += common::thread_cpu_ns() - start;
                left -= k;
            }
            spent
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_rtp
}
criterion_main!(benches);
