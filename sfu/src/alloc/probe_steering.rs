//! What a viewer's allocation asks of its send-side estimator: the desired maximum it probes
//! toward (the next step up, not the top layers: a narrow path is not flooded with a probe at
//! their rate, which sets a GCC estimate back to 0.85 × what is acknowledged), when to ask for
//! a probe again (a raise the estimator missed is retried after 1.5 s; while a step up is
//! wanted and the estimator is not application-limited, every 5 s, doubling after each probe
//! that brought no step up and after each step down, up to 60 s; while video is paused, every
//! 3 s), and how far the estimate is confirmed for stepping up (what the viewer acknowledges,
//! or a probe result of the last 10 s, which confirms one step up only).

use std::time::{Duration, Instant};

use crate::Bitrate;

use super::allocator::{Allocation, Budget};

/// The desired maximum is this much above what the next step up needs (headroom included):
/// probe results come out a little under the probed rate.
pub const PROBE_MARGIN: f64 = 0.1;
/// The first interval between probes asked for; it doubles up to [`MAX_PROBE_INTERVAL`].
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// While video is paused the interval stops growing here, and probes are asked for even when
/// the estimator is application-limited (it is: only audio flows): a resume needs a probe
/// result, and a paused viewer should not wait a minute for one.
pub const PAUSED_PROBE_INTERVAL: Duration = Duration::from_secs(3);
/// A raise of the desired maximum is asked again after this long if nothing came of it (the
/// estimator ignores a raise while it awaits an earlier result, for up to 1 s).
pub const RAISE_RETRY: Duration = Duration::from_millis(1500);
/// How long a probe result confirms the path.
pub const PROBE_RESULT_VALID: Duration = Duration::from_secs(10);
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
    /// Probes can be sent at all (the viewer has a video stream with RTX to pad on).
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
}

/// The probing state of one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSteering {
    /// The desired maximum last handed over.
    desired: Option<Bitrate>,
    /// When to ask for a probe again, and whether that retries a raise.
    next: Option<(Instant, bool)>,
    interval: Duration,
    /// The last probe result and when it was first seen.
    result: Option<(Bitrate, Instant)>,
    /// A probe result a step up already used: it confirms one step, not every step up to it
    /// (a probe into a shaped path can come out above the path's rate, and going up several
    /// layers on it congests the path).
    /// Spent results are remembered this long (`PROBE_RESULT_VALID`): a later probe may well
    /// come out at the same value.
    spent: Option<(Bitrate, Instant)>,
}

impl Default for ProbeSteering {
    fn default() -> Self {
        ProbeSteering {
            desired: None,
            next: None,
            interval: PROBE_INTERVAL,
            result: None,
            spent: None,
        }
    }
}

