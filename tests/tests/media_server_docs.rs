//! The examples of docs/api/media-server.md, sent to a real server in document order: each `http`
//! request block is sent (tokens `<JWT for NAME>` signed for NAME, ids of earlier example
//! responses replaced by the real ones), and the following `http` response block's status and
//! top-level fields must match what the server answers: every documented field present, and
//! documented strings (other than ids and timestamps) and booleans equal.

mod stream_support;

use std::collections::HashMap;

use ringcast_tests::doc_examples::{examples, is_uuid, read_page, substitute};
use ringcast_tests::{Server, ServerOptions};
use serde_json::Value;
use stream_support::*;

/// Documented fields whose values are examples, not contract.
const EXAMPLE_VALUES: &[&str] = &["created_at", "started_at", "stopped_at"];

#[test]
fn documented_examples_run_as_documented() {
    let doc = read_page("media-server.md");
    let examples = examples(&doc);
    assert!(
        examples.len() >= 10,
        "only {} examples found",
        examples.len()
    );
    // Recordings go to a directory (the recording tests use an S3 server).
    let recordings = std::env::temp_dir().join(format!("ringcast-docs-rec-{}", std::process::id()));
    let server = Server::start(
        ServerOptions::new(1, ringcast_tests::Io::Mmsg)
            .env("JWT_SECRET", SECRET)
            .env("ENABLE_RECORDING", "true")
            .env(
                "RECORDING_STORAGE",
                format!("file://{}", recordings.display()),
            )
            .env("TURN_URL", "turn:turn.example.com:3478")
            .env("TURN_USERNAME", "discord")
            .env("TURN_PASSWORD", "password"),
    )
    .expect("server starts");
    let _cleanup = RemoveOnDrop(recordings);
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

/// Removes a directory when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
