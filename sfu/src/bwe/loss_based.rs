//! Loss-based bound on the send rate (draft-ietf-rmcat-gcc-02 §6, libwebrtc
//! `SendSideBandwidthEstimation` v1 thresholds): above 10 % loss the bound drops to
//! `target × (1 − 0.5 · loss)` (at most once per 300 ms + RTT); below 2 % it may grow by 8 % per
//! second, and once it is past the delay-based estimate it is lifted; in between it holds.
//!
//! Unlike libwebrtc v1, the bound is kept apart from the target instead of being the target:
//! while loss stays low the delay-based estimate alone decides, so a probe result takes effect
//! at once instead of at 8 % per second.

use std::time::{Duration, Instant};

use crate::types::Bitrate;

/// Parameters of the loss-based bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossBasedConfig {
    /// Loss below which the bound may grow.
    pub low_loss: f64,
    /// Loss above which the bound decreases.
    pub high_loss: f64,
    /// Growth per second while loss is low.
    pub increase_per_second: f64,
    /// Least spacing of decreases (the RTT is added).
    pub decrease_interval: Duration,
}

impl Default for LossBasedConfig {
    fn default() -> Self {
        LossBasedConfig {
            low_loss: 0.02,
            high_loss: 0.10,
            increase_per_second: 1.08,
            decrease_interval: Duration::from_millis(300),
        }
    }
}

/// What the last loss report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossAction {
    #[default]
    Hold,
    Increase,
    Decrease,
}

/// The loss-based bound. Fixed-size state.
#[derive(Debug, Clone)]
pub struct LossBased {
    cfg: LossBasedConfig,
    bound: Option<f64>,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
    last_loss: f64,
    last_action: LossAction,
}

impl LossBased {
    pub fn new(cfg: LossBasedConfig) -> Self {
        LossBased {
            cfg,
            bound: None,
            last_update: None,
            last_decrease: None,
            last_loss: 0.0,
            last_action: LossAction::Hold,
        }
    }

    /// The bound; `None` when loss does not limit the rate.
    pub fn bound(&self) -> Option<Bitrate> {
        self.bound.map(|b| Bitrate(b as u64))
    }

    /// The loss fraction of the last report.
    pub fn last_loss(&self) -> f64 {
        self.last_loss
    }

    pub fn last_action(&self) -> LossAction {
        self.last_action
    }

    /// Folds in a loss report: `loss` in 0..=1 over the last interval, `target` the current
    /// target (the base of a decrease), `delay_based` the delay-based estimate (the bound is
    /// lifted once it grows past it).
    pub fn on_loss_report(
        &mut self,
        now: Instant,
        loss: f64,
        rtt: Duration,
        target: Bitrate,
        delay_based: Bitrate,
    ) -> LossAction {
        let loss = loss.clamp(0.0, 1.0);
        let elapsed = self
            .last_update
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        self.last_update = Some(now);
        self.last_loss = loss;
        let action = if loss < self.cfg.low_loss {
            if let Some(b) = self.bound {
                let grown = b * self.cfg.increase_per_second.powf(elapsed.as_secs_f64())
                    + 1000.0 * elapsed.as_secs_f64();
                self.bound = (grown < delay_based.0 as f64).then_some(grown);
            }
            LossAction::Increase
        } else if loss > self.cfg.high_loss {
            let due = self.last_decrease.is_none_or(|t| {
                now.saturating_duration_since(t) >= self.cfg.decrease_interval + rtt
            });
            if due {
                let base = self
                    .bound
                    .map_or(target.0 as f64, |b| b.min(target.0 as f64));
                self.bound = Some(base * (1.0 - 0.5 * loss));
                self.last_decrease = Some(now);
                LossAction::Decrease
            } else {
                LossAction::Hold
            }
        } else {
            LossAction::Hold
        };
        self.last_action = action;
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    #[test]
    fn high_loss_decreases_by_half_the_loss() {
        let t0 = Instant::now();
        let mut l = LossBased::new(LossBasedConfig::default());
        let a = l.on_loss_report(t0, 0.2, RTT, Bitrate::kbps(1000), Bitrate::kbps(1000));
        assert_eq!(a, LossAction::Decrease);
        assert_eq!(l.bound(), Some(Bitrate::kbps(900)));
        // Not again before 300 ms + RTT.
        let a = l.on_loss_report(
            t0 + Duration::from_millis(200),
            0.2,
            RTT,
            Bitrate::kbps(900),
            Bitrate::kbps(1000),
        );
        assert_eq!(a, LossAction::Hold);
        let a = l.on_loss_report(
            t0 + Duration::from_millis(400),
            0.2,
            RTT,
            Bitrate::kbps(900),
            Bitrate::kbps(1000),
        );
        assert_eq!(a, LossAction::Decrease);
        assert_eq!(l.bound(), Some(Bitrate::kbps(810)));
    }

    #[test]
    fn moderate_loss_holds_and_low_loss_lifts_the_bound() {
        let t0 = Instant::now();
        let mut l = LossBased::new(LossBasedConfig::default());
        l.on_loss_report(t0, 0.2, RTT, Bitrate::kbps(1000), Bitrate::kbps(1000));
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_millis(100);
            let a = l.on_loss_report(t, 0.05, RTT, Bitrate::kbps(900), Bitrate::kbps(1000));
            assert_eq!(a, LossAction::Hold);
        }
        assert_eq!(l.bound(), Some(Bitrate::kbps(900)));
        let mut lifted_after = None;
        for i in 1..=30 {
            t += Duration::from_millis(100);
            l.on_loss_report(t, 0.0, RTT, Bitrate::kbps(900), Bitrate::kbps(1000));
            if l.bound().is_none() {
                lifted_after = Some(i);
                break;
            }
        }
        // 900 → 1000 at 8 %/s takes about 1.4 s.
        let n = lifted_after.expect("bound lifted");
        assert!((12..=16).contains(&n), "lifted after {n} reports");
    }

    #[test]
    fn no_loss_never_bounds() {
        let t0 = Instant::now();
        let mut l = LossBased::new(LossBasedConfig::default());
        l.on_loss_report(t0, 0.0, RTT, Bitrate::kbps(1000), Bitrate::kbps(1000));
        assert_eq!(l.bound(), None);
    }
}
