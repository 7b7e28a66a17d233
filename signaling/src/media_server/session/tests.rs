use super::*;
use crate::media_server::produce::produce;
use crate::sdp::Capabilities;
use serde_json::json;
use sfu::{Mid, Ssrc};

fn transport(shard: u16, n: u64) -> Transport {
    Transport {
        id: Uuid::new_v4(),
        shard_session: SessionId(n),
        shard: ShardId(shard),
        ice: IceParams {
            ufrag: format!("u{n}"),
            pwd: "p".repeat(24),
        },
        candidates: Vec::new(),
        state: TransportState::New,
    }
}

/// A session whose transports are on `shard` (shard sessions `10n`, `10n+1`).
fn session(local: &mut Local, n: u64, shard: u16) -> Uuid {
    let id = Uuid::new_v4();
    local.insert(MediaSession {
        id,
        kind: SessionType::Video,
        channel_id: Uuid::nil(),
        user_id: format!("user{n}"),
        created: Instant::now(),
        created_at: String::new(),
        audio: AudioQuality::Medium,
        video: None,
        send: transport(shard, 10 * n),
        recv: transport(shard, 10 * n + 1),
        producers: Vec::new(),
        consumers: Vec::new(),
        next_mid: 0,
        rate_marks: HashMap::new(),
        mix: None,
    });
    id
}

fn fingerprint() -> Fingerprint {
    Fingerprint::sha256_of(b"client certificate")
}

fn producer(local: &mut Local) -> Producer {
    let params: RtpParameters = serde_json::from_value(json!({
        "mid": "0",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2}],
        "encodings": [{"ssrc": 5}]
    }))
    .expect("parameters");
    let key = local.next_stream_key();
    let produced = produce(
        &Capabilities::default(),
        MediaKind::Audio,
        &params,
        key,
        TrackId(1),
        "0",
    )
    .expect("valid producer");
    Producer {
        id: Uuid::new_v4(),
        produced,
        created: Instant::now(),
    }
}

fn consumer(local: &Local, producer: &Producer, mid: &str) -> Consumer {
    let psession = local.producers[&producer.id];
    let pshard = local.sessions[&psession].send.shard;
    Consumer {
        id: Uuid::new_v4(),
        producer: producer.id,
        producer_shard: pshard,
        spec: SubscribeSpec {
            stream: producer.produced.spec.stream,
            kind: MediaKind::Audio,
            mid: Mid(mid.into()),
            ssrc: Ssrc(9),
            rtx_ssrc: None,
            codecs: producer.produced.spec.codecs.clone(),
        },
        extmap: ExtMap::default(),
        rtp_parameters: RtpParameters::default(),
        created: Instant::now(),
    }
}

fn kinds(cmds: &Commands) -> Vec<String> {
    cmds.iter()
        .map(|(to, c)| {
            let what = match c {
                Command::AddSession(_) => "add-session".to_string(),
                Command::RemoveSession(_) => "remove-session".to_string(),
                Command::LinkShard { shard, linked, .. } => format!("link->{}:{linked}", shard.0),
                Command::Tracks(TrackCommand::AddPublish { .. }) => "add-publish".into(),
                Command::Tracks(TrackCommand::RemovePublish { .. }) => "remove-publish".into(),
                Command::Tracks(TrackCommand::AddSubscribe { .. }) => "add-subscribe".into(),
                Command::Tracks(TrackCommand::RemoveSubscribe { .. }) => "remove-subscribe".into(),
                Command::Voice(VoiceCommand::SetGroup { group: Some(_), .. }) => {
                    "voice-join".into()
                }
                Command::Voice(VoiceCommand::SetGroup { group: None, .. }) => "voice-leave".into(),
                other => format!("{other:?}"),
            };
            format!("{}:{what}", to.0)
        })
        .collect()
}

