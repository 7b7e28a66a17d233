//! Tracks added to and removed from running sessions ([`TrackCommand`]), as ORTC-style signaling
//! does it: sessions start with no media and an unsignalled remote ICE ufrag, connect, and then
//! publish and view tracks; removed tracks stop their media and free their viewers; figures per
//! track; bad commands fail without touching the session.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::time::Duration;

use sfu::control::{
    CloseReason, Command, Event, ExtMap, IceParams, SessionSpec, TrackCommand, TrackDirection,
};
use sfu::sim::*;
use sfu::wire::rtp::RtpHeader;
use sfu::{MediaKind, Mid, SessionId, ShardId, StreamKey, TrackId};

const STREAM: u64 = 42;

/// A peer whose session starts without media and without the client's ICE ufrag.
fn bare_peer(h: &mut Harness, shard: usize) -> usize {
    let fp = h.client_cert.fingerprint();
    h.new_peer(shard, |id, local_ice, _remote| SessionSpec {
        id,
        local_ice,
        remote_ice: IceParams {
            ufrag: String::new(),
            pwd: String::new(),
        },
        remote_fingerprint: fp,
        extmap: ExtMap::default(),
        publish: Vec::new(),
        subscribe: Vec::new(),
    })
}

fn track(h: &mut Harness, peer: usize, cmd: TrackCommand) {
    let (shard, now) = (h.peers[peer].shard, h.now);
    h.cores[shard].handle_command(now, Command::Tracks(cmd));
}

/// Publishes the camera's VP8 and Opus tracks on `peer`'s running session.
fn publish_camera(h: &mut Harness, peer: usize) -> [TrackId; 2] {
    let session = h.peers[peer].session;
    let (s, c) = ice_credentials(session);
    let spec = publisher_spec(
        session,
        s,
        c,
        h.client_cert.fingerprint(),
        StreamKey(STREAM),
    );
    let ids = [spec.publish[0].track, spec.publish[1].track];
    for p in spec.publish {
        track(
            h,
            peer,
            TrackCommand::AddPublish {
                session,
                extmap: spec.extmap,
                spec: p,
            },
        );
    }
    ids
}

/// Views the stream's video and audio on `peer`'s running session.
fn view(h: &mut Harness, peer: usize, shard_of_stream: StreamKey) {
    let session = h.peers[peer].session;
    let (s, c) = ice_credentials(session);
    let spec = viewer_spec(
        session,
        s,
        c,
        h.client_cert.fingerprint(),
        shard_of_stream,
        session.0 as u32,
    );
    for v in spec.subscribe {
        track(
            h,
            peer,
            TrackCommand::AddSubscribe {
                session,
                extmap: spec.extmap,
                spec: v,
            },
        );
    }
}

fn events(h: &mut Harness, shard: usize) -> Vec<Event> {
    std::iter::from_fn(|| h.cores[shard].poll_event()).collect()
}

fn is_keyframe_start(pkt: &[u8]) -> bool {
    let h = RtpHeader::parse(pkt).unwrap();
    let p = h.payload(pkt);
    p[0] & 0x10 != 0 && p[1] & 0x01 == 0
}

/// A publisher and a viewer, both connected before they have any media, then given tracks.
fn connected_pair(shards: usize, viewer_shard: usize) -> (Harness, usize, usize) {
    let mut h = Harness::new(shards);
    let p = bare_peer(&mut h, 0);
    h.peers[p].publisher = Some(MediaSource::new(h.now));
    let v = bare_peer(&mut h, viewer_shard);
    assert!(
        h.connect_all(Duration::from_secs(3)),
        "sessions without media and without the client's ufrag connect"
    );
    (h, p, v)
}

