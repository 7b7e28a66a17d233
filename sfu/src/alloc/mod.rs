//! Per-viewer bandwidth allocation: which layer of each media section a viewer receives within
//! its send-side estimate ([`allocate`]), what to ask of the viewer's estimator
//! ([`ProbeSteering`]), when a viewer counts as degraded ([`DegradationTracker`]), and which
//! simulcast encodings a publisher must keep sending ([`DemandTracker`], dynacast). Pure state
//! machines over plain numbers: no clock, no I/O, no
//! allocation; the shard core (`core/allocation.rs`, `core/dynacast.rs`) feeds them.

mod allocator;
mod degradation;
mod demand;
mod ladder;
mod probe_steering;
mod section;

pub use allocator::{Allocation, AllocatorConfig, Budget, allocate};
pub use degradation::DegradationTracker;
pub use demand::{DEMAND_OFF_DELAY, DemandTracker};
pub use ladder::{Ladder, MAX_STEPS, Step};
pub use probe_steering::{EstimatorView, ProbeRequest, ProbeSteering};
pub use section::{Choice, MAX_SECTIONS, SectionInput, SectionResult};
