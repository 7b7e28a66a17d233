//! The live status line on stderr: joins, connected clients, bitrates, loss, latency and the
//! load generator's own CPU, refreshed in place on a terminal.

use std::time::Duration;

use super::Counters;
use super::counters::ReceiveQuality;

/// What one refresh shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveSample {
    pub elapsed: Duration,
    pub counters: Counters,
    pub quality: ReceiveQuality,
    /// Latency quantiles of the last interval, microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    /// Process CPU seconds so far.
    pub cpu_s: f64,
}

fn rate(bytes: u64, secs: f64) -> String {
    let bps = bytes as f64 * 8.0 / secs.max(1e-9);
    if bps >= 1e9 {
        format!("{:.2} Gb/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.1} Mb/s", bps / 1e6)
    } else {
        format!("{:.0} kb/s", bps / 1e3)
    }
}

/// The status line for `now` given the previous sample (for rates over the interval).
pub fn status_line(
    prev: &LiveSample,
    now: &LiveSample,
    expected_pubs: u64,
    expected_subs: u64,
) -> String {
    let dt = (now.elapsed - prev.elapsed).as_secs_f64().max(1e-3);
    let c = &now.counters;
    let p = &prev.counters;
    let lost = now.quality.lost.saturating_sub(prev.quality.lost);
    let expected = now.quality.expected.saturating_sub(prev.quality.expected);
    let loss = if expected > 0 {
        lost as f64 / expected as f64 * 100.0
    } else {
        0.0
    };
    let cpu = (now.cpu_s - prev.cpu_s) / dt * 100.0;
    format!(
        "{:>5.0}s joins {}/{} fail {} | pub {}/{} sub {}/{} | out {} in {} ({:.0} kpps) | loss {:.3}% | p50 {:.2} ms p99 {:.2} ms | cpu {:.0}%",
        now.elapsed.as_secs_f64(),
        c.joins_ok(),
        expected_pubs + expected_subs,
        c.joins_failed(),
        c.publishers_connected,
        expected_pubs,
        c.subscribers_receiving,
        expected_subs,
        rate(c.bytes_sent - p.bytes_sent, dt),
        rate(c.bytes_received - p.bytes_received, dt),
        (c.datagrams_received - p.datagrams_received) as f64 / dt / 1e3,
        loss,
        now.p50_us / 1e3,
        now.p99_us / 1e3,
        cpu,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_interval_rates_and_loss() {
        let prev = LiveSample {
            elapsed: Duration::from_secs(1),
            ..LiveSample::default()
        };
        let mut now = prev;
        now.elapsed = Duration::from_secs(2);
        now.counters.bytes_received = 1_000_000;
        now.counters.datagrams_received = 1000;
        now.counters.publisher_joins_ok = 1;
        now.counters.subscriber_joins_ok = 3;
        now.quality.expected = 1000;
        now.quality.lost = 10;
        now.p50_us = 500.0;
        now.cpu_s = 0.25;
        let l = status_line(&prev, &now, 1, 3);
        assert!(l.contains("joins 4/4"), "{l}");
        assert!(l.contains("in 8.0 Mb/s"), "{l}");
        assert!(l.contains("loss 1.000%"), "{l}");
        assert!(l.contains("p50 0.50 ms"), "{l}");
        assert!(l.contains("cpu 25%"), "{l}");
    }
}
