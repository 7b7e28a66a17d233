//! What viewers experienced, per capacity class (`--subscriber-classes`) and over all
//! subscribers: received bit rate (mean and 10th percentile over viewers), share of time on each
//! simulcast layer, switches, freezes, video loss and the downlink's queue drops. Built at the
//! end of a run from one [`ViewerSample`] per subscriber.

use serde::Serialize;

use crate::client::VideoExperience;
use crate::recv::{ContinuityStats, MAX_LAYERS};
use crate::relay::DownlinkStats;
use crate::stats::server_viewer::ViewerEstimate;

/// One subscriber at the end of the run, over the measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ViewerSample {
    /// Its class (`None` without `--subscriber-classes`).
    pub class: Option<usize>,
    /// It received media.
    pub receiving: bool,
    /// UDP payload bytes that reached it (after its downlink).
    pub bytes: u64,
    /// Seconds of the window it was connected for.
    pub seconds: f64,
    pub video: Option<VideoExperience>,
    pub video_continuity: Option<ContinuityStats>,
    /// Its downlink, when its class is rate-limited.
    pub downlink: Option<DownlinkStats>,
}

impl ViewerSample {
    /// Received bit rate over the time it was connected in the window.
    pub fn bitrate_bps(&self) -> f64 {
        if self.seconds <= 0.0 {
            0.0
        } else {
            self.bytes as f64 * 8.0 / self.seconds
        }
    }
}

/// Received bit rate over the viewers of a group, bits/s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BitrateSpread {
    pub mean: f64,
    /// 10th percentile (nearest rank): nine in ten viewers got at least this.
    pub p10: f64,
    pub min: f64,
    pub max: f64,
}

/// Time on each simulcast layer, summed over a group's viewers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LayerReport {
    /// Share of video time on each layer, by spatial rank (q, h, f).
    pub time_share: Vec<f64>,
    /// Share of the time without video (gaps over a second), of all time measured.
    pub idle_share: f64,
    /// Packets received per layer.
    pub packets: Vec<u64>,
    /// Viewers on each layer at the end.
    pub at_end: Vec<u64>,
}

/// The downlinks of a rate-limited class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DownlinkReport {
    pub datagrams: u64,
    /// Dropped at the queue.
    pub drops: u64,
    pub drop_ratio: f64,
    /// Delivered after waiting in the queue.
    pub delayed: u64,
}

/// What one group of viewers experienced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassReport {
    /// The class as written (`600k`), or `all`.
    pub class: String,
    /// The downlink rate; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Subscribers of the group that joined a worker.
    pub viewers: u64,
    /// Of those, the ones that received media.
    pub receiving: u64,
    pub bitrate_bps: BitrateSpread,
    pub layers: LayerReport,
    pub switches: u64,
    pub frames_rendered: u64,
    /// Frames that never became decodable (incomplete, or waiting for a keyframe).
    pub frames_dropped: u64,
    /// Freezes (WebRTC stats `freezeCount`) and their total length (`totalFreezesDuration`).
    pub freezes: u64,
    pub freeze_s: f64,
    pub viewers_with_freezes: u64,
    /// Receiving viewers that rendered no frame in the window (a picture that never started
    /// or stopped before the window is not a freeze by the WebRTC definition).
    pub viewers_without_frames: u64,
    /// Longest time between two rendered frames of any viewer.
    pub longest_gap_ms: f64,
    /// Video packets never received (after retransmissions), of those expected.
    pub video_lost: u64,
    pub video_expected: u64,
    pub video_loss_ratio: f64,
    /// The class's downlinks (rate-limited classes only).
    pub downlink: Option<DownlinkReport>,
    /// The server's send-side estimate toward the class's viewers at the end of the window,
    /// where the server reports it (Ringcast: `GET {resource}/stats`).
    pub server_estimate_bps: Option<BitrateSpread>,
    /// Transport-cc feedback packets the server received from the class's viewers.
    pub server_feedback_received: Option<u64>,
}

