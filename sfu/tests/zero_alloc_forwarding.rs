//! Zero heap allocations per forwarded packet: once sessions are connected and warmed up, the
//! shard core forwards audio and video to several viewers — NACKs, RTX, reports, keyframe
//! requests and the per-viewer bandwidth allocation included — without allocating. The one
//! heap cost left is the once-a-second `Event::ViewerStats` report per viewer (its list of
//! sections and their mids), which the tests count exactly and subtract.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use sfu::control::Event;
use sfu::sim::{Harness, IN_CORE};

struct Counting;

thread_local! {
    /// Allocations this thread made inside core calls.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn allocs() -> u64 {
    ALLOCS.with(|a| a.get())
}

// SAFETY: delegates to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_CORE.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if IN_CORE.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Hands the cores' events to a stand-in for signaling (outside the core, as the shard loop
/// does every iteration) and returns the allocations the reports among them account for:
/// per `ViewerStats`, its list of sections and one mid per section. (Any other event that
/// carries heap data in a measured window shows up as an unexplained allocation.)
fn drain_events(h: &mut Harness) -> u64 {
    let mut reports = 0;
    for core in &mut h.cores {
        while let Some(e) = core.poll_event() {
            if let Event::ViewerStats { stats, .. } = e {
                reports += 1 + stats.tracks.len() as u64;
            }
        }
    }
    reports
}

/// Runs the harness for `ms` milliseconds, draining events every step; returns the
/// allocations the reports account for.
fn run(h: &mut Harness, ms: u64) -> u64 {
    let mut reports = 0;
    for _ in 0..ms {
        h.step();
        reports += drain_events(h);
        h.now += Duration::from_millis(1);
    }
    reports
}

#[test]
fn forwarding_allocates_nothing_per_packet() {
    let mut h = Harness::new(1);
    let _p = h.add_publisher(0, 1);
    let viewers: Vec<usize> = (0..4).map(|_| h.add_viewer(0, 1)).collect();
    // Warm-up: connect, fill caches and maps, see every SSRC, exchange reports.
    h.run(Duration::from_secs(3));
    for &v in &viewers {
        assert!(h.peers[v].connected);
    }
    drain_events(&mut h);
    let out_before = h.cores[0].counters().rtp_out;
    let allocs_before = allocs();
    let reports = run(&mut h, 3000);
    let allocs = allocs() - allocs_before;
    let forwarded = h.cores[0].counters().rtp_out - out_before;
    println!("forwarded {forwarded} packets with {allocs} allocations ({reports} for reports)");
    assert!(forwarded > 1500, "forwarded {forwarded}");
    assert!(reports > 0, "the viewers were reported");
    assert_eq!(allocs - reports, 0, "allocations on the forwarding path");
}

#[test]
fn cross_shard_forwarding_allocates_nothing_per_packet() {
    let mut h = Harness::new(2);
    let _p = h.add_publisher(0, 1);
    let viewers: Vec<usize> = (0..3).map(|_| h.add_viewer(1, 1)).collect();
    h.cores[0].handle_command(
        h.now,
        sfu::control::Command::LinkShard {
            stream: sfu::StreamKey(1),
            shard: sfu::ShardId(1),
            linked: true,
        },
    );
    h.run(Duration::from_secs(3));
    for &v in &viewers {
        assert!(h.peers[v].connected);
    }
    drain_events(&mut h);
    let out_before = h.cores[1].counters().rtp_out;
    let crossed_before = h.cores[0].counters().cross_shard_out;
    let allocs_before = allocs();
    let reports = run(&mut h, 3000);
    let allocs = allocs() - allocs_before - reports;
    let forwarded = h.cores[1].counters().rtp_out - out_before;
    let crossed = h.cores[0].counters().cross_shard_out - crossed_before;
    println!(
        "crossed {crossed} packets, forwarded {forwarded} on the other shard with {allocs} allocations"
    );
    assert!(
        crossed > 300 && forwarded > 1000,
        "crossed {crossed}, forwarded {forwarded}"
    );
    assert_eq!(allocs, 0, "allocations on the cross-shard forwarding path");
}