#[test]
fn tracks_added_to_connected_sessions_flow_like_negotiated_ones() {
    let (mut h, p, v) = connected_pair(1, 0);
    h.run(Duration::from_millis(300));
    assert!(
        h.video_received(v).is_empty(),
        "nothing to view before anything is published"
    );
    // The viewer asks first; the published tracks bind to it when they come.
    view(&mut h, v, StreamKey(STREAM));
    h.run(Duration::from_millis(300));
    publish_camera(&mut h, p);
    h.run(Duration::from_secs(3));
    let video = h.video_received(v);
    assert!(
        video.len() > 150,
        "viewer got {} video packets",
        video.len()
    );
    assert!(
        is_keyframe_start(&video[0].1),
        "the first forwarded packet starts a keyframe"
    );
    assert!(h.audio_received(v) > 100, "audio: {}", h.audio_received(v));
    assert!(
        events(&mut h, 0)
            .iter()
            .all(|e| !matches!(e, Event::CommandFailed { .. })),
        "every track command applied"
    );

    // A second viewer that subscribes after the publisher is there starts at once.
    let late = bare_peer(&mut h, 0);
    assert!(h.connect_all(Duration::from_secs(3)));
    view(&mut h, late, StreamKey(STREAM));
    h.run(Duration::from_secs(2));
    assert!(
        h.video_received(late).len() > 50,
        "late viewer: {}",
        h.video_received(late).len()
    );
}

#[test]
fn removed_tracks_stop_their_media_and_a_new_publish_resumes_the_viewer() {
    let (mut h, p, v) = connected_pair(1, 0);
    let [video_track, audio_track] = publish_camera(&mut h, p);
    view(&mut h, v, StreamKey(STREAM));
    h.run(Duration::from_secs(2));
    let audio_before = h.audio_received(v);
    assert!(audio_before > 50, "audio flows: {audio_before}");

    // The viewer drops its audio section (mid "1" in `viewer_spec`): audio stops, video goes on.
    let session = h.peers[v].session;
    track(
        &mut h,
        v,
        TrackCommand::RemoveSubscribe {
            session,
            mid: Mid("1".into()),
        },
    );
    h.run(Duration::from_millis(50));
    let (audio_cut, video_cut) = (h.audio_received(v), h.video_received(v).len());
    h.run(Duration::from_secs(1));
    assert_eq!(h.audio_received(v), audio_cut, "no audio after unsubscribe");
    assert!(
        h.video_received(v).len() > video_cut + 40,
        "video keeps flowing"
    );

    // The publisher unpublishes its video: the viewer gets nothing more.
    let publisher = h.peers[p].session;
    track(
        &mut h,
        p,
        TrackCommand::RemovePublish {
            session: publisher,
            track: video_track,
        },
    );
    h.run(Duration::from_millis(50));
    let stopped = h.video_received(v).len();
    h.run(Duration::from_secs(1));
    assert_eq!(
        h.video_received(v).len(),
        stopped,
        "no video after unpublish"
    );
    let stats = h.cores[0].session_track_stats(publisher);
    assert_eq!(stats.tracks.len(), 1, "only the audio track is left");
    assert_eq!(stats.tracks[0].track, Some(audio_track));

    // Published again under a new track id, the same viewer section resumes.
    let (s, c) = ice_credentials(publisher);
    let mut spec = publisher_spec(
        publisher,
        s,
        c,
        h.client_cert.fingerprint(),
        StreamKey(STREAM),
    );
    let mut again = spec.publish.remove(0);
    again.track = TrackId(video_track.0 + 1000);
    again.mid = Mid("5".into());
    track(
        &mut h,
        p,
        TrackCommand::AddPublish {
            session: publisher,
            extmap: spec.extmap,
            spec: again,
        },
    );
    h.run(Duration::from_secs(2));
    let resumed = h.video_received(v);
    assert!(
        resumed.len() > stopped + 50,
        "video resumed: {} after {stopped}",
        resumed.len()
    );
    let seqs: Vec<u16> = resumed.iter().map(|(hdr, _)| hdr.seq.0).collect();
    assert_eq!(
        seqs[stopped],
        seqs[stopped - 1].wrapping_add(1),
        "the viewer's sequence continues across the new source"
    );
}

