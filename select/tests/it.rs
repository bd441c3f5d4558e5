//! Select's integration tests, one binary. The fuzz test stays a binary of its own: it
//! counts panics with a process-wide hook.

mod engine;
mod golden;
