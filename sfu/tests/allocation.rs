//! Per-viewer bandwidth allocation through the shard core on the simulated network: a simulcast
//! publisher (q, h, f at about 150, 600 and 1500 kbit/s on the wire, 90 kbit/s of audio) and
//! viewers whose downlink crosses a simulated bottleneck and who return transport-cc feedback.
//! The allocator turns each viewer's estimate into layer choices: the highest that fits, down
//! at once, up with headroom and a hold, video paused (audio kept) below the lowest layer,
//! screen content before camera, caps from the viewer's selection and quality preset, and the
//! encodings nobody needs turned off (dynacast).

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::time::Duration;

use sfu::bwe::sim_link::LinkConfig;
use sfu::control::{Command, Event, LayerSelection, QualityCap, TrackContent, ViewerStats};
use sfu::sim::{
    Harness, SIM_FRAME_BYTES, SIM_LAYER_BYTE, SIM_VP8_DESCRIPTOR_LEN, multi_viewer_video_ssrc,
};
use sfu::{Bitrate, MediaKind, Rid, ShardId, StreamKey};

const TWCC: u8 = 9;
const RIDS: [&str; 3] = ["q", "h", "f"];
/// (packets per picture, payload bytes) at 30 pictures/s: with headers and the 48 bytes each
/// packet gains toward a viewer, about 150, 610 and 1520 kbit/s.
const SIZES: [(usize, usize); 3] = [(1, 550), (2, 1200), (5, 1200)];

/// One received video packet, decoded.
#[derive(Debug, Clone, Copy)]
struct Rx {
    seq: u16,
    ts: u32,
    layer: u8,
    frame: u64,
    picture_start: bool,
    keyframe: bool,
}

fn decode(hdr: &sfu::wire::rtp::RtpHeader, b: &[u8]) -> Rx {
    let p = &b[hdr.header_len()..];
    let picture_start = p[0] & 0x10 != 0;
    Rx {
        seq: hdr.seq.0,
        ts: hdr.timestamp,
        layer: p[SIM_LAYER_BYTE],
        frame: u64::from_be_bytes(p[SIM_FRAME_BYTES..SIM_FRAME_BYTES + 8].try_into().unwrap()),
        picture_start,
        keyframe: picture_start && p[SIM_VP8_DESCRIPTOR_LEN] & 0x01 == 0,
    }
}

fn received(h: &Harness, v: usize) -> Vec<Rx> {
    h.video_received(v)
        .iter()
        .map(|(hdr, b)| decode(hdr, b))
        .collect()
}

/// A bottleneck whose capacity is `kbps` from each offset (seconds) on, 25 ms one way.
fn link(schedule: &[(u64, u64)]) -> LinkConfig {
    LinkConfig {
        capacity: schedule
            .iter()
            .map(|&(s, k)| (Duration::from_secs(s), Bitrate::kbps(k)))
            .collect(),
        ..LinkConfig::default()
    }
}

/// What a run observed, by time since the downlink was set up.
#[derive(Default)]
struct Log {
    events: Vec<(Duration, Event)>,
    /// The layer of the newest video packet the viewer received, when it changed.
    layers: Vec<(Duration, u8)>,
    /// Audio packets the viewer had received, every 100 ms.
    audio: Vec<(Duration, usize)>,
}

impl Log {
    /// The viewer's reports, by time.
    fn stats(&self) -> impl Iterator<Item = (Duration, &ViewerStats)> {
        self.events.iter().filter_map(|(t, e)| match e {
            Event::ViewerStats { stats, .. } => Some((*t, stats)),
            _ => None,
        })
    }

    /// The received layer at `t` (the last change at or before it).
    fn layer_at(&self, t: Duration) -> Option<u8> {
        self.layers
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map(|&(_, l)| l)
    }

    /// When the received layer first became `layer` at or after `from`.
    fn first_layer(&self, from: Duration, layer: u8) -> Option<Duration> {
        if self.layer_at(from) == Some(layer) {
            return Some(from);
        }
        self.layers
            .iter()
            .find(|&&(at, l)| at >= from && l == layer)
            .map(|&(at, _)| at)
    }

