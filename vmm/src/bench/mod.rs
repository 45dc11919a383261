//! Benchmarks that compare vigil with a peer measured in the same run and
//! print one JSON line per result.

pub mod boot;
pub mod process;
pub mod stats;
