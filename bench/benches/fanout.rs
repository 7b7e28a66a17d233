//! 1→N fan-out through the shard core (`sfu::core::ShardCore`): one publisher, N connected
//! viewers, each ingress video packet (1200-byte payload, AES-128-GCM) decrypted, cached and
//! copied, rewritten and encrypted once per viewer. Criterion reports the time per ingress
//! packet and, as throughput, egress packets/s; the cost per egress packet is the time divided
//! by N. Also: a viewer's NACK answered from the cache with an RTX packet (SRTCP in, SRTP out).

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Throughput, criterion_group, criterion_main};
use sfu::io::{RecvMeta, SLOT_SIZE};
use sfu::wire::rtcp;
use sfu::wire::rtp::RtpHeader;
use sfu::{SeqNo, Ssrc};

use common::{Fanout, ThreadCpuTime, drain, thread_cpu_ns};

type Criterion = criterion::Criterion<ThreadCpuTime>;

/// Ingress packets prepared (encrypted, untimed) per measured chunk.
const CHUNK: usize = 64;

fn bench_fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    let cases = [1usize, 10, 100]
        .into_iter()
        .map(|n| (n, false))
        .chain([(10, true), (100, true)]);
    for (n, twcc) in cases {
        let mut f = Fanout::with_twcc(n, twcc);
        let mut bufs = vec![[0u8; SLOT_SIZE]; CHUNK];
        let mut lens = [0usize; CHUNK];
        g.throughput(Throughput::Elements(n as u64));
        // `ingress_packet_twcc`: viewers with send-side estimation (transport-wide sequence
        // number stamped, packet recorded for feedback).
        let name = if twcc {
            "ingress_packet_twcc"
        } else {
            "ingress_packet"
        };
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iters| {
                let mut spent = 0;
                let mut left = iters as usize;
                while left > 0 {
                    let k = left.min(CHUNK);
                    for i in 0..k {
                        lens[i] = f.next_packet(&mut bufs[i]);
                    }
                    let start = thread_cpu_ns();
                    for i in 0..k {
                        f.handle(&mut bufs[i][..lens[i]]);
                    }
                    spent += thread_cpu_ns() - start;
                    left -= k;
                    // About 64 packets of a 2.5 Mbit/s stream: 250 ms.
                    f.upkeep(Duration::from_millis(250));
                }
                spent
            })
        });
        let c = f.h.cores[0].counters();
        let dropped: u64 = c.drops.iter().sum();
        let reasons: Vec<String> = sfu::metrics::DropReason::ALL
            .iter()
            .filter(|r| c.drops[**r as usize] > 0)
            .map(|r| format!("{}={}", r.label(), c.drops[*r as usize]))
            .collect();
        eprintln!(
            "fanout/{name}/{n}: rtp_in {} rtp_out {} (ratio {:.2}) drops {dropped} {reasons:?}",
            c.rtp_in,
            c.rtp_out,
            c.rtp_out as f64 / c.rtp_in.max(1) as f64
        );
    }
    g.finish();
}

/// Forwards `k` packets to the single viewer and returns the sequence numbers it saw them
/// under (the SRTP header is in the clear).
fn forward_and_collect(f: &mut Fanout, k: usize, out_seqs: &mut Vec<u16>) -> Ssrc {
    out_seqs.clear();
    let mut media = Ssrc(0);
    let mut buf = [0u8; SLOT_SIZE];
    for _ in 0..k {
        let n = f.next_packet(&mut buf);
        let now = f.h.now;
        let src = f.src;
        let core = &mut f.h.cores[0];
        core.handle_datagram(now, RecvMeta { src, dst_ip: None }, &mut buf[..n]);
        while core.has_pending_transmit() {
            core.poll_transmit(now, &mut f.batch);
            for (_, d) in f.batch.iter() {
                if let Ok(h) = RtpHeader::parse(d) {
                    media = h.ssrc;
                    out_seqs.push(h.seq.0);
                }
            }
            f.batch.clear();
        }
    }
    media
}

/// A viewer NACKs packets it was forwarded, `per_nack` sequence numbers per NACK; the core
/// decrypts the SRTCP, finds each packet in the cache, and queues an encrypted RTX packet.
/// Time per retransmitted packet.
fn bench_nack_answer(c: &mut Criterion) {
    let mut g = c.benchmark_group("nack_answer");
    for per_nack in [1usize, 16] {
        let mut f = Fanout::new(1);
        let viewer = f.viewers[0];
        let vaddr = f.h.peers[viewer].addr;
        let mut seqs = Vec::with_capacity(256);
        let mut nacks: Vec<([u8; 256], usize)> = Vec::new();
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("per_packet", per_nack), |b| {
            b.iter_custom(|iters| {
                let mut spent = 0;
                let mut left = iters as usize;
                let mut answered = 0u64;
                while left > 0 {
                    // Untimed: forward a chunk, then write one NACK per `per_nack` of it.
                    let k = left.min(128).div_ceil(per_nack) * per_nack;
                    let media = forward_and_collect(&mut f, k, &mut seqs);
                    nacks.clear();
                    for group in seqs.chunks(per_nack) {
                        let lost: Vec<SeqNo> = group.iter().map(|&s| SeqNo(s)).collect();
                        let mut buf = [0u8; 256];
                        let n =
                            rtcp::write_nack(&mut buf, Ssrc(1), media, &lost).expect("NACK fits");
                        let n = f.h.peers[viewer]
                            .client
                            .protect_rtcp(&mut buf, n)
                            .expect("viewer is connected");
                        nacks.push((buf, n));
                    }
                    let before = f.h.cores[0].counters().retransmits;
                    let now = f.h.now;
                    let core = &mut f.h.cores[0];
                    let start = thread_cpu_ns();
                    for (buf, n) in nacks.iter_mut() {
                        core.handle_datagram(
                            now,
                            RecvMeta {
                                src: vaddr,
                                dst_ip: None,
                            },
                            &mut buf[..*n],
                        );
                        drain(core, now, &mut f.batch);
                    }
                    spent += thread_cpu_ns() - start;
                    answered += core.counters().retransmits - before;
                    left = left.saturating_sub(k);
                    f.upkeep(Duration::from_millis(250));
                }
                assert!(
                    answered >= iters,
                    "answered {answered} of {iters} NACKed packets"
                );
                // Report per requested packet: `answered` may exceed `iters` by the rounding.
                spent * iters / answered.max(1)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_fanout, bench_nack_answer
}
criterion_main!(benches);
