//! SRTP benchmarks for 1200-byte RTP payloads: Ringcast's in-place `SrtpContext` against
//! webrtc-srtp, and the candidate crypto backends (aws-lc-rs, ring, RustCrypto) doing exactly the
//! per-packet work of each profile. The numbers are recorded in docs/adr/0003-srtp-crypto.md.

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sfu::srtp::{SrtpContext, SrtpProfile};
use webrtc_srtp::context::Context as Oracle;
use webrtc_srtp::option::srtp_replay_protection;
use webrtc_srtp::protection_profile::ProtectionProfile as OracleProfile;

const PAYLOAD: usize = 1200;
const HEADER: usize = 12;
const KEY: [u8; 16] = [7; 16];

fn rtp_header(seq: u16) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0] = 0x80;
    h[1] = 96;
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&90_000u32.to_be_bytes());
    h[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    h
}

/// CPU time of the benchmarking thread (CLOCK_THREAD_CPUTIME_ID) instead of wall time: the
/// build machine is shared, and time spent preempted by other processes must not count.
/// On an idle machine the two agree for these CPU-bound loops.
#[derive(Debug)]
pub struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
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

/// The per-packet work of each profile, implemented on each candidate backend.
mod backends {
    use super::*;

    pub fn gcm_nonce(seq: u16) -> [u8; 12] {
        let mut n = [0x5au8; 12];
        n[10] ^= (seq >> 8) as u8;
        n[11] ^= seq as u8;
        n
    }

    pub fn cm_iv(seq: u16) -> [u8; 16] {
        let mut iv = [0x5au8; 16];
        iv[12] ^= (seq >> 8) as u8;
        iv[13] ^= seq as u8;
        iv[14] = 0;
        iv[15] = 0;
        iv
    }

