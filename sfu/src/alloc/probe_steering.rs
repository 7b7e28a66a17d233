//! What a viewer's allocation asks of its send-side estimator: the desired maximum it probes
//! toward (the next step up, not the top layers: a narrow path is not flooded with a probe at
//! their rate, which sets a GCC estimate back to 0.85 × what is acknowledged), when to ask for
//! a probe again (a raise the estimator missed is retried after 1.5 s; while a step up is
//! wanted and the estimator is not application-limited, every 5 s; while video is paused,
//! every 3 s), when to run a rate trial (the estimate carries the next step up but nothing has
//! shown that the path does), and how far the path is confirmed: a step up needs what the
//! viewer acknowledges (now, or within the last 10 s while the estimate stayed above it: a
//! viewer that lowered its own layers and raises them again goes straight back), or a passed
//! rate trial of the last 3 s, which confirms one step up only; a resume needs the same or a
//! probe result of the last 10 s.
//!
//! Probe results alone never confirm a step up: a 15 ms cluster into a token-bucket shaper, or
//! toward a browser whose arrival times come in bunches, can read twice the path's rate.

use std::time::{Duration, Instant};

use crate::Bitrate;
use crate::bwe::TrialResult;

use super::allocator::{Allocation, Budget};

/// The desired maximum is this much above what the next step up needs (headroom included):
/// probe results come out a little under the probed rate.
pub const PROBE_MARGIN: f64 = 0.1;
/// The interval between probes asked for while a step up is wanted. Probes are short and
/// cheap, and no longer step a viewer up by themselves (a trial must pass), so they are not
/// backed off: a path whose capacity returns is found within this.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// While video is paused probes are asked for this often, even when the estimator is
/// application-limited (it is: only audio flows): a resume needs a probe result.
pub const PAUSED_PROBE_INTERVAL: Duration = Duration::from_secs(3);
/// A raise of the desired maximum is asked again after this long if nothing came of it (the
/// estimator ignores a raise while it awaits an earlier result, for up to 1 s).
pub const RAISE_RETRY: Duration = Duration::from_millis(1500);
/// How long a probe result confirms the path for a resume.
pub const PROBE_RESULT_VALID: Duration = Duration::from_secs(10);
/// How long the highest acknowledged rate confirms the path, while the estimate stays above it.
pub const CARRIED_VALID: Duration = Duration::from_secs(10);
/// How long a passed rate trial confirms the next step up.
pub const TRIAL_RESULT_VALID: Duration = Duration::from_secs(3);
/// A trial sent at less than this share of its rate did not test the path (when this share of
/// what was sent arrived).
const UNDERSENT_SHARE: f64 = 0.9;
/// The least time between the starts of two trials.
pub const TRIAL_SPACING: Duration = Duration::from_secs(2);
/// A step down this soon after a step up means the step up failed.
pub const FAILED_UP_WINDOW: Duration = Duration::from_secs(10);
/// After a failed step up, trials ask this much more than the step needs (a path that carried
/// the step's trial but not the step itself — its keyframe, its bursts — is not tried again at
/// the same bar), at most every [`STRICT_TRIAL_SPACING`]; one that passes lifts the section's
/// holds, so a path whose capacity returned is used at once.
pub const STRICT_MARGIN: f64 = 0.3;
pub const STRICT_TRIAL_SPACING: Duration = Duration::from_secs(3);
/// A new desired maximum is handed over only when it moved by more than this share (measured
/// rates wobble; every raise starts a probe).
const TARGET_CHANGE: f64 = 0.05;

/// The estimator's state as the steering needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EstimatorView {
    pub target: Bitrate,
    /// The rate the viewer acknowledges.
    pub acked: Option<Bitrate>,
    /// The sender is application-limited: the estimate has not been tested against the path
    /// (GCC lets it rise to 1.5 × what is acknowledged).
    pub in_alr: bool,
    /// The last probe result.
    pub last_probe: Option<Bitrate>,
    /// The last rate trial's result, and whether one is running.
    pub last_trial: Option<TrialResult>,
    pub trialing: bool,
    /// Probes and trials can be sent at all (the viewer has a video stream with RTX to pad
    /// on).
    pub can_probe: bool,
}

