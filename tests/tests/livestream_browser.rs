//! A livestream end to end in Chromium (tests/livestream/browser.mjs): a broadcaster over
//! Socket.IO, two viewers over Socket.IO and one over WHEP (with the server-sent events
//! extension) decode its video; the Socket.IO pages add the server's trickled candidates; they
//! chat, one past the rate limit; viewers leave; the stream ends. Then the database itself is read: `peak_viewers`, the `livestream_viewers` rows and the
//! chat. Once on SQLite (the default) and once on PostgreSQL (Debian's server, started here).

mod livestream_support;
mod stream_support;

use std::process::Command;
use std::time::Duration;

use livestream_support::*;
use ringcast_tests::{PgServer, Server};
use serde_json::{Value, json};
use stream_support::*;

/// Decoded video frames each viewer must reach (2 s at the fake camera's 30 fps).
const MIN_FRAMES: u64 = 60;
const CHAT_LIMIT: u64 = 5;

/// What the database holds after the run, read with the database's own client.
#[derive(Debug)]
struct Rows {
    /// (status, peak_viewers, recording_url, stream_key_hash)
    stream: (String, i64, String, String),
    /// (user_id, client, joined_at, left_at) in join order.
    viewers: Vec<(String, String, i64, Option<i64>)>,
    /// chat messages in stored order.
    chat: Vec<String>,
}

fn parse_rows(stream: &str, viewers: &str, chat: &str) -> Rows {
    let f: Vec<&str> = stream.trim().split('|').collect();
    assert_eq!(f.len(), 4, "livestreams row: {stream:?}");
    Rows {
        stream: (
            f[0].into(),
            f[1].parse().expect("peak"),
            f[2].into(),
            f[3].into(),
        ),
        viewers: viewers
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                (
                    f[0].into(),
                    f[1].into(),
                    f[2].parse().expect("joined_at"),
                    f[3].parse().ok(),
                )
            })
            .collect(),
        chat: chat
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

fn sql_queries(id: &str) -> [String; 3] {
    [
        format!(
            "SELECT status, peak_viewers, recording_url, stream_key_hash FROM livestreams WHERE id = '{id}'"
        ),
        format!(
            "SELECT user_id, client, joined_at, left_at FROM livestream_viewers WHERE stream_id = '{id}' ORDER BY joined_at, id"
        ),
        format!(
            "SELECT message FROM livestream_chat WHERE stream_id = '{id}' AND deleted_at IS NULL ORDER BY seq"
        ),
    ]
}

/// Reads the SQLite file with Python's standard sqlite3 module (rows `|`-separated).
fn sqlite_rows(file: &std::path::Path, id: &str) -> Rows {
    let q = sql_queries(id);
    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for q in sys.argv[2:]:
    for row in db.execute(q):
        print("|".join("" if v is None else str(v) for v in row))
    print("--")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .args(&q)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "sqlite read: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let parts: Vec<&str> = text.split("--\n").collect();
    parse_rows(parts[0], parts[1], parts[2])
}

fn sha256_hex(s: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
            s,
        ])
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Creates and starts a livestream as alice; runs the Chromium scenario; returns the stream id,
/// the key it ended with and the driver's lines.
fn run_broadcast(server: &Server) -> (String, String, Vec<Value>) {
    ringcast_tests::deps::require_browser();
    let created = post_json(
        server,
        "/api/livestream/create",
        Some(&token("alice")),
        &json!({"title": "Chromium launch", "recordingEnabled": true}),
    );
    assert_eq!(created.status, 201, "{}", created.describe());
    let created: Value = created.json().expect("json");
    let id = created["streamId"].as_str().expect("id").to_string();
    let key = created["streamKey"].as_str().expect("key").to_string();
    let config = json!({
        "base": server.base_url(),
        "streamId": id,
        "streamKey": key,
        "tokens": tokens(&["alice", "v1", "v2", "w"]),
        "chatLimit": CHAT_LIMIT,
        "minFrames": MIN_FRAMES,
    });
    let (lines, ok, log) = run_node(
        "browser.mjs",
        &[config.to_string()],
        Duration::from_secs(240),
    );
    assert!(ok, "{log}\n--- server ---\n{}", server.log_tail(120));
    let summary = find(&lines, "summary").expect("summary");
    let new_key = summary["newKey"].as_str().expect("newKey").to_string();
    assert_ne!(new_key, key);
    (id, new_key, lines)
}

