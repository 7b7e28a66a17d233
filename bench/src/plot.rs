//! `bench plot`: SVG line charts of a macro benchmark report (`bench macro --json`): server CPU
//! per egress packet, loss, egress packets/s and latency against subscriber streams, one line per
//! server. Plain SVG, no dependencies, so the charts can live in docs/.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A line chart with linear axes starting at zero.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Draw a dashed horizontal line here (a target or a limit), with its label.
    pub guide: Option<(f64, String)>,
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// A "nice" axis maximum and tick step for values up to `max`.
fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn fmt_tick(v: f64) -> String {
    if v >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(self.guide.iter().map(|g| g.0));
        let (xmax, xstep) = nice_axis(xs.fold(0.0, f64::max));
        let (ymax, ystep) = nice_axis(ys.fold(0.0, f64::max) * 1.05);
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let px = |x: f64| LEFT + x / xmax * pw;
        let py = |y: f64| TOP + ph - y / ymax * ph;
        let mut o = String::new();
        let _ = writeln!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            o,
            r#"<text x="{}" y="28" font-size="16" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            esc(&self.title)
        );
        let mut t = 0.0;
        while t <= ymax + ystep / 2.0 {
            let y = py(t);
            let _ = writeln!(
                o,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
                LEFT + pw
            );
            let _ = writeln!(
                o,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
            t += ystep;
        }
        let mut t = 0.0;
        while t <= xmax + xstep / 2.0 {
            let x = px(t);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#f0f0f0"/>"##,
                TOP + ph
            );
            let _ = writeln!(
                o,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + ph + 18.0,
                fmt_tick(t)
            );
            t += xstep;
        }
        let _ = writeln!(
            o,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 18.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            o,
            r#"<text transform="translate(20,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
        if let Some((g, label)) = &self.guide {
            let y = py(*g);
            let _ = writeln!(
                o,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c00" stroke-dasharray="6,4"/>"##,
                LEFT + pw
            );
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{:.1}" fill="#c00">{}</text>"##,
                LEFT + pw + 6.0,
                y + 4.0,
                esc(label)
            );
        }
        for (i, s) in self.series.iter().enumerate() {
            let mut pts = s.points.clone();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let path: Vec<String> = pts
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            let _ = writeln!(
                o,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                path.join(" "),
                s.color
            );
            for (x, y) in &pts {
                let _ = writeln!(
                    o,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#,
                    px(*x),
                    py(*y),
                    s.color
                );
            }
            let ly = TOP + 20.0 + 20.0 * i as f64;
            let _ = writeln!(
                o,
                r#"<rect x="{}" y="{}" width="14" height="4" fill="{}"/>"#,
                LEFT + pw + 12.0,
                ly - 6.0,
                s.color
            );
            let _ = writeln!(
                o,
                r#"<text x="{}" y="{ly}">{}</text>"#,
                LEFT + pw + 32.0,
                esc(&s.label)
            );
        }
        o.push_str("</svg>\n");
        o
    }
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// Builds one series per server from a macro report, with `y` taken from each run.
fn series(report: &Value, y: impl Fn(&Value) -> Option<f64>) -> Vec<Series> {
    let servers = report["servers"].as_array().cloned().unwrap_or_default();
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| Series {
            label: s["server"].as_str().unwrap_or("?").to_string(),
            color: COLORS[i % COLORS.len()],
            points: s["points"]
                .as_array()
                .map(|pts| {
                    pts.iter()
                        .filter_map(|p| Some((p["subscribers"].as_f64()?, y(p)?)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The charts of a macro report.
pub fn charts(report: &Value) -> Vec<(&'static str, Chart)> {
    let x = "subscriber streams".to_string();
    vec![
        (
            "cpu_per_packet.svg",
            Chart {
                title: "Server CPU per egress packet".into(),
                x_label: x.clone(),
                y_label: "µs of server CPU per packet".into(),
                series: series(report, |p| p["cpu_s_per_mpkt"].as_f64()),
                guide: Some((2.5, "target 2.5 µs".into())),
            },
        ),
        (
            "loss.svg",
            Chart {
                title: "Loss seen by subscribers".into(),
                x_label: x.clone(),
                y_label: "loss %".into(),
                series: series(report, |p| p["loss_ratio"].as_f64().map(|l| l * 100.0)),
                guide: Some((0.5, "limit 0.5 %".into())),
            },
        ),
        (
            "egress_pps.svg",
            Chart {
                title: "Egress packets per second".into(),
                x_label: x.clone(),
                y_label: "packets/s".into(),
                series: series(report, |p| p["egress_pps"].as_f64()),
                guide: None,
            },
        ),
        (
            "latency_p99.svg",
            Chart {
                title: "End-to-end latency p99 (publisher → server → subscriber)".into(),
                x_label: x,
                y_label: "ms".into(),
                series: series(report, |p| p["latency_p99_us"].as_f64().map(|v| v / 1000.0)),
                guide: Some((200.0, "limit 200 ms".into())),
            },
        ),
    ]
}

/// `bench plot --json FILE --out DIR`.
pub fn main(args: &[String]) -> i32 {
    let mut json = None;
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = it.next().cloned(),
            "--out" => out = it.next().cloned(),
            "-h" | "--help" => {
                println!(
                    "usage: bench plot --json REPORT.json --out DIR\n\nWrites SVG charts of a `bench macro --json` report: cpu_per_packet.svg, loss.svg, egress_pps.svg, latency_p99.svg."
                );
                return 0;
            }
            other => {
                eprintln!("bench plot: unknown argument {other}");
                return 2;
            }
        }
    }
    let (Some(json), Some(out)) = (json, out) else {
        eprintln!("bench plot: --json and --out are required");
        return 2;
    };
    let report: Value = match std::fs::read_to_string(&json)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench plot: cannot read {json}: {e}");
            return 1;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("bench plot: cannot create {out}: {e}");
        return 1;
    }
    for (name, chart) in charts(&report) {
        let path = Path::new(&out).join(name);
        if let Err(e) = std::fs::write(&path, chart.svg()) {
            eprintln!("bench plot: cannot write {}: {e}", path.display());
            return 1;
        }
        println!("{}", path.display());
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes_cover_the_data() {
        assert_eq!(nice_axis(9.3), (10.0, 2.0));
        assert_eq!(nice_axis(1600.0), (2000.0, 500.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
    }

    #[test]
    fn charts_have_one_line_per_server_and_every_point() {
        let report = serde_json::json!({
            "servers": [
                {"server": "ringcast", "points": [
                    {"subscribers": 100, "cpu_s_per_mpkt": 4.0, "loss_ratio": 0.0, "egress_pps": 12000.0, "latency_p99_us": 5000.0},
                    {"subscribers": 200, "cpu_s_per_mpkt": 3.5, "loss_ratio": 0.001, "egress_pps": 24000.0, "latency_p99_us": 9000.0}]},
                {"server": "janus", "points": [
                    {"subscribers": 100, "cpu_s_per_mpkt": 30.0, "loss_ratio": 0.2, "egress_pps": 11000.0, "latency_p99_us": 90000.0}]}
            ]
        });
        let charts = charts(&report);
        assert_eq!(charts.len(), 4);
        let svg = charts[0].1.svg();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("ringcast") && svg.contains("janus") && svg.contains("target 2.5"));
    }
}
