//! The stream service's HTTP contract against the real server: bearer-JWT auth (HS256 and
//! RS256), ownership, the channel and viewer limits, quality presets, TURN credentials and the
//! server-offered viewer sessions. Every error must be a problem+json body.

mod stream_support;

use std::time::Duration;

use ringcast_tests::Server;
use serde_json::{Value, json};
use stream_support::*;

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ringcast-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn auth_matrix_and_limits_answer_problem_json() {
    let dir = tempdir("jwt");
    let (private, public) = rsa_keys(&dir);
    let other = tempdir("jwt-other");
    let (other_private, _) = rsa_keys(&other);
    let server = Server::start(stream_server(&[
        ("JWT_PUBLIC_KEY_FILE", public.to_string_lossy().into_owned()),
        ("MAX_STREAMS_PER_CHANNEL", "2".into()),
        ("MAX_VIEWERS_PER_STREAM", "1".into()),
    ]))
    .expect("server starts");
    let channel = uuid();
    let body = json!({ "channel_id": channel });

    // 401: missing, malformed, expired, wrong key (HS256 and RS256).
    let r = post_json(&server, "/stream/start", None, &body);
    assert_problem(&r, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    for (what, tok) in [
        ("malformed", "not-a-jwt".to_string()),
        ("expired", token_hs(SECRET, "alice", -3600)),
        (
            "wrong HS256 secret",
            token_hs("another-secret", "alice", 3600),
        ),
        ("RS256 from another key", token_rs(&other_private, "alice")),
    ] {
        let r = post_json(&server, "/stream/start", Some(&tok), &body);
        let p = assert_problem(&r, 401);
        eprintln!("{what}: {}", p["detail"]);
    }
    let r = call(
        "POST",
        &server.url("/stream/start"),
        None,
        Some(("application/json", b"{}")),
    );
    assert_problem(&r, 401);

    // RS256 with the configured public key works; the user is `sub`.
    let alice_rs = token_rs(&private, "alice");
    let s1 = start_stream(&server, &alice_rs, &channel);
    let alice = token("alice");
    let bob = token("bob");
    let id = s1["stream_id"].as_str().expect("stream_id").to_string();

    // 403: acting on another user's stream.
    assert_problem(
        &post_json(
            &server,
            "/stream/stop",
            Some(&bob),
            &json!({ "stream_id": id }),
        ),
        403,
    );
    assert_problem(
        &patch_json(
            &server,
            &format!("/stream/{id}/quality"),
            Some(&bob),
            &json!({ "bitrate": 800 }),
        ),
        403,
    );
    let r = call(
        "POST",
        &server.url(&format!("/stream/{id}/whip")),
        Some(&bob),
        Some(("application/sdp", b"v=0\r\n")),
    );
    assert_problem(&r, 403);

    // 409: MAX_STREAMS_PER_CHANNEL=2.
    start_stream(&server, &alice, &channel);
    let p = assert_problem(&post_json(&server, "/stream/start", Some(&bob), &body), 409);
    assert_eq!(p["limit"], 2, "{p}");
    // Another channel is not affected.
    start_stream(&server, &bob, &uuid());

    // 429: MAX_VIEWERS_PER_STREAM=1.
    let w = post_json(
        &server,
        "/stream/watch",
        Some(&bob),
        &json!({ "stream_id": id }),
    );
    assert_eq!(w.status, 200, "{}", w.describe());
    let carol = token("carol");
    let r = post_json(
        &server,
        "/stream/watch",
        Some(&carol),
        &json!({ "stream_id": id }),
    );
    let p = assert_problem(&r, 429);
    assert_eq!(p["limit"], 1, "{p}");
    assert!(r.header("retry-after").is_some(), "{}", r.describe());

    // 404, 400, 415.
    assert_problem(
        &post_json(
            &server,
            "/stream/watch",
            Some(&bob),
            &json!({ "stream_id": uuid() }),
        ),
        404,
    );
    assert_problem(
        &post_json(
            &server,
            "/stream/start",
            Some(&bob),
            &json!({ "channel_id": "nope" }),
        ),
        400,
    );
    assert_problem(
        &post_json(
            &server,
            "/stream/start",
            Some(&bob),
            &json!({ "channel_id": uuid(), "resolution": "huge" }),
        ),
        400,
    );
    let r = call(
        "POST",
        &server.url("/stream/start"),
        Some(&bob),
        Some(("text/plain", b"{}")),
    );
    assert_problem(&r, 415);
    assert_problem(&get(&server, "/stream/start", Some(&bob)), 405);
    assert_problem(&get(&server, "/stream/nowhere/else", Some(&bob)), 404);

    // The owner stops; the stream is gone.
    let r = post_json(
        &server,
        "/stream/stop",
        Some(&alice),
        &json!({ "stream_id": id }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_problem(&get(&server, &format!("/stream/{id}"), Some(&alice)), 404);
    assert_problem(
        &post_json(
            &server,
            "/stream/stop",
            Some(&alice),
            &json!({ "stream_id": id }),
        ),
        404,
    );
}

#[test]
fn quality_patch_records_preset_cap_and_preferred_layer() {
    let server = Server::start(stream_server(&[])).expect("server starts");
    let alice = token("alice");
    let s = start_stream(&server, &alice, &uuid());
    let id = s["stream_id"].as_str().expect("stream_id");
    assert_eq!(s["quality"]["preset"], "1080p");
    assert_eq!(s["quality"]["preferred_layer"], "h");

    let r = patch_json(
        &server,
        &format!("/stream/{id}/quality"),
        Some(&alice),
        &json!({ "resolution": "1280x720", "framerate": 30, "bitrate": 1500 }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let q = r.json().expect("JSON");
    assert_eq!(
        (
            q["preset"].as_str(),
            q["max_bitrate_kbps"].as_u64(),
            q["preferred_layer"].as_str()
        ),
        (Some("720p"), Some(1500), Some("m")),
        "{q}"
    );
    // Fields left out keep their values; 480p is the low layer.
    let r = patch_json(
        &server,
        &format!("/stream/{id}/quality"),
        Some(&alice),
        &json!({ "resolution": "854x480" }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let state = get(&server, &format!("/stream/{id}"), Some(&alice))
        .json()
        .expect("JSON");
    let q = &state["quality"];
    assert_eq!(q["resolution"], "854x480", "{state}");
    assert_eq!(q["preset"], "480p");
    assert_eq!(q["preferred_layer"], "l");
    assert_eq!(
        q["bitrate"], 1500,
        "the bitrate of the previous PATCH stays"
    );
    assert_eq!(q["framerate"], 30);
    let r = patch_json(
        &server,
        &format!("/stream/{id}/quality"),
        Some(&alice),
        &json!({ "framerate": 0 }),
    );
    assert_problem(&r, 400);
}

fn hmac_sha1_base64(secret: &str, msg: &str) -> String {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "printf %s \"$MSG\" | openssl dgst -sha1 -hmac \"$KEY\" -binary | base64",
        ])
        .env("MSG", msg)
        .env("KEY", secret)
        .output()
        .expect("openssl and base64 run");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn start_response_carries_turn_credentials_and_the_server_endpoint() {
    let server = Server::start(stream_server(&[
        ("TURN_URL", "turn:turn.example.test:3478".into()),
        ("TURN_SECRET", "north".into()),
        ("TURN_TTL", "600".into()),
        ("SERVER_ENDPOINT", "stream.example.test:8001".into()),
    ]))
    .expect("server starts");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let s = start_stream(&server, &token("alice"), &uuid());
    assert_eq!(s["server_endpoint"], "stream.example.test:8001");
    let turn = &s["ice_servers"][0];
    assert_eq!(turn["urls"], json!(["turn:turn.example.test:3478"]), "{s}");
    let username = turn["username"].as_str().expect("username");
    let (expiry, user) = username.split_once(':').expect("expiry:user");
    assert_eq!(user, "alice");
    let expiry: u64 = expiry.parse().expect("numeric expiry");
    assert!(
        (now + 590..=now + 610).contains(&expiry),
        "expiry {expiry} not ~now+600"
    );
    assert_eq!(
        turn["credential"].as_str(),
        Some(hmac_sha1_base64("north", username).as_str())
    );

    let fixed = Server::start(stream_server(&[
        ("TURN_URL", "turn:t1.test:3478,turns:t2.test:5349".into()),
        ("TURN_USERNAME", "discord".into()),
        ("TURN_PASSWORD", "discord_turn_password".into()),
    ]))
    .expect("server starts");
    let s = start_stream(&fixed, &token("alice"), &uuid());
    assert_eq!(
        s["ice_servers"],
        json!([{ "urls": ["turn:t1.test:3478", "turns:t2.test:5349"], "username": "discord", "credential": "discord_turn_password" }])
    );
    assert_eq!(
        s["server_endpoint"].as_str(),
        Some(format!("127.0.0.1:{}", fixed.http_port()).as_str())
    );
}

fn viewer_count(server: &Server, id: &str, tok: &str) -> u64 {
    get(server, &format!("/stream/{id}"), Some(tok))
        .json()
        .expect("JSON")["viewer_count"]
        .as_u64()
        .expect("viewer_count")
}

#[test]
fn watch_offers_ice_lite_actpass_and_unanswered_offers_expire() {
    let server = Server::start(stream_server(&[("WATCH_ANSWER_TIMEOUT", "2".into())]))
        .expect("server starts");
    let alice = token("alice");
    let bob = token("bob");
    let s = start_stream(&server, &alice, &uuid());
    let id = s["stream_id"].as_str().expect("id").to_string();
    let w = post_json(
        &server,
        "/stream/watch",
        Some(&bob),
        &json!({ "stream_id": id }),
    );
    assert_eq!(w.status, 200, "{}", w.describe());
    let w: Value = w.json().expect("JSON");
    let offer = w["sdp_offer"].as_str().expect("sdp_offer");
    for needle in [
        "a=ice-lite",
        "a=setup:actpass",
        "a=sendonly",
        "m=video",
        "m=audio",
        &format!(" {} typ host", server.rtc_port(0)),
    ] {
        assert!(offer.contains(needle), "offer lacks {needle:?}:\n{offer}");
    }
    let sid = w["session_id"].as_str().expect("session_id");
    assert_eq!(
        w["answer_url"].as_str(),
        Some(format!("/stream/{id}/sessions/{sid}").as_str())
    );
    assert_eq!(viewer_count(&server, &id, &bob), 1);

    // Only the viewer answers; garbage is a 400 problem.
    let url = server.url(w["answer_url"].as_str().expect("answer_url"));
    let r = call(
        "PUT",
        &url,
        Some(&alice),
        Some(("application/sdp", b"v=0\r\n")),
    );
    assert_problem(&r, 403);
    let r = call("PUT", &url, Some(&bob), Some(("application/sdp", b"hello")));
    assert!(matches!(r.status, 400 | 422), "{}", r.describe());
    assert_problem(&r, r.status);

    // Nobody answers: the viewer's slot is freed after WATCH_ANSWER_TIMEOUT.
    let end = std::time::Instant::now() + Duration::from_secs(8);
    while viewer_count(&server, &id, &bob) != 0 {
        assert!(
            std::time::Instant::now() < end,
            "unanswered offer still counted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_problem(&call("DELETE", &url, Some(&bob), None), 404);

    // A second viewer leaves with DELETE.
    let w = post_json(
        &server,
        "/stream/watch",
        Some(&bob),
        &json!({ "stream_id": id }),
    )
    .json()
    .expect("JSON");
    assert_eq!(viewer_count(&server, &id, &bob), 1);
    let url = server.url(w["session_url"].as_str().expect("session_url"));
    assert_eq!(call("DELETE", &url, Some(&bob), None).status, 200);
    assert_eq!(viewer_count(&server, &id, &bob), 0);
}

#[test]
fn browsers_on_other_origins_pass_cors_preflight() {
    let server = Server::start(stream_server(&[])).expect("server starts");
    let id = uuid();
    for path in [
        "/stream/start".to_string(),
        "/stream/watch".to_string(),
        format!("/stream/{id}/quality"),
        format!("/stream/{id}/whip"),
        format!("/stream/{id}/sessions/{}", uuid()),
    ] {
        let r = call("OPTIONS", &server.url(&path), None, None);
        assert!(
            (200..300).contains(&r.status),
            "OPTIONS {path}: {}",
            r.describe()
        );
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        let methods = r.header("access-control-allow-methods").unwrap_or("");
        assert!(
            methods.contains("PUT") && methods.contains("POST"),
            "{path}: {methods}"
        );
        let headers = r.header("access-control-allow-headers").unwrap_or("");
        assert!(headers.contains("Authorization"), "{path}: {headers}");
    }
}