impl ProbeSteering {
    /// The budget for an allocation at `now`: the estimate, and how far it is confirmed for a
    /// step up (while application-limited) and for a resume (always: a keyframe into a path
    /// that just could not carry the lowest layer). Without probes nothing could confirm more
    /// than is sent, so the estimate alone decides.
    pub fn budget(
        &mut self,
        now: Instant,
        e: &EstimatorView,
        video_cap: Option<Bitrate>,
    ) -> Budget {
        if let Some(p) = e.last_probe
            && self.result.is_none_or(|(q, _)| q != p)
            && self.spent.is_none_or(|(q, at)| {
                q != p || now.saturating_duration_since(at) >= PROBE_RESULT_VALID
            })
        {
            self.result = Some((p, now));
        }
        let probed = self
            .result
            .filter(|&(_, t)| now.saturating_duration_since(t) < PROBE_RESULT_VALID)
            .map(|(p, _)| p);
        let acked = e.acked.unwrap_or(Bitrate::ZERO);
        let carried = e.can_probe.then(|| probed.map_or(acked, |p| p.max(acked)));
        Budget {
            estimate: Some(e.target),
            up_limit: carried.filter(|_| e.in_alr),
            resume_limit: carried,
            video_cap,
        }
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
        let max_interval = if totals.paused {
            PAUSED_PROBE_INTERVAL
        } else {
            MAX_PROBE_INTERVAL
        };
        if stepped_up {
            if let Some((p, _)) = self.result.take() {
                self.spent = Some((p, now));
            }
            self.interval = PROBE_INTERVAL.min(max_interval);
        } else if stepped_down {
            // The path just refused more: wait longer before asking it again.
            self.interval = (self.interval * 2).min(max_interval);
            self.next = Some((now + self.interval, false));
        }
        self.interval = self.interval.min(max_interval);
        if let Some((t, retry)) = self.next
            && t > now + max_interval
        {
            self.next = Some((now + max_interval, retry));
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
        // Application-limited, the estimator probes by itself every 5 s: only a raise it may
        // have missed is retried then.
        let due = below
            && self
                .next
                .is_none_or(|(t, retry)| now >= t && (retry || !e.in_alr || totals.paused));
        if !due {
            return ProbeRequest::None;
        }
        self.next = Some((now + self.interval, false));
        self.interval = (self.interval * 2).min(max_interval);
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
            last_probe: None,
            can_probe: true,
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
    fn a_missed_raise_is_retried_then_probes_back_off() {
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
        assert_eq!(p.after(at(16000), &e, &t, false, false), ProbeRequest::None);
        assert_eq!(
            p.after(at(16500), &e, &t, false, false),
            again,
            "10 s later"
        );
        // A step down doubles the wait again (40 s to 80 s, capped at 60 s) and restarts it.
        assert_eq!(p.after(at(17000), &e, &t, false, true), ProbeRequest::None);
        assert_eq!(
            p.after(at(76_999), &e, &t, false, false),
            ProbeRequest::None
        );
        assert_eq!(p.after(at(77_000), &e, &t, false, false), again);
        // A step up starts over at 5 s.
        assert_eq!(p.after(at(78_000), &e, &t, true, false), ProbeRequest::None);
        assert_eq!(p.after(at(137_000), &e, &t, false, false), again);
        assert_eq!(p.after(at(142_000), &e, &t, false, false), again);
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
        // The estimate already carries the next step: nothing to probe.
        assert_eq!(
            p.after(at(40_000), &view(900, false), &t, false, false),
            ProbeRequest::None
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
    fn a_probe_result_confirms_one_step_up_not_every_step_to_it() {
        let t0 = Instant::now();
        let mut p = ProbeSteering::default();
        let mut e = view(1200, true);
        e.last_probe = Some(kbps(1200));
        assert_eq!(p.budget(t0, &e, None).up_limit, Some(kbps(1200)));
        // A step up used it: the next one needs new evidence (the acknowledged 200 here).
        p.after(t0, &e, &totals(500, Some(1700), 1700), true, false);
        assert_eq!(p.budget(t0, &e, None).up_limit, Some(kbps(200)));
        // A new probe result confirms again.
        e.last_probe = Some(kbps(1800));
        assert_eq!(p.budget(t0, &e, None).up_limit, Some(kbps(1800)));
    }

    #[test]
    fn steps_up_are_confirmed_while_application_limited_and_resumes_always() {
        let t0 = Instant::now();
        let mut p = ProbeSteering::default();
        let mut e = view(1000, true);
        let b = p.budget(t0, &e, None);
        assert_eq!(
            (b.estimate, b.up_limit, b.resume_limit),
            (Some(kbps(1000)), Some(kbps(200)), Some(kbps(200)))
        );
        e.last_probe = Some(kbps(900));
        let b = p.budget(t0, &e, None);
        assert_eq!(b.up_limit, Some(kbps(900)), "a probe result confirms more");
        let b = p.budget(t0 + PROBE_RESULT_VALID, &e, None);
        assert_eq!(b.up_limit, Some(kbps(200)), "for 10 s");
        e.in_alr = false;
        let b = p.budget(t0, &e, None);
        assert_eq!((b.up_limit, b.resume_limit), (None, Some(kbps(900))));
        e.can_probe = false;
        let b = p.budget(t0, &e, None);
        assert_eq!(
            (b.up_limit, b.resume_limit),
            (None, None),
            "nothing could confirm"
        );
    }
}
