//! Probe controller (libwebrtc `ProbeController`; draft-ietf-rmcat-gcc-02 leaves probing to the
//! implementation): decides when to send a burst of packets at a rate above the estimate to
//! find out quickly whether the path carries it — at start (3× and 6× the start rate), again
//! at twice a result that reached 70 % of the probed rate, when the caller raises its desired
//! maximum (a higher layer might fit), and every 5 s while the sender is application-limited.

use std::time::{Duration, Instant};

use crate::types::Bitrate;

/// Identifies one probe cluster; packets sent for it carry the id to the estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ProbeId(pub u32);

/// A burst to send at `rate`: at least `min_packets` packets and `min_bytes` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCluster {
    pub id: ProbeId,
    pub rate: Bitrate,
    pub min_packets: u32,
    pub min_bytes: usize,
}

/// Parameters of the probe controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeConfig {
    /// Multipliers of the start rate for the initial probes.
    pub initial: [f64; 2],
    /// A result above this fraction of the probed rate triggers a probe at twice the result.
    pub further_fraction: f64,
    /// How long a probe's result is awaited.
    pub result_timeout: Duration,
    /// Spacing of probes while application-limited.
    pub alr_interval: Duration,
    /// Multiplier of the estimate for ALR probes.
    pub alr_scale: f64,
    /// Least packets per cluster.
    pub min_packets: u32,
    /// Least duration of a cluster at its rate (sets `min_bytes`).
    pub min_duration: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            initial: [3.0, 6.0],
            further_fraction: 0.7,
            result_timeout: Duration::from_secs(1),
            alr_interval: Duration::from_secs(5),
            alr_scale: 2.0,
            min_packets: 5,
            min_duration: Duration::from_millis(15),
        }
    }
}

/// Clusters that can wait to be taken by the pacer.
const QUEUE: usize = 4;

/// The probe controller. Fixed-size state.
#[derive(Debug, Clone)]
pub struct ProbeController {
    cfg: ProbeConfig,
    queue: [Option<ProbeCluster>; QUEUE],
    next_id: u32,
    started: bool,
    /// The highest rate probed in the current round and when, while its result is awaited.
    waiting: Option<(Bitrate, Instant)>,
    last_probe: Option<Instant>,
    max: Bitrate,
    desired_max: Option<Bitrate>,
}

impl ProbeController {
    /// A controller that probes up to `max`.
    pub fn new(cfg: ProbeConfig, max: Bitrate) -> Self {
        ProbeController {
            cfg,
            queue: [None; QUEUE],
            next_id: 1,
            started: false,
            waiting: None,
            last_probe: None,
            max,
            desired_max: None,
        }
    }

    /// The ceiling of probing: the desired maximum when set, else the configured maximum.
    fn ceiling(&self) -> Bitrate {
        self.desired_max.map_or(self.max, |d| d.min(self.max))
    }

    /// Schedules the initial probes (once).
    pub fn on_start(&mut self, now: Instant, start: Bitrate) {
        if self.started {
            return;
        }
        self.started = true;
        let [a, b] = self.cfg.initial;
        let s = start.0 as f64;
        self.schedule(now, &[Bitrate((s * a) as u64), Bitrate((s * b) as u64)]);
    }

    /// A new estimate: when it reached most of the last probed rate, probe at twice it.
    pub fn on_estimate(&mut self, now: Instant, estimate: Bitrate) {
        let Some((rate, since)) = self.waiting else {
            return;
        };
        if now.saturating_duration_since(since) >= self.cfg.result_timeout {
            self.waiting = None;
            return;
        }
        if estimate.0 as f64 > self.cfg.further_fraction * rate.0 as f64 {
            self.waiting = None;
            // Once a probe at the ceiling succeeded there is nothing higher to learn
            // (libwebrtc probes further only below its maximum).
            let next = Bitrate(estimate.0.saturating_mul(2)).min(self.ceiling());
            if next > rate {
                self.schedule(now, &[next]);
            }
        }
    }

    /// The caller's wish changed; a raise above the estimate is probed at the new maximum.
    pub fn set_desired_max(&mut self, now: Instant, desired: Bitrate, estimate: Bitrate) {
        self.handle_timeout(now);
        let old = self.desired_max.replace(desired);
        let raised = old.is_none_or(|o| desired > o);
        if raised && self.started && estimate < desired && self.waiting.is_none() {
            self.schedule(now, &[desired]);
        }
    }

    /// Periodic check: while application-limited since `alr_since`, probe every interval.
    pub fn on_alr(&mut self, now: Instant, alr_since: Option<Instant>, estimate: Bitrate) {
        self.handle_timeout(now);
        let Some(since) = alr_since else { return };
        if self.waiting.is_some() {
            return;
        }
        let last = self.last_probe.map_or(since, |p| p.max(since));
        if now.saturating_duration_since(last) >= self.cfg.alr_interval {
            let rate = Bitrate((estimate.0 as f64 * self.cfg.alr_scale) as u64);
            self.schedule(now, &[rate]);
            // Even a probe above the ceiling (not sent) waits out the interval.
            self.last_probe = Some(now);
        }
    }

    /// When the controller next needs [`ProbeController::on_alr`] or a result timeout.
    pub fn next_check(&self, alr_since: Option<Instant>) -> Option<Instant> {
        if let Some((_, t)) = self.waiting {
            // No ALR probe while a result is awaited.
            return Some(t + self.cfg.result_timeout);
        }
        alr_since.map(|s| self.last_probe.map_or(s, |p| p.max(s)) + self.cfg.alr_interval)
    }

