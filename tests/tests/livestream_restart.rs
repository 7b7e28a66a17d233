//! A restart keeps livestreams, their keys (hashed), viewer limits, chat and mutes: the server
//! is stopped (SIGTERM) and started again on the same database, SQLite file or PostgreSQL. Viewer
//! rows open at the stop are closed, not left watching forever.

mod livestream_support;
mod stream_support;

use std::time::Duration;

use livestream_support::*;
use ringcast_tests::{PgServer, Server};
use serde_json::{Value, json};
use stream_support::*;

fn post_key(server: &Server, path: &str, key: &str, body: Value) -> ringcast_tests::HttpResponse {
    let mut b = body;
    b["streamKey"] = json!(key);
    post_json(server, path, None, &b)
}

fn restart_keeps_everything(db: &Database) {
    let mut first = Server::start(livestream_server(db, &[])).expect("server starts");
    let created = post_json(
        &first,
        "/api/livestream/create",
        Some(&token("alice")),
        &json!({"title": "Persistent", "description": "survives restarts", "recordingEnabled": true, "maxViewers": 3}),
    );
    assert_eq!(created.status, 201, "{}", created.describe());
    let created: Value = created.json().expect("json");
    let id = created["streamId"].as_str().expect("id").to_string();
    let key = created["streamKey"].as_str().expect("key").to_string();
    let r = post_key(
        &first,
        &format!("/api/livestream/{id}/start"),
        &key,
        json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = post_json(
        &first,
        &format!("/api/livestream/{id}/join"),
        Some(&token("bob")),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let mut sent = Vec::new();
    for (who, text) in [("bob", "first"), ("carol", "second"), ("bob", "third")] {
        let r = post_json(
            &first,
            &format!("/api/livestream/{id}/chat"),
            Some(&token(who)),
            &json!({"message": text}),
        );
        assert_eq!(r.status, 201, "{}", r.describe());
        sent.push(r.json().expect("json")["id"].clone());
    }
    let r = post_json(
        &first,
        &format!("/api/livestream/{id}/mute"),
        Some(&token("alice")),
        &json!({"userId": "troll"}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let (status, _) = first
        .terminate(Duration::from_secs(10))
        .expect("the server stops");
    assert!(status.success(), "exit status {status}");
    drop(first);

    let second = Server::start(livestream_server(db, &[])).expect("server starts again");
    let got = get(&second, &format!("/api/livestream/{id}"), None);
    assert_eq!(got.status, 200, "{}", got.describe());
    let got: Value = got.json().expect("json");
    assert_eq!(got["title"], json!("Persistent"));
    assert_eq!(got["description"], json!("survives restarts"));
    assert_eq!(got["status"], json!("live"));
    assert_eq!(got["recordingEnabled"], json!(true));
    assert_eq!(got["maxViewers"], json!(3));
    assert_eq!(got["viewerCount"], json!(0));
    let active = get(&second, "/api/livestream/active", None);
    let active: Value = active.json().expect("json");
    assert!(
        active["streams"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["streamId"] == json!(id))),
        "{active}"
    );
    let hist = get(
        &second,
        &format!("/api/livestream/{id}/chat"),
        Some(&token("dave")),
    );
    let hist: Value = hist.json().expect("json");
    let ids: Vec<Value> = hist["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, sent, "{hist}");
    let muted = post_json(
        &second,
        &format!("/api/livestream/{id}/chat"),
        Some(&token("troll")),
        &json!({"message": "am I back?"}),
    );
    assert_problem(&muted, 403);
    // bob's viewing ended with the first process.
    let a = get(
        &second,
        &format!("/api/livestream/{id}/analytics"),
        Some(&token("alice")),
    );
    let a: Value = a.json().expect("json");
    assert_eq!(a["peakViewers"], json!(1), "{a}");
    assert_eq!(a["viewers"][0]["userId"], json!("bob"), "{a}");
    assert!(a["viewers"][0]["leftAt"].is_string(), "{a}");
    // The livestream's own viewer limit still holds.
    for user in ["v1", "v2", "v3"] {
        let r = post_json(
            &second,
            &format!("/api/livestream/{id}/join"),
            Some(&token(user)),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    let full = post_json(
        &second,
        &format!("/api/livestream/{id}/join"),
        Some(&token("v4")),
        &json!({}),
    );
    assert_eq!(assert_problem(&full, 429)["limit"], json!(3));
    // The key of before the restart still broadcasts and ends the stream.
    let wrong = post_key(
        &second,
        &format!("/api/livestream/{id}/end"),
        "lsk_guess",
        json!({}),
    );
    assert_problem(&wrong, 403);
    let ended = post_key(
        &second,
        &format!("/api/livestream/{id}/end"),
        &key,
        json!({}),
    );
    assert_eq!(ended.status, 200, "{}", ended.describe());
    let ended: Value = ended.json().expect("json");
    assert_ne!(ended["streamKey"], json!(key));
}

#[test]
fn restart_keeps_livestreams_keys_and_chat_on_sqlite() {
    let dir = TempDir::new("ls-restart");
    restart_keeps_everything(&Database::Sqlite(dir.path().to_path_buf()));
    assert!(dir.path().join("ringcast.sqlite3").is_file());
}

#[test]
fn restart_keeps_livestreams_keys_and_chat_on_postgres() {
    let pg = PgServer::start();
    restart_keeps_everything(&Database::Postgres(pg.url()));
    // The key is stored hashed: no row holds a key in clear.
    let hashes = pg.query("SELECT stream_key_hash FROM livestreams");
    assert!(
        hashes
            .lines()
            .all(|h| h.len() == 64 && !h.starts_with("lsk_")),
        "{hashes}"
    );
}
