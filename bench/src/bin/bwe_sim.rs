//! Runs the send-side bandwidth estimator's simulation scenarios (`sfu::bwe::simulation`: the
//! capacity steps, random-loss and delay-jitter cases after RFC 8867) and writes one SVG chart
//! per scenario — target, delay-based estimate, acknowledged rate and link capacity against
//! time, with the queueing delay below — plus a summary on stdout.
//!
//! Usage: `cargo run -p bench --features sim --bin bwe_sim -- [out-dir]` (default `docs/img`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use sfu::bwe::simulation::{self, SimResult};

const W: f64 = 900.0;
const H: f64 = 520.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
/// Height of the rate panel and of the delay panel.
const RATE_H: f64 = 300.0;
const DELAY_H: f64 = 90.0;
const GAP: f64 = 40.0;

struct Line<'a> {
    label: &'a str,
    color: &'a str,
    dash: bool,
    points: Vec<(f64, f64)>,
}

fn polyline(o: &mut String, pts: &[(f64, f64)], color: &str, dash: bool) {
    let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let dash = if dash {
        r#" stroke-dasharray="6,3""#
    } else {
        ""
    };
    let _ = writeln!(
        o,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.6"{dash}/>"#,
        path.join(" ")
    );
}

fn nice_step(max: f64) -> f64 {
    let raw = max.max(1e-9) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// Two panels: rates (kbit/s) and queueing delay (ms), sharing the time axis.
fn chart(title: &str, r: &SimResult) -> String {
    let t_max = r.samples.last().map_or(1.0, |s| s.t).ceil();
    let kbps = |b: sfu::Bitrate| b.0 as f64 / 1000.0;
    // Drawn in this order: the target last, on top.
    let lines = [
        Line {
            label: "acknowledged rate",
            color: "#2ca02c",
            dash: false,
            points: r
                .samples
                .iter()
                .filter_map(|s| Some((s.t, kbps(s.stats.acked?))))
                .collect(),
        },
        Line {
            label: "delay-based estimate",
            color: "#1f77b4",
            dash: true,
            points: r
                .samples
                .iter()
                .map(|s| (s.t, kbps(s.stats.delay_based)))
                .collect(),
        },
        Line {
            label: "target",
            color: "#d62728",
            dash: false,
            points: r
                .samples
                .iter()
                .map(|s| (s.t, kbps(s.stats.target)))
                .collect(),
        },
        Line {
            label: "link capacity",
            color: "#555",
            dash: true,
            points: r.samples.iter().map(|s| (s.t, kbps(s.capacity))).collect(),
        },
    ];
    let y_max_raw = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        * 1.05;
    let y_step = nice_step(y_max_raw);
    let y_max = (y_max_raw / y_step).ceil() * y_step;
    let d_max_raw = r
        .samples
        .iter()
        .map(|s| s.queue_delay_ms)
        .fold(0.0, f64::max)
        * 1.05;
    let d_step = nice_step(d_max_raw.max(10.0));
    let d_max = (d_max_raw.max(10.0) / d_step).ceil() * d_step;
    let pw = W - LEFT - RIGHT;
    let px = |t: f64| LEFT + t / t_max * pw;
    let py = |v: f64| TOP + RATE_H - v / y_max * RATE_H;
    let d_top = TOP + RATE_H + GAP;
    let pd = |v: f64| d_top + DELAY_H - v / d_max * DELAY_H;

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{title}</text>"#,
        LEFT + pw / 2.0
    );
    // Grids and axis labels.
    let mut v = 0.0;
    while v <= y_max + y_step / 2.0 {
        let y = py(v);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e6e6e6"/><text x="{}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0
        );
        v += y_step;
    }
    let mut v = 0.0;
    while v <= d_max + d_step / 2.0 {
        let y = pd(v);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e6e6e6"/><text x="{}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0
        );
        v += d_step;
    }
    let t_step = nice_step(t_max);
    let mut t = 0.0;
    while t <= t_max + t_step / 2.0 {
        let x = px(t);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#f2f2f2"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{t:.0}</text>"##,
            d_top + DELAY_H,
            d_top + DELAY_H + 16.0
        );
        t += t_step;
    }
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{RATE_H}" fill="none" stroke="#888"/><rect x="{LEFT}" y="{d_top}" width="{pw}" height="{DELAY_H}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">kbit/s</text><text transform="translate(18,{}) rotate(-90)" text-anchor="middle">queue ms</text><text x="{}" y="{}" text-anchor="middle">time (s)</text>"#,
        TOP + RATE_H / 2.0,
        d_top + DELAY_H / 2.0,
        LEFT + pw / 2.0,
        H - 8.0
    );
    for (i, l) in lines.iter().enumerate() {
        let pts: Vec<_> = l.points.iter().map(|&(t, v)| (px(t), py(v))).collect();
        polyline(&mut o, &pts, l.color, l.dash);
        let lx = LEFT + 10.0 + 170.0 * i as f64;
        let _ = writeln!(
            o,
            r#"<rect x="{lx}" y="{}" width="14" height="3" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            TOP + 10.0,
            l.color,
            lx + 18.0,
            TOP + 14.0,
            l.label
        );
    }
    let delay: Vec<_> = r
        .samples
        .iter()
        .map(|s| (px(s.t), pd(s.queue_delay_ms)))
        .collect();
    polyline(&mut o, &delay, "#9467bd", false);
    o.push_str("</svg>\n");
    o
}

