//! The steps a video section can be given, cheapest first: the base temporal layer of the lowest
//! spatial layer (when its rate is known), then each allowed spatial layer.

use crate::Bitrate;
use crate::control::MAX_SIMULCAST_LAYERS;

use super::section::{Choice, SectionInput};

/// Most steps of one section: every spatial layer and the base temporal layer below them.
pub const MAX_STEPS: usize = MAX_SIMULCAST_LAYERS + 1;

/// One step: a spatial layer, possibly capped to a temporal layer, and what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    pub spatial: u8,
    /// `None`: every temporal layer.
    pub temporal: Option<u8>,
    pub rate: Bitrate,
}

impl Step {
    pub fn choice(self) -> Choice {
        Choice::Layer {
            spatial: self.spatial,
            temporal: self.temporal,
        }
    }

    /// Orders steps and choices: by spatial layer, then by temporal cap (none is highest).
    fn key(spatial: u8, temporal: Option<u8>) -> (u8, u8) {
        (spatial, temporal.unwrap_or(u8::MAX))
    }
}

/// The steps of one section, cheapest first (fixed size).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ladder {
    steps: [Step; MAX_STEPS],
    len: u8,
}

impl Ladder {
    /// The ladder of a section. A spatial layer whose rate is unknown is left out, except the
    /// lowest (assumed to fit until measured: something must be sent to learn its rate) and,
    /// with `unlimited`, any layer (no budget to check it against). A layer measured below a
    /// lower one counts as unknown: its encoder is restarting or held back (a publisher short of
    /// CPU shrinks its top encoding), and its rate will not stay there — taken at its word, it
    /// let a viewer behind 600 kbit/s step from h to f.
    pub fn of(s: &SectionInput, unlimited: bool) -> Ladder {
        let mut l = Ladder::default();
        let Some(top) = s.top_allowed() else {
            return l;
        };
        let cap = s.max_temporal;
        if let Some(base) = s.base_temporal
            && cap != Some(0)
        {
            l.push(Step {
                spatial: 0,
                temporal: Some(0),
                rate: base,
            });
        }
        // The highest rate measured for a lower spatial layer.
        let mut below: Option<Bitrate> = None;
        for sp in 0..=top {
            let measured = s
                .rates
                .get(usize::from(sp))
                .copied()
                .flatten()
                .filter(|&r| sp == 0 || below.is_none_or(|b| r >= b));
            if let Some(r) = measured {
                below = Some(below.map_or(r, |b| b.max(r)));
            }
            let rate = match (sp, cap, s.base_temporal, measured) {
                (0, Some(0), Some(base), _) => Some(base),
                (_, _, _, Some(r)) => Some(r),
                (0, _, _, None) => Some(Bitrate::ZERO),
                _ if unlimited => Some(Bitrate::ZERO),
                _ => None,
            };
            if let Some(rate) = rate {
                l.push(Step {
                    spatial: sp,
                    temporal: cap,
                    rate,
                });
            }
        }
        l
    }

