//! The server's own counters over the measurement window, where it is a Ringcast server: two
//! scrapes of its Prometheus `/metrics` (text exposition format), summed over shards.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::http::{self, Url};

/// Counter totals from one scrape: metric name (and, for drops, `drops{reason}`) to value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub values: BTreeMap<String, f64>,
}

/// What the server did during the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerTraffic {
    pub rtp_in_per_s: f64,
    pub rtp_out_per_s: f64,
    pub datagrams_out_per_s: f64,
    pub bytes_out_per_s: f64,
    pub retransmits: f64,
    pub send_errors: f64,
    /// Datagrams dropped, by reason (only reasons that occurred).
    pub drops: BTreeMap<String, f64>,
}

/// Parses the text format, keeping `ringcast_*` samples: counters summed across label sets,
/// except `ringcast_drops_total`, kept per `reason`.
pub fn parse(text: &str) -> Scrape {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || !line.starts_with("ringcast_") {
            continue;
        }
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = match key.find('{') {
            Some(i) => (&key[..i], &key[i..]),
            None => (key, ""),
        };
        let name = if name == "ringcast_drops_total" {
            let reason = labels
                .split(['{', ',', '}'])
                .find_map(|l| l.strip_prefix("reason="))
                .map(|r| r.trim_matches('"'))
                .unwrap_or("unknown");
            format!("drops:{reason}")
        } else {
            name.to_string()
        };
        *values.entry(name).or_insert(0.0) += v;
    }
    Scrape { values }
}

/// Scrapes `base/metrics`; `None` when the server has no Ringcast metrics.
pub fn scrape(base: &str, timeout: Duration) -> Option<Scrape> {
    let mut url = Url::parse(base).ok()?;
    while url.path.ends_with('/') {
        url.path.pop();
    }
    url.path.push_str("/metrics");
    let r = http::send(&http::Request {
        method: "GET",
        url: &url,
        headers: &[],
        body: &[],
        timeout,
    })
    .ok()?;
    if r.status != 200 {
        return None;
    }
    let s = parse(&r.text());
    (!s.values.is_empty()).then_some(s)
}

impl ServerTraffic {
    /// The difference of two scrapes `secs` apart.
    pub fn between(a: &Scrape, b: &Scrape, secs: f64) -> Self {
        let d = |k: &str| {
            (b.values.get(k).copied().unwrap_or(0.0) - a.values.get(k).copied().unwrap_or(0.0))
                .max(0.0)
        };
        let secs = secs.max(1e-9);
        let drops = b
            .values
            .keys()
            .filter_map(|k| k.strip_prefix("drops:").map(|r| (r.to_string(), d(k))))
            .filter(|(_, v)| *v > 0.0)
            .collect();
        ServerTraffic {
            rtp_in_per_s: d("ringcast_rtp_in_total") / secs,
            rtp_out_per_s: d("ringcast_rtp_out_total") / secs,
            datagrams_out_per_s: d("ringcast_datagrams_out_total") / secs,
            bytes_out_per_s: d("ringcast_bytes_out_total") / secs,
            retransmits: d("ringcast_retransmits_total"),
            send_errors: d("ringcast_send_errors_total"),
            drops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_over_shards_and_drops_keep_their_reason() {
        let a = parse(
            "# HELP x\nringcast_rtp_out_total{shard=\"0\"} 100\nringcast_rtp_out_total{shard=\"1\"} 50\n\
             ringcast_drops_total{shard=\"0\",reason=\"srtp_auth\"} 1\nother_metric 5\n",
        );
        assert_eq!(a.values["ringcast_rtp_out_total"], 150.0);
        assert_eq!(a.values["drops:srtp_auth"], 1.0);
        assert!(!a.values.contains_key("other_metric"));
        let b = parse(
            "ringcast_rtp_out_total{shard=\"0\"} 1100\nringcast_rtp_out_total{shard=\"1\"} 1050\n\
             ringcast_drops_total{shard=\"0\",reason=\"srtp_auth\"} 1\n\
             ringcast_drops_total{shard=\"1\",reason=\"tx_queue_full\"} 7\n",
        );
        let t = ServerTraffic::between(&a, &b, 2.0);
        assert_eq!(t.rtp_out_per_s, 1000.0);
        assert_eq!(t.drops.len(), 1);
        assert_eq!(t.drops["tx_queue_full"], 7.0);
    }
}
