//! Network impairment in user space (for kernels without netem): a UDP relay that delays,
//! jitters, drops, rate-limits and reorders the traffic of chosen clients in both directions,
//! repeatably under a seed. [`link`] is the sans-IO core (one direction), [`udp`] runs it on
//! sockets, [`cli`] is the standalone `loadgen relay` mode.

pub mod cli;
pub mod impairment;
pub mod link;
pub mod selection;
pub mod udp;

pub use impairment::{Impairment, ImpairmentError};
pub use link::{Link, LinkStats, Verdict};
pub use selection::ImpairPlan;
pub use udp::{Relay, RelayHandle, RelayStats};
