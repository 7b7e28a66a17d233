//! The examples of docs/api/media-server.md, sent to a real server in document order: each `http`
//! request block is sent (tokens `<JWT for NAME>` signed for NAME, ids of earlier example
//! responses replaced by the real ones), and the following `http` response block's status and
//! top-level fields must match what the server answers: every documented field present, and
//! documented strings (other than ids and timestamps) and booleans equal.

mod stream_support;

use std::collections::HashMap;

use ringcast_tests::{Server, ServerOptions};
use serde_json::Value;
use stream_support::*;

/// Documented fields whose values are examples, not contract.
const EXAMPLE_VALUES: &[&str] = &["created_at"];

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
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        let (req_head, req_body) = split(&b[i]);
        let (resp_head, resp_body) = split(&b[i + 1]);
        assert!(
            resp_head
                .first()
                .is_some_and(|l| l.starts_with("HTTP/1.1 ")),
            "request example without a response example after it:\n{}",
            b[i]
        );
        let (method, path) = req_head[0].split_once(' ').expect("METHOD PATH");
        let status = resp_head[0]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("HTTP/1.1 NNN");
        out.push(Example {
            method: method.to_string(),
            path: path.trim().to_string(),
            headers: req_head[1..]
                .iter()
                .filter_map(|h| h.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
            body: req_body,
            status,
            response: (!resp_body.trim().is_empty()).then(|| {
                serde_json::from_str(&resp_body)
                    .unwrap_or_else(|e| panic!("response example is not JSON ({e}):\n{resp_body}"))
            }),
        });
        i += 2;
    }
    out
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

fn substitute(s: &str, ids: &HashMap<String, String>) -> String {
    ids.iter()
        .fold(s.to_string(), |acc, (doc, real)| acc.replace(doc, real))
}

#[test]
fn documented_examples_run_as_documented() {
    let doc_path = ringcast_tests::paths::workspace_root().join("docs/api/media-server.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/api/media-server.md");
    let examples = examples(&doc);
    assert!(
        examples.len() >= 10,
        "only {} examples found",
        examples.len()
    );
    let server = Server::start(
        ServerOptions::new(1, ringcast_tests::Io::Mmsg)
            .env("JWT_SECRET", SECRET)
            .env("TURN_URL", "turn:turn.example.com:3478")
            .env("TURN_USERNAME", "discord")
            .env("TURN_PASSWORD", "password"),
    )
    .expect("server starts");
    let mut ids: HashMap<String, String> = HashMap::new();
    for ex in &examples {
        let path = substitute(&ex.path, &ids);
        let body = substitute(&ex.body, &ids);
        let token = ex
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| {
                let name = v
                    .strip_prefix("Bearer <JWT for ")
                    .and_then(|r| r.strip_suffix('>'))
                    .unwrap_or_else(|| {
                        panic!("Authorization example {v:?} is not `Bearer <JWT for NAME>`")
                    });
                token(name)
            });
        let ct = ex
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str());
        let r = call(
            &ex.method,
            &server.url(&path),
            token.as_deref(),
            ct.map(|c| (c, body.as_bytes())),
        );
        let what = format!("{} {path}", ex.method);
        assert_eq!(r.status, ex.status, "{what}: {}", r.describe());
        eprintln!("{what} -> {} as documented", r.status);
        let Some(doc_json) = &ex.response else {
            continue;
        };
        let real = r
            .json()
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", r.describe()));
        let (Some(d), Some(a)) = (doc_json.as_object(), real.as_object()) else {
            panic!("{what}: documented or real response is not an object: {real}");
        };
        for (k, v) in d {
            let got = a
                .get(k)
                .unwrap_or_else(|| panic!("{what}: documented field {k:?} missing in {real}"));
            if let (Some(dv), Some(gv)) = (v.as_str(), got.as_str())
                && is_uuid(dv)
                && is_uuid(gv)
            {
                ids.entry(dv.to_string()).or_insert_with(|| gv.to_string());
                continue;
            }
            let same = match v {
                Value::String(s) if !EXAMPLE_VALUES.contains(&k.as_str()) => {
                    Some(&Value::String(substitute(s, &ids))) == Some(got)
                }
                Value::Bool(_) => v == got,
                Value::Number(_) if k == "status" => v == got,
                _ => true,
            };
            assert!(
                same,
                "{what}: field {k:?} documented as {v}, the server says {got}"
            );
        }
    }
}
