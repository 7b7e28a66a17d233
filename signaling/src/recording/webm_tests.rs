//! Tests of the WebM muxer: the file is parsed back with the test EBML reader.

#![allow(clippy::unwrap_used)] // in tests an unwrap is an assertion

use std::io::Cursor;

use super::*;
use crate::recording::ebml_reader::{Parsed, find, find_all};

const VP8: TrackConfig = TrackConfig::Video {
    codec: VideoCodec::Vp8,
    size: None,
};
const OPUS: TrackConfig = TrackConfig::Opus { channels: 2 };

fn writer(tracks: &[TrackConfig]) -> WebmWriter<Cursor<Vec<u8>>> {
    WebmWriter::new(Cursor::new(Vec::new()), tracks).unwrap()
}

fn finish(w: WebmWriter<Cursor<Vec<u8>>>) -> (Vec<u8>, WebmSummary) {
    let (c, s) = w.finish().unwrap();
    (c.into_inner(), s)
}

/// Video at 30 fps with a keyframe every `gop` frames and Opus every 20 ms, both for `ms`,
/// written in time order.
fn av(ms: u64, gop: u64) -> (Vec<u8>, WebmSummary) {
    let mut w = writer(&[VP8, OPUS]);
    let mut v = 0u64;
    let mut a = 0u64;
    loop {
        let vt = v * 1000 / 30;
        let at = a * 20;
        if vt >= ms && at >= ms {
            break;
        }
        if vt <= at && vt < ms {
            w.write_frame(0, vt, v.is_multiple_of(gop), &[v as u8; 100])
                .unwrap();
            v += 1;
        } else {
            w.write_frame(1, at, true, &[a as u8; 40]).unwrap();
            a += 1;
        }
    }
    finish(w)
}

#[test]
fn header_declares_webm_with_millisecond_timestamps() {
    let (file, _) = finish(writer(&[VP8, OPUS]));
    let p = Parsed::new(&file);
    let top = crate::recording::ebml_reader::elements(&file).unwrap();
    let hdr = top[0].children(&file);
    assert_eq!(find(&hdr, id::DOC_TYPE).unwrap().data, b"webm");
    assert_eq!(find(&hdr, id::DOC_TYPE_VERSION).unwrap().uint(), 4);
    assert_eq!(find(&hdr, id::DOC_TYPE_READ_VERSION).unwrap().uint(), 2);
    let info = p.child(id::INFO).unwrap().children(&file);
    assert_eq!(find(&info, id::TIMESTAMP_SCALE).unwrap().uint(), 1_000_000);
    assert_eq!(find(&info, id::MUXING_APP).unwrap().data, b"ringcast");
    assert_eq!(find(&info, id::WRITING_APP).unwrap().data, b"ringcast");
}

#[test]
fn tracks_carry_codec_ids_opus_head_and_preroll() {
    let cfg = [
        TrackConfig::Video {
            codec: VideoCodec::Vp9,
            size: Some((640, 360)),
        },
        TrackConfig::Opus { channels: 1 },
    ];
    let mut w = writer(&cfg);
    w.write_frame(0, 0, true, &[1]).unwrap();
    w.write_frame(1, 0, true, &[2]).unwrap();
    let (file, _) = finish(w);
    let p = Parsed::new(&file);
    let entries = find_all(
        &p.child(id::TRACKS).unwrap().children(&file),
        id::TRACK_ENTRY,
    );
    assert_eq!(entries.len(), 2);
    let v = entries[0].children(&file);
    assert_eq!(find(&v, id::TRACK_NUMBER).unwrap().uint(), 1);
    assert_eq!(find(&v, id::TRACK_TYPE).unwrap().uint(), 1);
    assert_eq!(find(&v, id::CODEC_ID).unwrap().data, b"V_VP9");
    let video = find(&v, id::VIDEO).unwrap().children(&file);
    assert_eq!(find(&video, id::PIXEL_WIDTH).unwrap().uint(), 640);
    assert_eq!(find(&video, id::PIXEL_HEIGHT).unwrap().uint(), 360);
    let a = entries[1].children(&file);
    assert_eq!(find(&a, id::TRACK_NUMBER).unwrap().uint(), 2);
    assert_eq!(find(&a, id::TRACK_TYPE).unwrap().uint(), 2);
    assert_eq!(find(&a, id::CODEC_ID).unwrap().data, b"A_OPUS");
    let head = find(&a, id::CODEC_PRIVATE).unwrap().data;
    assert_eq!(&head[..8], b"OpusHead");
    assert_eq!(head[8], 1, "version");
    assert_eq!(head[9], 1, "channels");
    assert_eq!(u16::from_le_bytes([head[10], head[11]]), OPUS_PRE_SKIP);
    assert_eq!(
        u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
        48_000
    );
    assert_eq!(head[18], 0, "mapping family");
    assert_eq!(find(&a, id::CODEC_DELAY).unwrap().uint(), 0);
    assert_eq!(find(&a, id::SEEK_PRE_ROLL).unwrap().uint(), 80_000_000);
    let audio = find(&a, id::AUDIO).unwrap().children(&file);
    assert_eq!(
        find(&audio, id::SAMPLING_FREQUENCY).unwrap().float(),
        48_000.0
    );
    assert_eq!(find(&audio, id::CHANNELS).unwrap().uint(), 1);
}