    /// The audio packets received between `from` and `to`.
    fn audio_between(&self, from: Duration, to: Duration) -> usize {
        let at = |t: Duration| {
            self.audio
                .iter()
                .take_while(|(a, _)| *a <= t)
                .last()
                .map_or(0, |&(_, n)| n)
        };
        at(to) - at(from)
    }
}

/// Runs `h` for `secs` seconds, watching viewer `v` (whose downlink started at `t0`).
fn run(h: &mut Harness, v: usize, t0: std::time::Instant, secs: f64, log: &mut Log) {
    let steps = (secs * 1000.0) as u64;
    for _ in 0..steps {
        h.step();
        let t = h.now - t0;
        for core in &mut h.cores {
            while let Some(e) = core.poll_event() {
                log.events.push((t, e));
            }
        }
        if let Some(b) = h.peers[v].rtp.last()
            && let Ok(hdr) = sfu::wire::rtp::RtpHeader::parse(b)
            && hdr.payload_type.0 == sfu::sim::VIEW_VP8
        {
            let layer = decode(&hdr, b).layer;
            if log.layers.last().is_none_or(|&(_, l)| l != layer) {
                log.layers.push((t, layer));
            }
        }
        if t.as_millis().is_multiple_of(100) {
            log.audio.push((t, h.audio_received(v)));
        }
        h.now += Duration::from_millis(1);
    }
}

