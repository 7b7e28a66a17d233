//! A small blocking HTTP/1.1 client (RFC 9112) over `std::net::TcpStream`, enough for signaling
//! exchanges with plain-HTTP servers: one request per connection (`Connection: close`), bodies
//! by `Content-Length`, chunked transfer coding or end of stream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest response this client reads (headers and body).
const MAX_RESPONSE: usize = 4 << 20;

/// Why a request failed before a response could be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {0:?} (expected http://host[:port]/path)")]
    BadUrl(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("I/O with {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("malformed response from {addr}: {reason}")]
    Malformed { addr: String, reason: &'static str },
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or address literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Url, HttpError> {
        let bad = || HttpError::BadUrl(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(bad)?;
            let host = &v6[..end];
            let port = match &v6[end + 1..] {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
                None => (authority, 80),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `host:port` as written in a `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same server with another path; `reference` may be absolute (`http://...`), absolute
    /// path (`/x`) or relative to this URL's directory (RFC 3986 §5.2, without dot segments).
    pub fn join(&self, reference: &str) -> Result<Url, HttpError> {
        if reference.starts_with("http://") {
            return Url::parse(reference);
        }
        let path = if reference.starts_with('/') {
            reference.to_string()
        } else {
            let dir = match self.path.rfind('/') {
                Some(i) => &self.path[..=i],
                None => "/",
            };
            format!("{dir}{reference}")
        };
        Ok(Url {
            host: self.host.clone(),
            port: self.port,
            path,
        })
    }

    /// The whole URL as text.
    pub fn to_url_string(&self) -> String {
        format!("http://{}{}", self.authority(), self.path)
    }

    /// Resolves the host to socket addresses.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, HttpError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|_| HttpError::Resolve(self.authority()))?
            .collect();
        if addrs.is_empty() {
            return Err(HttpError::Resolve(self.authority()));
        }
        Ok(addrs)
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    /// Extra headers (`Host`, `Content-Length` and `Connection` are written by the client).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// Connect, write and read timeout, each.
    pub timeout: Duration,
}

/// Sends `req` and reads the whole response.
pub fn send(req: &Request<'_>) -> Result<Response, HttpError> {
    let addrs = req.url.resolve()?;
    let addr_text = req.url.authority();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, req.timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut stream) = stream else {
        return Err(HttpError::Connect {
            addr: addr_text,
            source: last.unwrap_or_else(|| std::io::Error::other("no address")),
        });
    };
    let io = |source| HttpError::Io {
        addr: req.url.authority(),
        source,
    };
    stream.set_read_timeout(Some(req.timeout)).map_err(io)?;
    stream.set_write_timeout(Some(req.timeout)).map_err(io)?;
    let _ = stream.set_nodelay(true);
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        req.method,
        req.url.path,
        req.url.authority(),
        req.body.len()
    );
    for (k, v) in req.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(req.body);
    stream.write_all(&out).map_err(io)?;
    let mut raw = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err(HttpError::Malformed {
                addr: addr_text,
                reason: "response too large",
            });
        }
        if let Some(done) = complete_len(&raw, req.method == "HEAD")
            && raw.len() >= done
        {
            break;
        }
    }
    parse_response(&raw, req.method == "HEAD").map_err(|reason| HttpError::Malformed {
        addr: addr_text,
        reason,
    })
}

fn find_head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// When the head and a `Content-Length` body are complete, the total length; otherwise `None`
/// (read on until end of stream).
fn complete_len(raw: &[u8], head_only: bool) -> Option<usize> {
    let end = find_head_end(raw)?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    if head_only {
        return Some(end);
    }
    let mut chunked = false;
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("content-length") {
            return v.trim().parse::<usize>().ok().map(|n| end + n);
        }
        if k.trim().eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        }
    }
    if chunked {
        return dechunk(&raw[end..]).map(|(_, used)| end + used);
    }
    // Status codes without a body.
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    (status == 204 || status == 304 || (100..200).contains(&status)).then_some(end)
}

/// Decodes a chunked body; `None` until the terminating chunk has arrived.
fn dechunk(mut b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = b.len();
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            // Trailers end with an empty line.
            let end = b.windows(2).position(|w| w == b"\r\n")?;
            let mut rest = &b[end + 2..];
            let mut trailer = &b[..end];
            while !trailer.is_empty() {
                let e = rest.windows(2).position(|w| w == b"\r\n")?;
                trailer = &rest[..e];
                rest = &rest[e + 2..];
            }
            return Some((out, total - rest.len()));
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Parses a complete response.
pub fn parse_response(raw: &[u8], head_only: bool) -> Result<Response, &'static str> {
    let end = find_head_end(raw).ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err("not an HTTP/1.x status line");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad status code")?;
    let mut headers = Vec::new();
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once(':').ok_or("header without colon")?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
        if k == "content-length" {
            length = Some(v.parse::<usize>().map_err(|_| "bad content-length")?);
        }
        headers.push((k, v));
    }
    let rest = &raw[end..];
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or("truncated chunked body")?.0
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("body shorter than content-length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_and_without_port_and_path() {
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/")
        );
        let u = Url::parse("http://example.org/whip/x").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/whip/x"));
        let u = Url::parse("http://[::1]:9/a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(u.authority(), "[::1]:9");
        assert!(Url::parse("https://x").is_err());
        assert!(Url::parse("http://:80").is_err());
        assert!(Url::parse("http://h:notaport").is_err());
    }

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base = Url::parse("http://h:1/whip/s").unwrap();
        assert_eq!(base.join("/whip/s/abc").unwrap().path, "/whip/s/abc");
        assert_eq!(base.join("s/abc").unwrap().path, "/whip/s/abc");
        assert_eq!(
            base.join("http://other:2/x").unwrap().to_url_string(),
            "http://other:2/x"
        );
    }

    #[test]
    fn content_length_and_chunked_bodies_parse() {
        let raw = b"HTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(complete_len(raw, false), Some(raw.len()));
        let r = parse_response(raw, false).unwrap();
        assert_eq!(
            (r.status, r.header("location"), r.body.as_slice()),
            (201, Some("/x"), &b"abc"[..])
        );
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(complete_len(raw, false), Some(raw.len()));
        assert_eq!(parse_response(raw, false).unwrap().body, b"abcde");
        let partial = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab";
        assert_eq!(complete_len(partial, false), None);
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
    }
}