/// What every run must show, whatever the database.
fn check_run(lines: &[Value], rows: &Rows, new_key: &str) {
    let video = step(lines, "video").expect("video step");
    eprintln!("livestream video: {video}");
    let decoded: Vec<u64> = video["decoded"]
        .as_array()
        .expect("decoded")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(decoded.len(), 3, "{video}");
    assert!(decoded.iter().all(|&f| f >= MIN_FRAMES), "{video}");
    let chat = step(lines, "chat").expect("chat step");
    assert_eq!(chat["accepted"], json!(CHAT_LIMIT));
    assert_eq!(chat["limited"], json!(3));
    assert_eq!(chat["delivered"], json!([7, 7, 7]), "{chat}");
    assert!(
        chat["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 5 messages per")),
        "{chat}"
    );
    let sse: Vec<&str> = step(lines, "ended").expect("ended step")["sse"]
        .as_array()
        .expect("sse")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(sse.contains(&"active"), "{sse:?}");
    assert!(sse.contains(&"viewercount=3"), "{sse:?}");
    assert!(sse.contains(&"viewercount=1"), "{sse:?}");
    // The end: the count drops to 0, `inactive` comes last and the event stream closes.
    assert!(sse.ends_with(&["viewercount=0", "inactive"]), "{sse:?}");
    assert_eq!(
        step(lines, "ended").expect("ended")["sseClosed"],
        json!(true)
    );

    let (status, peak, url, hash) = &rows.stream;
    assert_eq!(status, "ended");
    assert_eq!(*peak, 3, "peak_viewers");
    assert_eq!(url, "https://rec.example/browser.webm");
    assert_eq!(
        hash,
        &sha256_hex(new_key),
        "the stored key is the new key's hash"
    );
    let users: Vec<(&str, &str)> = rows
        .viewers
        .iter()
        .map(|(u, c, _, _)| (u.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        users,
        [("v1", "socketio"), ("v2", "socketio"), ("w", "whep")],
        "{rows:?}"
    );
    for (u, _, joined, left) in &rows.viewers {
        let left = left.unwrap_or_else(|| panic!("{u}'s row is still open: {rows:?}"));
        assert!(left >= *joined, "{rows:?}");
    }
    // v2 and the WHEP viewer left before the end; v1 stayed until it.
    let left_of = |u: &str| {
        rows.viewers
            .iter()
            .find(|r| r.0 == u)
            .and_then(|r| r.3)
            .expect("left")
    };
    assert!(left_of("v2") <= left_of("v1") && left_of("w") <= left_of("v1"));
    let expected: Vec<String> = (0..CHAT_LIMIT)
        .map(|i| format!("v1 says {i}"))
        .chain((0..2).map(|i| format!("v2 says {i}")))
        .collect();
    assert_eq!(rows.chat, expected);
}

#[test]
fn chromium_broadcast_reaches_socket_io_and_whep_viewers_on_sqlite() {
    let _lock = ringcast_tests::media_lock();
    let dir = TempDir::new("ls-browser");
    let db = Database::Sqlite(dir.path().to_path_buf());
    let server = Server::start(livestream_server(&db, &[("CHAT_RATE_WINDOW", "60".into())]))
        .expect("server starts");
    let (id, new_key, lines) = run_broadcast(&server);
    let rows = sqlite_rows(&dir.path().join("ringcast.sqlite3"), &id);
    check_run(&lines, &rows, &new_key);
}

#[test]
fn chromium_broadcast_reaches_socket_io_and_whep_viewers_on_postgres() {
    let _lock = ringcast_tests::media_lock();
    let pg = PgServer::start();
    let db = Database::Postgres(pg.url());
    let server = Server::start(livestream_server(&db, &[("CHAT_RATE_WINDOW", "60".into())]))
        .expect("server starts");
    let (id, new_key, lines) = run_broadcast(&server);
    let [qs, qv, qc] = sql_queries(&id);
    let rows = parse_rows(&pg.query(&qs), &pg.query(&qv), &pg.query(&qc));
    check_run(&lines, &rows, &new_key);
}
