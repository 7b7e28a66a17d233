//! Tests of the depacketizer, driven by a virtual clock.

#![allow(clippy::unwrap_used)] // in tests an unwrap is an assertion

use super::*;
use proptest::prelude::*;

const WAIT: Duration = Duration::from_millis(300);

/// The defaults without the start hold, so that frames come out as soon as they are complete.
fn cfg(codec: Codec) -> DepacketizerConfig {
    DepacketizerConfig {
        start_hold: Duration::ZERO,
        ..DepacketizerConfig::for_codec(codec)
    }
}

fn t0() -> Instant {
    Instant::now()
}

fn ms(base: Instant, n: u64) -> Instant {
    base + Duration::from_millis(n)
}

/// A VP8 payload: descriptor with a 7-bit picture ID, S set on the first packet, then `body`.
fn vp8(first: bool, pic: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![if first { 0x90 } else { 0x80 }, 0x80, pic & 0x7f];
    p.extend_from_slice(body);
    p
}

/// The first VP8 payload byte of a keyframe (P = 0) or an interframe (P = 1).
fn vp8_body(key: bool, fill: u8, len: usize) -> Vec<u8> {
    let mut b = vec![fill; len];
    b[0] = if key { 0x10 } else { 0x11 };
    b
}

struct Pkt {
    seq: u16,
    ts: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// A VP8 frame cut into `n` packets starting at `seq`.
fn vp8_frame(seq: u16, ts: u32, key: bool, n: usize, fill: u8) -> (Vec<Pkt>, Vec<u8>) {
    let body = vp8_body(key, fill, 10 * n);
    let pkts = body
        .chunks(10)
        .enumerate()
        .map(|(i, c)| Pkt {
            seq: seq.wrapping_add(i as u16),
            ts,
            marker: i + 1 == n,
            payload: vp8(i == 0, fill, c),
        })
        .collect();
    (pkts, body)
}

fn push(d: &mut Depacketizer, now: Instant, p: &Pkt) -> Result<(), DepacketizeError> {
    d.push(now, SeqNo(p.seq), p.ts, p.marker, &p.payload)
}

fn frames(d: &mut Depacketizer) -> Vec<Frame> {
    std::iter::from_fn(|| d.poll_frame()).collect()
}

fn vp8_dep() -> Depacketizer {
    Depacketizer::new(Codec::Vp8, cfg(Codec::Vp8)).unwrap()
}

#[test]
fn vp8_frame_is_reassembled_without_descriptors() {
    let mut d = vp8_dep();
    let now = t0();
    let (pkts, body) = vp8_frame(100, 9000, true, 3, 7);
    assert!(d.needs_keyframe(), "video starts waiting for a keyframe");
    for p in &pkts {
        push(&mut d, now, p).unwrap();
    }
    let f = frames(&mut d);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].data, body);
    assert!(f[0].keyframe);
    assert_eq!(f[0].rtp_timestamp, 9000);
    assert!(!d.needs_keyframe());
    assert_eq!(d.stats().frames, 1);
    assert_eq!(d.stats().packets, 3);
}

#[test]
fn reordered_packets_inside_the_window_still_make_the_frame() {
    let mut d = vp8_dep();
    let now = t0();
    let (pkts, body) = vp8_frame(65_534, 1, true, 4, 3);
    // Order 0, 3, 2, 1 across the sequence wrap (65534, 65535, 0, 1).
    for i in [0, 3, 2, 1] {
        push(&mut d, now, &pkts[i]).unwrap();
    }
    let f = frames(&mut d);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].data, body);
    assert_eq!(d.stats().lost, 0);
}

#[test]
fn packets_reordered_before_the_first_one_count_within_the_start_hold() {
    let mut d = Depacketizer::new(Codec::Vp8, DepacketizerConfig::for_codec(Codec::Vp8)).unwrap();
    let base = t0();
    let (pkts, body) = vp8_frame(10, 0, true, 3, 5);
    push(&mut d, base, &pkts[2]).unwrap();
    assert_eq!(d.poll_timeout(), Some(ms(base, 100)));
    push(&mut d, ms(base, 40), &pkts[0]).unwrap();
    push(&mut d, ms(base, 60), &pkts[1]).unwrap();
    assert!(
        frames(&mut d).is_empty(),
        "nothing is taken out during the hold"
    );
    d.handle_timeout(ms(base, 100));
    let f = frames(&mut d);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].data, body);
    // After the hold, the window no longer opens backwards.
    push(&mut d, ms(base, 200), &vp8_frame(5, 0, true, 1, 1).0[0]).unwrap();
    assert_eq!(d.stats().late, 1);
}

