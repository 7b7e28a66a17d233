//! Capacity classes of viewers (`--subscriber-classes 600k:10,2m:10,unlimited:5`): each class
//! is a downlink rate and a number of subscribers per publisher. Every subscriber of a limited
//! class receives through its own [`crate::relay::Downlink`]. Classes are interleaved in join
//! order (smooth weighted round robin), so every class grows evenly during the ramp.

use std::time::Duration;

use crate::relay::DownlinkConfig;
use crate::target::{JoinRequest, Role};

/// Why a class list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error("expected RATE:COUNT, got {0:?}")]
    NotRateCount(String),
    #[error("bad rate {0:?} (expected a rate like 600k, 2m, 1.5mbps, or unlimited)")]
    BadRate(String),
    #[error("bad count {0:?} (expected a positive number of subscribers)")]
    BadCount(String),
    #[error("no classes given")]
    Empty,
}

/// One class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSpec {
    /// As written (`600k`, `unlimited`): the class's name in the report.
    pub name: String,
    /// Downlink rate in bits/s; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Subscribers of this class per publisher.
    pub count: usize,
}

/// `600k`, `2m`, `1.5mbps`, `800kbps`, `64000` (bits/s), `unlimited`.
pub fn parse_rate(s: &str) -> Result<Option<u64>, ClassError> {
    let bad = || ClassError::BadRate(s.to_string());
    let t = s.trim().to_ascii_lowercase();
    if matches!(t.as_str(), "unlimited" | "inf" | "none") {
        return Ok(None);
    }
    let i = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..i].parse().map_err(|_| bad())?;
    let unit = match t[i..].trim() {
        "" | "b" | "bps" => 1.0,
        "k" | "kb" | "kbps" | "kbit" => 1e3,
        "m" | "mb" | "mbps" | "mbit" => 1e6,
        "g" | "gb" | "gbps" | "gbit" => 1e9,
        _ => return Err(bad()),
    };
    let bps = n * unit;
    if !(bps.is_finite() && bps >= 1000.0) {
        return Err(bad());
    }
    Ok(Some(bps as u64))
}

/// Parses `RATE:COUNT[,RATE:COUNT...]`.
pub fn parse_classes(text: &str) -> Result<Vec<ClassSpec>, ClassError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (rate, count) = part
            .rsplit_once(':')
            .ok_or_else(|| ClassError::NotRateCount(part.to_string()))?;
        let count: usize = count
            .trim()
            .parse()
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| ClassError::BadCount(count.to_string()))?;
        out.push(ClassSpec {
            name: rate.trim().to_string(),
            rate_bps: parse_rate(rate)?,
            count,
        });
    }
    if out.is_empty() {
        return Err(ClassError::Empty);
    }
    Ok(out)
}

/// The classes of a run and which subscriber is in which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPlan {
    pub classes: Vec<ClassSpec>,
    /// The class of each subscriber round (a publisher's k-th subscriber is in `order[k]`).
    order: Vec<usize>,
    /// Publishers in the run (clients `0..publishers` publish, the rest subscribe in rounds of
    /// one per publisher).
    publishers: usize,
    /// Rate-limited downlinks: bucket depth and queue.
    pub burst: usize,
    pub queue: Duration,
}

impl ClassPlan {
    /// The plan for `classes` over `publishers` publishers.
    pub fn new(classes: Vec<ClassSpec>, publishers: usize, burst: usize, queue: Duration) -> Self {
        let order = interleave(&classes.iter().map(|c| c.count).collect::<Vec<_>>());
        ClassPlan {
            classes,
            order,
            publishers: publishers.max(1),
            burst,
            queue,
        }
    }

    /// Subscribers per publisher (the sum of the counts).
    pub fn subscribers_per_publisher(&self) -> usize {
        self.order.len()
    }

    /// The class of a publisher's `k`-th subscriber.
    pub fn class_of_round(&self, k: usize) -> Option<usize> {
        self.order.get(k).copied()
    }

    /// The class of a joining client (subscribers only; see [`crate::plan::plan`] for the order).
    pub fn class_of(&self, req: &JoinRequest) -> Option<usize> {
        if req.role != Role::Subscriber {
            return None;
        }
        let k = req.client.checked_sub(self.publishers)? / self.publishers;
        self.class_of_round(k)
    }

