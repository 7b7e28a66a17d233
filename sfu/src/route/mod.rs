//! Routing: which packets reach which subscriber, and how their headers are rewritten on the way.