impl ClassReport {
    /// Aggregates `samples` (already the group's) under `name`.
    pub fn build(name: &str, rate_bps: Option<u64>, samples: &[ViewerSample]) -> Self {
        let mut r = ClassReport {
            class: name.to_string(),
            rate_bps,
            viewers: samples.len() as u64,
            receiving: samples.iter().filter(|s| s.receiving).count() as u64,
            ..ClassReport::default()
        };
        let mut rates: Vec<f64> = samples
            .iter()
            .filter(|s| s.receiving)
            .map(ViewerSample::bitrate_bps)
            .collect();
        r.bitrate_bps = spread(&mut rates).unwrap_or_default();
        let mut time = [0u64; MAX_LAYERS];
        let mut packets = [0u64; MAX_LAYERS];
        let mut at_end = [0u64; MAX_LAYERS];
        let mut idle = 0u64;
        let mut frozen_us = 0u64;
        let mut longest = 0u64;
        let mut downlink: Option<DownlinkStats> = None;
        let mut continuity = ContinuityStats::default();
        for s in samples {
            if let Some(v) = &s.video {
                for i in 0..MAX_LAYERS {
                    time[i] += v.layers.time_us[i];
                    packets[i] += v.layers.packets[i];
                }
                idle += v.layers.idle_us;
                if let Some(cur) = v.layers.current {
                    at_end[usize::from(cur).min(MAX_LAYERS - 1)] += 1;
                }
                r.switches += v.layers.switches;
                r.viewers_without_frames += u64::from(s.receiving && v.frames.rendered == 0);
                r.frames_rendered += v.frames.rendered;
                r.frames_dropped += v.frames.dropped;
                r.freezes += v.freezes.freezes;
                r.viewers_with_freezes += u64::from(v.freezes.freezes > 0);
                frozen_us += v.freezes.frozen_us;
                longest = longest.max(v.freezes.longest_gap_us);
            }
            if let Some(c) = &s.video_continuity {
                continuity.add(c);
            }
            if let Some(d) = &s.downlink {
                downlink.get_or_insert_with(DownlinkStats::default).add(d);
            }
        }
        let layer_time: u64 = time.iter().sum();
        r.layers = LayerReport {
            time_share: time
                .iter()
                .map(|&t| ratio(t as f64, layer_time as f64))
                .collect(),
            idle_share: ratio(idle as f64, (layer_time + idle) as f64),
            packets: packets.to_vec(),
            at_end: at_end.to_vec(),
        };
        r.freeze_s = frozen_us as f64 / 1e6;
        r.longest_gap_ms = longest as f64 / 1e3;
        r.video_lost = continuity.lost();
        r.video_expected = continuity.expected;
        r.video_loss_ratio = ratio(r.video_lost as f64, r.video_expected as f64);
        r.downlink = downlink.map(|d| DownlinkReport {
            datagrams: d.datagrams,
            drops: d.drops,
            drop_ratio: ratio(d.drops as f64, d.datagrams as f64),
            delayed: d.delayed,
        });
        r
    }

    /// Adds the server's estimates toward the group's viewers (nothing when there are none).
    pub fn set_server_estimates(&mut self, estimates: &[ViewerEstimate]) {
        let mut v: Vec<f64> = estimates.iter().map(|e| e.target_bps as f64).collect();
        self.server_estimate_bps = spread(&mut v);
        self.server_feedback_received =
            (!estimates.is_empty()).then(|| estimates.iter().map(|e| e.feedback_received).sum());
    }

    /// One line of the summary table.
    pub fn summary_line(&self) -> String {
        let shares = self
            .layers
            .time_share
            .iter()
            .map(|s| format!("{:.0}", s * 100.0))
            .collect::<Vec<_>>()
            .join("/");
        let mut line = format!(
            "{}/{} receiving, {:.2} Mb/s (p10 {:.2}) | layers q/h/f {shares} % | {} switches | {} freezes ({:.1} s) | video loss {:.2} %",
            self.receiving,
            self.viewers,
            self.bitrate_bps.mean / 1e6,
            self.bitrate_bps.p10 / 1e6,
            self.switches,
            self.freezes,
            self.freeze_s,
            self.video_loss_ratio * 100.0
        );
        if self.viewers_without_frames > 0 {
            line.push_str(&format!(
                " | {} without a rendered frame",
                self.viewers_without_frames
            ));
        }
        if let Some(d) = &self.downlink {
            line.push_str(&format!(" | queue drops {:.2} %", d.drop_ratio * 100.0));
        }
        if let Some(e) = &self.server_estimate_bps {
            line.push_str(&format!(
                " | server estimate {:.2} Mb/s (p10 {:.2})",
                e.mean / 1e6,
                e.p10 / 1e6
            ));
        }
        line
    }
}