    fn push(&mut self, s: Step) {
        if usize::from(self.len) < MAX_STEPS {
            self.steps[usize::from(self.len)] = s;
            self.len += 1;
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The step a choice corresponds to: the highest step at or below it; a layer below every
    /// step counts as the lowest (the section receives video, only the steps changed: a
    /// temporal cap was lifted on an encoding whose base layer rate is unknown). None when the
    /// choice is no layer or the ladder is empty.
    pub fn position(&self, c: Choice) -> Option<usize> {
        let Choice::Layer { spatial, temporal } = c else {
            return None;
        };
        let want = Step::key(spatial, temporal);
        let at = self
            .steps()
            .iter()
            .rposition(|s| Step::key(s.spatial, s.temporal) <= want);
        at.or((!self.is_empty()).then_some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::TrackContent;

    fn kbps(k: u64) -> Option<Bitrate> {
        Some(Bitrate::kbps(k))
    }

    #[test]
    fn steps_are_the_base_temporal_layer_then_each_spatial_layer_with_a_known_rate() {
        let mut s = SectionInput::video(TrackContent::Camera, &[kbps(150), None, kbps(1500)]);
        s.base_temporal = kbps(60);
        let l = Ladder::of(&s, false);
        let got: Vec<(u8, Option<u8>, u64)> = l
            .steps()
            .iter()
            .map(|s| (s.spatial, s.temporal, s.rate.0 / 1000))
            .collect();
        assert_eq!(got, [(0, Some(0), 60), (0, None, 150), (2, None, 1500)]);
        // Without a budget the unmeasured layer is a step too.
        assert_eq!(Ladder::of(&s, true).steps().len(), 4);
    }

    #[test]
    fn caps_limit_the_steps() {
        let mut s = SectionInput::video(TrackContent::Camera, &[kbps(150), kbps(500), kbps(1500)]);
        s.base_temporal = kbps(60);
        s.max_spatial = Some(1);
        s.max_temporal = Some(0);
        let l = Ladder::of(&s, false);
        let got: Vec<(u8, Option<u8>, u64)> = l
            .steps()
            .iter()
            .map(|s| (s.spatial, s.temporal, s.rate.0 / 1000))
            .collect();
        assert_eq!(got, [(0, Some(0), 60), (1, Some(0), 500)]);
    }

    #[test]
    fn an_unmeasured_lowest_layer_costs_nothing() {
        let s = SectionInput::video(TrackContent::Camera, &[None, None]);
        let l = Ladder::of(&s, false);
        assert_eq!(l.steps().len(), 1);
        assert_eq!(l.steps()[0].rate, Bitrate::ZERO);
    }

    #[test]
    fn a_choice_maps_to_the_highest_step_at_or_below_it() {
        let mut s = SectionInput::video(TrackContent::Camera, &[kbps(150), None, kbps(1500)]);
        s.base_temporal = kbps(60);
        let l = Ladder::of(&s, false);
        let at = |spatial, temporal| l.position(Choice::Layer { spatial, temporal });
        assert_eq!(at(0, Some(0)), Some(0));
        assert_eq!(at(0, None), Some(1));
        assert_eq!(at(1, None), Some(1), "layer 1 is not a step: the one below");
        assert_eq!(at(2, None), Some(2));
        assert_eq!(l.position(Choice::Paused), None);
    }

    #[test]
    fn a_layer_measured_below_a_lower_one_is_left_out_under_a_budget() {
        // f's encoder restarts: measured at 60 kbit/s, under h's 500.
        let s = SectionInput::video(TrackContent::Camera, &[kbps(150), kbps(500), kbps(60)]);
        let spatial = |l: &Ladder| l.steps().iter().map(|s| s.spatial).collect::<Vec<_>>();
        assert_eq!(spatial(&Ladder::of(&s, false)), vec![0, 1]);
        assert_eq!(
            spatial(&Ladder::of(&s, true)),
            vec![0, 1, 2],
            "unlimited: any layer"
        );
        // h under q: h is left out, f is compared with q.
        let s = SectionInput::video(TrackContent::Camera, &[kbps(150), kbps(100), kbps(900)]);
        assert_eq!(spatial(&Ladder::of(&s, false)), vec![0, 2]);
    }

    #[test]
    fn a_layer_below_every_step_counts_as_the_lowest() {
        // An SVC encoding without a measured base layer: a viewer capped to T0 has the step
        // (0, T0); once the cap is lifted the only step is (0, all), and T0 is still video.
        let mut s = SectionInput::video(TrackContent::Camera, &[kbps(1200)]);
        let t0 = Choice::Layer {
            spatial: 0,
            temporal: Some(0),
        };
        s.max_temporal = Some(0);
        assert_eq!(Ladder::of(&s, false).position(t0), Some(0));
        s.max_temporal = None;
        let l = Ladder::of(&s, false);
        assert_eq!(l.steps().len(), 1);
        assert_eq!(l.position(t0), Some(0));
        assert_eq!(Ladder::default().position(t0), None);
    }
}