    pub struct RingGcm(pub ring::aead::LessSafeKey);
    impl RingGcm {
        pub fn new() -> Self {
            let k =
                ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &KEY).expect("16-byte key");
            RingGcm(ring::aead::LessSafeKey::new(k))
        }
        pub fn seal(&self, pkt: &mut [u8], seq: u16) {
            let (hdr, rest) = pkt.split_at_mut(HEADER);
            let (payload, tag_out) = rest.split_at_mut(PAYLOAD);
            let nonce = ring::aead::Nonce::assume_unique_for_key(gcm_nonce(seq));
            let tag = self
                .0
                .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(&*hdr), payload)
                .expect("seal");
            tag_out.copy_from_slice(tag.as_ref());
        }
        pub fn open(&self, pkt: &mut [u8], seq: u16) -> bool {
            let (hdr, rest) = pkt.split_at_mut(HEADER);
            let (payload, tag) = rest.split_at_mut(PAYLOAD);
            let nonce = ring::aead::Nonce::assume_unique_for_key(gcm_nonce(seq));
            self.0
                .open_in_place_separate_tag(
                    nonce,
                    ring::aead::Aad::from(&*hdr),
                    ring::aead::Tag::try_from(&*tag).expect("16"),
                    payload,
                    0..,
                )
                .is_ok()
        }
    }

    pub struct AwsGcm(pub aws_lc_rs::aead::LessSafeKey);
    impl AwsGcm {
        pub fn new() -> Self {
            let k = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, &KEY)
                .expect("16-byte key");
            AwsGcm(aws_lc_rs::aead::LessSafeKey::new(k))
        }
        pub fn seal(&self, pkt: &mut [u8], seq: u16) {
            let (hdr, rest) = pkt.split_at_mut(HEADER);
            let (payload, tag_out) = rest.split_at_mut(PAYLOAD);
            let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key(gcm_nonce(seq));
            let tag = self
                .0
                .seal_in_place_separate_tag(nonce, aws_lc_rs::aead::Aad::from(&*hdr), payload)
                .expect("seal");
            tag_out.copy_from_slice(tag.as_ref());
        }
        pub fn open(&self, pkt: &mut [u8], seq: u16) -> bool {
            let (hdr, rest) = pkt.split_at_mut(HEADER);
            let (payload, tag) = rest.split_at_mut(PAYLOAD);
            let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key(gcm_nonce(seq));
            self.0
                .open_in_place_separate_tag(nonce, aws_lc_rs::aead::Aad::from(&*hdr), tag, payload)
                .is_ok()
        }
    }

    pub struct RustCryptoGcm(pub aes_gcm::Aes128Gcm);
    impl RustCryptoGcm {
        pub fn new() -> Self {
            use aes_gcm::KeyInit;
            RustCryptoGcm(aes_gcm::Aes128Gcm::new(&KEY.into()))
        }
        pub fn seal(&self, pkt: &mut [u8], seq: u16) {
            use aes_gcm::AeadInPlace;
            let (hdr, rest) = pkt.split_at_mut(HEADER);
            let (payload, tag_out) = rest.split_at_mut(PAYLOAD);
            let tag = self
                .0
                .encrypt_in_place_detached(&gcm_nonce(seq).into(), hdr, payload)
                .expect("seal");
            tag_out.copy_from_slice(&tag);
        }
        pub fn open(&self, pkt: &mut [u8], seq: u16) -> bool {
            use aes_gcm::AeadInPlace;
            let (hdr, rest) = pkt.split_at_mut(HEADER);
            let (payload, tag) = rest.split_at_mut(PAYLOAD);
            let tag = aes_gcm::Tag::clone_from_slice(tag);
            self.0
                .decrypt_in_place_detached(&gcm_nonce(seq).into(), hdr, payload, &tag)
                .is_ok()
        }
    }

    /// AES-128 in counter mode, applied in place with a given 16-byte IV.
    pub trait Ctr {
        fn apply(&self, iv: [u8; 16], data: &mut [u8]);
    }
    /// HMAC-SHA1 over two slices, truncated to 80 bits.
    pub trait Mac {
        fn tag(&self, a: &[u8], b: &[u8]) -> [u8; 10];
    }

    pub struct AwsCtr(aws_lc_rs::cipher::EncryptingKey);
    impl AwsCtr {
        pub fn new() -> Self {
            let k = aws_lc_rs::cipher::UnboundCipherKey::new(&aws_lc_rs::cipher::AES_128, &KEY)
                .expect("16-byte key");
            AwsCtr(aws_lc_rs::cipher::EncryptingKey::ctr(k).expect("ctr"))
        }
    }
    impl Ctr for AwsCtr {
        fn apply(&self, iv: [u8; 16], data: &mut [u8]) {
            let ctx = aws_lc_rs::cipher::EncryptionContext::Iv128(iv.into());
            self.0.less_safe_encrypt(data, ctx).expect("ctr");
        }
    }

    /// Encrypt-only key schedule, borrowed per packet (no copy of the round keys).
    pub struct RustCryptoCtr(aes::Aes128Enc);
    impl RustCryptoCtr {
        pub fn new() -> Self {
            use aes::cipher::KeyInit;
            RustCryptoCtr(aes::Aes128Enc::new(&KEY.into()))
        }
    }
    impl Ctr for RustCryptoCtr {
        fn apply(&self, iv: [u8; 16], data: &mut [u8]) {
            use ctr::cipher::{InnerIvInit, StreamCipher};
            let core = ctr::CtrCore::<&aes::Aes128Enc, ctr::flavors::Ctr32BE>::inner_iv_init(
                &self.0,
                &iv.into(),
            );
            let mut c = ctr::cipher::StreamCipherCoreWrapper::from_core(core);
            c.apply_keystream(data);
        }
    }

    /// The same, cloning a full (encrypt + decrypt) `Aes128` schedule per packet, as
    /// webrtc-srtp does: shows what the copy costs.
    pub struct RustCryptoCtrClone(aes::Aes128);
    impl RustCryptoCtrClone {
        pub fn new() -> Self {
            use aes::cipher::KeyInit;
            RustCryptoCtrClone(aes::Aes128::new(&KEY.into()))
        }
    }
    impl Ctr for RustCryptoCtrClone {
        fn apply(&self, iv: [u8; 16], data: &mut [u8]) {
            use ctr::cipher::{InnerIvInit, StreamCipher};
            let core = ctr::CtrCore::<aes::Aes128, ctr::flavors::Ctr32BE>::inner_iv_init(
                self.0.clone(),
                &iv.into(),
            );
            let mut c = ctr::Ctr32BE::from_core(core);
            c.apply_keystream(data);
        }
    }

    pub struct AwsMac(aws_lc_rs::hmac::Key);
    impl AwsMac {
        pub fn new() -> Self {
            AwsMac(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                &[9; 20],
            ))
        }
    }
    impl Mac for AwsMac {
        fn tag(&self, a: &[u8], b: &[u8]) -> [u8; 10] {
            let mut c = aws_lc_rs::hmac::Context::with_key(&self.0);
            c.update(a);
            c.update(b);
            let mut t = [0u8; 10];
            t.copy_from_slice(&c.sign().as_ref()[..10]);
            t
        }
    }

    pub struct RingMac(ring::hmac::Key);
    impl RingMac {
        pub fn new() -> Self {
            RingMac(ring::hmac::Key::new(
                ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                &[9; 20],
            ))
        }
    }
    impl Mac for RingMac {
        fn tag(&self, a: &[u8], b: &[u8]) -> [u8; 10] {
            let mut c = ring::hmac::Context::with_key(&self.0);
            c.update(a);
            c.update(b);
            let mut t = [0u8; 10];
            t.copy_from_slice(&c.sign().as_ref()[..10]);
            t
        }
    }

    pub struct RustCryptoMac(hmac::Hmac<sha1::Sha1>);
    impl RustCryptoMac {
        pub fn new() -> Self {
            use hmac::Mac as _;
            RustCryptoMac(
                hmac::Hmac::<sha1::Sha1>::new_from_slice(&[9; 20]).expect("any key length"),
            )
        }
    }
    impl Mac for RustCryptoMac {
        fn tag(&self, a: &[u8], b: &[u8]) -> [u8; 10] {
            use hmac::Mac as _;
            let mut c = self.0.clone();
            c.update(a);
            c.update(b);
            let mut t = [0u8; 10];
            t.copy_from_slice(&c.finalize().into_bytes()[..10]);
            t
        }
    }

    /// AES-CM + HMAC-SHA1-80 protect: encrypt the payload, then tag header+payload+ROC.
    pub fn cm_protect(ctr: &impl Ctr, mac: &impl Mac, pkt: &mut [u8], seq: u16) {
        ctr.apply(cm_iv(seq), &mut pkt[HEADER..HEADER + PAYLOAD]);
        let t = mac.tag(&pkt[..HEADER + PAYLOAD], &0u32.to_be_bytes());
        pkt[HEADER + PAYLOAD..].copy_from_slice(&t);
    }
    /// AES-CM + HMAC-SHA1-80 unprotect: verify the tag, then decrypt.
    pub fn cm_unprotect(ctr: &impl Ctr, mac: &impl Mac, pkt: &mut [u8], seq: u16) -> bool {
        let t = mac.tag(&pkt[..HEADER + PAYLOAD], &0u32.to_be_bytes());
        if t[..] != pkt[HEADER + PAYLOAD..] {
            return false;
        }
        ctr.apply(cm_iv(seq), &mut pkt[HEADER..HEADER + PAYLOAD]);
        true
    }
}

