//! `quarry-server`: Quarry's S3 API over HTTP.
//!
//! It parses the command line ([`config`]), opens a `quarry-storage` [`Store`](quarry_storage::Store),
//! and serves the S3 protocol with `s3s` on hyper ([`serve`]). The [`s3`] module adapts each S3
//! operation to the store; `s3s` handles HTTP routing, XML, SigV4/V2 verification and
//! aws-chunked bodies. Nothing below this crate knows about HTTP.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use clap::Parser;
//! let cli = quarry_server::config::Cli::parse_from(["quarry", "server", "/mnt/disk{1...4}"]);
//! match cli.command {
//!     quarry_server::config::Command::Server(args) => quarry_server::serve::run(args).await,
//!     quarry_server::config::Command::Heal(args) => quarry_server::serve::heal(args).await,
//!     quarry_server::config::Command::Admin(args) => quarry_server::admin::run(args).await,
//! }
//! # }
//! ```

pub mod admin;
pub mod auth;
pub mod config;
pub mod host;
pub mod iam;
pub mod post_form;
pub mod request_id;
pub mod s3;
pub mod serve;
