//! The shard runtime: a pinned thread running a core over an I/O backend, and the queues between shards.

pub mod mesh;
pub mod runtime;

pub use mesh::{Mesh, MeshPort};
pub use runtime::{EventSink, ShardConfig, ShardError, ShardHandle, spawn};