    /// Drops a result wait that timed out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, since)) = self.waiting
            && now.saturating_duration_since(since) >= self.cfg.result_timeout
        {
            self.waiting = None;
        }
    }

    /// The next cluster to send.
    pub fn poll_probe(&mut self) -> Option<ProbeCluster> {
        let i = self.queue.iter().position(Option::is_some)?;
        let c = self.queue[i].take();
        self.queue[i..].rotate_left(1);
        c
    }

    fn schedule(&mut self, now: Instant, rates: &[Bitrate]) {
        let ceiling = self.ceiling();
        let mut highest = None;
        for &r in rates {
            let r = r.min(ceiling);
            if highest.is_some_and(|h| r <= h) || r.0 == 0 {
                continue;
            }
            let Some(slot) = self.queue.iter_mut().find(|s| s.is_none()) else {
                break;
            };
            let min_bytes = (r.0 as f64 * self.cfg.min_duration.as_secs_f64() / 8.0) as usize;
            *slot = Some(ProbeCluster {
                id: ProbeId(self.next_id),
                rate: r,
                min_packets: self.cfg.min_packets,
                min_bytes,
            });
            self.next_id = self.next_id.wrapping_add(1).max(1);
            highest = Some(r);
        }
        if let Some(h) = highest {
            self.waiting = Some((h, now));
            self.last_probe = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(p: &mut ProbeController) -> Vec<u64> {
        std::iter::from_fn(|| p.poll_probe())
            .map(|c| c.rate.0)
            .collect()
    }

    #[test]
    fn initial_probes_are_three_and_six_times_the_start_rate() {
        let t0 = Instant::now();
        let mut p = ProbeController::new(ProbeConfig::default(), Bitrate::kbps(10_000));
        p.on_start(t0, Bitrate::kbps(300));
        assert_eq!(drain(&mut p), [900_000, 1_800_000]);
        p.on_start(t0, Bitrate::kbps(300));
        assert!(drain(&mut p).is_empty(), "only once");
    }

    #[test]
    fn further_probing_stops_once_a_probe_at_the_ceiling_succeeded() {
        let t0 = Instant::now();
        let mut p = ProbeController::new(ProbeConfig::default(), Bitrate::kbps(2_000));
        p.on_start(t0, Bitrate::kbps(300));
        assert_eq!(drain(&mut p), [900_000, 1_800_000]);
        p.on_estimate(t0 + Duration::from_millis(100), Bitrate::kbps(1_700));
        assert_eq!(
            drain(&mut p),
            [2_000_000],
            "twice the result, capped at the maximum"
        );
        p.on_estimate(t0 + Duration::from_millis(200), Bitrate::kbps(2_000));
        assert!(
            drain(&mut p).is_empty(),
            "nothing above the maximum to probe"
        );
    }

    #[test]
    fn a_successful_probe_is_followed_by_one_at_twice_the_result() {
        let t0 = Instant::now();
        let mut p = ProbeController::new(ProbeConfig::default(), Bitrate::kbps(10_000));
        p.on_start(t0, Bitrate::kbps(300));
        drain(&mut p);
        let t = t0 + Duration::from_millis(300);
        p.on_estimate(t, Bitrate::kbps(1000)); // below 70 % of 1800
        assert!(drain(&mut p).is_empty());
        p.on_estimate(t, Bitrate::kbps(1500));
        assert_eq!(drain(&mut p), [3_000_000]);
    }

    #[test]
    fn raising_the_desired_maximum_probes_it() {
        let t0 = Instant::now();
        let mut p = ProbeController::new(ProbeConfig::default(), Bitrate::kbps(10_000));
        p.on_start(t0, Bitrate::kbps(300));
        drain(&mut p);
        p.handle_timeout(t0 + Duration::from_secs(2));
        p.set_desired_max(
            t0 + Duration::from_secs(2),
            Bitrate::kbps(2500),
            Bitrate::kbps(1000),
        );
        assert_eq!(drain(&mut p), [2_500_000]);
        // Lowering does not probe.
        p.handle_timeout(t0 + Duration::from_secs(4));
        p.set_desired_max(
            t0 + Duration::from_secs(4),
            Bitrate::kbps(2000),
            Bitrate::kbps(1000),
        );
        assert!(drain(&mut p).is_empty());
    }

    #[test]
    fn application_limited_sender_probes_every_five_seconds() {
        let t0 = Instant::now();
        let mut p = ProbeController::new(ProbeConfig::default(), Bitrate::kbps(10_000));
        p.on_start(t0, Bitrate::kbps(300));
        drain(&mut p);
        let alr = Some(t0 + Duration::from_secs(2));
        p.on_alr(t0 + Duration::from_secs(4), alr, Bitrate::kbps(1000));
        assert!(drain(&mut p).is_empty(), "not yet 5 s");
        p.on_alr(t0 + Duration::from_secs(7), alr, Bitrate::kbps(1000));
        assert_eq!(drain(&mut p), [2_000_000]);
        p.on_alr(t0 + Duration::from_secs(9), alr, Bitrate::kbps(1000));
        assert!(drain(&mut p).is_empty());
        p.on_alr(t0 + Duration::from_secs(9), None, Bitrate::kbps(1000));
        assert!(drain(&mut p).is_empty(), "not application-limited");
    }
}