/// A simulcast publisher with audio and one transport-cc viewer behind `schedule`.
fn behind_bottleneck(schedule: &[(u64, u64)]) -> (Harness, usize, usize, std::time::Instant) {
    let mut h = Harness::new(1);
    let p = h.add_simulcast_av_publisher(0, 1, &RIDS, &SIZES, TrackContent::Camera, true);
    let v = h.add_twcc_viewer(0, 1, TWCC);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.set_downlink(v, link(schedule), TWCC);
    let t0 = h.now;
    (h, p, v, t0)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Sequence numbers step by one.
fn assert_no_sequence_gap(rx: &[Rx]) {
    for w in rx.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "gap between {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn a_viewer_behind_600_kbit_settles_on_the_low_layer_without_pause_or_gap() {
    let (mut h, _p, v, t0) = behind_bottleneck(&[(0, 600)]);
    let mut log = Log::default();
    run(&mut h, v, t0, 10.0, &mut log);
    let mark = received(&h, v).len();
    run(&mut h, v, t0, 10.0, &mut log);
    for (t, s) in log.stats() {
        let v = &s.tracks[0];
        eprintln!(
            "{t:?}: estimate {:?} target {:?}/{:?} sent {:?}",
            s.estimate, v.target_spatial, v.target_temporal, v.sent
        );
    }
    assert!(
        log.stats().all(|(_, s)| s.tracks.iter().all(|t| !t.paused)),
        "never paused"
    );
    // Settled from 10 s on: q with every temporal layer.
    for (t, s) in log.stats().filter(|&(t, _)| t >= secs(10.0)) {
        let video = &s.tracks[0];
        assert_eq!(
            (video.target_spatial, video.target_temporal, video.spatial),
            (Some(0), None, Some(0)),
            "at {t:?}"
        );
        let est = s.estimate.unwrap();
        assert!(
            (300_000..=700_000).contains(&est.0),
            "the estimate follows the bottleneck: {est:?}"
        );
    }
    let rx = received(&h, v);
    let tail = &rx[mark..];
    assert!(tail.len() > 250, "{} packets in 10 s", tail.len());
    assert!(tail.iter().all(|r| r.layer == 0));
    assert_no_sequence_gap(tail);
    let frames: Vec<u64> = tail
        .iter()
        .filter(|r| r.picture_start)
        .map(|r| r.frame)
        .collect();
    assert!(
        frames.windows(2).all(|w| w[1] == w[0] + 1),
        "every picture arrives: {frames:?}"
    );
}

#[test]
fn more_capacity_reaches_the_top_layer_and_less_steps_down_within_two_seconds() {
    // 600 kbit/s, 5 Mbit/s from 15 s, 1 Mbit/s from 35 s.
    let (mut h, _p, v, t0) = behind_bottleneck(&[(0, 600), (15, 5000), (35, 1000)]);
    let mut log = Log::default();
    run(&mut h, v, t0, 45.0, &mut log);
    eprintln!("layers: {:?}", log.layers);
    for (t, e) in &log.events {
        if let Event::ViewerEstimate { stats, .. } = e {
            eprintln!(
                "{t:?}: target {} acked {:?} alr {} probe {:?} trial {:?} padding {} state {:?} usage {:?}",
                stats.target.0 / 1000,
                stats.acked.map(|a| a.0 / 1000),
                stats.in_alr,
                stats.last_probe.map(|a| a.0 / 1000),
                stats.last_trial,
                stats.padding_packets,
                stats.rate_state,
                stats.usage
            );
        }
    }
    for (t, s) in log.stats().filter(|(t, _)| t.as_secs() % 5 == 0) {
        let video = s
            .tracks
            .iter()
            .find(|t| t.kind == MediaKind::Video)
            .unwrap();
        eprintln!(
            "{t:?}: estimate {:?} target {:?} sent {:?}",
            s.estimate, video.target_spatial, video.sent
        );
    }
    assert_eq!(log.layer_at(secs(14.9)), Some(0), "q at 600 kbit/s");
    let top = log.first_layer(secs(15.0), 2).expect("reached f");
    assert!(top <= secs(25.0), "f within 10 s of the rise: {top:?}");
    assert_eq!(log.layer_at(secs(34.9)), Some(2), "f held at 5 Mbit/s");
    let down = log
        .layers
        .iter()
        .find(|&&(t, l)| t >= secs(35.0) && l < 2)
        .map(|&(t, _)| t)
        .expect("switched down");
    assert!(down <= secs(37.0), "down within 2 s of the drop: {down:?}");
    assert_eq!(log.layer_at(secs(44.9)), Some(1), "h fits 1 Mbit/s");
    assert_no_sequence_gap(&received(&h, v));
}

/// A simulcast publisher with audio and one transport-cc viewer behind a tbf-like shaper:
/// `schedule`, a 3 kB bucket (the first packets of a probe cluster pass at once, so a 15 ms
/// cluster reads well above the rate) and a 200 ms queue.
fn behind_token_bucket(schedule: &[(u64, u64)]) -> (Harness, usize, std::time::Instant) {
    let mut cfg = link(schedule);
    cfg.burst = 3000;
    cfg.queue = Duration::from_millis(200);
    let mut h = Harness::new(1);
    let _p = h.add_simulcast_av_publisher(0, 1, &RIDS, &SIZES, TrackContent::Camera, true);
    let v = h.add_twcc_viewer(0, 1, TWCC);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.set_downlink(v, cfg, TWCC);
    let t0 = h.now;
    (h, v, t0)
}

/// Prints the layers and every estimator report of a run (shown when a test fails).
fn print_estimates(log: &Log) {
    eprintln!("layers: {:?}", log.layers);
    for (t, e) in &log.events {
        if let Event::ViewerEstimate { stats, .. } = e {
            eprintln!(
                "{t:?}: target {} delay {} loss {} usage {:?} acked {:?} alr {} probe {:?} trial {:?} padding {}",
                stats.target.0 / 1000,
                stats.delay_based.0 / 1000,
                stats.loss_permille,
                stats.usage,
                stats.acked.map(|a| a.0 / 1000),
                stats.in_alr,
                stats.last_probe.map(|a| a.0 / 1000),
                stats.last_trial,
                stats.padding_packets,
            );
        }
    }
}

#[test]
fn behind_a_token_bucket_no_probe_burst_steps_the_viewer_above_the_path_and_a_lift_is_found() {
    // 600 kbit/s behind a token bucket, lifted to 5 Mbit/s at 40 s.
    let (mut h, v, t0) = behind_token_bucket(&[(0, 600), (40, 5000)]);
    let mut log = Log::default();
    run(&mut h, v, t0, 55.0, &mut log);
    print_estimates(&log);
    // h needs about 700 kbit/s with audio: from 5 s on, only q while shaped.
    let above: Vec<_> = log
        .layers
        .iter()
        .filter(|&&(t, l)| t >= secs(5.0) && t < secs(40.0) && l > 0)
        .collect();
    assert!(
        above.is_empty(),
        "stepped above q behind 600 kbit/s: {above:?}"
    );
    let top = log
        .first_layer(secs(40.0), 2)
        .expect("reached f after the lift");
    assert!(top <= secs(50.0), "f within 10 s of the lift: {top:?}");
    assert_no_sequence_gap(&received(&h, v));
}

#[test]
fn below_the_lowest_layer_video_pauses_audio_flows_and_video_resumes_on_a_keyframe() {
    // 2 Mbit/s, then 120 kbit/s (below audio and q's base temporal layer) from 10 s, 2 Mbit/s
    // again from 25 s.
    let (mut h, _p, v, t0) = behind_bottleneck(&[(0, 2000), (10, 120), (25, 2000)]);
    let mut log = Log::default();
    run(&mut h, v, t0, 25.0, &mut log);
    let paused_at = |log: &Log, t: Duration| {
        log.stats()
            .filter(|&(at, _)| at <= t)
            .last()
            .is_some_and(|(_, s)| s.tracks.iter().any(|t| t.paused))
    };
    let first_pause = log
        .stats()
        .find(|(_, s)| s.tracks.iter().any(|t| t.paused))
        .map(|(t, _)| t)
        .expect("video paused");
    assert!(
        first_pause >= secs(10.0) && first_pause <= secs(14.0),
        "paused within 4 s of the drop: {first_pause:?}"
    );
    for (t, s) in log.stats().filter(|&(t, _)| t >= first_pause) {
        let video = &s.tracks[0];
        assert!(video.paused, "still paused at {t:?}: {s:?}");
        assert_eq!(video.allocated, Bitrate::ZERO);
        assert!(!s.tracks[1].paused, "audio is never paused");
    }
    // While paused: no video at all, audio at its 50 packets/s.
    let pause_end = received(&h, v).len();
    let audio = log.audio_between(first_pause + secs(1.0), secs(25.0));
    let expected = ((secs(24.0) - first_pause).as_secs_f64() * 50.0) as usize;
    assert!(
        audio + 10 >= expected,
        "audio keeps flowing: {audio} packets, {expected} sent"
    );
    let quiet = log
        .layers
        .iter()
        .filter(|&&(t, _)| t > first_pause + secs(1.0))
        .count();
    assert_eq!(quiet, 0, "no video while paused");

    run(&mut h, v, t0, 15.0, &mut log);
    let resumed_at = log
        .stats()
        .find(|&(t, s)| t >= secs(25.0) && !s.tracks[0].paused)
        .map(|(t, _)| t)
        .expect("video resumed");
    eprintln!("paused at {first_pause:?}, resumed by {resumed_at:?}");
    assert!(
        resumed_at <= secs(35.0),
        "resumed within 10 s: {resumed_at:?}"
    );
    assert!(!paused_at(&log, secs(40.0)));
    let rx = received(&h, v);
    let before = rx[pause_end - 1];
    let after = &rx[pause_end..];
    assert!(!after.is_empty());
    assert!(
        after[0].keyframe,
        "the first packet after the pause starts a keyframe: {:?}",
        after[0]
    );
    // The viewer's numbering continues across the pause (the bottleneck itself dropped
    // packets before it, so allow for those), its timestamps by the time that passed (the
    // core spaces a switch by at most 10 s).
    let seq_step = after[0].seq.wrapping_sub(before.seq);
    assert!((1..100).contains(&seq_step), "sequence step {seq_step}");
    let ts_step = after[0].ts.wrapping_sub(before.ts) as f64 / 90_000.0;
    let frames = (after[0].frame - before.frame) as f64 / 30.0;
    assert!(
        (ts_step - frames.min(10.0)).abs() < 0.5,
        "timestamps advance by the pause: {ts_step:.2} s for {frames:.2} s of pictures"
    );
    assert_no_sequence_gap(&after[100..]);
}

#[test]
fn screen_content_gets_a_higher_layer_than_a_camera_under_a_shared_bottleneck() {
    let mut h = Harness::new(1);
    // The camera is the viewer's first section, the screen its second.
    let _cam = h.add_simulcast_av_publisher(0, 1, &RIDS, &SIZES, TrackContent::Camera, true);
    let _screen = h.add_simulcast_av_publisher(0, 2, &RIDS, &SIZES, TrackContent::Screen, false);
    let v = h.add_multi_viewer(0, &[1, 2], Some(TWCC));
    assert!(h.connect_all(Duration::from_secs(5)));
    h.set_downlink(v, link(&[(0, 1200)]), TWCC);
    let t0 = h.now;
    let mut log = Log::default();
    run(&mut h, v, t0, 20.0, &mut log);
    let (_, last) = log.stats().last().unwrap();
    eprintln!("{last:#?}");
    let cam = &last.tracks[0];
    let screen = &last.tracks[1];
    assert_eq!(cam.content, TrackContent::Camera);
    assert_eq!(screen.content, TrackContent::Screen);
    assert!(
        screen.spatial > cam.spatial,
        "screen {:?} above camera {:?}",
        screen.spatial,
        cam.spatial
    );
    // What arrived agrees.
    let n = h.peers[v].session.0 as u32;
    let last_layer = |k| {
        let pkts = h.video_received_on(v, multi_viewer_video_ssrc(n, k));
        let (hdr, b) = pkts.last().unwrap();
        decode(hdr, b).layer
    };
    assert!(last_layer(1) > last_layer(0));
}

#[test]
fn a_quality_preset_caps_the_layer_and_a_viewer_below_it_is_degraded_then_not() {
    // 600 kbit/s, then 5 Mbit/s from 20 s.
    let (mut h, _p, v, t0) = behind_bottleneck(&[(0, 600), (20, 5000)]);
    let session = h.peers[v].session;
    let cap = QualityCap {
        max_video: Some(Bitrate::kbps(800)),
        max_height: None,
    };
    let now = h.now;
    h.cores[0].handle_command(now, Command::SetQuality { session, cap });
    let mut log = Log::default();
    run(&mut h, v, t0, 40.0, &mut log);
    let degraded: Vec<(Duration, bool, Bitrate, Bitrate)> = log
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::QualityDegraded {
                degraded,
                allocated,
                wanted,
                ..
            } => Some((*t, *degraded, *allocated, *wanted)),
            _ => None,
        })
        .collect();
    eprintln!("{degraded:?}\nlayers {:?}", log.layers);
    assert_eq!(degraded.len(), 2, "{degraded:?}");
    let (t_on, on, allocated, wanted) = degraded[0];
    assert!(on && t_on >= secs(5.0) && t_on <= secs(8.0), "{t_on:?}");
    assert!(allocated < wanted && wanted.0 > 500_000 && wanted.0 <= 800_000);
    let (t_off, off, _, _) = degraded[1];
    assert!(
        !off && t_off > secs(25.0) && t_off < secs(35.0),
        "{t_off:?}"
    );
    // At 5 Mbit/s the preset holds the viewer at h.
    assert_eq!(log.layer_at(secs(39.9)), Some(1));
    let (_, last) = log.stats().last().unwrap();
    assert_eq!(last.cap, cap);
    assert!(!last.degraded);
    assert!(
        last.desired.0 < 1_000_000,
        "desired within the preset: {:?}",
        last.desired
    );
}

