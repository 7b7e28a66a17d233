//! Shared state of the HTTP server.

use std::sync::Mutex;

use axum::http::HeaderValue;

use crate::config::Config;
use crate::media::MediaNode;
use crate::registry::Registry;
use crate::sdp::Capabilities;

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub cfg: Config,
    pub media: MediaNode,
    pub registry: Mutex<Registry>,
    pub capabilities: Capabilities,
    /// `Link` header values announcing the configured ICE servers (RFC 9725 §4.6).
    pub ice_links: Vec<HeaderValue>,
    /// The signaling services' counters and gauges (`GET /metrics`).
    pub services: crate::service_metrics::ServiceMetrics,
}

/// RFC 9725 §4.6 Link header values for the configured ICE servers.
pub fn ice_links(cfg: &Config) -> Vec<HeaderValue> {
    cfg.ice_servers
        .iter()
        .filter(|u| !u.trim().is_empty())
        .filter_map(|url| {
            let url = url.trim();
            let mut v = format!("<{url}>; rel=\"ice-server\"");
            if url.starts_with("turn:") || url.starts_with("turns:") {
                if let Some(u) = &cfg.ice_username {
                    v.push_str(&format!("; username=\"{u}\""));
                }
                if let Some(c) = &cfg.ice_credential {
                    v.push_str(&format!(
                        "; credential=\"{c}\"; credential-type=\"password\""
                    ));
                }
            }
            HeaderValue::from_str(&v).ok()
        })
        .collect()
}