fn bench_backends(c: &mut Criterion<ThreadCpuTime>) {
    use backends::*;
    let mut g = c.benchmark_group("srtp_backend");
    g.throughput(Throughput::Bytes(PAYLOAD as u64));

    let mut pkt = vec![0u8; HEADER + PAYLOAD + 16];
    pkt[..HEADER].copy_from_slice(&rtp_header(1));

    macro_rules! gcm {
        ($name:literal, $k:expr) => {{
            let k = $k;
            g.bench_function(concat!("gcm_protect/", $name), |b| {
                b.iter(|| k.seal(black_box(&mut pkt), 1))
            });
            k.seal(&mut pkt, 1);
            let sealed = pkt.clone();
            g.bench_function(concat!("gcm_unprotect/", $name), |b| {
                b.iter(|| {
                    pkt.copy_from_slice(&sealed);
                    assert!(k.open(black_box(&mut pkt), 1));
                })
            });
        }};
    }
    gcm!("aws-lc-rs", AwsGcm::new());
    gcm!("ring", RingGcm::new());
    gcm!("rustcrypto", RustCryptoGcm::new());

    let mut pkt = vec![0u8; HEADER + PAYLOAD + 10];
    pkt[..HEADER].copy_from_slice(&rtp_header(1));
    macro_rules! cm {
        ($name:literal, $ctr:expr, $mac:expr) => {{
            let (ctr, mac) = ($ctr, $mac);
            g.bench_function(concat!("cm_protect/", $name), |b| {
                b.iter(|| cm_protect(&ctr, &mac, black_box(&mut pkt), 1))
            });
            cm_protect(&ctr, &mac, &mut pkt, 1);
            let sealed = pkt.clone();
            g.bench_function(concat!("cm_unprotect/", $name), |b| {
                b.iter(|| {
                    pkt.copy_from_slice(&sealed);
                    assert!(cm_unprotect(&ctr, &mac, black_box(&mut pkt), 1));
                })
            });
        }};
    }
    // The two halves of AES-CM + HMAC-SHA1-80 alone.
    let mut data = vec![0u8; HEADER + PAYLOAD];
    for (name, ctr) in [
        ("aws-lc-rs", Box::new(AwsCtr::new()) as Box<dyn Ctr>),
        ("rustcrypto", Box::new(RustCryptoCtr::new())),
        ("rustcrypto-cloned-key", Box::new(RustCryptoCtrClone::new())),
    ] {
        g.bench_function(format!("aes_ctr_only/{name}"), |b| {
            b.iter(|| ctr.apply(cm_iv(1), black_box(&mut data[HEADER..])))
        });
    }
    for (name, mac) in [
        ("aws-lc-rs", Box::new(AwsMac::new()) as Box<dyn Mac>),
        ("ring", Box::new(RingMac::new())),
        ("rustcrypto", Box::new(RustCryptoMac::new())),
    ] {
        g.bench_function(format!("hmac_sha1_only/{name}"), |b| {
            b.iter(|| mac.tag(black_box(&data), &[0; 4]))
        });
    }
    cm!("aws-lc-rs", AwsCtr::new(), AwsMac::new());
    cm!("rustcrypto", RustCryptoCtr::new(), RustCryptoMac::new());
    cm!(
        "rustcrypto-cloned-key",
        RustCryptoCtrClone::new(),
        RustCryptoMac::new()
    );
    cm!(
        "aws-lc-rs-ctr+rustcrypto-hmac",
        AwsCtr::new(),
        RustCryptoMac::new()
    );
    cm!(
        "rustcrypto-ctr+aws-lc-rs-hmac",
        RustCryptoCtr::new(),
        AwsMac::new()
    );
    cm!(
        "rustcrypto-ctr+ring-hmac",
        RustCryptoCtr::new(),
        RingMac::new()
    );
    g.finish();
}

