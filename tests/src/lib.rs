//! Helpers shared by the end-to-end tests: starting the real server, running peers, reading /metrics.
