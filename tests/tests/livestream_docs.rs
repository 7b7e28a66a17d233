//! The examples of docs/api/livestream.md, run against a real server.
//!
//! HTTP, in document order: each `http` request block is sent with its headers (`<JWT for NAME>`
//! tokens signed for NAME; ids and stream keys of earlier example responses replaced by the real
//! ones), and the following `http` response block's status must match, every documented
//! top-level field must be present, and booleans and the fields that name things (status, title,
//! userId, message, …) must be equal.
//!
//! JavaScript: the Socket.IO examples (broadcaster, viewer, chat) run as they are in Chromium
//! (tests/livestream/doc_examples.mjs).

mod livestream_support;
mod stream_support;

use std::collections::HashMap;
use std::time::Duration;

use livestream_support::*;
use ringcast_tests::Server;
use ringcast_tests::doc_examples::{examples, is_uuid, read_page, substitute};
use serde_json::Value;
use stream_support::*;

/// Fields compared by value, not only by presence.
const EQUAL_FIELDS: &[&str] = &[
    "success",
    "status",
    "title",
    "description",
    "ownerId",
    "userId",
    "viewerId",
    "message",
    "detail",
    "recordingEnabled",
    "limit",
    "windowSeconds",
    "recordingUrl",
    "maxViewers",
    "viewerCount",
];

/// `method url` with `headers` and an optional body; any status is a response.
fn send(method: &str, url: &str, headers: &[(String, String)], body: &str) -> (u16, Value, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    let res = match method {
        "GET" | "DELETE" => {
            let mut r = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.call()
        }
        "POST" | "PUT" | "PATCH" => {
            let mut r = match method {
                "POST" => agent.post(url),
                "PUT" => agent.put(url),
                _ => agent.patch(url),
            };
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.send(body.as_bytes())
        }
        other => panic!("unsupported method {other}"),
    };
    let mut res = res.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

#[test]
fn documented_examples_run_as_documented() {
    let doc = read_page("livestream.md");
    let examples = examples(&doc);
    assert!(
        examples.len() >= 15,
        "only {} examples found",
        examples.len()
    );
    let dir = TempDir::new("ls-docs");
    let server = Server::start(livestream_server(
        &Database::Sqlite(dir.path().to_path_buf()),
        &[
            ("LIVESTREAM_ADMINS", "moderator".into()),
            ("CHAT_RATE_LIMIT", "2".into()),
            ("CHAT_RATE_WINDOW", "60".into()),
        ],
    ))
    .expect("server starts");
    let mut ids: HashMap<String, String> = HashMap::new();
    for ex in &examples {
        let path = substitute(&ex.path, &ids);
        let body = substitute(&ex.body, &ids);
        let headers: Vec<(String, String)> = ex
            .headers
            .iter()
            .map(|(k, v)| {
                let v = match v.strip_prefix("Bearer <JWT for ") {
                    Some(rest) => format!(
                        "Bearer {}",
                        token(rest.strip_suffix('>').expect("<JWT for NAME>"))
                    ),
                    None => substitute(v, &ids),
                };
                (k.clone(), v)
            })
            .collect();
        let what = format!("{} {path}", ex.method);
        let (status, real, text) = send(&ex.method, &server.url(&path), &headers, &body);
        assert_eq!(
            status,
            ex.status,
            "{what}: {text}\n--- server ---\n{}",
            server.log_tail(30)
        );
        eprintln!("{what} -> {status} as documented");
        let Some(doc_json) = &ex.response else {
            continue;
        };
        let (Some(d), Some(a)) = (doc_json.as_object(), real.as_object()) else {
            panic!("{what}: documented or real response is not an object: {text}");
        };
        for (k, v) in d {
            let got = a
                .get(k)
                .unwrap_or_else(|| panic!("{what}: documented field {k:?} missing in {real}"));
            if let (Some(dv), Some(gv)) = (v.as_str(), got.as_str())
                && ((is_uuid(dv) && is_uuid(gv))
                    || (dv.starts_with("lsk_") && gv.starts_with("lsk_")))
            {
                ids.entry(dv.to_string()).or_insert_with(|| gv.to_string());
                continue;
            }
            if EQUAL_FIELDS.contains(&k.as_str())
                && !(k == "detail"
                    && v.as_str()
                        .is_some_and(|s| s.contains("retry in") || s.contains("until")))
            {
                let dv = substitute(&v.to_string(), &ids);
                assert_eq!(
                    dv,
                    got.to_string(),
                    "{what}: field {k:?} is documented as {v}, the server says {got}"
                );
            }
        }
    }
}

/// The broadcaster, viewer and chat examples of the Socket.IO section, unchanged, in Chromium
/// pages: the viewer decodes the broadcaster's video, the chat example sees its own message, and
/// the server recorded both (a `socketio` viewer row, the stored message).
#[test]
fn documented_socket_io_examples_broadcast_watch_and_chat_in_chromium() {
    let _lock = ringcast_tests::media_lock();
    ringcast_tests::deps::require_browser();
    let dir = TempDir::new("ls-docs-js");
    let server = Server::start(livestream_server(
        &Database::Sqlite(dir.path().to_path_buf()),
        &[],
    ))
    .expect("server starts");
    let created = post_json(
        &server,
        "/api/livestream/create",
        Some(&token("alice")),
        &serde_json::json!({"title": "Docs"}),
    );
    assert_eq!(created.status, 201, "{}", created.describe());
    let created: Value = created.json().expect("json");
    let id = created["streamId"].as_str().expect("id").to_string();
    let config = serde_json::json!({
        "base": server.base_url(),
        "streamId": id,
        "streamKey": created["streamKey"],
        "tokens": {"broadcaster": token("alice"), "viewer": token("viewer"), "chatter": token("chatter")},
        "minFrames": 60,
    });
    let (lines, ok, log) = run_node(
        "doc_examples.mjs",
        &[config.to_string()],
        Duration::from_secs(180),
    );
    assert!(ok, "{log}\n--- server ---\n{}", server.log_tail(80));
    let summary = find(&lines, "summary").expect("summary");
    eprintln!("livestream doc examples: {summary}");
    assert!(
        summary["decoded"].as_u64().is_some_and(|f| f >= 60),
        "{summary}"
    );
    let a = get(
        &server,
        &format!("/api/livestream/{id}/analytics"),
        Some(&token("alice")),
    );
    let a: Value = a.json().expect("json");
    assert_eq!(
        a["viewers"][0]["userId"],
        serde_json::json!("viewer"),
        "{a}"
    );
    assert_eq!(
        a["viewers"][0]["client"],
        serde_json::json!("socketio"),
        "{a}"
    );
    let hist = get(
        &server,
        &format!("/api/livestream/{id}/chat"),
        Some(&token("alice")),
    );
    let hist: Value = hist.json().expect("json");
    assert_eq!(
        hist["messages"][0]["userId"],
        serde_json::json!("chatter"),
        "{hist}"
    );
    assert_eq!(
        hist["messages"][0]["message"],
        serde_json::json!("Hello from the docs"),
        "{hist}"
    );
}
