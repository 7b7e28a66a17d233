//! The video source's shape: bitrate, keyframe spacing, packet sizes, payload format.

use super::*;
use sfu::wire::codec::vp8;

/// Runs a source for `secs` of virtual time, returning the frames.
fn run(cfg: VideoConfig, secs: u64) -> Vec<Frame> {
    let t0 = Instant::now();
    let mut v = VideoSource::new(cfg, t0, 7);
    let mut frames = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(secs) {
        while let Some(f) = v.poll_frame(now) {
            frames.push(f);
        }
        now += Duration::from_millis(1);
    }
    frames
}

#[test]
fn bitrate_is_within_ten_percent_of_the_target_over_ten_seconds() {
    for bps in [300_000u64, 1_000_000, 2_500_000, 6_000_000] {
        let cfg = VideoConfig {
            bitrate_bps: bps,
            ..VideoConfig::default()
        };
        let frames = run(cfg, 10);
        assert_eq!(frames.len(), 300, "30 fps for 10 s");
        let bits: usize = frames.iter().map(|f| f.size * 8).sum();
        let rate = bits as f64 / 10.0;
        let err = (rate - bps as f64).abs() / bps as f64;
        assert!(
            err < 0.10,
            "{bps} bps target, got {rate:.0} ({:.1} %)",
            err * 100.0
        );
    }
}

#[test]
fn keyframes_come_every_interval_and_are_larger() {
    let cfg = VideoConfig::default();
    let frames = run(cfg, 10);
    let keys: Vec<u64> = frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.index)
        .collect();
    assert_eq!(keys, vec![0, 90, 180, 270], "every 3 s at 30 fps");
    let key_mean = frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.size)
        .sum::<usize>()
        / keys.len();
    let inter: Vec<usize> = frames
        .iter()
        .filter(|f| !f.keyframe)
        .map(|f| f.size)
        .collect();
    let inter_mean = inter.iter().sum::<usize>() / inter.len();
    assert!(
        key_mean > 3 * inter_mean,
        "keyframes {key_mean} B, interframes {inter_mean} B"
    );
}

#[test]
fn a_keyframe_request_makes_the_next_frame_a_keyframe_and_restarts_the_interval() {
    let t0 = Instant::now();
    let mut v = VideoSource::new(VideoConfig::default(), t0, 1);
    let mut keys = Vec::new();
    for i in 0..200u64 {
        if i == 40 {
            v.request_keyframe();
        }
        let f = v
            .poll_frame(t0 + Duration::from_nanos(i * 1_000_000_000 / 30))
            .unwrap();
        if f.keyframe {
            keys.push(f.index);
        }
    }
    assert_eq!(keys, vec![0, 40, 130]);
}

#[test]
fn frames_follow_the_clock_with_ninety_khz_timestamps() {
    let frames = run(VideoConfig::default(), 1);
    assert_eq!(frames.len(), 30);
    for w in frames.windows(2) {
        assert_eq!(w[1].rtp_ts - w[0].rtp_ts, 3000);
        let gap = w[1].due - w[0].due;
        assert!(gap >= Duration::from_micros(33_333) && gap <= Duration::from_micros(33_334));
    }
}

#[test]
fn a_late_caller_skips_frames_instead_of_bursting_them() {
    let t0 = Instant::now();
    let mut v = VideoSource::new(VideoConfig::default(), t0, 1);
    assert!(v.poll_frame(t0).is_some());
    let mut n = 0;
    while v.poll_frame(t0 + Duration::from_secs(2)).is_some() {
        n += 1;
    }
    assert!(n <= 6, "caught up {n} frames at once");
    assert!(v.frames_skipped() > 50);
}

#[test]
fn packets_split_frames_evenly_under_the_cap() {
    for (size, cap) in [
        (100usize, 1150usize),
        (1150, 1150),
        (1151, 1150),
        (25_000, 1150),
        (7, 1150),
    ] {
        let mut p = FramePacketizer::new(size, cap);
        let mut total = 0;
        let mut lens = Vec::new();
        while let Some(c) = p.next_chunk() {
            assert!(c.len <= cap);
            assert_eq!(c.first, lens.is_empty());
            total += c.len;
            lens.push(c.len);
            assert_eq!(c.last, p.is_done());
        }
        assert_eq!(total, size);
        assert_eq!(lens.len(), size.div_ceil(cap).max(1));
        let (min, max) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
        assert!(max - min <= 1, "{lens:?}");
    }
}

#[test]
fn vp8_payloads_mark_frame_starts_and_keyframes_and_carry_the_tag() {
    let tag = Tag {
        send_ns: 99,
        seq: 3,
        layer: Some(2),
    };
    let mut buf = [0u8; 1500];
    let first = Chunk {
        len: 600,
        first: true,
        last: false,
    };
    let n = write_vp8_payload(&mut buf, first, true, 0x1234, 5000, tag).unwrap();
    assert_eq!(n, DESCRIPTOR_LEN + 600);
    assert!(vp8::is_keyframe_start(&buf[..n]));
    let d = vp8::Vp8Descriptor::parse(&buf[..n]).unwrap();
    assert_eq!(d.picture_id, Some(0x1234));
    assert_eq!(Tag::read_tail(&buf[..n]), Some(tag));

    let n = write_vp8_payload(&mut buf, first, false, 1, 5000, tag).unwrap();
    assert!(vp8::is_frame_start(&buf[..n]));
    assert!(!vp8::is_keyframe_start(&buf[..n]));

    let middle = Chunk {
        len: 600,
        first: false,
        last: true,
    };
    let n = write_vp8_payload(&mut buf, middle, true, 1, 5000, tag).unwrap();
    assert!(!vp8::is_frame_start(&buf[..n]));
    assert_eq!(Tag::read_tail(&buf[..n]), Some(tag));
    assert!(write_vp8_payload(&mut buf[..100], middle, true, 1, 5000, tag).is_none());
}