#[test]
fn stats_count_published_and_viewed_packets() {
    let (mut h, p, v) = connected_pair(1, 0);
    let [video_track, audio_track] = publish_camera(&mut h, p);
    view(&mut h, v, StreamKey(STREAM));
    h.run(Duration::from_secs(3));
    let (publisher, viewer) = (h.peers[p].session, h.peers[v].session);

    let (tx, rx) = crossbeam_channel::bounded(1);
    track(
        &mut h,
        p,
        TrackCommand::Stats {
            session: publisher,
            reply: tx,
        },
    );
    let ps = rx.try_recv().expect("the shard answers at once");
    assert!(ps.found);
    assert_eq!(ps.tracks.len(), 2);
    for t in &ps.tracks {
        assert_eq!(t.direction, TrackDirection::Publish);
        assert!(t.packets > 50 && t.bytes > t.packets * 10, "{t:?}");
        assert_eq!(t.packets_lost, 0, "{t:?}");
    }
    let video = ps
        .tracks
        .iter()
        .find(|t| t.kind == MediaKind::Video)
        .unwrap();
    assert_eq!(video.track, Some(video_track));
    assert_eq!(video.clock_rate, 90_000);

    let vs = h.cores[0].session_track_stats(viewer);
    assert_eq!(vs.tracks.len(), 2);
    for t in &vs.tracks {
        assert_eq!(t.direction, TrackDirection::Subscribe);
        assert!(t.packets > 50, "{t:?}");
    }
    let audio = vs
        .tracks
        .iter()
        .find(|t| t.kind == MediaKind::Audio)
        .unwrap();
    assert_eq!(
        audio.track,
        Some(audio_track),
        "names the source it is bound to"
    );
    assert!(
        audio.packets
            <= ps
                .tracks
                .iter()
                .find(|t| t.kind == MediaKind::Audio)
                .unwrap()
                .packets,
        "a viewer cannot be sent more than was published"
    );

    let unknown = h.cores[0].session_track_stats(SessionId(999_999));
    assert!(!unknown.found && unknown.tracks.is_empty());
}

#[test]
fn refused_track_commands_leave_the_session_running() {
    let (mut h, p, _v) = connected_pair(1, 0);
    publish_camera(&mut h, p);
    events(&mut h, 0);
    let session = h.peers[p].session;
    let (s, c) = ice_credentials(session);
    let spec = publisher_spec(session, s, c, h.client_cert.fingerprint(), StreamKey(7));
    let mut refused = Vec::new();
    // Unknown session.
    track(
        &mut h,
        p,
        TrackCommand::AddPublish {
            session: SessionId(999_999),
            extmap: spec.extmap,
            spec: spec.publish[0].clone(),
        },
    );
    // A mid extension id that contradicts the session's.
    let mut other = spec.publish[0].clone();
    other.track = TrackId(77);
    other.mid = Mid("9".into());
    track(
        &mut h,
        p,
        TrackCommand::AddPublish {
            session,
            extmap: ExtMap {
                mid: Some(PUB_EXT_MID + 7),
                ..spec.extmap
            },
            spec: other.clone(),
        },
    );
    // A mid already in use.
    other.mid = Mid("0".into());
    track(
        &mut h,
        p,
        TrackCommand::AddPublish {
            session,
            extmap: spec.extmap,
            spec: other,
        },
    );
    // Removing what is not there.
    track(
        &mut h,
        p,
        TrackCommand::RemovePublish {
            session,
            track: TrackId(12345),
        },
    );
    for e in events(&mut h, 0) {
        match e {
            Event::CommandFailed { id, error, .. } => {
                assert_eq!(id, None, "a track failure does not name the session");
                refused.push(error);
            }
            Event::SessionClosed { reason, .. } => panic!("session closed: {reason:?}"),
            _ => {}
        }
    }
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(refused[1].contains("mid"), "{}", refused[1]);
    h.run(Duration::from_millis(500));
    assert_eq!(h.cores[0].session_track_stats(session).tracks.len(), 2);
    assert!(!events(&mut h, 0).iter().any(|e| matches!(
        e,
        Event::SessionClosed {
            reason: CloseReason::Removed,
            ..
        }
    )));
}

#[test]
fn a_track_added_on_one_shard_reaches_a_viewer_on_another() {
    let (mut h, p, v) = connected_pair(2, 1);
    publish_camera(&mut h, p);
    view(&mut h, v, StreamKey(STREAM));
    let now = h.now;
    h.cores[0].handle_command(
        now,
        Command::LinkShard {
            stream: StreamKey(STREAM),
            shard: ShardId(1),
            linked: true,
        },
    );
    h.run(Duration::from_secs(3));
    assert!(
        h.video_received(v).len() > 100,
        "cross-shard video: {}",
        h.video_received(v).len()
    );
    assert!(h.audio_received(v) > 50);
}