#[test]
fn a_height_cap_limits_a_viewer_without_an_estimate() {
    let mut h = Harness::new(1);
    let _p = h.add_simulcast_av_publisher(0, 1, &RIDS, &SIZES, TrackContent::Camera, false);
    let v = h.add_viewer(0, 1);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_secs(2));
    assert_eq!(
        received(&h, v).last().unwrap().layer,
        2,
        "the top by default"
    );
    let session = h.peers[v].session;
    let cap = QualityCap {
        max_video: None,
        max_height: Some(400),
    };
    let now = h.now;
    h.cores[0].handle_command(now, Command::SetQuality { session, cap });
    h.run(Duration::from_secs(2));
    assert_eq!(
        received(&h, v).last().unwrap().layer,
        1,
        "h is 360 rows, f 720"
    );
    assert_no_sequence_gap(&received(&h, v));
}

fn layer_demands(h: &mut Harness, shard: usize) -> Vec<Vec<Rid>> {
    let mut out = Vec::new();
    while let Some(e) = h.cores[shard].poll_event() {
        if let Event::LayerDemand { active, .. } = e {
            out.push(active);
        }
    }
    out
}

fn rids(r: &[&str]) -> Vec<Rid> {
    r.iter().map(|s| Rid((*s).into())).collect()
}

