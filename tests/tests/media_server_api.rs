//! The media server's HTTP contract (`/sessions`, seed 002) against the real server binary:
//! bearer-JWT auth, ownership, MAX_SESSIONS, the ORTC fields mediasoup-client needs, publish and
//! subscribe checks, the stats shape, recording when it is off, and the start-up checks of
//! RTC_MIN_PORT/RTC_MAX_PORT. Every error must be a problem+json body. Media itself flows in
//! `media_server_mediasoup.rs`.

mod stream_support;

use std::process::Command;

use ringcast_tests::{HttpResponse, Server, ServerOptions};
use serde_json::{Value, json};
use stream_support::*;

fn media_server(extra_env: &[(&str, &str)]) -> Server {
    let mut o = ServerOptions::new(1, ringcast_tests::Io::Mmsg).env("JWT_SECRET", SECRET);
    for (k, v) in extra_env {
        o = o.env(*k, *v);
    }
    Server::start(o).expect("server starts")
}

/// POST /sessions as `user` (its token) in `channel`; the response.
fn create(server: &Server, user: &str, channel: &str, kind: &str) -> HttpResponse {
    post_json(
        server,
        "/sessions",
        Some(&token(user)),
        &json!({ "type": kind, "channel_id": channel, "user_id": user }),
    )
}

#[track_caller]
fn created(server: &Server, user: &str, channel: &str, kind: &str) -> Value {
    let r = create(server, user, channel, kind);
    assert_eq!(r.status, 201, "create: {}", r.describe());
    r.json().expect("JSON session")
}

fn delete(server: &Server, path: &str, tok: &str) -> HttpResponse {
    call("DELETE", &server.url(path), Some(tok), None)
}

/// RTP parameters as mediasoup-client sends them for Chromium's Opus.
fn opus_parameters(ssrc: u32) -> Value {
    json!({
        "mid": "0",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
                    "parameters": {"minptime": 10, "useinbandfec": 1},
                    "rtcpFeedback": [{"type": "transport-cc", "parameter": ""}]}],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4, "encrypt": false, "parameters": {}},
            {"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1, "encrypt": false, "parameters": {}}
        ],
        "encodings": [{"ssrc": ssrc, "dtx": false}],
        "rtcp": {"cname": "alice-cname", "reducedSize": true}
    })
}