#[test]
fn simulcast_forwarding_and_layer_switches_allocate_nothing() {
    use sfu::control::{Command, LayerOrder, LayerSelection};
    let mut h = Harness::new(2);
    let sizes = [(1, 300), (2, 700), (3, 1100)];
    let _p = h.add_simulcast_publisher(0, 1, &["q", "h", "f"], &sizes, LayerOrder::Named);
    let local: Vec<usize> = (0..3).map(|_| h.add_viewer(0, 1)).collect();
    let remote: Vec<usize> = (0..2).map(|_| h.add_viewer(1, 1)).collect();
    h.cores[0].handle_command(
        h.now,
        Command::LinkShard {
            stream: sfu::StreamKey(1),
            shard: sfu::ShardId(1),
            linked: true,
        },
    );
    h.run(Duration::from_secs(3));
    let viewers: Vec<(usize, usize)> = local
        .iter()
        .map(|&v| (0, v))
        .chain(remote.iter().map(|&v| (1, v)))
        .collect();
    for &(_, v) in &viewers {
        assert!(h.peers[v].connected);
    }
    let out = |h: &Harness| h.cores[0].counters().rtp_out + h.cores[1].counters().rtp_out;
    let switches =
        |h: &Harness| h.cores[0].counters().layer_switches + h.cores[1].counters().layer_switches;
    drain_events(&mut h);
    let (out_before, switches_before) = (out(&h), switches(&h));
    let allocs_before = allocs();
    let mut reports = 0;
    // Every viewer changes encoding twice and one drops temporal layers, inside the window.
    for round in 0..2u8 {
        for (i, &(shard, v)) in viewers.iter().enumerate() {
            let selection = LayerSelection {
                spatial: Some((i as u8 + round) % 3),
                temporal: (i == 0).then_some(0),
                ..LayerSelection::default()
            };
            let session = h.peers[v].session;
            h.cores[shard].handle_command(
                h.now,
                Command::SetLayers {
                    session,
                    mid: None,
                    selection,
                },
            );
        }
        reports += run(&mut h, 2000);
    }
    let allocs = allocs() - allocs_before - reports;
    let forwarded = out(&h) - out_before;
    let switched = switches(&h) - switches_before;
    println!("forwarded {forwarded} simulcast packets, {switched} switches, {allocs} allocations");
    assert!(forwarded > 1000, "forwarded {forwarded}");
    assert!(switched >= 6, "switched {switched}");
    assert_eq!(allocs, 0, "allocations on the simulcast forwarding path");
}

#[test]
fn forwarding_to_viewers_with_send_side_estimation_allocates_nothing_per_packet() {
    use sfu::bwe::{TwccReceiver, TwccReceiverConfig};
    use sfu::io::RecvMeta;
    use sfu::wire::rtp::{RtpHeader, parse_transport_cc_seq};

    const TWCC_ID: u8 = 9;
    // Video is never paused, so that the viewer behind 400 kbit/s keeps its pacer busy.
    let mut h = Harness::with_config(1, sfu::sim::config_without_pauses());
    let _p = h.add_publisher(0, 1);
    let viewers: Vec<usize> = (0..4).map(|_| h.add_twcc_viewer(0, 1, TWCC_ID)).collect();
    // A fifth viewer behind a bottleneck (its feedback comes from the harness): the media is
    // above its estimate, so its pacer queues, sends late and drops what does not fit.
    let narrow = h.add_twcc_viewer(0, 1, TWCC_ID);
    let link = sfu::bwe::sim_link::LinkConfig {
        capacity: vec![(Duration::ZERO, sfu::Bitrate::kbps(400))],
        ..sfu::bwe::sim_link::LinkConfig::default()
    };
    h.set_downlink(narrow, link, TWCC_ID);
    let mut twcc: Vec<TwccReceiver> = viewers
        .iter()
        .map(|_| TwccReceiver::new(TwccReceiverConfig::default()))
        .collect();
    let mut seen = vec![0usize; viewers.len()];
    // Every viewer acknowledges what it received (stamps, feedback every 50 ms), so the
    // estimators, probe controllers and pacers all run.
    let mut run = |h: &mut Harness, ms: u64| {
        let mut reports = 0;
        for _ in 0..ms {
            h.step();
            let now = h.now;
            for (k, &v) in viewers.iter().enumerate() {
                for b in &h.peers[v].rtp[seen[k]..] {
                    let hd = RtpHeader::parse(b).unwrap();
                    let seq = parse_transport_cc_seq(hd.extension(b, TWCC_ID).unwrap()).unwrap();
                    twcc[k].on_packet(now, seq.0);
                }
                seen[k] = h.peers[v].rtp.len();
                let mut buf = vec![0u8; 1500];
                while let Some(n) =
                    twcc[k].poll_feedback(now, sfu::Ssrc(7), sfu::Ssrc(1), &mut buf[..1400])
                {
                    let mut pkt = buf[..n].to_vec();
                    pkt.resize(n + 64, 0);
                    let n = h.peers[v].client.protect_rtcp(&mut pkt, n).unwrap();
                    pkt.truncate(n);
                    let src = h.peers[v].addr;
                    sfu::sim::in_core(|| {
                        h.cores[0].handle_datagram(now, RecvMeta { src, dst_ip: None }, &mut pkt)
                    });
                }
            }
            // The shard loop hands events to signaling every iteration.
            reports += drain_events(h);
            h.now += Duration::from_millis(1);
        }
        reports
    };
    run(&mut h, 3000);
    for &v in &viewers {
        assert!(h.peers[v].connected);
    }
    let narrow_session = h.peers[narrow].session;
    let paced_before = h.cores[0]
        .viewer_estimate(narrow_session)
        .unwrap()
        .paced_packets;
    let out_before = h.cores[0].counters().rtp_out;
    let allocs_before = allocs();
    let reports = run(&mut h, 6000);
    let allocs = allocs() - allocs_before - reports;
    let forwarded = h.cores[0].counters().rtp_out - out_before;
    let est = h.cores[0]
        .viewer_estimate(h.peers[viewers[0]].session)
        .unwrap();
    println!("forwarded {forwarded} packets with {allocs} allocations; {est:?}");
    assert!(
        est.feedback_received > 100,
        "feedback reached the estimator"
    );
    assert!(forwarded > 3000, "forwarded {forwarded}");
    let paced = h.cores[0]
        .viewer_estimate(narrow_session)
        .unwrap()
        .paced_packets
        - paced_before;
    println!("paced toward the narrow viewer: {paced} packets");
    assert!(
        paced > 100,
        "the pacer held packets back and sent them later"
    );
    assert_eq!(
        allocs, 0,
        "allocations on the forwarding, pacing and estimation path"
    );
}

