//! Network impairment in user space (for kernels without netem): a UDP relay that delays,
//! jitters, drops, rate-limits and reorders the traffic of chosen clients in both directions,
//! repeatably under a seed. [`link`] is the sans-IO core (one direction), [`udp`] runs it on
//! sockets, [`cli`] is the standalone `loadgen relay` mode. [`rate`] is the rate limit both
//! the relay and the per-viewer [`downlink`] of a capacity class use.

pub mod cli;
pub mod downlink;
pub mod impairment;
pub mod link;
pub mod rate;
pub mod selection;
pub mod udp;

pub use downlink::{Admit, Downlink, DownlinkConfig, DownlinkStats};
pub use impairment::{Impairment, ImpairmentError};
pub use link::{Link, LinkStats, Verdict};
pub use rate::RateLimiter;
pub use selection::ImpairPlan;
pub use udp::{Relay, RelayHandle, RelayStats};
