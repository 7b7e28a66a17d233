//! Per-viewer bandwidth allocation in the shard: runs the allocator (`crate::alloc`) for a
//! viewer session when its send-side estimate changes and at least every 500 ms, applies the
//! result through the viewer's layer selectors (within its explicit selection), pauses and
//! resumes video, tells the estimator what to probe toward and when to run a rate trial, and
//! reports when the viewer becomes
//! or stops being degraded ([`Event::QualityDegraded`]); `viewer_stats` reports it once a
//! second. Viewers without transport-cc get no budget: their best allowed layers, caps
//! applied.

use std::time::{Duration, Instant};

use crate::alloc::{
    Allocation, Budget, Choice, DegradationTracker, EstimatorView, MAX_SECTIONS, ProbeRequest,
    ProbeSteering, SectionInput, SectionResult, allocate,
};
use crate::control::{Event, LayerSelection, MAX_SIMULCAST_LAYERS, QualityCap};
use crate::{Bitrate, MediaKind, SessionId};

use super::ShardCore;

/// The longest a viewer's allocation goes without a new run.
const RUN_INTERVAL: Duration = Duration::from_millis(500);
/// A rise of the estimate by this share allocates again at once.
const ESTIMATE_RISE: f64 = 0.02;
/// A step down this soon after a step up means the step up failed: the hold before the next
/// one doubles.
const FAILED_UP_WINDOW: Duration = Duration::from_secs(10);
/// The longest hold the doubling reaches.
const MAX_HOLD: Duration = Duration::from_secs(30);
/// The allocation state of one session (used by sessions that view something).
#[derive(Debug, Clone)]
pub struct ViewerAllocation {
    /// The viewer's quality preset.
    pub cap: QualityCap,
    /// When the next [`Event::ViewerStats`] is due, and when the last one went.
    pub next_stats: Instant,
    pub last_stats: Instant,
    /// When the allocator must run again at the latest; `rerun`: at the next tick.
    next_run: Instant,
    pub rerun: bool,
    /// The estimate the last run allocated.
    budget: Option<Bitrate>,
    /// The totals of the last run.
    pub totals: Allocation,
    /// What the allocation asks of the estimator.
    probing: ProbeSteering,
    degradation: DegradationTracker,
}

impl ViewerAllocation {
    pub fn new(now: Instant) -> Self {
        ViewerAllocation {
            cap: QualityCap::default(),
            next_stats: now + super::viewer_stats::STATS_INTERVAL,
            last_stats: now,
            next_run: now,
            rerun: true,
            budget: None,
            totals: Allocation::default(),
            probing: ProbeSteering::default(),
            degradation: DegradationTracker::default(),
        }
    }

    /// Whether the viewer currently counts as degraded.
    pub fn degraded(&self) -> bool {
        self.degradation.is_degraded()
    }
}

/// The allocation state of one viewer media section.
#[derive(Debug, Clone, Default)]
pub struct SectionAlloc {
    /// The viewer's own selection (`Command::SetLayers`): the allocator stays within it.
    pub explicit: LayerSelection,
    /// The selection last handed to the section's layer selector.
    applied: Option<LayerSelection>,
    /// The allocator's choice, and what the section would get with no bandwidth limit.
    pub choice: Choice,
    pub best: Choice,
    /// When the section last went down (or paused), and up (or resumed).
    down_at: Option<Instant>,
    up_at: Option<Instant>,
    /// When a step up last failed (a step down soon after it).
    failed_at: Option<Instant>,
    /// Its hold after going down (doubled after each failed step up); `None`: the default.
    hold: Option<Duration>,
    /// The rate budgeted for the section.
    pub allocated: Bitrate,
    /// Video paused: the fan-out skips the section.
    pub paused: bool,
    /// The next source packet continues the viewer's timestamps by the time that passed (a
    /// resume after a pause), not by one frame.
    pub rebase_by_arrival: bool,
    /// Bytes sent (SRTP, as queued), and the rate over the last report interval.
    pub sent_bytes: u64,
    pub sent_mark: u64,
    pub sent: Bitrate,
    /// The simulcast encodings (bits by spatial rank) this section needs kept on (dynacast).
    pub demand: u8,
}

