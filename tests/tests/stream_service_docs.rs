//! The examples of docs/api/stream-service.md, sent to a real server in document order: each
//! `http` request block is sent (tokens `<JWT for NAME>` signed for NAME, ids of earlier example
//! responses replaced by the real ones), and the following `http` response block's status and
//! top-level JSON fields must match what the server answers.

mod stream_support;

use std::collections::HashMap;

use ringcast_tests::Server;
use ringcast_tests::doc_examples::{examples, is_uuid, read_page, substitute};
use stream_support::*;

#[test]
fn documented_examples_run_as_documented() {
    let doc = read_page("stream-service.md");
    let examples = examples(&doc);
    assert!(
        examples.len() >= 8,
        "only {} examples found",
        examples.len()
    );
    let server = Server::start(stream_server(&[])).expect("server starts");
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
            }
        }
    }
}