/// What to tell the estimator after an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeRequest {
    /// Nothing.
    None,
    /// Set the desired maximum (a raise above the estimate starts a probe).
    SetDesired(Bitrate),
    /// Ask for a probe again at an unchanged maximum: lower it to `from`, then raise it to
    /// `to`.
    Reraise { from: Bitrate, to: Bitrate },
    /// Run a rate trial at this rate: media topped up with padding for a short window.
    Trial(Bitrate),
}

/// The probing state of one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeSteering {
    /// The desired maximum last handed over.
    desired: Option<Bitrate>,
    /// When to ask for a probe again, and whether that retries a raise.
    next: Option<(Instant, bool)>,
    /// The last probe result and when it was first seen.
    result: Option<(Bitrate, Instant)>,
    /// The rate a passed trial confirmed and when; taken by the step up it allows.
    confirmed: Option<(Bitrate, Instant)>,
    /// The highest rate acknowledged within [`CARRIED_VALID`] and when; forgotten when the
    /// estimate falls below it (the path may have shrunk).
    carried: Option<(Bitrate, Instant)>,
    /// The id of the last trial result seen.
    seen_trial: u32,
    /// When the last trial was asked for.
    trial_at: Option<Instant>,
    /// When a section last stepped up.
    last_up: Option<Instant>,
    /// A step up failed: trials ask [`STRICT_MARGIN`] more until one passes.
    strict: bool,
    /// The running trial was a strict one.
    trial_strict: bool,
    /// A strict trial passed: the sections' holds are to be lifted.
    release_holds: bool,
    /// The last trial fell short of its rate at the sender and was retried without waiting.
    undersent_retry: bool,
}

impl ProbeSteering {
    /// The budget for an allocation at `now`: the estimate, how far it is confirmed for a step
    /// up (what is acknowledged, or a passed trial) and for a resume (a keyframe into a path
    /// that just could not carry the lowest layer: what is acknowledged, or a probe result).
    /// Without probes or trials nothing could confirm more than is sent, so the estimate alone
    /// decides.
    pub fn budget(
        &mut self,
        now: Instant,
        e: &EstimatorView,
        video_cap: Option<Bitrate>,
    ) -> Budget {
        if let Some(p) = e.last_probe
            && self.result.is_none_or(|(q, _)| q != p)
        {
            self.result = Some((p, now));
        }
        if let Some(t) = e.last_trial
            && t.id != self.seen_trial
        {
            self.seen_trial = t.id;
            // A trial whose sender fell short of its rate (padding could not keep up) did not
            // test the path: it confirms what arrived, and is tried again at once (once).
            let undersent = !t.passed
                && !t.aborted
                && (t.sent.0 as f64) < UNDERSENT_SHARE * t.rate.0 as f64
                && (t.received.0 as f64) >= UNDERSENT_SHARE * t.sent.0 as f64;
            self.confirmed = (t.passed || undersent).then_some((t.received, now));
            if undersent && !self.undersent_retry {
                self.trial_at = None;
                self.undersent_retry = true;
            } else {
                self.undersent_retry = false;
            }
            if t.passed && self.trial_strict {
                self.strict = false;
                self.release_holds = true;
            }
        }
        let fresh = |r: Option<(Bitrate, Instant)>, valid: Duration| {
            r.filter(|&(_, t)| now.saturating_duration_since(t) < valid)
                .map(|(p, _)| p)
        };
        if self.carried.is_some_and(|(c, _)| e.target < c) {
            self.carried = None;
        }
        if let Some(a) = e.acked
            && self
                .carried
                .is_none_or(|(c, t)| a >= c || now.saturating_duration_since(t) >= CARRIED_VALID)
            && a <= e.target
        {
            self.carried = Some((a, now));
        }
        let acked = e
            .acked
            .unwrap_or(Bitrate::ZERO)
            .max(fresh(self.carried, CARRIED_VALID).unwrap_or(Bitrate::ZERO));
        let with = |x: Option<Bitrate>| x.map_or(acked, |p| p.max(acked));
        let up = with(fresh(self.confirmed, TRIAL_RESULT_VALID));
        let resume = with(fresh(self.result, PROBE_RESULT_VALID));
        Budget {
            estimate: Some(e.target),
            up_limit: e.can_probe.then_some(up),
            resume_limit: e.can_probe.then_some(resume),
            video_cap,
        }
    }

