//! The command line: every setting is a flag and a `QUARRY_*` environment variable, parsed
//! once into typed structs.

use clap::{ArgAction, Parser, Subcommand};
use std::path::PathBuf;

/// Credentials used when none are configured. Documented, and loudly warned about at start.
pub const DEFAULT_ROOT_USER: &str = "quarryadmin";
/// See [`DEFAULT_ROOT_USER`].
pub const DEFAULT_ROOT_PASSWORD: &str = "quarryadmin";

/// Quarry: an S3-compatible object store for analytics and AI/ML.
#[derive(Debug, Parser)]
#[command(name = "quarry", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the S3 API over HTTP from a data directory.
    Server(ServerArgs),
}

/// `quarry server` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Directory that holds all data (created if missing).
    #[arg(env = "QUARRY_DATA_DIR", default_value = "./data")]
    pub dir: PathBuf,

    /// Address to listen on, HOST:PORT. Port 0 picks a free port (printed at start).
    #[arg(long, env = "QUARRY_ADDRESS", default_value = "127.0.0.1:9000")]
    pub address: String,

    /// Region this server answers for (signatures must be scoped to it).
    #[arg(long, env = "QUARRY_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Domain for virtual-host-style requests (`bucket.DOMAIN`); repeat for several.
    /// Without one, only path-style addressing is used.
    #[arg(long = "domain", env = "QUARRY_DOMAIN", value_delimiter = ',')]
    pub domains: Vec<String>,

    /// Root access key. Defaults to `quarryadmin`, with a warning.
    #[arg(long, env = "QUARRY_ROOT_USER", hide_env_values = true)]
    pub root_user: Option<String>,

    /// Root secret key. Defaults to `quarryadmin`, with a warning.
    #[arg(long, env = "QUARRY_ROOT_PASSWORD", hide_env_values = true)]
    pub root_password: Option<String>,

    /// fsync data and metadata before acknowledging a write. Turning it off trades crash
    /// durability for speed (benchmarks, scratch data).
    #[arg(long, env = "QUARRY_FSYNC", default_value_t = true, action = ArgAction::Set)]
    pub fsync: bool,

    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
    #[arg(long, env = "QUARRY_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["quarry", "server"]).unwrap();
        let Command::Server(a) = cli.command;
        assert_eq!(a.dir, PathBuf::from("./data"));
        assert_eq!(a.address, "127.0.0.1:9000");
        assert_eq!(a.region, "us-east-1");
        assert!(a.fsync);
    }

    #[test]
    fn flags() {
        let cli = Cli::try_parse_from([
            "quarry",
            "server",
            "/tmp/x",
            "--address",
            "0.0.0.0:1",
            "--fsync",
            "false",
            "--domain",
            "a.test,b.test",
        ])
        .unwrap();
        let Command::Server(a) = cli.command;
        assert_eq!(a.dir, PathBuf::from("/tmp/x"));
        assert!(!a.fsync);
        assert_eq!(a.domains, ["a.test", "b.test"]);
    }

    #[test]
    fn help_renders() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