#[test]
fn video_size_is_patched_into_the_header_later() {
    let mut w = writer(&[VP8, OPUS]);
    w.write_frame(1, 0, true, &[1]).unwrap();
    w.write_frame(0, 10, true, &[1]).unwrap();
    w.set_video_size(0, 1280, 720).unwrap();
    assert_eq!(w.video_size(0), Some((1280, 720)));
    assert!(matches!(
        w.set_video_size(1, 1, 1),
        Err(WebmError::NotVideo(1))
    ));
    w.write_frame(1, 20, true, &[1]).unwrap();
    let (file, _) = finish(w);
    let p = Parsed::new(&file);
    let entries = find_all(
        &p.child(id::TRACKS).unwrap().children(&file),
        id::TRACK_ENTRY,
    );
    let video = find(&entries[0].children(&file), id::VIDEO)
        .unwrap()
        .children(&file);
    assert_eq!(find(&video, id::PIXEL_WIDTH).unwrap().uint(), 1280);
    assert_eq!(find(&video, id::PIXEL_HEIGHT).unwrap().uint(), 720);
    // Writing went on at the end of the file after the patch.
    assert_eq!(p.blocks().len(), 3);
}

#[test]
fn finish_patches_segment_size_duration_and_cues_position() {
    let (file, s) = av(3_000, 30);
    assert_eq!(s.bytes, file.len() as u64);
    let p = Parsed::new(&file);
    assert!(!p.segment.unknown_size);
    assert_eq!(
        p.segment.data_offset + p.segment.data.len(),
        file.len(),
        "the segment runs to the end of the file"
    );
    // Last video frame at 2966 ms + 33 ms interval; last audio at 2980 + 20.
    assert_eq!(s.duration_ms, 3_000);
    let info = p.child(id::INFO).unwrap().children(&file);
    assert_eq!(find(&info, id::DURATION).unwrap().float(), 3_000.0);
    // The SeekHead points at Info, Tracks and Cues, relative to the segment's data.
    let seek = p.child(id::SEEK_HEAD).unwrap().children(&file);
    let entries = find_all(&seek, id::SEEK);
    assert_eq!(entries.len(), 3);
    for e in entries {
        let kids = e.children(&file);
        let target = find(&kids, id::SEEK_ID).unwrap().uint() as u32;
        let pos = find(&kids, id::SEEK_POSITION).unwrap().uint() as usize;
        let el = p.child(target).unwrap();
        assert_eq!(
            el.offset,
            p.segment.data_offset + pos,
            "seek to {target:#x}"
        );
    }
}

#[test]
fn unfinished_file_has_unknown_sizes_and_no_duration() {
    let mut w = writer(&[VP8, OPUS]);
    for i in 0..10u64 {
        w.write_frame(0, i * 33, i == 0, &[7; 50]).unwrap();
    }
    let file = w.sink.get_ref().clone();
    let p = Parsed::new(&file);
    assert!(p.segment.unknown_size);
    let info = p.child(id::INFO).unwrap().children(&file);
    assert!(find(&info, id::DURATION).is_none());
    assert!(find(&info, id::VOID).is_some());
    let cluster = p.child(id::CLUSTER).unwrap();
    assert!(
        cluster.unknown_size,
        "the open cluster's size is not known yet"
    );
    assert_eq!(p.blocks().len(), 10);
}