#[test]
fn allocation_switches_pauses_and_resumes_allocate_nothing() {
    use sfu::bwe::sim_link::LinkConfig;
    use sfu::control::TrackContent;

    const TWCC_ID: u8 = 9;
    let mut h = Harness::new(1);
    let sizes = [(1, 550), (2, 1200), (5, 1200)];
    let _p =
        h.add_simulcast_av_publisher(0, 1, &["q", "h", "f"], &sizes, TrackContent::Camera, true);
    let viewers: Vec<usize> = (0..2).map(|_| h.add_twcc_viewer(0, 1, TWCC_ID)).collect();
    assert!(h.connect_all(Duration::from_secs(5)));
    // 5 Mbit/s, 1 Mbit/s from 8 s (down to h), 120 kbit/s from 12 s (video paused), 5 Mbit/s
    // from 18 s (resumed, back up).
    let schedule: Vec<(Duration, sfu::Bitrate)> = [(0, 5000), (8, 1000), (12, 120), (18, 5000)]
        .iter()
        .map(|&(s, k)| (Duration::from_secs(s), sfu::Bitrate::kbps(k)))
        .collect();
    for &v in &viewers {
        let link = LinkConfig {
            capacity: schedule.clone(),
            ..LinkConfig::default()
        };
        h.set_downlink(v, link, TWCC_ID);
    }
    // Warm-up: the viewers reach the top layer.
    run(&mut h, 6000);
    let (out_before, switches_before) = (
        h.cores[0].counters().rtp_out,
        h.cores[0].counters().layer_switches,
    );
    let mut paused = false;
    let allocs_before = allocs();
    let mut reports = 0;
    for _ in 0..24_000 {
        h.step();
        for core in &mut h.cores {
            while let Some(e) = core.poll_event() {
                if let Event::ViewerStats { stats, .. } = e {
                    paused |= stats.tracks.iter().any(|t| t.paused);
                    reports += 1 + stats.tracks.len() as u64;
                }
            }
        }
        h.now += Duration::from_millis(1);
    }
    let allocs = allocs() - allocs_before - reports;
    let forwarded = h.cores[0].counters().rtp_out - out_before;
    let switched = h.cores[0].counters().layer_switches - switches_before;
    println!(
        "forwarded {forwarded} packets, {switched} switches, paused {paused}, {allocs} allocations"
    );
    assert!(forwarded > 3000, "forwarded {forwarded}");
    assert!(switched >= 4, "switched {switched}");
    assert!(paused, "video was paused in the window");
    assert_eq!(allocs, 0, "allocations on the allocation path");
}