#[test]
fn connect_starts_the_shard_session_with_the_tracks_added_before_it() {
    let mut local = Local::default();
    let a = session(&mut local, 1, 0);
    let b = session(&mut local, 2, 0);
    let p = producer(&mut local);
    assert!(
        local.add_producer(a, p.clone()).is_empty(),
        "send transport not running yet"
    );
    let c = consumer(&local, &p, "0");
    assert!(
        local.add_consumer(b, c).is_empty(),
        "same shard, not running: nothing to send"
    );
    let cmds = local
        .connect(b, Direction::Recv, fingerprint())
        .expect("first connect");
    assert_eq!(kinds(&cmds), ["0:add-session", "0:add-subscribe"]);
    let Command::AddSession(spec) = &cmds[0].1 else {
        panic!("AddSession first")
    };
    assert_eq!(spec.id, SessionId(21));
    assert!(
        spec.remote_ice.ufrag.is_empty(),
        "the client's ufrag is learned by the shard"
    );
    assert!(spec.publish.is_empty() && spec.subscribe.is_empty());
    assert_eq!(
        local.connect(b, Direction::Recv, fingerprint()).err(),
        Some(ConnectError::AlreadyConnected(Direction::Recv))
    );
    let cmds = local
        .connect(a, Direction::Send, fingerprint())
        .expect("send connect");
    assert_eq!(
        kinds(&cmds),
        ["0:add-session", "0:add-publish", "0:voice-join"],
        "an audio producer joins its channel's voice group after it is published"
    );
    let Command::Voice(VoiceCommand::SetGroup { track, group }) = &cmds[2].1 else {
        panic!("SetGroup third")
    };
    assert_eq!(
        (*track, *group),
        (TrackId(1), Some(voice_group(Uuid::nil())))
    );
    // Running now: a second producer goes straight to the shard.
    let p2 = producer(&mut local);
    assert_eq!(
        kinds(&local.add_producer(a, p2)),
        ["0:add-publish", "0:voice-join"]
    );
    assert_eq!(
        local.transport_of(SessionId(10)),
        Some((a, Direction::Send))
    );
}

#[test]
fn consumers_on_another_shard_link_it_once_and_unlink_with_the_last() {
    let mut local = Local::default();
    let a = session(&mut local, 1, 0);
    let b = session(&mut local, 2, 1);
    let c = session(&mut local, 3, 1);
    let p = producer(&mut local);
    local.add_producer(a, p.clone());
    local
        .connect(b, Direction::Recv, fingerprint())
        .expect("connect");
    let cb = consumer(&local, &p, "0");
    let cb_id = cb.id;
    assert_eq!(
        kinds(&local.add_consumer(b, cb)),
        ["0:link->1:true", "1:add-subscribe"]
    );
    let cc = consumer(&local, &p, "0");
    let cc_id = cc.id;
    assert!(
        local.add_consumer(c, cc).is_empty(),
        "already linked; c not connected"
    );
    let (_, cmds) = local.remove_consumer(b, cb_id).expect("exists");
    assert_eq!(
        kinds(&cmds),
        ["1:remove-subscribe"],
        "c still needs the link"
    );
    let (_, cmds) = local.remove_consumer(c, cc_id).expect("exists");
    assert_eq!(kinds(&cmds), ["0:link->1:false"]);
    assert!(local.remove_consumer(c, cc_id).is_none());
}

#[test]
fn a_removed_producer_takes_its_consumers_everywhere_with_it() {
    let mut local = Local::default();
    let a = session(&mut local, 1, 0);
    let b = session(&mut local, 2, 1);
    local
        .connect(a, Direction::Send, fingerprint())
        .expect("connect");
    local
        .connect(b, Direction::Recv, fingerprint())
        .expect("connect");
    let p = producer(&mut local);
    local.add_producer(a, p.clone());
    let cb = consumer(&local, &p, "0");
    let cb_id = cb.id;
    local.add_consumer(b, cb);
    let (gone, cmds, consumers) = local.remove_producer(a, p.id).expect("exists");
    assert_eq!(gone.id, p.id);
    assert_eq!(
        kinds(&cmds),
        [
            "1:remove-subscribe",
            "0:link->1:false",
            "0:remove-publish",
            "0:voice-leave"
        ]
    );
    assert_eq!(consumers, vec![(b, cb_id)]);
    assert!(local.sessions[&b].consumers.is_empty());
    assert!(!local.producers.contains_key(&p.id));
}

