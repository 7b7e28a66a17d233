//! The allocation of a viewer's bandwidth estimate among its media sections. Audio is reserved
//! first and never paused. Video sections go in priority order (screen content before camera,
//! then section order): each first gets its lowest step while that fits (a section whose lowest
//! step does not fit is paused); then, in the same order, each goes up to the highest step that
//! fits. Hysteresis keeps it from flapping: a section goes down at once when its step no longer
//! fits, but up (or back from a pause) only when the higher step fits with headroom and not
//! within a hold time of its last step down.

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
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            up_headroom: 0.10,
            up_hold: Duration::from_secs(2),
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
}

/// Allocates `budget` (`None`: unlimited, the viewer has no estimate) among `sections`, with
/// at most `video_cap` for all video together, writing one result per section into `out`
/// (which must be at least as long; sections past [`MAX_SECTIONS`] are left `Unset`).
pub fn allocate(
    cfg: &AllocatorConfig,
    budget: Option<Bitrate>,
    video_cap: Option<Bitrate>,
    sections: &[SectionInput],
    out: &mut [SectionResult],
) -> Allocation {
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

    let video_budget = match (budget.map(|b| b.0.saturating_sub(audio)), video_cap) {
        (Some(b), Some(c)) => Some(b.min(c.0)),
        (b, c) => b.or(c.map(|c| c.0)),
    };
    let mut chosen = [Choice::Unset; MAX_SECTIONS];
    let mut rates = [Bitrate::ZERO; MAX_SECTIONS];
    fill(
        cfg,
        sections,
        order,
        video_budget,
        true,
        &mut chosen,
        &mut rates,
    );
    let mut video_allocated = 0;
    for &i in order.iter() {
        let i = usize::from(i);
        out[i].choice = chosen[i];
        out[i].allocated = rates[i];
        video_allocated += rates[i].0;
    }
    // What the sections would get with no estimate: the viewer's caps alone.
    fill(
        cfg,
        sections,
        order,
        video_cap.map(|c| c.0),
        false,
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
    Allocation {
        allocated: Bitrate(audio + video_allocated),
        desired: Bitrate(audio + video_desired),
        video_allocated: Bitrate(video_allocated),
        video_desired: Bitrate(video_desired),
    }
}

/// One pass over the video sections in `order`: base steps, then upgrades, within `budget`
/// (`None`: unlimited); with `hysteresis`, the rules for going up apply.
fn fill(
    cfg: &AllocatorConfig,
    sections: &[SectionInput],
    order: &[u8],
    budget: Option<u64>,
    hysteresis: bool,
    chosen: &mut [Choice; MAX_SECTIONS],
    rates: &mut [Bitrate; MAX_SECTIONS],
) {
    let mut ladders = [Ladder::default(); MAX_SECTIONS];
    let mut at: [Option<usize>; MAX_SECTIONS] = [None; MAX_SECTIONS];
    let mut remaining = budget;
    let fits = |s: &SectionInput, l: &Ladder, j: usize, available: Option<u64>| -> bool {
        let rate = l.steps()[j].rate.0;
        let Some(available) = available else {
            return true;
        };
        if !hysteresis {
            return rate <= available;
        }
        let current = l.position(s.current);
        if current.is_some_and(|c| j <= c) {
            return rate <= available;
        }
        let held = s.current != Choice::Unset && s.since_down.is_some_and(|d| d < cfg.up_hold);
        !held && rate as f64 * (1.0 + cfg.up_headroom) <= available as f64
    };
    // Everyone's lowest step first.
    for &i in order {
        let i = usize::from(i);
        let s = &sections[i];
        ladders[i] = Ladder::of(s, budget.is_none());
        let l = &ladders[i];
        chosen[i] = Choice::Unset;
        rates[i] = Bitrate::ZERO;
        if l.is_empty() {
            continue;
        }
        if fits(s, l, 0, remaining) {
            at[i] = Some(0);
            let rate = l.steps()[0].rate;
            rates[i] = rate;
            chosen[i] = l.steps()[0].choice();
            if let Some(r) = remaining.as_mut() {
                *r -= rate.0;
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
        let available = remaining.map(|r| r + held);
        if let Some(j) = (base + 1..l.steps().len())
            .rev()
            .find(|&j| fits(s, l, j, available))
        {
            let step = l.steps()[j];
            chosen[i] = step.choice();
            rates[i] = step.rate;
            remaining = available.map(|a| a - step.rate.0);
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
            Some(Bitrate::kbps(budget)),
            None,
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
        }
    }

    #[test]
    fn audio_is_reserved_and_video_pauses_when_its_lowest_layer_does_not_fit() {
        let (out, a) = run(180, &[camera(), SectionInput::audio(kbps(50))]);
        assert_eq!(out[0].choice, Choice::Paused);
        assert_eq!(out[0].allocated, Bitrate::ZERO);
        assert_eq!(out[1].allocated, Bitrate::kbps(50));
        assert_eq!(a.allocated, Bitrate::kbps(50));
        // Audio is never paused, even when it alone does not fit.
        let (out, _) = run(10, &[camera(), SectionInput::audio(kbps(50))]);
        assert_eq!(out[1].allocated, Bitrate::kbps(50));
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
    fn no_step_up_within_the_hold_after_a_step_down() {
        let mut s = camera();
        s.current = layer(0);
        s.since_down = Some(Duration::from_millis(1500));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(0), "held");
        s.since_down = Some(Duration::from_millis(2000));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(2), "released");
        // A pause is a step down too: no resume within the hold.
        s.current = Choice::Paused;
        s.since_down = Some(Duration::from_millis(500));
        assert_eq!(run(5000, &[s]).0[0].choice, Choice::Paused);
        s.since_down = Some(Duration::from_secs(3));
        assert_eq!(run(5000, &[s]).0[0].choice, layer(2));
        // The hold never keeps a section from going down.
        s.current = layer(2);
        s.since_down = Some(Duration::ZERO);
        assert_eq!(run(600, &[s]).0[0].choice, layer(1));
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
        let a = allocate(
            &AllocatorConfig::default(),
            Some(Bitrate::kbps(10_000)),
            Some(Bitrate::kbps(1000)),
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
    fn without_an_estimate_every_section_gets_its_best_allowed_layer() {
        let mut s = SectionInput::video(TrackContent::Camera, &[None, None, None]);
        s.max_spatial = Some(1);
        let mut out = vec![SectionResult::default(); 1];
        allocate(&AllocatorConfig::default(), None, None, &[s], &mut out);
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