#[test]
fn duplicate_and_late_packets_are_counted_and_ignored() {
    let mut d = vp8_dep();
    let now = t0();
    let (pkts, _) = vp8_frame(10, 0, true, 3, 1);
    push(&mut d, now, &pkts[0]).unwrap();
    push(&mut d, now, &pkts[2]).unwrap();
    push(&mut d, now, &pkts[2]).unwrap();
    assert_eq!(d.stats().duplicate, 1);
    push(&mut d, now, &pkts[1]).unwrap();
    // Already used.
    push(&mut d, now, &pkts[0]).unwrap();
    assert_eq!(d.stats().late, 1);
    assert_eq!(frames(&mut d).len(), 1);
}

#[test]
fn a_missing_packet_is_waited_for_then_the_frame_dropped_and_a_keyframe_awaited() {
    let mut d = vp8_dep();
    let base = t0();
    let (k, _) = vp8_frame(0, 0, true, 2, 1);
    let (a, _) = vp8_frame(2, 3000, false, 3, 2);
    let (b, _) = vp8_frame(5, 6000, false, 1, 3);
    let (k2, k2_body) = vp8_frame(6, 9000, true, 2, 4);
    for p in &k {
        push(&mut d, base, p).unwrap();
    }
    assert_eq!(frames(&mut d).len(), 1);
    // Packet 3 (middle of frame a) is lost.
    push(&mut d, ms(base, 10), &a[0]).unwrap();
    push(&mut d, ms(base, 20), &a[2]).unwrap();
    assert_eq!(d.poll_timeout(), Some(ms(base, 20) + WAIT));
    d.handle_timeout(ms(base, 319));
    assert!(!d.needs_keyframe(), "still waiting for packet 3");
    push(&mut d, ms(base, 40), &b[0]).unwrap();
    assert!(frames(&mut d).is_empty(), "frame b waits behind the gap");
    d.handle_timeout(ms(base, 320));
    assert_eq!(d.poll_timeout(), None);
    assert!(d.needs_keyframe());
    let s = *d.stats();
    assert_eq!(s.lost, 1);
    assert_eq!(s.incomplete_frames, 1);
    // Frame b was complete but refers to what was lost.
    assert_eq!(s.awaiting_keyframe, 1);
    assert!(frames(&mut d).is_empty());
    for p in &k2 {
        push(&mut d, ms(base, 400), p).unwrap();
    }
    let f = frames(&mut d);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].data, k2_body);
    assert!(f[0].keyframe && !d.needs_keyframe());
}

#[test]
fn a_retransmission_within_the_wait_recovers_the_frame() {
    let mut d = vp8_dep();
    let base = t0();
    let (k, _) = vp8_frame(0, 0, true, 1, 1);
    let (a, body) = vp8_frame(1, 3000, false, 3, 2);
    push(&mut d, base, &k[0]).unwrap();
    push(&mut d, ms(base, 30), &a[0]).unwrap();
    push(&mut d, ms(base, 31), &a[2]).unwrap();
    d.handle_timeout(ms(base, 200));
    push(&mut d, ms(base, 250), &a[1]).unwrap();
    let f = frames(&mut d);
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].data, body);
    assert_eq!(d.stats().lost, 0);
    assert!(!d.needs_keyframe());
}

#[test]
fn a_retransmission_after_giving_up_is_late() {
    let mut d = vp8_dep();
    let base = t0();
    let (k, _) = vp8_frame(0, 0, true, 3, 1);
    push(&mut d, base, &k[0]).unwrap();
    push(&mut d, base, &k[2]).unwrap();
    d.handle_timeout(ms(base, 300));
    push(&mut d, ms(base, 301), &k[1]).unwrap();
    assert_eq!(d.stats().late, 1);
    assert_eq!(d.stats().incomplete_frames, 1);
    assert!(frames(&mut d).is_empty());
}

#[test]
fn overflowing_the_window_gives_up_without_waiting() {
    let cfg = DepacketizerConfig {
        capacity: 8,
        ..cfg(Codec::Vp8)
    };
    let mut d = Depacketizer::new(Codec::Vp8, cfg).unwrap();
    let now = t0();
    let (k, _) = vp8_frame(0, 0, true, 1, 1);
    push(&mut d, now, &k[0]).unwrap();
    // Packet 1 is lost; single-packet frames 2..=9 fill the window; 10 pushes 1 out.
    for s in 2..=10u16 {
        let (p, _) = vp8_frame(s, u32::from(s) * 3000, s == 10, 1, 2);
        push(&mut d, now, &p[0]).unwrap();
    }
    assert_eq!(d.stats().lost, 1);
    // 2..=9 were complete but follow a loss; 10 is a keyframe.
    assert_eq!(d.stats().awaiting_keyframe, 8);
    let f = frames(&mut d);
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].rtp_timestamp, 30_000);
}

