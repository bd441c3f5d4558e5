//! The server's integration tests, one binary (each test binary links the whole server and
//! DataFusion; one link instead of five keeps CI's build short). Each module starts real
//! `quarry` processes.

mod common;

mod crash;
mod drives;
mod full_and_readonly;
mod iam;
mod s3_api;
