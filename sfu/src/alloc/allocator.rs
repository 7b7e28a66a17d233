//! The allocation of a viewer's bandwidth estimate among its media sections. Audio is reserved
//! first and never paused. Video sections go in priority order (screen content before camera,
//! then section order): each first gets its lowest step while that fits (a section whose lowest
//! step does not fit is paused); then, in the same order, each goes up to the highest step that
//! fits. Hysteresis keeps it from flapping: a section goes down at once when its step no longer
//! fits, but up (or back from a pause) only one step at a time, when the higher step fits with
//! headroom and not within a hold time of its last step down.

use std::time::Duration;

use crate::control::TrackContent;
use crate::{Bitrate, MediaKind};

use super::ladder::Ladder;
use super::section::{Choice, MAX_SECTIONS, SectionInput, SectionResult};

/// The allocator's tunables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AllocatorConfig {
    /// A step up must fit with this much to spare (0.1: 10 % above its rate).
    pub up_headroom: f64,
    /// No step up (or resume) this long after a step down (or pause).
    pub up_hold: Duration,
    /// No step up this long after the last step up (or resume): the estimator gets to see
    /// whether the path carries the step just taken before the next is tried. Without it a
    /// probe result above a shaped path's rate took Chromium viewers behind 600 kbit/s from
    /// the lowest layer to the top within a few milliseconds (two allocations in a row).
    pub up_step_hold: Duration,
    /// Whether video whose lowest step does not fit is paused; when false it keeps its lowest
    /// step over the budget (a deployment that would rather congest than freeze).
    pub pause_video: bool,
    /// Video already flowing keeps its lowest step while the budget is at least this share of
    /// its rate (0.6: pause only below 60 %). A GCC estimate dips to 0.85 × the acknowledged
    /// rate after every over-use (a keyframe burst or a probe into a narrow path does that),
    /// and the acknowledged rate of a lowest layer runs below its measured rate (which counts
    /// its keyframes): 0.85 × 0.86 of it was seen, so at 0.75 one over-use paused video that
    /// the path carried. A resume needs the full rate with headroom, which keeps the band
    /// between the two from flapping.
    pub keep_lowest: f64,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            up_headroom: 0.10,
            up_hold: Duration::from_secs(2),
            up_step_hold: Duration::from_secs(1),
            pause_video: true,
            keep_lowest: 0.6,
        }
    }
}

/// The totals of one allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allocation {
    /// Everything budgeted: audio and the chosen video steps.
    pub allocated: Bitrate,
    /// What every section would take at its best allowed step (audio included).
    pub desired: Bitrate,
    /// The video part of `allocated`.
    pub video_allocated: Bitrate,
    /// The video part of `desired`.
    pub video_desired: Bitrate,
    /// The total the next step up needs, headroom included: the first section in priority
    /// order below its best step, one step higher (the rate worth probing for); `None` when
    /// every section is at its best.
    pub next_up: Option<Bitrate>,
    /// Some video section is paused.
    pub paused: bool,
}

/// What one viewer may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// The send-side estimate; `None`: unlimited (the viewer has no estimate).
    pub estimate: Option<Bitrate>,
    /// The most the whole allocation may reach through a step up, when the estimate is not
    /// backed by a measurement of the path; `None`: the estimate alone.
    pub up_limit: Option<Bitrate>,
    /// The same for a resume from a pause (which costs a keyframe, so is not tried on an
    /// untested estimate); `None`: the estimate alone.
    pub resume_limit: Option<Bitrate>,
    /// The most for all video together (the viewer's quality preset).
    pub video_cap: Option<Bitrate>,
}

impl Budget {
    /// An estimate and nothing else.
    pub fn estimate(estimate: Bitrate) -> Self {
        Budget {
            estimate: Some(estimate),
            ..Budget::default()
        }
    }
}

