//! The examples of docs/api/livestream.md, sent to a real server in document order: each `http`
//! request block is sent with its headers (`<JWT for NAME>` tokens signed for NAME; ids and
//! stream keys of earlier example responses replaced by the real ones), and the following `http`
//! response block's status must match, every documented top-level field must be present, and
//! booleans and the fields that name things (status, title, userId, message, …) must be equal.

mod livestream_support;
mod stream_support;

use std::collections::HashMap;
use std::time::Duration;

use livestream_support::*;
use ringcast_tests::Server;
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
];

struct Example {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    status: u16,
    response: Option<Value>,
}

fn blocks(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in doc.lines() {
        match &mut cur {
            None if line.trim_end() == "```http" => cur = Some(String::new()),
            Some(b) if line.trim_end() == "```" => {
                out.push(std::mem::take(b));
                cur = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

fn split(block: &str) -> (Vec<&str>, String) {
    let mut lines = block.lines();
    let mut head = Vec::new();
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
        head.push(l);
    }
    (head, lines.collect::<Vec<_>>().join("\n"))
}

fn examples(doc: &str) -> Vec<Example> {
    let b = blocks(doc);
    assert!(
        b.len().is_multiple_of(2),
        "an http request block without its response block"
    );
    b.chunks(2)
        .map(|pair| {
            let (req_head, req_body) = split(&pair[0]);
            let (resp_head, resp_body) = split(&pair[1]);
            assert!(
                resp_head
                    .first()
                    .is_some_and(|l| l.starts_with("HTTP/1.1 ")),
                "request example without a response example after it:\n{}",
                pair[0]
            );
            let (method, path) = req_head[0].split_once(' ').expect("METHOD PATH");
            Example {
                method: method.to_string(),
                path: path.trim().to_string(),
                headers: req_head[1..]
                    .iter()
                    .filter_map(|h| h.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect(),
                body: req_body,
                status: resp_head[0]
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("HTTP/1.1 NNN"),
                response: (!resp_body.trim().is_empty()).then(|| {
                    serde_json::from_str(&resp_body).unwrap_or_else(|e| {
                        panic!("response example is not JSON ({e}):\n{resp_body}")
                    })
                }),
            }
        })
        .collect()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

fn substitute(s: &str, ids: &HashMap<String, String>) -> String {
    ids.iter()
        .fold(s.to_string(), |acc, (doc, real)| acc.replace(doc, real))
}

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
    let doc_path = ringcast_tests::paths::workspace_root().join("docs/api/livestream.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/api/livestream.md");
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