const PROFILES: [(&str, SrtpProfile); 2] = [
    ("aead_aes_128_gcm", SrtpProfile::AeadAes128Gcm),
    ("aes_cm_128_hmac_sha1_80", SrtpProfile::Aes128CmHmacSha1_80),
];

fn oracle_profile(p: SrtpProfile) -> OracleProfile {
    match p {
        SrtpProfile::AeadAes128Gcm => OracleProfile::AeadAes128Gcm,
        SrtpProfile::Aes128CmHmacSha1_80 => OracleProfile::Aes128CmHmacSha1_80,
    }
}

fn master(p: SrtpProfile) -> (Vec<u8>, Vec<u8>) {
    (
        (0..p.key_len() as u8).collect(),
        (0..p.salt_len() as u8).map(|i| i ^ 0xa5).collect(),
    )
}

fn ours(p: SrtpProfile) -> SrtpContext {
    let (k, s) = master(p);
    SrtpContext::new(p, &k, &s).expect("valid key")
}

fn oracle(p: SrtpProfile, replay_window: Option<usize>) -> Oracle {
    let (k, s) = master(p);
    Oracle::new(
        &k,
        &s,
        oracle_profile(p),
        replay_window.map(srtp_replay_protection),
        None,
    )
    .expect("valid key")
}

