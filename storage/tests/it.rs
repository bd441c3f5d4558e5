//! The storage engine's integration tests, one binary.

mod erasure_set;
mod store;
mod versioning;
