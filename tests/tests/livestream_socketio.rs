//! The livestream service's Socket.IO signaling and chat with unmodified clients: the npm
//! socket.io-client (tests/livestream/socketio.mjs) and PyPI's python-socketio
//! (tests/livestream/python_client.py), against the real server on SQLite; the socket.io-client
//! scenario again on PostgreSQL. The signaling scenario covers every event of the seed, the
//! refusals (wrong or rotated key, no token, not live, viewer limit, rate limit, not the owner)
//! and moderation over Socket.IO.

mod livestream_support;
mod stream_support;

use std::time::Duration;

use livestream_support::*;
use ringcast_tests::{PgServer, Server};
use serde_json::{Value, json};
use stream_support::*;

fn offer_path() -> String {
    ringcast_tests::paths::workspace_root()
        .join("tests/browser/testdata/chrome-offer.sdp")
        .to_string_lossy()
        .into_owned()
}

fn signaling_scenario(db: &Database) {
    let server = Server::start(livestream_server(
        db,
        &[
            ("CHAT_RATE_LIMIT", "5".into()),
            ("CHAT_RATE_WINDOW", "30".into()),
            ("LIVESTREAM_MAX_VIEWERS", "2".into()),
            ("LIVESTREAM_ADMINS", "moderator".into()),
        ],
    ))
    .expect("server starts");
    let config = json!({
        "base": server.base_url(),
        "tokens": tokens(&["alice", "bob", "carol", "dave", "erin", "mallory", "moderator"]),
        "offerSdp": offer_path(),
        "chatLimit": 5,
        "maxViewers": 2,
    });
    let (lines, ok, log) = run_node(
        "socketio.mjs",
        &["signaling".into(), config.to_string()],
        Duration::from_secs(120),
    );
    assert!(ok, "{log}\n--- server ---\n{}", server.log_tail(80));
    let chat = step(&lines, "chat").expect("chat step");
    assert_eq!(chat["accepted"], json!(5), "{chat}");
    assert_eq!(chat["limited"], json!(3), "{chat}");
    for who in ["bob", "carol", "dave"] {
        assert_eq!(chat["delivered"][who], json!(7), "{chat}");
    }
    assert_eq!(chat["stored"], json!(7));
    let summary = find(&lines, "summary").expect("summary");
    assert_eq!(summary["ok"], json!(true));
    assert_eq!(summary["peak"], json!(2));
    let p2p = step(&lines, "p2p_model").expect("p2p step");
    assert_eq!(p2p["answers"], json!(2));
    assert_eq!(
        step(&lines, "viewer_limit").expect("limit step")["code"],
        json!("viewer_limit")
    );
    let room = step(&lines, "chat_room").expect("chat room step");
    assert_eq!(room["erinSawOwn"], json!(true), "{room}");
    assert_eq!(
        step(&lines, "moderator_end").expect("moderator step")["reason"],
        json!("moderator")
    );

    // The rows the scenario left: bob and carol watched the first broadcast, bob and carol again
    // (other sockets, same users) the second; every row of the first broadcast closed.
    let id = summary["streamId"].as_str().expect("streamId");
    let a = get(
        &server,
        &format!("/api/livestream/{id}/analytics"),
        Some(&token("alice")),
    );
    assert_eq!(a.status, 200, "{}", a.describe());
    let a: Value = a.json().expect("json");
    let rows = a["viewers"].as_array().expect("rows");
    let users: Vec<&str> = rows.iter().filter_map(|r| r["userId"].as_str()).collect();
    assert_eq!(users, ["bob", "carol", "bob", "carol"], "{a}");
    assert!(rows[..2].iter().all(|r| r["leftAt"].is_string()), "{a}");
    assert!(rows.iter().all(|r| r["client"] == json!("socketio")), "{a}");

    // /metrics counts the same: every stored message (the 7 of the chat step and erin's), every
    // refusal, and no viewer or socket once the clients are gone.
    let m = server.metrics().expect("metrics");
    assert_eq!(m.sum("ringcast_livestream_chat_messages_total", &[]), 8.0);
    assert_eq!(m.sum("ringcast_livestream_joins_refused_total", &[]), 1.0);
    assert_eq!(
        m.sum(
            "ringcast_livestream_chat_refused_total",
            &[("reason", "rate_limited")]
        ),
        3.0
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let gauges = loop {
        let m = server.metrics().expect("metrics");
        let g = (
            m.sum("ringcast_livestream_viewers", &[]),
            m.sum("ringcast_livestream_sockets", &[]),
        );
        if g == (0.0, 0.0) || std::time::Instant::now() > deadline {
            break g;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        gauges,
        (0.0, 0.0),
        "viewers and sockets after the clients left"
    );
}

#[test]
fn socket_io_client_signals_chats_and_is_rate_limited_without_losing_messages() {
    let dir = TempDir::new("ls-sio");
    signaling_scenario(&Database::Sqlite(dir.path().to_path_buf()));
}

#[test]
fn socket_io_client_scenario_on_postgres() {
    let pg = PgServer::start();
    signaling_scenario(&Database::Postgres(pg.url()));
    let peak = pg.query("SELECT peak_viewers FROM livestreams");
    assert_eq!(peak.trim(), "2");
}

/// A livestream created with `maxViewers` 1 refuses a second socket.io-client viewer with
/// `viewer_limit` and limit 1, while a livestream without one admits both (the server allows 10).
#[test]
fn socket_io_join_is_refused_at_the_streams_own_viewer_limit() {
    let dir = TempDir::new("ls-sio-limit");
    let server = Server::start(livestream_server(
        &Database::Sqlite(dir.path().to_path_buf()),
        &[("LIVESTREAM_MAX_VIEWERS", "10".into())],
    ))
    .expect("server starts");
    let config = json!({
        "base": server.base_url(),
        "tokens": tokens(&["alice", "bob", "carol"]),
    });
    let (lines, ok, log) = run_node(
        "socketio.mjs",
        &["stream-limit".into(), config.to_string()],
        Duration::from_secs(60),
    );
    assert!(ok, "{log}\n--- server ---\n{}", server.log_tail(40));
    let limit = step(&lines, "stream_limit").expect("stream_limit step");
    assert_eq!(limit["code"], json!("viewer_limit"), "{limit}");
    assert_eq!(limit["limit"], json!(1), "{limit}");
    assert_eq!(limit["openCounts"], json!([1, 2]), "{limit}");
    let m = server.metrics().expect("metrics");
    assert_eq!(m.sum("ringcast_livestream_joins_refused_total", &[]), 1.0);
}

#[test]
fn python_socketio_client_chats_joins_and_answers() {
    let dir = TempDir::new("ls-py");
    let db = Database::Sqlite(dir.path().to_path_buf());
    let server = Server::start(livestream_server(&db, &[])).expect("server starts");
    let created = post_json(
        &server,
        "/api/livestream/create",
        Some(&token("alice")),
        &json!({"title": "python"}),
    );
    assert_eq!(created.status, 201, "{}", created.describe());
    let created: Value = created.json().expect("json");
    let id = created["streamId"].as_str().expect("id").to_string();
    let key = created["streamKey"].as_str().expect("key").to_string();
    let started = call(
        "POST",
        &server.url(&format!("/api/livestream/{id}/start")),
        None,
        Some((
            "application/json",
            json!({"streamKey": key}).to_string().as_bytes(),
        )),
    );
    assert_eq!(started.status, 200, "{}", started.describe());
    let config = json!({
        "base": server.base_url(),
        "streamId": id,
        "token": token("pyuser"),
    });
    let (lines, ok, log) = run_python(
        "python_client.py",
        &[config.to_string()],
        Duration::from_secs(60),
    );
    assert!(ok, "{log}\n--- server ---\n{}", server.log_tail(80));
    let summary = find(&lines, "summary").expect("summary");
    assert_eq!(summary["chatEcho"], json!("hello from python"), "{summary}");
    assert_eq!(summary["joined"], json!(true), "{summary}");
    assert_eq!(summary["offerType"], json!("offer"), "{summary}");
    assert_eq!(summary["answerAccepted"], json!(true), "{summary}");
    let hist = get(
        &server,
        &format!("/api/livestream/{id}/chat"),
        Some(&token("alice")),
    );
    let hist: Value = hist.json().expect("json");
    assert_eq!(hist["messages"][0]["userId"], json!("pyuser"));
    let a = get(
        &server,
        &format!("/api/livestream/{id}/analytics"),
        Some(&token("alice")),
    );
    let a: Value = a.json().expect("json");
    assert_eq!(a["peakViewers"], json!(1), "{a}");
    assert_eq!(a["viewers"][0]["userId"], json!("pyuser"), "{a}");
    assert!(a["viewers"][0]["leftAt"].is_string(), "{a}");
}

/// 100 Socket.IO viewers join at once (each gets its viewer row, a place on a shard and the
/// server's SDP offer), then one of them sends 20 chat messages that all 100 receive. Prints the
/// latencies; asserts that every viewer was counted and every message delivered, with generous
/// bounds (the machine is shared).
#[test]
fn hundred_socket_io_viewers_join_and_receive_every_chat_message() {
    let dir = TempDir::new("ls-load");
    let n = 100;
    let server = Server::start(livestream_server(
        &Database::Sqlite(dir.path().to_path_buf()),
        &[
            ("LIVESTREAM_MAX_VIEWERS", "1000".into()),
            ("CHAT_RATE_LIMIT", "1000".into()),
        ],
    ))
    .expect("server starts");
    let users: Vec<String> = std::iter::once("alice".to_string())
        .chain((0..n).map(|i| format!("u{i}")))
        .collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let config = json!({
        "base": server.base_url(),
        "tokens": tokens(&names),
        "viewers": n,
        "messages": 20,
    });
    let (lines, ok, log) = run_node(
        "socketio.mjs",
        &["load".into(), config.to_string()],
        Duration::from_secs(180),
    );
    assert!(ok, "{log}\n--- server ---\n{}", server.log_tail(40));
    let summary = find(&lines, "summary").expect("summary");
    eprintln!("livestream load: {summary}");
    assert_eq!(summary["peak"], json!(n), "{summary}");
    assert_eq!(summary["chat"]["deliveries"], json!(n * 20), "{summary}");
    let p95 = summary["chat"]["p95"].as_f64().expect("p95");
    assert!(p95 < 5000.0, "chat fan-out p95 {p95} ms");
}