fn summarize(name: &str, r: &SimResult, windows: &[(f64, f64, f64)]) {
    println!("{name}:");
    for &(from, to, cap) in windows {
        let (lo, hi) = r.target_range(from, to);
        println!(
            "  [{from:5.0}, {to:5.0}) s  capacity {:5.0} kbit/s  target mean {:.3} min {:.3} max {:.3} × capacity  \
             sent {:.3} ×  link loss {:.2} %  worst 100 ms queueing {:.0} ms",
            cap / 1000.0,
            r.mean_target(from, to) / cap,
            lo as f64 / cap,
            hi as f64 / cap,
            r.mean_send_rate(from, to) / cap,
            100.0 * r.loss(from, to),
            r.max_queue_delay_ms(from, to),
        );
    }
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs/img".into()));
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("cannot create {}: {e}", out.display());
        std::process::exit(1);
    }
    let stage = 30.0;
    let steps = simulation::run(&simulation::capacity_steps(Duration::from_secs_f64(stage)));
    let caps = [1_000_000.0, 2_500_000.0, 600_000.0, 1_000_000.0];
    let settled: Vec<_> = caps
        .iter()
        .enumerate()
        .map(|(i, &c)| (i as f64 * stage + 20.0, (i + 1) as f64 * stage, c))
        .collect();
    summarize("capacity steps, settled windows", &steps, &settled);
    let drop_at = 2.0 * stage;
    if let Some(s) = steps
        .window(drop_at, drop_at + stage)
        .find(|s| (s.stats.target.0 as f64) < caps[2])
    {
        println!(
            "  target below 600 kbit/s {:.1} s after the drop",
            s.t - drop_at
        );
    }
    if let Some(s) = steps
        .window(stage, 2.0 * stage)
        .find(|s| s.stats.target.0 as f64 >= 0.85 * caps[1])
    {
        println!(
            "  target at 85 % of 2.5 Mbit/s {:.1} s after the raise",
            s.t - stage
        );
    }
    let loss = simulation::run(&simulation::random_loss(0.05, Duration::from_secs(60)));
    summarize(
        "5 % random loss, 1.5 Mbit/s",
        &loss,
        &[(10.0, 60.0, 1_500_000.0)],
    );
    let jitter = simulation::run(&simulation::delay_jitter(
        Duration::from_millis(30),
        Duration::from_secs(60),
    ));
    summarize(
        "100 ms delay + 0-30 ms jitter, 1.5 Mbit/s",
        &jitter,
        &[(10.0, 60.0, 1_500_000.0)],
    );
    for (file, title, r) in [
        (
            "bwe-capacity-steps.svg",
            "Capacity steps 1 → 2.5 → 0.6 → 1 Mbit/s (50 ms one-way, 300 ms drop-tail queue)",
            &steps,
        ),
        (
            "bwe-random-loss.svg",
            "5 % random loss on 1.5 Mbit/s (50 ms one-way)",
            &loss,
        ),
        (
            "bwe-delay-jitter.svg",
            "100 ms one-way delay + 0–30 ms jitter on 1.5 Mbit/s",
            &jitter,
        ),
    ] {
        let path = out.join(file);
        if let Err(e) = std::fs::write(&path, chart(title, r)) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}
