//! Counters and gauges of the signaling services for `GET /metrics` (the shards' own are in
//! `sfu::metrics`): so far the livestream service's viewers, Socket.IO connections, chat
//! messages and refusals.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The livestream service's numbers on this node.
#[derive(Debug, Default)]
pub struct LivestreamMetrics {
    /// Viewers of every livestream now (a user watching one livestream on several
    /// connections is one viewer).
    pub viewers: AtomicU64,
    /// Socket.IO connections now.
    pub sockets: AtomicU64,
    /// Chat messages stored and broadcast.
    pub chat_messages: AtomicU64,
    /// Chat messages refused past the per-user rate limit.
    pub chat_rate_limited: AtomicU64,
    /// Chat messages refused from muted users.
    pub chat_muted: AtomicU64,
    /// Joins refused at the per-livestream viewer limit.
    pub joins_refused_full: AtomicU64,
}

/// Every service's numbers.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    pub livestream: LivestreamMetrics,
}

/// Adds one to a counter.
#[inline]
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl ServiceMetrics {
    /// The Prometheus text of every family.
    pub fn render(&self, out: &mut String) {
        let l = &self.livestream;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP ringcast_livestream_viewers Viewers of livestreams on this node now\n\
             # TYPE ringcast_livestream_viewers gauge\n\
             ringcast_livestream_viewers {}\n\
             # HELP ringcast_livestream_sockets Socket.IO connections to the livestream service now\n\
             # TYPE ringcast_livestream_sockets gauge\n\
             ringcast_livestream_sockets {}\n\
             # HELP ringcast_livestream_chat_messages_total Livestream chat messages stored and broadcast\n\
             # TYPE ringcast_livestream_chat_messages_total counter\n\
             ringcast_livestream_chat_messages_total {}\n\
             # HELP ringcast_livestream_chat_refused_total Livestream chat messages refused, by reason\n\
             # TYPE ringcast_livestream_chat_refused_total counter\n\
             ringcast_livestream_chat_refused_total{{reason=\"rate_limited\"}} {}\n\
             ringcast_livestream_chat_refused_total{{reason=\"muted\"}} {}\n\
             # HELP ringcast_livestream_joins_refused_total Livestream joins refused at the viewer limit\n\
             # TYPE ringcast_livestream_joins_refused_total counter\n\
             ringcast_livestream_joins_refused_total {}\n",
            get(&l.viewers),
            get(&l.sockets),
            get(&l.chat_messages),
            get(&l.chat_rate_limited),
            get(&l.chat_muted),
            get(&l.joins_refused_full),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn livestream_families_render_with_their_values() {
        let m = ServiceMetrics::default();
        m.livestream.viewers.store(3, Ordering::Relaxed);
        inc(&m.livestream.chat_messages);
        inc(&m.livestream.chat_messages);
        inc(&m.livestream.chat_rate_limited);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("ringcast_livestream_viewers 3\n"), "{out}");
        assert!(out.contains("ringcast_livestream_chat_messages_total 2\n"));
        assert!(
            out.contains("ringcast_livestream_chat_refused_total{reason=\"rate_limited\"} 1\n")
        );
        assert!(out.contains("ringcast_livestream_chat_refused_total{reason=\"muted\"} 0\n"));
        assert!(out.contains("# TYPE ringcast_livestream_sockets gauge\n"));
    }
}
