//! Per-viewer bandwidth allocation in the shard: the viewer's quality cap, and the statistics
//! of what each of its media sections receives, reported once a second.

use std::time::{Duration, Instant};

use crate::control::{Event, QualityCap, TrackAllocation, ViewerStats};
use crate::{Bitrate, MediaKind, SessionId};

use super::ShardCore;

/// How often a viewer's allocation is reported to signaling.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// The allocation state of one session (only sessions with media sections to view use it).
#[derive(Debug, Clone)]
pub struct ViewerAllocation {
    /// The viewer's quality preset.
    pub cap: QualityCap,
    /// When the next [`Event::ViewerStats`] is due.
    pub next_stats: Instant,
}

impl ViewerAllocation {
    pub fn new(now: Instant) -> Self {
        ViewerAllocation {
            cap: QualityCap::default(),
            next_stats: now + STATS_INTERVAL,
        }
    }
}

impl ShardCore {
    /// Stores a viewer's quality preset.
    pub(super) fn set_quality(&mut self, now: Instant, id: SessionId, cap: QualityCap) {
        let _ = now;
        if let Some(&idx) = self.by_id.get(&id) {
            self.sessions[idx].alloc.cap = cap;
        }
    }

    /// Reports the viewer sessions whose statistics are due; runs on the core's tick.
    pub(super) fn allocation_tick(&mut self, now: Instant) {
        for idx in 0..self.sessions.capacity() {
            let Some(s) = self.sessions.get_mut(idx) else {
                continue;
            };
            if s.subs.is_empty() || now < s.alloc.next_stats {
                continue;
            }
            s.alloc.next_stats = now + STATS_INTERVAL;
            let stats = self.viewer_stats(idx);
            let id = self.sessions[idx].id;
            self.events.push_back(Event::ViewerStats {
                id,
                shard: self.shard,
                stats,
            });
        }
    }

    fn viewer_stats(&self, idx: usize) -> ViewerStats {
        let s = &self.sessions[idx];
        let mut tracks = Vec::with_capacity(s.subs.len());
        for &sidx in &s.subs {
            let Some(sub) = self.subs.get(sidx) else {
                continue;
            };
            let remote = sub.send.remote();
            let content = sub
                .source
                .and_then(|t| self.tracks.get(t))
                .map(|t| t.content)
                .unwrap_or_default();
            tracks.push(TrackAllocation {
                mid: sub.mid.clone(),
                kind: sub.kind,
                content,
                spatial: None,
                temporal: None,
                target_spatial: None,
                target_temporal: None,
                paused: false,
                allocated: Bitrate::ZERO,
                sent: Bitrate::ZERO,
                loss_permille: remote.map_or(0, |r| (u16::from(r.fraction_lost) * 1000) / 256),
                jitter_ms: 0,
            });
        }
        let _ = MediaKind::Video;
        ViewerStats {
            estimate: s.viewer_bwe.as_deref().map(|v| v.bwe.target()),
            rtt: s.viewer_bwe.as_deref().map(|v| v.bwe.stats().rtt),
            allocated: Bitrate::ZERO,
            desired: Bitrate::ZERO,
            cap: s.alloc.cap,
            degraded: false,
            tracks,
        }
    }
}
