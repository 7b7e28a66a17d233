//! The HTTP examples of a docs/api page, for the tests that send them to a real server: every
//! ```` ```http ```` request block followed by its response block, in document order.

use std::collections::HashMap;

use serde_json::Value;

/// One documented request and the response the page shows for it.
#[derive(Debug, Clone)]
pub struct Example {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
    /// The response body, when the page shows one (it must be JSON).
    pub response: Option<Value>,
}

/// Reads `docs/api/<name>` from the workspace.
pub fn read_page(name: &str) -> String {
    let path = crate::paths::workspace_root().join("docs/api").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The examples of `doc`. Panics (the page is wrong) when a request block has no response block
/// after it or a response body is not JSON.
pub fn examples(doc: &str) -> Vec<Example> {
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

/// Looks like a uuid (8-4-4-4-12).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

/// `s` with every documented id replaced by the real one it stands for.
pub fn substitute(s: &str, ids: &HashMap<String, String>) -> String {
    ids.iter()
        .fold(s.to_string(), |acc, (doc, real)| acc.replace(doc, real))
}

/// The contents of the ```` ```http ```` blocks.
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

/// A block's head lines (start line and headers) and its body.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn request_and_response_blocks_pair_up_with_headers_and_bodies() {
        let doc = "text\n```http\nPOST /x\nContent-Type: application/json\n\n{\"a\":1}\n```\n\
                   more\n```http\nHTTP/1.1 201 Created\nLocation: /x/1\n\n{\"id\":\"1\"}\n```\n";
        let ex = examples(doc);
        assert_eq!(ex.len(), 1);
        assert_eq!((ex[0].method.as_str(), ex[0].path.as_str()), ("POST", "/x"));
        assert_eq!(ex[0].headers[0].0, "content-type");
        assert_eq!(ex[0].body, "{\"a\":1}");
        assert_eq!(ex[0].status, 201);
        assert_eq!(ex[0].response.as_ref().unwrap()["id"], "1");
    }
}
