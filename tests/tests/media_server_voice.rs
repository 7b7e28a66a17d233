//! Voice channels on the media server (`/sessions`, seed 002) with mediasoup-client in Debian's
//! Chromium (tests/mediasoup/voice.mjs): participants of one channel publish WebAudio tones as
//! `audio` sessions. A speaking producer becomes the channel's active speaker
//! (`GET /sessions/{id}/stats`: `active_speaker`, per-track `audio_level` and `speaking`;
//! `media.speaker.active` on NATS) and a muted one (track disabled: it sends silence) never
//! does.

mod stream_support;

use std::process::Command;
use std::time::Duration;

use ringcast_tests::{Server, deps, media_lock, paths, script};
use serde_json::Value;
use stream_support::*;

/// Seconds the pages run after joining.
const RUN_S: u64 = 6;

/// One page: user, tone (Hz, 0 for none) and flags (`muted`, `mix`).
struct Participant {
    user: &'static str,
    tone: u32,
    flags: &'static str,
}

/// Runs `tests/mediasoup/voice.mjs` against `server` in a fresh channel; its JSON lines.
fn run_pages(server: &Server, channel: &str, participants: &[Participant]) -> Vec<Value> {
    deps::require_node_modules(
        "mediasoup",
        &["mediasoup-client", "esbuild", "playwright-core"],
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(paths::workspace_root())
        .arg("tests/mediasoup/voice.mjs")
        .args(["--server", &server.base_url(), "--channel", channel])
        .args(["--duration", &RUN_S.to_string()]);
    for p in participants {
        cmd.args([
            "--participant",
            &format!("{}:{}:{}:{}", p.user, token(p.user), p.tone, p.flags),
        ]);
    }
    script::run_json_lines(cmd, Duration::from_secs(RUN_S + 60))
        .unwrap_or_else(|e| panic!("`node` is needed (scripts/install-test-deps.sh): {e}"))
        .into_clean_lines("voice.mjs", server)
}

fn joined<'a>(lines: &'a [Value], user: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["type"] == "joined" && v["user"] == user)
        .unwrap_or_else(|| panic!("{user} did not join: {lines:#?}"))
}

fn samples(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|v| v["type"] == "sample").collect()
}

/// The published audio track of `user` in the server's stats of its session, in sample `s`.
fn published_audio<'a>(s: &'a Value, user: &str) -> &'a Value {
    let server = &s["participants"][user]["server"];
    assert_eq!(server["status"], 200, "{server}");
    server["body"]["tracks"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|t| t["direction"] == "publish" && t["kind"] == "audio")
        })
        .unwrap_or_else(|| panic!("no published audio for {user}: {server}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_speaking_producer_becomes_the_active_speaker_and_a_muted_one_does_not() {
    let _lock = media_lock();
    let nats = Backing::nats();
    let server =
        Server::start(stream_server(&[("NATS_URL", nats.nats_url())])).expect("server starts");
    let mut bus = Subscriber::connect(&nats.nats_url(), &["media.speaker.active"]);
    let channel = uuid();
    let lines = run_pages(
        &server,
        &channel,
        &[
            Participant {
                user: "alice",
                tone: 440,
                flags: "",
            },
            Participant {
                user: "bob",
                tone: 660,
                flags: "muted",
            },
        ],
    );
    let alice = joined(&lines, "alice");
    let bob = joined(&lines, "bob");
    let (alice_track, bob_track) = (&alice["producer"], &bob["producer"]);
    assert!(
        alice_track.is_string() && bob_track.is_string(),
        "{lines:#?}"
    );

    let all = samples(&lines);
    assert!(all.len() >= RUN_S as usize - 1, "{} samples", all.len());
    // By the last seconds Alice speaks, is the channel's speaker in both sessions' stats, and
    // Bob (muted) is silent. Every sample that names a speaker names Alice.
    for s in &all {
        for user in ["alice", "bob"] {
            let speaker = &s["participants"][user]["server"]["body"]["active_speaker"];
            assert!(
                speaker.is_null() || speaker == alice_track,
                "at {}: {user}'s stats name {speaker} as the speaker",
                s["t"]
            );
            let b = published_audio(s, "bob");
            assert_eq!(b["speaking"], false, "muted Bob speaks at {}: {b}", s["t"]);
        }
    }
    for s in &all[all.len() - 3..] {
        let a = published_audio(s, "alice");
        let b = published_audio(s, "bob");
        eprintln!("at {}: alice {a}, bob {b}", s["t"]);
        assert_eq!(a["speaking"], true, "{a}");
        assert!(num(&a["audio_level"]) > -30.0, "a loud tone: {a}");
        assert!(
            num(&b["audio_level"]) < -90.0,
            "a muted track sends silence: {b}"
        );
        for user in ["alice", "bob"] {
            let body = &s["participants"][user]["server"]["body"];
            assert_eq!(&body["active_speaker"], alice_track, "{user}: {body}");
        }
    }
    // The bus said so too, naming Alice's session and user.
    let ev = bus.wait_for("media.speaker.active", Duration::from_secs(5), |v| {
        v["channel_id"] == channel.as_str() && !v["track_id"].is_null()
    });
    assert_eq!(&ev["track_id"], alice_track, "{ev}");
    assert_eq!(ev["session_id"], alice["session_id"], "{ev}");
    assert_eq!(ev["user_id"], "alice", "{ev}");
    assert!(num(&ev["audio_level"]) > -30.0, "{ev}");
    assert!(is_rfc3339(&ev["timestamp"]), "{ev}");
    assert!(
        bus.seen
            .iter()
            .all(|(_, v)| v["track_id"].is_null() || &v["track_id"] == alice_track),
        "only Alice was ever the speaker: {:#?}",
        bus.seen
    );
}

/// The last second of a participant's decoded mix, as its page measured it.
fn analysis<'a>(s: &'a Value, user: &str) -> &'a Value {
    let a = &s["participants"][user]["page"]["analysis"];
    assert!(
        a.is_object(),
        "{user} analysed no mix: {}",
        s["participants"][user]["page"]
    );
    a
}