/// Allocates `budget` among `sections`, writing one result per section into `out` (which must
/// be at least as long; sections past [`MAX_SECTIONS`] are left `Unset`).
pub fn allocate(
    cfg: &AllocatorConfig,
    budget: &Budget,
    sections: &[SectionInput],
    out: &mut [SectionResult],
) -> Allocation {
    let video_cap = budget.video_cap;
    let n = sections.len().min(MAX_SECTIONS).min(out.len());
    let sections = &sections[..n];
    let mut audio = 0u64;
    for (s, r) in sections.iter().zip(out.iter_mut()) {
        *r = SectionResult::default();
        if s.kind == MediaKind::Audio {
            let rate = s.rates[0].unwrap_or(Bitrate::ZERO);
            audio += rate.0;
            r.allocated = rate;
            r.best_rate = rate;
        }
    }
    // Video sections by priority: screen content first, then section order.
    let mut order = [0u8; MAX_SECTIONS];
    let mut m = 0;
    for (i, s) in sections.iter().enumerate() {
        if s.kind == MediaKind::Video {
            order[m] = i as u8;
            m += 1;
        }
    }
    let order = &mut order[..m];
    order.sort_unstable_by_key(|&i| {
        let screen = sections[usize::from(i)].content == TrackContent::Screen;
        (!screen, i)
    });

    // The estimate bounds every step; the cap only the steps above each section's lowest (a
    // cap never pauses video: only the estimate can).
    let video_budget = budget.estimate.map(|b| b.0.saturating_sub(audio));
    let cap = video_cap.map(|c| c.0);
    let limits = Limits {
        up: budget.up_limit.map(|u| u.0.saturating_sub(audio)),
        resume: budget.resume_limit.map(|u| u.0.saturating_sub(audio)),
    };
    let mut chosen = [Choice::Unset; MAX_SECTIONS];
    let mut rates = [Bitrate::ZERO; MAX_SECTIONS];
    fill(
        cfg,
        sections,
        order,
        video_budget,
        cap,
        Some(limits),
        &mut chosen,
        &mut rates,
    );
    let mut video_allocated = 0;
    let mut paused = false;
    for &i in order.iter() {
        let i = usize::from(i);
        paused |= chosen[i] == Choice::Paused;
        out[i].choice = chosen[i];
        out[i].allocated = rates[i];
        video_allocated += rates[i].0;
    }
    // What the sections would get with no estimate: the viewer's caps alone.
    fill(
        cfg,
        sections,
        order,
        None,
        cap,
        None,
        &mut chosen,
        &mut rates,
    );
    let mut video_desired = 0;
    for &i in order.iter() {
        let i = usize::from(i);
        out[i].best = chosen[i];
        out[i].best_rate = rates[i];
        video_desired += rates[i].0;
    }
    let mut next_up = None;
    for &i in order.iter() {
        let (s, r) = (&sections[usize::from(i)], &out[usize::from(i)]);
        let l = Ladder::of(s, budget.estimate.is_none());
        let next = match r.choice {
            Choice::Paused => 0,
            c => match l.position(c) {
                Some(p) => p + 1,
                None => continue,
            },
        };
        let Some(step) = l.steps().get(next) else {
            continue;
        };
        let best = l.position(r.best);
        if best.is_none_or(|b| next > b) {
            continue;
        }
        let up = (step.rate.0 as f64 * (1.0 + cfg.up_headroom)) as u64;
        next_up = Some(Bitrate(audio + video_allocated - r.allocated.0 + up));
        break;
    }
    Allocation {
        allocated: Bitrate(audio + video_allocated),
        desired: Bitrate(audio + video_desired),
        video_allocated: Bitrate(video_allocated),
        video_desired: Bitrate(video_desired),
        next_up,
        paused,
    }
}

/// Bounds on the video total a step up (or a resume) may reach.
#[derive(Debug, Clone, Copy)]
struct Limits {
    up: Option<u64>,
    resume: Option<u64>,
}

