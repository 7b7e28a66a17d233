//! Ringcast benchmarks.