#[test]
fn a_mix_listener_gets_one_stream_with_both_tones_and_a_publisher_not_its_own() {
    let _lock = media_lock();
    let server = Server::start(stream_server(&[])).expect("server starts");
    let channel = uuid();
    let lines = run_pages(
        &server,
        &channel,
        &[
            Participant {
                user: "alice",
                tone: 440,
                flags: "mix",
            },
            Participant {
                user: "bob",
                tone: 660,
                flags: "",
            },
            Participant {
                user: "carol",
                tone: 0,
                flags: "mix",
            },
        ],
    );
    let carol = joined(&lines, "carol");
    assert!(carol["producer"].is_null(), "carol publishes nothing");
    assert_eq!(carol["mix"]["kind"], "audio", "{carol}");
    assert_eq!(carol["mix"]["track_id"], "mix", "{carol}");
    assert_eq!(carol["mix"]["codec"]["mimeType"], "audio/opus", "{carol}");

    let all = samples(&lines);
    let last = all[all.len() - 1];
    let heard = analysis(last, "carol");
    let (c440, c660, c550) = (
        num(&heard["a440"]),
        num(&heard["a660"]),
        num(&heard["a550"]),
    );
    eprintln!("carol's mix: {heard}");
    assert!(c440 > 0.1 && c660 > 0.1, "both tones: {heard}");
    assert!(c550 < c440.min(c660) / 5.0, "tones, not noise: {heard}");
    let own = analysis(last, "alice");
    eprintln!("alice's mix: {own}");
    let (a440, a660) = (num(&own["a440"]), num(&own["a660"]));
    assert!(a660 > 0.1, "alice hears bob: {own}");
    assert!(a440 < a660 / 10.0, "alice does not hear herself: {own}");

    // One stream each, and the server counts it.
    for user in ["alice", "carol"] {
        let page = &last["participants"][user]["page"];
        assert!(
            num(&page["received"]["packetsReceived"]) > 100.0,
            "{user}: {page}"
        );
        let tracks = &last["participants"][user]["server"]["body"]["tracks"];
        let mix: Vec<&Value> = tracks
            .as_array()
            .map(|t| t.iter().filter(|t| t["direction"] == "subscribe").collect())
            .unwrap_or_default();
        assert_eq!(mix.len(), 1, "{user}: {tracks}");
        assert_eq!(mix[0]["track_id"], "mix", "{user}: {tracks}");
        assert!(num(&mix[0]["packets_sent"]) > 100.0, "{user}: {tracks}");
        assert!(
            num(&mix[0]["bitrate"]) > 8_000.0 && num(&mix[0]["bitrate"]) < 80_000.0,
            "{user}: {tracks}"
        );
    }
}