    /// The downlink of class `c` (`None` when unlimited).
    pub fn downlink(&self, c: usize) -> Option<DownlinkConfig> {
        let rate_bps = self.classes.get(c)?.rate_bps?;
        Some(DownlinkConfig {
            rate_bps,
            burst: self.burst,
            queue: self.queue,
        })
    }
}

/// Class indices for `counts[c]` members of each class, spread out: smooth weighted round robin
/// (each turn every class gains its count, the one with the most goes and loses the total).
pub fn interleave(counts: &[usize]) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let mut credit = vec![0i64; counts.len()];
    let mut out = Vec::with_capacity(total);
    for _ in 0..total {
        for (c, n) in credit.iter_mut().zip(counts) {
            *c += *n as i64;
        }
        let Some((best, _)) = credit
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
        else {
            break;
        };
        credit[best] -= total as i64;
        out.push(best);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let c = parse_classes("600k:10,2m:10,unlimited:5").unwrap();
        assert_eq!(
            c,
            vec![
                ClassSpec {
                    name: "600k".into(),
                    rate_bps: Some(600_000),
                    count: 10
                },
                ClassSpec {
                    name: "2m".into(),
                    rate_bps: Some(2_000_000),
                    count: 10
                },
                ClassSpec {
                    name: "unlimited".into(),
                    rate_bps: None,
                    count: 5
                },
            ]
        );
    }

    #[test]
    fn rates_take_the_usual_units_and_bad_input_is_refused() {
        assert_eq!(parse_rate("1.5mbps").unwrap(), Some(1_500_000));
        assert_eq!(parse_rate("800kbps").unwrap(), Some(800_000));
        assert_eq!(parse_rate("64000").unwrap(), Some(64_000));
        assert_eq!(parse_rate("1G").unwrap(), Some(1_000_000_000));
        for bad in ["fast", "5parsecs", "0k", "12", "-3m", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_classes("600k"),
            Err(ClassError::NotRateCount(_))
        ));
        assert!(matches!(
            parse_classes("600k:0"),
            Err(ClassError::BadCount(_))
        ));
        assert!(matches!(parse_classes(" , "), Err(ClassError::Empty)));
    }

    #[test]
    fn classes_are_interleaved_in_proportion() {
        assert_eq!(interleave(&[2, 2]), [0, 1, 0, 1]);
        let o = interleave(&[10, 10, 5]);
        assert_eq!(o.len(), 25);
        for c in 0..3 {
            assert_eq!(o.iter().filter(|&&x| x == c).count(), [10, 10, 5][c]);
        }
        // Every prefix holds each class within one of its share.
        for n in 1..=25 {
            for (c, count) in [10.0, 10.0, 5.0].iter().enumerate() {
                let have = o[..n].iter().filter(|&&x| x == c).count() as f64;
                assert!((have - count * n as f64 / 25.0).abs() <= 1.0, "{o:?}");
            }
        }
    }

    #[test]
    fn subscribers_get_the_class_of_their_round() {
        let plan = ClassPlan::new(
            parse_classes("600k:1,unlimited:2").unwrap(),
            2,
            16 * 1024,
            Duration::from_millis(200),
        );
        assert_eq!(plan.subscribers_per_publisher(), 3);
        let reqs = crate::plan::plan("x", 2, 3, 2);
        let classes: Vec<Option<usize>> = reqs.iter().map(|r| plan.class_of(r)).collect();
        let rounds: Vec<Option<usize>> = (0..3).map(|k| plan.class_of_round(k)).collect();
        // Publishers have none; each round of two subscribers (one per publisher) shares one.
        assert_eq!(&classes[..2], &[None, None]);
        for k in 0..3 {
            assert_eq!(classes[2 + 2 * k], rounds[k]);
            assert_eq!(classes[3 + 2 * k], rounds[k]);
        }
        assert_eq!(rounds.iter().filter(|c| **c == Some(1)).count(), 2);
        assert_eq!(plan.downlink(1), None);
        assert_eq!(plan.downlink(0).unwrap().rate_bps, 600_000);
    }
}