/// RTP parameters as mediasoup-client sends them for Chromium's VP8 camera.
fn vp8_parameters(ssrc: u32) -> Value {
    json!({
        "mid": "1",
        "codecs": [
            {"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "parameters": {},
             "rtcpFeedback": [{"type": "goog-remb"}, {"type": "transport-cc"}, {"type": "ccm", "parameter": "fir"},
                              {"type": "nack"}, {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": {"apt": 96}, "rtcpFeedback": []}
        ],
        "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4}],
        "encodings": [{"ssrc": ssrc, "rtx": {"ssrc": ssrc + 1}}],
        "rtcp": {"cname": "alice-cname", "reducedSize": true}
    })
}

#[test]
fn auth_ownership_and_the_ortc_fields_of_a_session() {
    let server = media_server(&[]);
    let channel = uuid();
    let body = json!({ "type": "audio", "channel_id": channel, "user_id": "alice" });

    // 401: missing, malformed, expired, wrong key; on reads too.
    let r = post_json(&server, "/sessions", None, &body);
    assert_problem(&r, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    for tok in [
        "not-a-jwt".to_string(),
        token_hs(SECRET, "alice", -3600),
        token_hs("another-secret", "alice", 3600),
    ] {
        assert_problem(&post_json(&server, "/sessions", Some(&tok), &body), 401);
    }
    assert_problem(&get(&server, "/sessions/rtp-capabilities", None), 401);

    // 403: a body naming another user than the token's.
    let r = post_json(&server, "/sessions", Some(&token("mallory")), &body);
    assert_problem(&r, 403);

    // 201 with the seed's fields and what mediasoup-client needs.
    let r = create(&server, "alice", &channel, "audio");
    assert_eq!(r.status, 201, "{}", r.describe());
    let s: Value = r.json().expect("JSON");
    let id = s["session_id"].as_str().expect("session_id").to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("/sessions/{id}").as_str())
    );
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert!(s["ice_servers"].is_array(), "{s}");
    let dtls = &s["dtls_parameters"];
    assert_eq!(
        dtls["role"], "server",
        "the client takes the DTLS client role"
    );
    assert_eq!(dtls["fingerprints"][0]["algorithm"], "sha-256");
    assert_eq!(
        dtls["fingerprints"][0]["value"].as_str().map(str::len),
        Some(95),
        "32 colon-separated hex bytes: {dtls}"
    );
    let caps = &s["router_rtp_capabilities"];
    let mimes: Vec<&str> = caps["codecs"]
        .as_array()
        .expect("codecs")
        .iter()
        .filter_map(|c| c["mimeType"].as_str())
        .collect();
    assert!(
        mimes.contains(&"audio/opus") && mimes.contains(&"video/VP8"),
        "{mimes:?}"
    );
    assert!(
        caps["headerExtensions"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    );
    assert_eq!(
        get(
            &server,
            "/sessions/rtp-capabilities",
            Some(&token("anyone"))
        )
        .json()
        .expect("JSON"),
        *caps,
        "the same capabilities on their own endpoint"
    );
    for t in ["send_transport", "recv_transport"] {
        let t = &s[t];
        assert!(t["id"].as_str().is_some_and(|i| i.len() == 36), "{t}");
        assert_eq!(t["iceParameters"]["iceLite"], true);
        assert!(
            t["iceParameters"]["usernameFragment"]
                .as_str()
                .is_some_and(|u| u.len() >= 4)
        );
        assert!(
            t["iceParameters"]["password"]
                .as_str()
                .is_some_and(|p| p.len() >= 22)
        );
        let c = &t["iceCandidates"][0];
        assert_eq!(c["protocol"], "udp");
        assert_eq!(c["type"], "host");
        assert_eq!(c["port"], server.rtc_port(0), "the shard's UDP port: {c}");
        assert_eq!(c["address"], c["ip"]);
        assert_eq!(t["dtlsParameters"], *dtls);
    }
    assert_eq!(
        s["audio_quality"], "medium",
        "the seed's default audio preset"
    );
    assert_eq!(s["audio_codec_options"]["opusMaxAverageBitrate"], 32000);

    // 403 on every endpoint for another user; 404 for unknown sessions and non-ids.
    let bob = token("bob");
    let alice = token("alice");
    for path in ["", "/stats"] {
        assert_problem(
            &get(&server, &format!("/sessions/{id}{path}"), Some(&bob)),
            403,
        );
    }
    for path in ["/connect", "/publish", "/subscribe"] {
        assert_problem(
            &post_json(
                &server,
                &format!("/sessions/{id}{path}"),
                Some(&bob),
                &json!({}),
            ),
            403,
        );
    }
    assert_problem(&delete(&server, &format!("/sessions/{id}"), &bob), 403);
    assert_problem(
        &get(&server, &format!("/sessions/{}", uuid()), Some(&alice)),
        404,
    );
    assert_problem(
        &get(&server, "/sessions/not-an-id/stats", Some(&alice)),
        404,
    );

    // 400, 415, 405, 422, 409.
    let r = call(
        "POST",
        &server.url("/sessions"),
        Some(&alice),
        Some(("application/json", b"{not json")),
    );
    assert_problem(&r, 400);
    let r = call(
        "POST",
        &server.url("/sessions"),
        Some(&alice),
        Some(("text/plain", b"{}")),
    );
    assert_problem(&r, 415);
    let r = call(
        "PUT",
        &server.url("/sessions"),
        Some(&alice),
        Some(("application/json", b"{}")),
    );
    assert_problem(&r, 405);
    let r = post_json(
        &server,
        "/sessions",
        Some(&alice),
        &json!({ "type": "screen", "channel_id": channel, "user_id": "alice" }),
    );
    assert_problem(&r, 400);
    let publish = |kind: &str, params: Value| {
        post_json(
            &server,
            &format!("/sessions/{id}/publish"),
            Some(&alice),
            &json!({ "kind": kind, "rtp_parameters": params }),
        )
    };
    let p = assert_problem(&publish("video", vp8_parameters(7000)), 422);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("audio only")),
        "{p}"
    );
    let mut h265 = opus_parameters(1);
    h265["codecs"][0]["mimeType"] = json!("audio/G722");
    assert_problem(&publish("audio", h265), 422);

    let fake_fp = ["AB"; 32].join(":");
    let connect = |role: &str| {
        post_json(
            &server,
            &format!("/sessions/{id}/connect"),
            Some(&alice),
            &json!({
                "transport_id": s["send_transport"]["id"],
                "dtls_parameters": { "role": role, "fingerprints": [
                    { "algorithm": "sha-256", "value": fake_fp }
                ]}
            }),
        )
    };
    assert_problem(&connect("server"), 422);
    let r = connect("client");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json().expect("JSON")["direction"], "send");
    assert_problem(&connect("client"), 409);
    let r = post_json(
        &server,
        &format!("/sessions/{id}/connect"),
        Some(&alice),
        &json!({ "dtls_parameters": { "fingerprints": [] }, "direction": "recv" }),
    );
    assert_problem(&r, 422);

    // Recording is off unless ENABLE_RECORDING is set: 403 with a problem body naming it.
    let r = post_json(
        &server,
        &format!("/channels/{channel}/recording/start"),
        Some(&alice),
        &json!({ "format": "webm", "audio_bitrate": 128000, "video_bitrate": 2500000 }),
    );
    let p = assert_problem(&r, 403);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ENABLE_RECORDING")),
        "{p}"
    );

    // DELETE ends it: 200, then 404.
    let r = delete(&server, &format!("/sessions/{id}"), &alice);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json().expect("JSON")["status"], "closed");
    assert_problem(&get(&server, &format!("/sessions/{id}"), Some(&alice)), 404);
}

