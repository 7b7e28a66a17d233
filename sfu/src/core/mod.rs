//! The sans-IO shard core: sessions, tracks and subscriptions of one shard, driven by `handle_*` and drained by `poll_*`.