/// A 1200-byte-payload RTP packet with `room` spare bytes for the tag.
fn rtp_packet(seq: u16, room: usize) -> Vec<u8> {
    let mut p = rtp_header(seq).to_vec();
    p.extend((0..PAYLOAD).map(|i| i as u8));
    p.resize(HEADER + PAYLOAD + room, 0);
    p
}

/// Packets unprotected per timed chunk: each needs a fresh index (replay protection), so a
/// chunk is protected untimed and then unprotected timed. 64 packets stay within L2.
const CHUNK: usize = 64;

fn bench_srtp(c: &mut Criterion<ThreadCpuTime>) {
    for (name, profile) in PROFILES {
        let mut g = c.benchmark_group(format!("srtp/{name}"));
        g.throughput(Throughput::Bytes(PAYLOAD as u64));
        let room = profile.rtp_overhead();

        let mut tx = ours(profile);
        let mut buf = rtp_packet(0, room);
        let mut seq = 0u16;
        g.bench_function("protect/ringcast", |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                black_box(
                    tx.protect_rtp(black_box(&mut buf), HEADER + PAYLOAD)
                        .expect("protect"),
                )
            })
        });

        let mut tx = oracle(profile, None);
        let mut plain = rtp_packet(0, 0);
        let mut seq = 0u16;
        g.bench_function("protect/webrtc-srtp", |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                plain[2..4].copy_from_slice(&seq.to_be_bytes());
                black_box(tx.encrypt_rtp(black_box(&plain)).expect("protect"))
            })
        });

        let (mut tx, mut rx) = (ours(profile), ours(profile));
        let mut chunk: Vec<Vec<u8>> = (0..CHUNK).map(|_| rtp_packet(0, room)).collect();
        let mut seq = 0u16;
        g.bench_function("unprotect/ringcast", |b| {
            b.iter_custom(|iters| {
                let mut spent = 0;
                let mut left = iters as usize;
                while left > 0 {
                    let n = left.min(CHUNK);
                    for p in &mut chunk[..n] {
                        seq = seq.wrapping_add(1);
                        p.copy_from_slice(&rtp_packet(seq, room));
                        tx.protect_rtp(p, HEADER + PAYLOAD).expect("protect");
                    }
                    let start = thread_cpu_ns();
                    for p in &mut chunk[..n] {
                        black_box(rx.unprotect_rtp(black_box(p)).expect("unprotect"));
                    }
                    spent += thread_cpu_ns() - start;
                    left -= n;
                }
                spent
            })
        });

        let (mut tx, mut rx) = (oracle(profile, None), oracle(profile, Some(64)));
        let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(CHUNK);
        let mut seq = 0u16;
        g.bench_function("unprotect/webrtc-srtp", |b| {
            b.iter_custom(|iters| {
                let mut spent = 0;
                let mut left = iters as usize;
                while left > 0 {
                    let n = left.min(CHUNK);
                    chunk.clear();
                    for _ in 0..n {
                        seq = seq.wrapping_add(1);
                        chunk.push(
                            tx.encrypt_rtp(&rtp_packet(seq, 0))
                                .expect("protect")
                                .to_vec(),
                        );
                    }
                    let start = thread_cpu_ns();
                    for p in &chunk {
                        black_box(rx.decrypt_rtp(black_box(p)).expect("unprotect"));
                    }
                    spent += thread_cpu_ns() - start;
                    left -= n;
                }
                spent
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench_srtp, bench_backends
}
criterion_main!(benches);