/// One pass over the video sections in `order`: base steps, then upgrades, within `budget`
/// (`None`: unlimited); upgrades also within `cap` (the lowest steps are not bound by it).
/// `hysteresis`: the rules for going up apply, within its limits.
#[allow(clippy::too_many_arguments)]
fn fill(
    cfg: &AllocatorConfig,
    sections: &[SectionInput],
    order: &[u8],
    budget: Option<u64>,
    cap: Option<u64>,
    hysteresis: Option<Limits>,
    chosen: &mut [Choice; MAX_SECTIONS],
    rates: &mut [Bitrate; MAX_SECTIONS],
) {
    let mut ladders = [Ladder::default(); MAX_SECTIONS];
    let mut at: [Option<usize>; MAX_SECTIONS] = [None; MAX_SECTIONS];
    let mut remaining = budget;
    // Video allocated so far.
    let mut spent = 0u64;
    // Whether section `s` may take step `j` of ladder `l` with `available` left for it, the
    // video total becoming `total`.
    let fits = |s: &SectionInput, l: &Ladder, j: usize, available: Option<u64>, total: u64| {
        let rate = l.steps()[j].rate.0;
        let Some(available) = available else {
            return true;
        };
        let Some(limits) = hysteresis else {
            return rate <= available;
        };
        let current = l.position(s.current);
        if current.is_some_and(|c| j <= c) {
            if j == 0 {
                return rate as f64 * cfg.keep_lowest <= available as f64;
            }
            return rate <= available;
        }
        let hold = s.hold.unwrap_or(cfg.up_hold);
        let held = s.current != Choice::Unset
            && (s.since_down.is_some_and(|d| d < hold)
                || (matches!(s.current, Choice::Layer { .. })
                    && s.since_up.is_some_and(|u| u < cfg.up_step_hold)));
        // A first step of a new section is how its rate gets measured: no limit on it.
        let limit = match s.current {
            Choice::Unset if j == 0 => None,
            Choice::Paused => limits.resume.or(limits.up),
            _ => limits.up,
        };
        let confirmed = limit.is_none_or(|u| total <= u);
        !held && confirmed && rate as f64 * (1.0 + cfg.up_headroom) <= available as f64
    };
    let hysteresis = hysteresis.is_some();
    // Everyone's lowest step first.
    for &i in order {
        let i = usize::from(i);
        let s = &sections[i];
        ladders[i] = Ladder::of(s, budget.is_none() && cap.is_none());
        let l = &ladders[i];
        chosen[i] = Choice::Unset;
        rates[i] = Bitrate::ZERO;
        if l.is_empty() {
            continue;
        }
        let rate = l.steps()[0].rate;
        if fits(s, l, 0, remaining, spent + rate.0) || (hysteresis && !cfg.pause_video) {
            at[i] = Some(0);
            rates[i] = rate;
            chosen[i] = l.steps()[0].choice();
            spent += rate.0;
            if let Some(r) = remaining.as_mut() {
                *r = r.saturating_sub(rate.0);
            }
        } else {
            chosen[i] = Choice::Paused;
        }
    }
    // Then each, in order, as high as fits.
    for &i in order {
        let i = usize::from(i);
        let Some(base) = at[i] else { continue };
        let (s, l) = (&sections[i], &ladders[i]);
        let held = rates[i].0;
        let others = spent - held;
        let available = match (remaining.map(|r| r + held), cap) {
            (Some(a), Some(c)) => Some(a.min(c.saturating_sub(others))),
            (a, c) => a.or(c.map(|c| c.saturating_sub(others))),
        };
        // Up one step at a time (a resume only to the lowest): each step up needs its own
        // evidence that the path carries it (see `ProbeSteering`), so one overshooting probe
        // result cannot take a section from its lowest layer straight to its top.
        // Without an estimate (unlimited) there is nothing to confirm: straight to the best.
        let stepwise = hysteresis && budget.is_some();
        let top = match (stepwise, s.current, l.position(s.current)) {
            (true, Choice::Paused, _) => base,
            (true, _, Some(c)) => (c + 1).max(base),
            _ => l.steps().len() - 1,
        };
        if let Some(j) = (base + 1..=top.min(l.steps().len() - 1))
            .rev()
            .find(|&j| fits(s, l, j, available, others + l.steps()[j].rate.0))
        {
            let step = l.steps()[j];
            chosen[i] = step.choice();
            rates[i] = step.rate;
            spent = others + step.rate.0;
            remaining = remaining.map(|r| (r + held).saturating_sub(step.rate.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kbps(k: u64) -> Option<Bitrate> {
        Some(Bitrate::kbps(k))
    }

    /// A camera with 150, 500 and 1500 kbit/s layers.
    fn camera() -> SectionInput {
        SectionInput::video(TrackContent::Camera, &[kbps(150), kbps(500), kbps(1500)])
    }

    fn layer(spatial: u8) -> Choice {
        Choice::Layer {
            spatial,
            temporal: None,
        }
    }

    fn run(budget: u64, sections: &[SectionInput]) -> (Vec<SectionResult>, Allocation) {
        let mut out = vec![SectionResult::default(); sections.len()];
        let a = allocate(
            &AllocatorConfig::default(),
            &Budget::estimate(Bitrate::kbps(budget)),
            sections,
            &mut out,
        );
        (out, a)
    }

    #[test]
    fn a_fresh_camera_gets_the_highest_layer_that_fits_with_headroom() {
        let audio = SectionInput::audio(kbps(50));
        for (budget, want) in [(300, 0), (590, 0), (650, 1), (1690, 1), (1750, 2)] {
            let (out, a) = run(budget, &[camera(), audio]);
            assert_eq!(out[0].choice, layer(want), "budget {budget}");
            assert_eq!(out[1].allocated, Bitrate::kbps(50), "audio reserved");
            assert_eq!(a.desired, Bitrate::kbps(1550));
            assert_eq!(out[0].best, layer(2));
            let next =
                [Some(600), Some(600), Some(1700), Some(1700), None][[300, 590, 650, 1690, 1750]
                    .iter()
                    .position(|&b| b == budget)
                    .unwrap()];
            assert_eq!(
                a.next_up,
                next.map(Bitrate::kbps),
                "the next step with headroom"
            );
        }
    }

    #[test]
    fn audio_is_reserved_and_video_pauses_when_its_lowest_layer_does_not_fit() {
        let (out, a) = run(180, &[camera(), SectionInput::audio(kbps(50))]);
        assert_eq!(out[0].choice, Choice::Paused);
        assert_eq!(out[0].allocated, Bitrate::ZERO);
        assert_eq!(out[1].allocated, Bitrate::kbps(50));
        assert_eq!(a.allocated, Bitrate::kbps(50));
        assert_eq!(
            a.next_up,
            Some(Bitrate::kbps(215)),
            "a resume of q with headroom"
        );
        // Audio is never paused, even when it alone does not fit.
        let (out, _) = run(10, &[camera(), SectionInput::audio(kbps(50))]);
        assert_eq!(out[1].allocated, Bitrate::kbps(50));
    }

    #[test]
    fn flowing_video_keeps_its_lowest_layer_through_a_dip_and_resumes_only_with_headroom() {
        let audio = SectionInput::audio(kbps(50));
        let flowing = |current: Choice| SectionInput {
            current,
            ..camera()
        };
        // q is 150: a flowing camera keeps it down to 60 % (90 kbit/s of video budget).
        let (out, _) = run(50 + 95, &[flowing(layer(0)), audio]);
        assert_eq!(out[0].choice, layer(0), "a dip to 63 % keeps q");
        let (out, _) = run(50 + 95, &[flowing(layer(1)), audio]);
        assert_eq!(out[0].choice, layer(0), "from h the dip lands on q");
        let (out, _) = run(50 + 88, &[flowing(layer(0)), audio]);
        assert_eq!(out[0].choice, Choice::Paused, "below 60 % it pauses");
        // A paused camera needs q with 10 % headroom (165) to come back.
        let (out, _) = run(50 + 160, &[flowing(Choice::Paused), audio]);
        assert_eq!(out[0].choice, Choice::Paused);
        let (out, _) = run(50 + 166, &[flowing(Choice::Paused), audio]);
        assert_eq!(out[0].choice, layer(0));
    }

    #[test]
    fn without_pausing_the_lowest_layer_stays_over_the_budget() {
        let cfg = AllocatorConfig {
            pause_video: false,
            ..AllocatorConfig::default()
        };
        let mut out = vec![SectionResult::default(); 2];
        let a = allocate(
            &cfg,
            &Budget::estimate(Bitrate::kbps(100)),
            &[camera(), camera()],
            &mut out,
        );
        assert_eq!(out[0].choice, layer(0));
        assert_eq!(out[1].choice, layer(0));
        assert_eq!(a.video_allocated, Bitrate::kbps(300));
    }

    #[test]
    fn screen_content_comes_before_camera_whatever_the_section_order() {
        let screen = SectionInput::video(TrackContent::Screen, &[kbps(150), kbps(500), kbps(1500)]);
        let (out, _) = run(900, &[camera(), screen]);
        assert_eq!(out[1].choice, layer(1), "screen goes up first");
        assert_eq!(out[0].choice, layer(0), "camera keeps the rest");
        // Not even the lowest of both: the camera pauses, the screen stays.
        let (out, _) = run(200, &[camera(), screen]);
        assert_eq!(out[1].choice, layer(0));
        assert_eq!(out[0].choice, Choice::Paused);
    }

    #[test]
    fn among_cameras_the_first_section_goes_up_first_after_everyone_got_the_lowest() {
        let (out, _) = run(900, &[camera(), camera(), camera()]);
        assert_eq!(
            out.iter().map(|r| r.choice).collect::<Vec<_>>(),
            [layer(1), layer(0), layer(0)]
        );
    }

    #[test]
    fn going_up_needs_headroom_but_staying_does_not() {
        let mut s = camera();
        s.current = layer(0);
        s.since_down = Some(Duration::from_secs(10));
        // 500 × 1.1 = 550: not enough at 540 to go up.
        assert_eq!(run(540, &[s]).0[0].choice, layer(0));
        assert_eq!(run(560, &[s]).0[0].choice, layer(1));
        // Once there, it stays down to the layer's own rate.
        s.current = layer(1);
        assert_eq!(run(500, &[s]).0[0].choice, layer(1));
        // ... and goes down at once below it.
        assert_eq!(run(499, &[s]).0[0].choice, layer(0));
    }

    #[test]
    fn a_section_goes_up_one_step_at_a_time_and_resumes_at_its_lowest() {
        let mut s = camera();
        s.current = layer(0);
        assert_eq!(run(5000, &[s]).0[0].choice, layer(1), "q to h, not to f");
        s.current = layer(1);
        assert_eq!(run(5000, &[s]).0[0].choice, layer(2), "then h to f");
        s.since_up = Some(Duration::from_millis(900));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(1), "not within 1 s of h");
        s.since_up = Some(Duration::from_secs(1));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(2));
        s.current = Choice::Paused;
        assert_eq!(run(5000, &[s]).0[0].choice, layer(0), "a resume is to q");
        // A new section (nothing chosen yet) takes what fits at once.
        assert_eq!(run(5000, &[camera()]).0[0].choice, layer(2));
        // Without an estimate there is nothing to step through.
        let mut out = vec![SectionResult::default(); 1];
        s.current = layer(0);
        s.since_up = Some(Duration::ZERO);
        allocate(
            &AllocatorConfig::default(),
            &Budget::default(),
            &[s],
            &mut out,
        );
        assert_eq!(out[0].choice, layer(2));
    }

    #[test]
    fn no_step_up_within_the_hold_after_a_step_down() {
        let mut s = camera();
        s.current = layer(0);
        s.since_down = Some(Duration::from_millis(1500));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(0), "held");
        s.since_down = Some(Duration::from_millis(2000));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(1), "released, one step");
        // A pause is a step down too: no resume within the hold.
        s.current = Choice::Paused;
        s.since_down = Some(Duration::from_millis(500));
        assert_eq!(run(5000, &[s]).0[0].choice, Choice::Paused);
        s.since_down = Some(Duration::from_secs(3));
        assert_eq!(
            run(5000, &[s]).0[0].choice,
            layer(0),
            "resumed at the lowest"
        );
        // A section may have a longer hold of its own.
        s.hold = Some(Duration::from_secs(8));
        assert_eq!(run(5000, &[s]).0[0].choice, Choice::Paused);
        s.since_down = Some(Duration::from_secs(8));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(0));
        // The hold never keeps a section from going down.
        s.current = layer(2);
        s.since_down = Some(Duration::ZERO);
        assert_eq!(run(600, &[s]).0[0].choice, layer(1));
    }

    #[test]
    fn an_unconfirmed_estimate_allows_no_step_up_beyond_the_up_limit() {
        let mut s = camera();
        s.current = layer(0);
        s.since_down = Some(Duration::from_secs(10));
        let audio = SectionInput::audio(kbps(50));
        let mut out = vec![SectionResult::default(); 2];
        let mut budget = Budget {
            estimate: Some(Bitrate::kbps(5000)),
            up_limit: Some(Bitrate::kbps(700)),
            ..Budget::default()
        };
        let cfg = AllocatorConfig::default();
        allocate(&cfg, &budget, &[s, audio], &mut out);
        assert_eq!(out[0].choice, layer(1), "500 + 50 ≤ 700");
        budget.up_limit = Some(Bitrate::kbps(540));
        allocate(&cfg, &budget, &[s, audio], &mut out);
        assert_eq!(out[0].choice, layer(0), "no step up past it");
        // Staying needs no confirmation, nor does a new section's first step.
        s.current = layer(2);
        allocate(&cfg, &budget, &[s, audio], &mut out);
        assert_eq!(out[0].choice, layer(2));
        s.current = Choice::Paused;
        budget.up_limit = Some(Bitrate::kbps(100));
        allocate(&cfg, &budget, &[s, audio], &mut out);
        assert_eq!(out[0].choice, Choice::Paused, "a resume is a step up");
        // A resume has a limit of its own, even where steps up have none.
        budget.up_limit = None;
        budget.resume_limit = Some(Bitrate::kbps(150));
        allocate(&cfg, &budget, &[s, audio], &mut out);
        assert_eq!(out[0].choice, Choice::Paused);
        budget.resume_limit = Some(Bitrate::kbps(300));
        allocate(&cfg, &budget, &[s, audio], &mut out);
        assert_eq!(out[0].choice, layer(0));
        budget.up_limit = Some(Bitrate::kbps(100));
        s.current = Choice::Unset;
        allocate(&cfg, &budget, &[s, audio], &mut out);
        assert_eq!(out[0].choice, layer(0), "a first step is not");
    }

    #[test]
    fn lifting_a_temporal_cap_on_an_svc_stream_keeps_its_video_flowing() {
        // One SVC encoding of 1200 kbit/s whose base temporal layer rate is unknown (AV1): the
        // viewer was capped to T0 and lifts the cap. Its current layer is below every step now;
        // with an estimate that carries the stream it goes on (to all temporal layers) instead
        // of pausing until a probe confirms a resume.
        let mut s = SectionInput::video(TrackContent::Camera, &[kbps(1200)]);
        s.current = Choice::Layer {
            spatial: 0,
            temporal: Some(0),
        };
        s.since_up = Some(Duration::from_secs(10));
        let mut out = vec![SectionResult::default(); 1];
        let budget = Budget {
            estimate: Some(Bitrate::kbps(1300)),
            up_limit: Some(Bitrate::kbps(400)),
            resume_limit: Some(Bitrate::kbps(400)),
            ..Budget::default()
        };
        allocate(&AllocatorConfig::default(), &budget, &[s], &mut out);
        assert_eq!(out[0].choice, layer(0));
    }

    #[test]
    fn the_base_temporal_layer_is_preferred_to_a_pause() {
        let mut s = camera();
        s.base_temporal = kbps(60);
        let (out, _) = run(100, &[s]);
        assert_eq!(
            out[0].choice,
            Choice::Layer {
                spatial: 0,
                temporal: Some(0)
            }
        );
        assert_eq!(out[0].allocated, Bitrate::kbps(60));
        // Without its rate there is no such step: paused.
        assert_eq!(run(100, &[camera()]).0[0].choice, Choice::Paused);
    }

    #[test]
    fn explicit_caps_bound_the_choice_and_the_desired_rate() {
        let mut s = camera();
        s.max_spatial = Some(1);
        let (out, a) = run(5000, &[s]);
        assert_eq!(out[0].choice, layer(1));
        assert_eq!(out[0].best, layer(1));
        assert_eq!(a.desired, Bitrate::kbps(500));
    }

    #[test]
    fn the_video_cap_limits_every_video_section_together() {
        let mut out = vec![SectionResult::default(); 2];
        let budget = Budget {
            estimate: Some(Bitrate::kbps(10_000)),
            video_cap: Some(Bitrate::kbps(1000)),
            ..Budget::default()
        };
        let a = allocate(
            &AllocatorConfig::default(),
            &budget,
            &[camera(), camera()],
            &mut out,
        );
        assert_eq!(out[0].choice, layer(1));
        assert_eq!(out[1].choice, layer(0));
        assert_eq!(
            a.video_desired,
            Bitrate::kbps(1000),
            "best within the cap (no headroom needed without an estimate)"
        );
        assert_eq!(a.video_allocated, Bitrate::kbps(650));
    }

    #[test]
    fn a_cap_below_the_lowest_layer_never_pauses_it() {
        let single = SectionInput::video(TrackContent::Camera, &[kbps(810)]);
        for estimate in [Some(Bitrate::kbps(5000)), None] {
            let mut out = vec![SectionResult::default(); 2];
            let budget = Budget {
                estimate,
                video_cap: kbps(800),
                ..Budget::default()
            };
            let a = allocate(
                &AllocatorConfig::default(),
                &budget,
                &[single, camera()],
                &mut out,
            );
            assert_eq!(out[0].choice, layer(0), "{estimate:?}");
            assert_eq!(out[0].best, layer(0), "{estimate:?}");
            assert_eq!(out[1].choice, layer(0), "the second keeps its lowest too");
            assert_eq!(a.video_allocated, Bitrate::kbps(960));
        }
        // Only the estimate pauses.
        let mut out = vec![SectionResult::default(); 1];
        let budget = Budget {
            estimate: kbps(500),
            video_cap: kbps(800),
            ..Budget::default()
        };
        allocate(&AllocatorConfig::default(), &budget, &[single], &mut out);
        assert_eq!(out[0].choice, Choice::Paused);
    }

    #[test]
    fn without_an_estimate_every_section_gets_its_best_allowed_layer() {
        let mut s = SectionInput::video(TrackContent::Camera, &[None, None, None]);
        s.max_spatial = Some(1);
        let mut out = vec![SectionResult::default(); 1];
        allocate(
            &AllocatorConfig::default(),
            &Budget::default(),
            &[s],
            &mut out,
        );
        assert_eq!(out[0].choice, layer(1), "unmeasured layers need no budget");
    }

    #[test]
    fn unmeasured_upper_layers_are_not_chosen_under_a_budget() {
        let s = SectionInput::video(TrackContent::Camera, &[None, None, None]);
        let (out, _) = run(5000, &[s]);
        assert_eq!(out[0].choice, layer(0), "the lowest, to measure it");
    }

    #[test]
    fn a_section_without_a_source_is_left_unset() {
        let s = SectionInput::video(TrackContent::Camera, &[]);
        let (out, a) = run(5000, &[s]);
        assert_eq!(out[0].choice, Choice::Unset);
        assert_eq!(a.allocated, Bitrate::ZERO);
    }
}