#[test]
fn a_cluster_starts_at_each_video_keyframe_with_a_cue() {
    // Keyframe every 30 frames (1 s) for 3 s: 3 clusters, 3 cues on the video track.
    let (file, s) = av(3_000, 30);
    assert_eq!(s.clusters, 3);
    assert_eq!(s.cues, 3);
    assert_eq!((s.tracks[0].cues, s.tracks[1].cues), (3, 0));
    let p = Parsed::new(&file);
    let clusters = find_all(&p.top, id::CLUSTER);
    let cues = find_all(&p.child(id::CUES).unwrap().children(&file), id::CUE_POINT);
    assert_eq!(cues.len(), clusters.len());
    for (cue, cluster) in cues.iter().zip(&clusters) {
        let kids = cue.children(&file);
        let time = find(&kids, id::CUE_TIME).unwrap().uint();
        let tp = find(&kids, id::CUE_TRACK_POSITIONS)
            .unwrap()
            .children(&file);
        assert_eq!(find(&tp, id::CUE_TRACK).unwrap().uint(), 1);
        let pos = find(&tp, id::CUE_CLUSTER_POSITION).unwrap().uint() as usize;
        assert_eq!(cluster.offset, p.segment.data_offset + pos);
        let ck = cluster.children(&file);
        assert_eq!(find(&ck, id::TIMESTAMP).unwrap().uint(), time);
        // The cluster opens with the keyframe.
        let first = find(&ck, id::SIMPLE_BLOCK).unwrap();
        let (track, rel, key, _) = crate::recording::ebml_reader::simple_block(first);
        assert_eq!((track, rel, key), (1, 0, true));
    }
    // Every block is in time order, with non-negative relative times.
    let blocks = p.blocks();
    assert!(blocks.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(s.tracks[0].frames, 90);
    assert_eq!(s.tracks[1].frames, 150);
    assert_eq!(blocks.iter().filter(|b| b.0 == 1 && b.2).count(), 3);
    assert!(
        blocks.iter().filter(|b| b.0 == 2).all(|b| b.2),
        "audio is key"
    );
}

#[test]
fn clusters_split_every_five_seconds_without_keyframes() {
    // One keyframe then 12 s of delta frames: clusters at 0, 5 and 10 s, one cue.
    let (file, s) = av(12_000, u64::MAX);
    assert_eq!(s.clusters, 3);
    assert_eq!(s.cues, 1);
    let p = Parsed::new(&file);
    let times: Vec<u64> = find_all(&p.top, id::CLUSTER)
        .iter()
        .map(|c| find(&c.children(&file), id::TIMESTAMP).unwrap().uint())
        .collect();
    assert_eq!(times[0], 0);
    assert!(times[1] >= 5_000 && times[1] < 5_040, "{times:?}");
    assert!(times[2] >= 10_000 && times[2] < 10_040, "{times:?}");
    for c in find_all(&p.top, id::CLUSTER) {
        for b in find_all(&c.children(&file), id::SIMPLE_BLOCK) {
            let (_, rel, _, _) = crate::recording::ebml_reader::simple_block(&b);
            assert!((0..5_000).contains(&rel), "relative time {rel}");
        }
    }
}

#[test]
fn a_long_gap_starts_a_new_cluster_instead_of_overflowing_the_relative_time() {
    let mut w = writer(&[OPUS]);
    w.write_frame(0, 0, true, &[1]).unwrap();
    // 40 s later: 40000 ms would not fit a signed 16-bit relative time.
    w.write_frame(0, 40_000, true, &[2]).unwrap();
    w.write_frame(0, 40_020, true, &[3]).unwrap();
    let (file, s) = finish(w);
    assert_eq!(s.clusters, 2);
    let blocks = Parsed::new(&file).blocks();
    let times: Vec<i64> = blocks.iter().map(|b| b.1).collect();
    assert_eq!(times, [0, 40_000, 40_020]);
    // Audio-only files get a cue per cluster.
    assert_eq!(s.cues, 2);
}

#[test]
fn frames_stamped_before_the_last_written_are_clamped() {
    let mut w = writer(&[VP8, OPUS]);
    w.write_frame(0, 100, true, &[1]).unwrap();
    w.write_frame(1, 90, true, &[2]).unwrap();
    w.write_frame(1, 110, true, &[3]).unwrap();
    let (file, s) = finish(w);
    assert_eq!(s.clamped_frames, 1);
    let times: Vec<i64> = Parsed::new(&file).blocks().iter().map(|b| b.1).collect();
    assert_eq!(times, [100, 100, 110]);
    assert_eq!(s.tracks[1].first_ms, Some(100));
}

#[test]
fn a_tracks_frames_never_share_a_time() {
    // Audio late behind video: clamped to the video's time, and one audio frame after another
    // clamped there moves a millisecond on (ffmpeg refuses equal times within a stream).
    let mut w = writer(&[VP8, OPUS]);
    w.write_frame(0, 100, true, &[1]).unwrap();
    w.write_frame(1, 60, true, &[2]).unwrap();
    w.write_frame(1, 80, true, &[3]).unwrap();
    w.write_frame(0, 100, false, &[4]).unwrap();
    let (file, s) = finish(w);
    assert_eq!(s.clamped_frames, 3);
    let blocks = Parsed::new(&file).blocks();
    let times: Vec<(u64, i64)> = blocks.iter().map(|b| (b.0, b.1)).collect();
    assert_eq!(times, [(1, 100), (2, 100), (2, 101), (1, 101)]);
}

#[test]
fn a_track_without_frames_is_voided_at_finish() {
    let mut w = writer(&[VP8, OPUS]);
    for i in 0..5 {
        w.write_frame(1, i * 20, true, &[1; 10]).unwrap();
    }
    let (file, s) = finish(w);
    assert_eq!(s.tracks[0].frames, 0);
    let p = Parsed::new(&file);
    let tracks = p.child(id::TRACKS).unwrap().children(&file);
    let entries = find_all(&tracks, id::TRACK_ENTRY);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        find(&entries[0].children(&file), id::CODEC_ID)
            .unwrap()
            .data,
        b"A_OPUS"
    );
    assert_eq!(find_all(&tracks, id::VOID).len(), 1);
    // No video was written: the audio clusters carry the cues.
    assert_eq!(s.cues, 1);
}

