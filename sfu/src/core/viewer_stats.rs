//! The once-a-second report of a viewer session's allocation ([`Event::ViewerStats`]): per
//! media section the layer forwarded and the one asked for, the rate budgeted and the rate
//! sent, and loss and jitter from the viewer's receiver reports (RFC 3550 §6.4.1).

use std::time::{Duration, Instant};

use crate::control::{Event, TrackAllocation, ViewerStats};
use crate::route::layer_selector::HIGHEST;
use crate::{Bitrate, MediaKind};

use super::ShardCore;

/// How often a viewer's allocation is reported to signaling.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

impl ShardCore {
    /// Measures what went to viewer session `idx` since its last report and reports it.
    pub(super) fn report_viewer(&mut self, now: Instant, idx: usize) {
        let s = &mut self.sessions[idx];
        let elapsed = now.saturating_duration_since(s.alloc.last_stats);
        s.alloc.next_stats = now + STATS_INTERVAL;
        s.alloc.last_stats = now;
        let micros = elapsed.as_micros().max(1) as u64;
        for &sidx in &s.subs {
            if let Some(sub) = self.subs.get_mut(sidx) {
                let a = &mut sub.alloc;
                let bytes = a.sent_bytes - a.sent_mark;
                a.sent_mark = a.sent_bytes;
                a.sent = Bitrate(bytes.saturating_mul(8_000_000) / micros);
            }
        }
        let stats = self.viewer_stats(idx);
        let id = self.sessions[idx].id;
        self.events.push_back(Event::ViewerStats {
            id,
            shard: self.shard,
            stats,
        });
    }

    /// The report of viewer session `idx`.
    fn viewer_stats(&self, idx: usize) -> ViewerStats {
        let s = &self.sessions[idx];
        let mut tracks = Vec::with_capacity(s.subs.len());
        let mut rtt = s.viewer_bwe.as_deref().map(|v| v.bwe.stats().rtt);
        for &sidx in &s.subs {
            let Some(sub) = self.subs.get(sidx) else {
                continue;
            };
            rtt = rtt.or(sub.send.rtt());
            let remote = sub.send.remote();
            let source = sub.source.and_then(|t| self.tracks.get(t));
            let bound = source.or_else(|| {
                sub.layers
                    .iter()
                    .flatten()
                    .find_map(|&t| self.tracks.get(t))
            });
            let clock_rate = bound.map_or(90_000, |t| t.clock_rate).max(1);
            let video = sub.kind == MediaKind::Video;
            let forwarding = video && source.is_some() && !sub.alloc.paused;
            let spatial = if !forwarding {
                None
            } else if sub.group.is_some() {
                source.map(|t| t.layer.rank)
            } else {
                Some(sub.selector.current_spatial()).filter(|&l| l != HIGHEST)
            };
            let temporal =
                Some(sub.selector.current_temporal()).filter(|&l| forwarding && l != HIGHEST);
            tracks.push(TrackAllocation {
                mid: sub.mid.clone(),
                kind: sub.kind,
                content: bound.map(|t| t.content).unwrap_or_default(),
                spatial,
                temporal,
                target_spatial: sub.alloc.choice.spatial(),
                target_temporal: sub.alloc.choice.temporal(),
                paused: sub.alloc.paused,
                allocated: sub.alloc.allocated,
                sent: sub.alloc.sent,
                loss_permille: remote.map_or(0, |r| {
                    ((u32::from(r.fraction_lost) * 1000 + 128) / 256) as u16
                }),
                jitter_ms: remote.map_or(0, |r| {
                    (u64::from(r.jitter) * 1000 / u64::from(clock_rate)) as u32
                }),
            });
        }
        ViewerStats {
            estimate: s.viewer_bwe.as_deref().map(|v| v.bwe.target()),
            rtt,
            allocated: s.alloc.totals.allocated,
            desired: s.alloc.totals.desired,
            cap: s.alloc.cap,
            degraded: s.alloc.degraded(),
            tracks,
        }
    }
}