    /// Whether `t` is a trial result the budget has not yet taken in.
    pub fn is_new_trial(&self, t: &TrialResult) -> bool {
        t.id != self.seen_trial
    }

    /// Whether a strict trial passed since the last call: the viewer's sections may step up
    /// without waiting out their holds.
    pub fn take_release_holds(&mut self) -> bool {
        std::mem::take(&mut self.release_holds)
    }

    /// After an allocation with `totals` that stepped some section up or down: what to tell
    /// the estimator.
    pub fn after(
        &mut self,
        now: Instant,
        e: &EstimatorView,
        totals: &Allocation,
        stepped_up: bool,
        stepped_down: bool,
    ) -> ProbeRequest {
        if totals.desired.0 == 0 {
            return ProbeRequest::None; // nothing measured yet
        }
        let interval = if totals.paused {
            PAUSED_PROBE_INTERVAL
        } else {
            PROBE_INTERVAL
        };
        if stepped_up {
            // The trial's confirmation is spent on this step.
            self.confirmed = None;
            self.last_up = Some(now);
        } else if stepped_down {
            self.next = Some((now + interval, false));
            if self
                .last_up
                .is_some_and(|t| now.saturating_duration_since(t) < FAILED_UP_WINDOW)
            {
                self.strict = true;
                self.last_up = None;
            }
        }
        if let Some((t, retry)) = self.next
            && t > now + interval
        {
            self.next = Some((now + interval, retry));
        }
        let want = totals.next_up.map_or(totals.desired, |n| {
            Bitrate((n.0 as f64 * (1.0 + PROBE_MARGIN)) as u64)
        });
        let moved = self
            .desired
            .is_none_or(|p| (want.0 as f64 - p.0 as f64).abs() > TARGET_CHANGE * p.0 as f64);
        let raised = moved && self.desired.is_none_or(|p| want > p);
        let below = totals.next_up.is_some() && e.target < want;
        if moved {
            self.desired = Some(want);
            if raised && below {
                self.next = Some((now + RAISE_RETRY, true));
            }
            return ProbeRequest::SetDesired(want);
        }
        // The estimate carries the next step up, but nothing shows that the path does: try it.
        if let Some(next_up) = totals.next_up
            && !totals.paused
            && e.can_probe
            && !e.trialing
            && e.target >= next_up
            && self.confirmed.is_none_or(|(c, t)| {
                c < next_up || now.saturating_duration_since(t) >= TRIAL_RESULT_VALID
            })
            && e.acked.is_none_or(|a| a < next_up)
            && self.carried.is_none_or(|(c, t)| {
                c < next_up || now.saturating_duration_since(t) >= CARRIED_VALID
            })
            && self.trial_at.is_none_or(|t| {
                let spacing = if self.strict {
                    STRICT_TRIAL_SPACING
                } else {
                    TRIAL_SPACING
                };
                now.saturating_duration_since(t) >= spacing
            })
        {
            self.trial_at = Some(now);
            self.trial_strict = self.strict;
            let rate = if self.strict {
                Bitrate((want.0 as f64 * (1.0 + STRICT_MARGIN)) as u64)
            } else {
                want.max(next_up)
            };
            return ProbeRequest::Trial(rate);
        }
        // Application-limited, the estimator probes by itself every 5 s: only a raise it may
        // have missed is retried then.
        let due = below
            && self
                .next
                .is_none_or(|(t, retry)| now >= t && (retry || !e.in_alr || totals.paused));
        if !due {
            return ProbeRequest::None;
        }
        self.next = Some((now + interval, false));
        ProbeRequest::Reraise {
            from: totals.allocated,
            to: want,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kbps(k: u64) -> Bitrate {
        Bitrate::kbps(k)
    }

    fn totals(allocated: u64, next_up: Option<u64>, desired: u64) -> Allocation {
        Allocation {
            allocated: kbps(allocated),
            desired: kbps(desired),
            next_up: next_up.map(kbps),
            ..Allocation::default()
        }
    }

    fn view(target: u64, in_alr: bool) -> EstimatorView {
        EstimatorView {
            target: kbps(target),
            acked: Some(kbps(200)),
            in_alr,
            can_probe: true,
            ..EstimatorView::default()
        }
    }

    fn trial(id: u32, received: u64, passed: bool) -> TrialResult {
        TrialResult {
            id,
            rate: kbps(836),
            sent: kbps(836),
            received: kbps(received),
            aborted: !passed,
            passed,
        }
    }

    #[test]
    fn the_desired_maximum_is_the_next_step_up_with_a_margin() {
        let t0 = Instant::now();
        let mut p = ProbeSteering::default();
        let r = p.after(
            t0,
            &view(300, false),
            &totals(240, Some(760), 1600),
            false,
            false,
        );
        assert_eq!(r, ProbeRequest::SetDesired(kbps(836)));
        // At the best layers: the desired rate itself.
        let r = p.after(
            t0,
            &view(3000, false),
            &totals(1600, None, 1600),
            true,
            false,
        );
        assert_eq!(r, ProbeRequest::SetDesired(kbps(1600)));
        // Small wobbles are not handed over.
        let r = p.after(
            t0,
            &view(3000, false),
            &totals(1620, None, 1620),
            false,
            false,
        );
        assert_eq!(r, ProbeRequest::None);
    }

    #[test]
    fn a_missed_raise_is_retried_then_probed_every_five_seconds() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProbeSteering::default();
        let t = totals(240, Some(760), 1600);
        let e = view(300, false);
        assert!(matches!(
            p.after(at(0), &e, &t, false, false),
            ProbeRequest::SetDesired(_)
        ));
        assert_eq!(p.after(at(1000), &e, &t, false, false), ProbeRequest::None);
        let again = ProbeRequest::Reraise {
            from: kbps(240),
            to: kbps(836),
        };
        assert_eq!(
            p.after(at(1500), &e, &t, false, false),
            again,
            "the raise retried"
        );
        assert_eq!(p.after(at(6000), &e, &t, false, false), ProbeRequest::None);
        assert_eq!(p.after(at(6500), &e, &t, false, false), again, "5 s later");
        assert_eq!(
            p.after(at(11_000), &e, &t, false, false),
            ProbeRequest::None
        );
        assert_eq!(
            p.after(at(11_500), &e, &t, false, false),
            again,
            "5 s later"
        );
        // A step down restarts the wait.
        assert_eq!(p.after(at(12_000), &e, &t, false, true), ProbeRequest::None);
        assert_eq!(
            p.after(at(16_999), &e, &t, false, false),
            ProbeRequest::None
        );
        assert_eq!(p.after(at(17_000), &e, &t, false, false), again);
    }

    #[test]
    fn no_probe_is_asked_for_while_application_limited_or_when_the_estimate_suffices() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProbeSteering::default();
        let t = totals(240, Some(760), 1600);
        p.after(at(0), &view(300, true), &t, false, false);
        // The retry of the raise still happens...
        assert!(matches!(
            p.after(at(1500), &view(300, true), &t, false, false),
            ProbeRequest::Reraise { .. }
        ));
        // ...but not the periodic asks.
        assert_eq!(
            p.after(at(20_000), &view(300, true), &t, false, false),
            ProbeRequest::None
        );
        // The estimate already carries the next step: no probe, a trial of the path.
        assert_eq!(
            p.after(at(40_000), &view(900, false), &t, false, false),
            ProbeRequest::Trial(kbps(836))
        );
    }