#[test]
fn interframes_before_the_first_keyframe_are_dropped() {
    let mut d = vp8_dep();
    let now = t0();
    let (a, _) = vp8_frame(0, 0, false, 2, 1);
    let (k, _) = vp8_frame(2, 3000, true, 2, 2);
    for p in a.iter().chain(&k) {
        push(&mut d, now, p).unwrap();
    }
    assert_eq!(d.stats().awaiting_keyframe, 1);
    let f = frames(&mut d);
    assert_eq!(f.len(), 1);
    assert!(f[0].keyframe);
}

#[test]
fn losing_a_frames_first_packet_drops_the_rest_of_it_once() {
    let mut d = vp8_dep();
    let base = t0();
    let (k, _) = vp8_frame(0, 0, true, 1, 1);
    let (a, _) = vp8_frame(1, 3000, false, 4, 2);
    push(&mut d, base, &k[0]).unwrap();
    for p in &a[1..] {
        push(&mut d, base, p).unwrap();
    }
    d.handle_timeout(ms(base, 300));
    let s = *d.stats();
    assert_eq!((s.lost, s.incomplete_frames), (1, 1));
    assert!(d.needs_keyframe());
    assert_eq!(frames(&mut d).len(), 1);
}

#[test]
fn losing_a_whole_single_packet_frame_still_waits_for_a_keyframe() {
    let mut d = vp8_dep();
    let base = t0();
    let (k, _) = vp8_frame(0, 0, true, 1, 1);
    let (b, _) = vp8_frame(2, 6000, false, 1, 3);
    push(&mut d, base, &k[0]).unwrap();
    push(&mut d, base, &b[0]).unwrap();
    d.handle_timeout(ms(base, 300));
    assert!(d.needs_keyframe());
    assert_eq!(d.stats().awaiting_keyframe, 1);
    assert_eq!(frames(&mut d).len(), 1);
}

#[test]
fn a_frame_without_marker_ends_at_the_next_timestamp() {
    let mut d = vp8_dep();
    let now = t0();
    let (mut k, body) = vp8_frame(0, 0, true, 2, 1);
    k[1].marker = false;
    let (n, _) = vp8_frame(2, 3000, false, 1, 2);
    for p in k.iter().chain(&n) {
        push(&mut d, now, p).unwrap();
    }
    let f = frames(&mut d);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].data, body);
}

#[test]
fn padding_packets_are_skipped() {
    let mut d = vp8_dep();
    let now = t0();
    let (k, _) = vp8_frame(0, 0, true, 1, 1);
    let (n, _) = vp8_frame(3, 3000, false, 1, 2);
    push(&mut d, now, &k[0]).unwrap();
    d.push(now, SeqNo(1), 0, false, &[]).unwrap();
    d.push(now, SeqNo(2), 0, false, &[]).unwrap();
    push(&mut d, now, &n[0]).unwrap();
    assert_eq!(frames(&mut d).len(), 2);
    assert_eq!(d.stats().lost, 0);
}

#[test]
fn malformed_payloads_are_counted_and_break_their_frame() {
    let mut d = vp8_dep();
    let now = t0();
    let (k, _) = vp8_frame(0, 0, true, 3, 1);
    push(&mut d, now, &k[0]).unwrap();
    // X bit set, extension byte missing.
    assert!(matches!(
        d.push(now, SeqNo(1), 0, false, &[0x80]),
        Err(DepacketizeError::Malformed(_))
    ));
    push(&mut d, now, &k[2]).unwrap();
    let s = *d.stats();
    assert_eq!((s.malformed, s.incomplete_frames, s.lost), (1, 1, 0));
    assert!(frames(&mut d).is_empty());
    assert!(d.needs_keyframe());
}

#[test]
fn oversized_frames_are_dropped() {
    let cfg = DepacketizerConfig {
        max_frame_bytes: 25,
        ..cfg(Codec::Vp8)
    };
    let mut d = Depacketizer::new(Codec::Vp8, cfg).unwrap();
    let now = t0();
    let (k, _) = vp8_frame(0, 0, true, 3, 1);
    for p in &k {
        push(&mut d, now, p).unwrap();
    }
    assert_eq!(d.stats().oversized_frames, 1);
    assert!(frames(&mut d).is_empty());
}