/// Whether `new` is below `old` (a step down or a pause).
fn is_lower(new: Choice, old: Choice) -> bool {
    let key = |c: Choice| match c {
        Choice::Layer { spatial, temporal } => Some((spatial, temporal.unwrap_or(u8::MAX))),
        _ => None,
    };
    match (old, new) {
        (Choice::Layer { .. }, Choice::Paused) => true,
        (Choice::Layer { .. }, Choice::Layer { .. }) => key(new) < key(old),
        _ => false,
    }
}

/// Whether `new` is above `old` (a step up or a resume).
fn is_higher(new: Choice, old: Choice) -> bool {
    match (old, new) {
        (Choice::Paused, Choice::Layer { .. }) => true,
        (Choice::Layer { .. }, Choice::Layer { .. }) => is_lower(old, new),
        _ => false,
    }
}

/// The highest spatial layer a quality cap's `max_height` allows, given the layers' heights
/// (lowest first, `None` where unknown): the one below the first that is taller. `None`: no
/// bound (no cap, or no known layer is taller).
fn height_cap(heights: &[Option<u16>], max_height: Option<u16>) -> Option<u8> {
    let h = max_height?;
    let over = heights.iter().position(|x| x.is_some_and(|x| x > h))?;
    Some(over.saturating_sub(1) as u8)
}

/// The selection a section's layer selector gets for the allocator's choice, within the
/// viewer's explicit one. `spatial_steps`: the allocator chose among spatial layers (simulcast
/// encodings, or an SVC encoding's measured spatial layers); otherwise the explicit spatial
/// target stays.
fn effective_selection(
    explicit: &LayerSelection,
    choice: Choice,
    spatial_steps: bool,
) -> LayerSelection {
    match choice {
        Choice::Layer { spatial, temporal } => LayerSelection {
            spatial: if spatial_steps {
                Some(spatial)
            } else {
                explicit.spatial
            },
            temporal: temporal.or(explicit.temporal),
            max_spatial: explicit.max_spatial,
            max_temporal: explicit.max_temporal,
        },
        Choice::Unset | Choice::Paused => *explicit,
    }
}

/// The encodings a simulcast section needs kept on: every one up to its best allowed layer
/// (where it probes toward; the lower ones are where it goes when bandwidth drops, which must
/// not wait for a publisher to restart an encoding), and every allowed one not measured yet.
fn demand_mask(input: &SectionInput, r: &SectionResult) -> u8 {
    let Some(top) = input.top_allowed() else {
        return 0;
    };
    if input.layer_count < 2 {
        return 0;
    }
    let chosen = r.choice.spatial().unwrap_or(0);
    let hi = r.best.spatial().unwrap_or(top).max(chosen).min(top);
    let mut mask = 0u8;
    for rank in 0..=top {
        let unmeasured = input.rates[usize::from(rank)].is_none();
        if rank <= hi || unmeasured {
            mask |= 1 << rank;
        }
    }
    mask
}

