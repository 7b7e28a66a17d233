//! Tests of the recorder: RTP in, a WebM file out, read back with the test EBML reader.

#![allow(clippy::unwrap_used)] // in tests an unwrap is an assertion

use std::io::Cursor;
use std::time::Duration;

use sfu::wire::rtp::{RtpFields, write_rtp};
use sfu::{PayloadType, SeqNo, Ssrc};

use super::*;
use crate::recording::ebml::id;
use crate::recording::ebml_reader::{Parsed, find, find_all};

fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let f = RtpFields {
        marker,
        payload_type: PayloadType(96),
        seq: SeqNo(seq),
        timestamp: ts,
        ssrc: Ssrc(7),
        extensions: &[],
    };
    let mut buf = vec![0u8; 12 + payload.len()];
    let n = write_rtp(&mut buf, &f, payload).unwrap();
    buf.truncate(n);
    buf
}

/// A one-packet VP8 frame: minimal descriptor (S, PID 0) and a frame header; keyframes carry
/// the start code and a 320 x 240 size.
fn vp8_payload(key: bool) -> Vec<u8> {
    if key {
        vec![
            0x10, 0x50, 0x2d, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0x00,
        ]
    } else {
        vec![0x10, 0x51, 0x2d, 0x00, 0x00, 0x00]
    }
}

fn recorder() -> Recorder<Cursor<Vec<u8>>> {
    Recorder::new(
        Cursor::new(Vec::new()),
        &[TrackSpec::video(Codec::Vp8), TrackSpec::opus(2)],
    )
    .unwrap()
}

fn at(base: Instant, ms: u64) -> Instant {
    base + Duration::from_millis(ms)
}

#[test]
fn tracks_are_aligned_by_the_arrival_of_their_first_packet() {
    let mut r = recorder();
    let base = Instant::now();
    // Audio starts at 0 with timestamp 5000; video 200 ms later with an unrelated timestamp
    // that wraps around 32 bits during the recording.
    let v0 = u32::MAX - 3000 * 5;
    for i in 0..50u64 {
        let now = at(base, i * 20);
        r.handle_rtp(
            1,
            now,
            &rtp(i as u16, 5000 + i as u32 * 960, false, &[0xf8, 1, 2]),
        )
        .unwrap();
        if i * 20 >= 200 && (i * 20 - 200) % 40 == 0 {
            let n = (i * 20 - 200) / 40;
            let ts = v0.wrapping_add(n as u32 * 3600);
            r.handle_rtp(0, now, &rtp(100 + n as u16, ts, true, &vp8_payload(n == 0)))
                .unwrap();
        }
    }
    let (c, s) = r.finish().unwrap();
    let file = c.into_inner();
    let p = Parsed::new(&file);
    let blocks = p.blocks();
    let video: Vec<i64> = blocks.iter().filter(|b| b.0 == 1).map(|b| b.1).collect();
    let audio: Vec<i64> = blocks.iter().filter(|b| b.0 == 2).map(|b| b.1).collect();
    assert_eq!(audio.len(), 50);
    assert_eq!(audio[..3], [0, 20, 40]);
    // Video every 40 ms from 200 ms, across the timestamp wrap.
    assert_eq!(video.len(), 20);
    assert!(
        video
            .iter()
            .enumerate()
            .all(|(n, &t)| t == 200 + 40 * n as i64),
        "{video:?}"
    );
    assert!(blocks.windows(2).all(|w| w[0].1 <= w[1].1), "in time order");
    assert_eq!(s.webm.tracks[0].frames, 20);
    assert_eq!(s.webm.clamped_frames, 0);
    // The size came from the keyframe.
    let entries = find_all(
        &p.child(id::TRACKS).unwrap().children(&file),
        id::TRACK_ENTRY,
    );
    let video = find(&entries[0].children(&file), id::VIDEO)
        .unwrap()
        .children(&file);
    assert_eq!(find(&video, id::PIXEL_WIDTH).unwrap().uint(), 320);
    assert_eq!(find(&video, id::PIXEL_HEIGHT).unwrap().uint(), 240);
}

#[test]
fn audio_ahead_of_video_is_interleaved_in_time_order() {
    let mut r = recorder();
    let base = Instant::now();
    r.handle_rtp(0, base, &rtp(0, 0, true, &vp8_payload(true)))
        .unwrap();
    r.handle_rtp(1, base, &rtp(0, 0, false, &[0xf8])).unwrap();
    // Audio for 300 ms arrives before the video of that time.
    for i in 1..=15u16 {
        r.handle_rtp(
            1,
            at(base, 20 * u64::from(i)),
            &rtp(i, u32::from(i) * 960, false, &[0xf8]),
        )
        .unwrap();
    }
    for i in 1..=9u16 {
        r.handle_rtp(
            0,
            at(base, 300),
            &rtp(i, u32::from(i) * 3000, true, &vp8_payload(false)),
        )
        .unwrap();
    }
    let (c, s) = r.finish().unwrap();
    let file = c.into_inner();
    let blocks = Parsed::new(&file).blocks();
    assert!(blocks.windows(2).all(|w| w[0].1 <= w[1].1), "in time order");
    assert_eq!(s.webm.clamped_frames, 0);
    assert_eq!(blocks.len(), 10 + 16);
}

