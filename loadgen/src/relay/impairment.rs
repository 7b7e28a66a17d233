//! What a relay does to packets: delay, jitter, random loss, a rate limit (token bucket with a
//! bounded queue) and reordering; and the `--impair` text form
//! (`delay=50ms,jitter=10ms,loss=2%,rate=600kbps,reorder=1%,queue=200ms,burst=16kB`).

use std::time::Duration;

/// Why an impairment description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpairmentError {
    #[error("unknown impairment {0:?} (expected delay, jitter, loss, rate, reorder, queue, burst)")]
    UnknownKey(String),
    #[error("bad value {value:?} for {key}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("expected key=value, got {0:?}")]
    NotKeyValue(String),
}

/// One direction's impairment. The default does nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Each packet's delay varies uniformly in `delay ± jitter` (never below zero). Jitter
    /// does not reorder: a packet never leaves before the one ahead of it.
    pub jitter: Duration,
    /// Probability that a packet is dropped at random, 0..=1.
    pub loss: f64,
    /// Rate limit in bits/s (`None`: unlimited): a token bucket of `burst` bytes in front of
    /// a FIFO queue holding at most `queue` of waiting time; what does not fit is dropped.
    pub rate_bps: Option<u64>,
    /// Token bucket depth in bytes.
    pub burst: usize,
    /// Longest time a packet may wait in the rate limiter's queue (tail drop past it).
    pub queue: Duration,
    /// Probability that a packet is held back and sent right after the next one, 0..=1.
    pub reorder: f64,
}

impl Default for Impairment {
    fn default() -> Self {
        Impairment {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            rate_bps: None,
            burst: 16 * 1024,
            queue: Duration::from_millis(200),
            reorder: 0.0,
        }
    }
}

impl Impairment {
    /// True when the impairment changes nothing.
    pub fn is_none(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss == 0.0
            && self.rate_bps.is_none()
            && self.reorder == 0.0
    }

    /// Parses `key=value` pairs separated by commas. Units: `us`, `ms`, `s` for times; `%`
    /// or a fraction for probabilities; `bps`, `kbps`, `mbps` for rates; `B`, `kB` for bytes.
    pub fn parse(text: &str) -> Result<Self, ImpairmentError> {
        let mut imp = Impairment::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| ImpairmentError::NotKeyValue(part.to_string()))?;
            let (key, value) = (key.trim(), value.trim());
            let bad = |reason| ImpairmentError::BadValue {
                key: key.to_string(),
                value: value.to_string(),
                reason,
            };
            match key {
                "delay" => imp.delay = parse_duration(value).ok_or_else(|| bad("a time"))?,
                "jitter" => imp.jitter = parse_duration(value).ok_or_else(|| bad("a time"))?,
                "queue" => imp.queue = parse_duration(value).ok_or_else(|| bad("a time"))?,
                "loss" => imp.loss = parse_probability(value).ok_or_else(|| bad("0..100%"))?,
                "reorder" => {
                    imp.reorder = parse_probability(value).ok_or_else(|| bad("0..100%"))?
                }
                "rate" => {
                    let r = parse_rate(value).ok_or_else(|| bad("a rate like 600kbps"))?;
                    imp.rate_bps = (r > 0).then_some(r);
                }
                "burst" => imp.burst = parse_bytes(value).ok_or_else(|| bad("bytes"))?,
                other => return Err(ImpairmentError::UnknownKey(other.to_string())),
            }
        }
        Ok(imp)
    }
}

fn split_unit(s: &str) -> (f64, String) {
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n = s[..i].parse::<f64>().unwrap_or(f64::NAN);
    (n, s[i..].trim().to_ascii_lowercase())
}

/// `50ms`, `1.5s`, `200us`; a bare number is milliseconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = split_unit(s);
    let secs = match unit.as_str() {
        "us" => n / 1e6,
        "ms" | "" => n / 1e3,
        "s" => n,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `2%` or `0.02`.
pub fn parse_probability(s: &str) -> Option<f64> {
    let (n, unit) = split_unit(s);
    let p = match unit.as_str() {
        "%" => n / 100.0,
        "" => n,
        _ => return None,
    };
    (0.0..=1.0).contains(&p).then_some(p)
}

/// `600kbps`, `2mbps`, `64000bps`; a bare number is kbit/s.
pub fn parse_rate(s: &str) -> Option<u64> {
    let (n, unit) = split_unit(s);
    let bps = match unit.as_str() {
        "bps" => n,
        "kbps" | "kbit" | "" => n * 1e3,
        "mbps" | "mbit" => n * 1e6,
        _ => return None,
    };
    (bps.is_finite() && bps >= 0.0).then_some(bps as u64)
}

/// `16kB`, `1500B`, `1500`.
pub fn parse_bytes(s: &str) -> Option<usize> {
    let (n, unit) = split_unit(s);
    let b = match unit.as_str() {
        "b" | "" => n,
        "kb" => n * 1024.0,
        _ => return None,
    };
    (b.is_finite() && b >= 1.0).then_some(b as usize)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let i = Impairment::parse("delay=50ms,jitter=10ms,loss=2%,rate=600kbps").unwrap();
        assert_eq!(i.delay, Duration::from_millis(50));
        assert_eq!(i.jitter, Duration::from_millis(10));
        assert!((i.loss - 0.02).abs() < 1e-12);
        assert_eq!(i.rate_bps, Some(600_000));
        assert_eq!(i.reorder, 0.0);
        assert!(!i.is_none());
        assert!(Impairment::parse("").unwrap().is_none());
    }

    #[test]
    fn units_and_errors() {
        let i =
            Impairment::parse("delay=1.5s, reorder=0.1, rate=2mbps, queue=50, burst=3kB").unwrap();
        assert_eq!(i.delay, Duration::from_millis(1500));
        assert!((i.reorder - 0.1).abs() < 1e-12);
        assert_eq!(i.rate_bps, Some(2_000_000));
        assert_eq!(i.queue, Duration::from_millis(50));
        assert_eq!(i.burst, 3072);
        assert!(matches!(
            Impairment::parse("lag=5ms"),
            Err(ImpairmentError::UnknownKey(_))
        ));
        assert!(Impairment::parse("loss=120%").is_err());
        assert!(Impairment::parse("delay=5parsecs").is_err());
        assert!(Impairment::parse("delay").is_err());
    }
}