#[test]
fn audio_levels_and_active_speaker_changes_allocate_nothing() {
    use sfu::control::{Command, VoiceCommand, VoiceGroup};
    let mut h = Harness::new(1);
    let a = h.add_publisher(0, 1);
    let b = h.add_publisher(0, 2);
    let viewers: Vec<usize> = (0..2).map(|_| h.add_viewer(0, 1)).collect();
    for p in [a, b] {
        let track = sfu::TrackId(h.peers[p].session.0 * 10 + 1);
        let now = h.now;
        h.cores[0].handle_command(
            now,
            Command::Voice(VoiceCommand::SetGroup {
                track,
                group: Some(VoiceGroup(7)),
            }),
        );
    }
    let level = |h: &mut Harness, p: usize, byte: u8| {
        h.peers[p].publisher.as_mut().unwrap().audio_level = byte;
    };
    level(&mut h, a, 0x8a);
    level(&mut h, b, 0x7f);
    h.run(Duration::from_secs(3));
    for &v in &viewers {
        assert!(h.peers[v].connected);
    }
    let speaker_changes = |h: &mut Harness| -> (u64, u64) {
        let (mut changes, mut reports) = (0, 0);
        for core in &mut h.cores {
            while let Some(e) = core.poll_event() {
                match e {
                    Event::ActiveSpeaker { .. } => changes += 1,
                    Event::ViewerStats { stats, .. } => reports += 1 + stats.tracks.len() as u64,
                    _ => {}
                }
            }
        }
        (changes, reports)
    };
    speaker_changes(&mut h);
    let allocs_before = allocs();
    let (mut changes, mut reports) = (0, 0);
    // Turns: B speaks, then A again, then silence; the speaker changes inside the window.
    for (la, lb) in [(0x7f, 0x88), (0x8a, 0x7f), (0x7f, 0x7f)] {
        level(&mut h, a, la);
        level(&mut h, b, lb);
        for _ in 0..2500 {
            h.step();
            let (c, r) = speaker_changes(&mut h);
            changes += c;
            reports += r;
            h.now += Duration::from_millis(1);
        }
    }
    let allocs = allocs() - allocs_before - reports;
    println!("{changes} speaker changes with {allocs} allocations");
    assert_eq!(changes, 3, "B, A, nobody");
    assert_eq!(allocs, 0, "allocations on the audio-level path");
}

#[test]
fn the_opus_mix_allocates_nothing_per_packet_or_tick() {
    use sfu::control::{Command, ExtMap, SubscribeSpec, VoiceCommand, VoiceGroup};
    use sfu::{MediaKind, Mid, Ssrc, StreamKey, TrackId};
    let tone = |freq: f32| -> Vec<Vec<u8>> {
        let mut enc =
            opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        (0..50)
            .map(|f| {
                let pcm: Vec<i16> = (0..960)
                    .map(|i| {
                        let t = (f * 960 + i) as f32 / 48_000.0;
                        (9000.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
                    })
                    .collect();
                enc.encode_vec(&pcm, 1275).unwrap()
            })
            .collect()
    };
    let mut h = Harness::new(1);
    let a = h.add_publisher(0, 1);
    let b = h.add_publisher(0, 2);
    let l = h.add_viewer(0, 1);
    h.peers[a].publisher.as_mut().unwrap().audio_payloads = tone(440.0);
    h.peers[b].publisher.as_mut().unwrap().audio_payloads = tone(660.0);
    let group = VoiceGroup(9);
    let now = h.now;
    for p in [a, b] {
        let track = TrackId(h.peers[p].session.0 * 10 + 1);
        h.cores[0].handle_command(
            now,
            Command::Voice(VoiceCommand::MixInput {
                group,
                track,
                add: true,
            }),
        );
    }
    // A viewer hears both; publisher A hears B only.
    for (session, ssrc, ext, exclude) in [
        (h.peers[l].session, 0xaaa, 5, vec![]),
        (
            h.peers[a].session,
            0xbbb,
            2,
            vec![TrackId(h.peers[a].session.0 * 10 + 1)],
        ),
    ] {
        let spec = SubscribeSpec {
            stream: StreamKey(0),
            kind: MediaKind::Audio,
            mid: Mid("mix".into()),
            ssrc: Ssrc(ssrc),
            rtx_ssrc: None,
            codecs: vec![sfu::sim::opus(sfu::sim::VIEW_OPUS)],
        };
        h.cores[0].handle_command(
            now,
            Command::Voice(VoiceCommand::AddMixListener {
                group,
                session,
                extmap: ExtMap {
                    audio_level: Some(ext),
                    ..ExtMap::default()
                },
                spec,
                exclude,
            }),
        );
    }
    h.run(Duration::from_secs(3));
    drain_events(&mut h);
    for p in &mut h.peers {
        p.record = false;
    }
    let out_before = h.cores[0].counters().rtp_out;
    let allocs_before = allocs();
    let reports = run(&mut h, 3000);
    let allocs = allocs() - allocs_before - reports;
    let sent = h.cores[0].counters().rtp_out - out_before;
    println!("{sent} packets out (mix and forwarding) with {allocs} allocations");
    // Two mix streams at 50 packets a second, besides the forwarded media.
    assert!(sent > 300, "{sent}");
    assert_eq!(allocs, 0, "allocations on the mix path");
}
