//! What a run measures: counters, latency and join-time histograms, the process's CPU use, the
//! live status line and the final report.

pub mod counters;
pub mod cpu;
pub mod histogram;
pub mod live;
pub mod report;

pub use counters::Counters;
pub use cpu::CpuTimes;
pub use histogram::{Histogram, Quantiles};
pub use report::{Measured, Report, RunInfo};
