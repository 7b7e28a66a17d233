//! Small blocking HTTP helpers for talking to the server on loopback.
//!
//! [`request`] uses `ureq` and never turns a 4xx/5xx into an error: tests look at the status.
//! [`post_raw`] speaks HTTP/1.1 over a bare socket, writing the body from another thread while it
//! reads, so a server that answers (e.g. 413) before it has read a large body is still heard.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use crate::HarnessError;

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// A one-line description for assertion messages.
    pub fn describe(&self) -> String {
        let body = self.text();
        let body: String = body.chars().take(400).collect();
        format!(
            "{} content-type={:?} body={body:?}",
            self.status,
            self.header("content-type")
        )
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .max_redirects(0)
            .build()
            .into()
    })
}

/// Sends `method url` with an optional `(content_type, body)`; any status is a response.
pub fn request(
    method: &str,
    url: &str,
    body: Option<(&str, &[u8])>,
) -> Result<HttpResponse, HarnessError> {
    let err = |reason: String| HarnessError::Http {
        method: method.into(),
        url: url.into(),
        reason,
    };
    let a = agent();
    let result = match (method, body) {
        ("GET", None) => a.get(url).call(),
        ("DELETE", None) => a.delete(url).call(),
        ("POST", Some((ct, b))) => a.post(url).header("content-type", ct).send(b),
        ("POST", None) => a.post(url).send_empty(),
        ("PATCH", Some((ct, b))) => a.patch(url).header("content-type", ct).send(b),
        ("PUT", Some((ct, b))) => a.put(url).header("content-type", ct).send(b),
        _ => return Err(err("unsupported method/body combination".into())),
    };
    let mut res = result.map_err(|e| err(e.to_string()))?;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = res
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_vec()
        .map_err(|e| err(e.to_string()))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// POSTs `body` to `path` over a raw HTTP/1.1 connection (`Connection: close`). The body is
/// written from a second thread so a response sent before the body was consumed is read.
/// `content_type: None` sends no Content-Type header.
pub fn post_raw(
    addr: SocketAddr,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<HttpResponse, HarnessError> {
    let url = format!("http://{addr}{path}");
    let err = |reason: String| HarnessError::Http {
        method: "POST".into(),
        url: url.clone(),
        reason,
    };
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| err(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| err(e.to_string()))?;
    let mut writer = stream.try_clone().map_err(|e| err(e.to_string()))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    let writer_thread = std::thread::spawn(move || {
        // Write errors (the server closed early) are expected when it rejects the body.
        let _ = writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(&body));
        let _ = writer.flush();
    });
    let mut raw = Vec::new();
    let mut reader = stream;
    let mut buf = [0u8; 16384];
    let read_result = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if response_complete(&raw) {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    // Unblock the writer if it is still pushing the body, then join it.
    let _ = reader.shutdown(std::net::Shutdown::Both);
    let _ = writer_thread.join();
    match (parse_response(&raw), read_result) {
        (Some(r), _) => Ok(r),
        (None, Err(e)) => Err(err(format!("{e} after {} response bytes", raw.len()))),
        (None, Ok(())) => Err(err(format!(
            "incomplete response: {:?}",
            String::from_utf8_lossy(&raw)
        ))),
    }
}

fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let pos = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&raw[..pos], &raw[pos + 4..]))
}

fn response_complete(raw: &[u8]) -> bool {
    match parse_response(raw) {
        Some(r) => match r
            .header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            Some(len) => r.body.len() >= len,
            None => is_chunked(&r) && raw.ends_with(b"0\r\n\r\n"),
        },
        None => false,
    }
}

fn is_chunked(r: &HttpResponse) -> bool {
    r.header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let (head, body) = split_head(raw)?;
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut r = HttpResponse {
        status,
        headers,
        body: body.to_vec(),
    };
    if is_chunked(&r) {
        r.body = dechunk(body);
    }
    Some(r)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size_str = String::from_utf8_lossy(&b[..pos]);
        let Ok(size) = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        b = &b[pos + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_responses() {
        let raw = b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n{}";
        assert!(response_complete(raw));
        let r = parse_response(raw).expect("complete response parses");
        assert_eq!(r.status, 413);
        assert_eq!(
            r.content_type().as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(r.body, b"{}");

        let raw = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert!(response_complete(raw));
        assert_eq!(
            parse_response(raw).expect("chunked response parses").body,
            b"abcde"
        );
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"
        ));
    }
}
