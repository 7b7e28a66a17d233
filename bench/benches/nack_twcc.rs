//! Loss recovery and congestion feedback on the packet path, per packet: the receive-side NACK
//! generator (`on_packet`, and `poll_nacks` on the shard's 10 ms tick) under loss; a viewer's
//! RTCP NACK parsed and answered from the packet cache with RTX (no SRTP: the core-level figure
//! with SRTP is in the fanout bench); and the transport-wide-cc receiver (`on_packet`, and
//! `poll_feedback` on the tick).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Throughput, criterion_group, criterion_main};
use sfu::bwe::TwccReceiver;
use sfu::io::SLOT_SIZE;
use sfu::stream::{NackGenerator, PacketCache, RetransmitLimiter};
use sfu::wire::rtcp::{self, RtcpPacket};
use sfu::wire::rtp::{self, RtpFields, RtpHeader};
use sfu::{ExtSeq, PayloadType, SeqNo, Ssrc};

use common::{ThreadCpuTime, VIDEO_PAYLOAD};

type Criterion = criterion::Criterion<ThreadCpuTime>;

/// Packets between two runs of the shard's periodic work (a 10 ms tick at 1000 packets/s).
const TICK_PACKETS: u64 = 10;
/// Virtual time between packets.
const PACKET_GAP: Duration = Duration::from_millis(1);
/// A lost packet's retransmission arrives this many packets later (about one round trip).
const RECOVERY_PACKETS: u64 = 30;

/// Deterministic loss: packet `i` is lost with probability `per_mille / 1000`.
fn lost(i: u64, per_mille: u64) -> bool {
    // splitmix64: a fixed, well-mixed hash of the index.
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z % 1000 < per_mille
}

fn bench_nack_generator(c: &mut Criterion) {
    let mut g = c.benchmark_group("nack_generator");
    g.throughput(Throughput::Elements(1));
    for per_mille in [0u64, 10, 50] {
        let mut nacker = NackGenerator::new();
        let start = Instant::now();
        let mut i = 0u64;
        let mut out = [SeqNo(0); 256];
        g.bench_function(BenchmarkId::new("packet_loss_permille", per_mille), |b| {
            b.iter(|| {
                i += 1;
                let now = start + PACKET_GAP * i as u32;
                if !lost(i, per_mille) {
                    nacker.on_packet(now, ExtSeq(i), false);
                }
                // The retransmission of a packet lost a round trip ago arrives.
                if i > RECOVERY_PACKETS && lost(i - RECOVERY_PACKETS, per_mille) {
                    nacker.on_packet(now, ExtSeq(i - RECOVERY_PACKETS), true);
                }
                if i.is_multiple_of(TICK_PACKETS) {
                    black_box(nacker.poll_nacks(now, Duration::from_millis(30), &mut out));
                }
            })
        });
        let s = nacker.stats();
        eprintln!(
            "nack_generator/{per_mille}: requested {} recovered {} given up {}",
            s.requested, s.recovered, s.given_up
        );
    }
    g.finish();
}

/// A cache of 512 video packets with extended sequence numbers `base..base + 512`.
fn filled_cache(base: u64, now: Instant) -> PacketCache {
    let mut cache = PacketCache::new(512);
    let payload = vec![0x5au8; VIDEO_PAYLOAD];
    let mut buf = vec![0u8; SLOT_SIZE];
    for s in base..base + 512 {
        let fields = RtpFields {
            marker: false,
            payload_type: PayloadType(96),
            seq: SeqNo(s as u16),
            timestamp: (s as u32) * 1000,
            ssrc: Ssrc(0x1111_0000),
            extensions: &[(1, b"0")],
        };
        let n = rtp::write_rtp(&mut buf, &fields, &payload).expect("packet fits a slot");
        assert!(cache.insert(ExtSeq(s), &buf[..n], now, false));
    }
    cache
}

