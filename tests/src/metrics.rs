//! A parsed Prometheus text exposition (`GET /metrics`), with per-shard and per-label lookups.

use std::collections::BTreeMap;

use crate::HarnessError;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// All samples of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the Prometheus text format (comments and blank lines skipped).
    pub fn parse(text: &str) -> Result<Metrics, HarnessError> {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            samples.push(parse_line(line).map_err(|reason| HarnessError::Metrics {
                line: line.into(),
                reason,
            })?);
        }
        Ok(Metrics { samples })
    }

    /// Samples of `name` whose labels include every `(key, value)` of `matching`.
    pub fn select<'a>(
        &'a self,
        name: &'a str,
        matching: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name
                && matching
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Sum of `name` over the samples matching `matching` (0 when there are none).
    pub fn sum(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.select(name, matching).map(|s| s.value).sum()
    }

    /// Whether any sample of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// `name` summed per shard (label `shard`).
    pub fn per_shard(&self, name: &str) -> BTreeMap<u32, f64> {
        self.by_label(name, "shard")
            .into_iter()
            .filter_map(|(k, v)| k.parse::<u32>().ok().map(|k| (k, v)))
            .collect()
    }

    /// `name` summed per value of `label`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == name) {
            if let Some(v) = s.labels.get(label) {
                *out.entry(v.clone()).or_insert(0.0) += s.value;
            }
        }
        out
    }

    /// Per-label difference `self - before` of `name` by `label` (labels missing before count as 0).
    pub fn delta_by_label(
        &self,
        before: &Metrics,
        name: &str,
        label: &str,
    ) -> BTreeMap<String, f64> {
        let old = before.by_label(name, label);
        self.by_label(name, label)
            .into_iter()
            .map(|(k, v)| {
                let d = v - old.get(&k).copied().unwrap_or(0.0);
                (k, d)
            })
            .collect()
    }
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let (name_labels, rest) = match line.find('{') {
        Some(open) => {
            let close = find_label_end(line, open).ok_or("unterminated label set")?;
            (&line[..=close], line[close + 1..].trim())
        }
        None => {
            let sp = line.find(char::is_whitespace).ok_or("no value")?;
            (&line[..sp], line[sp..].trim())
        }
    };
    let (name, labels) = match name_labels.find('{') {
        Some(open) => (
            &name_labels[..open],
            parse_labels(&name_labels[open + 1..name_labels.len() - 1])?,
        ),
        None => (name_labels, BTreeMap::new()),
    };
    if name.is_empty() {
        return Err("empty metric name".into());
    }
    let value_str = rest.split_whitespace().next().ok_or("no value")?; // an optional timestamp may follow
    let value = match value_str {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Index of the `}` closing the label set opened at `open`, honouring quoted values.
fn find_label_end(line: &str, open: usize) -> Option<usize> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            '}' if !in_str => return Some(open + i),
            _ => {}
        }
    }
    None
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("label without '='")?;
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        if !rest.starts_with('"') {
            return Err(format!("label {key} value not quoted"));
        }
        let mut value = String::new();
        let mut chars = rest[1..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("dangling escape".into()),
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated label value")?;
        out.insert(key, value);
        rest = rest[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP ringcast_datagrams_in_total Datagrams received.
# TYPE ringcast_datagrams_in_total counter
ringcast_datagrams_in_total{shard="0"} 120
ringcast_datagrams_in_total{shard="1"} 30
ringcast_drops_total{shard="0",reason="unknown_class"} 7
ringcast_drops_total{shard="1",reason="unknown_class"} 3
ringcast_drops_total{shard="1",reason="stun_malformed"} 2
ringcast_sessions{shard="0"} 2
process_start_time_seconds 1.7e9 1700000000000
weird{path="a\"b}c",x="1"} NaN
"#;

    #[test]
    fn parses_labels_values_and_sums() {
        let m = Metrics::parse(TEXT).expect("valid exposition parses");
        assert_eq!(m.sum("ringcast_datagrams_in_total", &[]), 150.0);
        assert_eq!(m.sum("ringcast_drops_total", &[("shard", "1")]), 5.0);
        assert_eq!(
            m.per_shard("ringcast_datagrams_in_total").get(&1),
            Some(&30.0)
        );
        let reasons = m.by_label("ringcast_drops_total", "reason");
        assert_eq!(reasons.get("unknown_class"), Some(&10.0));
        assert_eq!(reasons.get("stun_malformed"), Some(&2.0));
        assert_eq!(m.sum("process_start_time_seconds", &[]), 1.7e9);
        let weird = m.select("weird", &[]).next().expect("escaped label parses");
        assert_eq!(weird.labels.get("path").map(String::as_str), Some("a\"b}c"));
        assert!(weird.value.is_nan());
    }

    #[test]
    fn rejects_garbage_lines() {
        assert!(Metrics::parse("ringcast_x{shard=\"0\" 1").is_err());
        assert!(Metrics::parse("ringcast_x{shard=0} 1").is_err());
        assert!(Metrics::parse("ringcast_x notanumber").is_err());
    }

    #[test]
    fn delta_by_label_subtracts_missing_as_zero() {
        let before = Metrics::parse("d{reason=\"a\"} 1").expect("parses");
        let after = Metrics::parse("d{reason=\"a\"} 4\nd{reason=\"b\"} 2").expect("parses");
        let d = after.delta_by_label(&before, "d", "reason");
        assert_eq!(d.get("a"), Some(&3.0));
        assert_eq!(d.get("b"), Some(&2.0));
    }
}