#[test]
fn losses_are_reported_and_a_keyframe_is_asked_for() {
    let mut r = recorder();
    let base = Instant::now();
    r.handle_rtp(0, base, &rtp(0, 0, true, &vp8_payload(true)))
        .unwrap();
    assert!(r.needs_keyframe(0), "the keyframe is held at the start");
    // The depacketizer holds its first packets a moment for reordered ones.
    assert_eq!(r.poll_timeout(), Some(at(base, 100)));
    r.handle_timeout(at(base, 100)).unwrap();
    assert!(!r.needs_keyframe(0));
    r.handle_rtp(0, at(base, 166), &rtp(2, 6000, true, &vp8_payload(false)))
        .unwrap();
    assert_eq!(r.poll_timeout(), Some(at(base, 466)));
    r.handle_timeout(at(base, 466)).unwrap();
    assert!(r.needs_keyframe(0));
    assert!(!r.needs_keyframe(1));
    let st = r.stats(0).unwrap();
    assert_eq!(st.depacketizer.lost, 1);
    assert_eq!(st.depacketizer.awaiting_keyframe, 1);
    r.handle_rtp(0, at(base, 500), &rtp(3, 9000, true, &vp8_payload(true)))
        .unwrap();
    assert!(!r.needs_keyframe(0));
    let (_, s) = r.finish().unwrap();
    assert_eq!(s.webm.tracks[0].frames, 2);
    assert_eq!(s.tracks[0].depacketizer.frames, 2);
}

#[test]
fn malformed_packets_are_counted_and_do_not_stop_the_recording() {
    let mut r = recorder();
    let base = Instant::now();
    let e = r.handle_rtp(1, base, &[0x80, 0x60, 0]).unwrap_err();
    assert!(matches!(e, RecordError::Rtp(_)) && !e.is_fatal());
    let e = r
        .handle_rtp(0, base, &rtp(0, 0, true, &[0x80]))
        .unwrap_err();
    assert!(matches!(e, RecordError::Payload(_)) && !e.is_fatal());
    assert!(matches!(
        r.handle_rtp(2, base, &rtp(0, 0, true, &[1])),
        Err(RecordError::UnknownTrack(2))
    ));
    r.handle_rtp(1, base, &rtp(1, 960, false, &[0xf8])).unwrap();
    let (_, s) = r.finish().unwrap();
    assert_eq!(s.tracks[1].malformed_rtp, 1);
    assert_eq!(s.tracks[0].depacketizer.malformed, 1);
    assert_eq!(s.webm.tracks[1].frames, 1);
}

#[test]
fn only_one_video_and_one_audio_track_are_taken() {
    let sink = || Cursor::new(Vec::new());
    let two_videos = [TrackSpec::video(Codec::Vp8), TrackSpec::video(Codec::Vp9)];
    assert!(matches!(
        Recorder::new(sink(), &two_videos),
        Err(RecordError::Tracks)
    ));
    assert!(matches!(
        Recorder::new(sink(), &[TrackSpec::video(Codec::H264)]),
        Err(RecordError::Tracks)
    ));
    assert!(matches!(
        Recorder::new(sink(), &[]),
        Err(RecordError::Tracks)
    ));
    assert!(Recorder::new(sink(), &[TrackSpec::opus(1)]).is_ok());
}

proptest::proptest! {
    /// Arbitrary bytes as RTP (half of them with a valid version and a sequence number near the
    /// others) never panic, never break the file, and what is written still parses.
    #[test]
    fn arbitrary_packets_leave_a_file_that_parses(
        pkts in proptest::collection::vec(
            (0usize..3, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48), 0u64..80, proptest::prelude::any::<bool>()),
            0..60,
        ),
    ) {
        let mut r = recorder();
        let base = Instant::now();
        let mut clock = 0;
        for (i, (track, mut bytes, dt, fix)) in pkts.into_iter().enumerate() {
            clock += dt;
            if fix && bytes.len() >= 12 {
                bytes[0] = 0x80;
                bytes[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            }
            if let Err(e) = r.handle_rtp(track, at(base, clock), &bytes) {
                proptest::prop_assert!(!e.is_fatal(), "{}", e);
            }
        }
        let (c, s) = r.finish().unwrap();
        let file = c.into_inner();
        proptest::prop_assert_eq!(s.webm.bytes, file.len() as u64);
        let blocks = Parsed::new(&file).blocks();
        proptest::prop_assert!(blocks.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