#[test]
fn a_removed_session_ends_its_shard_sessions_and_its_tracks_elsewhere() {
    let mut local = Local::default();
    let a = session(&mut local, 1, 0);
    let b = session(&mut local, 2, 1);
    local
        .connect(a, Direction::Send, fingerprint())
        .expect("connect");
    local
        .connect(b, Direction::Recv, fingerprint())
        .expect("connect");
    let p = producer(&mut local);
    local.add_producer(a, p.clone());
    let cb = consumer(&local, &p, "0");
    let cb_id = cb.id;
    local.add_consumer(b, cb);
    let (snapshot, cmds, elsewhere) = local.remove_session(a).expect("exists");
    assert_eq!(
        snapshot.producers.len(),
        1,
        "the snapshot keeps what it held"
    );
    assert_eq!(
        kinds(&cmds),
        [
            "1:remove-subscribe",
            "0:link->1:false",
            "0:voice-leave",
            "0:remove-session"
        ],
        "the never-connected receive transport has no shard session to remove"
    );
    assert_eq!(elsewhere, vec![(b, cb_id)]);
    assert!(local.transport_of(SessionId(10)).is_none());
    assert!(local.sessions.contains_key(&b));
}

#[test]
fn an_ended_transport_takes_its_tracks_and_the_session_when_nothing_else_runs() {
    let mut local = Local::default();
    let a = session(&mut local, 1, 0);
    let b = session(&mut local, 2, 0);
    local
        .connect(a, Direction::Send, fingerprint())
        .expect("connect");
    local
        .connect(a, Direction::Recv, fingerprint())
        .expect("connect");
    local
        .connect(b, Direction::Recv, fingerprint())
        .expect("connect");
    let p = producer(&mut local);
    local.add_producer(a, p.clone());
    let cb = consumer(&local, &p, "0");
    local.add_consumer(b, cb);

    let (cmds, producers, done) = local.end_transport(a, Direction::Send).expect("exists");
    assert_eq!(
        kinds(&cmds),
        ["0:remove-subscribe", "0:voice-leave"],
        "only the viewer's section goes, and the voice membership the shard keeps past a track"
    );
    assert_eq!(producers.len(), 1);
    assert!(!done, "the receive transport still runs");
    assert!(local.sessions[&b].consumers.is_empty());
    assert_eq!(
        local.connect(a, Direction::Send, fingerprint()).err(),
        Some(ConnectError::Closed(Direction::Send))
    );
    let (_, _, done) = local.end_transport(a, Direction::Recv).expect("exists");
    assert!(done, "nothing runs any more");
}

#[test]
fn a_video_preset_caps_the_receive_transport_when_it_connects() {
    let mut local = Local::default();
    let a = session(&mut local, 3, 0);
    if let Some(s) = local.sessions.get_mut(&a) {
        s.video = Some(VideoQuality::Medium);
    }
    let cmds = local
        .connect(a, Direction::Recv, fingerprint())
        .expect("connects");
    let caps: Vec<_> = cmds
        .iter()
        .filter_map(|(_, c)| match c {
            Command::SetQuality { session, cap } => Some((*session, *cap)),
            _ => None,
        })
        .collect();
    assert_eq!(caps.len(), 1, "{:?}", kinds(&cmds));
    assert_eq!(caps[0].0, SessionId(31));
    assert_eq!(caps[0].1.max_video, Some(sfu::Bitrate::kbps(500)));
    assert_eq!(caps[0].1.max_height, Some(360));
    // The send transport gets no cap.
    let cmds = local
        .connect(a, Direction::Send, fingerprint())
        .expect("connects");
    assert!(
        !cmds
            .iter()
            .any(|(_, c)| matches!(c, Command::SetQuality { .. }))
    );
}
