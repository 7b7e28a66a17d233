//! Which clients of a load run go through the impairing relay: a fraction of the subscribers,
//! spread evenly over them (subscriber k is chosen when `floor((k+1)·f)` passes `floor(k·f)`),
//! so any prefix of the run has its share.

use std::net::SocketAddr;
use std::sync::Arc;

use super::udp::RelayHandle;
use crate::target::{JoinRequest, Role};

/// The run's relay and who uses it.
#[derive(Debug, Clone)]
pub struct ImpairPlan {
    pub relay: Arc<RelayHandle>,
    /// Fraction of subscribers impaired, 0..=1.
    pub fraction: f64,
    /// Publishers in the run (clients `0..publishers` publish, the rest subscribe).
    pub publishers: usize,
}

/// Whether subscriber number `k` (0-based) is among the impaired `fraction`.
pub fn chosen(k: usize, fraction: f64) -> bool {
    let f = fraction.clamp(0.0, 1.0);
    ((k + 1) as f64 * f).floor() > (k as f64 * f).floor()
}

impl ImpairPlan {
    /// Whether this client's traffic goes through the relay.
    pub fn applies(&self, req: &JoinRequest) -> bool {
        req.role == Role::Subscriber
            && chosen(req.client.saturating_sub(self.publishers), self.fraction)
    }

    /// A relay address for a client on `local_ip` that would have sent to `server`.
    pub fn route(
        &self,
        local_ip: std::net::IpAddr,
        server: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        self.relay.listen(SocketAddr::new(local_ip, 0), server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fraction_is_spread_evenly() {
        let picked: Vec<usize> = (0..10).filter(|&k| chosen(k, 0.3)).collect();
        assert_eq!(picked.len(), 3);
        assert_eq!(picked, [3, 6, 9]);
        assert_eq!((0..1000).filter(|&k| chosen(k, 0.25)).count(), 250);
        assert!((0..100).all(|k| chosen(k, 1.0)));
        assert!(!(0..100).any(|k| chosen(k, 0.0)));
    }
}
