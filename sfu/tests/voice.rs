//! Voice groups on a shard core, through the simulated network: publishers' RFC 6464 audio
//! levels make the loudest speaking one its group's active speaker (`Event::ActiveSpeaker`), a
//! muted one never is, turns switch it, silence clears it; stats carry each track's level.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::time::Duration;

use sfu::control::{Command, Event, TrackCommand, TrackDirection, VoiceCommand, VoiceGroup};
use sfu::sim::Harness;
use sfu::{SessionId, TrackId};

const GROUP: VoiceGroup = VoiceGroup(0xc0ffee);

/// The audio track of a harness publisher (see `sim::publisher_spec`).
fn audio_track(h: &Harness, p: usize) -> TrackId {
    TrackId(h.peers[p].session.0 * 10 + 1)
}

fn set_level(h: &mut Harness, p: usize, level: u8) {
    // V flag set while loud, as senders do.
    let byte = if level < 127 { 0x80 | level } else { 127 };
    h.peers[p].publisher.as_mut().unwrap().audio_level = byte;
}

fn join(h: &mut Harness, shard: usize, track: TrackId, group: Option<VoiceGroup>) {
    let now = h.now;
    h.cores[shard].handle_command(now, Command::Voice(VoiceCommand::SetGroup { track, group }));
}

/// Runs `ms` and returns the speaker changes seen (shard, track), failing on refused commands.
fn run(h: &mut Harness, ms: u64) -> Vec<(usize, Option<TrackId>, i8)> {
    let mut changes = Vec::new();
    for _ in 0..ms {
        h.step();
        for (i, core) in h.cores.iter_mut().enumerate() {
            while let Some(e) = core.poll_event() {
                match e {
                    Event::ActiveSpeaker {
                        group,
                        shard,
                        track,
                        level,
                    } => {
                        assert_eq!(group, GROUP);
                        assert_eq!(shard.0 as usize, i);
                        changes.push((i, track, level));
                    }
                    Event::CommandFailed { error, .. } => panic!("refused: {error}"),
                    _ => {}
                }
            }
        }
        h.now += Duration::from_millis(1);
    }
    changes
}

fn voice_stats(
    h: &Harness,
    shard: usize,
    session: SessionId,
    track: TrackId,
) -> sfu::control::VoiceTrackStats {
    let s = h.cores[shard].session_track_stats(session);
    let t = s
        .tracks
        .iter()
        .find(|t| t.direction == TrackDirection::Publish && t.track == Some(track))
        .unwrap();
    t.voice.unwrap()
}

#[test]
fn the_loudest_speaking_publisher_is_the_active_speaker_and_a_muted_one_never_is() {
    let mut h = Harness::new(1);
    let a = h.add_publisher(0, 1);
    let b = h.add_publisher(0, 2);
    let c = h.add_publisher(0, 3);
    let (ta, tb, tc) = (audio_track(&h, a), audio_track(&h, b), audio_track(&h, c));
    for t in [ta, tb, tc] {
        join(&mut h, 0, t, Some(GROUP));
    }
    set_level(&mut h, a, 12);
    set_level(&mut h, b, 127); // muted: silence frames
    set_level(&mut h, c, 35); // speaking, quieter than A
    assert!(h.connect_all(Duration::from_secs(3)));
    let changes = run(&mut h, 3000);
    assert_eq!(changes, vec![(0, Some(ta), -12)], "{changes:?}");
    let (sa, sb) = (
        voice_stats(&h, 0, h.peers[a].session, ta),
        voice_stats(&h, 0, h.peers[b].session, tb),
    );
    assert!(sa.speaking && sa.active && sa.level == -12, "{sa:?}");
    assert!(!sb.speaking && !sb.active && sb.level == -127, "{sb:?}");
    let sc = voice_stats(&h, 0, h.peers[c].session, tc);
    assert!(sc.speaking && !sc.active && sc.level == -35, "{sc:?}");

    // A falls silent: C, still speaking, takes over; then everyone is silent: nobody.
    set_level(&mut h, a, 127);
    let changes = run(&mut h, 3000);
    assert_eq!(changes, vec![(0, Some(tc), -35)], "{changes:?}");
    set_level(&mut h, c, 127);
    let changes = run(&mut h, 3000);
    assert_eq!(changes, vec![(0, None, -127)], "{changes:?}");
    // B unmutes and speaks.
    set_level(&mut h, b, 20);
    let changes = run(&mut h, 2000);
    assert_eq!(changes, vec![(0, Some(tb), -20)], "{changes:?}");
}

