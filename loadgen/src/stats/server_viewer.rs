//! The server's view of one viewer, where the server offers it: Ringcast's
//! `GET {WHEP resource}/stats` gives the send-side bandwidth estimate toward the viewer
//! (`bwe.target_bps`) and how much transport-cc feedback it received from it. Read once at the
//! end of the measurement window, per capacity class, to compare with the class's real rate.

use std::time::Duration;

use crate::http::{self, Url};

/// The server's estimate toward one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerEstimate {
    pub target_bps: u64,
    pub feedback_received: u64,
}

/// Reads a stats document: `None` when it has no estimate.
pub fn parse(body: &str) -> Option<ViewerEstimate> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let bwe = v.get("bwe")?;
    Some(ViewerEstimate {
        target_bps: bwe.get("target_bps")?.as_u64()?,
        feedback_received: bwe
            .get("feedback_received")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
    })
}

/// Fetches `{resource}/stats` with the run's bearer token; `None` when the server has no such
/// document or no estimate for the viewer.
pub fn fetch(resource: &str, token: Option<&str>, timeout: Duration) -> Option<ViewerEstimate> {
    let mut url = Url::parse(resource).ok()?;
    while url.path.ends_with('/') {
        url.path.pop();
    }
    url.path.push_str("/stats");
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let r = http::send(&http::Request {
        method: "GET",
        url: &url,
        headers: &headers,
        body: &[],
        timeout,
    })
    .ok()?;
    if r.status != 200 {
        return None;
    }
    parse(&r.text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_read_from_ringcast_stats() {
        let body = r#"{"session":"5","stream":"s","shard":0,"bwe":{"target_bps":612000,
            "delay_based_bps":700000,"acked_bps":580000,"feedback_received":412}}"#;
        assert_eq!(
            parse(body),
            Some(ViewerEstimate {
                target_bps: 612_000,
                feedback_received: 412
            })
        );
        assert_eq!(parse(r#"{"session":"5","bwe":null}"#), None);
        assert_eq!(parse("not json"), None);
    }
}