#[test]
fn a_jump_back_far_behind_the_window_restarts_the_stream() {
    let mut d = vp8_dep();
    let now = t0();
    let (k, _) = vp8_frame(30_000, 0, true, 1, 1);
    push(&mut d, now, &k[0]).unwrap();
    let mut last = Vec::new();
    for i in 0..RESYNC_AFTER_LATE as u16 + 2 {
        let key = i == RESYNC_AFTER_LATE as u16 - 1;
        let (p, _) = vp8_frame(100 + i, 90_000 + u32::from(i) * 3000, key, 1, 2);
        push(&mut d, now, &p[0]).unwrap();
        last = p;
    }
    assert_eq!(d.stats().resyncs, 1);
    // The first keyframe, then the one the stream restarted at and the two after it.
    assert_eq!(frames(&mut d).len(), 4);
    assert_eq!(last[0].seq, 100 + RESYNC_AFTER_LATE as u16 + 1);
}

#[test]
fn flush_hands_out_what_is_complete_and_drops_the_open_frame() {
    let mut d = vp8_dep();
    let now = t0();
    let (k, _) = vp8_frame(0, 0, true, 1, 1);
    let (a, _) = vp8_frame(2, 3000, false, 2, 2);
    push(&mut d, now, &k[0]).unwrap();
    push(&mut d, now, &a[0]).unwrap();
    d.flush();
    let s = *d.stats();
    assert_eq!((s.lost, s.incomplete_frames), (1, 1));
    assert_eq!(frames(&mut d).len(), 1);
}

#[test]
fn opus_packets_are_frames_and_a_loss_only_delays() {
    let mut d = Depacketizer::new(Codec::Opus, cfg(Codec::Opus)).unwrap();
    let base = t0();
    assert!(!d.needs_keyframe());
    for s in [0u16, 1, 3, 4] {
        d.push(
            ms(base, u64::from(s) * 20),
            SeqNo(s),
            u32::from(s) * 960,
            s == 0,
            &[0x78, s as u8],
        )
        .unwrap();
    }
    let f = frames(&mut d);
    assert_eq!(f.len(), 2, "3 and 4 wait for 2");
    d.handle_timeout(ms(base, 60 + 300));
    let f = frames(&mut d);
    assert_eq!(
        f.iter().map(|f| f.rtp_timestamp).collect::<Vec<_>>(),
        [2880, 3840]
    );
    assert!(f.iter().all(|f| f.keyframe));
    assert_eq!(f[0].data, [0x78, 3]);
    assert!(!d.needs_keyframe());
    assert_eq!(d.stats().lost, 1);
    assert_eq!(d.stats().incomplete_frames, 0);
}

#[test]
fn unsupported_codecs_are_refused() {
    assert_eq!(
        Depacketizer::new(Codec::H264, cfg(Codec::H264)).unwrap_err(),
        DepacketizeError::UnsupportedCodec(Codec::H264)
    );
}

/// A VP9 payload in non-flexible mode with layer indices: I (7-bit picture ID), L; P, B, E as
/// given; then `body`.
fn vp9(inter: bool, b: bool, e: bool, sid: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x80 | 0x20
            | if inter { 0x40 } else { 0 }
            | if b { 0x08 } else { 0 }
            | if e { 0x04 } else { 0 },
        0x05,
        sid << 1,
        0x00,
    ];
    p.extend_from_slice(body);
    p
}

fn vp9_dep() -> Depacketizer {
    Depacketizer::new(Codec::Vp9, cfg(Codec::Vp9)).unwrap()
}

#[test]
fn vp9_spatial_layers_of_a_picture_become_one_superframe() {
    let mut d = vp9_dep();
    let now = t0();
    let l0 = [0x82u8; 30];
    let l1a = [0x86u8; 20];
    let l1b = [0x87u8; 20];
    d.push(now, SeqNo(0), 100, false, &vp9(false, true, true, 0, &l0))
        .unwrap();
    d.push(now, SeqNo(1), 100, false, &vp9(false, true, false, 1, &l1a))
        .unwrap();
    d.push(now, SeqNo(2), 100, true, &vp9(false, false, true, 1, &l1b))
        .unwrap();
    let f = frames(&mut d);
    assert_eq!(f.len(), 1);
    assert!(f[0].keyframe);
    let parts: Vec<&[u8]> = vp9_superframe::frames(&f[0].data).collect();
    assert_eq!(parts, [&l0[..], &[l1a, l1b].concat()[..]]);
}