#[test]
fn layer_demand_turns_the_top_layer_off_when_every_viewer_is_capped_below_it_and_on_again() {
    let mut h = Harness::new(2);
    let p = h.add_simulcast_av_publisher(0, 1, &RIDS, &SIZES, TrackContent::Camera, false);
    let local = h.add_viewer(0, 1);
    let remote = h.add_viewer(1, 1);
    let now = h.now;
    h.cores[0].handle_command(
        now,
        Command::LinkShard {
            stream: StreamKey(1),
            shard: ShardId(1),
            linked: true,
        },
    );
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_secs(2));
    assert!(layer_demands(&mut h, 0).is_empty(), "all on while wanted");
    let cap_h = LayerSelection {
        max_spatial: Some(1),
        ..LayerSelection::default()
    };
    for (shard, v) in [(0, local), (1, remote)] {
        let session = h.peers[v].session;
        let now = h.now;
        h.cores[shard].handle_command(
            now,
            Command::SetLayers {
                session,
                mid: None,
                selection: cap_h,
            },
        );
    }
    h.run(Duration::from_millis(2900));
    assert!(layer_demands(&mut h, 0).is_empty(), "off only after 3 s");
    h.run(Duration::from_millis(300));
    assert_eq!(layer_demands(&mut h, 0), [rids(&["q", "h"])]);
    // Nor does f cross to the other shard, whose viewer does not need it: 30 pictures of q
    // (one packet) and h (two) a second, not f's five more.
    let crossed = h.cores[0].counters().cross_shard_out;
    h.run(Duration::from_secs(1));
    let crossed = h.cores[0].counters().cross_shard_out - crossed;
    assert!(
        (85..=100).contains(&crossed),
        "crossed {crossed} packets in 1 s"
    );
    // The publisher stops f; both viewers stay on h.
    h.peers[p].simulcast.as_mut().unwrap().encodings[2].active = false;
    h.run(Duration::from_secs(3));
    assert!(layer_demands(&mut h, 0).is_empty());
    for v in [local, remote] {
        assert_eq!(received(&h, v).last().unwrap().layer, 1);
    }
    // The viewer on the other shard lifts its cap: f is needed again at once.
    let session = h.peers[remote].session;
    let now = h.now;
    h.cores[1].handle_command(
        now,
        Command::SetLayers {
            session,
            mid: None,
            selection: LayerSelection::default(),
        },
    );
    h.run(Duration::from_millis(50));
    assert_eq!(layer_demands(&mut h, 0), [rids(&["q", "h", "f"])]);
    // The publisher starts f again; the remote viewer gets it.
    h.peers[p].simulcast.as_mut().unwrap().encodings[2].active = true;
    h.run(Duration::from_secs(2));
    assert_eq!(received(&h, remote).last().unwrap().layer, 2);
    assert_eq!(received(&h, local).last().unwrap().layer, 1);
    assert_no_sequence_gap(&received(&h, remote));
}