#[test]
fn a_group_set_before_the_track_is_published_binds_when_it_arrives() {
    let mut h = Harness::new(1);
    // The harness numbers sessions from 1: the first publisher's audio track is 11.
    join(&mut h, 0, TrackId(11), Some(GROUP));
    let a = h.add_publisher(0, 1);
    assert_eq!(audio_track(&h, a), TrackId(11));
    set_level(&mut h, a, 10);
    assert!(h.connect_all(Duration::from_secs(3)));
    let changes = run(&mut h, 2000);
    assert_eq!(changes, vec![(0, Some(TrackId(11)), -10)]);
    // Unpublished: the group has no speaker left.
    let session = h.peers[a].session;
    let now = h.now;
    h.cores[0].handle_command(
        now,
        Command::Tracks(TrackCommand::RemovePublish {
            session,
            track: TrackId(11),
        }),
    );
    let changes = run(&mut h, 500);
    assert_eq!(changes, vec![(0, None, -127)]);
}

#[test]
fn leaving_the_group_clears_its_speaker_and_tracks_outside_groups_are_not_metered() {
    let mut h = Harness::new(1);
    let a = h.add_publisher(0, 1);
    let b = h.add_publisher(0, 2);
    let (ta, tb) = (audio_track(&h, a), audio_track(&h, b));
    join(&mut h, 0, ta, Some(GROUP));
    set_level(&mut h, a, 10);
    set_level(&mut h, b, 5);
    assert!(h.connect_all(Duration::from_secs(3)));
    let changes = run(&mut h, 2000);
    assert_eq!(
        changes,
        vec![(0, Some(ta), -10)],
        "B is louder but in no group"
    );
    let s = h.cores[0].session_track_stats(h.peers[b].session);
    assert!(s.tracks.iter().all(|t| t.voice.is_none()));
    join(&mut h, 0, ta, None);
    let changes = run(&mut h, 200);
    assert_eq!(changes, vec![(0, None, -127)]);
    // A video track cannot join.
    let now = h.now;
    h.cores[0].handle_command(
        now,
        Command::Voice(VoiceCommand::SetGroup {
            track: TrackId(h.peers[b].session.0 * 10),
            group: Some(GROUP),
        }),
    );
    assert!(matches!(
        h.cores[0].poll_event(),
        Some(Event::CommandFailed { id: None, .. })
    ));
    let _ = tb;
}

#[test]
fn each_shard_reports_the_speaker_among_its_own_publishers() {
    let mut h = Harness::new(2);
    let a = h.add_publisher(0, 1);
    let b = h.add_publisher(1, 2);
    let (ta, tb) = (audio_track(&h, a), audio_track(&h, b));
    join(&mut h, 0, ta, Some(GROUP));
    join(&mut h, 1, tb, Some(GROUP));
    set_level(&mut h, a, 30);
    set_level(&mut h, b, 8);
    assert!(h.connect_all(Duration::from_secs(3)));
    let mut changes = run(&mut h, 2000);
    changes.sort_by_key(|c| c.0);
    assert_eq!(changes, vec![(0, Some(ta), -30), (1, Some(tb), -8)]);
}

mod mix {
    use super::*;
    use sfu::control::SubscribeSpec;
    use sfu::sim::{VIEW_OPUS, opus};
    use sfu::wire::rtp::RtpHeader;
    use sfu::{MediaKind, Mid, PayloadType, Ssrc, StreamKey};

    const FRAME: usize = 960;
    /// Mix streams: (SSRC, the receiving session's audio-level id: viewers 5, publishers 2).
    const TO_VIEWER: (u32, u8) = (0xabc, 5);
    const TO_PUBLISHER: (u32, u8) = (0xdef, 2);

