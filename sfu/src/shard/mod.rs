//! The shard runtime: a pinned thread running a core over an I/O backend, and the queues between shards.
