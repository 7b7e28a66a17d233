//! `loadgen relay`: the impairing relay on its own, in front of any UDP media server. Point a
//! client at `--listen` instead of the server's media address; traffic goes on to `--upstream`
//! impaired in both directions. Prints its counters every few seconds and at the end.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use super::{Impairment, Relay, RelayStats};

/// Userspace UDP relay that applies delay, jitter, loss, a rate limit and reordering to the
/// traffic through it, both directions, repeatably under --seed.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen relay")]
pub struct RelayArgs {
    /// Address clients send to.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The server's media address.
    #[arg(long)]
    pub upstream: SocketAddr,
    /// One-way delay added in each direction, milliseconds.
    #[arg(long, default_value_t = 0.0)]
    pub delay_ms: f64,
    /// Delay varies uniformly by plus or minus this, milliseconds (order is kept).
    #[arg(long, default_value_t = 0.0)]
    pub jitter_ms: f64,
    /// Random loss in each direction, percent.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Rate limit in each direction, kbit/s (0: none).
    #[arg(long, default_value_t = 0)]
    pub rate_kbps: u64,
    /// Longest queueing in the rate limiter before tail drop, milliseconds.
    #[arg(long, default_value_t = 200.0)]
    pub queue_ms: f64,
    /// Packets held back and sent after their successor, percent.
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// Impair only client → server (`up`), only server → client (`down`), or `both`.
    #[arg(long, default_value = "both")]
    pub direction: String,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many seconds (0: run until interrupted).
    #[arg(long, default_value_t = 0.0)]
    pub duration: f64,
    /// Seconds between counter lines on stderr (0: only at the end).
    #[arg(long, default_value_t = 5.0)]
    pub stats_interval: f64,
}

impl RelayArgs {
    /// The impairment these flags describe.
    pub fn impairment(&self) -> Result<Impairment, String> {
        let pct = |v: f64, name: &str| {
            if (0.0..=100.0).contains(&v) {
                Ok(v / 100.0)
            } else {
                Err(format!("--{name} must be 0..100 (percent)"))
            }
        };
        let ms = |v: f64, name: &str| {
            if v >= 0.0 && v.is_finite() {
                Ok(Duration::from_secs_f64(v / 1e3))
            } else {
                Err(format!(
                    "--{name} must be a non-negative number of milliseconds"
                ))
            }
        };
        Ok(Impairment {
            delay: ms(self.delay_ms, "delay-ms")?,
            jitter: ms(self.jitter_ms, "jitter-ms")?,
            loss: pct(self.loss, "loss")?,
            rate_bps: (self.rate_kbps > 0).then_some(self.rate_kbps * 1000),
            queue: ms(self.queue_ms, "queue-ms")?,
            reorder: pct(self.reorder, "reorder")?,
            ..Impairment::default()
        })
    }
}

/// One line of counters.
pub fn stats_line(s: &RelayStats) -> String {
    format!(
        "relay: clients {} | up in {} out {} lost {} queue-drop {} reordered {} | \
         down in {} out {} lost {} queue-drop {} reordered {}",
        s.clients,
        s.up.packets_in,
        s.up.packets_out,
        s.up.lost,
        s.up.queue_drops,
        s.up.reordered,
        s.down.packets_in,
        s.down.packets_out,
        s.down.lost,
        s.down.queue_drops,
        s.down.reordered
    )
}

/// Runs the standalone relay with `argv` (`relay` first, as clap expects the program name).
pub fn main<I: IntoIterator<Item = String>>(argv: I) -> ExitCode {
    let args = RelayArgs::parse_from(argv);
    let imp = match args.impairment() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("loadgen relay: {e}");
            return ExitCode::from(2);
        }
    };
    let (up, down) = match args.direction.as_str() {
        "both" => (imp, imp),
        "up" => (imp, Impairment::default()),
        "down" => (Impairment::default(), imp),
        other => {
            eprintln!("loadgen relay: --direction must be up, down or both, not {other}");
            return ExitCode::from(2);
        }
    };
    let mut relay = Relay::new(up, down, args.seed);
    let bound = match relay.listen(args.listen, args.upstream) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen relay: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let handle = match relay.spawn() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("loadgen relay: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("loadgen relay: {bound} -> {} ({imp:?})", args.upstream);
    let start = Instant::now();
    let mut last = start;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if args.duration > 0.0 && start.elapsed().as_secs_f64() >= args.duration {
            break;
        }
        if args.stats_interval > 0.0 && last.elapsed().as_secs_f64() >= args.stats_interval {
            last = Instant::now();
            eprintln!("{}", stats_line(&handle.stats()));
        }
    }
    println!("{}", stats_line(&handle.stop()));
    ExitCode::SUCCESS
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_an_impairment() {
        let a = RelayArgs::parse_from([
            "relay",
            "--listen",
            "127.0.0.1:7000",
            "--upstream",
            "127.0.0.1:50000",
            "--delay-ms",
            "50",
            "--jitter-ms",
            "10",
            "--loss",
            "2",
            "--rate-kbps",
            "600",
            "--reorder",
            "1",
        ]);
        let i = a.impairment().unwrap();
        assert_eq!(i.delay, Duration::from_millis(50));
        assert_eq!(i.jitter, Duration::from_millis(10));
        assert!((i.loss - 0.02).abs() < 1e-12 && (i.reorder - 0.01).abs() < 1e-12);
        assert_eq!(i.rate_bps, Some(600_000));
        let bad = RelayArgs { loss: 150.0, ..a };
        assert!(bad.impairment().is_err());
    }
}
