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