#[test]
fn every_viewer_session_is_reported_once_a_second() {
    let mut h = Harness::new(1);
    let _p = h.add_simulcast_av_publisher(0, 1, &RIDS, &SIZES, TrackContent::Camera, true);
    let plain = h.add_viewer(0, 1);
    let twcc = h.add_twcc_viewer(0, 1, TWCC);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.set_downlink(twcc, link(&[(0, 5000)]), TWCC);
    let t0 = h.now;
    let mut log = Log::default();
    run(&mut h, twcc, t0, 10.0, &mut log);
    let of = |v: usize| -> Vec<&ViewerStats> {
        let id = h.peers[v].session;
        log.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ViewerStats { id: i, stats, .. } if *i == id => Some(stats),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (of(plain), of(twcc));
    assert!((9..=11).contains(&a.len()) && (9..=11).contains(&b.len()));
    let plain_last = a.last().unwrap();
    assert_eq!(plain_last.estimate, None, "no transport-cc, no estimate");
    let video = &plain_last.tracks[0];
    assert_eq!(
        (video.spatial, video.target_spatial),
        (Some(2), Some(2)),
        "the top layer without adaptation"
    );
    assert!(video.sent.0 > 1_000_000, "sent {:?}", video.sent);
    let audio = &plain_last.tracks[1];
    assert_eq!(audio.kind, MediaKind::Audio);
    assert!(audio.allocated.0 > 50_000 && audio.sent.0 > 50_000);
    let twcc_last = b.last().unwrap();
    assert!(twcc_last.estimate.is_some() && twcc_last.rtt.is_some());
    assert!(twcc_last.allocated.0 > 0 && twcc_last.desired >= twcc_last.allocated);
    assert_eq!(twcc_last.tracks.len(), 2);
}

#[test]
fn a_quality_cap_below_the_lowest_layer_keeps_it_and_never_pauses() {
    let (mut h, _p, v, t0) = behind_bottleneck(&[(0, 5000)]);
    let session = h.peers[v].session;
    // Below q's 150 kbit/s (and its base temporal layer): only the estimate may pause video,
    // never a cap.
    let cap = QualityCap {
        max_video: Some(Bitrate::kbps(20)),
        max_height: None,
    };
    let now = h.now;
    h.cores[0].handle_command(now, Command::SetQuality { session, cap });
    let mut log = Log::default();
    run(&mut h, v, t0, 8.0, &mut log);
    for (t, s) in log.stats() {
        assert!(!s.tracks[0].paused, "paused by the cap at {t:?}");
    }
    let (_, last) = log.stats().last().unwrap();
    assert_eq!(last.tracks[0].target_spatial, Some(0));
    assert_eq!(log.layer_at(secs(7.9)), Some(0));
    assert!(log.layers.iter().all(|&(_, l)| l == 0), "{:?}", log.layers);
}

#[test]
fn a_viewer_settled_on_a_middle_layer_behind_a_token_bucket_stays_there() {
    // h with audio needs about 700 kbit/s; f does not fit 900 kbit/s. Probes toward f (every
    // 5 s while a step up is wanted) must not knock the estimate below h.
    let (mut h, v, t0) = behind_token_bucket(&[(0, 900)]);
    let mut log = Log::default();
    run(&mut h, v, t0, 60.0, &mut log);
    print_estimates(&log);
    let settled = log.first_layer(secs(0.0), 1).expect("reached h");
    let downs: Vec<_> = log
        .layers
        .iter()
        .filter(|&&(t, l)| t > settled && l < 1)
        .collect();
    assert!(downs.is_empty(), "stepped down from h: {downs:?}");
    assert_eq!(log.layer_at(secs(59.9)), Some(1));
}