fn min_opt(a: Option<u8>, b: Option<u8>) -> Option<u8> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl ShardCore {
    /// Stores a viewer's quality preset and allocates with it.
    pub(super) fn set_quality(&mut self, now: Instant, id: SessionId, cap: QualityCap) {
        if let Some(&idx) = self.by_id.get(&id) {
            self.sessions[idx].alloc.cap = cap;
            self.run_allocation(now, idx);
        }
    }

    /// The estimate toward a viewer may have changed: allocate again if it fell, or rose by
    /// more than [`ESTIMATE_RISE`] (small rises come with nearly every feedback and cannot
    /// matter to a step up that needs 10 % headroom; the periodic run catches up with them).
    pub(super) fn on_estimate(&mut self, now: Instant, idx: usize) {
        let Some(s) = self.sessions.get(idx) else {
            return;
        };
        let target = s.viewer_bwe.as_deref().map(|v| v.bwe.target());
        let rerun = match (target, s.alloc.budget) {
            (Some(t), Some(b)) => t < b || t.0 as f64 > b.0 as f64 * (1.0 + ESTIMATE_RISE),
            (t, b) => t != b,
        };
        if rerun {
            self.run_allocation(now, idx);
        }
    }

    /// Asks for a new allocation of the viewer owning section `sidx` at the next tick.
    pub(super) fn reallocate_viewer_of(&mut self, sidx: usize) {
        if let Some(s) = self
            .subs
            .get(sidx)
            .and_then(|sub| self.sessions.get_mut(sub.session))
        {
            s.alloc.rerun = true;
        }
    }

    /// Allocations that are due and the once-a-second reports; runs on the core's tick.
    pub(super) fn allocation_tick(&mut self, now: Instant) {
        for idx in 0..self.sessions.capacity() {
            let Some(s) = self.sessions.get(idx) else {
                continue;
            };
            if s.subs.is_empty() {
                continue;
            }
            if s.alloc.rerun || now >= s.alloc.next_run {
                self.run_allocation(now, idx);
            }
            if now >= self.sessions[idx].alloc.next_stats {
                self.report_viewer(now, idx);
            }
        }
        self.dynacast_tick(now);
    }

    /// Runs the allocator for viewer session `idx` and applies its result.
    pub(super) fn run_allocation(&mut self, now: Instant, idx: usize) {
        let Some(s) = self.sessions.get(idx) else {
            return;
        };
        let n = s.subs.len().min(MAX_SECTIONS);
        let mut subs = [usize::MAX; MAX_SECTIONS];
        subs[..n].copy_from_slice(&s.subs[..n]);
        let cap = s.alloc.cap;
        let can_probe = s.subs.iter().any(|&sidx| {
            self.subs.get(sidx).is_some_and(|sub| {
                sub.kind == MediaKind::Video
                    && sub.rtx_ssrc.is_some()
                    && sub.rtx_pt.iter().any(Option::is_some)
            })
        });
        let s = &mut self.sessions[idx];
        let view = s.viewer_bwe.as_deref().map(|vb| {
            let st = vb.bwe.stats();
            EstimatorView {
                target: st.target,
                acked: st.acked,
                in_alr: st.in_alr,
                last_probe: st.last_probe,
                last_trial: st.last_trial,
                trialing: st.trialing,
                can_probe,
            }
        });
        let budget = match &view {
            Some(e) => {
                if let Some(t) = e.last_trial
                    && s.alloc.probing.is_new_trial(&t)
                {
                    tracing::debug!(shard = %self.shard, session = ?s.id, rate = t.rate.0, sent = t.sent.0, received = t.received.0, t.aborted, t.passed, "rate trial judged");
                }
                let b = s.alloc.probing.budget(now, e, cap.max_video);
                if s.alloc.probing.take_release_holds() {
                    // A strict trial showed the path carries well more than the next step.
                    for &sidx in &subs[..n] {
                        if let Some(sub) = self.subs.get_mut(sidx) {
                            sub.alloc.hold = None;
                            sub.alloc.down_at = None;
                            sub.alloc.failed_at = None;
                        }
                    }
                }
                b
            }
            None => Budget {
                video_cap: cap.max_video,
                ..Budget::default()
            },
        };
        let mut inputs = [SectionInput::audio(None); MAX_SECTIONS];
        for k in 0..n {
            inputs[k] = self.section_input(now, subs[k], &cap);
        }
        let mut out = [SectionResult::default(); MAX_SECTIONS];
        let totals = allocate(&self.cfg.allocator, &budget, &inputs[..n], &mut out[..n]);
        let (mut stepped_up, mut stepped_down) = (false, false);
        for k in 0..n {
            let (up, down) = self.apply_section(now, subs[k], &inputs[k], &out[k]);
            stepped_up |= up;
            stepped_down |= down;
        }
        let s = &mut self.sessions[idx];
        tracing::trace!(shard = %self.shard, session = ?s.id, estimate = ?budget.estimate, up_limit = ?budget.up_limit, resume_limit = ?budget.resume_limit, acked = ?view.and_then(|e| e.acked), allocated = ?totals.allocated, desired = ?totals.desired, next_up = ?totals.next_up, "allocation");
        let a = &mut s.alloc;
        a.budget = budget.estimate;
        a.totals = totals;
        a.next_run = now + RUN_INTERVAL;
        a.rerun = false;
        if let (Some(e), Some(vb)) = (&view, s.viewer_bwe.as_deref_mut()) {
            match a.probing.after(now, e, &totals, stepped_up, stepped_down) {
                ProbeRequest::None => {}
                ProbeRequest::SetDesired(d) => {
                    vb.bwe.set_desired_max(now, d);
                    self.refresh_viewer(now, idx);
                }
                ProbeRequest::Reraise { from, to } => {
                    vb.bwe.set_desired_max(now, from);
                    vb.bwe.set_desired_max(now, to);
                    self.refresh_viewer(now, idx);
                }
                ProbeRequest::Trial(rate) => self.start_rate_trial(now, idx, rate),
            }
        }
        let s = &mut self.sessions[idx];
        let below = totals.video_desired.0 > 0 && totals.video_allocated < totals.video_desired;
        if let Some(degraded) = s.alloc.degradation.update(now, below) {
            let id = s.id;
            self.events.push_back(Event::QualityDegraded {
                id,
                shard: self.shard,
                degraded,
                allocated: totals.video_allocated,
                wanted: totals.video_desired,
            });
        }
    }

    /// What the allocator needs to know about section `sidx`.
    fn section_input(&self, now: Instant, sidx: usize, cap: &QualityCap) -> SectionInput {
        let Some(sub) = self.subs.get(sidx) else {
            return SectionInput::audio(None);
        };
        let source = sub.source.and_then(|t| self.tracks.get(t));
        let mut input = match sub.kind {
            MediaKind::Audio => {
                return SectionInput::audio(source.and_then(|t| t.rates.info.rate));
            }
            MediaKind::Video => SectionInput::video(Default::default(), &[]),
        };
        let explicit = &sub.alloc.explicit;
        if sub.group.is_some() {
            let mut heights = [None; MAX_SIMULCAST_LAYERS];
            for (rank, t) in sub.layers.iter().enumerate() {
                let Some(t) = t.and_then(|t| self.tracks.get(t)) else {
                    continue;
                };
                input.rates[rank] = t.rates.info.rate;
                heights[rank] = t.rates.info.height;
                input.layer_count = input.layer_count.max(t.layer.count).max(rank as u8 + 1);
                input.content = t.content;
                if rank == 0 {
                    input.base_temporal = t.rates.info.base;
                }
            }
            input.layer_count = input.layer_count.min(MAX_SIMULCAST_LAYERS as u8);
            input.max_spatial = min_opt(explicit.spatial, explicit.max_spatial);
            input.max_spatial = min_opt(input.max_spatial, height_cap(&heights, cap.max_height));
        } else if let Some(t) = source {
            input.content = t.content;
            input.base_temporal = t.rates.info.base;
            // An SVC encoding whose spatial layers are measured: each is a step of its own.
            let svc = t.rates.info.spatial;
            let layers = svc.iter().take_while(|r| r.is_some()).count();
            if layers > 1 {
                input.rates[..layers].copy_from_slice(&svc[..layers]);
                input.layer_count = layers as u8;
                input.max_spatial = min_opt(explicit.spatial, explicit.max_spatial);
                let heights = &t.rates.info.spatial_height[..layers];
                input.max_spatial = min_opt(input.max_spatial, height_cap(heights, cap.max_height));
            } else {
                input.rates[0] = t.rates.info.rate;
                input.layer_count = 1;
            }
        }
        input.max_temporal = min_opt(explicit.temporal, explicit.max_temporal);
        input.current = sub.alloc.choice;
        input.since_down = sub.alloc.down_at.map(|t| now.saturating_duration_since(t));
        input.since_up = sub.alloc.up_at.map(|t| now.saturating_duration_since(t));
        input.hold = sub.alloc.hold;
        input
    }

    /// Applies the allocator's result to section `sidx`; says whether it stepped up, and
    /// whether down.
    fn apply_section(
        &mut self,
        now: Instant,
        sidx: usize,
        input: &SectionInput,
        r: &SectionResult,
    ) -> (bool, bool) {
        let Some(sub) = self.subs.get_mut(sidx) else {
            return (false, false);
        };
        sub.alloc.allocated = r.allocated;
        if sub.kind == MediaKind::Audio {
            return (false, false);
        }
        if r.choice != sub.alloc.choice {
            let session = self.sessions.get(sub.session).map(|s| s.id);
            tracing::debug!(shard = %self.shard, ?session, mid = %sub.mid.0, from = ?sub.alloc.choice, to = ?r.choice, allocated = r.allocated.0, "allocation changed");
        }
        let a = &mut sub.alloc;
        let (up, down) = (is_higher(r.choice, a.choice), is_lower(r.choice, a.choice));
        if is_lower(r.choice, a.choice) {
            a.down_at = Some(now);
            let failed_up = a
                .up_at
                .is_some_and(|t| now.saturating_duration_since(t) < FAILED_UP_WINDOW);
            let base = self.cfg.allocator.up_hold;
            if failed_up {
                // One failed step up doubles the hold once: the steps down that follow it
                // (f to h to q to a pause when capacity collapses) are not failures of their own.
                a.hold = Some((a.hold.unwrap_or(base) * 2).min(MAX_HOLD));
                a.up_at = None;
                a.failed_at = Some(now);
            } else if a
                .failed_at
                .is_none_or(|t| now.saturating_duration_since(t) >= FAILED_UP_WINDOW)
            {
                a.hold = None;
            }
        } else if is_higher(r.choice, a.choice) {
            a.up_at = Some(now);
        }
        a.choice = r.choice;
        a.best = r.best;
        let demand = demand_mask(input, r);
        if demand != a.demand {
            a.demand = demand;
            if let Some(g) = sub.group {
                self.mark_demand(g);
            }
        }
        let sub = &mut self.subs[sidx];
        if r.choice == Choice::Paused {
            if !sub.alloc.paused {
                self.pause_section(sidx);
            }
            return (up, down);
        }
        let resumed = std::mem::replace(&mut sub.alloc.paused, false);
        let spatial_steps = sub.group.is_some() || input.layer_count > 1;
        let selection = effective_selection(&sub.alloc.explicit, r.choice, spatial_steps);
        if resumed || sub.alloc.applied != Some(selection) {
            self.apply_selection(now, sidx, &selection, resumed);
        }
        (up, down)
    }

    /// Stops forwarding video to section `sidx`; it resumes on a keyframe.
    fn pause_section(&mut self, sidx: usize) {
        let sub = &mut self.subs[sidx];
        sub.alloc.paused = true;
        sub.gate.reset();
        if sub.group.is_some() {
            // The next packet must be a keyframe of the wanted encoding (a switch).
            sub.source = None;
        } else if sub.started {
            sub.needs_rebase = true;
            sub.alloc.rebase_by_arrival = true;
        }
    }

    /// Hands `selection` to section `sidx`'s layer selector and asks for the keyframe a switch
    /// needs (`resumed`: the section comes back from a pause and needs one in any case).
    pub(super) fn apply_selection(
        &mut self,
        now: Instant,
        sidx: usize,
        selection: &LayerSelection,
        resumed: bool,
    ) {
        let sub = &mut self.subs[sidx];
        sub.selector.set(selection);
        sub.alloc.applied = Some(*selection);
        if let Some(t) = self.wanted_layer_track(now, sidx)
            && self.subs[sidx].source != Some(t)
        {
            self.request_keyframe(now, t);
        } else if let Some(t) = self.subs[sidx].source
            && (resumed || self.subs[sidx].selector.wants_spatial_up())
        {
            self.request_keyframe(now, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::TrackContent;

    fn layer(spatial: u8) -> Choice {
        Choice::Layer {
            spatial,
            temporal: None,
        }
    }

    #[test]
    fn a_step_down_or_a_pause_is_lower_a_first_choice_is_not() {
        assert!(is_lower(layer(0), layer(1)));
        assert!(is_lower(
            Choice::Layer {
                spatial: 0,
                temporal: Some(0)
            },
            layer(0)
        ));
        assert!(is_lower(Choice::Paused, layer(0)));
        assert!(!is_lower(layer(2), layer(1)));
        assert!(!is_lower(layer(0), Choice::Unset));
        assert!(!is_lower(layer(0), Choice::Paused));
    }

    #[test]
    fn a_height_cap_allows_the_layers_up_to_the_first_taller_one() {
        let hs = [Some(180), Some(360), Some(720)];
        assert_eq!(
            height_cap(&hs, Some(480)),
            Some(1),
            "480p: 360 is the highest"
        );
        assert_eq!(height_cap(&hs, Some(720)), None, "nothing taller");
        assert_eq!(height_cap(&hs, Some(100)), Some(0), "the lowest stays");
        assert_eq!(height_cap(&hs, None), None);
        assert_eq!(height_cap(&[None, None, Some(720)], Some(480)), Some(1));
    }

    #[test]
    fn the_choice_lives_within_the_explicit_selection() {
        let explicit = LayerSelection {
            temporal: Some(1),
            max_spatial: Some(1),
            ..LayerSelection::default()
        };
        let s = effective_selection(&explicit, layer(1), true);
        assert_eq!(
            (s.spatial, s.temporal, s.max_spatial),
            (Some(1), Some(1), Some(1))
        );
        let base = Choice::Layer {
            spatial: 0,
            temporal: Some(0),
        };
        assert_eq!(effective_selection(&explicit, base, true).temporal, Some(0));
        // A single SVC stream keeps its spatial target.
        assert_eq!(
            effective_selection(&explicit, layer(0), false).spatial,
            None
        );
        assert_eq!(
            effective_selection(&explicit, Choice::Paused, true),
            explicit
        );
    }

    #[test]
    fn demand_covers_every_layer_up_to_the_best_and_unmeasured_ones() {
        let kb = |k| Some(Bitrate::kbps(k));
        let input = SectionInput::video(TrackContent::Camera, &[kb(150), kb(500), kb(1500)]);
        let r = |choice, best| SectionResult {
            choice,
            best,
            ..SectionResult::default()
        };
        assert_eq!(demand_mask(&input, &r(layer(0), layer(2))), 0b111);
        assert_eq!(demand_mask(&input, &r(layer(1), layer(1))), 0b011);
        assert_eq!(demand_mask(&input, &r(Choice::Paused, layer(0))), 0b001);
        let mut capped = input;
        capped.max_spatial = Some(1);
        assert_eq!(demand_mask(&capped, &r(layer(1), layer(1))), 0b011);
        let unmeasured = SectionInput::video(TrackContent::Camera, &[kb(150), kb(500), None]);
        assert_eq!(demand_mask(&unmeasured, &r(layer(0), layer(0))), 0b101);
        let single = SectionInput::video(TrackContent::Camera, &[kb(500)]);
        assert_eq!(
            demand_mask(&single, &r(layer(0), layer(0))),
            0,
            "not simulcast"
        );
    }
}