/// Mean, 10th percentile (nearest rank), min and max; `None` for no values.
fn spread(v: &mut [f64]) -> Option<BitrateSpread> {
    v.sort_by(f64::total_cmp);
    let (&min, &max) = (v.first()?, v.last()?);
    let p10 = (v.len() as f64 * 0.1).ceil().max(1.0) as usize - 1;
    Some(BitrateSpread {
        mean: v.iter().sum::<f64>() / v.len() as f64,
        p10: v[p10],
        min,
        max,
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use crate::recv::{FrameStats, FreezeStats, LayerStats};

    fn viewer(kbps: u64, layer_ms: [u64; 3], freezes: u64, current: u8) -> ViewerSample {
        ViewerSample {
            class: Some(0),
            receiving: true,
            bytes: kbps * 1000 / 8 * 10,
            seconds: 10.0,
            video: Some(VideoExperience {
                layers: LayerStats {
                    time_us: layer_ms.map(|m| m * 1000),
                    packets: [1, 2, 3],
                    switches: 1,
                    current: Some(current),
                    ..LayerStats::default()
                },
                frames: FrameStats {
                    rendered: 300,
                    keyframes: 4,
                    dropped: 2,
                },
                freezes: FreezeStats {
                    frames: 300,
                    freezes,
                    frozen_us: freezes * 400_000,
                    longest_gap_us: 400_000,
                },
            }),
            video_continuity: Some(ContinuityStats {
                received: 990,
                expected: 1000,
                ..ContinuityStats::default()
            }),
            downlink: Some(DownlinkStats {
                datagrams: 1000,
                drops: 10,
                ..DownlinkStats::default()
            }),
        }
    }

    #[test]
    fn a_class_sums_its_viewers() {
        let mut samples: Vec<ViewerSample> = (1..=10)
            .map(|k| viewer(100 * k, [9000, 1000, 0], u64::from(k == 3), 0))
            .collect();
        samples[9].video.as_mut().unwrap().layers.current = Some(1);
        let r = ClassReport::build("600k", Some(600_000), &samples);
        assert_eq!((r.viewers, r.receiving), (10, 10));
        assert!((r.bitrate_bps.mean - 550_000.0).abs() < 1.0);
        assert!((r.bitrate_bps.p10 - 100_000.0).abs() < 1.0);
        assert!((r.bitrate_bps.max - 1_000_000.0).abs() < 1.0);
        assert_eq!(r.layers.time_share, vec![0.9, 0.1, 0.0]);
        assert_eq!(r.layers.at_end, vec![9, 1, 0]);
        assert_eq!(r.layers.packets, vec![10, 20, 30]);
        assert_eq!((r.switches, r.freezes, r.viewers_with_freezes), (10, 1, 1));
        assert!((r.freeze_s - 0.4).abs() < 1e-9);
        assert_eq!((r.video_lost, r.video_expected), (100, 10_000));
        let d = r.downlink.unwrap();
        assert_eq!((d.datagrams, d.drops), (10_000, 100));
        assert!((d.drop_ratio - 0.01).abs() < 1e-12);
        let line = r.summary_line();
        assert!(line.contains("q/h/f 90/10/0 %"), "{line}");
        assert!(line.contains("1 freezes"), "{line}");
        let mut r = r;
        r.set_server_estimates(&[
            ViewerEstimate {
                target_bps: 500_000,
                feedback_received: 10,
            },
            ViewerEstimate {
                target_bps: 700_000,
                feedback_received: 20,
            },
        ]);
        let e = r.server_estimate_bps.unwrap();
        assert_eq!((e.mean, e.p10, e.max), (600_000.0, 500_000.0, 700_000.0));
        assert_eq!(r.server_feedback_received, Some(30));
        assert!(r.summary_line().contains("server estimate 0.60 Mb/s"));
    }

    #[test]
    fn an_empty_or_unlimited_class_has_zeros_and_no_downlink() {
        let r = ClassReport::build("unlimited", None, &[]);
        assert_eq!(r.viewers, 0);
        assert_eq!(r.bitrate_bps, BitrateSpread::default());
        assert_eq!(r.layers.time_share, vec![0.0; 3]);
        assert!(r.downlink.is_none());
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["rate_bps"], serde_json::Value::Null);
        assert_eq!(v["class"], "unlimited");
    }
}
