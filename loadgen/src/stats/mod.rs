//! What a run measures: counters, latency and join-time histograms, the process's CPU use, what
//! viewers experienced per capacity class, the live status line and the final report.

pub mod classes;
pub mod counters;
pub mod cpu;
pub mod histogram;
pub mod live;
pub mod report;
pub mod server_metrics;
pub mod server_viewer;

pub use classes::{ClassReport, ViewerSample};
pub use counters::Counters;
pub use cpu::{CpuTimes, SchedTimes};
pub use histogram::{Histogram, Quantiles};
pub use report::{Measured, Report, RunInfo};