#[test]
fn vp9_single_layer_frame_is_passed_as_is() {
    let mut d = vp9_dep();
    let now = t0();
    let body = [0x82u8, 0x49, 0x83, 0x42, 0x00];
    d.push(now, SeqNo(7), 5, true, &vp9(false, true, true, 0, &body))
        .unwrap();
    assert_eq!(frames(&mut d)[0].data, body);
}

#[test]
fn vp9_nested_superframes_are_flattened() {
    let mut d = vp9_dep();
    let now = t0();
    let hidden = [0x80u8; 10];
    let shown = [0x81u8; 12];
    let mut l0 = [&hidden[..], &shown[..]].concat();
    assert!(vp9_superframe::put_index(&mut l0, &[10, 12]));
    let l1 = [0x86u8; 9];
    d.push(now, SeqNo(0), 1, false, &vp9(false, true, true, 0, &l0))
        .unwrap();
    d.push(now, SeqNo(1), 1, true, &vp9(false, true, true, 1, &l1))
        .unwrap();
    let f = frames(&mut d);
    let parts: Vec<&[u8]> = vp9_superframe::frames(&f[0].data).collect();
    assert_eq!(parts, [&hidden[..], &shown[..], &l1[..]]);
}

#[test]
fn vp9_upper_layer_alone_after_a_picture_boundary_is_a_picture() {
    // An SFU forwarding only spatial layer 1 of an interframe (K-SVC): it starts right after the
    // previous picture's marker.
    let mut d = vp9_dep();
    let now = t0();
    d.push(
        now,
        SeqNo(0),
        0,
        true,
        &vp9(false, true, true, 0, &[0x82; 5]),
    )
    .unwrap();
    d.push(
        now,
        SeqNo(1),
        3000,
        true,
        &vp9(true, true, true, 1, &[2; 5]),
    )
    .unwrap();
    let f = frames(&mut d);
    assert_eq!(f.len(), 2);
    assert!(!f[1].keyframe);
}

#[test]
fn vp9_upper_layer_after_a_loss_is_not_taken_for_a_picture_start() {
    let mut d = vp9_dep();
    let base = t0();
    d.push(
        base,
        SeqNo(0),
        0,
        true,
        &vp9(false, true, true, 0, &[0x82; 5]),
    )
    .unwrap();
    // Seq 1 (layer 0 of picture 3000) lost; seq 2 is its layer 1.
    d.push(
        base,
        SeqNo(2),
        3000,
        true,
        &vp9(true, true, true, 1, &[2; 5]),
    )
    .unwrap();
    d.handle_timeout(ms(base, 300));
    assert_eq!(frames(&mut d).len(), 1);
    assert_eq!(d.stats().incomplete_frames, 1);
    assert!(d.needs_keyframe());
}

proptest! {
    /// Arbitrary packets (sequence numbers near each other, arbitrary payloads and timestamps)
    /// never panic, and what comes out is within what went in.
    #[test]
    fn arbitrary_packets_never_panic(
        codec in prop_oneof![Just(Codec::Vp8), Just(Codec::Vp9), Just(Codec::Opus)],
        pkts in proptest::collection::vec(
            (0u16..40, 0u32..4, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..24), 0u64..200),
            0..80,
        ),
    ) {
        let cfg = DepacketizerConfig { capacity: 16, ..cfg(codec) };
        let mut d = Depacketizer::new(codec, cfg).unwrap();
        let base = t0();
        let mut clock = 0;
        let mut bytes_in = 0usize;
        for (seq, ts, marker, payload, dt) in pkts {
            clock += dt;
            bytes_in += payload.len();
            let _ = d.push(ms(base, clock), SeqNo(seq), ts * 3000, marker, &payload);
            if let Some(t) = d.poll_timeout() {
                prop_assert!(t > ms(base, clock));
            }
        }
        d.flush();
        let mut bytes_out = 0usize;
        while let Some(f) = d.poll_frame() {
            prop_assert!(!f.data.is_empty());
            // A VP9 superframe index adds at most 2 + 4 bytes per frame.
            bytes_out += f.data.len().saturating_sub(if codec == Codec::Vp9 { 34 } else { 0 });
        }
        prop_assert!(bytes_out <= bytes_in);
    }
}

#[test]
fn vp9_keyframe_needs_the_frame_header_to_agree() {
    let mut d = vp9_dep();
    let now = t0();
    // P clear in the descriptor, but the frame header says NON_KEY (frame_type 1).
    d.push(
        now,
        SeqNo(0),
        0,
        true,
        &vp9(false, true, true, 0, &[0x86; 5]),
    )
    .unwrap();
    assert!(frames(&mut d).is_empty());
    assert_eq!(d.stats().awaiting_keyframe, 1);
}