    /// One second of a tone as 20 ms Opus packets (cycled, it stays in phase: whole cycles).
    pub fn tone(freq: f32) -> Vec<Vec<u8>> {
        let mut enc =
            ::opus::Encoder::new(48_000, ::opus::Channels::Mono, ::opus::Application::Voip)
                .unwrap();
        (0..50)
            .map(|f| {
                let pcm: Vec<i16> = (0..FRAME)
                    .map(|i| {
                        let t = (f * FRAME + i) as f32 / 48_000.0;
                        (0.3 * 32_767.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
                    })
                    .collect();
                enc.encode_vec(&pcm, 1275).unwrap()
            })
            .collect()
    }

    pub fn goertzel(x: &[i16], freq: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * freq / 48_000.0;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s0 = f32::from(v) / 32_768.0 + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        2.0 * (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0).sqrt() / x.len() as f32
    }

    /// Starts a mix stream to `session` on SSRC `ssrc`, its level under the session's audio-level
    /// extension id `ext`.
    pub fn listen(
        h: &mut Harness,
        shard: usize,
        session: SessionId,
        (ssrc, ext): (u32, u8),
        exclude: Vec<TrackId>,
    ) {
        let spec = SubscribeSpec {
            stream: StreamKey(0),
            kind: MediaKind::Audio,
            mid: Mid("mix".into()),
            ssrc: Ssrc(ssrc),
            rtx_ssrc: None,
            codecs: vec![opus(VIEW_OPUS)],
        };
        let now = h.now;
        h.cores[shard].handle_command(
            now,
            Command::Voice(VoiceCommand::AddMixListener {
                group: GROUP,
                session,
                extmap: sfu::control::ExtMap {
                    audio_level: Some(ext),
                    ..Default::default()
                },
                spec,
                exclude,
            }),
        );
    }

    pub fn input(h: &mut Harness, shard: usize, track: TrackId) {
        let now = h.now;
        h.cores[shard].handle_command(
            now,
            Command::Voice(VoiceCommand::MixInput {
                group: GROUP,
                track,
                add: true,
            }),
        );
    }

    /// The mix packets a peer received on `ssrc`, in order, checked for continuous numbering,
    /// decoded.
    pub fn decode_mix(h: &Harness, p: usize, (ssrc, ext): (u32, u8)) -> (Vec<i16>, usize) {
        let mut dec = ::opus::Decoder::new(48_000, ::opus::Channels::Mono).unwrap();
        let mut pcm = Vec::new();
        let mut last: Option<(u16, u32)> = None;
        let mut n = 0;
        for b in &h.peers[p].rtp {
            let hdr = RtpHeader::parse(b).unwrap();
            if hdr.ssrc != Ssrc(ssrc) {
                continue;
            }
            assert_eq!(hdr.payload_type, PayloadType(VIEW_OPUS));
            if let Some((s, t)) = last {
                assert_eq!(hdr.seq.0, s.wrapping_add(1), "continuous sequence numbers");
                assert_eq!(hdr.timestamp, t.wrapping_add(960), "20 ms steps");
            }
            let level = hdr.extension(b, ext).expect("the mix's audio level");
            assert_eq!(level.len(), 1);
            last = Some((hdr.seq.0, hdr.timestamp));
            let mut out = [0i16; 5760];
            let k = dec.decode(hdr.payload(b), &mut out, false).unwrap();
            pcm.extend_from_slice(&out[..k]);
            n += 1;
        }
        (pcm, n)
    }

    fn run_quiet(h: &mut Harness, ms: u64) {
        for _ in 0..ms {
            h.step();
            for core in h.cores.iter_mut() {
                while let Some(e) = core.poll_event() {
                    if let Event::CommandFailed { error, .. } = e {
                        panic!("refused: {error}");
                    }
                }
            }
            h.now += Duration::from_millis(1);
        }
    }

    #[test]
    fn a_listener_gets_one_stream_with_every_voice_and_a_publisher_not_its_own() {
        let mut h = Harness::new(2);
        let a = h.add_publisher(0, 1);
        // B publishes on the other shard; its packets cross to the mixer's.
        let b = h.add_publisher(1, 2);
        let l = h.add_viewer(0, 99);
        h.peers[a].publisher.as_mut().unwrap().audio_payloads = tone(440.0);
        h.peers[b].publisher.as_mut().unwrap().audio_payloads = tone(660.0);
        let (ta, tb) = (audio_track(&h, a), audio_track(&h, b));
        let now = h.now;
        h.cores[1].handle_command(
            now,
            Command::LinkShard {
                stream: StreamKey(2),
                shard: sfu::ShardId(0),
                linked: true,
            },
        );
        input(&mut h, 0, ta);
        input(&mut h, 0, tb);
        let (ls, as_) = (h.peers[l].session, h.peers[a].session);
        listen(&mut h, 0, ls, TO_VIEWER, Vec::new());
        listen(&mut h, 0, as_, TO_PUBLISHER, vec![ta]);
        assert!(h.connect_all(Duration::from_secs(3)));
        run_quiet(&mut h, 3000);

        let (all, n) = decode_mix(&h, l, TO_VIEWER);
        assert!(n >= 140, "about 50 packets a second: {n}");
        let tail = &all[all.len() - 48_000..];
        let (l440, l660, l550) = (
            goertzel(tail, 440.0),
            goertzel(tail, 660.0),
            goertzel(tail, 550.0),
        );
        println!("listener: 440 Hz {l440:.3}, 660 Hz {l660:.3}, 550 Hz {l550:.4}");
        assert!(l440 > 0.15 && l660 > 0.15, "{l440} {l660}");
        assert!(l550 < 0.02, "{l550}");
        let (own, _) = decode_mix(&h, a, TO_PUBLISHER);
        let tail = &own[own.len() - 48_000..];
        let (a440, a660) = (goertzel(tail, 440.0), goertzel(tail, 660.0));
        println!("publisher A: 440 Hz {a440:.4}, 660 Hz {a660:.3}");
        assert!(a660 > 0.15, "A hears B: {a660}");
        assert!(a440 < 0.01, "A does not hear itself: {a440}");
        // The listener's stats show the stream it receives.
        let st = h.cores[0].session_track_stats(ls);
        let mix = st
            .tracks
            .iter()
            .find(|t| t.mid == Mid("mix".into()))
            .unwrap();
        assert_eq!(mix.direction, TrackDirection::Subscribe);
        assert!(mix.packets >= n as u64, "{mix:?}");

        // Unsubscribed: no more mix packets; a second removal is refused.
        let now = h.now;
        h.cores[0].handle_command(
            now,
            Command::Voice(VoiceCommand::RemoveMixListener {
                session: ls,
                mid: Mid("mix".into()),
            }),
        );
        let before = decode_mix(&h, l, TO_VIEWER).1;
        run_quiet(&mut h, 500);
        assert_eq!(decode_mix(&h, l, TO_VIEWER).1, before);
        let now = h.now;
        h.cores[0].handle_command(
            now,
            Command::Voice(VoiceCommand::RemoveMixListener {
                session: ls,
                mid: Mid("mix".into()),
            }),
        );
        assert!(matches!(
            h.cores[0].poll_event(),
            Some(Event::CommandFailed { id: None, .. })
        ));
    }

    #[test]
    fn sent_again_a_listener_changes_its_exclusions_and_keeps_its_numbering() {
        let mut h = Harness::new(1);
        let a = h.add_publisher(0, 1);
        h.peers[a].publisher.as_mut().unwrap().audio_payloads = tone(440.0);
        let ta = audio_track(&h, a);
        input(&mut h, 0, ta);
        let s = h.peers[a].session;
        listen(&mut h, 0, s, TO_PUBLISHER, Vec::new());
        assert!(h.connect_all(Duration::from_secs(3)));
        run_quiet(&mut h, 2000);
        let (pcm, _) = decode_mix(&h, a, TO_PUBLISHER);
        assert!(
            goertzel(&pcm[pcm.len() - 24_000..], 440.0) > 0.15,
            "hears itself"
        );
        listen(&mut h, 0, s, TO_PUBLISHER, vec![ta]);
        run_quiet(&mut h, 2000);
        // decode_mix checks that the numbering went on across the change.
        let (pcm, _) = decode_mix(&h, a, TO_PUBLISHER);
        let tail = &pcm[pcm.len() - 24_000..];
        assert!(goertzel(tail, 440.0) < 0.01, "no longer");
    }

    #[test]
    fn a_listener_gets_sender_reports_and_its_receiver_reports_show_in_its_stats() {
        use sfu::io::RecvMeta;
        use sfu::stream::compact_ntp;
        use sfu::wire::rtcp::{self, ReportBlock, RtcpPacket};

        let mut h = Harness::new(1);
        let a = h.add_publisher(0, 1);
        let l = h.add_viewer(0, 99);
        h.peers[a].publisher.as_mut().unwrap().audio_payloads = tone(440.0);
        let ta = audio_track(&h, a);
        input(&mut h, 0, ta);
        let ls = h.peers[l].session;
        listen(&mut h, 0, ls, TO_VIEWER, Vec::new());
        assert!(h.connect_all(Duration::from_secs(3)));
        run_quiet(&mut h, 3000);

        // Sender reports about the mix stream: about one a second, each naming the packets
        // sent so far and an RTP timestamp on the stream's clock.
        let srs: Vec<(u64, u32, u32)> = h.peers[l]
            .rtcp
            .iter()
            .flat_map(|c| rtcp::iter(c).filter_map(Result::ok).collect::<Vec<_>>())
            .filter_map(|p| match p {
                RtcpPacket::SenderReport(sr) if sr.ssrc == Ssrc(TO_VIEWER.0) => {
                    Some((sr.ntp, sr.rtp_timestamp, sr.packet_count))
                }
                _ => None,
            })
            .collect();
        assert!((2..=4).contains(&srs.len()), "{} sender reports", srs.len());
        let (_, n) = decode_mix(&h, l, TO_VIEWER);
        let (ntp, rtp_ts, count) = *srs.last().unwrap();
        assert!(count > 0 && count as usize <= n, "{count} of {n}");
        let last_ts = h.peers[l]
            .rtp
            .iter()
            .map(|b| RtpHeader::parse(b).unwrap())
            .filter(|hdr| hdr.ssrc == Ssrc(TO_VIEWER.0))
            .map(|hdr| hdr.timestamp)
            .nth(count as usize - 1)
            .unwrap();
        assert!(
            rtp_ts.wrapping_sub(last_ts) < 960,
            "the report's timestamp {rtp_ts} follows its last packet's {last_ts}"
        );
        // Two reports a second apart: their NTP and RTP times advance alike.
        let (ntp0, rtp0, _) = srs[srs.len() - 2];
        let ntp_s = (ntp - ntp0) as f64 / 4_294_967_296.0;
        let rtp_s = f64::from(rtp_ts.wrapping_sub(rtp0)) / 48_000.0;
        assert!((ntp_s - rtp_s).abs() < 0.025, "{ntp_s} s against {rtp_s} s");
        // The wall clock: NTP seconds since 1900 near the test machine's.
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 2_208_988_800;
        assert!(((ntp >> 32) as i64 - wall as i64).abs() < 60);

        // The listener's receiver report about the mix: its loss and jitter show in the stats.
        let block = ReportBlock {
            ssrc: Ssrc(TO_VIEWER.0),
            fraction_lost: 12,
            cumulative_lost: 3,
            ext_highest_seq: 0,
            jitter: 240,
            last_sr: compact_ntp(ntp),
            delay_since_last_sr: 0,
        };
        let mut buf = vec![0u8; 256];
        let n = rtcp::write_rr(&mut buf, Ssrc(99), &[block]).unwrap();
        let n = h.peers[l].client.protect_rtcp(&mut buf, n).unwrap();
        buf.truncate(n);
        let (src, now) = (h.peers[l].addr, h.now);
        h.cores[0].handle_datagram(now, RecvMeta { src, dst_ip: None }, &mut buf);
        let st = h.cores[0].session_track_stats(ls);
        let mix = st
            .tracks
            .iter()
            .find(|t| t.mid == Mid("mix".into()))
            .unwrap();
        assert_eq!((mix.packets_lost, mix.jitter), (3, 240), "{mix:?}");
    }
}
