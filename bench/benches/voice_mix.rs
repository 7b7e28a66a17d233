//! The cost of a voice channel's Opus mix (`sfu::voice::Mixer`) per 20 ms tick, for N = 2, 5 and
//! 10 producers who all listen (N outputs, each without its own voice) plus one shared output for
//! listeners who publish nothing: N packets into the jitter buffers, N decodes, the sums, N + 1
//! limiters and encodes. One iteration is one tick of one channel; thread CPU time.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Throughput, criterion_group, criterion_main};
use sfu::TrackId;
use sfu::voice::mixer::{FRAME, SAMPLE_RATE};
use sfu::voice::{Mixer, MixerConfig};

use common::ThreadCpuTime;

type Criterion = criterion::Criterion<ThreadCpuTime>;

/// One second (50 packets) of a voice-band tone at `freq` Hz with a slow tremolo, as 20 ms Opus
/// packets at 32 kbit/s.
fn packets(freq: f32) -> Vec<Vec<u8>> {
    let mut enc = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
        .expect("an Opus encoder");
    enc.set_bitrate(opus::Bitrate::Bits(32_000))
        .expect("a valid bit rate");
    (0..50)
        .map(|f| {
            let pcm: Vec<i16> = (0..FRAME)
                .map(|i| {
                    let t = (f * FRAME + i) as f32 / SAMPLE_RATE as f32;
                    let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 3.0 * t).sin();
                    let s = (2.0 * std::f32::consts::PI * freq * t).sin()
                        + 0.3 * (2.0 * std::f32::consts::PI * 2.5 * freq * t).sin();
                    (6000.0 * env * s) as i16
                })
                .collect();
            enc.encode_vec(&pcm, 1275).expect("encodes")
        })
        .collect()
}

fn bench_mix(c: &mut Criterion) {
    let mut g = c.benchmark_group("voice_mix");
    g.throughput(Throughput::Elements(1));
    for n in [2usize, 5, 10] {
        let streams: Vec<Vec<Vec<u8>>> = (0..n).map(|i| packets(200.0 + 70.0 * i as f32)).collect();
        let mut m = Mixer::new(MixerConfig::default());
        for i in 0..n {
            m.add_input(TrackId(i as u64)).expect("input");
            m.add_output(&[TrackId(i as u64)]).expect("output");
        }
        let shared = m.add_output(&[]).expect("shared output");
        let mut k = 0usize;
        g.bench_with_input(BenchmarkId::new("tick", n), &n, |b, &n| {
            b.iter(|| {
                let ts = (k * FRAME) as u32;
                for (i, s) in streams.iter().enumerate().take(n) {
                    m.push(TrackId(i as u64), ts, &s[k % s.len()]);
                }
                k += 1;
                m.tick();
                black_box(m.output(shared));
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_mix
}
criterion_main!(benches);