#[test]
fn the_mix_subscription_answers_consumer_parameters_and_refuses_what_it_cannot_do() {
    let server = Server::start(stream_server(&[])).expect("server starts");
    let channel = uuid();
    let alice = token("alice");
    let r = post_json(
        &server,
        "/sessions",
        Some(&alice),
        &serde_json::json!({ "type": "audio", "channel_id": channel, "user_id": "alice" }),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let s: Value = r.json().expect("JSON");
    let sid = s["session_id"].as_str().expect("id").to_string();
    let device = s["router_rtp_capabilities"].clone();
    let subscribe = |body: Value| {
        post_json(
            &server,
            &format!("/sessions/{sid}/subscribe"),
            Some(&alice),
            &body,
        )
    };
    // Another channel's mix, and neither a track nor the mix, are refused.
    assert_problem(
        &subscribe(
            serde_json::json!({ "mix": true, "channel_id": uuid(), "rtp_capabilities": device }),
        ),
        422,
    );
    assert_problem(
        &subscribe(serde_json::json!({ "rtp_capabilities": device })),
        422,
    );
    let r = subscribe(
        serde_json::json!({ "mix": true, "channel_id": channel, "rtp_capabilities": device }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let m: Value = r.json().expect("JSON");
    assert_eq!(m["track_id"], "mix");
    assert_eq!(m["producerId"], "mix");
    assert_eq!(m["kind"], "audio");
    assert_eq!(m["type"], "mix");
    let rp = &m["rtpParameters"];
    assert_eq!(rp["codecs"][0]["mimeType"], "audio/opus", "{rp}");
    assert_eq!(
        rp["codecs"].as_array().map(Vec::len),
        Some(1),
        "no RTX: {rp}"
    );
    assert!(rp["encodings"][0]["ssrc"].as_u64().is_some_and(|s| s > 0));
    assert_eq!(rp["mid"], "0");
    assert!(
        rp["headerExtensions"].as_array().is_some_and(|e| e
            .iter()
            .any(|x| x["uri"] == "urn:ietf:params:rtp-hdrext:ssrc-audio-level")),
        "the mix carries its level: {rp}"
    );
    // Once per session; `track_id: "mix"` is the same request.
    assert_problem(
        &subscribe(serde_json::json!({ "track_id": "mix", "rtp_capabilities": device })),
        409,
    );
    // The session lists it; its stats count it (nothing sent before the transport connects).
    let got: Value = get(&server, &format!("/sessions/{sid}"), Some(&alice))
        .json()
        .expect("JSON");
    assert!(
        got["consumers"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["track_id"] == "mix")),
        "{got}"
    );
    let st: Value = get(&server, &format!("/sessions/{sid}/stats"), Some(&alice))
        .json()
        .expect("JSON");
    assert_eq!(st["active_speaker"], Value::Null, "{st}");
    assert_eq!(st["tracks"][0]["track_id"], "mix", "{st}");
    assert_eq!(st["tracks"][0]["direction"], "subscribe", "{st}");
    // Unsubscribed with DELETE …/tracks/mix; again is 404; subscribing again works.
    let d = call(
        "DELETE",
        &server.url(&format!("/sessions/{sid}/tracks/mix")),
        Some(&alice),
        None,
    );
    assert_eq!(d.status, 200, "{}", d.describe());
    let d: Value = d.json().expect("JSON");
    assert_eq!(d["status"], "unsubscribed");
    assert_eq!(d["consumer_id"], m["id"]);
    assert_problem(
        &call(
            "DELETE",
            &server.url(&format!("/sessions/{sid}/tracks/mix")),
            Some(&alice),
            None,
        ),
        404,
    );
    let again = subscribe(serde_json::json!({ "mix": true, "rtp_capabilities": device }));
    assert_eq!(again.status, 200, "{}", again.describe());
    let again: Value = again.json().expect("JSON");
    assert_eq!(
        again["rtpParameters"]["mid"], "1",
        "mids count up per receive transport"
    );
}