/// RTCP NACK in, RTX out: parse the feedback, look each lost number up in the cache, check the
/// resend limiter, write the RTX packet into a transmit slot. Time per retransmitted packet.
fn bench_nack_answer(c: &mut Criterion) {
    let mut g = c.benchmark_group("nack_parse_answer");
    g.throughput(Throughput::Elements(1));
    let base = 1 << 16;
    let t0 = Instant::now();
    let cache = filled_cache(base, t0);
    for per_nack in [1u64, 16] {
        // NACKs for consecutive runs of `per_nack` packets, covering the whole cache.
        let nacks: Vec<Vec<u8>> = (0..512 / per_nack)
            .map(|k| {
                let lost: Vec<SeqNo> = (0..per_nack)
                    .map(|j| SeqNo((base + k * per_nack + j) as u16))
                    .collect();
                let mut buf = vec![0u8; 128];
                let n = rtcp::write_nack(&mut buf, Ssrc(1), Ssrc(0x5000_0001), &lost)
                    .expect("NACK fits");
                buf.truncate(n);
                buf
            })
            .collect();
        let mut limiter = RetransmitLimiter::new(512);
        let mut slot = vec![0u8; SLOT_SIZE];
        let mut round = 0u32;
        g.bench_function(BenchmarkId::new("per_packet", per_nack), |b| {
            b.iter_custom(|iters| {
                let packets = iters.div_ceil(per_nack) * per_nack;
                let start = common::thread_cpu_ns();
                let mut sent = 0u64;
                let mut k = 0usize;
                while sent < packets {
                    if k == 0 {
                        // A new round: past the limiter's longest resend interval.
                        round += 1;
                    }
                    let now = t0 + Duration::from_millis(200) * round;
                    for pkt in rtcp::iter(black_box(&nacks[k])) {
                        let Ok(RtcpPacket::Nack(nack)) = pkt else {
                            continue;
                        };
                        for seq in nack.lost() {
                            let ext = ExtSeq(base + u64::from(seq.0.wrapping_sub(base as u16)));
                            let Some(p) = cache.get(ext) else { continue };
                            if !limiter.allow(now, ext, Duration::from_millis(30)) {
                                continue;
                            }
                            let Ok(hdr) = RtpHeader::parse(p.data) else {
                                continue;
                            };
                            let n = rtp::write_rtx(
                                p.data,
                                &hdr,
                                &mut slot,
                                Ssrc(0x5100_0001),
                                PayloadType(101),
                                SeqNo(sent as u16),
                            )
                            .expect("slot holds the RTX packet");
                            black_box(&slot[..n]);
                            sent += 1;
                        }
                    }
                    k = (k + 1) % nacks.len();
                }
                let spent = common::thread_cpu_ns() - start;
                spent * iters / sent
            })
        });
        assert_eq!(limiter.suppressed(), 0, "every NACKed packet was answered");
    }
    g.finish();
}

fn bench_twcc(c: &mut Criterion) {
    let mut g = c.benchmark_group("twcc_receiver");
    g.throughput(Throughput::Elements(1));
    for per_mille in [0u64, 10] {
        let mut rx = TwccReceiver::default();
        let start = Instant::now();
        let mut i = 0u64;
        let mut out = [0u8; 1500];
        let mut feedback = 0u64;
        g.bench_function(BenchmarkId::new("packet_loss_permille", per_mille), |b| {
            b.iter(|| {
                i += 1;
                let now = start + PACKET_GAP * i as u32;
                if !lost(i, per_mille) {
                    rx.on_packet(now, i as u16);
                }
                if i.is_multiple_of(TICK_PACKETS) {
                    while let Some(n) = rx.poll_feedback(now, Ssrc(1), Ssrc(0x1111_0000), &mut out)
                    {
                        black_box(&out[..n]);
                        feedback += 1;
                    }
                }
            })
        });
        eprintln!("twcc_receiver/{per_mille}: {i} packets, {feedback} feedback packets");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_nack_generator, bench_nack_answer, bench_twcc
}
criterion_main!(benches);