#[test]
fn max_sessions_answers_429_until_one_closes() {
    let server = media_server(&[("MAX_SESSIONS", "2")]);
    let channel = uuid();
    let a = created(&server, "alice", &channel, "audio");
    created(&server, "bob", &channel, "video");
    let r = create(&server, "carol", &channel, "audio");
    let p = assert_problem(&r, 429);
    assert_eq!(p["limit"], 2, "{p}");
    assert!(r.header("retry-after").is_some(), "{}", r.describe());
    let id = a["session_id"].as_str().expect("id");
    assert_eq!(
        delete(&server, &format!("/sessions/{id}"), &token("alice")).status,
        200
    );
    created(&server, "carol", &channel, "audio");
}

#[test]
fn publish_subscribe_and_stats_shapes() {
    let server = media_server(&[]);
    let channel = uuid();
    let alice = token("alice");
    let bob = token("bob");
    let a = created(&server, "alice", &channel, "video");
    let aid = a["session_id"].as_str().expect("id").to_string();
    let publish = |params: Value, kind: &str| {
        let r = post_json(
            &server,
            &format!("/sessions/{aid}/publish"),
            Some(&alice),
            &json!({ "kind": kind, "rtpParameters": params, "transport_id": a["send_transport"]["id"] }),
        );
        assert_eq!(r.status, 200, "publish: {}", r.describe());
        r.json().expect("JSON")
    };
    let audio = publish(opus_parameters(1111), "audio");
    let video = publish(vp8_parameters(2222), "video");
    let audio_track = audio["track_id"].as_str().expect("track_id").to_string();
    assert_eq!(
        audio["id"], audio["track_id"],
        "the producer id is the track id"
    );
    assert_eq!(video["kind"], "video");
    // A second track on the same mid is a conflict.
    let r = post_json(
        &server,
        &format!("/sessions/{aid}/publish"),
        Some(&alice),
        &json!({ "kind": "audio", "rtp_parameters": opus_parameters(3333) }),
    );
    assert_problem(&r, 409);

    // Bob subscribes with the router's capabilities as his device's.
    let b = created(&server, "bob", &channel, "audio");
    let bid = b["session_id"].as_str().expect("id").to_string();
    let device = b["router_rtp_capabilities"].clone();
    let subscribe = |sid: &str, tok: &str, track: &str| {
        post_json(
            &server,
            &format!("/sessions/{sid}/subscribe"),
            Some(tok),
            &json!({ "track_id": track, "rtp_capabilities": device }),
        )
    };
    let r = subscribe(&bid, &bob, &audio_track);
    assert_eq!(r.status, 200, "subscribe: {}", r.describe());
    let c: Value = r.json().expect("JSON");
    assert_eq!(c["producerId"], audio_track.as_str());
    assert_eq!(c["kind"], "audio");
    let rp = &c["rtpParameters"];
    assert_eq!(*rp, c["rtp_parameters"]);
    assert_eq!(rp["codecs"][0]["mimeType"], "audio/opus");
    assert_eq!(
        rp["codecs"][0]["payloadType"], 100,
        "the router's payload type"
    );
    assert_eq!(rp["codecs"][0]["parameters"]["maxaveragebitrate"], 32000);
    assert_eq!(rp["codecs"][0]["parameters"]["stereo"], 0, "medium is mono");
    assert!(
        rp["encodings"][0]["ssrc"].as_u64().is_some_and(|s| s > 0),
        "{rp}"
    );
    assert_eq!(rp["rtcp"]["cname"], "alice-cname", "the producer's CNAME");
    assert_eq!(rp["mid"], "0");
    assert_problem(&subscribe(&bid, &bob, &audio_track), 409);
    assert_problem(&subscribe(&bid, &bob, &uuid()), 404);
    // A device that cannot receive the codec.
    let d = created(&server, "dave", &channel, "audio");
    let r = post_json(
        &server,
        &format!(
            "/sessions/{}/subscribe",
            d["session_id"].as_str().expect("id")
        ),
        Some(&token("dave")),
        &json!({ "track_id": audio_track, "rtp_capabilities": { "codecs": [], "headerExtensions": [] } }),
    );
    assert_problem(&r, 422);
    // Tracks of another channel are not visible.
    let other = created(&server, "carol", &uuid(), "video");
    let oid = other["session_id"].as_str().expect("id");
    assert_problem(&subscribe(oid, &token("carol"), &audio_track), 404);

    // Stats: the seed's shape, one entry per track and direction.
    let st = get(&server, &format!("/sessions/{aid}/stats"), Some(&alice));
    assert_eq!(st.status, 200, "{}", st.describe());
    let st: Value = st.json().expect("JSON");
    assert_eq!(st["session_id"], aid.as_str());
    assert!(st["duration"].is_u64(), "{st}");
    let tracks = st["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 2, "{st}");
    for t in tracks {
        for k in ["bitrate", "packets_sent", "packets_lost"] {
            assert!(t[k].is_i64() || t[k].is_u64(), "{k} in {t}");
        }
        assert!(t["jitter"].is_f64(), "{t}");
        assert!(t["track_id"].is_string() && t["kind"].is_string(), "{t}");
        assert_eq!(t["direction"], "publish");
    }
    let st: Value = get(&server, &format!("/sessions/{bid}/stats"), Some(&bob))
        .json()
        .expect("JSON");
    assert_eq!(st["tracks"][0]["track_id"], audio_track.as_str());
    assert_eq!(st["tracks"][0]["direction"], "subscribe");

    // Unpublishing ends Bob's consumer too; Bob cannot unpublish Alice's track.
    assert_problem(
        &delete(&server, &format!("/sessions/{bid}/tracks/{}", uuid()), &bob),
        404,
    );
    let r = delete(
        &server,
        &format!("/sessions/{aid}/tracks/{audio_track}"),
        &alice,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let bs: Value = get(&server, &format!("/sessions/{bid}"), Some(&bob))
        .json()
        .expect("JSON");
    assert_eq!(bs["consumers"], json!([]), "{bs}");
    assert_problem(&subscribe(&bid, &bob, &audio_track), 404);
    let a_now: Value = get(&server, &format!("/sessions/{aid}"), Some(&alice))
        .json()
        .expect("JSON");
    assert_eq!(a_now["producers"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_session_that_never_connects_is_closed() {
    let server = media_server(&[("SESSION_CONNECT_TIMEOUT", "1")]);
    let s = created(&server, "alice", &uuid(), "audio");
    let id = s["session_id"].as_str().expect("id");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    loop {
        let r = get(&server, &format!("/sessions/{id}"), Some(&token("alice")));
        if r.status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still there: {}",
            r.describe()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn rtc_port_range_and_recording_flags_are_checked_at_start() {
    let bin = ringcast_tests::paths::server_binary().expect("server binary");
    let out = Command::new(&bin)
        .args(["--bind", "127.0.0.1", "--port", "0", "--shards", "3"])
        .args(["--rtc-min-port", "40000"])
        .env("RTC_MAX_PORT", "40001")
        .env("JWT_SECRET", SECRET)
        .output()
        .expect("the binary runs");
    assert!(
        !out.status.success(),
        "a range of 2 ports cannot hold 3 shards"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("too small for 3 media shards"),
        "clear error expected, got: {err}"
    );

    // The seed's storage (minio://localhost:9000) without credentials: the server refuses to
    // start and says what to set — before it binds its media ports (here one already taken,
    // which would otherwise be the error shown).
    let taken = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let out = Command::new(&bin)
        .args(["--bind", "127.0.0.1", "--port", "0", "--shards", "1"])
        .args(["--rtc-min-port", &port])
        .env("JWT_SECRET", SECRET)
        .env("ENABLE_RECORDING", "true")
        .env("RECORDING_STORAGE", "minio://localhost:9000")
        .env_remove("RECORDING_ACCESS_KEY")
        .env_remove("MINIO_ROOT_USER")
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .expect("the binary runs");
    assert!(
        !out.status.success(),
        "recording without credentials starts"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RECORDING_ACCESS_KEY") && err.contains("localhost:9000"),
        "clear error expected, got: {err}"
    );
    // ENABLE_RECORDING=true alone: recordings stay in DATA_DIR/recordings (the embedded
    // default); the server says so and records.
    let server = media_server(&[("ENABLE_RECORDING", "true")]);
    assert!(
        server.log().contains("recording enabled") && server.log().contains("Local"),
        "start-up line: {}",
        server.log_tail(20)
    );
    let r = post_json(
        &server,
        &format!("/channels/{}/recording/start", uuid()),
        Some(&token("alice")),
        &json!({ "format": "webm" }),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.json().expect("JSON")["status"], "recording");
}

#[test]
fn ice_servers_follow_the_turn_variables_of_the_seed() {
    let server = media_server(&[
        ("TURN_URL", "turn:turn.example.com:3478"),
        ("TURN_USERNAME", "discord"),
        ("TURN_PASSWORD", "password"),
    ]);
    let s = created(&server, "alice", &uuid(), "audio");
    assert_eq!(
        s["ice_servers"],
        json!([{ "urls": ["turn:turn.example.com:3478"], "username": "discord", "credential": "password" }]),
        "the seed's example response"
    );
}

#[test]
fn with_redis_another_node_points_to_the_sessions_owner() {
    let redis = Backing::redis();
    let url = redis.redis_url();
    let a = media_server(&[
        ("REDIS_URL", &url),
        ("NODE_ID", "node-a"),
        ("MAX_SESSIONS", "1"),
    ]);
    let b = media_server(&[("REDIS_URL", &url), ("NODE_ID", "node-b")]);
    let channel = uuid();
    let s = created(&a, "alice", &channel, "video");
    let id = s["session_id"].as_str().expect("id");
    let alice = token("alice");
    let r = post_json(
        &a,
        &format!("/sessions/{id}/publish"),
        Some(&alice),
        &json!({ "kind": "audio", "rtp_parameters": opus_parameters(5) }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let track = r.json().expect("JSON")["track_id"].clone();

    // Node B knows the session and the track, and sends the client to node A.
    let p = assert_problem(
        &get(&b, &format!("/sessions/{id}/stats"), Some(&alice)),
        409,
    );
    assert_eq!(p["node_id"], "node-a", "{p}");
    assert_eq!(p["node_url"], a.base_url().as_str(), "{p}");
    assert_problem(
        &get(&b, &format!("/sessions/{id}"), Some(&token("bob"))),
        403,
    );
    let bob = created(&b, "bob", &channel, "audio");
    let r = post_json(
        &b,
        &format!(
            "/sessions/{}/subscribe",
            bob["session_id"].as_str().expect("id")
        ),
        Some(&token("bob")),
        &json!({ "track_id": track, "rtp_capabilities": bob["router_rtp_capabilities"] }),
    );
    let p = assert_problem(&r, 409);
    assert_eq!(p["node_id"], "node-a", "{p}");

    // MAX_SESSIONS counts node A's sessions only.
    assert_problem(&create(&a, "carol", &channel, "audio"), 429);
    created(&b, "carol", &channel, "audio");
    // Deleted on A: gone for B too.
    assert_eq!(delete(&a, &format!("/sessions/{id}"), &alice).status, 200);
    assert_problem(
        &get(&b, &format!("/sessions/{id}/stats"), Some(&alice)),
        404,
    );
    created(&a, "carol", &channel, "audio");
}