#[test]
fn bad_input_is_refused() {
    assert!(matches!(
        WebmWriter::new(Cursor::new(Vec::new()), &[]),
        Err(WebmError::TrackCount(0))
    ));
    assert!(matches!(
        WebmWriter::new(
            Cursor::new(Vec::new()),
            &[TrackConfig::Opus { channels: 6 }]
        ),
        Err(WebmError::Channels(6))
    ));
    let mut w = writer(&[OPUS]);
    assert!(matches!(
        w.write_frame(3, 0, true, &[1]),
        Err(WebmError::UnknownTrack(3))
    ));
    assert!(matches!(
        w.write_frame(0, 0, true, &[]),
        Err(WebmError::EmptyFrame)
    ));
}

#[test]
fn large_frames_get_longer_block_sizes() {
    let mut w = writer(&[VP8]);
    let big = vec![0x5a; 200_000];
    w.write_frame(0, 0, true, &big).unwrap();
    w.write_frame(0, 33, false, &[1; 100]).unwrap();
    let (file, s) = finish(w);
    let blocks = Parsed::new(&file).blocks();
    assert_eq!(blocks[0].3.len(), 200_000);
    assert_eq!(blocks[1].3, [1; 100]);
    assert_eq!(s.tracks[0].bytes, 200_100);
}

#[test]
fn a_file_can_start_mid_sink() {
    let mut c = Cursor::new(vec![0xFFu8; 10]);
    c.set_position(10);
    let mut w = WebmWriter::new(c, &[OPUS]).unwrap();
    w.write_frame(0, 0, true, &[9; 3]).unwrap();
    let (c, s) = w.finish().unwrap();
    let all = c.into_inner();
    assert_eq!(s.bytes as usize, all.len() - 10);
    let p = Parsed::new(&all[10..]);
    assert_eq!(p.blocks().len(), 1);
    let seek = p.child(id::SEEK_HEAD).unwrap().children(&all[10..]);
    assert_eq!(find_all(&seek, id::SEEK).len(), 3);
}