    #[test]
    fn a_trial_is_asked_for_when_the_estimate_carries_the_next_step_and_spaced() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProbeSteering::default();
        let t = totals(240, Some(760), 1600);
        let mut e = view(900, true);
        assert!(matches!(
            p.after(at(0), &e, &t, false, false),
            ProbeRequest::SetDesired(_)
        ));
        assert_eq!(
            p.after(at(500), &e, &t, false, false),
            ProbeRequest::Trial(kbps(836))
        );
        // Not while one runs, nor sooner than 2 s after the last.
        e.trialing = true;
        assert_eq!(p.after(at(1000), &e, &t, false, false), ProbeRequest::None);
        e.trialing = false;
        e.last_trial = Some(trial(1, 600, false));
        p.budget(at(1000), &e, None);
        assert_eq!(p.after(at(1500), &e, &t, false, false), ProbeRequest::None);
        assert_eq!(
            p.after(at(2500), &e, &t, false, false),
            ProbeRequest::Trial(kbps(836))
        );
        // What is acknowledged already carries it: no trial.
        e.acked = Some(kbps(800));
        assert_eq!(p.after(at(9000), &e, &t, false, false), ProbeRequest::None);
        // Nothing to pad on: no trial.
        e.acked = Some(kbps(200));
        e.can_probe = false;
        assert_eq!(
            p.after(at(12_000), &e, &t, false, false),
            ProbeRequest::None
        );
    }

    #[test]
    fn a_passed_trial_confirms_one_step_up_and_a_probe_result_only_a_resume() {
        let t0 = Instant::now();
        let mut p = ProbeSteering::default();
        let mut e = view(1200, true);
        e.last_probe = Some(kbps(1200));
        let b = p.budget(t0, &e, None);
        assert_eq!(
            (b.up_limit, b.resume_limit),
            (Some(kbps(200)), Some(kbps(1200))),
            "a probe result confirms a resume, not a step up"
        );
        e.last_trial = Some(trial(1, 850, true));
        assert_eq!(p.budget(t0, &e, None).up_limit, Some(kbps(850)));
        // A step up used it: the next one needs new evidence (the acknowledged 200 here).
        p.after(t0, &e, &totals(500, Some(1700), 1700), true, false);
        assert_eq!(p.budget(t0, &e, None).up_limit, Some(kbps(200)));
        // A failed trial confirms nothing.
        e.last_trial = Some(trial(2, 600, false));
        assert_eq!(p.budget(t0, &e, None).up_limit, Some(kbps(200)));
        // A passed one, for 3 s.
        e.last_trial = Some(trial(3, 1800, true));
        assert_eq!(p.budget(t0, &e, None).up_limit, Some(kbps(1800)));
        let later = t0 + TRIAL_RESULT_VALID;
        assert_eq!(p.budget(later, &e, None).up_limit, Some(kbps(200)));
    }

    #[test]
    fn a_trial_the_sender_fell_short_of_is_retried_at_once_and_confirms_what_arrived() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProbeSteering::default();
        let t = totals(640, Some(1900), 1750);
        let mut e = view(2500, true);
        p.after(at(0), &e, &t, false, false);
        assert_eq!(
            p.after(at(500), &e, &t, false, false),
            ProbeRequest::Trial(kbps(2090))
        );
        // Only 1070 of 2090 went out, and all of it arrived.
        let short = |id| TrialResult {
            id,
            rate: kbps(2090),
            sent: kbps(1070),
            received: kbps(1070),
            aborted: false,
            passed: false,
        };
        e.last_trial = Some(short(1));
        assert_eq!(p.budget(at(800), &e, None).up_limit, Some(kbps(1070)));
        assert_eq!(
            p.after(at(1000), &e, &t, false, false),
            ProbeRequest::Trial(kbps(2090)),
            "no 2 s wait"
        );
        // Short again: now the usual spacing.
        e.last_trial = Some(short(2));
        p.budget(at(1300), &e, None);
        assert_eq!(p.after(at(1500), &e, &t, false, false), ProbeRequest::None);
        assert_eq!(
            p.after(at(3000), &e, &t, false, false),
            ProbeRequest::Trial(kbps(2090))
        );
        // A trial that went out at its rate and arrived short failed: it confirms nothing.
        e.last_trial = Some(TrialResult {
            id: 3,
            sent: kbps(2090),
            received: kbps(1500),
            ..short(3)
        });
        assert_eq!(p.budget(at(3300), &e, None).up_limit, Some(kbps(200)));
        assert_eq!(p.after(at(3500), &e, &t, false, false), ProbeRequest::None);
    }

    #[test]
    fn a_rate_acknowledged_recently_confirms_a_step_back_up_while_the_estimate_holds() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProbeSteering::default();
        // All layers flow: 1600 acknowledged under a 1800 estimate.
        let mut e = view(1800, false);
        e.acked = Some(kbps(1600));
        assert_eq!(p.budget(at(0), &e, None).up_limit, Some(kbps(1600)));
        // The viewer lowers its own layers: 400 acknowledged, the estimate unchanged.
        e.acked = Some(kbps(400));
        assert_eq!(p.budget(at(3000), &e, None).up_limit, Some(kbps(1600)));
        // Nor is a trial needed for a step the carried rate covers.
        let t = totals(400, Some(1500), 1600);
        p.after(at(3000), &e, &t, false, false);
        assert_eq!(p.after(at(3100), &e, &t, false, false), ProbeRequest::None);
        // 10 s after it was last carried, only what is acknowledged now counts.
        assert_eq!(p.budget(at(10_000), &e, None).up_limit, Some(kbps(400)));

        // The estimate falling below the carried rate forgets it at once.
        let mut p = ProbeSteering::default();
        e.acked = Some(kbps(1600));
        p.budget(at(0), &e, None);
        e.acked = Some(kbps(400));
        e.target = kbps(1200);
        assert_eq!(p.budget(at(1000), &e, None).up_limit, Some(kbps(400)));
        e.target = kbps(1800);
        assert_eq!(p.budget(at(2000), &e, None).up_limit, Some(kbps(400)));
        // An acknowledged rate above the estimate (a burst) is not taken as carried.
        e.acked = Some(kbps(2000));
        p.budget(at(2100), &e, None);
        e.acked = Some(kbps(400));
        assert_eq!(p.budget(at(2200), &e, None).up_limit, Some(kbps(400)));
    }

    #[test]
    fn after_a_failed_step_up_trials_ask_more_and_a_pass_lifts_the_holds() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProbeSteering::default();
        let t = totals(240, Some(760), 1600);
        let mut e = view(900, true);
        p.after(at(0), &e, &t, false, false);
        assert_eq!(
            p.after(at(100), &e, &t, true, false),
            ProbeRequest::Trial(kbps(836))
        );
        // Down 2.9 s after going up: the step up failed.
        assert_eq!(p.after(at(3000), &e, &t, false, true), ProbeRequest::None);
        assert_eq!(p.after(at(3050), &e, &t, false, false), ProbeRequest::None);
        assert_eq!(
            p.after(at(3100), &e, &t, false, false),
            ProbeRequest::Trial(Bitrate(1_086_800)),
            "836 kbit/s and 30 % more, 3 s after the last trial"
        );
        e.last_trial = Some(trial(1, 700, false));
        p.budget(at(3500), &e, None);
        assert!(!p.take_release_holds());
        assert_eq!(p.after(at(6000), &e, &t, false, false), ProbeRequest::None);
        assert_eq!(
            p.after(at(6100), &e, &t, false, false),
            ProbeRequest::Trial(Bitrate(1_086_800))
        );
        e.last_trial = Some(trial(2, 1100, true));
        p.budget(at(6500), &e, None);
        assert!(p.take_release_holds());
        assert!(!p.take_release_holds(), "once");
        assert_eq!(
            p.after(at(9600), &e, &t, false, false),
            ProbeRequest::Trial(kbps(836)),
            "back to the plain bar"
        );
    }

    #[test]
    fn a_paused_viewer_is_probed_every_few_seconds_even_while_application_limited() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProbeSteering::default();
        let paused = Allocation {
            paused: true,
            ..totals(50, Some(215), 1600)
        };
        // Only audio flows, so the estimator is application-limited.
        let e = view(120, true);
        assert!(matches!(
            p.after(at(0), &e, &paused, false, true),
            ProbeRequest::SetDesired(_)
        ));
        let mut asks = 0;
        for ms in (100..30_000).step_by(100) {
            if matches!(
                p.after(at(ms), &e, &paused, false, false),
                ProbeRequest::Reraise { .. }
            ) {
                asks += 1;
            }
        }
        assert!(
            (8..=20).contains(&asks),
            "{asks} probes in 30 s while paused (every <= 3 s)"
        );
    }

    #[test]
    fn without_probes_the_estimate_alone_decides() {
        let t0 = Instant::now();
        let mut p = ProbeSteering::default();
        let mut e = view(1000, true);
        e.can_probe = false;
        e.last_probe = Some(kbps(900));
        let b = p.budget(t0, &e, None);
        assert_eq!(
            (b.estimate, b.up_limit, b.resume_limit),
            (Some(kbps(1000)), None, None)
        );
    }
}
